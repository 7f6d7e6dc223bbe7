//! The ZTA [`StateStore`](zta_core::StateStore) on Redis (or Valkey), so that several replicas
//! share one set of revocations, suspensions, lockout counters and replay ids: a token revoked,
//! an agent suspended, a failure counted or an assertion claimed at one replica holds at all of
//! them. Every check on the request path that reads state is one round trip.
//!
//! ```no_run
//! use std::sync::Arc;
//!
//! use zta_core::StateStore;
//! use zta_state_redis::{RedisConfig, RedisStateStore};
//!
//! # async fn run() -> Result<(), zta_state_redis::Error> {
//! let config = RedisConfig::from_env("ZTA_REDIS_URL"); // e.g. rediss://zta:PASSWORD@redis:6379/0
//! let state: Arc<dyn StateStore> = Arc::new(RedisStateStore::connect(config).await?);
//! # Ok(())
//! # }
//! ```
//!
//! # Failing closed
//!
//! Every Redis error, and every operation that takes longer than the configured `timeout`
//! (default 500 ms), is a [`StateError`](zta_core::StateError), so the request it serves is
//! denied. The store keeps one multiplexed connection and reconnects on its own: after an
//! outage, the first operation to hit the dead connection fails and starts a reconnection, and
//! the ones after it work again once the server is back. No message carries the URL's password.
//!
//! # Key layout
//!
//! Times are those of the Redis server's clock where a key expires, and exact microseconds
//! where a time is compared. `P` is `key_prefix` (default `zta:`).
//!
//! | key | value | expires | written by |
//! |---|---|---|---|
//! | `P revoked:<key>` | end of the revocation, ms since the epoch | at that end | `revoke` (keeps the later end) |
//! | `P agent:{<agent>}:revoked` | hash `s`, `us`: the revocation time, seconds and microseconds since the epoch | never | `revoke_agent` (keeps the later time) |
//! | `P agent:{<agent>}:suspended` | `1` | never | `suspend`; `reinstate` deletes it |
//! | `P failures:<key>` | failure count | end of the window (set by the first failure) | `add_failure`; `clear_failures` deletes it |
//! | `P claimed:<id>` | `1` | the claim's `until` | `claim_once` (`SET NX PXAT`) |
//!
//! (`P revoked:k` stands for `zta:revoked:k`.) An agent's keys carry the agent id as a Redis
//! Cluster hash tag (`{<agent>}`; agent ids cannot contain braces), so the keys of one agent
//! share a slot. `standing` reads the agent's revocation time, its suspension and the token's
//! keys in one pipeline: checking a session token is one round trip. The store talks to one server (or a proxy in front of a cluster); it does not
//! follow Cluster redirections itself.
//!
//! # Atomicity
//!
//! `claim_once` is one `SET NX`; `add_failure`, `revoke` and `revoke_agent` are Lua scripts
//! (`EVALSHA`), so racing replicas neither lose a failure nor shorten a revocation.

mod config;
mod error;
mod store;

pub use config::RedisConfig;
pub use error::Error;
pub use store::RedisStateStore;
