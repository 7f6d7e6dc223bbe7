//! The state suite fails a store that breaks any one contract, with a message naming it, and
//! passes the in-process store. Each broken store is `MemoryStateStore` with one fault.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use async_trait::async_trait;
use time::OffsetDateTime;
use tokio::sync::Barrier;
use zta_core::{AgentId, MemoryStateStore, Standing, StateError, StateStore};
use zta_testkit::state;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// `standing` ignores `until`.
    RevocationNeverExpires,
    /// `revoke` replaces the end time instead of keeping the later one.
    RevokeOverwrites,
    /// `standing` matches prefixes.
    RevocationMatchesPrefixes,
    /// `revoke_agent` replaces the time instead of keeping the later one.
    AgentRevocationOverwrites,
    /// `revoke_agent` keeps whole seconds only.
    AgentRevocationInSeconds,
    /// `standing` looks at the first key only.
    OnlyFirstKey,
    /// `standing` ignores the agent when it is given keys.
    AgentIgnoredWithKeys,
    /// `reinstate` does nothing.
    ReinstateDoesNothing,
    /// `is_suspended` compares ids ignoring case.
    SuspensionIgnoresCase,
    /// `suspend` is a revocation of the agent's tokens.
    SuspensionIsRevocation,
    /// `standing` never reports a suspension.
    StandingIgnoresSuspension,
    /// `add_failure` ignores that a window has ended.
    WindowNeverEnds,
    /// `clear_failures` does nothing.
    ClearDoesNothing,
    /// `add_failure` reads, then writes: racing callers all read the same count.
    FailureLostUpdate,
    /// `claim_once` checks, then inserts: racing claims all win.
    ClaimCheckThenInsert,
    /// A claim with another `until` counts as new.
    ClaimKeyedByUntil,
    /// One-time ids share the revocation map.
    ClaimsShareRevocations,
}

#[derive(Debug)]
struct Faulty {
    inner: MemoryStateStore,
    fault: Fault,
    revoked: Mutex<HashMap<String, OffsetDateTime>>,
    agents: Mutex<HashMap<AgentId, OffsetDateTime>>,
    counts: Mutex<HashMap<String, u32>>,
    claims: Mutex<HashMap<String, OffsetDateTime>>,
    race: Barrier,
}

fn faulty(fault: Fault, racers: usize) -> Arc<dyn StateStore> {
    Arc::new(Faulty {
        inner: MemoryStateStore::new(),
        fault,
        revoked: Mutex::default(),
        agents: Mutex::default(),
        counts: Mutex::default(),
        claims: Mutex::default(),
        race: Barrier::new(racers),
    })
}

#[async_trait]
impl StateStore for Faulty {
    async fn revoke(&self, key: &str, until: OffsetDateTime) -> Result<(), StateError> {
        match self.fault {
            Fault::RevocationNeverExpires | Fault::RevokeOverwrites | Fault::RevocationMatchesPrefixes => {
                self.revoked.lock().unwrap().insert(key.to_owned(), until);
                Ok(())
            }
            _ => self.inner.revoke(key, until).await,
        }
    }
    async fn revoke_agent(&self, agent: &AgentId, at: OffsetDateTime) -> Result<(), StateError> {
        match self.fault {
            Fault::AgentRevocationOverwrites => {
                self.agents.lock().unwrap().insert(agent.clone(), at);
                Ok(())
            }
            Fault::AgentRevocationInSeconds => {
                self.inner.revoke_agent(agent, at.replace_nanosecond(0).unwrap()).await
            }
            _ => self.inner.revoke_agent(agent, at).await,
        }
    }
    async fn suspend(&self, agent: &AgentId) -> Result<(), StateError> {
        if self.fault == Fault::SuspensionIsRevocation {
            self.inner.revoke_agent(agent, OffsetDateTime::now_utc() + time::Duration::days(1)).await?;
        }
        self.inner.suspend(agent).await
    }
    async fn reinstate(&self, agent: &AgentId) -> Result<(), StateError> {
        match self.fault {
            Fault::ReinstateDoesNothing => Ok(()),
            _ => self.inner.reinstate(agent).await,
        }
    }
    async fn is_suspended(&self, agent: &AgentId) -> Result<bool, StateError> {
        match self.fault {
            Fault::SuspensionIgnoresCase => {
                let lower = AgentId::new(agent.as_str().to_lowercase()).unwrap();
                Ok(self.inner.is_suspended(agent).await? || self.inner.is_suspended(&lower).await?)
            }
            _ => self.inner.is_suspended(agent).await,
        }
    }
    async fn standing<'k>(
        &self,
        keys: &[&'k str],
        agent: &AgentId,
        issued_at: OffsetDateTime,
    ) -> Result<Standing, StateError> {
        let suspended = self.fault != Fault::StandingIgnoresSuspension && self.is_suspended(agent).await?;
        Ok(Standing { revoked: self.revoked(keys, agent, issued_at).await?, suspended })
    }
    async fn add_failure(&self, key: &str, window: Duration) -> Result<u32, StateError> {
        match self.fault {
            Fault::WindowNeverEnds => self.inner.add_failure(key, Duration::from_secs(3600)).await,
            Fault::FailureLostUpdate => {
                let read = self.counts.lock().unwrap().get(key).copied().unwrap_or(0);
                self.race.wait().await; // every racer has read before anyone writes
                self.counts.lock().unwrap().insert(key.to_owned(), read + 1);
                Ok(read + 1)
            }
            _ => self.inner.add_failure(key, window).await,
        }
    }
    async fn failures(&self, key: &str) -> Result<u32, StateError> {
        match self.fault {
            Fault::FailureLostUpdate => Ok(self.counts.lock().unwrap().get(key).copied().unwrap_or(0)),
            _ => self.inner.failures(key).await,
        }
    }
    async fn clear_failures(&self, key: &str) -> Result<(), StateError> {
        match self.fault {
            Fault::ClearDoesNothing => Ok(()),
            _ => self.inner.clear_failures(key).await,
        }
    }
    async fn claim_once(&self, id: &str, until: OffsetDateTime) -> Result<bool, StateError> {
        match self.fault {
            Fault::ClaimCheckThenInsert => {
                let taken = self.claims.lock().unwrap().contains_key(id);
                self.race.wait().await; // every racer has checked before anyone inserts
                self.claims.lock().unwrap().insert(id.to_owned(), until);
                Ok(!taken)
            }
            Fault::ClaimKeyedByUntil => self.inner.claim_once(&format!("{id}@{until}"), until).await,
            Fault::ClaimsShareRevocations => {
                let fresh = self.revoked.lock().unwrap().insert(id.to_owned(), until).is_none();
                let nobody = AgentId::new("nobody").unwrap();
                Ok(fresh && !self.inner.standing(&[id], &nobody, until).await?.revoked)
            }
            _ => self.inner.claim_once(id, until).await,
        }
    }
}

impl Faulty {
    /// Whether the token is revoked, with this store's fault.
    async fn revoked(
        &self,
        keys: &[&str],
        agent: &AgentId,
        issued_at: OffsetDateTime,
    ) -> Result<bool, StateError> {
        let now = OffsetDateTime::now_utc();
        let own = |check: &dyn Fn(&HashMap<String, OffsetDateTime>, &str) -> bool| {
            let map = self.revoked.lock().unwrap();
            keys.iter().any(|key| check(&map, key))
        };
        let live = |m: &HashMap<String, OffsetDateTime>, key: &str| m.get(key).is_some_and(|u| *u > now);
        // Revocations kept in `revoked` by the faulty `revoke`; the agent's from the inner store.
        let own_keys = match self.fault {
            Fault::RevocationNeverExpires => own(&|m, key| m.contains_key(key)),
            Fault::RevokeOverwrites | Fault::ClaimsShareRevocations => own(&live),
            Fault::RevocationMatchesPrefixes => own(&|m, key| {
                m.iter().any(|(k, u)| *u > now && (k.starts_with(key) || key.starts_with(k.as_str())))
            }),
            Fault::AgentRevocationOverwrites => {
                self.agents.lock().unwrap().get(agent).is_some_and(|at| issued_at <= *at)
            }
            Fault::OnlyFirstKey => {
                return Ok(self
                    .inner
                    .standing(keys.get(..1).unwrap_or_default(), agent, issued_at)
                    .await?
                    .revoked);
            }
            Fault::AgentIgnoredWithKeys if !keys.is_empty() => {
                let nobody = AgentId::new("nobody").unwrap();
                return Ok(self.inner.standing(keys, &nobody, issued_at).await?.revoked);
            }
            _ => false,
        };
        Ok(own_keys || self.inner.standing(keys, agent, issued_at).await?.revoked)
    }
}

fn store(fault: Fault) -> Arc<dyn StateStore> {
    faulty(fault, 1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_memory_store_passes() {
    state::run_all(|| Arc::new(MemoryStateStore::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[should_panic(expected = "a key revoked until a time already past is still revoked")]
async fn revocation_that_never_expires_fails() {
    state::revocation(store(Fault::RevocationNeverExpires)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[should_panic(expected = "lifted a revocation still in force")]
async fn revocation_shortened_by_a_later_revoke_fails() {
    state::revocation(store(Fault::RevokeOverwrites)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[should_panic(expected = "also revoked the different key")]
async fn revocation_by_prefix_fails() {
    state::revocation(store(Fault::RevocationMatchesPrefixes)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[should_panic(expected = "an earlier revoke_agent replaced the latest revocation time")]
async fn agent_revocation_moved_back_fails() {
    state::agent_revocation(store(Fault::AgentRevocationOverwrites)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[should_panic(expected = "a token issued at or before the agent's revocation time is not revoked")]
async fn agent_revocation_losing_precision_fails() {
    state::agent_revocation(store(Fault::AgentRevocationInSeconds)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[should_panic(expected = "a token whose second key (its family) is revoked is not revoked")]
async fn a_store_reading_one_key_fails() {
    state::token_revocation(store(Fault::OnlyFirstKey)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[should_panic(expected = "a token whose keys are not revoked but whose agent is, is not revoked")]
async fn a_store_ignoring_the_agent_fails() {
    state::token_revocation(store(Fault::AgentIgnoredWithKeys)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[should_panic(expected = "a reinstated agent is still suspended")]
async fn a_suspension_that_cannot_be_lifted_fails() {
    state::suspension(store(Fault::ReinstateDoesNothing)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[should_panic(expected = "suspending one agent suspended another")]
async fn a_suspension_ignoring_case_fails() {
    state::suspension(store(Fault::SuspensionIgnoresCase)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[should_panic(expected = "suspension and revocation are separate")]
async fn a_suspension_stored_as_a_revocation_fails() {
    state::suspension(store(Fault::SuspensionIsRevocation)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[should_panic(expected = "`standing` (asked about 0 keys) and `is_suspended` disagree")]
async fn a_standing_blind_to_suspensions_fails() {
    state::suspension(store(Fault::StandingIgnoresSuspension)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[should_panic(expected = "did not restart the count at 1")]
async fn a_window_that_never_ends_fails() {
    state::lockout_window_restarts(store(Fault::WindowNeverEnds)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[should_panic(expected = "clear_failures left failures")]
async fn clear_failures_doing_nothing_fails() {
    state::lockout_counters(store(Fault::ClearDoesNothing)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[should_panic(expected = "racing add_failure calls did not each count once")]
async fn a_lost_failure_update_fails() {
    state::concurrent_failures(faulty(Fault::FailureLostUpdate, state::RACING_FAILURES as usize)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[should_panic(expected = "racing claims of one id: 32 succeeded, exactly one must")]
async fn a_racy_claim_fails() {
    state::concurrent_claims(faulty(Fault::ClaimCheckThenInsert, state::RACING_CLAIMS)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[should_panic(expected = "a claim with a different `until` succeeded (a replay)")]
async fn a_replay_with_another_expiry_fails() {
    state::one_time_ids(store(Fault::ClaimKeyedByUntil)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[should_panic(expected = "counts as a claimed one-time id")]
async fn shared_key_spaces_fail() {
    state::separate_key_spaces(store(Fault::ClaimsShareRevocations)).await;
}

#[tokio::test]
#[should_panic(expected = "needs a multi-thread runtime")]
async fn race_checks_refuse_a_single_thread() {
    state::concurrent_failures(Arc::new(MemoryStateStore::new())).await;
}
