//! Without a verified signature, a log cut at the end with a rewritten unsigned checkpoint
//! cannot be told from an intact one: the verifier says so instead of "ok", and with the public
//! key the forgery is refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use crate::common;

use std::fs;

use common::{config, lines, segments, write_lines, write_records};
use zta_audit_jsonl::{
    CheckpointProblem, JsonlConfig, SignatureStatus, VerifyError, generate_checkpoint_key, verify,
};

/// Cuts the last `n` records and writes an unsigned checkpoint that matches the cut log, the
/// way someone able to write the directory would.
fn cut_and_rewrite_checkpoint(dir: &std::path::Path, n: usize) {
    let path = &segments(dir)[0];
    let mut ls = lines(path);
    ls.truncate(ls.len() - n);
    write_lines(path, &ls);
    let last: serde_json::Value = serde_json::from_slice(ls.last().unwrap()).unwrap();
    let checkpoint = serde_json::json!({
        "version": 1,
        "seq": last["seq"],
        "hash": last["hash"],
        "file": "audit-000001.jsonl",
        "time": "2030-01-01T00:00:00Z",
    });
    fs::write(dir.join("checkpoint.json"), serde_json::to_vec_pretty(&checkpoint).unwrap()).unwrap();
}

#[tokio::test]
async fn a_cut_log_with_a_rewritten_unsigned_checkpoint_is_not_reported_ok() {
    let keys = tempfile::tempdir().unwrap();
    let (private_pem, public_pem) = generate_checkpoint_key().unwrap();
    let key_file = keys.path().join("checkpoint.pem");
    fs::write(&key_file, private_pem.as_bytes()).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let mut c: JsonlConfig = config(dir.path());
    c.checkpoint_key_file = Some(key_file);
    write_records(c, 0, 10).await;
    let intact = verify(dir.path(), Some(public_pem.as_bytes())).unwrap();
    assert!(intact.tail_protected(), "{intact}");
    assert!(intact.to_string().starts_with("ok: 10 records"), "{intact}");

    cut_and_rewrite_checkpoint(dir.path(), 3);

    // Without the key the forgery verifies as a chain, but is not called protected.
    let report = verify(dir.path(), None).unwrap();
    assert_eq!((report.records, report.checkpoint_seq), (7, 7));
    assert_eq!(report.signature, SignatureStatus::Unsigned);
    assert!(!report.tail_protected());
    assert!(report.to_string().contains("the tail is UNPROTECTED"), "{report}");

    // With the key it is refused.
    let err = verify(dir.path(), Some(public_pem.as_bytes())).unwrap_err();
    assert!(matches!(err, VerifyError::Checkpoint { problem: CheckpointProblem::Unsigned, .. }), "{err}");
}

#[tokio::test]
async fn a_signed_checkpoint_checked_without_a_key_is_unprotected_too() {
    let keys = tempfile::tempdir().unwrap();
    let (private_pem, _) = generate_checkpoint_key().unwrap();
    let key_file = keys.path().join("checkpoint.pem");
    fs::write(&key_file, private_pem.as_bytes()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.checkpoint_key_file = Some(key_file);
    write_records(c, 0, 3).await;
    let report = verify(dir.path(), None).unwrap();
    assert!(matches!(report.signature, SignatureStatus::NotChecked { .. }));
    assert!(!report.tail_protected());
    assert!(report.to_string().contains("no public key was given"), "{report}");
}
