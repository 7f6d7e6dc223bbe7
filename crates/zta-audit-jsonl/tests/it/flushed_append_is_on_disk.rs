//! `Durability::Flushed` returns only once the record is written, synced and checkpointed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use crate::common;

use std::{fs, time::Duration};

use common::{config, record, segments};
use zta_audit_jsonl::{JsonlSink, verify};
use zta_core::{AuditSink, Durability};

#[tokio::test]
async fn a_flushed_append_is_in_the_file_and_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    // A long interval: only the Flushed request itself can cause the commit.
    c.flush_interval = Duration::from_secs(3600);
    let sink = JsonlSink::open(c).unwrap();
    let path = segments(dir.path())[0].clone();
    for i in 0..20u64 {
        let r = record(i);
        let id = r.id.to_string();
        sink.append(r, Durability::Flushed).await.unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.contains(&id), "record {i} is not in the file after a Flushed append");
        assert_eq!(text.lines().count() as u64, i + 1);
        let cp: serde_json::Value =
            serde_json::from_slice(&fs::read(dir.path().join("checkpoint.json")).unwrap()).unwrap();
        assert_eq!(cp["seq"], i + 1, "the checkpoint covers the record");
        // Everything written so far verifies while the sink is open.
        assert_eq!(verify(dir.path(), None).unwrap().checkpoint_seq, i + 1);
    }
}

#[tokio::test]
async fn flush_commits_queued_records() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.flush_interval = Duration::from_secs(3600);
    let sink = JsonlSink::open(c).unwrap();
    for i in 0..100 {
        sink.append(record(i), Durability::Queued).await.unwrap();
    }
    sink.flush().await.unwrap();
    let report = verify(dir.path(), None).unwrap();
    assert_eq!((report.records, report.checkpoint_seq), (100, 100));
}
