//! `NatsSink` passes the `AuditSink` conformance suite, each check on a stream of its own; the
//! records are read back through `verify`, so every chain is checked on the way.

use std::{path::Path, sync::Arc};

use async_trait::async_trait;
use zta_audit_nats::{NatsSink, verify};
use zta_core::AuditRecord;
use zta_testkit::{AuditBackend, BackendError, audit};

use crate::common::{Streams, url};

#[derive(Debug, Default)]
struct Nats(Streams);

fn tag(dir: &Path) -> String {
    dir.file_name().unwrap().to_string_lossy().into_owned()
}

#[async_trait]
impl AuditBackend for Nats {
    type Sink = NatsSink;

    async fn open(&self, dir: &Path) -> Result<Arc<NatsSink>, BackendError> {
        Ok(Arc::new(NatsSink::open(self.0.config(&tag(dir))).await?))
    }

    async fn close(&self, sink: Arc<NatsSink>) -> Result<(), BackendError> {
        Ok(sink.close().await?)
    }

    async fn read_back(&self, dir: &Path) -> Result<Vec<AuditRecord>, BackendError> {
        let stream = self.0.config(&tag(dir)).stream;
        match verify(&url(), &stream).await {
            Ok(report) => Ok(report.records),
            // Nothing was ever published: no stream.
            Err(e) if e.to_string().contains("not found") => Ok(Vec::new()),
            Err(e) => Err(e.into()),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance() {
    let nats = Nats::default();
    audit::run_all(&nats).await;
    nats.0.delete_all().await;
}
