//! Someone able to write the log directory can put back an older signed checkpoint and cut the
//! log to match: the signature still verifies. The checkpoints the sink published to an anchor
//! outside the directory show it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use crate::common;

use std::{fs, path::Path};

use common::{config, copy_dir, record, write_records};
use zta_audit_jsonl::{
    AnchorConfig, Error, JsonlConfig, JsonlSink, RollbackProblem, VerifyError, VerifyOptions, VerifyReport,
    generate_checkpoint_key, verify, verify_with,
};
use zta_core::{AuditError, AuditSink, Durability};

/// A signing key in its own directory: (key dir, key file, public key PEM).
fn key() -> (tempfile::TempDir, std::path::PathBuf, String) {
    let keys = tempfile::tempdir().unwrap();
    let (private_pem, public_pem) = generate_checkpoint_key().unwrap();
    let key_file = keys.path().join("checkpoint.pem");
    fs::write(&key_file, private_pem.as_bytes()).unwrap();
    (keys, key_file, public_pem)
}

fn with_anchor(dir: &Path, key_file: &Path, anchor: AnchorConfig) -> JsonlConfig {
    let mut c = config(dir);
    c.checkpoint_key_file = Some(key_file.to_owned());
    c.anchor = Some(anchor);
    c
}

fn check(dir: &Path, public_pem: &str, anchor: &Path) -> Result<VerifyReport, VerifyError> {
    verify_with(dir, VerifyOptions::new().public_key(public_pem.as_bytes()).anchor(anchor))
}

fn rollback(err: VerifyError) -> (u64, RollbackProblem) {
    match err {
        VerifyError::RolledBack { anchored_seq, problem, .. } => (anchored_seq, problem),
        other => panic!("expected a rollback, got {other}"),
    }
}

/// Replaces every file of `dir` with those of `from`.
fn restore(dir: &Path, from: &Path) {
    for e in fs::read_dir(dir).unwrap() {
        fs::remove_file(e.unwrap().path()).unwrap();
    }
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), dir.join(e.file_name())).unwrap();
    }
}

#[tokio::test]
async fn an_older_signed_checkpoint_with_the_log_cut_to_match_is_caught_by_the_anchor() {
    let (_keys, key_file, public_pem) = key();
    let elsewhere = tempfile::tempdir().unwrap(); // another volume
    let anchor = elsewhere.path().join("checkpoints.jsonl");
    let dir = tempfile::tempdir().unwrap();
    let c = with_anchor(dir.path(), &key_file, AnchorConfig::file(&anchor));

    write_records(c.clone(), 0, 10).await;
    let older = copy_dir(dir.path()); // an old backup: signed checkpoint at seq 10
    write_records(c.clone(), 10, 10).await;

    // Intact: the log matches every anchored checkpoint; the last one was published at close.
    let report = check(dir.path(), &public_pem, &anchor).unwrap();
    let anchored = report.anchor.clone().unwrap();
    assert_eq!((report.records, anchored.seq), (20, 20));
    assert!(report.to_string().contains("matches the anchor's newest checkpoint, seq 20"), "{report}");

    // The rollback: the old signed checkpoint and the log cut to match.
    restore(dir.path(), older.path());
    // The signature alone cannot tell...
    assert_eq!(verify(dir.path(), Some(public_pem.as_bytes())).unwrap().records, 10);
    // ...the anchor can.
    let err = check(dir.path(), &public_pem, &anchor).unwrap_err();
    assert!(err.to_string().contains("rolled back or cut"), "{err}");
    assert_eq!(rollback(err), (20, RollbackProblem::LogEndsBefore { last_seq: 10 }));
    // And a sink refuses to write on from there.
    let err = JsonlSink::open(c.clone()).unwrap_err();
    let Error::Integrity { error, .. } = err else { panic!("expected an integrity error, got {err}") };
    assert!(matches!(rollback(error), (20, RollbackProblem::CheckpointOlder { checkpoint_seq: 10, .. })));
}

#[tokio::test]
async fn an_older_checkpoint_a_rewritten_log_and_an_anchor_going_back_are_caught() {
    let (_keys, key_file, public_pem) = key();
    let elsewhere = tempfile::tempdir().unwrap();
    let anchor = elsewhere.path().join("checkpoints.jsonl");
    let dir = tempfile::tempdir().unwrap();
    let c = with_anchor(dir.path(), &key_file, AnchorConfig::file(&anchor));
    write_records(c.clone(), 0, 10).await;
    let older = copy_dir(dir.path());
    write_records(c.clone(), 10, 10).await;
    let newer = copy_dir(dir.path());

    // Only the old checkpoint put back: the log still reaches seq 20.
    fs::copy(older.path().join("checkpoint.json"), dir.path().join("checkpoint.json")).unwrap();
    let (seq, problem) = rollback(check(dir.path(), &public_pem, &anchor).unwrap_err());
    assert_eq!(seq, 20);
    assert!(matches!(problem, RollbackProblem::CheckpointOlder { checkpoint_seq: 10, .. }), "{problem}");

    // Rolled back, and written on by a sink without the anchor: seqs 11 to 20 now have other
    // hashes (the first anchored one after 10 is named; which that is depends on when the
    // first sink committed).
    restore(dir.path(), older.path());
    let mut unanchored = c.clone();
    unanchored.anchor = None;
    write_records(unanchored, 100, 12).await;
    let (seq, problem) = rollback(check(dir.path(), &public_pem, &anchor).unwrap_err());
    assert!((11..=20).contains(&seq), "{seq}");
    assert_eq!(problem, RollbackProblem::HashDiffers);

    // A sink that anchored a rolled-back log leaves a seq going back in the anchor.
    restore(dir.path(), newer.path());
    let first = fs::read_to_string(&anchor).unwrap().lines().next().unwrap().to_owned();
    let mut text = fs::read_to_string(&anchor).unwrap();
    text.push_str(&first);
    text.push('\n');
    fs::write(&anchor, text).unwrap();
    let (_, problem) = rollback(check(dir.path(), &public_pem, &anchor).unwrap_err());
    assert!(matches!(problem, RollbackProblem::WentBackwards { .. }), "{problem}");

    // An anchor with nothing in it anchors nothing: refused, not "ok".
    fs::write(&anchor, "").unwrap();
    let err = check(dir.path(), &public_pem, &anchor).unwrap_err();
    assert!(matches!(err, VerifyError::Anchor { .. }), "{err}");
}

#[tokio::test]
async fn a_command_anchor_receives_each_checkpoint_on_stdin() {
    let (_keys, key_file, public_pem) = key();
    let elsewhere = tempfile::tempdir().unwrap();
    let anchor = elsewhere.path().join("shipped.jsonl");
    let dir = tempfile::tempdir().unwrap();
    let command = AnchorConfig::command(["sh", "-c", &format!("cat >> '{}'", anchor.display())]);
    write_records(with_anchor(dir.path(), &key_file, command), 0, 5).await;
    let report = check(dir.path(), &public_pem, &anchor).unwrap();
    assert_eq!(report.anchor.unwrap().seq, 5);
}

#[test]
fn an_anchor_that_fails_at_open_fails_the_open() {
    let (_keys, key_file, _) = key();
    let dir = tempfile::tempdir().unwrap();
    let err =
        JsonlSink::open(with_anchor(dir.path(), &key_file, AnchorConfig::command(["false"]))).unwrap_err();
    assert!(matches!(&err, Error::Anchor { .. }), "{err}");
    assert!(err.to_string().contains("command `false`"), "{err}");
}

#[tokio::test]
async fn an_anchor_that_keeps_failing_closes_the_sink_after_committing_what_it_took() {
    let (_keys, key_file, _) = key();
    let elsewhere = tempfile::tempdir().unwrap();
    let anchor = elsewhere.path().join("shipped.jsonl");
    let stop = elsewhere.path().join("unreachable");
    let dir = tempfile::tempdir().unwrap();
    // Publishes until `stop` exists.
    let script = format!("test ! -e '{}' && cat >> '{}'", stop.display(), anchor.display());
    let mut anchored = AnchorConfig::command(["sh", "-c", &script]);
    anchored.fail_after = std::time::Duration::ZERO;
    anchored.interval = std::time::Duration::ZERO;
    let sink = JsonlSink::open(with_anchor(dir.path(), &key_file, anchored)).unwrap();
    sink.append(record(0), Durability::Flushed).await.unwrap();
    fs::write(&stop, "").unwrap();

    // The next commit's checkpoint cannot be anchored: the sink fails closed. Appends go
    // through until the anchor thread has tried (bounded, so a sink that never closes fails).
    let mut accepted = 1;
    let refused = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        loop {
            match sink.append(record(accepted), Durability::Flushed).await {
                Ok(()) => accepted += 1,
                Err(e) => break e,
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the sink kept taking records although its anchor failed");
    assert!(matches!(&refused, AuditError::Write(m) if m.to_string().contains("anchor")), "{refused:?}");
    assert!(matches!(sink.close().await, Err(AuditError::Write(m)) if m.to_string().contains("anchor")));
    drop(sink);
    // Everything accepted was committed; nothing is reported lost.
    assert_eq!(verify(dir.path(), None).unwrap().records, accepted);
    assert!(common::loss_files(dir.path()).is_empty());
}
