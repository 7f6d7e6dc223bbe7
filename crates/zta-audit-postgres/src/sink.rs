//! The sink, and the store its group-commit writer inserts through.

use std::{fmt, time::Duration};

use async_trait::async_trait;
use sqlx::{Connection, PgConnection, PgPool, postgres::PgPoolOptions};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};
use zta_audit_chain::{BatchStore, Batching, GroupCommit, MarkerSigner};
use zta_core::{Action, AgentId, AuditError, AuditRecord, AuditSink, Durability};

use crate::{
    Error, PostgresConfig, chain_hash,
    schema::{migrate, options, scrub},
};

/// An [`AuditSink`] that inserts records into a PostgreSQL table in group-committed batches,
/// each writer with its own hash chain.
///
/// A batch that fails to commit fails its waiters and the next batch reconnects (see the crate
/// docs). Refuses (with [`AuditError::Closed`]) every append after [`close`](Self::close), or
/// after another live sink took its writer id; refuses to open on a writer id another live
/// sink holds.
pub struct PostgresSink {
    writes: GroupCommit<Prepared>,
    writer: String,
    pool: PgPool,
    config: PostgresConfig,
    /// The retention task, if `retention` is set.
    retention: Option<tokio::task::AbortHandle>,
}

impl Drop for PostgresSink {
    fn drop(&mut self) {
        if let Some(task) = &self.retention {
            task.abort();
        }
    }
}

impl fmt::Debug for PostgresSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresSink").field("config", &self.config).field("writer", &self.writer).finish()
    }
}

impl PostgresSink {
    /// Connects, applies the embedded migrations (see [`migrate`](crate::migrate)), makes the
    /// table if it is missing, reads where this writer's chain ends, and starts the writer.
    ///
    /// Refuses an unusable config (both or neither of `url` and `url_env`, an unset variable,
    /// ...), and a writer id that another live sink on the same table
    /// holds (each writer holds an advisory lock on its id for as long as it runs).
    ///
    /// With `retention`, a task prunes the table at once and then every `retention.every`,
    /// until the sink is closed or dropped; a `retention.key_file` that cannot be loaded
    /// refuses the sink.
    pub async fn open(config: PostgresConfig) -> Result<Self, Error> {
        config.check()?;
        let config = config.resolve()?;
        let signer = match &config.retention {
            Some(r) => Some(
                MarkerSigner::load(&r.key_file)
                    .map_err(|e| Error::Config(format!("retention.key_file: {e}")))?,
            ),
            None => None,
        };
        let writer = match &config.writer_id {
            Some(id) => id.clone(),
            None => zta_audit_chain::default_writer_id(),
        };
        migrate(&config).await?;
        let database = |e: sqlx::Error| Error::Database {
            url: config.safe_url(),
            reason: scrub(&e.to_string(), &config),
        };
        let pool = PgPoolOptions::new()
            .max_connections(config.pool_size)
            .connect_with(options(&config)?)
            .await
            .map_err(database)?;
        let mut conn = pool.acquire().await.map_err(database)?.detach();
        let key = lock_key(&config.table, &writer);
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
            .bind(&key)
            .fetch_one(&mut conn)
            .await
            .map_err(database)?;
        if !locked {
            let _ = conn.close().await;
            pool.close().await;
            return Err(Error::Config(format!(
                "writer_id `{writer}` is in use by another live sink on table `{}`",
                config.table
            )));
        }
        let head = async {
            let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(&mut conn).await?;
            let head = read_head(&mut conn, &config.table, &writer).await?;
            Ok::<_, sqlx::Error>((pid, head))
        }
        .await;
        let (pid, head) = match head {
            Ok(found) => found,
            // The connection holds the writer lock: closed, never back into the pool.
            Err(e) => {
                let _ = conn.close().await;
                pool.close().await;
                return Err(database(e));
            }
        };
        let (seq, prev) = match head {
            Ok(head) => head,
            Err(what) => {
                let _ = conn.close().await;
                pool.close().await;
                return Err(broken(&config, &writer, what));
            }
        };
        let insert = format!(
            "INSERT INTO {} (writer_id, seq, prev_hash, hash, record, record_id, time, event, effect, \
             agent_id, action_kind, action_name, reason) \
             SELECT $1, s, p, h, r, i::uuid, t::timestamptz, e, f, a, k, n, why \
             FROM UNNEST($2::int8[], $3::bytea[], $4::bytea[], $5::text[], $6::text[], $7::text[], \
             $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[]) \
             WITH ORDINALITY AS u(s, p, h, r, i, t, e, f, a, k, n, why, ord) ORDER BY ord",
            config.table
        );
        let stored = format!(
            "SELECT record_id::text FROM {} WHERE writer_id = $1 AND record_id = ANY($2::text[]::uuid[])",
            config.table
        );
        let store = Writer {
            conn: Some(conn),
            pid: Some(pid),
            config: config.clone(),
            key,
            insert,
            stored,
            writer: writer.clone(),
            table: config.table.clone(),
            seq,
            prev,
            // A chain that already has rows may be sent records it holds (a spool replaying
            // after a restart).
            dedupe: seq > 0,
            stopped: false,
        };
        let batching = Batching {
            batch_size: config.batch_size,
            max_delay: config.max_batch_delay,
            queue_capacity: config.queue_capacity,
        };
        let writes = GroupCommit::start(store, batching, format!("`{}` (writer `{writer}`)", config.table));
        let retention = match (&config.retention, signer) {
            (Some(r), Some(signer)) => Some(start_retention(config.clone(), r, signer)),
            _ => None,
        };
        Ok(Self { writes, writer, pool, config, retention })
    }

    /// This sink's writer id.
    pub fn writer_id(&self) -> &str {
        &self.writer
    }

    /// The table this sink writes.
    pub fn table(&self) -> &str {
        &self.config.table
    }

    /// Commits everything taken, stops the writer and closes the connections. Later appends
    /// fail with [`AuditError::Closed`]. Returns the last commit's error, if it failed.
    pub async fn close(&self) -> Result<(), AuditError> {
        if let Some(task) = &self.retention {
            task.abort();
        }
        let result = self.writes.close().await;
        self.pool.close().await;
        result
    }
}

/// The log target of the retention task.
const TARGET: &str = "zta_audit_postgres";

/// Starts the task that prunes the store every `retention.every` (the first time at once),
/// with `signer`; failures are logged and retried at the next interval.
fn start_retention(
    config: PostgresConfig,
    retention: &crate::Retention,
    signer: MarkerSigner,
) -> tokio::task::AbortHandle {
    let (every, age) = (retention.every, retention.older_than);
    tokio::spawn(async move {
        loop {
            let before = time::Duration::try_from(age)
                .ok()
                .and_then(|age| time::OffsetDateTime::now_utc().checked_sub(age));
            match before {
                Some(before) => match crate::prune(&config, before, &signer).await {
                    Ok(pruned) => {
                        for (writer, (upto, deleted)) in &pruned {
                            tracing::info!(target: TARGET, writer = %writer, upto, deleted, "retention: old records deleted, marker signed");
                        }
                    }
                    Err(e) => {
                        tracing::warn!(target: TARGET, error = %e, "retention: pruning failed; tried again at the next interval");
                    }
                },
                None => tracing::warn!(target: TARGET, "retention: older_than reaches before the earliest time"),
            }
            tokio::time::sleep(every).await;
        }
    })
    .abort_handle()
}

fn broken(config: &PostgresConfig, writer: &str, what: &str) -> Error {
    Error::Broken {
        table: config.table.clone(),
        writer: writer.to_owned(),
        seq: 0,
        reason: format!("the last stored row has {what}"),
    }
}

/// The text whose hash is the advisory lock key of `writer` on `table`.
fn lock_key(table: &str, writer: &str) -> String {
    format!("zta-audit-postgres/{table}/{writer}")
}

/// Where `writer`'s chain ends in `table`: its last seq and hash (0 and zero bytes when it has
/// no rows). The inner error names what is wrong with a stored row.
async fn read_head(
    conn: &mut PgConnection,
    table: &str,
    writer: &str,
) -> Result<Result<(u64, [u8; 32]), &'static str>, sqlx::Error> {
    // The table name passed `check_table`: a plain identifier, safe in SQL text.
    let last: Option<(i64, Vec<u8>)> = sqlx::query_as(&format!(
        "SELECT seq, hash FROM {table} WHERE writer_id = $1 ORDER BY seq DESC LIMIT 1"
    ))
    .bind(writer)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(zta_audit_chain::stored_head(last))
}

#[async_trait]
impl AuditSink for PostgresSink {
    async fn append(&self, record: AuditRecord, durability: Durability) -> Result<(), AuditError> {
        if self.writes.is_closed() {
            return Err(AuditError::Closed);
        }
        // Serialized here, on the appender's task, so that the writer only hashes and inserts;
        // the query columns are made by the writer, off the request path.
        self.writes.append(Prepared::new(record)?, durability).await
    }

    async fn flush(&self) -> Result<(), AuditError> {
        self.writes.flush().await
    }

    /// Records in the group-commit queue or batch, not yet stored.
    fn queued(&self) -> Option<u64> {
        Some(self.writes.queued())
    }
}

/// A record serialized for its row, with what its query columns are made from.
struct Prepared {
    id: uuid::Uuid,
    json: String,
    time: OffsetDateTime,
    event: &'static str,
    effect: &'static str,
    agent: Option<AgentId>,
    action: Option<Action>,
    reason: Option<String>,
}

impl Prepared {
    /// Refuses a record that cannot be serialized (a time outside RFC 3339's years).
    fn new(record: AuditRecord) -> Result<Self, AuditError> {
        let mut json = Vec::with_capacity(512);
        record.write_json(&mut json)?;
        let json = String::from_utf8(json)
            .map_err(|e| AuditError::write(format!("audit record `{}` is not UTF-8 JSON: {e}", record.id)))?;
        let AuditRecord { id, time, event, effect, agent_id, action, reason, .. } = record;
        Ok(Self {
            id,
            json,
            time,
            event: event.as_str(),
            effect: effect.as_str(),
            agent: agent_id,
            action,
            reason,
        })
    }
}

/// One batch's columns, bound as arrays.
#[derive(Default)]
struct Rows {
    seq: Vec<i64>,
    prev: Vec<Vec<u8>>,
    hash: Vec<Vec<u8>>,
    record: Vec<String>,
    id: Vec<String>,
    time: Vec<String>,
    event: Vec<&'static str>,
    effect: Vec<&'static str>,
    agent: Vec<Option<String>>,
    action_kind: Vec<Option<&'static str>>,
    action_name: Vec<Option<String>>,
    reason: Vec<Option<String>>,
}

/// PostgreSQL text cannot hold NUL: the query columns get U+FFFD instead (the record's JSON
/// escapes it, so the record itself is exact).
fn text(s: &str) -> String {
    if s.contains('\0') { s.replace('\0', "\u{fffd}") } else { s.to_owned() }
}

/// How long getting a new connection (connect, writer lock, chain head) may take before the
/// batch waiting for it fails.
const RECONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The writer task's state: its connection (holding the writer's advisory lock) and the
/// chain's head.
struct Writer {
    /// `None` after a failed batch: the next batch connects again.
    conn: Option<PgConnection>,
    /// The backend of the session that holds (or held) the writer lock.
    pid: Option<i32>,
    config: PostgresConfig,
    key: String,
    insert: String,
    /// Which of a batch's record ids this writer has stored already.
    stored: String,
    writer: String,
    table: String,
    seq: u64,
    prev: [u8; 32],
    /// Whether a record may arrive that is stored already (after a failed batch, or when the
    /// chain had rows at open): then each batch skips the ids the table holds.
    dedupe: bool,
    /// Another live sink took the writer id while this one was disconnected: stop.
    stopped: bool,
}

#[async_trait]
impl BatchStore for Writer {
    type Row = Prepared;

    fn record_id(row: &Prepared) -> uuid::Uuid {
        row.id
    }

    async fn commit(&mut self, rows: Vec<Prepared>) -> Result<(), AuditError> {
        let result = self.insert(rows).await;
        if result.is_err() {
            // Broken or not, the connection is closed: the next batch starts on a new one and
            // reads the chain's head again (the failed commit may have landed).
            self.conn = None;
            self.dedupe = true;
        }
        result
    }

    fn stopped(&self) -> bool {
        self.stopped
    }

    async fn close(mut self) {
        if let Some(mut conn) = self.conn.take() {
            let _ = sqlx::query("SELECT pg_advisory_unlock_all()").execute(&mut conn).await;
            let _ = conn.close().await;
        }
    }
}

impl Writer {
    /// A new connection for the next batch: takes the writer lock on it again and reads where
    /// the chain ends. Stops the sink (`stopped`) if another live sink holds the writer id.
    async fn reconnect(&mut self) -> Result<(), AuditError> {
        let failed = |e: &dyn fmt::Display| {
            AuditError::write(format!(
                "cannot reconnect to `{}` (writer `{}`): {}",
                self.config.safe_url(),
                self.writer,
                scrub(&e.to_string(), &self.config)
            ))
        };
        let options = options(&self.config).map_err(|e| failed(&e))?;
        let mut conn =
            match tokio::time::timeout(RECONNECT_TIMEOUT, PgConnection::connect_with(&options)).await {
                Ok(Ok(conn)) => conn,
                Ok(Err(e)) => return Err(failed(&e)),
                Err(_) => return Err(failed(&"timed out")),
            };
        let setup = tokio::time::timeout(RECONNECT_TIMEOUT, async {
            let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
                .bind(&self.key)
                .fetch_one(&mut conn)
                .await?;
            if !locked {
                // The lock is per session: is it the old session of this sink, not yet ended?
                let old: bool = match self.pid {
                    Some(pid) => {
                        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1)")
                            .bind(pid)
                            .fetch_one(&mut conn)
                            .await?
                    }
                    None => false,
                };
                return Ok(Err(old));
            }
            let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(&mut conn).await?;
            let head = read_head(&mut conn, &self.table, &self.writer).await?;
            Ok::<_, sqlx::Error>(Ok((pid, head)))
        })
        .await;
        let found = match setup {
            Ok(Ok(found)) => found,
            Ok(Err(e)) => {
                let _ = conn.close().await;
                return Err(failed(&e));
            }
            Err(_) => return Err(failed(&"timed out")),
        };
        match found {
            Ok((pid, Ok((seq, prev)))) => {
                self.conn = Some(conn);
                self.pid = Some(pid);
                self.seq = seq;
                self.prev = prev;
                tracing::info!(target: "zta_audit_postgres", writer = %self.writer, table = %self.table, seq, "reconnected; the chain continues");
                Ok(())
            }
            Ok((_, Err(what))) => {
                let _ = conn.close().await;
                Err(AuditError::write(format!(
                    "writer `{}` in `{}`: the last stored row has {what}",
                    self.writer, self.table
                )))
            }
            Err(true) => {
                let _ = conn.close().await;
                Err(AuditError::write(format!(
                    "writer `{}`: the previous session still holds the writer lock on `{}`; not reconnected yet",
                    self.writer, self.table
                )))
            }
            Err(false) => {
                let _ = conn.close().await;
                self.stopped = true;
                Err(AuditError::write(format!(
                    "writer_id `{}` is in use by another live sink on table `{}`; this sink stops",
                    self.writer, self.table
                )))
            }
        }
    }

    /// Inserts `pending` as the chain's next rows, in one statement (one transaction), after a
    /// new connection if the last batch failed. After a failure it first
    /// skips the records this writer has stored already, so that a record sent again (by a
    /// spool replaying a batch whose commit landed, or landed in part) is stored once. An error
    /// leaves the batch uncommitted, or (when the connection broke while committing) possibly
    /// committed: either way the appenders hear of the failure, never a success that did not
    /// happen.
    async fn insert(&mut self, pending: Vec<Prepared>) -> Result<(), AuditError> {
        if self.conn.is_none() {
            self.reconnect().await?;
        }
        let Some(conn) = self.conn.as_mut() else { return Err(AuditError::Closed) };
        let failed = |n: usize, first: u64, e: &dyn fmt::Display| {
            AuditError::write(format!(
                "batch of {n} records (writer `{}` seq {first}..) not committed to `{}`: {e}",
                self.writer, self.table
            ))
        };
        let pending = if self.dedupe {
            let ids: Vec<String> = pending.iter().map(|r| r.id.to_string()).collect();
            let stored: Vec<(String,)> = sqlx::query_as(&self.stored)
                .bind(&self.writer)
                .bind(&ids)
                .fetch_all(&mut *conn)
                .await
                .map_err(|e| failed(pending.len(), self.seq + 1, &e))?;
            let mut seen: std::collections::HashSet<uuid::Uuid> =
                stored.iter().filter_map(|(id,)| uuid::Uuid::parse_str(id).ok()).collect();
            let before = pending.len();
            let fresh: Vec<Prepared> = pending.into_iter().filter(|r| seen.insert(r.id)).collect();
            if fresh.len() < before {
                tracing::info!(target: "zta_audit_postgres", writer = %self.writer, table = %self.table, skipped = before - fresh.len(), "records already stored were not stored again");
            }
            fresh
        } else {
            pending
        };
        if pending.is_empty() {
            return Ok(());
        }
        let first = self.seq + 1;
        let n = pending.len();
        let mut rows = Rows::default();
        let (mut seq, mut prev) = (self.seq, self.prev);
        for row in pending {
            seq += 1;
            let signed = i64::try_from(seq).map_err(|_| AuditError::write("the writer's chain is full"))?;
            let hash = chain_hash(&self.writer, seq, &prev, row.json.as_bytes());
            rows.seq.push(signed);
            rows.prev.push(prev.to_vec());
            rows.hash.push(hash.to_vec());
            // `write_json` formatted this time already, so it formats here too.
            let time = row.time.format(&Rfc3339).map_err(|e| {
                AuditError::write(format!("audit record `{}`: cannot format its time: {e}", row.id))
            })?;
            rows.record.push(row.json);
            rows.id.push(row.id.to_string());
            rows.time.push(time);
            rows.event.push(row.event);
            rows.effect.push(row.effect);
            rows.agent.push(row.agent.as_ref().map(|a| text(a.as_str())));
            rows.action_kind.push(row.action.as_ref().map(|a| a.kind().as_str()));
            rows.action_name.push(row.action.as_ref().map(|a| text(a.name())));
            rows.reason.push(row.reason.as_deref().map(text));
            prev = hash;
        }
        let result = sqlx::query(&self.insert)
            .bind(&self.writer)
            .bind(&rows.seq)
            .bind(&rows.prev)
            .bind(&rows.hash)
            .bind(&rows.record)
            .bind(&rows.id)
            .bind(&rows.time)
            .bind(&rows.event)
            .bind(&rows.effect)
            .bind(&rows.agent)
            .bind(&rows.action_kind)
            .bind(&rows.action_name)
            .bind(&rows.reason)
            .execute(&mut *conn)
            .await;
        match result {
            Ok(_) => {
                self.seq = seq;
                self.prev = prev;
                Ok(())
            }
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("23505") => {
                Err(AuditError::write(format!(
                    "writer `{}` seq {first}..: already stored in `{}`; another sink writes as this writer id",
                    self.writer, self.table
                )))
            }
            Err(e) => Err(failed(n, first, &e)),
        }
    }
}
