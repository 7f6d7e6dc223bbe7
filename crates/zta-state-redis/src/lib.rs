//! The ZTA [`StateStore`](zta_core::StateStore) on Redis (or Valkey), one server or a Redis
//! Cluster, so that several replicas share one set of revocations, suspensions, lockout
//! counters and replay ids: a token revoked, an agent suspended, a failure counted or an
//! assertion claimed at one replica holds at all of them. Every check on the request path that
//! reads state is one round trip (on a cluster: one per node it reads, sent together).
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
//! // A Redis Cluster: the URL names one of its nodes.
//! let cluster = RedisConfig::new("redis://redis-cluster:6379/").with_cluster(true);
//! let shared: Arc<dyn StateStore> = Arc::new(RedisStateStore::connect(cluster).await?);
//! # Ok(())
//! # }
//! ```
//!
//! # Failing closed
//!
//! Every Redis error, and every operation that takes longer than the configured `timeout`
//! (default 500 ms), is a [`StateError`](zta_core::StateError), so the request it serves is
//! denied. The store keeps one multiplexed connection (on a cluster, one to each node) and
//! reconnects on its own: after an outage, the first operation to hit the dead connection fails
//! and starts a reconnection, and the ones after it work again once the server is back. No
//! message carries the URL's password.
//!
//! # Key layout
//!
//! Times are those of the Redis server's clock where a key expires, and exact microseconds
//! where a time is compared. `P` is `key_prefix` (default `zta:`).
//!
//! | key | value | expires | written by | Cluster slot |
//! |---|---|---|---|---|
//! | `P revoked:<key>` | end of the revocation, ms since the epoch | at that end | `revoke` (keeps the later end) | its own |
//! | `P agent:{<agent>}:revoked_at` | `<seconds>:<microseconds>` since the epoch: the revocation time | never | `revoke_agent` (keeps the later time) | the agent's |
//! | `P agent:{<agent>}:suspended` | `1` | never | `suspend`; `reinstate` deletes it | the agent's |
//! | `P failures:<key>` | failure count | end of the window (set by the first failure) | `add_failure`; `clear_failures` deletes it | its own |
//! | `P claimed:<id>` | `1` | the claim's `until` | `claim_once` (`SET NX PXAT`) | its own |
//!
//! (`P revoked:k` stands for `zta:revoked:k`.) An agent's keys carry the agent id as a Redis
//! Cluster hash tag (`{<agent>}`; agent ids cannot contain braces), so the keys of one agent
//! share a slot. Every command and script of the store names one key, except `standing`'s
//! reads of the agent's two keys (one slot) on a cluster, and its single `MGET` on one server.
//!
//! `standing` reads the agent's revocation time, its suspension and the token's keys (its id,
//! its family). On one server (or a proxy in front of a cluster) that is one `MGET`: checking
//! a session token is one command and one round trip. (The agent's revocation time was a hash
//! before; a revocation stored in that form is no longer read.)
//!
//! # Redis Cluster
//!
//! With `cluster: true` the URL names one node of a Redis Cluster (the seed; see
//! [`RedisConfig`]) and the store routes every command to the primary serving its key's slot,
//! following `MOVED` and `ASK` redirections and reloading the slots after a failover or a
//! resharding. A token's keys lie in slots of their own, not the agent's: a command across
//! slots would be refused (`CROSSSLOT`) and the cluster client sends a pipeline to one node, so
//! on a cluster `standing` is a pipeline of the agent's two reads and one `EXISTS` per token
//! key, all sent at once: one round trip to each node involved, in parallel. While the node
//! serving a key is unreachable, every operation on that key fails (a token whose id or family
//! cannot be read is denied, never taken as unrevoked); the other nodes keep answering for
//! theirs, and the store reconnects to the node when it is back. The readiness probe reads from
//! the primary of every slot range, and fails unless all of them answer and every slot is
//! served.
//!
//! # Atomicity
//!
//! `claim_once` is one `SET NX`; `add_failure`, `revoke` and `revoke_agent` are Lua scripts
//! (`EVALSHA`, on one key each), so racing replicas neither lose a failure nor shorten a
//! revocation.

mod config;
mod error;
mod store;

pub use config::RedisConfig;
pub use error::Error;
pub use store::RedisStateStore;
