//! After `rotate`, new tokens use the new key; the old key verifies until the rotation
//! overlap passes, then its tokens (cached or not) are refused and it leaves the JWKS.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use crate::common;

use std::time::Duration;

use common::*;
use zta_core::TokenAuthority;
use zta_token::{Algorithm, Error, SigningKey};

fn kids(jwks: &serde_json::Value) -> Vec<String> {
    jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn old_key_verifies_during_overlap_then_not() {
    let clock = TestClock::new();
    let mut config = config();
    config.rotation_overlap = Some(Duration::from_secs(600)); // 10 min; access 5 min, refresh 1 h
    let f = fixture_with(config, SigningKey::generate(Algorithm::EdDSA).unwrap());
    let service = clock.install(f.service);
    let old_kid = f.key.kid().to_owned();

    let before = service.issue(&principal()).await.unwrap();
    assert!(common::verify(&service, &before.access_token).await.is_ok()); // cached under the old key

    let new_key = SigningKey::generate(Algorithm::EdDSA).unwrap();
    service.rotate(new_key.clone()).unwrap();

    let after = service.issue(&principal()).await.unwrap();
    assert_eq!(segment(access(&after), 0)["kid"], new_key.kid());
    assert!(common::verify(&service, &after.access_token).await.is_ok());
    assert!(common::verify(&service, &before.access_token).await.is_ok());
    assert_eq!(kids(&service.jwks()), vec![old_kid.clone(), new_key.kid().to_owned()]);

    // A refresh during the overlap works and the new pair is signed by the new key.
    let (_, refreshed) = service.refresh(&before.refresh_token).await.unwrap();
    assert_eq!(segment(refresh(&refreshed), 0)["kid"], new_key.kid());

    // Past the overlap: the old key's refresh token (still within its 1 h life) is refused
    // because its key is retired, and the old key has left the JWKS.
    let other_old = {
        // A second pair from before the rotation would be ideal; craft one with the old key.
        let mut claims = access_claims();
        claims["exp"] = serde_json::json!(now() + 3000);
        sign_raw(&f.key, &access_header(&f.key), &claims)
    };
    assert!(common::verify(&service, &secret(&other_old)).await.is_ok()); // cached, old key, long exp
    clock.advance(601);
    assert_invalid(common::verify(&service, &secret(&other_old)).await, "retired");
    assert_eq!(kids(&service.jwks()), vec![new_key.kid().to_owned()]);
    assert!(common::verify(&service, &refreshed.access_token).await.is_err()); // expired by now (5 min)
    let fresh = service.issue(&principal()).await.unwrap();
    assert!(common::verify(&service, &fresh.access_token).await.is_ok());
}

#[tokio::test]
async fn old_refresh_token_fails_after_overlap() {
    let clock = TestClock::new();
    let mut config = config();
    config.rotation_overlap = Some(Duration::from_secs(300));
    let f = fixture_with(config, SigningKey::generate(Algorithm::EdDSA).unwrap());
    let service = clock.install(f.service);
    let before = service.issue(&principal()).await.unwrap();
    service.rotate(SigningKey::generate(Algorithm::EdDSA).unwrap()).unwrap();
    clock.advance(301);
    assert_invalid(service.refresh(&before.refresh_token).await, "retired");
}

#[tokio::test]
async fn rotate_refuses_duplicate_kid_and_other_algorithms() {
    let f = fixture();
    assert!(matches!(f.service.rotate(f.key.clone()), Err(Error::KeyId { .. })));
    let es = SigningKey::generate(Algorithm::ES256).unwrap();
    assert!(matches!(f.service.rotate(es), Err(Error::AlgorithmMismatch { .. })));
    assert_eq!(kids(&f.service.jwks()), vec![f.key.kid().to_owned()]);
}

#[tokio::test]
async fn repeated_rotation_prunes_retired_keys() {
    let clock = TestClock::new();
    let f = fixture();
    let service = clock.install(f.service);
    service.rotate(SigningKey::generate(Algorithm::EdDSA).unwrap()).unwrap();
    service.rotate(SigningKey::generate(Algorithm::EdDSA).unwrap()).unwrap();
    assert_eq!(kids(&service.jwks()).len(), 3);
    clock.advance(3601);
    let last = SigningKey::generate(Algorithm::EdDSA).unwrap();
    service.rotate(last.clone()).unwrap();
    // The two keys retired an hour ago are gone; the one just replaced overlaps.
    assert_eq!(kids(&service.jwks()).len(), 2);
    assert_eq!(kids(&service.jwks())[1], last.kid());
}
