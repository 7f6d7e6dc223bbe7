//! Agents with a configured secret authenticate with `Credential::Password`.

use crate::common;

use common::*;
use zta_core::{AuthMethod, Credential, IdentityProvider};

#[tokio::test]
async fn right_secret_yields_principal() {
    let f = fixture();
    let before = now();
    let p = f.provider.authenticate(&Credential::password("writer", SECRET)).await.unwrap();
    assert_eq!(p.agent_id, id("writer"));
    assert_eq!(p.auth_method, AuthMethod::AgentSecret);
    assert_eq!(p.issuer, "static");
    assert_eq!(p.segment.as_deref(), Some("content"));
    assert_eq!(p.roles, ["writer"]);
    let lifetime = p.expires_at - p.authenticated_at;
    assert_eq!(lifetime, time::Duration::minutes(5));
    assert!(p.authenticated_at.unix_timestamp() >= before);
}

#[tokio::test]
async fn wrong_secret_is_invalid() {
    let f = fixture();
    let err = f
        .provider
        .authenticate(&Credential::password("writer", "correct horse battery stapler"))
        .await
        .unwrap_err();
    assert!(is_invalid(&err), "{err:?}");
    assert_eq!(zta_core::StateStore::failures(&*f.state, "lockout:writer").await.unwrap(), 1);
}

#[tokio::test]
async fn empty_secret_is_refused_without_hashing_or_counting() {
    let f = fixture();
    let err = f.provider.authenticate(&Credential::password("writer", "")).await.unwrap_err();
    assert!(is_invalid(&err), "{err:?}");
    assert!(err.detail().contains("empty"), "{}", err.detail());
    assert_eq!(zta_core::StateStore::failures(&*f.state, "lockout:writer").await.unwrap(), 0);
}

#[tokio::test]
async fn unknown_agent_fails_like_a_wrong_secret() {
    let f = fixture();
    let wrong = f.provider.authenticate(&Credential::password("writer", "nope")).await.unwrap_err();
    let unknown = f.provider.authenticate(&Credential::password("ghost", SECRET)).await.unwrap_err();
    // An agent that exists but has a key, not a secret.
    let key_agent = f.provider.authenticate(&Credential::password("alice", SECRET)).await.unwrap_err();
    let bad_name = f.provider.authenticate(&Credential::password("*)(uid=*", SECRET)).await.unwrap_err();
    assert!(is_invalid(&wrong));
    assert_eq!(wrong, unknown);
    assert_eq!(wrong, key_agent);
    assert_eq!(wrong, bad_name);
    // Unknown names are counted like known ones, so lockout does not reveal who exists.
    assert_eq!(zta_core::StateStore::failures(&*f.state, "lockout:ghost").await.unwrap(), 1);
}

#[tokio::test]
async fn the_secret_is_not_an_assertion_and_vice_versa() {
    let f = fixture();
    // The secret presented as an assertion, and an assertion presented as a secret.
    assert!(is_invalid(&f.provider.authenticate(&Credential::agent_assertion(SECRET)).await.unwrap_err()));
    let jwt = jwt_of(&assertion(&f.alice, "alice"));
    assert!(is_invalid(&f.provider.authenticate(&Credential::password("alice", jwt)).await.unwrap_err()));
}
