//! A refresh asks the identity provider that opened the session whether the identity still
//! holds; if not, or if that provider is gone, the session ends and the denial is audited.
#![allow(clippy::unwrap_used)]

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use async_trait::async_trait;
use secrecy::SecretString;
use time::OffsetDateTime;
use zta_core::*;

use crate::common::{MemorySink, allow_all};

/// A directory whose account can be disabled between login and refresh.
#[derive(Debug, Default)]
struct Directory {
    disabled: AtomicBool,
}

#[async_trait]
impl IdentityProvider for Directory {
    fn name(&self) -> &str {
        "directory"
    }
    fn accepts(&self, credential: &Credential) -> bool {
        matches!(credential, Credential::Password { .. })
    }
    async fn authenticate(&self, _: &Credential) -> Result<std::sync::Arc<Principal>, AuthError> {
        Err(AuthError::invalid("not used here"))
    }
    async fn revalidate(&self, principal: &Principal) -> Result<(), AuthError> {
        assert_eq!(principal.agent_id.as_str(), "research_bot");
        if self.disabled.load(Ordering::SeqCst) {
            return Err(AuthError::invalid("account disabled"));
        }
        Ok(())
    }
}

/// Refreshes any token into a session opened with `source`.
#[derive(Debug)]
struct Sessions {
    source: &'static str,
}

#[async_trait]
impl TokenAuthority for Sessions {
    fn accepts(&self, _: &Credential) -> bool {
        false
    }
    async fn issue(&self, _: &Principal) -> Result<SessionTokens, TokenError> {
        Err(TokenError::Refused("not used here".into()))
    }
    async fn verify(&self, _: &SecretString) -> Result<zta_core::VerifiedToken, AuthError> {
        Err(AuthError::invalid("not used here"))
    }
    async fn refresh(&self, _: &SecretString) -> Result<(Principal, SessionTokens), AuthError> {
        let now = OffsetDateTime::now_utc();
        let principal = Principal::new(
            AgentId::new("research_bot").unwrap(),
            "https://zta.example/",
            AuthMethod::SessionToken,
            now,
            now + time::Duration::minutes(5),
        )
        .with_source_issuer(self.source);
        let tokens = SessionTokens {
            access_token: SecretString::from("access"),
            refresh_token: SecretString::from("refresh"),
            expires_in: std::time::Duration::from_secs(300),
        };
        Ok((principal, tokens))
    }
    async fn revoke_token(&self, _: &SecretString) -> Result<(), TokenError> {
        Ok(())
    }
    async fn revoke_agent(&self, _: &AgentId) -> Result<(), TokenError> {
        Ok(())
    }
}

fn guard(directory: Arc<Directory>, source: &'static str, sink: Arc<MemorySink>) -> Guard {
    Guard::builder(Arc::new(allow_all()), sink)
        .identity_provider(directory)
        .token_authority(Arc::new(Sessions { source }))
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_disabled_account_cannot_refresh_its_session() {
    let directory = Arc::new(Directory::default());
    let sink = Arc::new(MemorySink::default());
    let g = guard(directory.clone(), "directory", sink.clone());
    let refresh = SecretString::from("r1");

    g.refresh(&refresh).await.unwrap();
    assert_eq!(sink.last().effect, Effect::Allow);

    directory.disabled.store(true, Ordering::SeqCst);
    let denied = g.refresh(&refresh).await.unwrap_err();
    assert_eq!(denied.reason(), &DenyReason::Unauthenticated(AuthError::invalid("account disabled")));
    let record = sink.last();
    assert_eq!((record.event, record.effect), (AuditEvent::TokenRefresh, Effect::Deny));
    assert_eq!(record.agent_id.as_ref().map(AgentId::as_str), Some("research_bot"));
}

#[tokio::test]
async fn a_session_whose_provider_is_gone_cannot_be_refreshed() {
    let sink = Arc::new(MemorySink::default());
    let g = guard(Arc::new(Directory::default()), "ldap-that-was-removed", sink.clone());
    let denied = g.refresh(&SecretString::from("r1")).await.unwrap_err();
    assert_eq!(
        denied.reason(),
        &DenyReason::Unauthenticated(AuthError::invalid(
            "the session's identity provider `ldap-that-was-removed` is no longer configured"
        ))
    );
    assert_eq!(sink.last().effect, Effect::Deny);
}
