use serde_json::json;
use zta_core::{AuthMethod, IdentityProvider};

use crate::support::*;

#[tokio::test]
async fn v2_and_v1_app_tokens_yield_the_mapped_agent() {
    let tenant = Tenant::new().await;
    let provider = tenant.provider().await;
    assert_eq!(provider.issuers(), {
        let mut both = vec![tenant.v1_issuer(), tenant.v2_issuer()];
        both.sort();
        both
    });

    let claims = tenant.v2_claims();
    let principal = verify(&provider, &tenant.sign(claims.clone(), json!({})).await).await.unwrap();
    assert_eq!(principal.agent_id.as_str(), "research_bot");
    assert_eq!(principal.issuer, tenant.v2_issuer());
    assert_eq!(principal.subject, claims["sub"]);
    assert_eq!(principal.tenant.as_deref(), Some(tenant.id.as_str()));
    assert_eq!(principal.roles, ["Agent.Invoke", "Research.Read"]);
    assert_eq!(principal.segment.as_deref(), Some("research"));
    assert_eq!(principal.auth_method, AuthMethod::Oidc);
    assert_eq!(principal.expires_at.unix_timestamp(), claims["exp"].as_i64().unwrap());
    assert_eq!(principal.claims["oid"], claims["oid"]);
    assert_eq!(principal.claims["azp"], RESEARCH_APP);

    let v1 = verify(&provider, &tenant.sign(tenant.v1_claims(), json!({})).await).await.unwrap();
    assert_eq!(v1.agent_id.as_str(), "research_bot");
    assert_eq!(v1.issuer, tenant.v1_issuer());
    assert_eq!(v1.claims["appid"], RESEARCH_APP);
}

#[tokio::test]
async fn entra_agent_id_claims_are_kept_for_the_audit() {
    let tenant = Tenant::new().await;
    let provider = tenant.provider().await;
    let claims = with(tenant.v2_claims(), "xms_par_app_azp", json!("7d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6"));
    let claims = with(claims, "xms_act_fct", json!("11 3"));
    let principal = verify(&provider, &tenant.sign(claims, json!({})).await).await.unwrap();
    assert_eq!(principal.claims["xms_par_app_azp"], "7d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6");
    assert_eq!(principal.claims["xms_act_fct"], "11 3");
}

#[tokio::test]
async fn a_cached_token_is_refused_once_it_is_revoked() {
    let tenant = Tenant::new().await;
    let state = std::sync::Arc::new(zta_core::MemoryStateStore::new());
    let config = serde_json::from_value(tenant.entra()).unwrap();
    let provider = zta_identity_oidc::OidcProvider::entra(config, state.clone()).await.unwrap();
    let (token, other) =
        (tenant.sign(tenant.v2_claims(), json!({})).await, tenant.sign(tenant.v2_claims(), json!({})).await);
    verify(&provider, &token).await.unwrap();
    let until = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
    zta_core::StateStore::revoke(&*state, &zta_core::bearer_revocation_key(&token), until).await.unwrap();
    assert_eq!(verify(&provider, &token).await.unwrap_err(), zta_core::AuthError::Revoked);
    verify(&provider, &other).await.unwrap();
}

#[tokio::test]
async fn a_verified_token_is_served_from_the_cache_until_its_agent_is_revoked() {
    let tenant = Tenant::new().await;
    let state = std::sync::Arc::new(zta_core::MemoryStateStore::new());
    let config = serde_json::from_value(tenant.entra()).unwrap();
    let provider = zta_identity_oidc::OidcProvider::entra(config, state.clone()).await.unwrap();
    let claims = with(tenant.v2_claims(), "iat", json!(now() - 10));
    let token = tenant.sign(claims, json!({})).await;
    verify(&provider, &token).await.unwrap();
    verify(&provider, &token).await.unwrap();

    let agent = zta_core::AgentId::new("research_bot").unwrap();
    zta_core::StateStore::revoke_agent(&*state, &agent, time::OffsetDateTime::now_utc()).await.unwrap();
    assert_eq!(verify(&provider, &token).await.unwrap_err(), zta_core::AuthError::Revoked);
}
