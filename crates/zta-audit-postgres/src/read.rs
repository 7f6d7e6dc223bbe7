//! Reading records back: the queries of `zta audit query` and `zta audit tail`, run in SQL on
//! the table's indexes.

use std::fmt;

use sqlx::{Connection, PgConnection, Postgres, QueryBuilder};
use time::format_description::well_known::Rfc3339;
use zta_audit_chain::StoredRecord;
use zta_core::{AuditQuery, AuditRecord};

use crate::{
    Error, PostgresConfig,
    config::check_table,
    schema::{options, scrub},
};

/// A connection that reads records of one table. Every filter of an [`AuditQuery`] becomes a
/// condition on the table's query columns, which the indexes of the migrations serve (agent,
/// action name, effect, time, request id); rows come back as the records they hold, checked
/// once more against the query.
pub struct PostgresReader {
    conn: PgConnection,
    config: PostgresConfig,
}

impl fmt::Debug for PostgresReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresReader").field("config", &self.config).finish_non_exhaustive()
    }
}

/// One row: pos, writer, seq, record.
type Row = (i64, String, i64, String);

impl PostgresReader {
    /// Connects to the database of `config` to read its table. Refuses a table name that is
    /// not a plain identifier, and a `url_env` whose variable is unset. Does not make or
    /// migrate anything.
    pub async fn connect(config: &PostgresConfig) -> Result<Self, Error> {
        check_table(&config.table)?;
        let config = config.resolve()?;
        let conn = PgConnection::connect_with(&options(&config)?).await.map_err(|e| Error::Database {
            url: config.safe_url(),
            reason: scrub(&e.to_string(), &config),
        })?;
        Ok(Self { conn, config })
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
        // The name passed `check_table` in `connect`: a plain identifier, safe in SQL text.
        let sql = format!("SELECT coalesce(max(pos), 0)::int8 FROM {}", self.config.table);
        sqlx::query_scalar(&sql).fetch_one(&mut self.conn).await.map_err(|e| Error::Database {
            url: self.config.safe_url(),
            reason: scrub(&e.to_string(), &self.config),
        })
    }

    /// Closes the connection.
    pub async fn close(self) {
        let _ = self.conn.close().await;
    }

    /// `SELECT ... WHERE` the conditions of `query`.
    fn select(&self, query: &AuditQuery) -> Result<QueryBuilder<'static, Postgres>, Error> {
        // The name passed `check_table` in `connect`: a plain identifier, safe in SQL text.
        let mut sql = QueryBuilder::new(format!(
            "SELECT pos, writer_id, seq, record FROM {} WHERE true",
            self.config.table
        ));
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
            // ASCII case only, like `AuditQuery::matches`; no pattern characters to escape.
            sql.push(
                " AND strpos(translate(reason, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz'), ",
            )
            .push_bind(reason.to_ascii_lowercase())
            .push(") > 0");
        }
        if let Some(since) = query.since {
            sql.push(" AND time >= ").push_bind(self.time(since)?).push("::timestamptz");
        }
        if let Some(until) = query.until {
            sql.push(" AND time < ").push_bind(self.time(until)?).push("::timestamptz");
        }
        if let Some(id) = query.request_id {
            sql.push(" AND record_id = ").push_bind(id.to_string()).push("::uuid");
        }
        Ok(sql)
    }

    fn time(&self, time: time::OffsetDateTime) -> Result<String, Error> {
        time.format(&Rfc3339).map_err(|e| Error::Config(format!("time `{time}` cannot be queried: {e}")))
    }

    async fn fetch(
        &mut self,
        mut sql: QueryBuilder<'static, Postgres>,
        query: &AuditQuery,
    ) -> Result<Vec<StoredRecord>, Error> {
        let rows: Vec<Row> = sql.build_query_as().fetch_all(&mut self.conn).await.map_err(|e| {
            Error::Database { url: self.config.safe_url(), reason: scrub(&e.to_string(), &self.config) }
        })?;
        let mut found = Vec::with_capacity(rows.len());
        for (pos, writer_id, seq, record) in rows {
            let record: AuditRecord = serde_json::from_str(&record).map_err(|e| Error::Broken {
                table: self.config.table.clone(),
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
