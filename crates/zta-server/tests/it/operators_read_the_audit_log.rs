//! `GET /zta/v1/audit` finds records with `zta audit query`'s filters, latest first cut,
//! oldest first shown; only a configured operator's bearer credential may read, and a refused
//! read is audited. Parameters that are not the API's are `400`; a store that fails is `503`
//! without its cause; no readable store is `404`.

use std::sync::Arc;

use serde_json::{Value, json};
use zta::AgentId;
use zta_server::ServerConfig;

use crate::common::{Service, answer};

pub(crate) fn with_operator() -> ServerConfig {
    let mut config = ServerConfig::default();
    config.operators = vec![AgentId::new("ops_bot").unwrap()];
    config
}

pub(crate) fn tool_call(token: &str, tool: &str) -> Value {
    json!({
        "subject": {"type": "agent", "properties": {"credential": {"bearer": token}}},
        "action": {"name": "call_tool"},
        "resource": {"type": "tool", "id": tool},
    })
}

async fn read(s: &Service, query: &str, bearer: Option<&str>) -> (u16, Value) {
    s.guard.audit_sink().flush().await.unwrap();
    let mut request = s.http.get(format!("{}/zta/v1/audit{query}", s.url));
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    answer(request.send().await.unwrap()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_find_records_with_the_query_filters() {
    let s = Service::start(with_operator()).await;
    let research = s.token("research_bot").await;
    let writer = s.token("writer_bot").await;
    let ops = s.token("ops_bot").await;
    for (token, tool) in
        [(&research, "web_search"), (&writer, "shell"), (&writer, "web_search"), (&writer, "rm")]
    {
        let (status, _) = s.post("/access/v1/evaluation", None, &tool_call(token, tool)).await;
        assert_eq!(status, 200);
    }

    let (status, found) = read(&s, "?agent=writer_bot&effect=deny", Some(&ops)).await;
    assert_eq!(status, 200, "{found}");
    let tools: Vec<&str> =
        found["records"].as_array().unwrap().iter().map(|r| r["action"]["name"].as_str().unwrap()).collect();
    assert_eq!(tools, ["shell", "rm"], "oldest first");
    assert_eq!(found["more"], false);

    let (_, latest) = read(&s, "?agent=writer_bot&effect=deny&limit=1", Some(&ops)).await;
    assert_eq!(latest["records"].as_array().unwrap().len(), 1);
    assert_eq!(latest["records"][0]["action"]["name"], "rm", "the latest one");
    assert_eq!(latest["more"], true);

    let (_, logins) = read(&s, "?event=login&reason=&agent=", Some(&ops)).await;
    assert_eq!(logins["records"].as_array().unwrap().len(), 3, "empty parameters filter nothing: {logins}");
    let (_, allowed) = read(&s, "?effect=allow&event=authorization", Some(&ops)).await;
    assert_eq!(allowed["records"].as_array().unwrap().len(), 2);

    for bad in
        ["?effect=maybe", "?event=nothing", "?limit=0", "?limit=1001", "?since=yesterday", "?colour=red"]
    {
        let (status, answer) = read(&s, bad, Some(&ops)).await;
        assert_eq!(status, 400, "{bad}: {answer}");
        assert!(answer["error"].is_string());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_operators_read_and_refusals_are_audited() {
    let s = Service::start(with_operator()).await;
    let writer = s.token("writer_bot").await;
    let (status, _) = read(&s, "", None).await;
    assert_eq!(status, 401);
    let (status, answer) = read(&s, "", Some(&writer)).await;
    assert_eq!((status, &answer["error"]), (403, &json!("the caller is not an operator")));
    let refusals: Vec<Value> =
        s.records().await.into_iter().filter(|r| r["event"] == "admin" && r["effect"] == "deny").collect();
    assert_eq!(refusals.len(), 2, "{refusals:?}");
    assert_eq!(refusals[1]["agent_id"], "writer_bot");

    // Without operators nobody reads; without a readable store there is nothing to read.
    let none = Service::start(ServerConfig::default()).await;
    let ops = none.token("ops_bot").await;
    assert_eq!(read(&none, "", Some(&ops)).await.0, 403);
    let dir = tempfile::tempdir().unwrap();
    let sink: Arc<dyn zta::AuditSink> = Arc::new(
        zta::audit::jsonl::JsonlSink::open(zta::audit::jsonl::JsonlConfig::new(dir.path())).unwrap(),
    );
    let unread =
        Service::with_parts(with_operator(), Arc::new(zta::MemoryStateStore::new()), Some(sink)).await;
    let ops = unread.token("ops_bot").await;
    let (status, answer) = read(&unread, "", Some(&ops)).await;
    assert_eq!(status, 404, "{answer}");
}

/// A store that cannot be read.
#[derive(Debug)]
struct Unreadable;

#[async_trait::async_trait]
impl zta::AuditSource for Unreadable {
    async fn query(
        &self,
        _: &zta::AuditQuery,
        _: usize,
    ) -> Result<Vec<zta::AuditRecord>, zta::AuditReadError> {
        Err(zta::AuditReadError::read("disk on fire at /var/lib/secret-path"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_fails_is_503_and_the_cause_is_not_shown() {
    let mut config = with_operator();
    config.audit_source = Some(Arc::new(Unreadable));
    let s = Service::start(config).await;
    let ops = s.token("ops_bot").await;
    let (status, answer) = read(&s, "?effect=deny", Some(&ops)).await;
    assert_eq!((status, &answer["error"]), (503, &json!("the audit store cannot be read")));
    assert!(!answer.to_string().contains("secret-path"), "{answer}");
}
