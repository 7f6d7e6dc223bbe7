//! Settings that cannot be right are refused before anything is fetched, naming the setting.

use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn wrong_settings_name_the_setting() {
    let tenant = Tenant::new().await;
    let cases = [
        (json!({"tenant": "organizations"}), "`allowed_tenants`: a multi-tenant API must list"),
        (json!({"tenant": "contoso.onmicrosoft.com"}), "`tenant`: `contoso.onmicrosoft.com` is neither"),
        (json!({"allowed_tenants": ["not-a-guid"]}), "`allowed_tenants`: only a multi-tenant API"),
        (json!({"required_roles": []}), "`required_roles`: app-only tokens can be issued without any role"),
        (
            json!({"authority": "http://login.example.com"}),
            "`authority`: `http://login.example.com` is plain http",
        ),
        (json!({"authority": "ftp://127.0.0.1"}), "`authority`: `ftp://127.0.0.1`: unsupported scheme"),
        (json!({"audiences": []}), "`audiences`: list the exact audiences"),
        (json!({"leeway": "10m"}), "`leeway`: at most 5m"),
        (json!({"max_token_size": 100000}), "`max_token_size`: between 1 and 8192 bytes"),
        (json!({"versions": []}), "`versions`: name at least one"),
        (json!({"agent_claim": "upn"}), "`agent_claim`: `upn` is not one of azp, appid, oid, sub"),
        (
            json!({"jwks": {"min_refetch": "0s"}}),
            "`jwks`: `refresh` and `min_refetch` must be longer than zero",
        ),
    ];
    for (change, expected) in cases {
        let mut config = tenant.entra();
        for (key, value) in change.as_object().unwrap() {
            config[key] = value.clone();
        }
        let error = entra_provider(config).await.unwrap_err().to_string();
        assert!(error.starts_with(expected), "{change}: {error}");
    }
}

#[test]
fn unknown_keys_are_refused_with_their_position() {
    let text =
        "tenant: 0d5f1f3e-2d7c-4b8e-9f6a-3c1d2e4f5a6b\naudiences: [a]\nrequired_roles: [r]\naudience: typo\n";
    let error =
        zta_source::from_str::<zta_identity_oidc::EntraConfig>(text, zta_source::Format::Yaml).unwrap_err();
    assert_eq!((error.pos.line, error.pos.col), (4, 1), "{}", error.message);
    assert!(error.message.starts_with("unknown field `audience`"), "{}", error.message);
}
