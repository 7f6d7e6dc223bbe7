//! Refresh tokens rotate on every use; presenting one twice revokes its whole family.

mod common;

use common::*;
use zta_core::{AuthError, TokenAuthority};

#[tokio::test]
async fn refresh_issues_a_new_pair_in_the_same_family() {
    let f = fixture();
    let original = principal();
    let first = f.service.issue(&original).await.unwrap();
    let (p, second) = f.service.refresh(&first.refresh_token).await.unwrap();

    assert_ne!(access(&first), access(&second));
    assert_ne!(refresh(&first), refresh(&second));
    assert_eq!(segment(access(&second), 1)["fam"], segment(access(&first), 1)["fam"]);
    assert_eq!(segment(refresh(&second), 1)["fam"], segment(access(&first), 1)["fam"]);
    assert_eq!(p.roles, original.roles);
    assert_eq!(p.delegation, original.delegation);
    assert_eq!(p.authenticated_at.unix_timestamp(), original.authenticated_at.unix_timestamp());
    assert_eq!(segment(access(&second), 1)["amr"], serde_json::json!(["agent_key"]));

    assert_eq!(*f.service.verify(&second.access_token).await.unwrap(), p);
    // The earlier access token lives on until it expires.
    assert!(f.service.verify(&first.access_token).await.is_ok());
    // And the new refresh token works once more.
    assert!(f.service.refresh(&second.refresh_token).await.is_ok());
}

#[tokio::test]
async fn reusing_a_refresh_token_revokes_the_family() {
    let f = fixture();
    let first = f.service.issue(&principal()).await.unwrap();
    let (_, second) = f.service.refresh(&first.refresh_token).await.unwrap();
    assert!(f.service.verify(&second.access_token).await.is_ok()); // cached now

    // An attacker (or a confused client) presents the used refresh token again.
    assert_eq!(f.service.refresh(&first.refresh_token).await.unwrap_err(), AuthError::Replayed);

    // Everything in the family is dead: both access tokens and the newest refresh token.
    assert_eq!(f.service.verify(&first.access_token).await, Err(AuthError::Revoked));
    assert_eq!(f.service.verify(&second.access_token).await, Err(AuthError::Revoked));
    assert_eq!(f.service.refresh(&second.refresh_token).await.unwrap_err(), AuthError::Revoked);

    // Another login of the same agent (another family) is unaffected.
    let other = f.service.issue(&principal()).await.unwrap();
    assert!(f.service.verify(&other.access_token).await.is_ok());
    assert!(f.service.refresh(&other.refresh_token).await.is_ok());
}
