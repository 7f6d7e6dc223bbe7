//! Refresh tokens rotate on every use; presenting one twice revokes its whole family.

use crate::common;

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

    assert_eq!(*common::verify(&f.service, &second.access_token).await.unwrap(), p);
    // The earlier access token lives on until it expires.
    assert!(common::verify(&f.service, &first.access_token).await.is_ok());
    // And the new refresh token works once more.
    assert!(f.service.refresh(&second.refresh_token).await.is_ok());
}

#[tokio::test]
async fn reusing_a_refresh_token_revokes_the_family() {
    let f = fixture();
    let first = f.service.issue(&principal()).await.unwrap();
    let (_, second) = f.service.refresh(&first.refresh_token).await.unwrap();
    assert!(common::verify(&f.service, &second.access_token).await.is_ok()); // cached now

    // An attacker (or a confused client) presents the used refresh token again.
    assert_eq!(f.service.refresh(&first.refresh_token).await.unwrap_err(), AuthError::Replayed);

    // Everything in the family is dead: both access tokens and the newest refresh token.
    assert_eq!(common::verify(&f.service, &first.access_token).await, Err(AuthError::Revoked));
    assert_eq!(common::verify(&f.service, &second.access_token).await, Err(AuthError::Revoked));
    assert_eq!(f.service.refresh(&second.refresh_token).await.unwrap_err(), AuthError::Revoked);

    // Another login of the same agent (another family) is unaffected.
    let other = f.service.issue(&principal()).await.unwrap();
    assert!(common::verify(&f.service, &other.access_token).await.is_ok());
    assert!(f.service.refresh(&other.refresh_token).await.is_ok());
}

#[tokio::test]
async fn refreshing_never_outlives_the_longest_session() {
    // Access 5 min, refresh 1 h, session at most 2 h from the login.
    let mut config = config();
    config.max_session = std::time::Duration::from_secs(2 * 3600);
    let f = fixture_with(config, zta_token::SigningKey::generate(zta_token::Algorithm::EdDSA).unwrap());
    let clock = TestClock::new();
    let service = clock.install(f.service);
    let mut login = principal();
    login.authenticated_at = clock.now();
    let end = clock.now().unix_timestamp() + 2 * 3600;

    let mut tokens = service.issue(&login).await.unwrap();
    // Refresh every 50 minutes: the refresh token of the third pair is cut to the session's end.
    for _ in 0..2 {
        clock.advance(50 * 60);
        tokens = service.refresh(&tokens.refresh_token).await.unwrap().1;
    }
    assert_eq!(segment(refresh(&tokens), 1)["exp"], end);
    assert!(segment(access(&tokens), 1)["exp"].as_i64().unwrap() <= end);

    // 3 minutes before the end: the new pair ends with the session, access token included.
    clock.advance(17 * 60);
    let (p, last) = service.refresh(&tokens.refresh_token).await.unwrap();
    assert_eq!(segment(access(&last), 1)["exp"], end);
    assert_eq!(segment(refresh(&last), 1)["exp"], end);
    assert_eq!(last.expires_in, std::time::Duration::from_secs(3 * 60));
    assert_eq!(p.expires_at.unix_timestamp(), end);

    // At the end (still inside the refresh token's leeway), refresh is refused: log in again.
    clock.advance(3 * 60);
    assert_eq!(service.refresh(&last.refresh_token).await.unwrap_err(), AuthError::Expired);
    clock.advance(6); // past the 5 s leeway
    assert_eq!(common::verify(&service, &last.access_token).await.unwrap_err(), AuthError::Expired);
    assert!(service.issue(&login).await.is_err(), "a login older than the longest session is refused");
    login.authenticated_at = clock.now();
    login.expires_at = clock.now() + time::Duration::hours(1);
    assert!(service.issue(&login).await.is_ok());
}
