//! Headers that point at other keys (`jku`, `x5u`, `x5c`, `jwk`) or demand extensions (`crit`)
//! are refused, even when the signature is good.

use crate::common;

use common::*;
use serde_json::json;
use zta_core::IdentityProvider;

#[tokio::test]
async fn jku_header_is_refused() {
    let f = fixture();
    let mut header = eddsa();
    header.jku = Some("https://attacker.test/jwks.json".into());
    let err = f.provider.authenticate(&sign(&f.alice, &header, &claims("alice"))).await.unwrap_err();
    assert!(is_invalid(&err), "{err:?}");
    assert!(err.detail().contains("jku"), "{}", err.detail());
}

#[tokio::test]
async fn other_key_headers_are_refused() {
    let f = fixture();
    let mut x5u = eddsa();
    x5u.x5u = Some("https://attacker.test/cert.pem".into());
    let mut x5c = eddsa();
    x5c.x5c = Some(vec!["MIIB".into()]);
    let mut crit = eddsa();
    crit.crit = Some(vec!["exp".into()]);
    let mut jwk = eddsa();
    jwk.jwk = Some(
        serde_json::from_value(
            json!({"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}),
        )
        .unwrap(),
    );
    for (name, header) in [("x5u", x5u), ("x5c", x5c), ("crit", crit), ("jwk", jwk)] {
        let err = f.provider.authenticate(&sign(&f.alice, &header, &claims("alice"))).await.unwrap_err();
        assert!(is_invalid(&err), "{name}: {err:?}");
        assert!(err.detail().contains(name), "{name}: {}", err.detail());
    }
    // The same claims with a plain header (and a kid, which is only ever ignored) are fine.
    let mut plain = eddsa();
    plain.kid = Some("whatever".into());
    f.provider.authenticate(&sign(&f.alice, &plain, &claims("alice"))).await.unwrap();
}
