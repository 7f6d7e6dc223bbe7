//! Shared security state: revocations, suspensions, failed-attempt counters, one-time ids.
//!
//! Token verification, lockout and replay protection keep their state behind [`StateStore`], so
//! several replicas can share it (Redis, PostgreSQL). [`MemoryStateStore`] serves one process.

use std::{
    collections::hash_map::RandomState,
    fmt::Debug,
    hash::BuildHasher,
    time::{Duration, SystemTime},
};

use std::sync::atomic::Ordering::SeqCst;

use async_trait::async_trait;
use dashmap::DashMap;
use time::OffsetDateTime;

use crate::AgentId;

/// A state backend failed. Callers on the request path deny.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// The backend could not be reached or did not answer in time: retrying later may work.
    #[error("state store unavailable: {detail}")]
    Unavailable {
        /// What failed (never a secret: stores scrub credentials out of it).
        detail: String,
        /// The backend's own error, where it carries no secret.
        #[source]
        source: Option<SharedError>,
    },
    /// The backend answered with an error or with data this store cannot read.
    #[error("state store failed: {detail}")]
    Failed {
        /// What failed.
        detail: String,
        /// The backend's own error, where it carries no secret.
        #[source]
        source: Option<SharedError>,
    },
}

/// An error kept as the cause of another, shareable between clones.
pub type SharedError = std::sync::Arc<dyn std::error::Error + Send + Sync>;

/// Equal when of the same kind with the same detail (the causes themselves are not comparable).
impl PartialEq for StateError {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Unavailable { detail: a, .. }, Self::Unavailable { detail: b, .. })
            | (Self::Failed { detail: a, .. }, Self::Failed { detail: b, .. }) => a == b,
            _ => false,
        }
    }
}

impl StateError {
    /// The backend could not be reached or did not answer in time.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::Unavailable { detail: detail.into(), source: None }
    }

    /// The backend answered with an error or unreadable data.
    pub fn failed(detail: impl Into<String>) -> Self {
        Self::Failed { detail: detail.into(), source: None }
    }

    /// Keeps `source` as the cause (only errors that carry no secret).
    #[must_use]
    pub fn with_source(mut self, cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        let (Self::Unavailable { source, .. } | Self::Failed { source, .. }) = &mut self;
        *source = Some(std::sync::Arc::new(cause));
        self
    }
}

/// Where a token stands in the shared state ([`StateStore::standing`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Standing {
    /// The token, its family or everything its agent held when it was issued is revoked.
    pub revoked: bool,
    /// Its agent is suspended.
    pub suspended: bool,
}

/// Revocations, suspensions, lockout counters and replay ids. Every operation is atomic.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait StateStore: Send + Sync + Debug + 'static {
    /// Marks `key` (a token id or token family) revoked until `until`, after which the store
    /// may forget it (the token has expired by then).
    async fn revoke(&self, key: &str, until: OffsetDateTime) -> Result<(), StateError>;

    /// Revokes everything issued to `agent` at or before `at`.
    async fn revoke_agent(&self, agent: &AgentId, at: OffsetDateTime) -> Result<(), StateError>;

    /// Suspends `agent` until [`reinstate`](Self::reinstate): while suspended, every
    /// credential of the agent is refused. Suspending a suspended agent changes nothing.
    async fn suspend(&self, agent: &AgentId) -> Result<(), StateError>;

    /// Lifts a suspension of `agent` (nothing happens if there is none).
    async fn reinstate(&self, agent: &AgentId) -> Result<(), StateError>;

    /// Whether `agent` is suspended.
    async fn is_suspended(&self, agent: &AgentId) -> Result<bool, StateError>;

    /// Where a token stands: revoked when one of `keys` (its id, its family) is revoked or
    /// `agent` was revoked at or after `issued_at`, and whether `agent` is suspended. Checking
    /// a token is this one call, so a shared store answers it in one round trip.
    async fn standing<'k>(
        &self,
        keys: &[&'k str],
        agent: &AgentId,
        issued_at: OffsetDateTime,
    ) -> Result<Standing, StateError>;

    /// Counts one failure for `key` and returns the failures in the current window (a fixed
    /// window of length `window` that starts at the first failure). Concurrent calls each count.
    async fn add_failure(&self, key: &str, window: Duration) -> Result<u32, StateError>;

    /// The failures for `key` in its current window.
    async fn failures(&self, key: &str) -> Result<u32, StateError>;

    /// Forgets the failures for `key` (after a success).
    async fn clear_failures(&self, key: &str) -> Result<(), StateError>;

    /// Claims the one-time id `id` until `until`. `true` the first time, `false` on every
    /// later claim before `until`: a replay.
    async fn claim_once(&self, id: &str, until: OffsetDateTime) -> Result<bool, StateError>;

    /// Whether the store answers now: a cheap probe for readiness checks (a shared store
    /// pings its server). The default, for a store in this process, always does.
    async fn ready(&self) -> Result<(), StateError> {
        Ok(())
    }
}

/// In-process [`StateStore`]. Expired entries are purged as new ones arrive, so memory stays
/// bounded by the number of live tokens and ids.
#[derive(Debug, Default)]
pub struct MemoryStateStore {
    // Read on every request. Their keys are token ids and families this process minted and
    // configured agent ids, never a caller's choice, so a fast hash is safe here; the maps
    // keyed by what callers send keep SipHash. Revocation ends are `SystemTime`s: comparing
    // one with the clock is cheaper than building an `OffsetDateTime`.
    revoked: Expiring<SystemTime, FastHash>,
    agents: DashMap<AgentId, OffsetDateTime, FastHash>,
    suspended: DashMap<AgentId, (), FastHash>,
    /// How many agents are suspended: with none (nearly always), a check hashes nothing.
    suspensions: std::sync::atomic::AtomicUsize,
    failures: Expiring<(u32, OffsetDateTime)>,
    claimed: Expiring<OffsetDateTime>,
}

type FastHash = foldhash::fast::RandomState;

/// The smallest size at which a map is swept for expired entries.
const PURGE_AT: usize = 4096;

/// A map whose entries expire. It is swept when it has doubled since the last sweep, so the
/// cost of sweeping stays proportional to the inserts (a sweep on every insert past a fixed size
/// would make each insert scan the whole map once many entries are live).
#[derive(Debug)]
struct Expiring<V, S: BuildHasher + Clone = RandomState> {
    map: DashMap<String, V, S>,
    sweep_at: std::sync::atomic::AtomicUsize,
}

impl<V, S: BuildHasher + Clone + Default> Default for Expiring<V, S> {
    fn default() -> Self {
        Self { map: DashMap::default(), sweep_at: std::sync::atomic::AtomicUsize::new(PURGE_AT) }
    }
}

impl<V, S: BuildHasher + Clone> Expiring<V, S> {
    fn sweep(&self, live: impl Fn(&V) -> bool) {
        use std::sync::atomic::Ordering::Relaxed;
        let len = self.map.len();
        if len < self.sweep_at.load(Relaxed).max(PURGE_AT) {
            return;
        }
        self.map.retain(|_, v| live(v));
        self.sweep_at.store(self.map.len().saturating_mul(2).max(PURGE_AT), Relaxed);
    }
}

impl<V, S: BuildHasher + Clone> std::ops::Deref for Expiring<V, S> {
    type Target = DashMap<String, V, S>;
    fn deref(&self) -> &Self::Target {
        &self.map
    }
}

impl MemoryStateStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl StateStore for MemoryStateStore {
    async fn revoke(&self, key: &str, until: OffsetDateTime) -> Result<(), StateError> {
        let until = SystemTime::from(until);
        let now = SystemTime::now();
        self.revoked.sweep(|until| *until > now);
        self.revoked.entry(key.to_owned()).and_modify(|u| *u = (*u).max(until)).or_insert(until);
        Ok(())
    }

    async fn revoke_agent(&self, agent: &AgentId, at: OffsetDateTime) -> Result<(), StateError> {
        self.agents.entry(agent.clone()).and_modify(|t| *t = (*t).max(at)).or_insert(at);
        Ok(())
    }

    async fn suspend(&self, agent: &AgentId) -> Result<(), StateError> {
        // Counted before the entry exists, so a check never sees zero while it does.
        self.suspensions.fetch_add(1, SeqCst);
        if self.suspended.insert(agent.clone(), ()).is_some() {
            self.suspensions.fetch_sub(1, SeqCst);
        }
        Ok(())
    }

    async fn reinstate(&self, agent: &AgentId) -> Result<(), StateError> {
        if self.suspended.remove(agent).is_some() {
            self.suspensions.fetch_sub(1, SeqCst);
        }
        Ok(())
    }

    async fn is_suspended(&self, agent: &AgentId) -> Result<bool, StateError> {
        Ok(self.suspensions.load(SeqCst) != 0 && self.suspended.contains_key(agent))
    }

    async fn standing<'k>(
        &self,
        keys: &[&'k str],
        agent: &AgentId,
        issued_at: OffsetDateTime,
    ) -> Result<Standing, StateError> {
        let revoked = self.agents.get(agent).is_some_and(|at| issued_at <= *at)
            // The clock is read only for a key that has a revocation (nearly never).
            || keys.iter().any(|key| self.revoked.get(*key).is_some_and(|until| *until > SystemTime::now()));
        Ok(Standing { revoked, suspended: self.is_suspended(agent).await? })
    }

    async fn add_failure(&self, key: &str, window: Duration) -> Result<u32, StateError> {
        let now = OffsetDateTime::now_utc();
        self.failures.sweep(|(_, end)| *end > now);
        // The entry guard holds the shard lock, so the read-modify-write is atomic.
        let mut entry = self.failures.entry(key.to_owned()).or_insert((0, now + window));
        let (count, end) = entry.value_mut();
        if *end <= now {
            *count = 0;
            *end = now + window;
        }
        *count = count.saturating_add(1);
        Ok(*count)
    }

    async fn failures(&self, key: &str) -> Result<u32, StateError> {
        let now = OffsetDateTime::now_utc();
        Ok(self.failures.get(key).map_or(0, |e| if e.1 > now { e.0 } else { 0 }))
    }

    async fn clear_failures(&self, key: &str) -> Result<(), StateError> {
        self.failures.remove(key);
        Ok(())
    }

    async fn claim_once(&self, id: &str, until: OffsetDateTime) -> Result<bool, StateError> {
        let now = OffsetDateTime::now_utc();
        self.claimed.sweep(|until| *until > now);
        let mut fresh = false;
        let mut entry = self.claimed.entry(id.to_owned()).or_insert_with(|| {
            fresh = true;
            until
        });
        if !fresh && *entry.value() <= now {
            // The earlier claim has lapsed; this is a new claim.
            *entry.value_mut() = until;
            fresh = true;
        }
        Ok(fresh)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_failures_all_count() {
        let store = Arc::new(MemoryStateStore::new());
        let tasks: Vec<_> = (0..40)
            .map(|_| {
                let s = store.clone();
                tokio::spawn(async move { s.add_failure("agent", Duration::from_secs(60)).await })
            })
            .collect();
        let mut seen = Vec::new();
        for t in tasks {
            seen.push(t.await.unwrap().unwrap());
        }
        seen.sort_unstable();
        assert_eq!(seen, (1..=40).collect::<Vec<_>>());
        assert_eq!(store.failures("agent").await.unwrap(), 40);
    }

    #[tokio::test]
    async fn one_time_ids_are_claimed_once() {
        let store = MemoryStateStore::new();
        let until = OffsetDateTime::now_utc() + time::Duration::minutes(1);
        assert!(store.claim_once("jti-1", until).await.unwrap());
        assert!(!store.claim_once("jti-1", until).await.unwrap());
        assert!(store.claim_once("jti-2", until).await.unwrap());
    }

    #[tokio::test]
    async fn expired_entries_are_swept_as_the_map_grows() {
        let store = MemoryStateStore::new();
        let past = OffsetDateTime::now_utc() - time::Duration::seconds(1);
        let future = OffsetDateTime::now_utc() + time::Duration::minutes(1);
        for i in 0..PURGE_AT {
            store.claim_once(&format!("old-{i}"), past).await.unwrap();
        }
        store.claim_once("live", future).await.unwrap();
        // The sweep ran at PURGE_AT entries: only the live one (and the one that triggered it) remain.
        assert!(store.claimed.len() <= 2, "{} entries left", store.claimed.len());
        assert!(!store.claim_once("live", future).await.unwrap(), "a live claim must survive the sweep");
    }

    #[tokio::test]
    async fn revocation_lasts_until_its_end() {
        let store = MemoryStateStore::new();
        let now = OffsetDateTime::now_utc();
        let agent = AgentId::new("agent").unwrap();
        store.revoke("a", now + time::Duration::minutes(1)).await.unwrap();
        store.revoke("b", now - time::Duration::seconds(1)).await.unwrap();
        assert!(store.standing(&["a"], &agent, now).await.unwrap().revoked);
        assert!(!store.standing(&["b"], &agent, now).await.unwrap().revoked);
        assert!(!store.standing(&["c"], &agent, now).await.unwrap().revoked);
    }
}
