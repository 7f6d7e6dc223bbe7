//! `/readyz` is 503, naming the failing part, while the state store or the audit sink cannot
//! be used (a Redis on a closed port, a stopped sink), and 200 otherwise; `/metrics` counts
//! evaluations by effect and reason, their latency, and state-store failures, and shows the
//! audit sink's queue depth, in the Prometheus text format.

use std::sync::Arc;

use serde_json::{Value, json};
use zta::{AuditError, AuditRecord, AuditSink, Durability, MemoryStateStore};
use zta_server::ServerConfig;

use crate::common::{Service, redis_store, redis_url};

/// A sink whose writer has stopped: it takes nothing, and says so when asked.
#[derive(Debug)]
struct StoppedSink;

#[async_trait::async_trait]
impl AuditSink for StoppedSink {
    async fn append(&self, _: AuditRecord, _: Durability) -> Result<(), AuditError> {
        Err(AuditError::Closed)
    }
    async fn flush(&self) -> Result<(), AuditError> {
        Ok(())
    }
    async fn ready(&self) -> Result<(), AuditError> {
        Err(AuditError::Closed)
    }
}

fn evaluation(credential: &Value, tool: &str) -> Value {
    json!({
        "subject": {"type": "agent", "properties": {"credential": credential}},
        "action": {"name": "call_tool"},
        "resource": {"type": "tool", "id": tool},
    })
}

/// The value of the sample `name` (with its labels) in an exposition.
fn sample(text: &str, name: &str) -> f64 {
    let line = text.lines().find(|l| l.strip_prefix(name).is_some_and(|rest| rest.starts_with(' ')));
    line.unwrap_or_else(|| panic!("no `{name}` in\n{text}")).rsplit(' ').next().unwrap().parse().unwrap()
}

async fn readyz(s: &Service) -> (u16, Value) {
    let (status, content_type, body) = s.get("/readyz").await;
    assert!(content_type.starts_with("application/json"), "{content_type}");
    (status, serde_json::from_str(&body).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_while_every_part_answers() {
    let s = Service::start(ServerConfig::default()).await;
    assert_eq!(readyz(&s).await, (200, json!({"ready": true})));
    let s = Service::with_state(ServerConfig::default(), redis_store(&redis_url())).await;
    assert_eq!(readyz(&s).await, (200, json!({"ready": true})), "needs the Redis at {}", redis_url());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_redis_is_not_ready_and_counts_as_state_errors() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let s =
        Service::with_state(ServerConfig::default(), redis_store(&format!("redis://127.0.0.1:{closed}/")))
            .await;
    assert_eq!(readyz(&s).await, (503, json!({"ready": false, "failing": ["state_store"]})));
    // An evaluation needs the store (the assertion's one-time id): denied, and counted.
    let (status, answer) = s
        .post("/access/v1/evaluation", None, &evaluation(&s.assertion_json("research_bot"), "web_search"))
        .await;
    assert_eq!((status, &answer["decision"]), (200, &json!(false)));
    assert_eq!(answer["context"]["reason"], "state store unavailable");
    let (_, _, text) = s.get("/metrics").await;
    assert_eq!(sample(&text, "zta_decisions_total{effect=\"deny\",reason=\"state_store_unavailable\"}"), 1.0);
    assert_eq!(sample(&text, "zta_state_store_errors_total"), 2.0, "the probe and the evaluation");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_audit_sink_is_not_ready() {
    let sink: Arc<dyn AuditSink> = Arc::new(StoppedSink);
    let s = Service::with_parts(ServerConfig::default(), Arc::new(MemoryStateStore::new()), Some(sink)).await;
    assert_eq!(readyz(&s).await, (503, json!({"ready": false, "failing": ["audit_sink"]})));
    let (_, answer) = s
        .post("/access/v1/evaluation", None, &evaluation(&s.assertion_json("research_bot"), "web_search"))
        .await;
    assert_eq!(answer["context"]["reason"], "audit log unavailable");
    let (_, _, text) = s.get("/metrics").await;
    assert_eq!(sample(&text, "zta_decisions_total{effect=\"deny\",reason=\"audit_unavailable\"}"), 1.0);
}

/// A sink that takes every record and reports a fixed queue.
#[derive(Debug)]
struct Backlogged(u64);

#[async_trait::async_trait]
impl AuditSink for Backlogged {
    async fn append(&self, _: AuditRecord, _: Durability) -> Result<(), AuditError> {
        Ok(())
    }
    async fn flush(&self) -> Result<(), AuditError> {
        Ok(())
    }
    fn queued(&self) -> Option<u64> {
        Some(self.0)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_queue_depth_is_what_the_sink_reports() {
    let sink: Arc<dyn AuditSink> = Arc::new(Backlogged(42));
    let s = Service::with_parts(ServerConfig::default(), Arc::new(MemoryStateStore::new()), Some(sink)).await;
    let (_, _, text) = s.get("/metrics").await;
    assert_eq!(sample(&text, "zta_audit_queue_depth"), 42.0);
    assert!(text.contains("# TYPE zta_audit_queue_depth gauge"), "{text}");
    // A sink without a queue of its own (the default) leaves the series out.
    let s = Service::with_parts(
        ServerConfig::default(),
        Arc::new(MemoryStateStore::new()),
        Some(Arc::new(StoppedSink)),
    )
    .await;
    assert!(!s.get("/metrics").await.2.contains("zta_audit_queue_depth"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_decisions_by_effect_and_reason_with_their_latency() {
    let s = Service::start(ServerConfig::default()).await;
    let token = json!({"bearer": s.token("research_bot").await});
    for (credential, tool) in [
        (&token, "web_search"),
        (&token, "web_search"),
        (&token, "shell"),
        (&json!({"bearer": "forged"}), "web_search"),
    ] {
        assert_eq!(s.post("/access/v1/evaluation", None, &evaluation(credential, tool)).await.0, 200);
    }
    // A tool call without a tool is refused before the guard; it still counts.
    let no_tool = json!({"subject": {"type": "agent", "properties": {"credential": token}}, "action": {"name": "call_tool"}});
    assert_eq!(s.post("/access/v1/evaluation", None, &no_tool).await.1["decision"], false);

    // Everything audited is durable: the JSON Lines sink's queue is empty.
    s.guard.audit_sink().flush().await.unwrap();
    let (status, content_type, text) = s.get("/metrics").await;
    assert_eq!(status, 200);
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    for (name, value) in [
        ("zta_audit_queue_depth", 0.0),
        ("zta_decisions_total{effect=\"allow\",reason=\"permitted\"}", 2.0),
        ("zta_decisions_total{effect=\"deny\",reason=\"default_deny\"}", 1.0),
        ("zta_decisions_total{effect=\"deny\",reason=\"unauthenticated\"}", 1.0),
        ("zta_decisions_total{effect=\"deny\",reason=\"invalid_request\"}", 1.0),
        ("zta_decisions_total{effect=\"deny\",reason=\"suspended\"}", 0.0),
        ("zta_decision_duration_seconds_bucket{le=\"+Inf\"}", 5.0),
        ("zta_decision_duration_seconds_count", 5.0),
        ("zta_state_store_errors_total", 0.0),
    ] {
        assert_eq!(sample(&text, name), value, "{name}");
    }
    assert!(sample(&text, "zta_decision_duration_seconds_sum") > 0.0);
    // Every line is a comment or a sample with a number.
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let value = line.rsplit(' ').next().unwrap();
        assert!(value.parse::<f64>().is_ok(), "{line}");
    }
}
