//! An axum service behind the guard layer: a request reaches the handler only with a permit for
//! exactly what it does; every other request is answered by the layer (401, 403) and audited.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{Extension, Router, body::Body, routing::post};
use http::{Request as HttpRequest, StatusCode, header};
use tower::ServiceExt as _;
use zta::{
    Action, AgentId, Guard, MemoryStateStore, Request, StateStore,
    audit::jsonl::{JsonlConfig, JsonlSink},
    identity::static_agents::{AgentEntry, AgentKey, StaticConfig, StaticProvider},
    policy::PolicySet,
    secrecy::ExposeSecret,
    token::{Algorithm, SigningKey, TokenConfig, TokenService},
};
use zta_adapter_tower::{Authorized, GuardLayer};

const POLICY: &str = "policies:\n  - {name: search, effect: allow, conditions: {action_type: call_tool, tool_name: web_search}}\n";

struct Crew {
    _dir: tempfile::TempDir,
    app: Router,
    token: String,
    ran: Arc<AtomicUsize>,
    guard: Guard,
    audit: std::path::PathBuf,
}

/// A guard (static identity, session tokens, the policy above, JSON Lines audit), an axum
/// app with `POST /tools/{name}` behind the layer, and a session token of `research_bot`.
async fn crew() -> Crew {
    let dir = tempfile::tempdir().unwrap();
    let state: Arc<dyn StateStore> = Arc::new(MemoryStateStore::new());
    let key = AgentKey::generate().unwrap();
    let id = AgentId::new("research_bot").unwrap();
    let agents =
        StaticConfig::new("aud").with_agent(AgentEntry::from_public_key(id.clone(), key.public_key_pem()));
    let tokens = TokenService::new(
        TokenConfig::new("https://zta.test", "zta"),
        SigningKey::generate(Algorithm::EdDSA).unwrap(),
        state.clone(),
    )
    .unwrap();
    let audit = dir.path().join("audit");
    let sink = Arc::new(JsonlSink::open(JsonlConfig::new(&audit)).unwrap());
    let guard = Guard::builder(Arc::new(PolicySet::from_yaml(POLICY).unwrap()), sink)
        .identity_provider(Arc::new(StaticProvider::new(agents, state.clone()).unwrap()))
        .token_authority(Arc::new(tokens))
        .state_store(state)
        .build()
        .unwrap();
    let session = guard.login(&key.assertion(&id, "aud", Duration::from_secs(30)).unwrap()).await.unwrap();

    let ran = Arc::new(AtomicUsize::new(0));
    let counter = ran.clone();
    let app = Router::new()
        .route(
            "/tools/{name}",
            post(move |Extension(ok): Extension<Authorized>| {
                counter.fetch_add(1, Ordering::SeqCst);
                async move { format!("ran for {}", ok.permit().principal().agent_id) }
            }),
        )
        .layer(GuardLayer::new(guard.clone(), |parts: &http::request::Parts| {
            let tool = parts.uri.path().strip_prefix("/tools/")?;
            Some(Request::new(Action::tool_call(tool)))
        }));
    Crew { _dir: dir, app, token: session.access_token.expose_secret().to_owned(), ran, guard, audit }
}

fn post_to(path: &str, authorization: &[&str]) -> HttpRequest<Body> {
    let mut request = HttpRequest::post(path);
    for value in authorization {
        request = request.header(header::AUTHORIZATION, *value);
    }
    request.body(Body::empty()).unwrap()
}

async fn send(app: &Router, request: HttpRequest<Body>) -> (StatusCode, http::HeaderMap, String) {
    let response = app.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 16).await.unwrap();
    (parts.status, parts.headers, String::from_utf8(bytes.to_vec()).unwrap())
}

/// Every audit record written so far, as JSON.
async fn audit_records(crew: &Crew) -> Vec<serde_json::Value> {
    crew.guard.audit_sink().flush().await.unwrap();
    let mut records = Vec::new();
    for entry in std::fs::read_dir(&crew.audit).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "jsonl") {
            for line in std::fs::read_to_string(path).unwrap().lines() {
                let entry: serde_json::Value = serde_json::from_str(line).unwrap();
                records.push(entry["record"].clone());
            }
        }
    }
    records
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowed_request_reaches_the_handler_with_its_permit() {
    let crew = crew().await;
    let bearer = format!("Bearer {}", crew.token);
    let (status, _, body) = send(&crew.app, post_to("/tools/web_search", &[&bearer])).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "ran for research_bot"));
    // The scheme is case-insensitive (RFC 7235).
    let lower = format!("bearer {}", crew.token);
    assert_eq!(send(&crew.app, post_to("/tools/web_search", &[&lower])).await.0, StatusCode::OK);
    assert_eq!(crew.ran.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_the_policy_denies_never_reaches_the_handler() {
    let crew = crew().await;
    let bearer = format!("Bearer {}", crew.token);
    let (status, headers, body) = send(&crew.app, post_to("/tools/shell", &[&bearer])).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body.starts_with("denied: no policy allows this (request "), "{body}");
    let id = headers["x-request-id"].to_str().unwrap().to_owned();
    assert!(body.contains(&id));
    assert_eq!(crew.ran.load(Ordering::SeqCst), 0);
    let records = audit_records(&crew).await;
    let record = records.iter().find(|r| r["id"] == id.as_str()).expect("the denial is audited");
    assert_eq!(record["effect"], "deny");
    assert_eq!(record["agent_id"], "research_bot");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_forged_or_ambiguous_credentials_get_401_and_are_audited() {
    let crew = crew().await;
    let forged = format!("Bearer {}x", crew.token);
    let basic = "Basic cmVzZWFyY2hfYm90OnNlY3JldA==".to_owned();
    let good = format!("Bearer {}", crew.token);
    let cases: [&[&str]; 5] = [&[], &[&forged], &[&basic], &["Bearer "], &[&good, &good]];
    for authorization in cases {
        let (status, headers, body) = send(&crew.app, post_to("/tools/web_search", authorization)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{authorization:?}: {body}");
        assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer error=\"invalid_token\"");
        assert!(body.starts_with("denied: "), "{body}");
    }
    assert_eq!(crew.ran.load(Ordering::SeqCst), 0);
    let denied = audit_records(&crew).await.into_iter().filter(|r| r["event"] == "authorization").count();
    assert_eq!(denied, 5, "each refusal is audited");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_that_maps_to_no_action_is_refused_and_audited() {
    let crew = crew().await;
    let bearer = format!("Bearer {}", crew.token);
    let (status, _, body) = send(&crew.app, post_to("/admin/reset", &[&bearer])).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body.starts_with("denied: no action is defined for this route"), "{body}");
    let records = audit_records(&crew).await;
    let record = records.iter().find(|r| r["detail"]["route"] == "POST /admin/reset").expect("audited");
    assert_eq!(record["effect"], "deny");
}
