//! The AuthZEN 1.0 evaluation API in front of a real guard (static identity, session tokens,
//! native policy, JSON Lines audit): request and response shapes, each evaluation decided and
//! audited on its own, the batch semantics, and malformed, oversized and unauthenticated input.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::{sync::Arc, time::Duration};

use axum::{Router, body::Body};
use http::{Request as HttpRequest, StatusCode, header};
use serde_json::{Value, json};
use tower::ServiceExt as _;
use zta::{
    AgentId, Guard, MemoryStateStore, StateStore,
    audit::jsonl::{JsonlConfig, JsonlSink},
    identity::static_agents::{AgentEntry, AgentKey, StaticConfig, StaticProvider},
    policy::PolicySet,
    secrecy::ExposeSecret,
    token::{Algorithm, SigningKey, TokenConfig, TokenService},
};
use zta_server::{ServerConfig, router};

const POLICY: &str = "\
policies:
  - {name: search, effect: allow, conditions: {action_type: call_tool, tool_name: web_search}}
  - {name: notes, effect: allow, conditions: {action_type: call_tool, tool_name: notes}}
";

struct Service {
    _dir: tempfile::TempDir,
    app: Router,
    token: String,
    guard: Guard,
    audit: std::path::PathBuf,
}

async fn service(config: ServerConfig) -> Service {
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
    let app = router(guard.clone(), &config);
    Service { _dir: dir, app, token: session.access_token.expose_secret().to_owned(), guard, audit }
}

async fn post(app: &Router, path: &str, body: impl Into<Body>) -> (StatusCode, Value) {
    let request =
        HttpRequest::post(path).header(header::CONTENT_TYPE, "application/json").body(body.into()).unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

fn subject(token: &str) -> Value {
    json!({"type": "agent", "id": "research_bot", "properties": {"credential": {"bearer": token}}})
}

fn tool(name: &str) -> Value {
    json!({"type": "tool", "id": name})
}

/// The decision records in the audit log.
async fn decisions(service: &Service) -> usize {
    service.guard.audit_sink().flush().await.unwrap();
    let mut count = 0;
    for entry in std::fs::read_dir(&service.audit).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "jsonl") {
            count += std::fs::read_to_string(path).unwrap().matches("\"event\":\"authorization\"").count();
        }
    }
    count
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_evaluation_is_decided_by_the_guard_and_audited() {
    let s = service(ServerConfig::default()).await;
    let allowed = json!({"subject": subject(&s.token), "action": {"name": "call_tool"}, "resource": tool("web_search")});
    let (status, answer) = post(&s.app, "/access/v1/evaluation", allowed.to_string()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["decision"], true);
    assert_eq!(answer["context"]["id"].as_str().unwrap().len(), 36);

    let denied =
        json!({"subject": subject(&s.token), "action": {"name": "call_tool"}, "resource": tool("shell")});
    let (status, answer) = post(&s.app, "/access/v1/evaluation", denied.to_string()).await;
    assert_eq!((status, &answer["decision"]), (StatusCode::OK, &json!(false)));
    assert_eq!(answer["context"]["reason"], "no policy allows this");
    assert_eq!(decisions(&s).await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_subject_must_prove_itself_and_be_who_it_says() {
    let s = service(ServerConfig::default()).await;
    let cases = [
        // Another agent's name on research_bot's credential.
        json!({"type": "agent", "id": "writer_bot", "properties": {"credential": {"bearer": s.token}}}),
        // A forged credential (none at all is `401`: unauthenticated_evaluations_are_401.rs).
        json!({"type": "agent", "properties": {"credential": {"bearer": format!("{}x", s.token)}}}),
    ];
    for subject in cases {
        let body =
            json!({"subject": subject, "action": {"name": "call_tool"}, "resource": tool("web_search")});
        let (status, answer) = post(&s.app, "/access/v1/evaluation", body.to_string()).await;
        assert_eq!((status, &answer["decision"]), (StatusCode::OK, &json!(false)), "{subject}");
        assert!(answer["context"]["id"].is_string(), "the refusal is audited: {answer}");
    }
    assert_eq!(decisions(&s).await, 2);
    // A context that tries to set an identity attribute is refused too.
    let body = json!({"subject": subject(&s.token), "action": {"name": "call_tool"}, "resource": tool("web_search"), "context": {"agent_id": "admin_bot"}});
    let (_, answer) = post(&s.app, "/access/v1/evaluation", body.to_string()).await;
    assert_eq!(answer["decision"], false);
    assert!(answer["context"]["reason"].as_str().unwrap().contains("reserved attribute"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_inherits_its_defaults_and_honours_its_semantic() {
    let s = service(ServerConfig::default()).await;
    let batch = |semantic: &str, tools: &[&str]| {
        json!({
            "subject": subject(&s.token),
            "action": {"name": "call_tool"},
            "evaluations": tools.iter().map(|t| json!({"resource": tool(t)})).collect::<Vec<_>>(),
            "options": {"evaluations_semantic": semantic},
        })
        .to_string()
    };
    let decisions_of = |answer: &Value| -> Vec<bool> {
        answer["evaluations"].as_array().unwrap().iter().map(|e| e["decision"].as_bool().unwrap()).collect()
    };
    let (status, answer) =
        post(&s.app, "/access/v1/evaluations", batch("execute_all", &["web_search", "shell", "notes"])).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(decisions_of(&answer), [true, false, true]);
    let (_, answer) = post(
        &s.app,
        "/access/v1/evaluations",
        batch("deny_on_first_deny", &["web_search", "shell", "notes"]),
    )
    .await;
    assert_eq!(decisions_of(&answer), [true, false]);
    let (_, answer) = post(
        &s.app,
        "/access/v1/evaluations",
        batch("permit_on_first_permit", &["shell", "notes", "web_search"]),
    )
    .await;
    assert_eq!(decisions_of(&answer), [false, true]);
    assert_eq!(decisions(&s).await, 3 + 2 + 2, "only what was evaluated is audited");

    // Without `evaluations`, the batch endpoint answers like a single evaluation.
    let single =
        json!({"subject": subject(&s.token), "action": {"name": "call_tool"}, "resource": tool("notes")});
    let (_, answer) = post(&s.app, "/access/v1/evaluations", single.to_string()).await;
    assert_eq!(answer["decision"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_is_not_an_evaluation_is_400_and_too_much_is_413() {
    let mut config = ServerConfig::default();
    config.max_body_bytes = 4096;
    config.max_batch = 2;
    let s = service(config).await;
    for (body, expected) in [
        ("{not json".to_owned(), "not an AuthZEN request"),
        (json!({"action": {"name": "call_tool"}}).to_string(), "`subject` is required"),
        (json!({"subject": subject(&s.token)}).to_string(), "`action` is required"),
    ] {
        let (status, answer) = post(&s.app, "/access/v1/evaluation", body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(answer["error"].as_str().unwrap().contains(expected), "{answer}");
    }
    let big = json!({"subject": subject(&s.token), "action": {"name": "call_tool"}, "resource": tool("web_search"), "context": {"pad": "x".repeat(8192)}});
    assert_eq!(post(&s.app, "/access/v1/evaluation", big.to_string()).await.0, StatusCode::PAYLOAD_TOO_LARGE);
    let three = json!({"subject": subject(&s.token), "action": {"name": "call_tool"}, "evaluations": [{"resource": tool("a")}, {"resource": tool("b")}, {"resource": tool("c")}]});
    let (status, answer) = post(&s.app, "/access/v1/evaluations", three.to_string()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    // A malformed item fails the batch before anything is decided.
    let broken = json!({"action": {"name": "call_tool"}, "evaluations": [{"subject": subject(&s.token), "resource": tool("web_search")}, {"resource": tool("notes")}]});
    let (status, answer) = post(&s.app, "/access/v1/evaluations", broken.to_string()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["error"], "evaluation 1: `subject` is required");
    assert_eq!(decisions(&s).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_discovery_document_names_the_endpoints() {
    let mut config = ServerConfig::default();
    config.public_url = Some("https://pdp.example/".to_owned());
    let s = service(config).await;
    let request = HttpRequest::get("/.well-known/authzen-configuration").body(Body::empty()).unwrap();
    let response = s.app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value =
        serde_json::from_slice(&axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap()).unwrap();
    assert_eq!(
        body,
        json!({
            "policy_decision_point": "https://pdp.example",
            "access_evaluation_endpoint": "https://pdp.example/access/v1/evaluation",
            "access_evaluations_endpoint": "https://pdp.example/access/v1/evaluations",
            "search_action_endpoint": "https://pdp.example/access/v1/search/action",
        })
    );
}
