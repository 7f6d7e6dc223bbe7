//! `audit:` listing the local log and a NATS JetStream stream (spooled): every decision reaches
//! the stream, whose chain verifies. Needs the NATS of `ZTA_TEST_NATS_URL` (default
//! `nats://127.0.0.1:4222`, JetStream on).
#![cfg(all(
    feature = "audit-nats",
    feature = "identity-static",
    feature = "policy-native",
    feature = "audit-jsonl"
))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::time::{Duration, Instant};

use zta::{Action, Request, audit::nats::verify};

use crate::config_loads_and_refuses_bad_files::logged_in_with_audit;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_audit_gets_every_decision() {
    let url = std::env::var("ZTA_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned());
    let dir = tempfile::tempdir().unwrap();
    let name = format!("ZTA_TEST_FACADE_{}", uuid::Uuid::now_v7().simple());
    let audit = format!(
        "audit:\n  - type: jsonl\n    dir: audit\n  - type: nats\n    url: {url}\n    stream: {name}\n    \
         subject_prefix: zta_test.{name}\n    spool: {{dir: spool}}\n"
    );
    let (built, token) = logged_in_with_audit(dir.path(), &audit).await;

    for tool in ["web_search", "shell", "web_search"] {
        let _ = built.guard.check(&token, Request::new(Action::tool_call(tool))).await;
    }
    built.guard.audit_sink().flush().await.unwrap();

    let deadline = Instant::now() + Duration::from_secs(60);
    let report = loop {
        if let Ok(report) = verify(&url, &name).await
            && report.records.len() == 4
        {
            break report;
        }
        assert!(Instant::now() < deadline, "the stream did not get the 4 records");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let actions: Vec<Option<&str>> =
        report.records.iter().map(|r| r.action.as_ref().map(zta::Action::name)).collect();
    assert_eq!(actions, [None, Some("web_search"), Some("shell"), Some("web_search")]);
    assert_eq!(report.writers.len(), 1);
    let context = async_nats::jetstream::new(async_nats::connect(url.as_str()).await.unwrap());
    context.delete_stream(&name).await.unwrap();
}
