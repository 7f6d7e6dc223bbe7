//! `key_fetches()` counts every attempt to fetch an issuer's key set, by how it ended: what
//! `zta serve`'s `/metrics` shows as `zta_jwks_fetches_total`.

use serde_json::json;
use zta_core::{AuthError, IdentityProvider, KeyFetches};

use crate::support::*;

#[tokio::test]
async fn every_key_set_fetched_counts_as_ok() {
    let tenant = Tenant::new().await;
    let provider = tenant.provider().await;
    // The start-up fetches: as many as the test server answered for this tenant.
    let served = tenant.jwks_fetches().await;
    assert!(served >= 1);
    assert_eq!(provider.key_fetches(), Some(KeyFetches { ok: served, failed: 0 }));
}

#[tokio::test]
async fn an_issuer_that_is_not_there_counts_as_failed() {
    let tenant = Tenant::new().await;
    let mut config = tenant.entra();
    config["authority"] = json!("http://127.0.0.1:9");
    config["versions"] = json!(["v2"]);
    let provider = entra_provider(config).await.unwrap();
    // Nothing could be discovered at start-up: the key set tries when a token needs a key.
    assert_eq!(provider.key_fetches(), Some(KeyFetches::default()));
    let claims = with(tenant.v2_claims(), "iss", json!(format!("http://127.0.0.1:9/{}/v2.0", tenant.id)));
    let token = tenant.sign(claims, json!({})).await;
    assert!(matches!(verify(&provider, &token).await, Err(AuthError::Unavailable { .. })));
    assert_eq!(provider.key_fetches(), Some(KeyFetches { ok: 0, failed: 1 }));
}
