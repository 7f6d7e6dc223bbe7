//! The key cache: rotation, a flood of unknown key ids, an issuer that goes down, keys that are
//! withdrawn. The provider waits `min_refetch` (1 s here) between fetches caused by unknown key
//! ids; the tests wait that interval out where they need a fetch to be due again.

use std::time::Duration;

use serde_json::json;
use zta_core::AuthError;

use crate::support::*;

/// Just over the tests' `min_refetch`.
const INTERVAL: Duration = Duration::from_millis(1100);

#[tokio::test]
async fn a_token_signed_by_a_newly_published_key_is_accepted_after_one_fetch() {
    let tenant = Tenant::new().await;
    let provider = tenant.provider().await;
    let fetches = tenant.jwks_fetches().await;
    let new_kid = tenant.rotate(false).await;
    tokio::time::sleep(INTERVAL).await;
    let token = tenant.sign_with(&new_kid, tenant.v2_claims()).await;
    verify(&provider, &token).await.unwrap();
    assert_eq!(tenant.jwks_fetches().await, fetches + 1);
    // Known now: the next token of that key costs no fetch.
    verify(&provider, &tenant.sign(tenant.v2_claims(), json!({})).await).await.unwrap();
    assert_eq!(tenant.jwks_fetches().await, fetches + 1);
}

#[tokio::test]
async fn a_flood_of_unknown_key_ids_costs_at_most_one_fetch_per_interval() {
    let tenant = Tenant::new().await;
    let provider = std::sync::Arc::new(tenant.provider().await);
    let mut tokens = Vec::new();
    for i in 0..100 {
        tokens.push(tenant.sign(tenant.v2_claims(), json!({"kid": format!("flood-{i}")})).await);
    }
    let flood = |tokens: Vec<String>| {
        let provider = provider.clone();
        async move {
            let tasks: Vec<_> = tokens
                .into_iter()
                .map(|t| {
                    let provider = provider.clone();
                    tokio::spawn(async move { verify(&provider, &t).await })
                })
                .collect();
            for task in tasks {
                assert_eq!(detail(task.await.unwrap()), "invalid credential: unknown key id");
            }
        }
    };
    let before = tenant.jwks_fetches().await;
    flood(tokens.clone()).await;
    // Within the interval of the start-up fetch: no fetch at all.
    assert_eq!(tenant.jwks_fetches().await, before);
    tokio::time::sleep(INTERVAL).await;
    flood(tokens.clone()).await;
    assert_eq!(
        tenant.jwks_fetches().await,
        before + 1,
        "one fetch for the whole flood once the interval passed"
    );
    flood(tokens).await;
    assert_eq!(tenant.jwks_fetches().await, before + 1);
}

#[tokio::test]
async fn cached_keys_keep_verifying_while_the_issuer_is_down() {
    let tenant = Tenant::new().await;
    let provider = tenant.provider().await;
    tenant.mode(json!({"jwks": "down", "discovery": "down"})).await;
    verify(&provider, &tenant.sign(tenant.v2_claims(), json!({})).await).await.unwrap();
    tokio::time::sleep(INTERVAL).await;
    // A fetch is due and fails: the last known good keys stay.
    let unknown = tenant.sign(tenant.v2_claims(), json!({"kid": "rotated-while-down"})).await;
    assert_eq!(detail(verify(&provider, &unknown).await), "invalid credential: unknown key id");
    verify(&provider, &tenant.sign(tenant.v2_claims(), json!({})).await).await.unwrap();
}

#[tokio::test]
async fn without_keys_every_token_is_denied_as_unavailable_until_the_issuer_answers() {
    let tenant = Tenant::new().await;
    tenant.mode(json!({"jwks": "down"})).await;
    let provider = tenant.provider().await;
    let token = tenant.sign(tenant.v2_claims(), json!({})).await;
    match verify(&provider, &token).await {
        Err(AuthError::Unavailable { detail }) => assert!(detail.contains("503"), "{detail}"),
        other => panic!("{other:?}"),
    }
    tenant.mode(json!({"jwks": "normal"})).await;
    tokio::time::sleep(INTERVAL).await;
    verify(&provider, &token).await.unwrap();
}

#[tokio::test]
async fn an_issuer_unreachable_at_start_up_is_discovered_later() {
    let tenant = Tenant::new().await;
    tenant.mode(json!({"discovery": "down"})).await;
    let provider = tenant.provider().await;
    let token = tenant.sign(tenant.v2_claims(), json!({})).await;
    assert!(matches!(verify(&provider, &token).await, Err(AuthError::Unavailable { .. })));
    tenant.mode(json!({"discovery": "normal"})).await;
    tokio::time::sleep(INTERVAL).await;
    verify(&provider, &token).await.unwrap();
}

#[tokio::test]
async fn a_withdrawn_key_stops_verifying_at_the_next_fetch_even_for_cached_tokens() {
    let tenant = Tenant::new().await;
    let provider = tenant.provider().await;
    let old_kid = tenant.public_key().await["kid"].as_str().unwrap().to_owned();
    let cached = tenant.sign(tenant.v2_claims(), json!({})).await;
    verify(&provider, &cached).await.unwrap();

    tenant.rotate(false).await;
    tenant.remove_key(&old_kid).await;
    tokio::time::sleep(INTERVAL).await;
    // A token of the new key makes the provider fetch the set, without the old key.
    verify(&provider, &tenant.sign(tenant.v2_claims(), json!({})).await).await.unwrap();
    assert_eq!(
        detail(verify(&provider, &cached).await),
        "invalid credential: the signing key is no longer published"
    );
    let fresh = tenant.sign_with(&old_kid, tenant.v2_claims()).await;
    assert_eq!(detail(verify(&provider, &fresh).await), "invalid credential: unknown key id");
}
