//! Swapping two records is caught at the first of them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use crate::common;

use common::{config, lines, segments, write_lines, write_records};
use zta_audit_jsonl::{RecordProblem, VerifyError, verify};

#[tokio::test]
async fn swapped_records_are_caught() {
    for (a, b) in [(2usize, 3usize), (0, 9), (5, 7)] {
        let dir = tempfile::tempdir().unwrap();
        write_records(config(dir.path()), 0, 10).await;
        let path = &segments(dir.path())[0];
        let mut ls = lines(path);
        ls.swap(a, b);
        write_lines(path, &ls);
        let err = verify(dir.path(), None).unwrap_err();
        let want = a as u64 + 1;
        assert!(
            matches!(&err, VerifyError::Record { line, seq, problem: RecordProblem::SeqGap { found }, .. }
                if *line == want && *seq == want && *found == b as u64 + 1),
            "swap {a} {b}: {err}"
        );
    }
}
