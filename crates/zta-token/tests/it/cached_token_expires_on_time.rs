//! A cached token is still refused once it expires: the cache skips only the signature and
//! claims decode, never the time checks.

use crate::common;

use std::time::Duration;

use common::*;
use zta_core::{AuthError, TokenAuthority};
use zta_token::{Algorithm, SigningKey};

#[tokio::test]
async fn cached_token_is_refused_after_expiry() {
    let clock = TestClock::new();
    let f = fixture();
    let service = clock.install(f.service);
    let tokens = service.issue(&principal()).await.unwrap();
    assert!(common::verify(&service, &tokens.access_token).await.is_ok()); // decoded and cached

    clock.advance(300 + 4); // exp + 4 s: inside the 5 s leeway
    assert!(common::verify(&service, &tokens.access_token).await.is_ok());
    clock.advance(1); // exp + 5 s: the leeway is used up
    assert_eq!(common::verify(&service, &tokens.access_token).await, Err(AuthError::Expired));
    assert_eq!(common::verify(&service, &tokens.access_token).await, Err(AuthError::Expired));
}

#[tokio::test]
async fn cached_token_is_refused_before_nbf_under_a_clock_moved_back() {
    let clock = TestClock::new();
    let f = fixture();
    let service = clock.install(f.service);
    let tokens = service.issue(&principal()).await.unwrap();
    assert!(common::verify(&service, &tokens.access_token).await.is_ok());
    clock.advance(-10);
    assert_eq!(common::verify(&service, &tokens.access_token).await, Err(AuthError::NotYetValid));
}

#[tokio::test]
async fn disabled_cache_still_verifies_and_expires() {
    let clock = TestClock::new();
    let mut config = config();
    config.cache_capacity = 0;
    config.leeway = Duration::ZERO;
    let f = fixture_with(config, SigningKey::generate(Algorithm::EdDSA).unwrap());
    let service = clock.install(f.service);
    let tokens = service.issue(&principal()).await.unwrap();
    assert!(common::verify(&service, &tokens.access_token).await.is_ok());
    assert!(common::verify(&service, &tokens.access_token).await.is_ok());
    clock.advance(300);
    assert_eq!(common::verify(&service, &tokens.access_token).await, Err(AuthError::Expired));
}
