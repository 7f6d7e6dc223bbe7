//! Flipping any single byte of any line makes verification fail at that line.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use crate::common;

use std::fs;

use common::{config, copy_dir, lines, name, segments, write_lines, write_records};
use zta_audit_jsonl::{RecordProblem, VerifyError, verify};

#[tokio::test]
async fn flipped_bytes_are_caught_at_their_record() {
    let pristine = tempfile::tempdir().unwrap();
    let mut c = config(pristine.path());
    c.max_file_bytes = 6000; // a few files, so positions in later files are covered too
    write_records(c, 0, 30).await;
    let files = segments(pristine.path());
    assert!(files.len() >= 3, "{files:?}");
    verify(pristine.path(), None).unwrap();

    let mut seq_of = std::collections::HashMap::new();
    let mut seq = 0u64;
    for f in &files {
        for line_no in 1..=lines(f).len() {
            seq += 1;
            seq_of.insert((name(f), line_no as u64), seq);
        }
    }

    let mut cases = 0;
    for f in &files {
        let n_lines = lines(f).len();
        for line_idx in [0, n_lines / 2, n_lines - 1] {
            let len = lines(f)[line_idx].len();
            // start, inside seq, prev_hash, hash, record, last record byte, the newline
            for pos in [0, 7, 30, 120, 200, len / 2, len - 3, len - 2, len - 1] {
                for mask in [0x01u8, 0x20, 0x80] {
                    let copy = copy_dir(pristine.path());
                    let path = copy.path().join(name(f));
                    let mut ls = lines(&path);
                    ls[line_idx][pos] ^= mask;
                    write_lines(&path, &ls);
                    let err = verify(copy.path(), None).expect_err("a flipped byte must not verify");
                    let VerifyError::Record { file, line, seq, problem } = &err else {
                        panic!("expected a record error, got {err}");
                    };
                    let want_line = line_idx as u64 + 1;
                    assert_eq!((file, *line), (&name(f), want_line), "flip {pos}^{mask:#x}: {err}");
                    assert_eq!(*seq, seq_of[&(name(f), want_line)], "{err}");
                    // The message is one line and names the place.
                    let msg = err.to_string();
                    assert!(!msg.contains('\n') && msg.contains(&name(f)), "{msg}");
                    if pos < len - 1 && ls[line_idx][pos] != b'\n' {
                        assert!(
                            matches!(problem, RecordProblem::HashMismatch | RecordProblem::Malformed(_)),
                            "flip {pos}^{mask:#x}: {err}"
                        );
                    }
                    cases += 1;
                }
            }
        }
    }
    assert!(cases > 200);
    // the pristine copy still verifies (the loop really worked on copies)
    verify(pristine.path(), None).unwrap();
    assert!(fs::read_dir(pristine.path()).unwrap().count() > 3);
}

#[tokio::test]
async fn an_edited_field_is_a_hash_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    write_records(config(dir.path()), 0, 10).await;
    let path = &segments(dir.path())[0];
    let mut ls = lines(path);
    let edited = String::from_utf8(ls[4].clone()).unwrap().replace("\"allow\"", "\"deny\"");
    assert_ne!(edited.as_bytes(), &ls[4][..]);
    ls[4] = edited.into_bytes();
    write_lines(path, &ls);
    let err = verify(dir.path(), None).unwrap_err();
    assert!(
        matches!(&err, VerifyError::Record { line: 5, seq: 5, problem: RecordProblem::HashMismatch, .. }),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "audit log broken at `audit-000001.jsonl` line 5 (seq 5): hash mismatch: the entry was edited"
    );
}
