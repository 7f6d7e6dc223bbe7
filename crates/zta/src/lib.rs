//! ZTA, the Zero Trust Agent framework: zero trust for multi-agent AI systems.
//!
//! Every agent interaction (tool call, message, task, handoff, delegation) passes the
//! [`Guard`]: the credential is verified, the request is authorized by policy on its own, the
//! decision is written to a tamper-evident audit log, and only then does the caller get a
//! [`Permit`]. Anything that fails denies.
//!
//! This crate re-exports the core and the implementations its Cargo features select:
//!
//! | feature (default on) | module | what |
//! |---|---|---|
//! | `identity-static` | [`identity::static_agents`] | agents declared in config (Ed25519 keys, argon2id secrets) |
//! | `policy-native` | [`policy`] | the compiled, indexed, explainable policy engine |
//! | `audit-jsonl` | [`audit::jsonl`] | hash-chained JSON Lines audit files |
//! | `identity-oidc` (off) | [`identity::oidc`] | Entra ID and OpenID Connect access tokens, and the agent-side token client |
//! | `identity-ldap` (off) | [`identity::ldap`] | LDAP / Active Directory service accounts: search-then-bind, groups to roles and segments |
//! | `state-redis` (off) | [`state::redis`] | revocations, suspensions, lockout counters and replay ids in Redis, shared by replicas |
//! | `server` (off) | [`server`] | the guard as an AuthZEN evaluation service (`zta serve`) |
//! | `adapter-tower` (off) | [`adapter::tower`] | a tower `Layer` that puts the guard in front of HTTP services |
//! | `adapter-mcp` (off) | [`adapter::mcp`] | the MCP gateway agents reach their tools through (`zta gateway`) |
//!
//! [`token`] (session tokens) is always present. [`Config`] loads `zta.yaml` and builds a
//! `Guard` from it.

mod audit_source;
mod config;

/// The README's example compiles (checked by `cargo test --doc`).
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeExample;

pub use config::{
    AnchorStoreSection, AuditSection, AuditTarget, Built, Config, ConfigError, GuardSection, IdentitySection,
    NotCompiled, PolicySection, Position, StateSection,
};
pub use zta_core::*;

/// Identity providers.
pub mod identity {
    /// Agents declared in configuration.
    #[cfg(feature = "identity-static")]
    pub mod static_agents {
        pub use zta_identity_static::*;
    }

    /// Microsoft Entra ID and any OpenID Connect issuer: access tokens verified on every
    /// request, and the agent-side client that obtains them.
    #[cfg(feature = "identity-oidc")]
    pub mod oidc {
        pub use zta_identity_oidc::*;
    }

    /// LDAP directories and Active Directory service accounts.
    #[cfg(feature = "identity-ldap")]
    pub mod ldap {
        pub use zta_identity_ldap::*;
    }
}

/// ZTA session tokens.
pub mod token {
    pub use zta_token::*;
}

/// The native policy engine.
#[cfg(feature = "policy-native")]
pub mod policy {
    pub use zta_policy::*;
}

/// Shared state stores: where revocations, suspensions, lockout counters and replay ids live
/// when several replicas must agree on them ([`MemoryStateStore`] serves one process).
pub mod state {
    /// Redis (or Valkey).
    #[cfg(feature = "state-redis")]
    pub mod redis {
        pub use zta_state_redis::*;
    }
}

/// Adapters: where the guard meets an agent framework or a protocol.
pub mod adapter {
    /// The MCP gateway.
    #[cfg(feature = "adapter-mcp")]
    pub mod mcp {
        pub use zta_adapter_mcp::*;
    }

    /// A tower `Layer` for HTTP services (axum, hyper, tonic).
    #[cfg(feature = "adapter-tower")]
    pub mod tower {
        pub use zta_adapter_tower::*;
    }
}

/// The guard as an HTTP service (the AuthZEN evaluation API).
#[cfg(feature = "server")]
pub mod server {
    pub use zta_server::*;
}

/// Monitoring that acts: detectors over the audit stream (the `monitor:` section).
pub mod monitor {
    pub use zta_monitor::*;
}

/// Audit sinks.
pub mod audit {
    /// Several sinks at once, each required or spooled.
    pub mod fanout {
        pub use zta_audit_fanout::*;
    }
    /// Hash-chained JSON Lines files.
    #[cfg(feature = "audit-jsonl")]
    pub mod jsonl {
        pub use zta_audit_jsonl::*;
    }
    /// A PostgreSQL table, a hash chain per writer.
    #[cfg(feature = "audit-postgres")]
    pub mod postgres {
        pub use zta_audit_postgres::*;
    }
    /// A SQLite file, a hash chain per writer.
    #[cfg(feature = "audit-sqlite")]
    pub mod sqlite {
        pub use zta_audit_sqlite::*;
    }
    /// A NATS JetStream stream, a hash chain per writer.
    #[cfg(feature = "audit-nats")]
    pub mod nats {
        pub use zta_audit_nats::*;
    }
}
