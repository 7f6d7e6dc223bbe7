//! A caller listed in `trusted_peps`, proving it with its own bearer credential in the
//! `Authorization` header, may name `subject.id` without the subject's credential; the audit
//! record names who asserted it. Any other agent asserting a subject is denied, and audited
//! naming the caller; a caller whose credential fails (or none) is `401`, audited too; a
//! suspended subject (here in Redis, where every replica sees it) is
//! denied whoever vouches for it.

use std::sync::Arc;

use serde_json::{Value, json};
use zta::{AgentId, StateStore};
use zta_server::ServerConfig;

use crate::common::{Service, redis_store, redis_url};

fn trusting(names: &[&str]) -> ServerConfig {
    let mut config = ServerConfig::default();
    config.trusted_peps = names.iter().map(|n| AgentId::new(n).unwrap()).collect();
    config
}

/// An evaluation that names its subject and carries no credential for it.
fn asserted(subject: &str, tool: &str) -> Value {
    json!({
        "subject": {"type": "agent", "id": subject},
        "action": {"name": "call_tool"},
        "resource": {"type": "tool", "id": tool},
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_pep_asserts_and_the_record_names_it() {
    let s = Service::start(trusting(&["gateway_pep"])).await;
    let pep = s.token("gateway_pep").await;
    let writer = s.token("writer_bot").await;

    let (status, answer) =
        s.post("/access/v1/evaluation", Some(&pep), &asserted("research_bot", "web_search")).await;
    assert_eq!((status, &answer["decision"]), (200, &json!(true)), "{answer}");
    let (_, answer) = s.post("/access/v1/evaluation", Some(&pep), &asserted("research_bot", "shell")).await;
    assert_eq!(answer["context"]["reason"], "no policy allows this");
    // A batch asserts each item's subject the same way.
    let batch = json!({
        "subject": {"type": "agent", "id": "research_bot"},
        "action": {"name": "call_tool"},
        "evaluations": [{"resource": {"type": "tool", "id": "web_search"}}, {"resource": {"type": "tool", "id": "shell"}}],
    });
    let (_, answer) = s.post("/access/v1/evaluations", Some(&pep), &batch).await;
    let decisions: Vec<&Value> =
        answer["evaluations"].as_array().unwrap().iter().map(|e| &e["decision"]).collect();
    assert_eq!(decisions, [&json!(true), &json!(false)]);

    // An agent that is not a trusted enforcement point proved who it is: a decision.
    let (status, answer) =
        s.post("/access/v1/evaluation", Some(&writer), &asserted("research_bot", "web_search")).await;
    assert_eq!((status, &answer["decision"]), (200, &json!(false)));
    assert!(answer["context"]["id"].is_string(), "the refusal is audited: {answer}");
    // No caller credential, a forged one: nobody authenticated.
    for bearer in [None, Some("forged")] {
        let (status, answer) =
            s.post("/access/v1/evaluation", bearer, &asserted("research_bot", "web_search")).await;
        assert_eq!(status, 401, "{bearer:?}: {answer}");
        assert!(answer["request_id"].is_string(), "the refusal is audited: {answer}");
    }

    let records: Vec<Value> =
        s.records().await.into_iter().filter(|r| r["event"] == "authorization").collect();
    assert_eq!(records.len(), 4 + 3);
    for record in &records[..4] {
        assert_eq!(record["agent_id"], "research_bot");
        assert_eq!(record["auth_method"], "asserted");
        assert_eq!(record["detail"]["asserted_by"], "gateway_pep");
    }
    assert_eq!(records[0]["effect"], "allow");
    let untrusted = &records[4];
    assert_eq!((&untrusted["effect"], &untrusted["agent_id"]), (&json!("deny"), &json!("writer_bot")));
    assert_eq!(untrusted["detail"]["asserted_by"], "writer_bot");
    assert!(
        untrusted["reason"].as_str().unwrap().contains("is not a trusted enforcement point"),
        "{untrusted}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_trusted_peps_nobody_asserts() {
    let s = Service::start(ServerConfig::default()).await;
    let pep = s.token("gateway_pep").await;
    let (_, answer) =
        s.post("/access/v1/evaluation", Some(&pep), &asserted("research_bot", "web_search")).await;
    assert_eq!(answer["decision"], false);
    // A subject's own credential is still what decides, whatever the header says.
    let own = json!({
        "subject": {"type": "agent", "id": "research_bot", "properties": {"credential": {"bearer": s.token("research_bot").await}}},
        "action": {"name": "call_tool"},
        "resource": {"type": "tool", "id": "web_search"},
    });
    let (_, answer) = s.post("/access/v1/evaluation", Some(&pep), &own).await;
    assert_eq!(answer["decision"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_subject_is_denied_whoever_vouches_for_it() {
    let state: Arc<dyn StateStore> = redis_store(&redis_url());
    let s = Service::with_state(trusting(&["gateway_pep"]), state.clone()).await;
    let pep = s.token("gateway_pep").await;
    let research = AgentId::new("research_bot").unwrap();
    state.suspend(&research).await.unwrap();
    let (_, answer) =
        s.post("/access/v1/evaluation", Some(&pep), &asserted("research_bot", "web_search")).await;
    assert_eq!(answer["context"]["reason"], "agent suspended");
    state.reinstate(&research).await.unwrap();
    let (_, answer) =
        s.post("/access/v1/evaluation", Some(&pep), &asserted("research_bot", "web_search")).await;
    assert_eq!(answer["decision"], true);
}
