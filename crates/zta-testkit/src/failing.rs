//! A state store that fails on demand, for testing that its callers fail closed.

use std::{
    sync::atomic::{AtomicU16, Ordering},
    time::Duration,
};

use async_trait::async_trait;
use time::OffsetDateTime;
use zta_core::{AgentId, MemoryStateStore, Standing, StateError, StateStore};

/// One [`StateStore`] operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateOp {
    /// [`StateStore::revoke`].
    Revoke,
    /// [`StateStore::revoke_agent`].
    RevokeAgent,
    /// [`StateStore::standing`].
    Standing,
    /// [`StateStore::suspend`].
    Suspend,
    /// [`StateStore::reinstate`].
    Reinstate,
    /// [`StateStore::is_suspended`].
    IsSuspended,
    /// [`StateStore::add_failure`].
    AddFailure,
    /// [`StateStore::failures`].
    Failures,
    /// [`StateStore::clear_failures`].
    ClearFailures,
    /// [`StateStore::claim_once`].
    ClaimOnce,
}

impl StateOp {
    /// Every operation.
    pub const ALL: [Self; 10] = [
        Self::Revoke,
        Self::RevokeAgent,
        Self::Standing,
        Self::Suspend,
        Self::Reinstate,
        Self::IsSuspended,
        Self::AddFailure,
        Self::Failures,
        Self::ClearFailures,
        Self::ClaimOnce,
    ];

    fn bit(self) -> u16 {
        1 << self as u16
    }
}

/// A [`MemoryStateStore`] whose chosen operations fail with a [`StateError`] (as an unreachable
/// shared store would) until [`FailingStore::recover`].
#[derive(Debug, Default)]
pub struct FailingStore {
    inner: MemoryStateStore,
    failing: AtomicU16,
}

impl FailingStore {
    /// A store that works until told to fail.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes `ops` fail from now on (in addition to any already failing).
    pub fn fail(&self, ops: &[StateOp]) {
        let bits = ops.iter().fold(0, |bits, op| bits | op.bit());
        self.failing.fetch_or(bits, Ordering::SeqCst);
    }

    /// Makes every operation work again.
    pub fn recover(&self) {
        self.failing.store(0, Ordering::SeqCst);
    }

    fn check(&self, op: StateOp) -> Result<(), StateError> {
        if self.failing.load(Ordering::SeqCst) & op.bit() == 0 {
            Ok(())
        } else {
            Err(StateError::unavailable(format!("{op:?}: connection refused")))
        }
    }
}

#[async_trait]
impl StateStore for FailingStore {
    async fn revoke(&self, key: &str, until: OffsetDateTime) -> Result<(), StateError> {
        self.check(StateOp::Revoke)?;
        self.inner.revoke(key, until).await
    }
    async fn revoke_agent(&self, agent: &AgentId, at: OffsetDateTime) -> Result<(), StateError> {
        self.check(StateOp::RevokeAgent)?;
        self.inner.revoke_agent(agent, at).await
    }
    async fn suspend(&self, agent: &AgentId) -> Result<(), StateError> {
        self.check(StateOp::Suspend)?;
        self.inner.suspend(agent).await
    }
    async fn reinstate(&self, agent: &AgentId) -> Result<(), StateError> {
        self.check(StateOp::Reinstate)?;
        self.inner.reinstate(agent).await
    }
    async fn is_suspended(&self, agent: &AgentId) -> Result<bool, StateError> {
        self.check(StateOp::IsSuspended)?;
        self.inner.is_suspended(agent).await
    }
    async fn standing<'k>(
        &self,
        keys: &[&'k str],
        agent: &AgentId,
        issued_at: OffsetDateTime,
    ) -> Result<Standing, StateError> {
        self.check(StateOp::Standing)?;
        self.inner.standing(keys, agent, issued_at).await
    }
    async fn add_failure(&self, key: &str, window: Duration) -> Result<u32, StateError> {
        self.check(StateOp::AddFailure)?;
        self.inner.add_failure(key, window).await
    }
    async fn failures(&self, key: &str) -> Result<u32, StateError> {
        self.check(StateOp::Failures)?;
        self.inner.failures(key).await
    }
    async fn clear_failures(&self, key: &str) -> Result<(), StateError> {
        self.check(StateOp::ClearFailures)?;
        self.inner.clear_failures(key).await
    }
    async fn claim_once(&self, id: &str, until: OffsetDateTime) -> Result<bool, StateError> {
        self.check(StateOp::ClaimOnce)?;
        self.inner.claim_once(id, until).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn chosen_operations_fail_until_recovered() {
        let store = FailingStore::new();
        let agent = AgentId::new("a").unwrap();
        let now = OffsetDateTime::now_utc();
        store.fail(&[StateOp::Failures, StateOp::ClaimOnce]);
        assert!(store.failures("k").await.is_err());
        assert!(store.claim_once("id", now).await.is_err());
        assert_eq!(store.add_failure("k", Duration::from_secs(60)).await.unwrap(), 1);
        assert!(!store.standing(&["k"], &agent, now).await.unwrap().revoked);
        store.recover();
        assert_eq!(store.failures("k").await.unwrap(), 1);
        store.fail(&StateOp::ALL);
        for op in StateOp::ALL {
            assert!(store.check(op).is_err(), "{op:?}");
        }
    }
}
