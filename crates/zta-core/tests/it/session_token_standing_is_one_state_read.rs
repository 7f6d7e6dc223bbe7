//! A session token's check reads the shared state once: the token authority reports the
//! agent's suspension with the token's revocation, and the guard refuses a suspended agent
//! from that answer, naming it in the audit record, without asking the store again.
#![allow(clippy::unwrap_used, clippy::panic)]
use crate::common;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
use common::*;
use secrecy::SecretString;
use time::OffsetDateTime;
use zta_core::*;

/// Takes every bearer credential for a token of `research_bot`, suspended when `suspended`.
#[derive(Debug, Default)]
struct Tokens {
    suspended: AtomicBool,
}

#[async_trait]
impl TokenAuthority for Tokens {
    fn accepts(&self, credential: &Credential) -> bool {
        matches!(credential, Credential::Bearer(_))
    }
    async fn issue(&self, _: &Principal) -> Result<SessionTokens, TokenError> {
        Err(TokenError::Refused("not used here".into()))
    }
    async fn verify(&self, _: &SecretString) -> Result<VerifiedToken, AuthError> {
        let now = OffsetDateTime::now_utc();
        let principal = Principal::new(
            AgentId::new("research_bot").unwrap(),
            "zta",
            AuthMethod::AgentKey,
            now,
            now + time::Duration::minutes(5),
        );
        Ok(VerifiedToken::new(Arc::new(principal), self.suspended.load(Ordering::SeqCst)))
    }
    async fn refresh(&self, _: &SecretString) -> Result<(Principal, SessionTokens), AuthError> {
        Err(AuthError::invalid("not used here"))
    }
    async fn revoke_token(&self, _: &SecretString) -> Result<(), TokenError> {
        Ok(())
    }
    async fn revoke_agent(&self, _: &AgentId) -> Result<(), TokenError> {
        Ok(())
    }
}

/// The memory store, counting `is_suspended` calls.
#[derive(Debug, Default)]
struct Counting {
    inner: MemoryStateStore,
    suspension_reads: AtomicUsize,
}

#[async_trait]
impl StateStore for Counting {
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
        self.suspension_reads.fetch_add(1, Ordering::SeqCst);
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
        self.inner.failures(key).await
    }
    async fn clear_failures(&self, key: &str) -> Result<(), StateError> {
        self.inner.clear_failures(key).await
    }
    async fn claim_once(&self, id: &str, until: OffsetDateTime) -> Result<bool, StateError> {
        self.inner.claim_once(id, until).await
    }
}

#[tokio::test]
async fn a_session_token_is_not_followed_by_a_second_suspension_read() {
    let tokens = Arc::new(Tokens::default());
    let state = Arc::new(Counting::default());
    let sink = Arc::new(MemorySink::default());
    let guard = Guard::builder(Arc::new(allow_all()), sink.clone())
        .token_authority(tokens.clone())
        .state_store(state.clone())
        .build()
        .unwrap();
    let token = Credential::bearer("session-token");

    let _permit = guard.check(&token, Request::new(Action::task("t"))).await.unwrap();
    assert_eq!(state.suspension_reads.load(Ordering::SeqCst), 0, "the guard asked the store again");

    tokens.suspended.store(true, Ordering::SeqCst);
    let denied = guard.check(&token, Request::new(Action::task("t"))).await.unwrap_err();
    assert_eq!(denied.reason(), &DenyReason::Unauthenticated(AuthError::Suspended));
    let record = sink.last();
    assert_eq!(record.effect, Effect::Deny);
    assert_eq!(
        record.agent_id.as_ref().map(AgentId::as_str),
        Some("research_bot"),
        "the record names no agent"
    );
    assert_eq!(state.suspension_reads.load(Ordering::SeqCst), 0, "the guard asked the store again");

    // `authenticate` refuses the suspended agent too.
    assert_eq!(guard.authenticate(&token).await.unwrap_err(), AuthError::Suspended);
}

#[tokio::test]
async fn a_primary_credential_is_still_checked_for_suspension() {
    let state = Arc::new(Counting::default());
    let sink = Arc::new(MemorySink::default());
    let guard = Guard::builder(Arc::new(allow_all()), sink)
        .identity_provider(Arc::new(crew()))
        .state_store(state.clone())
        .build()
        .unwrap();
    let _permit = guard.check(&research(), Request::new(Action::task("t"))).await.unwrap();
    assert_eq!(state.suspension_reads.load(Ordering::SeqCst), 1);
    state.suspend(&AgentId::new("research_bot").unwrap()).await.unwrap();
    let denied = guard.check(&research(), Request::new(Action::task("t"))).await.unwrap_err();
    assert_eq!(denied.reason(), &DenyReason::Unauthenticated(AuthError::Suspended));
}
