//! Key generation, PEM import/export, JWK/JWKS export: public parts only, and interoperable
//! (jsonwebtoken verifies our tokens from our exported PEM and JWK).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use crate::common;

use common::*;
use jsonwebtoken::{DecodingKey, Validation, jwk::Jwk};
use secrecy::ExposeSecret;
use zta_core::TokenAuthority;
use zta_token::{Algorithm, Error, SigningKey};

const ALGS: [Algorithm; 3] = [Algorithm::EdDSA, Algorithm::ES256, Algorithm::RS256];
const PRIVATE_MEMBERS: [&str; 7] = ["d", "p", "q", "dp", "dq", "qi", "k"];

fn validation(alg: Algorithm) -> Validation {
    let jwt_alg = match alg {
        Algorithm::EdDSA => jsonwebtoken::Algorithm::EdDSA,
        Algorithm::ES256 => jsonwebtoken::Algorithm::ES256,
        Algorithm::RS256 => jsonwebtoken::Algorithm::RS256,
    };
    let mut v = Validation::new(jwt_alg);
    v.set_issuer(&[ISSUER]);
    v.set_audience(&[AUDIENCE]);
    v
}

#[tokio::test]
async fn jwks_has_public_keys_only_and_verifies_our_tokens() {
    for alg in ALGS {
        let mut config = config();
        config.algorithm = alg;
        let f = fixture_with(config, SigningKey::generate(alg).unwrap());
        let jwks = f.service.jwks();
        let keys = jwks["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 1);
        let jwk = &keys[0];
        assert_eq!(jwk["kid"], f.key.kid());
        assert_eq!(jwk["alg"], alg.as_str());
        assert_eq!(jwk["use"], "sig");
        for member in PRIVATE_MEMBERS {
            assert!(jwk.get(member).is_none(), "{alg}: JWKS has private member `{member}`");
        }

        // A standard JWT library can verify our tokens from the published JWK.
        let tokens = f.service.issue(&principal()).await.unwrap();
        let parsed: Jwk = serde_json::from_value(jwk.clone()).unwrap();
        let key = DecodingKey::from_jwk(&parsed).unwrap();
        let data =
            jsonwebtoken::decode::<serde_json::Value>(access(&tokens), &key, &validation(alg)).unwrap();
        assert_eq!(data.claims["sub"], AGENT);
    }
}

#[tokio::test]
async fn public_pem_verifies_our_tokens() {
    for alg in ALGS {
        let mut config = config();
        config.algorithm = alg;
        let f = fixture_with(config, SigningKey::generate(alg).unwrap());
        let pem = f.key.public_key_pem();
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
        let key = match alg {
            Algorithm::EdDSA => DecodingKey::from_ed_pem(pem.as_bytes()),
            Algorithm::ES256 => DecodingKey::from_ec_pem(pem.as_bytes()),
            Algorithm::RS256 => DecodingKey::from_rsa_pem(pem.as_bytes()),
        }
        .unwrap();
        let tokens = f.service.issue(&principal()).await.unwrap();
        assert!(jsonwebtoken::decode::<serde_json::Value>(access(&tokens), &key, &validation(alg)).is_ok());
    }
}

#[test]
fn private_pem_roundtrips_and_is_pinned_to_its_algorithm() {
    for alg in ALGS {
        let key = SigningKey::generate(alg).unwrap();
        let pem = key.to_pkcs8_pem();
        assert!(pem.expose_secret().starts_with("-----BEGIN PRIVATE KEY-----\n"));
        let again = SigningKey::from_pkcs8_pem(alg, pem.expose_secret()).unwrap();
        assert_eq!(again.kid(), key.kid());
        assert_eq!(again.public_jwk(), key.public_jwk());
        for other in ALGS.into_iter().filter(|a| *a != alg) {
            assert!(
                matches!(SigningKey::from_pkcs8_pem(other, pem.expose_secret()), Err(Error::Key { .. })),
                "{alg} key loaded as {other}"
            );
        }
    }
}

#[test]
fn keys_load_from_files() {
    let key = SigningKey::generate(Algorithm::EdDSA).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zta-signing.pem");
    std::fs::write(&path, key.to_pkcs8_pem().expose_secret()).unwrap();
    let loaded = SigningKey::from_pkcs8_pem_file(Algorithm::EdDSA, &path).unwrap();
    assert_eq!(loaded.kid(), key.kid());

    let missing = SigningKey::from_pkcs8_pem_file(Algorithm::EdDSA, dir.path().join("nope.pem"));
    assert!(matches!(missing, Err(Error::KeyFile { .. })));
    std::fs::write(&path, key.public_key_pem()).unwrap();
    assert!(matches!(SigningKey::from_pkcs8_pem_file(Algorithm::EdDSA, &path), Err(Error::Key { .. })));
}

#[test]
fn debug_never_shows_private_material() {
    for alg in ALGS {
        let key = SigningKey::generate(alg).unwrap();
        let shown = format!("{key:?}");
        let pem = key.to_pkcs8_pem();
        let body: String = pem.expose_secret().lines().filter(|l| !l.starts_with("-----")).collect();
        assert!(shown.contains(key.kid()));
        assert!(shown.contains("redacted"));
        assert!(!shown.contains(&body[..16]), "{shown}");
        assert!(!format!("{pem:?}").contains(&body[..16]));
    }
}

#[test]
fn custom_kids_are_validated() {
    let key = SigningKey::generate(Algorithm::EdDSA).unwrap().with_kid("zta-2026-11").unwrap();
    assert_eq!(key.kid(), "zta-2026-11");
    assert_eq!(key.public_jwk()["kid"], "zta-2026-11");
    assert!(matches!(key.clone().with_kid("bad kid"), Err(Error::KeyId { .. })));
    assert!(matches!(key.with_kid("k".repeat(65)), Err(Error::KeyId { .. })));
}
