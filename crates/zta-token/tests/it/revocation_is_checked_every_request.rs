//! Revocation by token id and agent-wide, checked on every request including cache hits.

use crate::common;

use common::*;
use zta_core::{AgentId, AuthError, TokenAuthority};

#[tokio::test]
async fn revoked_token_is_refused_even_after_being_cached() {
    let f = fixture();
    let tokens = f.service.issue(&principal()).await.unwrap();
    let sibling = f.service.issue(&principal()).await.unwrap();
    assert!(common::verify(&f.service, &tokens.access_token).await.is_ok()); // now cached
    f.service.revoke_token(&tokens.access_token).await.unwrap();
    assert_eq!(common::verify(&f.service, &tokens.access_token).await, Err(AuthError::Revoked));
    assert_eq!(common::verify(&f.service, &tokens.access_token).await, Err(AuthError::Revoked));
    // Only that token.
    assert!(common::verify(&f.service, &sibling.access_token).await.is_ok());
}

#[tokio::test]
async fn revoked_refresh_token_cannot_refresh() {
    let f = fixture();
    let tokens = f.service.issue(&principal()).await.unwrap();
    f.service.revoke_token(&tokens.refresh_token).await.unwrap();
    assert_eq!(f.service.refresh(&tokens.refresh_token).await.unwrap_err(), AuthError::Revoked);
}

#[tokio::test]
async fn revoking_an_agent_kills_all_its_tokens() {
    let clock = TestClock::new();
    let f = fixture();
    let service = clock.install(f.service);
    let a = service.issue(&principal()).await.unwrap();
    let b = service.issue(&principal()).await.unwrap();
    let bystander = service.issue(&principal_for("writer_bot")).await.unwrap();
    assert!(common::verify(&service, &a.access_token).await.is_ok()); // cached

    service.revoke_agent(&AgentId::new(AGENT).unwrap()).await.unwrap();
    assert_eq!(common::verify(&service, &a.access_token).await, Err(AuthError::Revoked));
    assert_eq!(common::verify(&service, &b.access_token).await, Err(AuthError::Revoked));
    assert_eq!(service.refresh(&b.refresh_token).await.unwrap_err(), AuthError::Revoked);
    assert!(common::verify(&service, &bystander.access_token).await.is_ok());

    // Documented: iat has second precision, so a token issued in the same second as the
    // revocation is revoked too; one issued a second later works.
    let same_second = service.issue(&principal()).await.unwrap();
    assert_eq!(common::verify(&service, &same_second.access_token).await, Err(AuthError::Revoked));
    clock.advance(1);
    let later = service.issue(&principal()).await.unwrap();
    assert!(common::verify(&service, &later.access_token).await.is_ok());
}

#[tokio::test]
async fn revoke_token_refuses_forgeries() {
    let f = fixture();
    let tokens = f.service.issue(&principal()).await.unwrap();
    let mut parts: Vec<String> = access(&tokens).split('.').map(str::to_owned).collect();
    let mut claims = segment(access(&tokens), 1);
    claims["jti"] = serde_json::json!("someone-elses-jti");
    parts[1] = b64(&claims);
    assert!(f.service.revoke_token(&secret(&parts.join("."))).await.is_err());
    assert!(f.service.revoke_token(&secret("garbage")).await.is_err());
    // The real token is untouched.
    assert!(common::verify(&f.service, &tokens.access_token).await.is_ok());
}
