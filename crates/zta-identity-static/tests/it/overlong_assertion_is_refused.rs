//! An assertion may not live longer than `assertion.max_lifetime` (default 60 s).

use crate::common;

use std::time::Duration;

use common::*;
use serde_json::json;
use zta_core::IdentityProvider;

#[tokio::test]
async fn lifetime_over_the_limit_is_refused() {
    let f = fixture();
    let mut c = claims("alice");
    c["exp"] = json!(c["iat"].as_i64().unwrap() + 61);
    let err = f.provider.authenticate(&sign(&f.alice, &eddsa(), &c)).await.unwrap_err();
    assert!(is_invalid(&err), "{err:?}");
    assert!(err.detail().contains("lifetime"), "{}", err.detail());

    // Exactly the limit is fine.
    let mut c = claims("alice");
    c["exp"] = json!(c["iat"].as_i64().unwrap() + 60);
    f.provider.authenticate(&sign(&f.alice, &eddsa(), &c)).await.unwrap();
}

#[tokio::test]
async fn client_side_long_assertion_is_refused_too() {
    let f = fixture();
    let credential = f.alice.assertion(&id("alice"), AUD, Duration::from_secs(3600)).unwrap();
    assert!(is_invalid(&f.provider.authenticate(&credential).await.unwrap_err()));
}

#[tokio::test]
async fn exp_not_after_iat_is_refused() {
    let f = fixture();
    let mut c = claims("alice");
    c["exp"] = c["iat"].clone();
    let err = f.provider.authenticate(&sign(&f.alice, &eddsa(), &c)).await.unwrap_err();
    assert!(is_invalid(&err), "{err:?}");
}
