//! Assertions outside their validity window are refused.

use crate::common;

use common::*;
use serde_json::json;
use zta_core::{AuthError, IdentityProvider};

#[tokio::test]
async fn expired_assertion_is_refused() {
    let f = fixture();
    let mut c = claims("alice");
    c["iat"] = json!(now() - 100);
    c["exp"] = json!(now() - 60); // well past the 5 s leeway
    assert_eq!(f.provider.authenticate(&sign(&f.alice, &eddsa(), &c)).await.unwrap_err(), AuthError::Expired);
}

#[tokio::test]
async fn missing_exp_or_iat_is_refused() {
    let f = fixture();
    for claim in ["exp", "iat"] {
        let mut c = claims("alice");
        c.as_object_mut().unwrap().remove(claim);
        let err = f.provider.authenticate(&sign(&f.alice, &eddsa(), &c)).await.unwrap_err();
        assert!(is_invalid(&err), "{claim}: {err:?}");
    }
}

#[tokio::test]
async fn assertion_issued_in_the_future_is_refused() {
    let f = fixture();
    let mut c = claims("alice");
    c["iat"] = json!(now() + 600);
    c["exp"] = json!(now() + 630);
    assert_eq!(
        f.provider.authenticate(&sign(&f.alice, &eddsa(), &c)).await.unwrap_err(),
        AuthError::NotYetValid
    );
}

#[tokio::test]
async fn assertion_not_before_the_future_is_refused() {
    let f = fixture();
    let mut c = claims("alice");
    c["nbf"] = json!(now() + 20);
    assert_eq!(
        f.provider.authenticate(&sign(&f.alice, &eddsa(), &c)).await.unwrap_err(),
        AuthError::NotYetValid
    );
}
