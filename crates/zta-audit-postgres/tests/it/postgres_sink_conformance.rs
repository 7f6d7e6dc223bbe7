//! `PostgresSink` passes the `AuditSink` conformance suite, each check on a table of its own;
//! the records are read back after `verify`, so every chain is checked on the way.

use std::{path::Path, sync::Arc};

use async_trait::async_trait;
use zta_audit_postgres::{PostgresConfig, PostgresSink, verify};
use zta_core::AuditRecord;
use zta_testkit::{AuditBackend, BackendError, audit};

use crate::common::TestDb;

struct Postgres(TestDb);

impl Postgres {
    /// The table of the check that uses `dir`: named from the directory's file name.
    fn config(&self, dir: &Path) -> PostgresConfig {
        let tag: String = dir
            .file_name()
            .unwrap()
            .to_string_lossy()
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_lowercase())
            .collect();
        self.0.config(&format!("t_{tag}"))
    }
}

#[async_trait]
impl AuditBackend for Postgres {
    type Sink = PostgresSink;

    async fn open(&self, dir: &Path) -> Result<Arc<PostgresSink>, BackendError> {
        Ok(Arc::new(PostgresSink::open(self.config(dir)).await?))
    }

    async fn close(&self, sink: Arc<PostgresSink>) -> Result<(), BackendError> {
        Ok(sink.close().await?)
    }

    async fn read_back(&self, dir: &Path) -> Result<Vec<AuditRecord>, BackendError> {
        let config = self.config(dir);
        let report = verify(&config).await?;
        let records = self.0.records(&config.table).await;
        assert_eq!(report.rows(), records.len() as u64);
        Ok(records)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance() {
    let pg = Postgres(TestDb::new().await);
    audit::run_all(&pg).await;
    pg.0.drop().await;
}
