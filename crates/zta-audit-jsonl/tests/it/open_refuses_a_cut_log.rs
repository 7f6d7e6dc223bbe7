//! The sink fails closed on a log that was cut or edited before its checkpoint.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use crate::common;

use std::fs;

use common::{config, lines, segments, write_lines, write_records};
use zta_audit_jsonl::{Error, JsonlSink, RecordProblem, VerifyError};

fn open_err(dir: &std::path::Path) -> VerifyError {
    match JsonlSink::open(config(dir)) {
        Err(Error::Integrity { error, .. }) => error,
        Err(e) => panic!("expected an integrity error, got {e}"),
        Ok(_) => panic!("a cut log must not open"),
    }
}

#[tokio::test]
async fn a_log_shorter_than_its_checkpoint_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    write_records(config(dir.path()), 0, 10).await;
    let path = &segments(dir.path())[0];
    let mut ls = lines(path);
    ls.truncate(8);
    write_lines(path, &ls);
    let err = open_err(dir.path());
    assert!(
        matches!(
            &err,
            VerifyError::Record {
                line: 9,
                seq: 9,
                problem: RecordProblem::MissingTail { checkpoint_seq: 10, .. },
                ..
            }
        ),
        "{err}"
    );
    // Refused every time, and nothing was changed.
    let _ = open_err(dir.path());
    assert_eq!(lines(path).len(), 8);
}

#[tokio::test]
async fn a_half_cut_committed_record_is_refused_not_recovered() {
    let dir = tempfile::tempdir().unwrap();
    write_records(config(dir.path()), 0, 10).await;
    let path = &segments(dir.path())[0];
    let bytes = fs::read(path).unwrap();
    fs::write(path, &bytes[..bytes.len() - 10]).unwrap();
    let err = open_err(dir.path());
    assert!(
        matches!(&err, VerifyError::Record { line: 10, seq: 10, problem: RecordProblem::Torn, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn an_edited_record_in_the_middle_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    write_records(config(dir.path()), 0, 10).await;
    let path = &segments(dir.path())[0];
    let mut ls = lines(path);
    let edited = String::from_utf8(ls[3].clone()).unwrap().replace("doc-3", "doc-X");
    ls[3] = edited.into_bytes();
    write_lines(path, &ls);
    let err = open_err(dir.path());
    assert!(
        matches!(&err, VerifyError::Record { line: 4, seq: 4, problem: RecordProblem::HashMismatch, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn a_removed_last_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.max_file_bytes = 2000;
    write_records(c, 0, 20).await;
    let files = segments(dir.path());
    fs::remove_file(files.last().unwrap()).unwrap();
    let err = open_err(dir.path());
    assert!(matches!(&err, VerifyError::Record { problem: RecordProblem::MissingTail { .. }, .. }), "{err}");
}

#[tokio::test]
async fn a_removed_checkpoint_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    write_records(config(dir.path()), 0, 3).await;
    fs::remove_file(dir.path().join("checkpoint.json")).unwrap();
    let err = open_err(dir.path());
    assert!(err.to_string().contains("checkpoint.json` is missing"), "{err}");
}

#[tokio::test]
async fn a_removed_log_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    write_records(config(dir.path()), 0, 3).await;
    fs::remove_file(&segments(dir.path())[0]).unwrap();
    let err = open_err(dir.path());
    assert!(matches!(&err, VerifyError::Record { problem: RecordProblem::MissingTail { .. }, .. }), "{err}");
}
