//! Issuer, audience and token type must all match exactly.

use crate::common;

use std::sync::Arc;

use common::*;
use serde_json::json;
use zta_core::{MemoryStateStore, TokenAuthority};
use zta_token::{TokenConfig, TokenService};

#[tokio::test]
async fn wrong_issuer_is_refused() {
    let f = fixture();
    let mut claims = access_claims();
    claims["iss"] = json!("https://evil.example");
    let token = sign_raw(&f.key, &access_header(&f.key), &claims);
    assert_invalid(common::verify(&f.service, &secret(&token)).await, "wrong issuer");
}

#[tokio::test]
async fn wrong_audience_is_refused() {
    let f = fixture();
    for aud in [json!("other-api"), json!(["other-api"]), json!([AUDIENCE, "other-api"])] {
        let mut claims = access_claims();
        claims["aud"] = aud.clone();
        let token = sign_raw(&f.key, &access_header(&f.key), &claims);
        assert!(common::verify(&f.service, &secret(&token)).await.is_err(), "aud {aud} accepted");
    }
    let mut claims = access_claims();
    claims["aud"] = json!("other-api");
    assert_invalid(
        common::verify(&f.service, &secret(&sign_raw(&f.key, &access_header(&f.key), &claims))).await,
        "wrong audience",
    );
}

#[tokio::test]
async fn tokens_of_a_service_with_another_audience_are_refused() {
    // Same key, different deployment (audience): its tokens do not work here.
    let f = fixture();
    let other = TokenService::new(
        TokenConfig::new(ISSUER, "another-audience"),
        f.key.clone(),
        Arc::new(MemoryStateStore::new()),
    )
    .unwrap();
    let tokens = other.issue(&principal()).await.unwrap();
    assert_invalid(common::verify(&f.service, &tokens.access_token).await, "wrong audience");
}

#[tokio::test]
async fn refresh_token_is_not_an_access_token() {
    let f = fixture();
    let tokens = f.service.issue(&principal()).await.unwrap();
    assert_invalid(common::verify(&f.service, &tokens.refresh_token).await, "wrong token type");
}

#[tokio::test]
async fn access_token_is_not_a_refresh_token() {
    let f = fixture();
    let tokens = f.service.issue(&principal()).await.unwrap();
    assert_invalid(f.service.refresh(&tokens.access_token).await, "wrong token type");
}

#[tokio::test]
async fn header_type_and_claim_type_must_agree() {
    // Validly signed, header says access, claim says refresh: refused both ways.
    let f = fixture();
    let mut claims = access_claims();
    claims["ztt"] = json!("refresh");
    let token = sign_raw(&f.key, &access_header(&f.key), &claims);
    assert_invalid(common::verify(&f.service, &secret(&token)).await, "`ztt` does not match");

    let mut header = access_header(&f.key);
    header["typ"] = json!("zta-rt+jwt");
    let token = sign_raw(&f.key, &header, &access_claims());
    assert_invalid(f.service.refresh(&secret(&token)).await, "`ztt` does not match");

    let mut header = access_header(&f.key);
    header["typ"] = json!("JWT");
    let token = sign_raw(&f.key, &header, &access_claims());
    assert_invalid(common::verify(&f.service, &secret(&token)).await, "`typ`");
}
