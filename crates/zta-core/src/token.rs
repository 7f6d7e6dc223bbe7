//! Session tokens: the short-lived credential an agent carries after its primary login.

use std::{borrow::Cow, fmt::Debug, sync::Arc, time::Duration};

use async_trait::async_trait;
use secrecy::SecretString;

use crate::{AgentId, AuthError, Credential, Principal, SharedError, StateError};

/// A pair of session tokens as issued at login or refresh.
#[derive(Debug, Clone)]
pub struct SessionTokens {
    /// The access token to present with every request.
    pub access_token: SecretString,
    /// The single-use refresh token that obtains the next pair.
    pub refresh_token: SecretString,
    /// Lifetime of the access token.
    pub expires_in: Duration,
}

/// A verified, unrevoked access token. Its principal comes out only through
/// [`live`](Self::live), which refuses a suspended agent: the verification reads the agent's
/// suspension in the same round trip to the state store as the token's revocation, and the
/// refusal names the principal for the audit record.
#[derive(Debug, Clone)]
#[must_use = "the principal is only live after `live()` refused a suspension"]
pub struct VerifiedToken {
    principal: Arc<Principal>,
    suspended: bool,
}

impl VerifiedToken {
    /// The token of `principal`, whose agent is `suspended` or not.
    pub fn new(principal: Arc<Principal>, suspended: bool) -> Self {
        Self { principal, suspended }
    }

    /// The principal, or [`AuthError::Suspended`] with it when its agent is suspended.
    pub fn live(self) -> Result<Arc<Principal>, (AuthError, Arc<Principal>)> {
        if self.suspended { Err((AuthError::Suspended, self.principal)) } else { Ok(self.principal) }
    }
}

/// A failure to issue or revoke session tokens.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The request cannot be served as asked: the principal may not be given tokens (expired,
    /// itself a session, a delegation chain or session too long), or the token to revoke is
    /// not one of ours.
    #[error("session tokens refused: {0}")]
    Refused(Cow<'static, str>),
    /// The shared state that holds revocations failed.
    #[error("session token state: {0}")]
    State(#[from] StateError),
    /// Signing, encoding or randomness failed.
    #[error("session token signing failed: {detail}")]
    Crypto {
        /// What was being done.
        detail: Cow<'static, str>,
        /// The library's own error, where there is one.
        #[source]
        source: Option<SharedError>,
    },
}

impl TokenError {
    /// Signing, encoding or randomness failed while doing `detail`.
    pub fn crypto(detail: impl Into<Cow<'static, str>>, cause: Option<SharedError>) -> Self {
        Self::Crypto { detail: detail.into(), source: cause }
    }
}

impl From<TokenError> for crate::AuthError {
    /// A refusal is an invalid credential; the token service or its state failing is the
    /// identity service being unavailable. Either way the request is denied.
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::Refused(detail) => Self::invalid(detail),
            other => Self::unavailable(other.to_string()),
        }
    }
}

/// Issues, verifies, refreshes and revokes ZTA session tokens.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait TokenAuthority: Send + Sync + Debug + 'static {
    /// Whether `credential` looks like one of this authority's tokens (a cheap header check;
    /// nothing is verified).
    fn accepts(&self, credential: &Credential) -> bool;

    /// Issues an access/refresh pair for a freshly authenticated principal.
    async fn issue(&self, principal: &Principal) -> Result<SessionTokens, TokenError>;

    /// Verifies an access token (signature, claims, expiry, revocation) and returns its
    /// principal (shared, so a cached verification hands it out without copying) with its
    /// agent's suspension, read in the same [`StateStore::standing`](crate::StateStore::standing)
    /// call as the revocation.
    async fn verify(&self, access_token: &SecretString) -> Result<VerifiedToken, AuthError>;

    /// Exchanges a refresh token for a new pair. A refresh token works once; presenting it
    /// again revokes its whole family.
    async fn refresh(&self, refresh_token: &SecretString) -> Result<(Principal, SessionTokens), AuthError>;

    /// Revokes one token (access or refresh) by its id.
    async fn revoke_token(&self, token: &SecretString) -> Result<(), TokenError>;

    /// Revokes every token issued to `agent` until now.
    async fn revoke_agent(&self, agent: &AgentId) -> Result<(), TokenError>;
}
