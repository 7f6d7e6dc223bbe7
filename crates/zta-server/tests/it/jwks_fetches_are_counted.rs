//! `/metrics` counts the signing-key fetches of the identity providers it is given
//! (`ServerConfig::identity_providers`, the guard's own): `zta_jwks_fetches_total{result}`,
//! summed over the providers. Against the local OIDC test server (`cargo xtask services`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::sync::Arc;

use axum::body::Body;
use http::{Request as HttpRequest, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt as _;
use zta::{
    Guard, IdentityProvider, KeyFetches, MemoryStateStore, StateStore,
    audit::jsonl::{JsonlConfig, JsonlSink},
    identity::oidc::{EntraConfig, OidcProvider},
    policy::PolicySet,
};
use zta_server::{ServerConfig, router};

fn oidc_server() -> String {
    std::env::var("ZTA_TEST_OIDC_URL").unwrap_or_else(|_| "http://127.0.0.1:17080".to_owned())
}

/// An Entra provider for the test server's tenant `tenant` (v2 tokens) at `authority`.
async fn entra(authority: &str, tenant: &str, state: &Arc<dyn StateStore>) -> Arc<OidcProvider> {
    let config: EntraConfig = serde_json::from_value(json!({
        "authority": authority,
        "tenant": tenant,
        "audiences": ["6e74172b-be56-4843-9ff4-e66a39bb12e3"],
        "versions": ["v2"],
        "app_only": true,
        "required_roles": ["Agent.Invoke"],
        "agents": {"2f0c9d1e-5b7a-4c3d-8e9f-0a1b2c3d4e5f": "research_bot"},
        "http_timeout": "2s",
    }))
    .unwrap();
    Arc::new(OidcProvider::entra(config, state.clone()).await.unwrap())
}

/// A token of `tenant` at the test server, naming the issuer `issuer`.
async fn token(tenant: &str, issuer: &str) -> String {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let claims = json!({
        "aud": "6e74172b-be56-4843-9ff4-e66a39bb12e3", "iss": issuer, "iat": now, "nbf": now, "exp": now + 600,
        "tid": tenant, "azp": "2f0c9d1e-5b7a-4c3d-8e9f-0a1b2c3d4e5f", "idtyp": "app", "ver": "2.0",
    });
    let url = format!("{}/__test/{tenant}/sign", oidc_server());
    let answer: Value = reqwest::Client::new()
        .post(url)
        .json(&json!({"claims": claims, "header": {}}))
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "the OIDC test server does not answer at {} (start it with `cargo xtask services`): {e}",
                oidc_server()
            )
        })
        .json()
        .await
        .unwrap();
    answer["token"].as_str().unwrap().to_owned()
}

/// The value of the sample `name` in `text`.
fn sample(text: &str, name: &str) -> f64 {
    let line = text.lines().find(|l| l.strip_prefix(name).is_some_and(|rest| rest.starts_with(' ')));
    line.unwrap_or_else(|| panic!("no `{name}` in\n{text}")).rsplit(' ').next().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_providers_key_fetches_are_counted_by_result() {
    let dir = tempfile::tempdir().unwrap();
    let state: Arc<dyn StateStore> = Arc::new(MemoryStateStore::new());
    let tenant = uuid_like();
    // One issuer that answers (its keys fetched at start-up), one that is not there.
    let reachable = entra(&oidc_server(), &tenant, &state).await;
    let gone = entra("http://127.0.0.1:9", &tenant, &state).await;
    let started = reachable.key_fetches().unwrap();
    assert!(started.ok >= 1 && started.failed == 0, "{started:?}");
    assert_eq!(gone.key_fetches(), Some(KeyFetches::default()));

    let providers: Vec<Arc<dyn IdentityProvider>> = vec![reachable.clone(), gone.clone()];
    let sink = Arc::new(JsonlSink::open(JsonlConfig::new(dir.path())).unwrap());
    let policy = PolicySet::from_yaml("policies: []").unwrap();
    let mut builder = Guard::builder(Arc::new(policy), sink).state_store(state);
    for provider in &providers {
        builder = builder.identity_provider(provider.clone());
    }
    let guard = builder.build().unwrap();
    let mut config = ServerConfig::default();
    config.identity_providers = providers;
    let app = router(guard, &config);

    // A token of the missing issuer: its key set is fetched (and fails) on the request path.
    let bearer = token(&tenant, &format!("http://127.0.0.1:9/{tenant}/v2.0")).await;
    let evaluation = json!({
        "subject": {"type": "agent", "properties": {"credential": {"bearer": bearer}}},
        "action": {"name": "call_tool"},
        "resource": {"type": "tool", "id": "web_search"},
    });
    let request = HttpRequest::post("/access/v1/evaluation")
        .header("content-type", "application/json")
        .body(Body::from(evaluation.to_string()))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let answer: Value =
        serde_json::from_slice(&axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap()).unwrap();
    assert_eq!(answer["context"]["reason"], "identity service unavailable", "{answer}");

    let response = app.oneshot(HttpRequest::get("/metrics").body(Body::empty()).unwrap()).await.unwrap();
    let text = String::from_utf8(axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap().to_vec())
        .unwrap();
    let ok = reachable.key_fetches().unwrap().ok;
    assert_eq!(sample(&text, "zta_jwks_fetches_total{result=\"ok\"}"), ok as f64);
    assert_eq!(sample(&text, "zta_jwks_fetches_total{result=\"failed\"}"), 1.0);
    assert!(text.contains("# TYPE zta_jwks_fetches_total counter"), "{text}");
}

/// A fresh tenant id (the test server makes a tenant on first use).
fn uuid_like() -> String {
    let nanos = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    format!("{:08x}-0000-4000-8000-{:012x}", std::process::id(), nanos & 0xffff_ffff_ffff)
}
