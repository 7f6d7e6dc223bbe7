//! Rotation starts new files without breaking the chain.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use crate::common;

use common::{config, lines, segments, write_records};
use zta_audit_jsonl::verify;

#[tokio::test]
async fn rotated_files_chain_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.max_file_bytes = 4000;
    c.max_batch = 7; // rotation happens inside batches too
    write_records(c.clone(), 0, 100).await;
    // and across a reopen
    write_records(c, 100, 50).await;

    let files = segments(dir.path());
    assert!(files.len() > 10, "{files:?}");
    let mut prev_hash = "0".repeat(64);
    let mut seq = 0u64;
    for (i, f) in files.iter().enumerate() {
        assert_eq!(f.file_name().unwrap().to_str().unwrap(), format!("audit-{:06}.jsonl", i + 1));
        let size = std::fs::metadata(f).unwrap().len();
        let ls = lines(f);
        assert!(!ls.is_empty());
        assert!(size <= 4000 || ls.len() == 1, "{f:?} is {size} bytes");
        for l in ls {
            let v: serde_json::Value = serde_json::from_slice(&l).unwrap();
            seq += 1;
            assert_eq!(v["seq"], seq);
            assert_eq!(v["prev_hash"], prev_hash.as_str(), "link into {f:?}");
            prev_hash = v["hash"].as_str().unwrap().to_owned();
        }
    }
    assert_eq!(seq, 150);
    let report = verify(dir.path(), None).unwrap();
    assert_eq!((report.records, report.files.len()), (150, files.len()));
    assert_eq!(report.last_hash, prev_hash);
}

#[tokio::test]
async fn a_record_bigger_than_a_file_gets_a_file_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.max_file_bytes = 100;
    write_records(c, 0, 3).await;
    assert_eq!(segments(dir.path()).len(), 3);
    assert_eq!(verify(dir.path(), None).unwrap().records, 3);
}
