//! If the state store fails, authentication fails closed with `Unavailable`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use common::*;
use time::OffsetDateTime;
use zta_core::{AgentId, AuthError, Credential, IdentityProvider, MemoryStateStore, StateError, StateStore};
use zta_identity_static::{AgentKey, StaticProvider};

/// Fails the operations named in `broken`; forwards the rest to a memory store.
#[derive(Debug)]
struct Broken {
    inner: MemoryStateStore,
    broken: &'static [&'static str],
}

impl Broken {
    fn check(&self, op: &str) -> Result<(), StateError> {
        if self.broken.contains(&op) { Err(StateError(format!("{op} is down"))) } else { Ok(()) }
    }
}

#[async_trait]
impl StateStore for Broken {
    async fn revoke(&self, key: &str, until: OffsetDateTime) -> Result<(), StateError> {
        self.check("revoke")?;
        self.inner.revoke(key, until).await
    }
    async fn revoke_agent(&self, agent: &AgentId, at: OffsetDateTime) -> Result<(), StateError> {
        self.check("revoke_agent")?;
        self.inner.revoke_agent(agent, at).await
    }
    async fn is_revoked<'k>(
        &self,
        keys: &[&'k str],
        agent: &AgentId,
        issued_at: OffsetDateTime,
    ) -> Result<bool, StateError> {
        self.check("is_revoked")?;
        self.inner.is_revoked(keys, agent, issued_at).await
    }
    async fn add_failure(&self, key: &str, window: Duration) -> Result<u32, StateError> {
        self.check("add_failure")?;
        self.inner.add_failure(key, window).await
    }
    async fn failures(&self, key: &str) -> Result<u32, StateError> {
        self.check("failures")?;
        self.inner.failures(key).await
    }
    async fn clear_failures(&self, key: &str) -> Result<(), StateError> {
        self.check("clear_failures")?;
        self.inner.clear_failures(key).await
    }
    async fn claim_once(&self, id: &str, until: OffsetDateTime) -> Result<bool, StateError> {
        self.check("claim_once")?;
        self.inner.claim_once(id, until).await
    }
}

fn provider(broken: &'static [&'static str]) -> (StaticProvider, AgentKey) {
    let alice = AgentKey::generate().unwrap();
    let bob = AgentKey::generate().unwrap();
    let state = Arc::new(Broken { inner: MemoryStateStore::new(), broken });
    (StaticProvider::new(config(&alice, &bob, &secret_hash()), state).unwrap(), alice)
}

fn is_unavailable(err: &AuthError) -> bool {
    matches!(err, AuthError::Unavailable { .. })
}

#[tokio::test]
async fn each_broken_operation_denies() {
    for op in ["failures", "add_failure", "clear_failures"] {
        let (p, alice) = provider(Box::leak(Box::new([op])));
        let err = p.authenticate(&assertion(&alice, "alice")).await.unwrap_err();
        assert!(is_unavailable(&err), "{op}: {err:?}");
        let err = p.authenticate(&Credential::password("writer", SECRET)).await.unwrap_err();
        assert!(is_unavailable(&err), "{op}: {err:?}");
    }
}

#[tokio::test]
async fn broken_replay_store_denies_valid_assertions() {
    let (p, alice) = provider(&["claim_once"]);
    let err = p.authenticate(&assertion(&alice, "alice")).await.unwrap_err();
    assert!(is_unavailable(&err), "{err:?}");
    // Secrets do not need the replay store.
    p.authenticate(&Credential::password("writer", SECRET)).await.unwrap();
}

#[tokio::test]
async fn working_store_works() {
    let (p, alice) = provider(&[]);
    p.authenticate(&assertion(&alice, "alice")).await.unwrap();
}
