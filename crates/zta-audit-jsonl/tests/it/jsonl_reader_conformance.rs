//! `JsonlReader` passes the `AuditSource` conformance suite (zta-testkit): what a `JsonlSink`
//! wrote to a directory, a reader of that directory finds with `zta audit query`'s semantics,
//! across a rotation too.
#![allow(clippy::unwrap_used)]

use zta_audit_jsonl::{JsonlConfig, JsonlReader, JsonlSink};
use zta_testkit::audit_source;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance() {
    let dir = tempfile::tempdir().unwrap();
    let sink = JsonlSink::open(JsonlConfig::new(dir.path())).unwrap();
    audit_source::run_all(&sink, &JsonlReader::new(dir.path())).await;
    sink.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_across_rotated_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = JsonlConfig::new(dir.path());
    config.max_file_bytes = 2048;
    let sink = JsonlSink::open(config).unwrap();
    audit_source::run_all(&sink, &JsonlReader::new(dir.path())).await;
    sink.close().await.unwrap();
    let segments = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "jsonl"))
        .count();
    assert!(segments > 1, "the log rotated ({segments} segments)");
}
