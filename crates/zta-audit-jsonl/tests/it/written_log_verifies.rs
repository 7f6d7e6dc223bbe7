//! A log written through the sink verifies, across reopenings.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use crate::common;

use common::{config, lines, record, segments, write_records};
use zta_audit_jsonl::{JsonlSink, SignatureStatus, verify};
use zta_core::{AuditRecord, AuditSink, Durability};

#[tokio::test]
async fn written_records_verify_and_reopen_continues_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    write_records(config(dir.path()), 0, 500).await;

    let report = verify(dir.path(), None).unwrap();
    assert_eq!(report.records, 500);
    assert_eq!(report.last_seq, 500);
    assert_eq!(report.checkpoint_seq, 500);
    assert_eq!(report.files, vec!["audit-000001.jsonl".to_owned()]);
    assert_eq!(report.signature, SignatureStatus::Unsigned);
    // Unsigned: the chain is intact, but the report does not call the tail protected.
    assert!(!report.tail_protected());
    let shown = report.to_string();
    assert!(
        shown.starts_with("chain intact, but the tail is UNPROTECTED: the checkpoint is unsigned"),
        "{shown}"
    );
    assert!(shown.contains("; 500 records in 1 files, last seq 500"), "{shown}");

    // Every line is JSON in the documented shape, with the record intact.
    let all = lines(&segments(dir.path())[0]);
    assert_eq!(all.len(), 500);
    let mut prev = "0".repeat(64);
    for (i, line) in all.iter().enumerate() {
        let v: serde_json::Value = serde_json::from_slice(line).unwrap();
        assert_eq!(v["seq"], i as u64 + 1);
        assert_eq!(v["prev_hash"], prev.as_str());
        prev = v["hash"].as_str().unwrap().to_owned();
        let r: AuditRecord = serde_json::from_value(v["record"].clone()).unwrap();
        assert_eq!(r.detail["i"], i as u64);
        assert_eq!(r.resource.unwrap().id, format!("doc-{i}"));
    }
    assert_eq!(report.last_hash, prev);

    // Reopening continues at seq 501 with the link to 500.
    let sink = JsonlSink::open(config(dir.path())).unwrap();
    assert!(sink.recovery().is_none());
    sink.append(record(500), Durability::Flushed).await.unwrap();
    drop(sink);
    let report = verify(dir.path(), None).unwrap();
    assert_eq!((report.records, report.checkpoint_seq), (501, 501));
    let last: serde_json::Value =
        serde_json::from_slice(lines(&segments(dir.path())[0]).last().unwrap()).unwrap();
    assert_eq!(last["prev_hash"], prev.as_str());
}

#[tokio::test]
async fn an_empty_log_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let sink = JsonlSink::open(config(dir.path())).unwrap();
    sink.flush().await.unwrap();
    drop(sink);
    let report = verify(dir.path(), None).unwrap();
    assert_eq!((report.records, report.last_seq, report.checkpoint_seq), (0, 0, 0));
}

#[test]
fn a_directory_without_a_log_does_not_verify() {
    let dir = tempfile::tempdir().unwrap();
    let err = verify(dir.path(), None).unwrap_err();
    assert!(err.to_string().contains("holds no audit log"), "{err}");
}

#[tokio::test]
async fn dropping_the_sink_commits_what_is_queued() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.flush_interval = std::time::Duration::from_secs(3600);
    let sink = JsonlSink::open(c).unwrap();
    for i in 0..1000 {
        sink.append(record(i), Durability::Queued).await.unwrap();
    }
    drop(sink);
    let report = verify(dir.path(), None).unwrap();
    assert_eq!((report.records, report.checkpoint_seq), (1000, 1000));
}

#[tokio::test]
async fn closed_sink_refuses_records() {
    let dir = tempfile::tempdir().unwrap();
    let sink = JsonlSink::open(config(dir.path())).unwrap();
    sink.append(record(0), Durability::Queued).await.unwrap();
    sink.close().await.unwrap();
    assert_eq!(sink.append(record(1), Durability::Queued).await, Err(zta_core::AuditError::Closed));
    assert_eq!(verify(dir.path(), None).unwrap().records, 1);
}

#[tokio::test]
async fn a_second_writer_is_locked_out() {
    let dir = tempfile::tempdir().unwrap();
    let sink = JsonlSink::open(config(dir.path())).unwrap();
    let err = JsonlSink::open(config(dir.path())).unwrap_err();
    assert!(matches!(err, zta_audit_jsonl::Error::Locked { .. }), "{err}");
    drop(sink);
    JsonlSink::open(config(dir.path())).unwrap();
}

#[tokio::test]
async fn close_releases_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let first = JsonlSink::open(config(dir.path())).unwrap();
    first.append(record(0), Durability::Queued).await.unwrap();
    first.close().await.unwrap();
    // `first` still exists, but it has let go.
    let second = JsonlSink::open(config(dir.path())).unwrap();
    second.append(record(1), Durability::Flushed).await.unwrap();
    assert_eq!(verify(dir.path(), None).unwrap().records, 2);
    drop(first);
}

#[cfg(unix)]
#[tokio::test]
async fn files_are_closed_to_others() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("audit");
    write_records(config(&dir), 0, 1).await;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir) & 0o007, 0);
    for f in [segments(&dir)[0].clone(), dir.join("checkpoint.json")] {
        assert_eq!(mode(&f) & 0o007, 0, "{f:?}");
    }
}
