//! `JsonlSink` passes the `AuditSink` conformance suite (zta-testkit), one test per contract.
//!
//! The backend reads back only *committed* records (seq up to the checkpoint, which the writer
//! moves after each fsync), and opens the sink with an hour-long flush interval, so nothing is
//! committed unless a `Flushed` append, `flush()` or close asks for it: that makes the
//! durability checks sharp. Every read also runs `verify` over the whole log.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::{fs, path::Path, sync::Arc, time::Duration};

use async_trait::async_trait;
use zta_audit_jsonl::{JsonlConfig, JsonlSink, VerifyError, verify};
use zta_core::AuditRecord;
use zta_testkit::{AuditBackend, BackendError, audit};

#[derive(Debug)]
struct Jsonl;

/// What the suite needs of a line of a segment file (`verify` has checked the rest).
#[derive(serde::Deserialize)]
struct Entry {
    seq: u64,
    record: AuditRecord,
}

#[async_trait]
impl AuditBackend for Jsonl {
    type Sink = JsonlSink;

    async fn open(&self, dir: &Path) -> Result<Arc<JsonlSink>, BackendError> {
        let mut config = JsonlConfig::new(dir);
        config.flush_interval = Duration::from_secs(3600);
        Ok(Arc::new(JsonlSink::open(config)?))
    }

    async fn close(&self, sink: Arc<JsonlSink>) -> Result<(), BackendError> {
        Ok(sink.close().await?)
    }

    async fn read_back(&self, dir: &Path) -> Result<Vec<AuditRecord>, BackendError> {
        let report = match verify(dir, None) {
            Ok(report) => report,
            Err(VerifyError::NoLog { .. }) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut records = Vec::new();
        for file in &report.files {
            let text = fs::read_to_string(dir.join(file))?;
            for line in text.lines() {
                let entry: Entry = serde_json::from_str(line)?;
                if entry.seq != records.len() as u64 + 1 {
                    return Err(format!("`{file}`: seq {} after {}", entry.seq, records.len()).into());
                }
                if entry.seq > report.checkpoint_seq {
                    return Ok(records); // written, but not committed yet
                }
                records.push(entry.record);
            }
        }
        Ok(records)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rich_records_round_trip() {
    audit::rich_records_round_trip(&Jsonl).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn minimal_records_round_trip() {
    audit::minimal_records_round_trip(&Jsonl).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_text_round_trips() {
    audit::hostile_text_round_trips(&Jsonl).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn flushed_append_is_readable_at_once() {
    audit::flushed_append_is_readable_at_once(&Jsonl).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn flush_makes_queued_records_readable() {
    audit::flush_makes_queued_records_readable(&Jsonl).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appenders_lose_nothing() {
    audit::concurrent_appenders_lose_nothing(&Jsonl).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reopen_appends_after_earlier_records() {
    audit::reopen_appends_after_earlier_records(&Jsonl).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn closed_sink_refuses_appends() {
    audit::closed_sink_refuses_appends(&Jsonl).await;
}
