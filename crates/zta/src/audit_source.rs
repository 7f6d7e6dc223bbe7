//! The audit store `zta serve` reads back for its audit query API and `/ui`: the first sink of
//! the `audit:` section that can be read, as `zta audit query --config` picks it (a `jsonl`
//! directory, a `postgres` table or a `sqlite` file, in the order listed).

use std::sync::Arc;

use zta_core::AuditSource;

use crate::config::{AuditSection, AuditTarget};

/// The first readable sink of `targets` as an [`AuditSource`]; `None` when none can be read
/// (only NATS, or its backend's feature is off).
pub(crate) fn first_readable(targets: &[AuditTarget]) -> Option<Arc<dyn AuditSource>> {
    targets.iter().find_map(|target| readable(&target.sink))
}

fn readable(section: &AuditSection) -> Option<Arc<dyn AuditSource>> {
    match section {
        #[cfg(feature = "audit-jsonl")]
        AuditSection::Jsonl(c) => Some(Arc::new(crate::audit::jsonl::JsonlReader::new(c.dir.clone()))),
        #[cfg(feature = "audit-postgres")]
        AuditSection::Postgres(c) => Some(Arc::new(sql::PostgresSource(c.clone()))),
        #[cfg(feature = "audit-sqlite")]
        AuditSection::Sqlite(c) => Some(Arc::new(sql::SqliteSource(c.clone()))),
        _ => None,
    }
}

#[cfg(any(feature = "audit-postgres", feature = "audit-sqlite"))]
mod sql {
    use zta_core::{AuditQuery, AuditReadError, AuditRecord, AuditSource};

    /// A PostgreSQL table read over a connection of its own per query (filters in SQL, on the
    /// table's indexes).
    #[cfg(feature = "audit-postgres")]
    #[derive(Debug)]
    pub(super) struct PostgresSource(pub(super) crate::audit::postgres::PostgresConfig);

    #[cfg(feature = "audit-postgres")]
    #[async_trait::async_trait]
    impl AuditSource for PostgresSource {
        async fn query(&self, query: &AuditQuery, limit: usize) -> Result<Vec<AuditRecord>, AuditReadError> {
            if limit == 0 {
                return Ok(Vec::new());
            }
            let mut reader = crate::audit::postgres::PostgresReader::connect(&self.0)
                .await
                .map_err(AuditReadError::read)?;
            let found = reader.latest(query, limit).await;
            reader.close().await;
            Ok(found.map_err(AuditReadError::read)?.into_iter().map(|r| r.record).collect())
        }
    }

    /// A SQLite file read over a connection of its own per query.
    #[cfg(feature = "audit-sqlite")]
    #[derive(Debug)]
    pub(super) struct SqliteSource(pub(super) crate::audit::sqlite::SqliteConfig);

    #[cfg(feature = "audit-sqlite")]
    #[async_trait::async_trait]
    impl AuditSource for SqliteSource {
        async fn query(&self, query: &AuditQuery, limit: usize) -> Result<Vec<AuditRecord>, AuditReadError> {
            if limit == 0 {
                return Ok(Vec::new());
            }
            let mut reader =
                crate::audit::sqlite::SqliteReader::connect(&self.0).await.map_err(AuditReadError::read)?;
            let found = reader.latest(query, limit).await;
            reader.close().await;
            Ok(found.map_err(AuditReadError::read)?.into_iter().map(|r| r.record).collect())
        }
    }
}
