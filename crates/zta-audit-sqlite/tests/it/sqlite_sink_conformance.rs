//! `SqliteSink` passes the `AuditSink` conformance suite, each check on a file in its own
//! directory; the records are read back after `verify`, so every chain is checked on the way.

use std::{path::Path, sync::Arc};

use async_trait::async_trait;
use zta_audit_sqlite::{SqliteConfig, SqliteSink, verify};
use zta_core::AuditRecord;
use zta_testkit::{AuditBackend, BackendError, audit};

use crate::common::records;

struct Sqlite;

fn config(dir: &Path) -> SqliteConfig {
    SqliteConfig::new(dir.join("audit.db"))
}

#[async_trait]
impl AuditBackend for Sqlite {
    type Sink = SqliteSink;

    async fn open(&self, dir: &Path) -> Result<Arc<SqliteSink>, BackendError> {
        Ok(Arc::new(SqliteSink::open(config(dir)).await?))
    }

    async fn close(&self, sink: Arc<SqliteSink>) -> Result<(), BackendError> {
        Ok(sink.close().await?)
    }

    async fn read_back(&self, dir: &Path) -> Result<Vec<AuditRecord>, BackendError> {
        let config = config(dir);
        let report = verify(&config).await?;
        let records = records(&config.path).await;
        assert_eq!(report.rows(), records.len() as u64);
        Ok(records)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance() {
    audit::run_all(&Sqlite).await;
}
