//! Deleting a record from the middle breaks the sequence at that place.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use crate::common;

use common::{config, lines, segments, write_lines, write_records};
use zta_audit_jsonl::{JsonlSink, RecordProblem, VerifyError, verify};

#[tokio::test]
async fn deleted_records_are_caught() {
    for victim in [0usize, 4, 8] {
        let dir = tempfile::tempdir().unwrap();
        write_records(config(dir.path()), 0, 10).await;
        let path = &segments(dir.path())[0];
        let mut ls = lines(path);
        ls.remove(victim);
        write_lines(path, &ls);
        let err = verify(dir.path(), None).unwrap_err();
        let want_seq = victim as u64 + 1;
        assert!(
            matches!(&err, VerifyError::Record { line, seq, problem: RecordProblem::SeqGap { found }, .. }
                if *line == want_seq && *seq == want_seq && *found == want_seq + 1),
            "victim {victim}: {err}"
        );
        assert!(err.to_string().contains("deleted"), "{err}");
        // The sink refuses it too (the record is before the checkpoint).
        let err = JsonlSink::open(config(dir.path())).unwrap_err();
        assert!(matches!(err, zta_audit_jsonl::Error::Integrity { .. }), "{err}");
    }
}
