//! `exp` and `nbf` are enforced with exactly the configured leeway.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use crate::common;

use std::time::Duration;

use common::*;
use serde_json::json;
use zta_core::AuthError;
use zta_token::SigningKey;

fn crafted(f: &Fixture, exp_offset: i64, nbf_offset: i64) -> String {
    let mut claims = access_claims();
    let now = now();
    claims["exp"] = json!(now + exp_offset);
    claims["nbf"] = json!(now + nbf_offset);
    sign_raw(&f.key, &access_header(&f.key), &claims)
}

#[tokio::test]
async fn expired_token_is_refused() {
    let f = fixture();
    let token = crafted(&f, -60, -120);
    assert_eq!(common::verify(&f.service, &secret(&token)).await, Err(AuthError::Expired));
}

#[tokio::test]
async fn not_yet_valid_token_is_refused() {
    let f = fixture();
    let token = crafted(&f, 600, 60);
    assert_eq!(common::verify(&f.service, &secret(&token)).await, Err(AuthError::NotYetValid));
}

#[tokio::test]
async fn leeway_is_applied_as_configured_and_no_more() {
    // Default leeway 5 s: two seconds past exp (or before nbf) still passes.
    let f = fixture();
    assert!(common::verify(&f.service, &secret(&crafted(&f, -2, -100))).await.is_ok());
    assert!(common::verify(&f.service, &secret(&crafted(&f, 300, 2))).await.is_ok());
    // Well past the leeway (jsonwebtoken's own default would be 60 s): refused.
    assert_eq!(common::verify(&f.service, &secret(&crafted(&f, -20, -100))).await, Err(AuthError::Expired));
    assert_eq!(common::verify(&f.service, &secret(&crafted(&f, 300, 20))).await, Err(AuthError::NotYetValid));

    // Leeway 0: two seconds past exp is refused.
    let mut config = config();
    config.leeway = Duration::ZERO;
    let strict = fixture_with(config, SigningKey::generate(zta_token::Algorithm::EdDSA).unwrap());
    assert_eq!(
        common::verify(&strict.service, &secret(&crafted(&strict, -2, -100))).await,
        Err(AuthError::Expired)
    );
}
