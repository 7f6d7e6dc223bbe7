//! An evaluation nobody authenticated (no credential at all, or an enforcement point whose
//! own credential fails) is `401` with `WWW-Authenticate: Bearer` and a JSON error, and the
//! guard still refuses, audits and counts it. A subject credential that fails is a decision
//! about the subject: `200`, deny. A batch with an unauthenticated item decides nothing but
//! that refusal.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::sync::Arc;

use serde_json::{Value, json};
use zta::{AgentId, MemoryStateStore, StateStore};
use zta_server::ServerConfig;

use crate::common::{Service, answer};

fn trusting_gateway() -> ServerConfig {
    let mut config = ServerConfig::default();
    config.trusted_peps = vec![AgentId::new("gateway_pep").unwrap()];
    config
}

fn call(tool: &str) -> (Value, Value) {
    (json!({"name": "call_tool"}), json!({"type": "tool", "id": tool}))
}

/// `POST path` with an optional bearer: the status, the `WWW-Authenticate` header, the answer.
async fn post(s: &Service, path: &str, bearer: Option<&str>, body: &Value) -> (u16, Option<String>, Value) {
    let mut request = s.http.post(format!("{}{path}", s.url)).json(body);
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let challenge = response.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned());
    let (status, body) = answer(response).await;
    (status, challenge, body)
}

/// The authorization records, in order.
async fn decisions(s: &Service) -> Vec<Value> {
    s.records().await.into_iter().filter(|r| r["event"] == "authorization").collect()
}

/// The value of the sample `name` (with its labels) in `/metrics`.
async fn sample(s: &Service, name: &str) -> f64 {
    let (_, _, text) = s.get("/metrics").await;
    let line = text.lines().find(|l| l.strip_prefix(name).is_some_and(|rest| rest.starts_with(' ')));
    line.unwrap_or_else(|| panic!("no `{name}` in\n{text}")).rsplit(' ').next().unwrap().parse().unwrap()
}

/// The `401` every unauthenticated answer is: the challenge, an error and the id of the
/// audited refusal, which is the deny record with that id.
async fn assert_refused_and_audited(s: &Service, (status, challenge, body): (u16, Option<String>, Value)) {
    assert_eq!(status, 401, "{body}");
    assert_eq!(challenge.as_deref(), Some("Bearer"));
    assert!(body["error"].is_string(), "{body}");
    assert!(body.get("decision").is_none(), "a 401 is no decision: {body}");
    let id = body["request_id"].as_str().unwrap();
    let records = decisions(s).await;
    let record = records.iter().find(|r| r["id"] == id).unwrap_or_else(|| panic!("no record `{id}`"));
    assert_eq!(record["effect"], "deny", "{record}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_credential_at_all_is_401_audited_and_counted() {
    let s = Service::start(trusting_gateway()).await;
    let (action, resource) = call("web_search");
    let cases = [
        // A subject with neither a credential nor a caller to assert it.
        json!({"subject": {"type": "agent", "id": "research_bot"}, "action": action, "resource": resource}),
        json!({"subject": {"type": "agent"}, "action": action, "resource": resource}),
        // Without a credential, 401 comes before what else is wrong (a tool call without a tool).
        json!({"subject": {"type": "agent", "id": "research_bot"}, "action": action}),
    ];
    for body in &cases {
        for path in ["/access/v1/evaluation", "/access/v1/evaluations"] {
            let refused = post(&s, path, None, body).await;
            assert_refused_and_audited(&s, refused).await;
        }
    }
    assert_eq!(decisions(&s).await.len(), 6);
    assert_eq!(sample(&s, "zta_decisions_total{effect=\"deny\",reason=\"unauthenticated\"}").await, 6.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_whose_own_credential_fails_is_401() {
    let state: Arc<dyn StateStore> = Arc::new(MemoryStateStore::new());
    let s = Service::with_state(trusting_gateway(), state.clone()).await;
    let (action, resource) = call("web_search");
    let asserted =
        json!({"subject": {"type": "agent", "id": "research_bot"}, "action": action, "resource": resource});
    // A forged bearer, and a trusted enforcement point's session after it was suspended.
    let pep = s.token("gateway_pep").await;
    let refused = post(&s, "/access/v1/evaluation", Some("forged"), &asserted).await;
    assert_refused_and_audited(&s, refused).await;
    state.suspend(&AgentId::new("gateway_pep").unwrap()).await.unwrap();
    let refused = post(&s, "/access/v1/evaluation", Some(&pep), &asserted).await;
    assert_refused_and_audited(&s, refused).await;
    let records = decisions(&s).await;
    assert_eq!(records.len(), 2);
    assert_eq!(records[1]["detail"]["asserted_by"], "gateway_pep", "{}", records[1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subject_credential_that_fails_is_a_decision() {
    let s = Service::start(trusting_gateway()).await;
    let (action, resource) = call("web_search");
    let forged = format!("{}x", s.token("research_bot").await);
    let forged = json!({
        "subject": {"type": "agent", "id": "research_bot", "properties": {"credential": {"bearer": forged}}},
        "action": action, "resource": resource,
    });
    // Whatever the caller: the subject's own credential is what is decided.
    let pep = s.token("gateway_pep").await;
    for bearer in [None, Some(pep.as_str())] {
        let (status, challenge, body) = post(&s, "/access/v1/evaluation", bearer, &forged).await;
        assert_eq!((status, &body["decision"], challenge), (200, &json!(false), None), "{body}");
        assert_eq!(body["context"]["reason"], "invalid credential");
        assert!(body["context"]["id"].is_string(), "the refusal is audited: {body}");
    }
    assert_eq!(decisions(&s).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_with_an_unauthenticated_item_decides_nothing_else() {
    let s = Service::start(trusting_gateway()).await;
    let own = s.token("research_bot").await;
    let pep = s.token("gateway_pep").await;
    let (action, _) = call("web_search");
    let credential = json!({"bearer": own});
    // Two items the subject's credential would permit, and one with no credential at all.
    let batch = json!({
        "action": action,
        "resource": {"type": "tool", "id": "web_search"},
        "evaluations": [
            {"subject": {"type": "agent", "properties": {"credential": credential}}},
            {"subject": {"type": "agent", "id": "writer_bot"}},
            {"subject": {"type": "agent", "properties": {"credential": credential}}},
        ],
    });
    let refused = post(&s, "/access/v1/evaluations", None, &batch).await;
    assert_refused_and_audited(&s, refused).await;
    let records = decisions(&s).await;
    assert_eq!(records.len(), 1, "only the refusal is decided: {records:?}");
    assert!(records.iter().all(|r| r["effect"] == "deny"));

    // An enforcement point asserting every item with a credential that fails: 401 too.
    let asserted = json!({
        "subject": {"type": "agent", "id": "research_bot"},
        "action": action,
        "evaluations": [{"resource": {"type": "tool", "id": "web_search"}}, {"resource": {"type": "tool", "id": "notes"}}],
    });
    let refused = post(&s, "/access/v1/evaluations", Some(&format!("{pep}x")), &asserted).await;
    assert_refused_and_audited(&s, refused).await;
    let records = decisions(&s).await;
    assert_eq!(records.len(), 2, "the batch ended at its first item: {records:?}");
    assert!(records.iter().all(|r| r["effect"] == "deny"));
}
