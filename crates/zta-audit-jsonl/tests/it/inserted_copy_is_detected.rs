//! A copied record inserted anywhere is caught where it stands.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use crate::common;

use common::{config, lines, segments, write_lines, write_records};
use zta_audit_jsonl::{RecordProblem, VerifyError, verify};

#[tokio::test]
async fn inserted_copies_are_caught() {
    // (record copied, index inserted at)
    for (copied, at) in [(3usize, 4usize), (0, 10), (7, 2)] {
        let dir = tempfile::tempdir().unwrap();
        write_records(config(dir.path()), 0, 10).await;
        let path = &segments(dir.path())[0];
        let mut ls = lines(path);
        let copy = ls[copied].clone();
        ls.insert(at, copy);
        write_lines(path, &ls);
        let err = verify(dir.path(), None).unwrap_err();
        let want = at as u64 + 1;
        let expected = if (copied as u64) < at as u64 {
            RecordProblem::SeqBackwards { found: copied as u64 + 1 }
        } else {
            RecordProblem::SeqGap { found: copied as u64 + 1 }
        };
        assert!(
            matches!(&err, VerifyError::Record { line, seq, problem, .. }
                if *line == want && *seq == want && *problem == expected),
            "copy {copied} at {at}: {err}"
        );
    }
}

#[tokio::test]
async fn a_forged_record_with_a_valid_hash_breaks_the_link() {
    // Someone computes a correct hash for a made-up record but cannot make the next one link.
    let dir = tempfile::tempdir().unwrap();
    write_records(config(dir.path()), 0, 5).await;
    let path = &segments(dir.path())[0];
    let mut ls = lines(path);
    // Re-use record 3's header but pair it with record 2's prev hash: seq 3, wrong link.
    let two: serde_json::Value = serde_json::from_slice(&ls[1]).unwrap();
    let three: serde_json::Value = serde_json::from_slice(&ls[2]).unwrap();
    assert_ne!(two["prev_hash"], three["prev_hash"]);
    let forged = String::from_utf8(ls[2].clone())
        .unwrap()
        .replace(three["prev_hash"].as_str().unwrap(), two["prev_hash"].as_str().unwrap());
    ls[2] = forged.into_bytes();
    write_lines(path, &ls);
    let err = verify(dir.path(), None).unwrap_err();
    // The stored hash no longer matches (prev_hash is hashed), so it is caught at seq 3.
    assert!(matches!(&err, VerifyError::Record { line: 3, seq: 3, .. }), "{err}");
}
