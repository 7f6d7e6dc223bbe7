//! The AuthZEN action search, `POST /access/v1/search/action`: the actions the subject may
//! perform on a resource, each candidate the policy engine names decided in full and audited
//! on its own; advertised in the metadata; pages bound to their search; the evaluation's
//! errors (`400`, `401`, `413`), a single-use credential refused, a trusted enforcement point
//! asserting its subject.

use std::sync::Arc;

use serde_json::{Value, json};
use zta::{AgentId, MemoryStateStore};
use zta_server::ServerConfig;

use crate::common::Service;

const POLICY: &str = "\
policies:
  - {name: search, effect: allow, conditions: {action_type: call_tool, tool_name: web_search}}
  - {name: read_reports, effect: allow, conditions: {agent_id: research_bot, action_type: {in: [read, annotate]}, resource.type: report}}
  - {name: publish_own, effect: allow, conditions: {action_type: publish, resource.owner: {eq: {attr: agent_id}}}}
  - {name: message_the_writer, effect: allow, conditions: {action_type: send_message, target_agent: writer_bot}}
  - {name: drafts_stay_clean, effect: deny, priority: 5, conditions: {action_type: annotate, resource.status: draft}}
";

async fn service(config: ServerConfig) -> Service {
    Service::with_policy(config, Arc::new(MemoryStateStore::new()), None, POLICY).await
}

fn search(credential: Option<Value>, resource: Value) -> Value {
    let mut subject = json!({"type": "agent"});
    if let Some(credential) = credential {
        subject["properties"] = json!({ "credential": credential });
    }
    json!({ "subject": subject, "resource": resource })
}

fn bearer(token: &str) -> Option<Value> {
    Some(json!({ "bearer": token }))
}

fn names(answer: &Value) -> Vec<&str> {
    answer["results"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect()
}

fn report(owner: &str, status: &str) -> Value {
    json!({"type": "report", "id": "q3", "properties": {"owner": owner, "status": status}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_subject_gets_exactly_the_actions_it_is_permitted() {
    let s = service(ServerConfig::default()).await;
    let research = s.token("research_bot").await;
    let writer = s.token("writer_bot").await;

    let (status, answer) = s
        .post("/access/v1/search/action", None, &search(bearer(&research), report("research_bot", "final")))
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(names(&answer), ["annotate", "publish", "read"]);
    assert_eq!(answer["page"], json!({"next_token": "", "count": 3}));
    // The deny on drafts, the owner reference: decided in full, not guessed.
    let (_, answer) = s
        .post("/access/v1/search/action", None, &search(bearer(&research), report("research_bot", "draft")))
        .await;
    assert_eq!(names(&answer), ["publish", "read"]);
    let (_, answer) = s
        .post("/access/v1/search/action", None, &search(bearer(&writer), report("research_bot", "final")))
        .await;
    assert!(names(&answer).is_empty(), "{answer}");
    let (_, answer) = s
        .post("/access/v1/search/action", None, &search(bearer(&writer), report("writer_bot", "final")))
        .await;
    assert_eq!(names(&answer), ["publish"]);

    // A tool: `call_tool` on the tools some rule grants; an agent: the actions toward it.
    let tool = |id: &str| json!({"type": "tool", "id": id});
    let (_, answer) =
        s.post("/access/v1/search/action", None, &search(bearer(&writer), tool("web_search"))).await;
    assert_eq!(names(&answer), ["call_tool"]);
    let (_, answer) = s.post("/access/v1/search/action", None, &search(bearer(&writer), tool("shell"))).await;
    assert!(names(&answer).is_empty(), "{answer}");
    let agent = |id: &str| json!({"type": "agent", "id": id});
    let (_, answer) =
        s.post("/access/v1/search/action", None, &search(bearer(&research), agent("writer_bot"))).await;
    assert_eq!(names(&answer), ["send_message"]);
    let (_, answer) =
        s.post("/access/v1/search/action", None, &search(bearer(&research), agent("ops_bot"))).await;
    assert!(names(&answer).is_empty(), "{answer}");

    // Each candidate the engine named was one audited check: for research_bot's first search
    // annotate, publish, read and send_message (nothing else may be permitted it, and
    // `call_tool` needs a tool).
    let records = s.records().await;
    let first: Vec<&str> = records
        .iter()
        .filter(|r| {
            r["event"] == "authorization" && r["agent_id"] == "research_bot" && r["resource"]["id"] == "q3"
        })
        .map(|r| r["action"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(first.len(), 8, "two searches of four candidates: {first:?}");
    let mut once: Vec<&str> = first[..4].to_vec();
    once.sort_unstable();
    assert_eq!(once, ["annotate", "publish", "read", "send_message"]);

    let (_, _, metadata) = s.get("/.well-known/authzen-configuration").await;
    let metadata: Value = serde_json::from_str(&metadata).unwrap();
    let base = metadata["policy_decision_point"].as_str().unwrap();
    assert_eq!(metadata["search_action_endpoint"], format!("{base}/access/v1/search/action"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_resume_where_they_ended_and_only_for_their_search() {
    let s = service(ServerConfig::default()).await;
    let research = s.token("research_bot").await;
    let mut body = search(bearer(&research), report("research_bot", "final"));
    body["page"] = json!({"limit": 2});
    let (_, first) = s.post("/access/v1/search/action", None, &body).await;
    assert_eq!(names(&first), ["annotate", "publish"]);
    let token = first["page"]["next_token"].as_str().unwrap().to_owned();
    assert!(!token.is_empty());
    body["page"]["token"] = json!(token);
    let (_, second) = s.post("/access/v1/search/action", None, &body).await;
    // read is permitted, send_message (the last candidate) is not.
    assert_eq!(names(&second), ["read"]);
    assert_eq!(second["page"], json!({"next_token": "", "count": 1}));
    // The token of another search.
    body["resource"] = report("writer_bot", "final");
    let (status, answer) = s.post("/access/v1/search/action", None, &body).await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer["error"].as_str().unwrap().contains("page.token"), "{answer}");
    body["page"] = json!({"limit": 0});
    assert_eq!(s.post("/access/v1/search/action", None, &body).await.0, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_the_evaluations() {
    let mut config = ServerConfig::default();
    config.max_body_bytes = 4096;
    config.trusted_peps = vec![AgentId::new("gateway_pep").unwrap()];
    let s = service(config).await;
    let resource = json!({"type": "tool", "id": "web_search"});

    // No credential at all: 401, refused and audited by the guard.
    let (status, answer) = s.post("/access/v1/search/action", None, &search(None, resource.clone())).await;
    assert_eq!(status, 401, "{answer}");
    let id = answer["request_id"].as_str().unwrap().to_owned();
    assert!(s.records().await.iter().any(|r| r["id"] == id.as_str() && r["effect"] == "deny"));
    // Not a search.
    for body in [json!({"subject": {"type": "agent"}}), json!({"resource": resource}), json!([1])] {
        let (status, answer) = s.post("/access/v1/search/action", None, &body).await;
        assert_eq!(status, 400, "{body}: {answer}");
    }
    // A single-use credential cannot prove several checks.
    let assertion = Some(s.assertion_json("research_bot"));
    let (status, answer) =
        s.post("/access/v1/search/action", None, &search(assertion, resource.clone())).await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer["error"].as_str().unwrap().contains("session token"), "{answer}");
    // Too big.
    let mut big = search(bearer("x"), resource.clone());
    big["context"] = json!({ "padding": "x".repeat(8192) });
    assert_eq!(s.post("/access/v1/search/action", None, &big).await.0, 413);
    // A subject whose credential fails: one audited denial, no results.
    let (status, answer) =
        s.post("/access/v1/search/action", None, &search(bearer("forged"), resource.clone())).await;
    assert_eq!(status, 200, "{answer}");
    assert!(names(&answer).is_empty());
    let id = answer["context"]["id"].as_str().unwrap().to_owned();
    let record = s.records().await.into_iter().find(|r| r["id"] == id.as_str()).unwrap();
    assert_eq!(
        (record["effect"].as_str(), record["action"]["name"].as_str()),
        (Some("deny"), Some("search_action"))
    );

    // A trusted enforcement point names the subject; a forged caller is 401.
    let pep = s.token("gateway_pep").await;
    let asserted = json!({"subject": {"type": "agent", "id": "research_bot"}, "resource": resource});
    let (status, answer) = s.post("/access/v1/search/action", Some(&pep), &asserted).await;
    assert_eq!((status, names(&answer)), (200, vec!["call_tool"]), "{answer}");
    let (status, _) = s.post("/access/v1/search/action", Some("forged"), &asserted).await;
    assert_eq!(status, 401);
}
