//! Reading records back: the queries of `zta audit query` and `zta audit tail`, run in SQL on
//! the file's indexes.

use std::fmt;

use sqlx::{Connection, QueryBuilder, Sqlite, SqliteConnection};
use zta_audit_chain::StoredRecord;
use zta_core::{AuditQuery, AuditRecord};

use crate::{
    Error, SqliteConfig,
    schema::{connect, database},
};

/// A connection that reads records of one file. Every filter of an [`AuditQuery`] becomes a
/// condition on the table's query columns, which the indexes of the migrations serve (agent,
/// action name, effect, time, request id); rows come back as the records they hold, checked
/// once more against the query.
pub struct SqliteReader {
    conn: SqliteConnection,
    config: SqliteConfig,
}

impl fmt::Debug for SqliteReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteReader").field("config", &self.config).finish_non_exhaustive()
    }
}

/// One row: pos, writer, seq, record.
type Row = (i64, String, i64, String);

impl SqliteReader {
    /// Opens the file of `config` to read it. Refuses a missing file (it does not make one).
    pub async fn connect(config: &SqliteConfig) -> Result<Self, Error> {
        let conn = connect(config, false).await?;
        Ok(Self { conn, config: config.clone() })
    }

    /// The latest `limit` records that match `query` (latest by record time, then stored
    /// order), oldest first.
    pub async fn latest(&mut self, query: &AuditQuery, limit: usize) -> Result<Vec<StoredRecord>, Error> {
        let mut sql = self.select(query)?;
        sql.push(" ORDER BY time DESC, pos DESC LIMIT ").push_bind(limit_of(limit));
        let mut rows = self.fetch(sql, query).await?;
        rows.reverse();
        Ok(rows)
    }

    /// At most `limit` records that match `query` stored after `pos`, in stored order.
    pub async fn after(
        &mut self,
        query: &AuditQuery,
        pos: i64,
        limit: usize,
    ) -> Result<Vec<StoredRecord>, Error> {
        let mut sql = self.select(query)?;
        sql.push(" AND pos > ").push_bind(pos);
        sql.push(" ORDER BY pos LIMIT ").push_bind(limit_of(limit));
        self.fetch(sql, query).await
    }

    /// The records of `writer` that match `query` with a seq after `after` and before
    /// `before`, in chain order.
    pub async fn writer_between(
        &mut self,
        query: &AuditQuery,
        writer: &str,
        after: i64,
        before: i64,
    ) -> Result<Vec<StoredRecord>, Error> {
        let mut sql = self.select(query)?;
        sql.push(" AND writer_id = ").push_bind(writer.to_owned());
        sql.push(" AND seq > ").push_bind(after);
        sql.push(" AND seq < ").push_bind(before);
        sql.push(" ORDER BY seq");
        self.fetch(sql, query).await
    }

    /// The `pos` of the last row stored (0 for an empty table): where following starts.
    pub async fn last_pos(&mut self) -> Result<i64, Error> {
        sqlx::query_scalar("SELECT coalesce(max(pos), 0) FROM zta_audit")
            .fetch_one(&mut self.conn)
            .await
            .map_err(|e| database(&self.config, &e))
    }

    /// Closes the connection.
    pub async fn close(self) {
        let _ = self.conn.close().await;
    }

    /// `SELECT ... WHERE` the conditions of `query`.
    fn select(&self, query: &AuditQuery) -> Result<QueryBuilder<'static, Sqlite>, Error> {
        let mut sql = QueryBuilder::new("SELECT pos, writer_id, seq, record FROM zta_audit WHERE 1");
        if let Some(agent) = &query.agent {
            sql.push(" AND agent_id = ").push_bind(agent.as_str().to_owned());
        }
        if let Some(action) = &query.action {
            sql.push(" AND action_name = ").push_bind(action.clone());
        }
        if let Some(effect) = query.effect {
            sql.push(" AND effect = ").push_bind(effect.as_str());
        }
        if let Some(event) = query.event {
            sql.push(" AND event = ").push_bind(event.as_str());
        }
        if let Some(reason) = &query.reason {
            // SQLite's `lower` folds ASCII only, like `AuditQuery::matches`; `instr` has no
            // pattern characters to escape.
            sql.push(" AND instr(lower(reason), ").push_bind(reason.to_ascii_lowercase()).push(") > 0");
        }
        if let Some(since) = query.since {
            sql.push(" AND time >= ").push_bind(self.time(since)?);
        }
        if let Some(until) = query.until {
            sql.push(" AND time < ").push_bind(self.time(until)?);
        }
        if let Some(id) = query.request_id {
            sql.push(" AND record_id = ").push_bind(id.to_string());
        }
        Ok(sql)
    }

    /// Microseconds since 1970, as the `time` column holds it.
    fn time(&self, time: time::OffsetDateTime) -> Result<i64, Error> {
        i64::try_from(time.unix_timestamp_nanos() / 1000)
            .map_err(|_| Error::Config(format!("time `{time}` is out of range")))
    }

    async fn fetch(
        &mut self,
        mut sql: QueryBuilder<'static, Sqlite>,
        query: &AuditQuery,
    ) -> Result<Vec<StoredRecord>, Error> {
        let rows: Vec<Row> =
            sql.build_query_as().fetch_all(&mut self.conn).await.map_err(|e| database(&self.config, &e))?;
        let mut found = Vec::with_capacity(rows.len());
        for (pos, writer_id, seq, record) in rows {
            let record: AuditRecord = serde_json::from_str(&record).map_err(|e| Error::Broken {
                path: self.config.shown_path(),
                writer: writer_id.clone(),
                seq: u64::try_from(seq).unwrap_or(0),
                reason: format!("not an audit record: {e}"),
            })?;
            // The query columns are copies (NUL in them became U+FFFD): the record decides.
            if query.matches(&record) {
                found.push(StoredRecord::new(pos, writer_id, seq, record));
            }
        }
        Ok(found)
    }
}

fn limit_of(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}
