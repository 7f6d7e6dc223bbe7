//! `type: oidc`: any OpenID Connect issuer, with claims mapped by dotted paths.

use serde_json::json;

use crate::support::*;

fn keycloak_like(tenant: &Tenant) -> serde_json::Value {
    json!({
        "issuer": tenant.v2_issuer(),
        "audiences": [API],
        "agent_claim": "azp",
        "roles_claim": "realm_access.roles",
        "groups_claim": "groups",
        "tenant_claim": "tid",
        "required_roles": ["agent"],
        "segment": "partners",
        "jwks": {"min_refetch": "1s"},
    })
}

fn claims(tenant: &Tenant) -> serde_json::Value {
    let claims = with(tenant.v2_claims(), "realm_access", json!({"roles": ["agent", "reader"]}));
    let claims = with(claims, "groups", json!(["crew-a"]));
    with(claims, "azp", json!("analysis_bot"))
}

#[tokio::test]
async fn claims_are_mapped_by_their_paths() {
    let tenant = Tenant::new().await;
    let provider = oidc_provider(keycloak_like(&tenant)).await.unwrap();
    let principal = verify(&provider, &tenant.sign(claims(&tenant), json!({})).await).await.unwrap();
    assert_eq!(principal.agent_id.as_str(), "analysis_bot");
    assert_eq!(principal.roles, ["agent", "reader"]);
    assert_eq!(principal.groups, ["crew-a"]);
    assert_eq!(principal.tenant.as_deref(), Some(tenant.id.as_str()));
    assert_eq!(principal.segment.as_deref(), Some("partners"));
    assert_eq!(zta_core::IdentityProvider::name(&provider), "oidc");

    let without_role = with(claims(&tenant), "realm_access", json!({"roles": ["reader"]}));
    assert_eq!(
        detail(verify(&provider, &tenant.sign(without_role, json!({})).await).await),
        "invalid credential: missing required role `agent`"
    );
    let bad_agent = with(claims(&tenant), "azp", json!("not an agent id!"));
    assert!(
        detail(verify(&provider, &tenant.sign(bad_agent, json!({})).await).await)
            .ends_with("is not a valid agent id")
    );
}

#[tokio::test]
async fn only_the_pinned_algorithms_verify() {
    let tenant = Tenant::new().await;
    let mut config = keycloak_like(&tenant);
    config["algorithms"] = json!(["ES256"]);
    // The issuer publishes RSA keys only: no key fits, which is a start-up error.
    let error = oidc_provider(config).await.unwrap_err();
    assert!(error.to_string().contains("holds no usable signing key"), "{error}");

    for bad in ["HS256", "none", "RS1"] {
        let mut config = keycloak_like(&tenant);
        config["algorithms"] = json!([bad]);
        let error = oidc_provider(config).await.unwrap_err().to_string();
        assert!(error.starts_with(&format!("`algorithms`: `{bad}` is not accepted")), "{error}");
    }
}
