//! Core of ZTA, the Zero Trust Agent framework: domain types, the backend traits, and the
//! [`Guard`] that every agent interaction passes through.
//!
//! ```text
//! credential ─► authenticate ─► Principal ─► authorize (policy) ─► Decision ─► audit ─► Permit | Denied
//! ```
//!
//! Backends (identity providers, token authority, policy engine, audit sink, state store)
//! implement the traits here; this crate does no I/O of its own.

mod action;
mod actor;
mod agent;
mod attribute;
mod audit;
mod audit_query;
mod credential;
mod decision;
pub mod duration;
mod guard;
mod identity;
mod permissible;
mod policy;
mod principal;
mod request;
pub mod secret_source;
mod state;
pub mod strict_json;
mod token;

pub use action::{Action, ActionKind, ReservedVerb, Resource};
pub use actor::Actor;
pub use agent::{AgentId, InvalidAgentId, MAX_AGENT_ID_LEN};
pub use attribute::{Attribute, AttributePath};
pub use audit::{AuditError, AuditEvent, AuditRecord, AuditSink, Durability};
pub use audit_query::{AuditQuery, AuditReadError, AuditSource, OCSF_VERSION, ocsf};
pub use credential::{Credential, MAX_CREDENTIAL_LEN};
pub use decision::{Basis, Decision, Determining, Effect, Obligation, PolicyDigest, RuleName};
pub use guard::{Denied, DenyReason, Guard, GuardBuilder, GuardError, Permit};
pub use identity::{AuthError, IdentityProvider, KeyFetches, bearer_revocation_key};
pub use permissible::{Candidates, Permissible};
pub use policy::{PolicyEngine, PolicyError};
pub use principal::{AuthMethod, Principal};
pub use request::{AttrValue, AuthzRequest, Context, Request, RequestError, Target};
pub use state::{MemoryStateStore, SharedError, Standing, StateError, StateStore};
pub use token::{SessionTokens, TokenAuthority, TokenError, VerifiedToken};

#[cfg(feature = "mock")]
pub use {
    audit::MockAuditSink, identity::MockIdentityProvider, policy::MockPolicyEngine, state::MockStateStore,
    token::MockTokenAuthority,
};

/// Re-exported so implementors name the same secret type.
pub use secrecy;
