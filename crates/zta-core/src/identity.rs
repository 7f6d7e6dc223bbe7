//! Identity providers: turn a presented credential into a verified [`Principal`].

use std::{borrow::Cow, fmt::Debug, sync::Arc};

use async_trait::async_trait;

use crate::{AgentId, Credential, Principal};

/// Why authentication failed. `Display` is safe to show the caller: it never says whether an
/// agent exists or which check failed; [`AuthError::detail`] says that, for the audit log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The credential is not valid (bad signature, wrong secret, unknown agent, wrong issuer,
    /// audience or type, malformed).
    #[error("invalid credential")]
    Invalid {
        /// What exactly failed; for the audit log only.
        detail: Cow<'static, str>,
    },
    /// The credential has expired.
    #[error("credential expired")]
    Expired,
    /// The credential is not valid yet.
    #[error("credential not yet valid")]
    NotYetValid,
    /// The credential or its agent has been revoked.
    #[error("credential revoked")]
    Revoked,
    /// A one-time credential was presented again.
    #[error("credential already used")]
    Replayed,
    /// The agent is suspended: every credential of it is refused until an operator
    /// reinstates it.
    #[error("agent suspended")]
    Suspended,
    /// Too many failed attempts for this name; try again later.
    #[error("too many failed attempts")]
    LockedOut,
    /// The credential is valid for requests but its provider does not exchange it for a
    /// session token (`login`).
    #[error("this credential cannot open a session")]
    NoSession,
    /// No configured provider takes this kind of credential.
    #[error("credential kind `{0}` is not accepted")]
    Unsupported(&'static str),
    /// The identity backend could not be reached or failed; the request is denied.
    #[error("identity service unavailable")]
    Unavailable {
        /// What failed; for the audit log only.
        detail: Cow<'static, str>,
    },
    /// The shared state store (revocations, suspensions, single-use claims, lockout counters)
    /// could not be reached or failed; the request is denied.
    #[error("state store unavailable")]
    StateUnavailable {
        /// What failed; for the audit log only.
        detail: Cow<'static, str>,
    },
}

impl From<crate::StateError> for AuthError {
    fn from(e: crate::StateError) -> Self {
        Self::StateUnavailable { detail: Cow::Owned(e.to_string()) }
    }
}

impl AuthError {
    /// An invalid-credential error with a detail for the audit log.
    pub fn invalid(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::Invalid { detail: detail.into() }
    }

    /// A backend failure with a detail for the audit log.
    pub fn unavailable(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::Unavailable { detail: detail.into() }
    }

    /// Whether a backend failed (the identity service or the state store): the credential was
    /// not judged, so the caller may try again later.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable { .. } | Self::StateUnavailable { .. })
    }

    /// A stable snake_case name of the kind of failure, for audit records (`detail.denial`),
    /// metrics and monitoring.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid { .. } => "invalid_credential",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::Revoked => "revoked",
            Self::Replayed => "replayed",
            Self::Suspended => "suspended",
            Self::LockedOut => "locked_out",
            Self::NoSession => "no_session",
            Self::Unsupported(_) => "unsupported_credential",
            Self::Unavailable { .. } => "identity_unavailable",
            Self::StateUnavailable { .. } => "state_unavailable",
        }
    }

    /// The full reason, for the audit log and traces (never secrets).
    pub fn detail(&self) -> Cow<'_, str> {
        match self {
            Self::Invalid { detail } => Cow::Owned(format!("invalid credential: {detail}")),
            Self::Unavailable { detail } => Cow::Owned(format!("identity service unavailable: {detail}")),
            // A StateError's text already says "state store unavailable: ...".
            Self::StateUnavailable { detail } => Cow::Borrowed(detail),
            other => Cow::Owned(other.to_string()),
        }
    }
}

/// Verifies primary credentials (agent keys, secrets, OIDC tokens, LDAP binds).
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait IdentityProvider: Send + Sync + Debug + 'static {
    /// A short name for logs and audit records (e.g. `static`, `entra`, `ldap`).
    fn name(&self) -> &str;

    /// Whether this provider handles this kind of credential. Must be cheap and must not
    /// verify anything.
    fn accepts(&self, credential: &Credential) -> bool;

    /// Whether `credential` names an agent this provider declares (the `sub` of an assertion,
    /// the name of a secret). Used only to route the credential, never as proof: cheap, and
    /// verifies nothing. The default declares nothing.
    fn declares(&self, credential: &Credential) -> bool {
        let _ = credential;
        false
    }

    /// The agents this provider declares, when it can list them (a directory or an IdP
    /// cannot). The guard refuses to start when two providers declare the same agent.
    fn declared_agents(&self) -> Vec<AgentId> {
        Vec::new()
    }

    /// The exact `iss` values of the bearer tokens this provider verifies (an OIDC issuer; for a
    /// multi-tenant issuer, one per allowed tenant). The guard reads a bearer token's `iss`,
    /// unverified and only to choose, and hands the token to the one provider listing it; two
    /// providers listing the same issuer cannot be built into one guard. The default lists none.
    fn issuers(&self) -> Vec<String> {
        Vec::new()
    }

    /// Whether [`Guard::login`](crate::Guard::login) may exchange this provider's credentials
    /// for a ZTA session token. The default allows it.
    fn issues_session_tokens(&self) -> bool {
        true
    }

    /// Confirms at a session refresh, without the credential, that the identity a session was
    /// opened with still holds: a directory account still exists, is enabled and keeps the
    /// groups its roles came from. An error ends the session (the agent must log in again).
    /// Providers whose answers cannot change under a session keep the default, which confirms.
    async fn revalidate(&self, principal: &Principal) -> Result<(), AuthError> {
        let _ = principal;
        Ok(())
    }

    /// Verifies `credential` and returns who presented it. Every failure is an error; there is
    /// no partial success. Shared, so a provider that keeps verified credentials hands out its
    /// kept principal without copying it.
    async fn authenticate(&self, credential: &Credential) -> Result<Arc<Principal>, AuthError>;

    /// The segment of a known agent, used to resolve the target of agent-to-agent actions.
    /// `None` if this provider does not know the agent.
    async fn segment_of(&self, agent: &AgentId) -> Option<String> {
        let _ = agent;
        None
    }

    /// How often this provider has fetched its issuers' signing keys (an OIDC provider's JWKS),
    /// for `/metrics`; `None` (the default) for a provider that fetches none. A relaxed
    /// counter read: cheap, never a wait.
    fn key_fetches(&self) -> Option<KeyFetches> {
        None
    }
}

/// Signing-key fetches of an identity provider ([`IdentityProvider::key_fetches`]): one per
/// attempt to fetch a key set, by how it ended. Counts only grow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyFetches {
    /// Fetches that brought a usable key set.
    pub ok: u64,
    /// Fetches that failed (unreachable, an error status, a set without a usable key, or the
    /// discovery document it needed first).
    pub failed: u64,
}

impl std::ops::Add for KeyFetches {
    type Output = Self;

    fn add(self, other: Self) -> Self {
        Self { ok: self.ok.saturating_add(other.ok), failed: self.failed.saturating_add(other.failed) }
    }
}

/// The state-store key under which one bearer token of an identity provider is revoked: a
/// digest of the whole token, so the store never holds the token. A provider that verifies
/// bearer tokens checks it on every use, cached or not; [`Guard::revoke_token`](crate::Guard::revoke_token)
/// sets it for a token that is not a ZTA session token.
pub fn bearer_revocation_key(token: &str) -> String {
    use sha2::Digest as _;
    format!("bearer:{}", hex::encode(sha2::Sha256::digest(token.as_bytes())))
}
