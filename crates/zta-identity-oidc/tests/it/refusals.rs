//! Every way a token must be refused, each with the reason the audit records.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use zta_core::AuthError;

use crate::support::*;

async fn refused(tenant: &Tenant, claims: Value, header: Value) -> String {
    let provider = tenant.provider().await;
    detail(verify(&provider, &tenant.sign(claims, header).await).await)
}

#[tokio::test]
async fn tokens_for_another_tenant_or_audience_are_refused() {
    let tenant = Tenant::new().await;
    let other = uuid::Uuid::new_v4().to_string();
    let good = tenant.v2_claims();

    let wrong_iss = with(good.clone(), "iss", json!(format!("{}/{other}/v2.0", server())));
    assert!(refused(&tenant, wrong_iss, json!({})).await.contains("is not trusted by this provider"));
    let wrong_tid = with(good.clone(), "tid", json!(other));
    assert_eq!(
        refused(&tenant, wrong_tid, json!({})).await,
        "invalid credential: `tid` does not match the issuer"
    );
    let wrong_aud = with(good.clone(), "aud", json!("api://someone-else"));
    assert_eq!(refused(&tenant, wrong_aud, json!({})).await, "invalid credential: wrong audience");
    let v1_as_v2 = with(good, "ver", json!("1.0"));
    assert_eq!(
        refused(&tenant, v1_as_v2, json!({})).await,
        "invalid credential: `ver` does not match the issuer"
    );
}

#[tokio::test]
async fn each_required_claim_is_required() {
    let tenant = Tenant::new().await;
    for claim in ["aud", "iss", "nbf", "exp", "sub"] {
        let claims = with(tenant.v2_claims(), claim, Value::Null);
        let detail = refused(&tenant, claims, json!({})).await;
        let expected = if claim == "iss" {
            "invalid credential: token without a readable `iss`".to_owned()
        } else {
            format!("invalid credential: missing required claim `{claim}`")
        };
        assert_eq!(detail, expected, "without `{claim}`");
    }
}

#[tokio::test]
async fn expired_and_not_yet_valid_tokens_are_refused_beyond_the_leeway() {
    let tenant = Tenant::new().await;
    let provider = tenant.provider().await;
    let expired = with(tenant.v2_claims(), "exp", json!(now() - 61));
    assert_eq!(
        verify(&provider, &tenant.sign(expired, json!({})).await).await.unwrap_err(),
        AuthError::Expired
    );
    let early = with(tenant.v2_claims(), "nbf", json!(now() + 120));
    assert_eq!(
        verify(&provider, &tenant.sign(early, json!({})).await).await.unwrap_err(),
        AuthError::NotYetValid
    );
    let within_leeway = with(tenant.v2_claims(), "exp", json!(now() - 30));
    verify(&provider, &tenant.sign(within_leeway, json!({})).await).await.unwrap();
}

#[tokio::test]
async fn app_only_rules_hold() {
    let tenant = Tenant::new().await;
    let no_role = with(tenant.v2_claims(), "roles", json!(["Research.Read"]));
    assert_eq!(
        refused(&tenant, no_role, json!({})).await,
        "invalid credential: missing required role `Agent.Invoke`"
    );
    let no_roles = with(tenant.v2_claims(), "roles", Value::Null);
    assert_eq!(
        refused(&tenant, no_roles, json!({})).await,
        "invalid credential: missing required role `Agent.Invoke`"
    );
    let delegated = with(tenant.v2_claims(), "scp", json!("Files.Read"));
    assert_eq!(
        refused(&tenant, delegated, json!({})).await,
        "invalid credential: a delegated token (`scp`) on an app-only API"
    );
    let user = with(tenant.v2_claims(), "idtyp", json!("user"));
    assert_eq!(
        refused(&tenant, user, json!({})).await,
        "invalid credential: `idtyp` is not `app` on an app-only API"
    );
    let unmapped = with(tenant.v2_claims(), "azp", json!("00000000-1111-4222-8333-444444444444"));
    assert!(refused(&tenant, unmapped, json!({})).await.ends_with("is not mapped to an agent"));
}

#[tokio::test]
async fn algorithm_confusion_and_unsigned_tokens_are_refused() {
    let tenant = Tenant::new().await;
    let provider = tenant.provider().await;
    let public = tenant.public_key().await;
    let pem = public["pem"].as_str().unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = public["kid"].as_str().map(str::to_owned);
    let forged = jsonwebtoken::encode(
        &header,
        &tenant.v2_claims(),
        &jsonwebtoken::EncodingKey::from_secret(pem.as_bytes()),
    )
    .unwrap();
    assert_eq!(
        detail(verify(&provider, &forged).await),
        "invalid credential: algorithm `HS256` not accepted"
    );

    let header =
        URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"none","kid":"{}"}}"#, public["kid"].as_str().unwrap()));
    let payload = URL_SAFE_NO_PAD.encode(tenant.v2_claims().to_string());
    let unsigned = format!("{header}.{payload}.");
    assert_eq!(detail(verify(&provider, &unsigned).await), "invalid credential: malformed token: empty part");
    let none_signed = format!("{header}.{payload}.c2ln");
    assert_eq!(
        detail(verify(&provider, &none_signed).await),
        "invalid credential: algorithm `none` not accepted"
    );

    let token = tenant.sign(tenant.v2_claims(), json!({})).await;
    let (body, signature) = token.rsplit_once('.').unwrap();
    let flipped = if signature.starts_with('A') { "B" } else { "A" };
    let tampered = format!("{body}.{flipped}{}", &signature[1..]);
    assert_eq!(detail(verify(&provider, &tampered).await), "invalid credential: bad signature");
    let payload = URL_SAFE_NO_PAD
        .encode(with(tenant.v2_claims(), "roles", json!(["Agent.Invoke", "Admin"])).to_string());
    let (header, _) = token.split_once('.').unwrap();
    let swapped = format!("{header}.{payload}.{signature}");
    assert_eq!(detail(verify(&provider, &swapped).await), "invalid credential: bad signature");
}

#[tokio::test]
async fn headers_that_carry_or_point_to_keys_are_refused() {
    let tenant = Tenant::new().await;
    for (member, value) in [
        ("jku", json!("https://attacker.example/keys")),
        ("x5u", json!("https://attacker.example/cert")),
        ("jwk", json!({"kty": "RSA", "n": "AQAB", "e": "AQAB"})),
        ("x5c", json!(["MIIB"])),
    ] {
        let detail = refused(&tenant, tenant.v2_claims(), json!({ member: value })).await;
        assert_eq!(detail, format!("invalid credential: header member `{member}` is not accepted"));
    }
}

#[tokio::test]
async fn unknown_kid_missing_kid_and_oversized_tokens_are_refused() {
    let tenant = Tenant::new().await;
    assert_eq!(
        refused(&tenant, tenant.v2_claims(), json!({"kid": "no-such-key"})).await,
        "invalid credential: unknown key id"
    );
    assert_eq!(
        refused(&tenant, tenant.v2_claims(), json!({"kid": null})).await,
        "invalid credential: token without `kid`"
    );
    let padded = with(tenant.v2_claims(), "padding", json!("x".repeat(9000)));
    assert_eq!(
        refused(&tenant, padded, json!({})).await,
        format!("invalid credential: token longer than {} bytes", zta_core::MAX_CREDENTIAL_LEN)
    );
}
