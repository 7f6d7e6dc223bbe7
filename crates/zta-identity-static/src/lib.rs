//! Agent identities declared in configuration, for the ZTA request path's first step
//! (credential ─► **authenticate** ─► principal).
//!
//! [`StaticProvider`] implements [`zta_core::IdentityProvider`] for agents listed in a
//! [`StaticConfig`]. Each agent proves who it is either with an Ed25519-signed assertion (a
//! short-lived, single-use JWT made with [`AgentKey::assertion`]) or with a secret checked
//! against an argon2id hash (made with [`hash_secret`]). Unknown agents cost the same work and
//! get the same error as wrong credentials; repeated wrong secrets lock the name out, with
//! exponential backoff; assertions cannot be replayed. Lockout counters and replay ids live in a [`zta_core::StateStore`], so
//! replicas share them.
//!
//! ```
//! use std::{sync::Arc, time::Duration};
//!
//! use zta_core::{AgentId, IdentityProvider, MemoryStateStore};
//! use zta_identity_static::{AgentEntry, AgentKey, StaticConfig, StaticProvider};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Agent side: a key pair; the public half goes into the server's configuration.
//! let key = AgentKey::generate()?;
//! let agent = AgentId::new("research_bot")?;
//!
//! // Server side.
//! let config = StaticConfig::new("https://zta.example/issuer").with_agent(
//!     AgentEntry::from_public_key(agent.clone(), key.public_key_pem()).with_segment("research"),
//! );
//! let provider = StaticProvider::new(config, Arc::new(MemoryStateStore::new()))?;
//!
//! // Each request carries a fresh, single-use assertion.
//! let credential = key.assertion(&agent, "https://zta.example/issuer", Duration::from_secs(30))?;
//! let principal = provider.authenticate(&credential).await?;
//! assert_eq!(principal.agent_id, agent);
//! assert_eq!(principal.segment.as_deref(), Some("research"));
//! assert!(provider.authenticate(&credential).await.is_err()); // replayed
//! # Ok(())
//! # }
//! ```

mod config;
mod error;
mod key;
mod provider;
mod secret;

pub use config::{AgentEntry, AssertionConfig, HashingConfig, LockoutConfig, StaticConfig};
pub use error::Error;
pub use key::AgentKey;
pub use provider::StaticProvider;
pub use secret::hash_secret;
