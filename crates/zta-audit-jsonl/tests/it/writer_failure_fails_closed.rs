//! When the writer cannot write, appends fail and keep failing (and the readiness probe says
//! so): nothing is dropped quietly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use crate::common;

use std::fs;

use common::{config, record, segments};
use zta_audit_jsonl::{JsonlSink, VerifyError, verify};
use zta_core::{AuditError, AuditSink, Durability};

#[tokio::test]
async fn an_io_error_fails_the_waiter_and_every_later_call() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.max_file_bytes = 1; // every record gets its own file
    let sink = JsonlSink::open(c.clone()).unwrap();
    sink.append(record(0), Durability::Flushed).await.unwrap();
    sink.ready().await.unwrap();
    // The next segment's name is taken by a directory: rotation cannot create it.
    let blocker = dir.path().join("audit-000002.jsonl");
    fs::create_dir(&blocker).unwrap();

    let err = sink.append(record(1), Durability::Flushed).await.unwrap_err();
    let AuditError::Write(msg) = &err else { panic!("expected a write error, got {err:?}") };
    assert!(msg.to_string().contains("audit-000002.jsonl"), "{msg}");
    // Fail closed from now on, with the cause.
    assert_eq!(sink.append(record(2), Durability::Queued).await, Err(err.clone()));
    assert_eq!(sink.append(record(3), Durability::Flushed).await, Err(err.clone()));
    assert_eq!(sink.flush().await, Err(err.clone()));
    assert_eq!(sink.ready().await, Err(err.clone()), "a readiness probe says so too");
    drop(sink);

    // What was acknowledged is intact, and the record that never made it is reported lost;
    // after clearing the obstacle the log reopens.
    fs::remove_dir(&blocker).unwrap();
    let Err(VerifyError::Lost { losses }) = verify(dir.path(), None) else { panic!("loss not reported") };
    assert_eq!((losses.len(), losses[0].after_seq, losses[0].missing), (1, 1, 1), "{losses:?}");
    let sink = JsonlSink::open(c).unwrap();
    sink.append(record(4), Durability::Flushed).await.unwrap();
    drop(sink);
    // Dealt with: the loss file moves out, and the log verifies.
    fs::rename(dir.path().join(&losses[0].file), dir.path().join("handled.txt")).unwrap();
    assert_eq!(verify(dir.path(), None).unwrap().records, 2);
    assert_eq!(segments(dir.path()).len(), 2);
}

#[tokio::test]
async fn a_checkpoint_that_cannot_be_written_fails_closed() {
    let dir = tempfile::tempdir().unwrap();
    let sink = JsonlSink::open(config(dir.path())).unwrap();
    sink.append(record(0), Durability::Flushed).await.unwrap();
    fs::create_dir(dir.path().join("checkpoint.json.tmp")).unwrap();
    let err = sink.append(record(1), Durability::Flushed).await.unwrap_err();
    assert!(matches!(&err, AuditError::Write(m) if m.to_string().contains("checkpoint")), "{err:?}");
    assert!(matches!(sink.append(record(2), Durability::Queued).await, Err(AuditError::Write(_))));
    drop(sink);
    // Record 1 was written and fsynced before the checkpoint failed: nothing was lost.
    assert!(common::loss_files(dir.path()).is_empty());
    assert_eq!(verify(dir.path(), None).unwrap().records, 2);
}
