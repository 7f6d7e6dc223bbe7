//! `queued()` counts the records accepted and not yet committed (queued, or written and not yet
//! fsynced and checkpointed): what `/metrics` shows as the audit queue depth. A commit takes
//! them off; a writer that failed counts nothing (what it lost is reported as lost).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use crate::common;

use common::{config, record};
use zta_audit_jsonl::JsonlSink;
use zta_core::{AuditSink, Durability};

#[tokio::test]
async fn accepted_records_count_until_their_commit() {
    let dir = tempfile::tempdir().unwrap();
    let sink = JsonlSink::open(config(dir.path())).unwrap();
    assert_eq!(sink.queued(), Some(0));
    let pause = sink.pause_writer().await;
    for i in 0..3 {
        sink.append(record(i), Durability::Queued).await.unwrap();
    }
    assert_eq!(sink.queued(), Some(3), "the writer is parked: nothing is committed");
    drop(pause);
    sink.flush().await.unwrap();
    assert_eq!(sink.queued(), Some(0));
    sink.append(record(3), Durability::Flushed).await.unwrap();
    assert_eq!(sink.queued(), Some(0), "a flushed append returns once committed");
    sink.close().await.unwrap();
}

#[tokio::test]
async fn a_failed_writer_counts_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.max_file_bytes = 1; // every record gets its own file
    let sink = JsonlSink::open(c).unwrap();
    sink.append(record(0), Durability::Flushed).await.unwrap();
    // The next segment's name is taken by a directory: rotation cannot create it.
    std::fs::create_dir(dir.path().join("audit-000002.jsonl")).unwrap();
    sink.append(record(1), Durability::Flushed).await.unwrap_err();
    assert_eq!(sink.queued(), Some(0));
}
