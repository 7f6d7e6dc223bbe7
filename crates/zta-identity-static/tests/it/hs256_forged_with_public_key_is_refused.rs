//! Algorithm confusion: an HMAC "signature" keyed with the agent's public key is refused.

use crate::common;

use common::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use zta_core::{Credential, IdentityProvider};

#[tokio::test]
async fn hs256_keyed_with_the_public_key_is_refused() {
    let f = fixture();
    let pem = f.alice.public_key_pem();
    let b64_body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &b64_body).unwrap();
    let raw = der[12..].to_vec();
    for secret in [pem.as_bytes().to_vec(), pem.trim().as_bytes().to_vec(), der, raw] {
        for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
            let jwt =
                jsonwebtoken::encode(&Header::new(alg), &claims("alice"), &EncodingKey::from_secret(&secret))
                    .unwrap();
            let err = f.provider.authenticate(&Credential::agent_assertion(jwt)).await.unwrap_err();
            assert!(is_invalid(&err), "{alg:?}: {err:?}");
            assert!(err.detail().contains("EdDSA"), "{}", err.detail());
        }
    }
    // Forgeries are refused one by one, and do not lock Alice out.
    assert_eq!(zta_core::StateStore::failures(&*f.state, "lockout:alice").await.unwrap(), 0);
}

#[tokio::test]
async fn other_asymmetric_algorithms_are_refused() {
    let f = fixture();
    // An EdDSA signature relabelled as ES256 must not be accepted either.
    let real = jwt_of(&assertion(&f.alice, "alice"));
    let mut parts = real.split('.');
    let (_, payload, signature) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
    let header =
        base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, br#"{"alg":"ES256"}"#);
    let credential = Credential::agent_assertion(format!("{header}.{payload}.{signature}"));
    assert!(is_invalid(&f.provider.authenticate(&credential).await.unwrap_err()));
}
