//! An issuer that answers garbage is a start-up error naming what is wrong; one that does not
//! answer (down, hanging) lets the service start and denies its tokens until it answers.

use serde_json::json;
use zta_core::AuthError;
use zta_identity_oidc::Error;

use crate::support::*;

async fn start_up_error(modes: serde_json::Value) -> String {
    let tenant = Tenant::new().await;
    tenant.mode(modes).await;
    match entra_provider(tenant.entra()).await {
        Err(Error::Issuer(why)) => why,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_discovery_document_naming_another_issuer_is_a_start_up_error() {
    let why = start_up_error(json!({"discovery": "wrong_issuer"})).await;
    assert!(why.contains("names the issuer") && why.contains("someone-else"), "{why}");
}

#[tokio::test]
async fn a_key_set_that_is_not_json_is_a_start_up_error() {
    let why = start_up_error(json!({"jwks": "not_json"})).await;
    assert!(why.contains("did not answer the expected JSON"), "{why}");
}

#[tokio::test]
async fn a_key_set_of_ten_megabytes_is_refused_while_reading() {
    let why = start_up_error(json!({"jwks": "huge"})).await;
    assert!(why.contains("answered more than 524288 bytes"), "{why}");
}

#[tokio::test]
async fn a_hanging_issuer_times_out_and_its_tokens_are_denied_as_unavailable() {
    for modes in [json!({"jwks": "hang"}), json!({"discovery": "hang"})] {
        let tenant = Tenant::new().await;
        tenant.mode(modes.clone()).await;
        let provider = tenant.provider().await;
        let token = tenant.sign(tenant.v2_claims(), json!({})).await;
        match verify(&provider, &token).await {
            Err(AuthError::Unavailable { detail }) => {
                assert!(detail.contains("did not answer in time"), "{modes}: {detail}")
            }
            other => panic!("{modes}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn an_issuer_that_is_not_there_lets_the_service_start_and_denies() {
    let mut config = Tenant::new().await.entra();
    config["authority"] = json!("http://127.0.0.1:9");
    let provider = entra_provider(config).await.unwrap();
    let tenant = Tenant::new().await;
    let token = tenant.sign(tenant.v2_claims(), json!({})).await;
    // Another tenant's issuer: refused by routing. The provider's own issuers have no keys.
    assert!(matches!(verify(&provider, &token).await, Err(AuthError::Invalid { .. })));
}
