//! An agent cannot authenticate as another agent with its own key.

use crate::common;

use std::time::Duration;

use common::*;
use zta_core::IdentityProvider;

#[tokio::test]
async fn agent_a_cannot_sign_as_agent_b() {
    let f = fixture();
    // Alice's key, Bob's name everywhere: verified against Bob's key, so the signature fails.
    let forged = f.alice.assertion(&id("bob"), AUD, Duration::from_secs(30)).unwrap();
    let err = f.provider.authenticate(&forged).await.unwrap_err();
    assert!(is_invalid(&err), "{err:?}");
}

#[tokio::test]
async fn iss_and_sub_must_both_be_the_key_owner() {
    let f = fixture();
    // Signed by Alice and picked by `sub` = alice, but claims to be issued by Bob.
    let mut c = claims("alice");
    c["iss"] = "bob".into();
    let err = f.provider.authenticate(&sign(&f.alice, &eddsa(), &c)).await.unwrap_err();
    assert!(is_invalid(&err), "{err:?}");

    // Issued by Alice about Bob: the key is picked by `sub` = bob, so Alice's signature fails.
    let mut c = claims("alice");
    c["sub"] = "bob".into();
    let err = f.provider.authenticate(&sign(&f.alice, &eddsa(), &c)).await.unwrap_err();
    assert!(is_invalid(&err), "{err:?}");

    // Missing iss.
    let mut c = claims("alice");
    c.as_object_mut().unwrap().remove("iss");
    assert!(is_invalid(&f.provider.authenticate(&sign(&f.alice, &eddsa(), &c)).await.unwrap_err()));
}

#[tokio::test]
async fn missing_sub_is_refused() {
    let f = fixture();
    let mut c = claims("alice");
    c.as_object_mut().unwrap().remove("sub");
    assert!(is_invalid(&f.provider.authenticate(&sign(&f.alice, &eddsa(), &c)).await.unwrap_err()));
}
