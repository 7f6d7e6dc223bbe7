//! The verified identity of the agent behind a request.

use std::{collections::BTreeMap, sync::Arc};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::AgentId;

/// How a principal proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AuthMethod {
    /// A JWT assertion signed with the agent's configured key.
    AgentKey,
    /// A shared secret checked against a stored argon2id hash.
    AgentSecret,
    /// A ZTA session token issued after one of the other methods.
    SessionToken,
    /// An access token from an OpenID Connect issuer (e.g. Entra ID).
    Oidc,
    /// An LDAP bind.
    Ldap,
    /// Not proven by the agent: a trusted enforcement point vouched for it (see
    /// [`Guard::check_asserted`](crate::Guard::check_asserted)).
    Asserted,
}

impl AuthMethod {
    /// The snake_case name used in policies and audit records.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AgentKey => "agent_key",
            Self::AgentSecret => "agent_secret",
            Self::SessionToken => "session_token",
            Self::Oidc => "oidc",
            Self::Ldap => "ldap",
            Self::Asserted => "asserted",
        }
    }
}

/// A verified identity. Only identity providers and the token authority create these, from a
/// credential they have verified; the [`Guard`](crate::Guard) never takes one from a caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Principal {
    /// The acting agent.
    pub agent_id: AgentId,
    /// The subject as the issuer names it (may equal the agent id).
    pub subject: String,
    /// Who vouched for the identity (a provider name or an issuer URL).
    pub issuer: String,
    /// For a session token's principal, the issuer of the primary identity the session was
    /// opened with (its provider confirms it again at each refresh); `None` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_issuer: Option<String>,
    /// The tenant, where the issuer has tenants.
    pub tenant: Option<String>,
    /// Roles granted by the issuer.
    pub roles: Vec<String>,
    /// Groups the principal belongs to.
    pub groups: Vec<String>,
    /// The microsegment the agent lives in.
    pub segment: Option<String>,
    /// How the principal authenticated.
    pub auth_method: AuthMethod,
    /// When the primary authentication happened.
    #[serde(with = "time::serde::rfc3339")]
    pub authenticated_at: OffsetDateTime,
    /// When this identity stops being valid (credential or session expiry).
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// Subjects this agent acts for, the original requester first (RFC 8693 `act` chain).
    pub delegation: Vec<String>,
    /// Further claims the issuer vouched for, kept for the audit trail (an IdP's app and object
    /// ids, Entra Agent ID's `xms_par_app_azp`). Never authorization input by themselves.
    /// Shared: every audit record of the principal points at the same map.
    #[serde(default, skip_serializing_if = "no_claims")]
    pub claims: Arc<BTreeMap<String, String>>,
}

fn no_claims(claims: &Arc<BTreeMap<String, String>>) -> bool {
    claims.is_empty()
}

impl Principal {
    /// A principal with the given id, issuer and method; everything else empty. Providers fill
    /// in the rest with the setters below.
    pub fn new(
        agent_id: AgentId,
        issuer: impl Into<String>,
        auth_method: AuthMethod,
        authenticated_at: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Self {
        Self {
            subject: agent_id.as_str().to_owned(),
            agent_id,
            issuer: issuer.into(),
            source_issuer: None,
            tenant: None,
            roles: Vec::new(),
            groups: Vec::new(),
            segment: None,
            auth_method,
            authenticated_at,
            expires_at,
            delegation: Vec::new(),
            claims: Arc::default(),
        }
    }

    /// Sets the subject.
    #[must_use]
    pub fn with_subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = subject.into();
        self
    }

    /// Sets the issuer of the primary identity a session was opened with.
    #[must_use]
    pub fn with_source_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.source_issuer = Some(issuer.into());
        self
    }

    /// Sets the tenant.
    #[must_use]
    pub fn with_tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant = Some(tenant.into());
        self
    }

    /// Sets the roles.
    #[must_use]
    pub fn with_roles(mut self, roles: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.roles = roles.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the groups.
    #[must_use]
    pub fn with_groups(mut self, groups: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.groups = groups.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the segment.
    #[must_use]
    pub fn with_segment(mut self, segment: impl Into<String>) -> Self {
        self.segment = Some(segment.into());
        self
    }

    /// Sets the delegation chain (original requester first).
    #[must_use]
    pub fn with_delegation(mut self, chain: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.delegation = chain.into_iter().map(Into::into).collect();
        self
    }

    /// Adds a verified claim kept for the audit trail (see [`claims`](Self::claims)).
    #[must_use]
    pub fn with_claim(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        Arc::make_mut(&mut self.claims).insert(name.into(), value.into());
        self
    }

    /// Whether the identity has expired at `now`.
    pub fn is_expired_at(&self, now: OffsetDateTime) -> bool {
        now >= self.expires_at
    }
}
