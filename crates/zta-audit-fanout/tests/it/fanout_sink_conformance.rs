//! `FanOutSink` passes the `AuditSink` conformance suite: a fan-out to a required JSON Lines
//! log (read back) and a second, spooled one.

use std::{path::Path, sync::Arc};

use async_trait::async_trait;
use zta_audit_fanout::{FanOutSink, Mode, SpoolConfig, Target};
use zta_audit_jsonl::{JsonlConfig, JsonlSink};
use zta_core::AuditRecord;
use zta_testkit::{AuditBackend, BackendError, audit};

use crate::common::records_in;

#[derive(Debug)]
struct FanOut;

#[async_trait]
impl AuditBackend for FanOut {
    type Sink = FanOutSink;

    async fn open(&self, dir: &Path) -> Result<Arc<FanOutSink>, BackendError> {
        let required = Arc::new(JsonlSink::open(JsonlConfig::new(dir.join("required")))?);
        let spooled = Arc::new(JsonlSink::open(JsonlConfig::new(dir.join("spooled")))?);
        Ok(Arc::new(FanOutSink::new(vec![
            Target::new("required", required, Mode::Required),
            Target::new("spooled", spooled, Mode::Spool(SpoolConfig::new(dir.join("spool")))),
        ])?))
    }

    async fn close(&self, sink: Arc<FanOutSink>) -> Result<(), BackendError> {
        Ok(sink.close().await?)
    }

    async fn read_back(&self, dir: &Path) -> Result<Vec<AuditRecord>, BackendError> {
        Ok(records_in(&dir.join("required")))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance() {
    audit::run_all(&FanOut).await;
}
