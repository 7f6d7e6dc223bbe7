//! A torn tail left by a crash is moved aside on open, and the chain resumes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use crate::common;

use std::{fs, io::Write};

use common::{config, lines, record, segments, write_records};
use zta_audit_jsonl::{JsonlSink, RecordProblem, verify};
use zta_core::{AuditSink, Durability};

fn append_bytes(path: &std::path::Path, bytes: &[u8]) {
    fs::OpenOptions::new().append(true).open(path).unwrap().write_all(bytes).unwrap();
}

#[tokio::test]
async fn a_partial_line_is_cut_and_the_chain_resumes() {
    let dir = tempfile::tempdir().unwrap();
    write_records(config(dir.path()), 0, 10).await;
    let path = segments(dir.path())[0].clone();
    let good_len = fs::metadata(&path).unwrap().len();
    // What a crash in the middle of writing record 11 leaves behind.
    let partial = b"{\"seq\":11,\"prev_hash\":\"00ab";
    append_bytes(&path, partial);
    assert!(verify(dir.path(), None).is_err());

    let sink = JsonlSink::open(config(dir.path())).unwrap();
    let rec = sink.recovery().expect("the torn tail is reported").clone();
    assert_eq!(rec.file, path);
    assert_eq!((rec.line, rec.offset, rec.torn_bytes), (11, good_len, partial.len() as u64));
    assert_eq!(rec.problem, RecordProblem::Torn);
    assert_eq!(rec.resumed_after_seq, 10);
    assert_eq!(fs::read(&rec.saved_as).unwrap(), partial);
    assert!(rec.saved_as.to_str().unwrap().ends_with("audit-000001.jsonl.torn-1"));
    assert_eq!(fs::metadata(&path).unwrap().len(), good_len);

    for i in 10..15 {
        sink.append(record(i), Durability::Queued).await.unwrap();
    }
    sink.close().await.unwrap();
    drop(sink);
    let report = verify(dir.path(), None).unwrap();
    assert_eq!((report.records, report.checkpoint_seq), (15, 15));
    let v: serde_json::Value = serde_json::from_slice(&lines(&path)[10]).unwrap();
    assert_eq!(v["seq"], 11);

    // A clean reopen reports nothing.
    let sink = JsonlSink::open(config(dir.path())).unwrap();
    assert!(sink.recovery().is_none());
}

#[tokio::test]
async fn garbage_after_the_checkpoint_is_cut_too() {
    // Unsynced data can come back as zeros or junk lines after a power loss; whatever follows
    // the checkpoint and does not continue the chain is moved aside, good lines after it too.
    let dir = tempfile::tempdir().unwrap();
    write_records(config(dir.path()), 0, 5).await;
    let path = segments(dir.path())[0].clone();
    let good = lines(&path);
    let mut tail = vec![0u8; 100];
    tail.push(b'\n');
    tail.extend_from_slice(&good[4]); // a well-formed but out-of-place line after the junk
    append_bytes(&path, &tail);

    let sink = JsonlSink::open(config(dir.path())).unwrap();
    let rec = sink.recovery().unwrap();
    assert_eq!((rec.line, rec.torn_bytes, rec.resumed_after_seq), (6, tail.len() as u64, 5));
    assert!(matches!(rec.problem, RecordProblem::Malformed(_)));
    sink.append(record(5), Durability::Flushed).await.unwrap();
    drop(sink);
    assert_eq!(verify(dir.path(), None).unwrap().records, 6);
}

#[tokio::test]
async fn records_written_after_the_last_checkpoint_are_kept() {
    // A crash after the data reached the disk but before the checkpoint was replaced: the
    // records are intact, so they are kept and the checkpoint catches up.
    let dir = tempfile::tempdir().unwrap();
    write_records(config(dir.path()), 0, 5).await;
    let old_checkpoint = fs::read(dir.path().join("checkpoint.json")).unwrap();
    write_records(config(dir.path()), 5, 3).await;
    fs::write(dir.path().join("checkpoint.json"), old_checkpoint).unwrap();
    assert_eq!(verify(dir.path(), None).unwrap().checkpoint_seq, 5);

    let sink = JsonlSink::open(config(dir.path())).unwrap();
    assert!(sink.recovery().is_none());
    drop(sink);
    let report = verify(dir.path(), None).unwrap();
    assert_eq!((report.records, report.checkpoint_seq), (8, 8));
}

#[tokio::test]
async fn a_torn_tail_in_a_fresh_file_after_rotation_is_recovered() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.max_file_bytes = 1500;
    write_records(c.clone(), 0, 6).await;
    let files = segments(dir.path());
    assert!(files.len() >= 2);
    let last = files.last().unwrap();
    append_bytes(last, b"{\"seq\":7");
    let sink = JsonlSink::open(c).unwrap();
    assert_eq!(sink.recovery().unwrap().resumed_after_seq, 6);
    sink.append(record(6), Durability::Flushed).await.unwrap();
    drop(sink);
    assert_eq!(verify(dir.path(), None).unwrap().records, 7);
}
