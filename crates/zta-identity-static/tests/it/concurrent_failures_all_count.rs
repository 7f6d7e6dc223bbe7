//! Concurrent wrong attempts are each counted exactly once, and concurrency cannot be used to
//! get more guesses than the lockout allows.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use crate::common;

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
use common::*;
use time::OffsetDateTime;
use tokio::sync::Barrier;
use zta_core::{
    AgentId, AuthError, Credential, IdentityProvider, MemoryStateStore, Standing, StateError, StateStore,
};
use zta_identity_static::{AgentKey, StaticProvider};

async fn hammer(f: &Arc<Fixture>, n: usize) -> Vec<AuthError> {
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let f = f.clone();
            tokio::spawn(async move {
                f.provider
                    .authenticate(&Credential::password("writer", format!("wrong-{i}")))
                    .await
                    .unwrap_err()
            })
        })
        .collect();
    let mut errors = Vec::with_capacity(n);
    for task in tasks {
        errors.push(task.await.unwrap());
    }
    errors
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forty_concurrent_wrong_secrets_count_forty() {
    let f = Arc::new(fixture_with(|mut c| {
        c.lockout.max_failures = 100;
        c
    }));
    let errors = hammer(&f, 40).await;
    assert!(errors.iter().all(is_invalid), "{errors:?}");
    assert_eq!(f.state.failures("lockout:writer").await.unwrap(), 40);
}

/// A memory store whose first `racers` `failures` reads all wait for each other, so every
/// attempt reads the count before any attempt adds to it: the worst interleaving a shared
/// network store allows.
#[derive(Debug)]
struct RacyStore {
    inner: MemoryStateStore,
    reads: AtomicUsize,
    racers: usize,
    barrier: Barrier,
}

#[async_trait]
impl StateStore for RacyStore {
    async fn revoke(&self, key: &str, until: OffsetDateTime) -> Result<(), StateError> {
        self.inner.revoke(key, until).await
    }
    async fn revoke_agent(&self, agent: &AgentId, at: OffsetDateTime) -> Result<(), StateError> {
        self.inner.revoke_agent(agent, at).await
    }
    async fn suspend(&self, agent: &AgentId) -> Result<(), StateError> {
        self.inner.suspend(agent).await
    }
    async fn reinstate(&self, agent: &AgentId) -> Result<(), StateError> {
        self.inner.reinstate(agent).await
    }
    async fn is_suspended(&self, agent: &AgentId) -> Result<bool, StateError> {
        self.inner.is_suspended(agent).await
    }
    async fn standing<'k>(
        &self,
        keys: &[&'k str],
        agent: &AgentId,
        issued_at: OffsetDateTime,
    ) -> Result<Standing, StateError> {
        self.inner.standing(keys, agent, issued_at).await
    }
    async fn add_failure(&self, key: &str, window: Duration) -> Result<u32, StateError> {
        self.inner.add_failure(key, window).await
    }
    async fn failures(&self, key: &str) -> Result<u32, StateError> {
        let count = self.inner.failures(key).await;
        if self.reads.fetch_add(1, Ordering::SeqCst) < self.racers {
            self.barrier.wait().await;
        }
        count
    }
    async fn clear_failures(&self, key: &str) -> Result<(), StateError> {
        self.inner.clear_failures(key).await
    }
    async fn claim_once(&self, id: &str, until: OffsetDateTime) -> Result<bool, StateError> {
        self.inner.claim_once(id, until).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_guesses_all_count_but_only_the_allowance_is_verified() {
    const RACERS: usize = 40;
    let alice = AgentKey::generate().unwrap();
    let bob = AgentKey::generate().unwrap();
    let state = Arc::new(RacyStore {
        inner: MemoryStateStore::new(),
        reads: AtomicUsize::new(0),
        racers: RACERS,
        barrier: Barrier::new(RACERS),
    });
    // max_failures = 5 (the default)
    let provider = Arc::new(
        StaticProvider::new(config(&alice, &bob, &secret_hash()), state.clone() as Arc<dyn StateStore>)
            .unwrap(),
    );
    let tasks: Vec<_> = (0..RACERS)
        .map(|i| {
            let p = provider.clone();
            tokio::spawn(async move {
                p.authenticate(&Credential::password("writer", format!("wrong-{i}"))).await.unwrap_err()
            })
        })
        .collect();
    let mut errors = Vec::new();
    for task in tasks {
        errors.push(task.await.unwrap());
    }
    // Every racer read a count of 0, and every one of them was counted...
    assert_eq!(state.failures("lockout:writer").await.unwrap(), 40);
    // ...but only the allowance reached argon2; the rest were refused up front.
    let verified = errors.iter().filter(|e| is_invalid(e)).count();
    let locked = errors.iter().filter(|e| **e == AuthError::LockedOut).count();
    assert_eq!((verified, locked), (5, 35), "{errors:?}");
    let err = provider.authenticate(&Credential::password("writer", SECRET)).await.unwrap_err();
    assert_eq!(err, AuthError::LockedOut);
}
