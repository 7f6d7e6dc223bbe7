//! Many concurrent appenders on a tiny queue: every record is written, in one unbroken chain.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use crate::common;

use std::{collections::HashSet, sync::Arc};

use common::{config, lines, record, segments};
use zta_audit_jsonl::{JsonlSink, verify};
use zta_core::{AuditRecord, AuditSink, Durability};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_appended_record_is_written() {
    const TASKS: u64 = 32;
    const EACH: u64 = 150;
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.queue_capacity = 2;
    c.max_batch = 3;
    c.max_file_bytes = 200_000;
    let sink = Arc::new(JsonlSink::open(c).unwrap());
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let sink = sink.clone();
            tokio::spawn(async move {
                for i in 0..EACH {
                    let durability = if i % 50 == 0 { Durability::Flushed } else { Durability::Queued };
                    sink.append(record(t * EACH + i), durability).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    sink.flush().await.unwrap();

    let all: Vec<Vec<u8>> = segments(dir.path()).iter().flat_map(|f| lines(f)).collect();
    assert_eq!(all.len() as u64, TASKS * EACH);
    let seen: HashSet<u64> = all
        .iter()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_slice(l).unwrap();
            let r: AuditRecord = serde_json::from_value(v["record"].clone()).unwrap();
            r.detail["i"].as_u64().unwrap()
        })
        .collect();
    assert_eq!(seen, (0..TASKS * EACH).collect::<HashSet<_>>());
    let report = verify(dir.path(), None).unwrap();
    assert_eq!((report.records, report.checkpoint_seq), (TASKS * EACH, TASKS * EACH));
}
