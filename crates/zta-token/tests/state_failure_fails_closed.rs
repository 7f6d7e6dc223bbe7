//! When the revocation store fails, tokens are refused (`Unavailable`), cached or not.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
use common::*;
use time::OffsetDateTime;
use zta_core::{AgentId, AuthError, MemoryStateStore, StateError, StateStore, TokenAuthority};
use zta_token::{Algorithm, SigningKey, TokenService};

/// A memory store that can be switched to fail every call.
#[derive(Debug, Default)]
struct FlakyStore {
    inner: MemoryStateStore,
    down: AtomicBool,
}

impl FlakyStore {
    fn check(&self) -> Result<(), StateError> {
        if self.down.load(Ordering::SeqCst) { Err(StateError("connection refused".into())) } else { Ok(()) }
    }
}

#[async_trait]
impl StateStore for FlakyStore {
    async fn revoke(&self, key: &str, until: OffsetDateTime) -> Result<(), StateError> {
        self.check()?;
        self.inner.revoke(key, until).await
    }
    async fn revoke_agent(&self, agent: &AgentId, at: OffsetDateTime) -> Result<(), StateError> {
        self.check()?;
        self.inner.revoke_agent(agent, at).await
    }
    async fn is_revoked<'k>(
        &self,
        keys: &[&'k str],
        agent: &AgentId,
        issued_at: OffsetDateTime,
    ) -> Result<bool, StateError> {
        self.check()?;
        self.inner.is_revoked(keys, agent, issued_at).await
    }
    async fn add_failure(&self, key: &str, window: Duration) -> Result<u32, StateError> {
        self.check()?;
        self.inner.add_failure(key, window).await
    }
    async fn failures(&self, key: &str) -> Result<u32, StateError> {
        self.check()?;
        self.inner.failures(key).await
    }
    async fn clear_failures(&self, key: &str) -> Result<(), StateError> {
        self.check()?;
        self.inner.clear_failures(key).await
    }
    async fn claim_once(&self, id: &str, until: OffsetDateTime) -> Result<bool, StateError> {
        self.check()?;
        self.inner.claim_once(id, until).await
    }
}

#[tokio::test]
async fn store_outage_refuses_tokens() {
    let store = Arc::new(FlakyStore::default());
    let service =
        TokenService::new(config(), SigningKey::generate(Algorithm::EdDSA).unwrap(), store.clone()).unwrap();
    let tokens = service.issue(&principal()).await.unwrap();
    let fresh = service.issue(&principal()).await.unwrap();
    assert!(service.verify(&tokens.access_token).await.is_ok()); // cached

    store.down.store(true, Ordering::SeqCst);
    assert!(matches!(service.verify(&tokens.access_token).await, Err(AuthError::Unavailable { .. })));
    assert!(matches!(service.verify(&fresh.access_token).await, Err(AuthError::Unavailable { .. })));
    assert!(matches!(service.refresh(&tokens.refresh_token).await, Err(AuthError::Unavailable { .. })));
    assert!(service.revoke_token(&tokens.access_token).await.is_err());
    assert!(service.revoke_agent(&AgentId::new(AGENT).unwrap()).await.is_err());

    store.down.store(false, Ordering::SeqCst);
    assert!(service.verify(&tokens.access_token).await.is_ok());
    assert!(service.refresh(&tokens.refresh_token).await.is_ok());
}
