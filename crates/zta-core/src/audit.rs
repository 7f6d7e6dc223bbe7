//! Audit records and sinks: every authentication, decision and token event is written down.

mod json;

use std::{collections::BTreeMap, fmt::Debug, sync::Arc};

use crate::SharedError;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{
    Action, AgentId, AuthMethod, Basis, Decision, Determining, Effect, PolicyDigest, Principal, Resource,
};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AuditEvent {
    /// A primary login (credential checked, session tokens issued or refused).
    Login,
    /// A request was authenticated and authorized (or refused at either step).
    Authorization,
    /// A refresh token was exchanged (or refused).
    TokenRefresh,
    /// A refresh token was used twice; its family was revoked.
    TokenReuse,
    /// A token or an agent was revoked.
    Revocation,
    /// An agent was suspended: every credential of it is refused until it is reinstated.
    Suspension,
    /// A suspended agent was reinstated.
    Reinstatement,
    /// The policy set was replaced (or a reload was refused).
    PolicyReload,
    /// Any other administrative change.
    Admin,
    /// A monitoring detector fired (the reason says which and why).
    Alert,
}

impl AuditEvent {
    /// Every event, in declaration order (for backends and their tests that must handle each).
    pub const ALL: [Self; 10] = [
        Self::Login,
        Self::Authorization,
        Self::TokenRefresh,
        Self::TokenReuse,
        Self::Revocation,
        Self::Suspension,
        Self::Reinstatement,
        Self::PolicyReload,
        Self::Admin,
        Self::Alert,
    ];

    /// The snake_case name used in audit records.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Login => "login",
            Self::Authorization => "authorization",
            Self::TokenRefresh => "token_refresh",
            Self::TokenReuse => "token_reuse",
            Self::Revocation => "revocation",
            Self::Suspension => "suspension",
            Self::Reinstatement => "reinstatement",
            Self::PolicyReload => "policy_reload",
            Self::Admin => "admin",
            Self::Alert => "alert",
        }
    }
}

/// One audit record. The sink adds sequence numbers and the hash chain.
///
/// Request context is deliberately not recorded: it is free-form and may hold personal data or
/// secrets. Secrets and token bodies never appear.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AuditRecord {
    /// Unique, time-ordered id (UUIDv7); also the request id shown to a denied caller.
    pub id: Uuid,
    /// When the event happened (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    /// What happened.
    pub event: AuditEvent,
    /// The outcome.
    pub effect: Effect,
    /// The verified agent, when authentication succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<AgentId>,
    /// How it authenticated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_method: Option<AuthMethod>,
    /// The agent's tenant, for identities whose issuer has tenants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The further claims the agent's issuer vouched for (an IdP's app and object ids).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claims: Option<Arc<BTreeMap<String, String>>>,
    /// Whom it acted for (delegation chain, original requester first).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_behalf_of: Vec<String>,
    /// The action asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
    /// The resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<Resource>,
    /// The target agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_agent: Option<AgentId>,
    /// The decision basis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basis: Option<Basis>,
    /// The determining rules.
    #[serde(default, skip_serializing_if = "Determining::is_empty")]
    pub determining: Determining,
    /// The policy revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_digest: Option<PolicyDigest>,
    /// Why, in words (for denials and failures).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Time spent on the request path, in microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_us: Option<u64>,
    /// Event-specific details (e.g. old and new policy digests).
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub detail: serde_json::Map<String, serde_json::Value>,
}

impl AuditRecord {
    /// A record of `event` with `effect`, stamped now, everything else empty.
    pub fn new(event: AuditEvent, effect: Effect) -> Self {
        Self::stamped(event, effect, Uuid::now_v7(), OffsetDateTime::now_utc())
    }

    /// A record of `event` with `effect`, with the given id and time.
    pub(crate) fn stamped(event: AuditEvent, effect: Effect, id: Uuid, time: OffsetDateTime) -> Self {
        Self {
            id,
            time,
            event,
            effect,
            agent_id: None,
            auth_method: None,
            tenant: None,
            claims: None,
            on_behalf_of: Vec::new(),
            action: None,
            resource: None,
            target_agent: None,
            basis: None,
            determining: Determining::new(),
            policy_digest: None,
            reason: None,
            latency_us: None,
            detail: serde_json::Map::new(),
        }
    }

    /// Sets the record id.
    #[must_use]
    pub fn with_id(mut self, id: Uuid) -> Self {
        self.id = id;
        self
    }

    /// Appends the record as compact JSON to `out`: byte for byte what `serde_json::to_vec`
    /// gives, several times faster. Sinks call this for every record. A record that cannot be
    /// written (a time outside RFC 3339's years) is an error, and `out` may then hold part of it.
    pub fn write_json(&self, out: &mut Vec<u8>) -> Result<(), AuditError> {
        json::write_record(self, out)
            .map_err(|e| AuditError::write(format!("cannot serialize audit record `{}`: {e}", self.id)))
    }

    /// Copies effect, basis, determining rules and digest from a decision.
    pub fn note_decision(&mut self, decision: &Decision) {
        self.effect = decision.effect;
        self.basis = Some(decision.basis);
        self.determining.clone_from(&decision.determining);
        self.policy_digest = Some(decision.policy_digest);
    }

    /// Names the verified agent, how it authenticated and, for IdP identities, its tenant and
    /// the claims its issuer vouched for.
    pub fn note_principal(&mut self, principal: &Principal) {
        self.agent_id = Some(principal.agent_id.clone());
        self.auth_method = Some(principal.auth_method);
        self.tenant.clone_from(&principal.tenant);
        // Shared with the principal, not copied: this runs on every request.
        self.claims = (!principal.claims.is_empty()).then(|| principal.claims.clone());
    }

    /// Sets the reason.
    #[must_use]
    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    /// Adds a detail.
    #[must_use]
    pub fn with_detail(mut self, key: impl Into<String>, value: impl Into<serde_json::Value>) -> Self {
        self.detail.insert(key.into(), value.into());
        self
    }
}

/// When [`AuditSink::append`] may return.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    /// Once the record is in the sink's bounded queue (made durable by the next group commit).
    #[default]
    Queued,
    /// Once the record is durably stored (`durable_before_permit`).
    Flushed,
}

/// Why the sink could not take a record. Any of these denies the request.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// The queue is full and the sink is configured to refuse rather than wait.
    #[error("audit queue is full")]
    QueueFull,
    /// The sink has been closed or its writer has stopped.
    #[error("audit sink is closed")]
    Closed,
    /// Writing failed.
    #[error("audit write failed: {0}")]
    Write(#[source] SharedError),
}

/// Equal when of the same kind and, for write failures, with the same message (the causes
/// themselves are not comparable).
impl PartialEq for AuditError {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Write(a), Self::Write(b)) => a.to_string() == b.to_string(),
            (a, b) => std::mem::discriminant(a) == std::mem::discriminant(b),
        }
    }
}

impl AuditError {
    /// Writing failed with `cause` (an I/O error, a database error, or a message).
    pub fn write(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Write(SharedError::from(cause.into()))
    }
}

/// Where audit records go. Records are never silently dropped: a full queue waits or, when
/// configured to, refuses, and the guard denies.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait AuditSink: Send + Sync + Debug + 'static {
    /// Takes one record; returns when it meets `durability`.
    async fn append(&self, record: AuditRecord, durability: Durability) -> Result<(), AuditError>;

    /// Waits until every record taken so far is durable.
    async fn flush(&self) -> Result<(), AuditError>;

    /// Whether the sink takes records now: a cheap probe for readiness checks (it writes
    /// nothing). The default says it does; a sink that can tell it has stopped says so.
    async fn ready(&self) -> Result<(), AuditError> {
        Ok(())
    }

    /// How many records the sink has accepted that are not durable yet (queued, or written
    /// and not yet committed), for a queue-depth gauge; `None` (the default) for a sink that
    /// keeps no queue of its own. Cheap and lock-free on the append path: a relaxed counter
    /// read, never a wait. Records a failed sink lost no longer count (its `ready` and its
    /// error say so).
    fn queued(&self) -> Option<u64> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_every_event_once_in_order() {
        for (i, event) in AuditEvent::ALL.into_iter().enumerate() {
            // Exhaustive: a new event fails to compile here until it is placed in `ALL`.
            let position = match event {
                AuditEvent::Login => 0,
                AuditEvent::Authorization => 1,
                AuditEvent::TokenRefresh => 2,
                AuditEvent::TokenReuse => 3,
                AuditEvent::Revocation => 4,
                AuditEvent::Suspension => 5,
                AuditEvent::Reinstatement => 6,
                AuditEvent::PolicyReload => 7,
                AuditEvent::Admin => 8,
                AuditEvent::Alert => 9,
            };
            assert_eq!(position, i, "{event:?}");
        }
    }
}
