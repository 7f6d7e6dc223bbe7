//! A JSON Lines sink that can be switched off (every append and flush then fails, as a sink
//! whose server is down would), and a reader of what a JSON Lines log holds.

use std::{
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use async_trait::async_trait;
use zta_audit_fanout::FanOutSink;
use zta_audit_jsonl::{JsonlConfig, JsonlSink, VerifyError, verify};
use zta_core::{AuditError, AuditRecord, AuditSink, Durability};

#[derive(Debug)]
pub(crate) struct Switchable {
    pub(crate) inner: JsonlSink,
    up: AtomicBool,
}

impl Switchable {
    pub(crate) fn open(dir: &Path) -> Arc<Self> {
        Arc::new(Self { inner: JsonlSink::open(JsonlConfig::new(dir)).unwrap(), up: AtomicBool::new(true) })
    }

    pub(crate) fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::SeqCst);
    }

    fn check(&self) -> Result<(), AuditError> {
        if self.up.load(Ordering::SeqCst) { Ok(()) } else { Err(AuditError::write("connection refused")) }
    }
}

#[async_trait]
impl AuditSink for Switchable {
    async fn append(&self, record: AuditRecord, durability: Durability) -> Result<(), AuditError> {
        self.check()?;
        self.inner.append(record, durability).await
    }

    async fn flush(&self) -> Result<(), AuditError> {
        self.check()?;
        self.inner.flush().await
    }

    async fn ready(&self) -> Result<(), AuditError> {
        self.check()?;
        self.inner.ready().await
    }
}

/// Every record a JSON Lines log in `dir` holds, in order (its chain verified).
pub(crate) fn records_in(dir: &Path) -> Vec<AuditRecord> {
    #[derive(serde::Deserialize)]
    struct Entry {
        record: AuditRecord,
    }
    let report = match verify(dir, None) {
        Ok(report) => report,
        Err(VerifyError::NoLog { .. }) => return Vec::new(),
        Err(e) => panic!("{e}"),
    };
    let mut records = Vec::new();
    for file in &report.files {
        for line in std::fs::read_to_string(dir.join(file)).unwrap().lines() {
            records.push(serde_json::from_str::<Entry>(line).unwrap().record);
        }
    }
    records
}

/// Waits until every spool of `sink` is forwarded (failing after a minute).
pub(crate) async fn drained(sink: &FanOutSink) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while sink.backlog().iter().any(|(_, waiting)| *waiting > 0) {
        assert!(Instant::now() < deadline, "spool not forwarded: {:?}", sink.backlog());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The ids of `records`, to compare order and completeness.
pub(crate) fn ids(records: &[AuditRecord]) -> Vec<String> {
    records.iter().map(|r| r.id.to_string()).collect()
}
