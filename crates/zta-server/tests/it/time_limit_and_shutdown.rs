//! A request still running at `request_timeout` is answered 503 (here: a state store that never
//! answers); shutting down stops the service after the requests in flight and flushes the audit
//! sink last, and a flush that fails is `serve_on`'s error. A zero time limit is refused.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use serde_json::json;
use time::OffsetDateTime;
use zta::{
    AgentId, AuditError, AuditRecord, AuditSink, Durability, MemoryStateStore, Standing, StateError,
    StateStore,
};
use zta_server::ServerConfig;

use crate::common::Service;

/// A state store whose every call waits forever (a backend that accepted the connection and
/// went silent).
#[derive(Debug)]
struct SilentStore;

#[async_trait::async_trait]
impl StateStore for SilentStore {
    async fn revoke(&self, _: &str, _: OffsetDateTime) -> Result<(), StateError> {
        std::future::pending().await
    }
    async fn revoke_agent(&self, _: &AgentId, _: OffsetDateTime) -> Result<(), StateError> {
        std::future::pending().await
    }
    async fn suspend(&self, _: &AgentId) -> Result<(), StateError> {
        std::future::pending().await
    }
    async fn reinstate(&self, _: &AgentId) -> Result<(), StateError> {
        std::future::pending().await
    }
    async fn is_suspended(&self, _: &AgentId) -> Result<bool, StateError> {
        std::future::pending().await
    }
    async fn standing<'k>(
        &self,
        _: &[&'k str],
        _: &AgentId,
        _: OffsetDateTime,
    ) -> Result<Standing, StateError> {
        std::future::pending().await
    }
    async fn add_failure(&self, _: &str, _: Duration) -> Result<u32, StateError> {
        std::future::pending().await
    }
    async fn failures(&self, _: &str) -> Result<u32, StateError> {
        std::future::pending().await
    }
    async fn clear_failures(&self, _: &str) -> Result<(), StateError> {
        std::future::pending().await
    }
    async fn claim_once(&self, _: &str, _: OffsetDateTime) -> Result<bool, StateError> {
        std::future::pending().await
    }
}

/// Keeps records in memory and notes how many it held at each flush; can fail its flushes.
#[derive(Debug, Default)]
struct CountingSink {
    records: Mutex<usize>,
    flushes: Mutex<Vec<usize>>,
    fail_flush: bool,
}

#[async_trait::async_trait]
impl AuditSink for CountingSink {
    async fn append(&self, _: AuditRecord, _: Durability) -> Result<(), AuditError> {
        *self.records.lock().unwrap() += 1;
        Ok(())
    }
    async fn flush(&self) -> Result<(), AuditError> {
        self.flushes.lock().unwrap().push(*self.records.lock().unwrap());
        if self.fail_flush { Err(AuditError::write("disk full")) } else { Ok(()) }
    }
}

fn evaluation(credential: serde_json::Value) -> serde_json::Value {
    json!({
        "subject": {"type": "agent", "properties": {"credential": credential}},
        "action": {"name": "call_tool"},
        "resource": {"type": "tool", "id": "web_search"},
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_over_the_time_limit_is_503() {
    let mut config = ServerConfig::default();
    config.request_timeout = Duration::from_millis(200);
    let s = Service::with_parts(config, Arc::new(SilentStore), None).await;
    let (status, answer) =
        s.post("/access/v1/evaluation", None, &evaluation(s.assertion_json("research_bot"))).await;
    assert_eq!((status, answer), (503, json!({"error": "request timed out"})));
    // The service still answers what needs no state.
    assert_eq!(s.get("/healthz").await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_flushes_the_audit_sink_after_the_last_request() {
    let sink = Arc::new(CountingSink::default());
    let s =
        Service::with_parts(ServerConfig::default(), Arc::new(MemoryStateStore::new()), Some(sink.clone()))
            .await;
    let token = json!({"bearer": s.token("research_bot").await});
    for _ in 0..3 {
        assert_eq!(
            s.post("/access/v1/evaluation", None, &evaluation(token.clone())).await.1["decision"],
            true
        );
    }
    assert!(sink.flushes.lock().unwrap().is_empty());
    let url = s.url.clone();
    s.stop().await.unwrap();
    // One login and three decisions, all taken before the one flush at shutdown.
    assert_eq!(*sink.flushes.lock().unwrap(), [4]);
    assert!(reqwest::get(format!("{url}/healthz")).await.is_err(), "the listener is closed");

    let failing = Arc::new(CountingSink { fail_flush: true, ..CountingSink::default() });
    let s =
        Service::with_parts(ServerConfig::default(), Arc::new(MemoryStateStore::new()), Some(failing)).await;
    let error = s.stop().await.unwrap_err();
    assert!(error.to_string().contains("disk full"), "{error}");
}

#[test]
fn a_zero_time_limit_is_refused() {
    let error = serde_json::from_str::<ServerConfig>(r#"{"request_timeout": "0s"}"#).unwrap_err();
    assert!(error.to_string().contains("must be longer than zero"), "{error}");
    let config: ServerConfig = serde_json::from_str(r#"{"request_timeout": "2s"}"#).unwrap();
    assert_eq!(config.request_timeout, Duration::from_secs(2));
}
