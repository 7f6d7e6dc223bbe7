//! Forged, tampered and malformed access tokens are refused, each with a precise detail.

use crate::common;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use common::*;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;
use zta_core::TokenAuthority;
use zta_token::{Algorithm, SigningKey};

#[tokio::test]
async fn alg_none_is_refused() {
    let f = fixture();
    let mut header = access_header(&f.key);
    header["alg"] = json!("none");
    let unsigned = format!("{}.{}.", b64(&header), b64(&access_claims()));
    assert_invalid(common::verify(&f.service, &secret(&unsigned)).await, "empty part");
    // Even with some signature bytes, `none` is not the key's algorithm.
    let with_sig = format!("{unsigned}AAAA");
    assert_invalid(common::verify(&f.service, &secret(&with_sig)).await, "algorithm \"none\"");
}

#[tokio::test]
async fn hs256_signed_with_the_public_key_is_refused() {
    let f = fixture();
    let jwk = f.key.public_jwk();
    let raw_public = URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap();
    let pem_public = f.key.public_key_pem().into_bytes();
    for secret_bytes in [raw_public, pem_public] {
        let mut header = Header::new(jsonwebtoken::Algorithm::HS256);
        header.typ = Some("zta-at+jwt".into());
        header.kid = Some(f.key.kid().into());
        let token = jsonwebtoken::encode(&header, &access_claims(), &EncodingKey::from_secret(&secret_bytes))
            .unwrap();
        assert_invalid(common::verify(&f.service, &secret(&token)).await, "algorithm \"HS256\"");
    }
}

#[tokio::test]
async fn header_alg_of_another_asymmetric_family_is_refused() {
    let f = fixture();
    let mut header = access_header(&f.key);
    header["alg"] = json!("ES256");
    let token = sign_raw(&f.key, &header, &access_claims());
    assert_invalid(common::verify(&f.service, &secret(&token)).await, "pinned to key id");
}

#[tokio::test]
async fn tampered_payload_is_refused() {
    let f = fixture();
    let tokens = f.service.issue(&principal()).await.unwrap();
    let good = access(&tokens);
    let mut claims = segment(good, 1);
    claims["roles"] = json!(["admin"]);
    let parts: Vec<&str> = good.split('.').collect();
    let tampered = format!("{}.{}.{}", parts[0], b64(&claims), parts[2]);
    assert_invalid(common::verify(&f.service, &secret(&tampered)).await, "bad signature");

    // Swapping the header typ alone breaks the signature too.
    let refresh_token = refresh(&tokens);
    let rparts: Vec<&str> = refresh_token.split('.').collect();
    let mut header = segment(refresh_token, 0);
    header["typ"] = json!("zta-at+jwt");
    let swapped = format!("{}.{}.{}", b64(&header), rparts[1], rparts[2]);
    assert_invalid(common::verify(&f.service, &secret(&swapped)).await, "bad signature");
}

#[tokio::test]
async fn a_cached_tokens_signature_does_not_carry_a_tampered_payload() {
    let f = fixture();
    let tokens = f.service.issue(&principal()).await.unwrap();
    let good = access(&tokens);
    // Verified once: now in the verified-token cache, which is keyed by signature.
    common::verify(&f.service, &secret(good)).await.unwrap();
    let mut claims = segment(good, 1);
    claims["roles"] = json!(["admin"]);
    let parts: Vec<&str> = good.split('.').collect();
    let tampered = format!("{}.{}.{}", parts[0], b64(&claims), parts[2]);
    assert_invalid(common::verify(&f.service, &secret(&tampered)).await, "bad signature");
    // The genuine token still verifies, with its own roles.
    let principal = common::verify(&f.service, &secret(good)).await.unwrap();
    assert!(!principal.roles.iter().any(|r| r == "admin"));
}

#[tokio::test]
async fn unknown_missing_and_overlong_kids_are_refused() {
    let f = fixture();
    let mut header = access_header(&f.key);
    header["kid"] = json!("no-such-key");
    assert_invalid(
        common::verify(&f.service, &secret(&sign_raw(&f.key, &header, &access_claims()))).await,
        "unknown key id",
    );

    header["kid"] = json!("k".repeat(65));
    assert_invalid(
        common::verify(&f.service, &secret(&sign_raw(&f.key, &header, &access_claims()))).await,
        "longer than 64",
    );

    header.as_object_mut().unwrap().remove("kid");
    assert_invalid(
        common::verify(&f.service, &secret(&sign_raw(&f.key, &header, &access_claims()))).await,
        "no `kid`",
    );
}

#[tokio::test]
async fn key_carrying_headers_are_refused() {
    let f = fixture();
    let members = [
        ("jku", json!("https://attacker.example/jwks.json")),
        ("x5u", json!("https://attacker.example/cert.pem")),
        ("x5c", json!(["MIIB"])),
        ("jwk", f.key.public_jwk()),
        ("crit", json!(["exp"])),
        ("jku", json!(null)),
    ];
    for (name, value) in members {
        let mut header = access_header(&f.key);
        header[name] = value;
        // Validly signed by our own key: only the header member is wrong.
        let token = sign_raw(&f.key, &header, &access_claims());
        assert_invalid(
            common::verify(&f.service, &secret(&token)).await,
            &format!("`{name}` is not accepted"),
        );
    }
}

#[tokio::test]
async fn oversized_token_is_refused_before_parsing() {
    let f = fixture();
    let mut claims = access_claims();
    claims["padding"] = json!("x".repeat(9000));
    let token = sign_raw(&f.key, &access_header(&f.key), &claims);
    assert!(token.len() > zta_core::MAX_CREDENTIAL_LEN);
    assert_invalid(common::verify(&f.service, &secret(&token)).await, "longer than 8192");
}

#[tokio::test]
async fn missing_required_claims_are_refused() {
    let f = fixture();
    for claim in ["aud", "iss", "exp", "nbf", "sub", "iat", "jti", "ztt", "fam", "auth_time", "src_iss"] {
        let mut claims = access_claims();
        claims.as_object_mut().unwrap().remove(claim);
        let token = sign_raw(&f.key, &access_header(&f.key), &claims);
        assert_invalid(
            common::verify(&f.service, &secret(&token)).await,
            &format!("missing required claim `{claim}`"),
        );
    }
}

#[tokio::test]
async fn a_different_key_with_our_kid_is_refused() {
    let f = fixture();
    let impostor = SigningKey::generate(Algorithm::EdDSA).unwrap().with_kid(f.key.kid()).unwrap();
    assert_eq!(impostor.kid(), f.key.kid());
    let token = sign_raw(&impostor, &access_header(&impostor), &access_claims());
    assert_invalid(common::verify(&f.service, &secret(&token)).await, "bad signature");
}

#[tokio::test]
async fn subject_must_be_a_valid_agent_id() {
    let f = fixture();
    let mut claims = access_claims();
    claims["sub"] = json!("a*)(uid=*");
    let token = sign_raw(&f.key, &access_header(&f.key), &claims);
    assert_invalid(common::verify(&f.service, &secret(&token)).await, "not a valid agent id");
}

#[tokio::test]
async fn malformed_structure_is_refused() {
    let f = fixture();
    let good = sign_raw(&f.key, &access_header(&f.key), &access_claims());
    assert_invalid(
        common::verify(&f.service, &secret(&format!("{good}.extra"))).await,
        "three dot-separated parts",
    );
    assert_invalid(common::verify(&f.service, &secret("onlyone")).await, "three dot-separated parts");
    assert_invalid(common::verify(&f.service, &secret("!!.a.b")).await, "not base64url");
    let long_header = format!("{}.{}", "a".repeat(zta_crypto::jose::MAX_HEADER_LEN + 1), "b.c");
    assert_invalid(common::verify(&f.service, &secret(&long_header)).await, "header too large");
    let no_typ = json!({ "alg": "EdDSA", "kid": f.key.kid() });
    assert_invalid(
        common::verify(&f.service, &secret(&sign_raw(&f.key, &no_typ, &access_claims()))).await,
        "`typ`",
    );
}
