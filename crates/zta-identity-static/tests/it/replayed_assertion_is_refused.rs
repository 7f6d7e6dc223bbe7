//! An assertion is good for one use; presenting it again is a replay.

use crate::common;

use common::*;
use serde_json::json;
use zta_core::{AuthError, IdentityProvider, StateStore};

#[tokio::test]
async fn second_use_of_an_assertion_is_replayed() {
    let f = fixture();
    let credential = assertion(&f.alice, "alice");
    f.provider.authenticate(&credential).await.unwrap();
    assert_eq!(f.provider.authenticate(&credential).await.unwrap_err(), AuthError::Replayed);
    assert_eq!(f.provider.authenticate(&credential).await.unwrap_err(), AuthError::Replayed);
    // A fresh assertion (new jti) still works.
    f.provider.authenticate(&assertion(&f.alice, "alice")).await.unwrap();
}

#[tokio::test]
async fn the_same_jti_is_replayed_even_in_a_new_token() {
    let f = fixture();
    let claims = claims("alice");
    f.provider.authenticate(&sign(&f.alice, &eddsa(), &claims)).await.unwrap();
    let mut again = claims.clone();
    again["exp"] = json!(claims["exp"].as_i64().unwrap() + 1);
    assert_eq!(
        f.provider.authenticate(&sign(&f.alice, &eddsa(), &again)).await.unwrap_err(),
        AuthError::Replayed
    );
}

#[tokio::test]
async fn replay_ids_are_per_agent() {
    let f = fixture();
    let mut a = claims("alice");
    let mut b = claims("bob");
    a["jti"] = "shared-jti".into();
    b["jti"] = "shared-jti".into();
    f.provider.authenticate(&sign(&f.alice, &eddsa(), &a)).await.unwrap();
    f.provider.authenticate(&sign(&f.bob, &eddsa(), &b)).await.unwrap();
    // The claimed ids are in the store under the documented key.
    let until = time::OffsetDateTime::now_utc() + time::Duration::minutes(1);
    assert!(!f.state.claim_once("assertion:alice:shared-jti", until).await.unwrap());
}

#[tokio::test]
async fn missing_or_empty_jti_is_refused() {
    let f = fixture_with(|mut c| {
        c.lockout.max_failures = 100;
        c
    });
    let mut no_jti = claims("alice");
    no_jti.as_object_mut().unwrap().remove("jti");
    assert!(is_invalid(&f.provider.authenticate(&sign(&f.alice, &eddsa(), &no_jti)).await.unwrap_err()));
    for bad in [json!(""), json!("a:b"), json!("x".repeat(129)), json!("a\nb"), json!(42), json!(null)] {
        let mut c = claims("alice");
        c["jti"] = bad.clone();
        let err = f.provider.authenticate(&sign(&f.alice, &eddsa(), &c)).await.unwrap_err();
        assert!(is_invalid(&err), "{bad}: {err:?}");
    }
    // UUIDs and base64 ids are fine.
    for good in ["7f1c3f0e-6f4b-4c8e-9a55-0d5d3c1b2a10", "q0u+/Z9f=", &"y".repeat(128)] {
        let mut c = claims("alice");
        c["jti"] = good.into();
        f.provider.authenticate(&sign(&f.alice, &eddsa(), &c)).await.unwrap();
    }
}

/// jsonwebtoken compares `exp` with the clock in whole seconds, so an assertion whose
/// `exp + leeway` is the current second still verifies for the rest of that second. The replay
/// id must still be held then: it was once dropped at `exp + leeway` exactly, so such an
/// assertion could be presented again and again until the second turned.
#[tokio::test]
async fn an_assertion_cannot_be_replayed_in_its_last_accepted_second() {
    let f = fixture_with(|mut c| {
        c.assertion.leeway = std::time::Duration::from_secs(1);
        c
    });
    let mut late = claims("alice");
    let exp = now() - 1; // exp + leeway = this second: jsonwebtoken still accepts it
    late["exp"] = json!(exp);
    late["iat"] = json!(exp - 10);
    let credential = sign(&f.alice, &eddsa(), &late);
    f.provider.authenticate(&credential).await.unwrap();
    assert_eq!(f.provider.authenticate(&credential).await.unwrap_err(), AuthError::Replayed);
}
