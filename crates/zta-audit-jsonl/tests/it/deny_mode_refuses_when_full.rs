//! With `on_full: deny`, a full queue refuses at once with `QueueFull`, and nothing accepted is
//! lost. With `on_full: wait`, an append waits for room, but no longer than `full_wait`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use crate::common;

use common::{config, record};
use zta_audit_jsonl::{JsonlSink, OnFull, verify};
use zta_core::{AuditError, AuditSink, Durability};

#[tokio::test]
async fn a_full_queue_refuses_and_accepted_records_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.queue_capacity = 1;
    c.on_full = OnFull::Deny;
    let sink = JsonlSink::open(c).unwrap();
    sink.append(record(0), Durability::Flushed).await.unwrap();

    // The writer is parked with an empty queue: one record fits, the next does not.
    let pause = sink.pause_writer().await;
    sink.append(record(1), Durability::Queued).await.unwrap();
    assert_eq!(sink.append(record(2), Durability::Queued).await, Err(AuditError::QueueFull));
    assert_eq!(sink.append(record(3), Durability::Flushed).await, Err(AuditError::QueueFull));

    drop(pause);
    sink.flush().await.unwrap();
    // After the writer moves on there is room again.
    sink.append(record(4), Durability::Flushed).await.unwrap();
    drop(sink);
    let report = verify(dir.path(), None).unwrap();
    assert_eq!(report.records, 3, "records 0, 1 and 4 were accepted and written");
}

#[tokio::test]
async fn wait_mode_waits_instead() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.queue_capacity = 1;
    let sink = std::sync::Arc::new(JsonlSink::open(c).unwrap());
    let pause = sink.pause_writer().await;
    sink.append(record(1), Durability::Queued).await.unwrap();
    // The next append cannot finish while the writer is parked and the queue is full...
    let s = sink.clone();
    let blocked = tokio::spawn(async move { s.append(record(2), Durability::Queued).await });
    tokio::task::yield_now().await;
    assert!(!blocked.is_finished());
    // ...and goes through once it moves on.
    drop(pause);
    blocked.await.unwrap().unwrap();
    sink.flush().await.unwrap();
    assert_eq!(verify(dir.path(), None).unwrap().records, 2);
}

#[tokio::test]
async fn wait_mode_refuses_once_full_wait_has_passed() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.queue_capacity = 1;
    c.full_wait = std::time::Duration::from_millis(20);
    let sink = JsonlSink::open(c).unwrap();
    // The writer is stuck (as behind a slow fsync) and the queue is full...
    let pause = sink.pause_writer().await;
    sink.append(record(1), Durability::Queued).await.unwrap();
    // ...so appends give up with `QueueFull` (the guard then denies) instead of waiting for
    // the writer. The outer bound only turns a wait forever into a failure.
    let bounded = |d| tokio::time::timeout(std::time::Duration::from_secs(60), d);
    let queued = bounded(sink.append(record(2), Durability::Queued)).await;
    assert_eq!(queued.expect("waited past `full_wait`"), Err(AuditError::QueueFull));
    let flushed = bounded(sink.append(record(3), Durability::Flushed)).await;
    assert_eq!(flushed.expect("waited past `full_wait`"), Err(AuditError::QueueFull));

    drop(pause);
    sink.append(record(4), Durability::Flushed).await.unwrap();
    drop(sink);
    assert_eq!(verify(dir.path(), None).unwrap().records, 2, "records 1 and 4 were accepted and written");
}
