//! A queued record may already have let its request through. When the writer fails before such
//! records are durable, the sink refuses everything after, lists every lost record's request id
//! in a `lost-<time>.txt` file beside the log, and `verify` reports the gap instead of "ok".
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use crate::common;

use std::fs;

use common::{config, loss_files, record};
use zta_audit_jsonl::{JsonlConfig, JsonlSink, VerifyError, verify};
use zta_core::{AuditError, AuditRecord, AuditSink, Durability};

/// The request ids of `records`, as the loss file lists them.
fn ids(records: &[AuditRecord]) -> Vec<String> {
    records.iter().map(|r| r.id.to_string()).collect()
}

/// The ids a loss file lists, and its header lines.
fn read_loss_file(dir: &std::path::Path) -> (Vec<String>, String) {
    let files = loss_files(dir);
    assert_eq!(files.len(), 1, "one loss file: {files:?}");
    let text = fs::read_to_string(&files[0]).unwrap();
    let listed = text.lines().filter(|l| !l.starts_with('#')).map(str::to_owned).collect();
    (listed, text)
}

/// A sink holding record 0, then five records queued while its writer was paused, with the
/// second segment's name taken by a directory before the writer goes on.
async fn five_queued_then_blocked(c: JsonlConfig, dir: &std::path::Path) -> (JsonlSink, Vec<AuditRecord>) {
    let sink = JsonlSink::open(c).unwrap();
    sink.append(record(0), Durability::Flushed).await.unwrap();
    let pause = sink.pause_writer().await;
    let queued: Vec<AuditRecord> = (1..=5).map(record).collect();
    for r in &queued {
        sink.append(r.clone(), Durability::Queued).await.unwrap();
    }
    fs::create_dir(dir.join("audit-000002.jsonl")).unwrap();
    drop(pause);
    (sink, queued)
}

#[tokio::test]
async fn queued_records_lost_to_a_write_failure_are_listed_and_verify_reports_the_gap() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.max_file_bytes = 1; // every record gets its own file
    // Five requests are permitted on a queued record while the writer is busy, and then it
    // cannot write them: the next segment's name is taken by a directory.
    let (sink, queued) = five_queued_then_blocked(c, dir.path()).await;
    let blocker = dir.path().join("audit-000002.jsonl");

    // The sink is closed from the first failure on: every later request is refused.
    assert!(matches!(sink.flush().await, Err(AuditError::Write(_))));
    let err = sink.append(record(6), Durability::Queued).await.unwrap_err();
    assert!(matches!(&err, AuditError::Write(m) if m.to_string().contains("audit-000002.jsonl")), "{err:?}");
    drop(sink);

    // The loss is on record with every request id.
    let (listed, text) = read_loss_file(dir.path());
    assert_eq!(listed, ids(&queued));
    assert!(text.contains("# after_seq: 1\n") && text.contains("# lost: 5\n"), "{text}");
    assert!(text.contains("# error: cannot create"), "{text}");

    // `verify` reports the gap as a failure, not "ok".
    fs::remove_dir(&blocker).unwrap();
    let err = verify(dir.path(), None).unwrap_err();
    let VerifyError::Lost { losses } = &err else { panic!("expected the loss, got {err:?}") };
    assert_eq!((losses.len(), losses[0].after_seq, losses[0].missing, losses[0].listed), (1, 1, 5, 5));
    assert!(err.to_string().contains("5 records were lost after seq 1"), "{err}");
}

#[tokio::test]
async fn only_records_that_did_not_reach_the_disk_are_listed() {
    // The length of one log line, to size the segments.
    let probe = tempfile::tempdir().unwrap();
    common::write_records(config(probe.path()), 0, 1).await;
    let line = fs::metadata(probe.path().join("audit-000001.jsonl")).unwrap().len();

    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    // Records 0 to 3 fit the first segment (lines differ by a few bytes: the time's digits).
    c.max_file_bytes = 4 * line + line / 2;
    let (sink, queued) = five_queued_then_blocked(c, dir.path()).await;
    // Records 1 to 3 (seq 2 to 4) are written and fsynced when the segment is finished; record
    // 4 needs the next segment, which cannot be created.
    assert!(matches!(sink.flush().await, Err(AuditError::Write(_))));
    drop(sink);

    let (listed, text) = read_loss_file(dir.path());
    assert_eq!(listed, ids(&queued[3..]));
    assert!(text.contains("# after_seq: 4\n") && text.contains("# lost: 2\n"), "{text}");
    fs::remove_dir(dir.path().join("audit-000002.jsonl")).unwrap();
    let err = verify(dir.path(), None).unwrap_err();
    assert!(err.to_string().contains("2 records were lost after seq 4"), "{err}");
}
