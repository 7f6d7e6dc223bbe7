//! Suspending and reinstating an agent over the native API takes a configured operator's own
//! verified bearer credential; with no operators configured those calls are 403. An agent may
//! end its own sessions. Every call, refused or not, is audited, naming who acted. Against
//! Redis, the suspension is in the shared store.

use std::sync::Arc;

use serde_json::{Value, json};
use zta::{AgentId, StateStore};
use zta_server::ServerConfig;

use crate::common::{Service, redis_store, redis_url};

fn with_operators(names: &[&str]) -> ServerConfig {
    let mut config = ServerConfig::default();
    config.operators = names.iter().map(|n| AgentId::new(n).unwrap()).collect();
    config
}

fn evaluation(token: &str) -> Value {
    json!({
        "subject": {"type": "agent", "properties": {"credential": {"bearer": token}}},
        "action": {"name": "call_tool"},
        "resource": {"type": "tool", "id": "web_search"},
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_configured_operators_suspension_is_403() {
    let s = Service::start(ServerConfig::default()).await;
    let ops = s.token("ops_bot").await;
    for call in ["suspend", "reinstate"] {
        let (status, answer) =
            s.post(&format!("/zta/v1/agents/research_bot/{call}"), Some(&ops), &json!({})).await;
        assert_eq!(status, 403, "{answer}");
        assert_eq!(answer["error"], "no operators are configured (`server.operators`)");
    }
    assert!(!s.guard.is_suspended(&AgentId::new("research_bot").unwrap()).await.unwrap());
    let records = s.records().await;
    let refused: Vec<&str> = records.iter().filter_map(|r| r["event"].as_str()).collect();
    assert_eq!(refused, ["login", "suspension", "reinstatement"]);
    assert!(records[1..].iter().all(|r| r["effect"] == "deny" && r["target_agent"] == "research_bot"));
}

/// The operator flow, on whichever state store `s` has.
async fn operators_suspend_and_reinstate(s: &Service) {
    let agent = s.token("research_bot").await;
    let writer = s.token("writer_bot").await;
    let ops = s.token("ops_bot").await;
    let body = json!({"reason": "leaked key"});
    let path = "/zta/v1/agents/research_bot/suspend";

    let (status, answer) = s.post(path, None, &body).await;
    assert_eq!(
        (status, &answer["error"]),
        (401, &json!("an `Authorization: Bearer` credential is required"))
    );
    let (status, _) = s.post(path, Some(&format!("{ops}x")), &body).await;
    assert_eq!(status, 401);
    let (status, answer) = s.post(path, Some(&writer), &body).await;
    assert_eq!((status, &answer["error"]), (403, &json!("the caller is not an operator")));
    assert!(!s.guard.is_suspended(&AgentId::new("research_bot").unwrap()).await.unwrap());

    let (status, answer) = s.post(path, Some(&ops), &body).await;
    assert_eq!((status, &answer), (200, &json!({"agent_id": "research_bot", "done": true})));
    assert!(s.guard.is_suspended(&AgentId::new("research_bot").unwrap()).await.unwrap());
    let (_, decision) = s.post("/access/v1/evaluation", None, &evaluation(&agent)).await;
    assert_eq!(decision["context"]["reason"], "agent suspended");
    let (status, _) = s.post("/zta/v1/login", None, &s.assertion_json("research_bot")).await;
    assert_eq!(status, 401);

    let (status, _) = s.post("/zta/v1/agents/research_bot/reinstate", Some(&ops), &json!({})).await;
    assert_eq!(status, 200);
    // Sessions from before the suspension stay ended; a new login works.
    let (_, decision) = s.post("/access/v1/evaluation", None, &evaluation(&agent)).await;
    assert_eq!(decision["decision"], false);
    // (Token times are whole seconds, so a session opened in the second of the reinstatement
    // counts as from before it: log in until one is from after.)
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (status, session) = s.post("/zta/v1/login", None, &s.assertion_json("research_bot")).await;
        assert_eq!(status, 200);
        let fresh = session["access_token"].as_str().unwrap();
        let (_, decision) = s.post("/access/v1/evaluation", None, &evaluation(fresh)).await;
        if decision["decision"] == true {
            break;
        }
        assert_eq!(decision["context"]["reason"], "credential revoked");
        assert!(std::time::Instant::now() < deadline, "a session after the reinstatement is still refused");
        tokio::task::yield_now().await;
    }

    // An agent ends its own sessions; it cannot end another's.
    let (status, _) = s.post("/zta/v1/agents/research_bot/revoke", Some(&writer), &json!({})).await;
    assert_eq!(status, 403);
    let (status, _) = s.post("/zta/v1/agents/writer_bot/revoke", Some(&writer), &json!({})).await;
    assert_eq!(status, 200);
    let (_, info) = s.post("/zta/v1/introspect", None, &json!({"token": writer})).await;
    assert_eq!(info["active"], false);

    let records = s.records().await;
    // Who acted is `detail.by`, apart from the reason they gave.
    let admin: Vec<(&str, &str, &str, Option<&str>)> = records
        .iter()
        .filter(|r| !["login", "authorization"].contains(&r["event"].as_str().unwrap()))
        .map(|r| {
            (
                r["event"].as_str().unwrap(),
                r["effect"].as_str().unwrap(),
                r["reason"].as_str().unwrap(),
                r["detail"]["by"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        admin,
        [
            ("suspension", "deny", "refused: an `Authorization: Bearer` credential is required", None),
            ("suspension", "deny", "refused: invalid credential: malformed token: not base64url", None),
            ("suspension", "deny", "refused: the caller is not an operator", None),
            ("suspension", "allow", "leaked key", Some("agent:ops_bot")),
            ("reinstatement", "allow", "no reason given", Some("agent:ops_bot")),
            ("revocation", "deny", "refused: the caller is not an operator", None),
            ("revocation", "allow", "no reason given", Some("agent:writer_bot")),
        ]
    );
    // The refused caller is named.
    let refused_writer =
        records.iter().find(|r| r["reason"] == "refused: the caller is not an operator").unwrap();
    assert_eq!(refused_writer["agent_id"], "writer_bot");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_suspend_and_reinstate_in_memory() {
    let s = Service::start(with_operators(&["ops_bot"])).await;
    operators_suspend_and_reinstate(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_suspend_and_reinstate_in_redis() {
    let state: Arc<dyn StateStore> = redis_store(&redis_url());
    let s = Service::with_state(with_operators(&["ops_bot"]), state.clone()).await;
    operators_suspend_and_reinstate(&s).await;
    // Suspend again: another replica's store (a second client on the same keys) sees it.
    let ops = s.token("ops_bot").await;
    let (status, _) = s.post("/zta/v1/agents/research_bot/suspend", Some(&ops), &json!({})).await;
    assert_eq!(status, 200);
    assert!(state.is_suspended(&AgentId::new("research_bot").unwrap()).await.unwrap());
    state.reinstate(&AgentId::new("research_bot").unwrap()).await.unwrap();
}
