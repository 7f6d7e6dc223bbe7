//! Unsigned assertions (`alg: none`) are refused.

use crate::common;

use common::*;
use serde_json::json;
use zta_core::IdentityProvider;

#[tokio::test]
async fn alg_none_is_refused() {
    let f = fixture();
    for alg in ["none", "None", "NONE"] {
        let credential = raw_jwt(&json!({"alg": alg, "typ": "JWT"}), &claims("alice"), "");
        let err = f.provider.authenticate(&credential).await.unwrap_err();
        assert!(is_invalid(&err), "{alg}: {err:?}");
    }
}

#[tokio::test]
async fn valid_signature_under_a_none_header_is_refused() {
    let f = fixture();
    // Take a real signature and swap the header for alg none.
    let real = jwt_of(&assertion(&f.alice, "alice"));
    let mut parts = real.split('.');
    let (_, payload, signature) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
    let header =
        base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, br#"{"alg":"none"}"#);
    let credential = zta_core::Credential::agent_assertion(format!("{header}.{payload}.{signature}"));
    assert!(is_invalid(&f.provider.authenticate(&credential).await.unwrap_err()));
}
