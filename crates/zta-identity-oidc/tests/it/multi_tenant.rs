//! A multi-tenant API (`tenant: organizations`): the `{tenantid}` issuer template, the tenant
//! allowlist, and the per-key `issuer` of Entra's common key set.

use serde_json::json;

use crate::support::*;

fn claims_for(tid: &str) -> serde_json::Value {
    let now = now();
    json!({
        "aud": API, "iss": format!("{}/{tid}/v2.0", server()), "iat": now, "nbf": now, "exp": now + 600,
        "tid": tid, "oid": "0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9", "sub": "0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9",
        "azp": RESEARCH_APP, "roles": ["Agent.Invoke"], "idtyp": "app", "ver": "2.0",
    })
}

#[tokio::test]
async fn only_allowlisted_tenants_are_accepted_and_tid_must_match_the_issuer() {
    let common = Tenant::named("organizations").await;
    let (a, b, c) = (
        uuid::Uuid::new_v4().to_string(),
        uuid::Uuid::new_v4().to_string(),
        uuid::Uuid::new_v4().to_string(),
    );
    let mut config = common.entra();
    config["allowed_tenants"] = json!([a, b]);
    config["versions"] = json!(["v2"]);
    let provider = entra_provider(config).await.unwrap();
    let mut issuers = vec![format!("{}/{a}/v2.0", server()), format!("{}/{b}/v2.0", server())];
    issuers.sort();
    assert_eq!(zta_core::IdentityProvider::issuers(&provider), issuers);

    for tid in [&a, &b] {
        let principal = verify(&provider, &common.sign(claims_for(tid), json!({})).await).await.unwrap();
        assert_eq!(principal.tenant.as_deref(), Some(tid.as_str()));
    }
    let outsider = detail(verify(&provider, &common.sign(claims_for(&c), json!({})).await).await);
    assert!(outsider.ends_with("is not trusted by this provider"), "{outsider}");
    // The common key set gives each key the issuer template: with `tid` B the key is for
    // B's issuer, not A's.
    let mixed = with(claims_for(&a), "tid", json!(b));
    assert_eq!(
        detail(verify(&provider, &common.sign(mixed, json!({})).await).await),
        "invalid credential: the signing key is not for this issuer"
    );
    let no_tid = with(claims_for(&a), "tid", serde_json::Value::Null);
    assert_eq!(
        detail(verify(&provider, &common.sign(no_tid, json!({})).await).await),
        "invalid credential: the signing key is not for this issuer"
    );
}
