//! Agent identities declared in configuration, for the ZTA request path's first step
//! (credential ─► **authenticate** ─► principal).
//!
//! [`StaticProvider`] implements [`zta_core::IdentityProvider`] for agents listed in a
//! [`StaticConfig`]. Each agent proves who it is either with an Ed25519-signed assertion (a
//! short-lived, single-use JWT made with [`AgentKey::assertion`]) or with a secret checked
//! against an argon2id hash (made with [`hash_secret`]). Unknown agents cost the same work and
//! get the same error as wrong credentials; repeated failures lock the name out; assertions
//! cannot be replayed. Lockout counters and replay ids live in a [`zta_core::StateStore`], so
//! replicas share them.

mod config;
mod crypto;
mod duration;
mod error;
mod key;
mod provider;
mod secret;

pub use config::{AgentEntry, AssertionConfig, LockoutConfig, StaticConfig};
pub use error::Error;
pub use key::AgentKey;
pub use provider::StaticProvider;
pub use secret::hash_secret;
