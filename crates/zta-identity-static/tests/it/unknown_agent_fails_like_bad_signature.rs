//! An assertion for an agent that does not exist fails exactly like one with a bad signature,
//! so callers cannot enumerate agents.

use crate::common;

use common::*;
use zta_core::{Credential, IdentityProvider};
use zta_identity_static::AgentKey;

#[tokio::test]
async fn unknown_agent_gets_the_bad_signature_error() {
    let f = fixture();
    let stranger = AgentKey::generate().unwrap();
    let unknown = f.provider.authenticate(&assertion(&stranger, "mallory")).await.unwrap_err();

    // Alice's own assertion with its signature tampered with.
    let jwt = jwt_of(&assertion(&f.alice, "alice"));
    let (message, signature) = jwt.rsplit_once('.').unwrap();
    let first = if signature.starts_with('A') { 'B' } else { 'A' };
    let tampered = format!("{message}.{first}{}", &signature[1..]);
    let bad_signature = f.provider.authenticate(&Credential::agent_assertion(tampered)).await.unwrap_err();

    // A known agent signed with the wrong key.
    let wrong_key = f.provider.authenticate(&assertion(&stranger, "alice")).await.unwrap_err();

    assert!(is_invalid(&unknown), "{unknown:?}");
    assert_eq!(unknown, bad_signature);
    assert_eq!(unknown, wrong_key);
    assert_eq!(unknown.to_string(), "invalid credential");
}

#[tokio::test]
async fn secret_only_agent_presenting_an_assertion_fails_the_same_way() {
    let f = fixture();
    let stranger = AgentKey::generate().unwrap();
    let err = f.provider.authenticate(&assertion(&stranger, "writer")).await.unwrap_err();
    let unknown = f.provider.authenticate(&assertion(&stranger, "mallory")).await.unwrap_err();
    assert_eq!(err, unknown);
}

#[tokio::test]
async fn invalid_agent_names_and_garbage_are_refused() {
    let f = fixture();
    let stranger = AgentKey::generate().unwrap();
    let mut c = claims("x");
    c["sub"] = "not an id*".into();
    c["iss"] = "not an id*".into();
    assert!(is_invalid(&f.provider.authenticate(&sign(&stranger, &eddsa(), &c)).await.unwrap_err()));
    for garbage in ["", "a.b", "a.b.c", "...", "eyJ.eyJ.sig"] {
        let err = f.provider.authenticate(&Credential::agent_assertion(garbage)).await.unwrap_err();
        assert!(is_invalid(&err), "{garbage:?}: {err:?}");
    }
}

#[tokio::test]
async fn oversized_credentials_are_refused_before_parsing() {
    let f = fixture();
    let huge = "a".repeat(zta_core::MAX_CREDENTIAL_LEN + 1);
    let err = f.provider.authenticate(&Credential::agent_assertion(huge.clone())).await.unwrap_err();
    assert!(is_invalid(&err));
    let err = f.provider.authenticate(&Credential::password("writer", huge)).await.unwrap_err();
    assert!(is_invalid(&err));
    // Nothing was counted against the agent: the attempt never got that far.
    assert_eq!(zta_core::StateStore::failures(&*f.state, "lockout:writer").await.unwrap(), 0);
}
