//! The sink and its writer task.

use std::{fmt, time::Duration};

use async_trait::async_trait;
use sqlx::{
    PgPool,
    pool::PoolConnection,
    postgres::{PgPoolOptions, Postgres},
};
use time::format_description::well_known::Rfc3339;
use tokio::sync::{mpsc, oneshot};
use zta_core::{AuditError, AuditRecord, AuditSink, Durability};

use crate::{
    Error, PostgresConfig, chain_hash,
    config::default_writer_id,
    schema::{migrate, options, scrub},
};

type Reply = oneshot::Sender<Result<(), AuditError>>;

// Records are nearly every job: boxing them would cost an allocation each.
#[allow(clippy::large_enum_variant)]
enum Job {
    Record { row: Prepared, done: Option<Reply> },
    Flush(Reply),
    Close(Reply),
}

/// An [`AuditSink`] that inserts records into a PostgreSQL table in group-committed batches,
/// each writer with its own hash chain.
///
/// Refuses (with [`AuditError::Closed`]) every append after [`close`](Self::close) or after a
/// batch failed to commit; refuses to open on a writer id another live sink holds.
pub struct PostgresSink {
    jobs: mpsc::Sender<Job>,
    writer: String,
    task: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    pool: PgPool,
    config: PostgresConfig,
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
    /// Refuses an unusable config, and a writer id that another live sink on the same table
    /// holds (each writer holds an advisory lock on its id for as long as it runs).
    pub async fn open(config: PostgresConfig) -> Result<Self, Error> {
        config.check()?;
        let writer = match &config.writer_id {
            Some(id) => id.clone(),
            None => default_writer_id(),
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
        let mut conn = pool.acquire().await.map_err(database)?;
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
            .bind(format!("zta-audit-postgres/{}/{writer}", config.table))
            .fetch_one(&mut *conn)
            .await
            .map_err(database)?;
        if !locked {
            drop(conn);
            pool.close().await;
            return Err(Error::Config(format!(
                "writer_id `{writer}` is in use by another live sink on table `{}`",
                config.table
            )));
        }
        // The table name passed `check_table`: a plain identifier, safe in SQL text.
        let last: Option<(i64, Vec<u8>)> = sqlx::query_as(&format!(
            "SELECT seq, hash FROM {} WHERE writer_id = $1 ORDER BY seq DESC LIMIT 1",
            config.table
        ))
        .bind(&writer)
        .fetch_optional(&mut *conn)
        .await
        .map_err(database)?;
        let (seq, prev) = match last {
            None => (0, [0; 32]),
            Some((seq, hash)) => {
                let seq = u64::try_from(seq).map_err(|_| broken(&config, &writer, "a negative seq"))?;
                let hash: [u8; 32] =
                    hash.try_into().map_err(|_| broken(&config, &writer, "a hash that is not 32 bytes"))?;
                (seq, hash)
            }
        };
        let (jobs, queue) = mpsc::channel(config.queue_capacity);
        let insert = format!(
            "INSERT INTO {} (writer_id, seq, prev_hash, hash, record, record_id, time, event, effect, \
             agent_id, action_kind, action_name, reason) \
             SELECT $1, s, p, h, r, i::uuid, t::timestamptz, e, f, a, k, n, why \
             FROM UNNEST($2::int8[], $3::bytea[], $4::bytea[], $5::text[], $6::text[], $7::text[], \
             $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[]) \
             WITH ORDINALITY AS u(s, p, h, r, i, t, e, f, a, k, n, why, ord) ORDER BY ord",
            config.table
        );
        let writer_task = Writer {
            conn: Some(conn),
            insert,
            writer: writer.clone(),
            table: config.table.clone(),
            seq,
            prev,
            batch_size: config.batch_size,
            delay: config.max_batch_delay,
            rows: Rows::default(),
        };
        let task = tokio::spawn(writer_task.run(queue));
        Ok(Self { jobs, writer, task: std::sync::Mutex::new(Some(task)), pool, config })
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
        let (done, closed) = oneshot::channel();
        let result = match self.jobs.send(Job::Close(done)).await {
            Ok(()) => closed.await.unwrap_or(Err(AuditError::Closed)),
            // Already closed or stopped.
            Err(_) => Ok(()),
        };
        let task = self.task.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = task {
            let _ = task.await;
        }
        self.pool.close().await;
        result
    }
}

fn broken(config: &PostgresConfig, writer: &str, what: &str) -> Error {
    Error::Broken {
        table: config.table.clone(),
        writer: writer.to_owned(),
        seq: 0,
        reason: format!("the last stored row has {what}"),
    }
}

#[async_trait]
impl AuditSink for PostgresSink {
    async fn append(&self, record: AuditRecord, durability: Durability) -> Result<(), AuditError> {
        if self.jobs.is_closed() {
            return Err(AuditError::Closed);
        }
        // Serialized here, on the appender's task, so that the writer only hashes and inserts.
        let row = Prepared::new(&record)?;
        match durability {
            Durability::Queued => {
                self.jobs.send(Job::Record { row, done: None }).await.map_err(|_| AuditError::Closed)
            }
            Durability::Flushed => {
                let (done, stored) = oneshot::channel();
                self.jobs
                    .send(Job::Record { row, done: Some(done) })
                    .await
                    .map_err(|_| AuditError::Closed)?;
                stored.await.map_err(|_| AuditError::Closed)?
            }
        }
    }

    async fn flush(&self) -> Result<(), AuditError> {
        let (done, flushed) = oneshot::channel();
        self.jobs.send(Job::Flush(done)).await.map_err(|_| AuditError::Closed)?;
        flushed.await.map_err(|_| AuditError::Closed)?
    }
}

/// A record serialized for its row (everything but the chain columns).
struct Prepared {
    id: uuid::Uuid,
    json: String,
    time: String,
    event: &'static str,
    effect: &'static str,
    agent: Option<String>,
    action_kind: Option<&'static str>,
    action_name: Option<String>,
    reason: Option<String>,
}

impl Prepared {
    /// Refuses a record that cannot be serialized (a time outside RFC 3339's years).
    fn new(record: &AuditRecord) -> Result<Self, AuditError> {
        let mut json = Vec::with_capacity(512);
        record.write_json(&mut json)?;
        let time = record.time.format(&Rfc3339).map_err(|e| {
            AuditError::write(format!("audit record `{}`: cannot format its time: {e}", record.id))
        })?;
        let json = String::from_utf8(json)
            .map_err(|e| AuditError::write(format!("audit record `{}` is not UTF-8 JSON: {e}", record.id)))?;
        Ok(Self {
            id: record.id,
            json,
            time,
            event: record.event.as_str(),
            effect: record.effect.as_str(),
            agent: record.agent_id.as_ref().map(|a| text(a.as_str())),
            action_kind: record.action.as_ref().map(|a| a.kind().as_str()),
            action_name: record.action.as_ref().map(|a| text(a.name())),
            reason: record.reason.as_deref().map(text),
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

impl Rows {
    fn len(&self) -> usize {
        self.seq.len()
    }

    fn clear(&mut self) {
        *self = Self::default();
    }
}

/// PostgreSQL text cannot hold NUL: the query columns get U+FFFD instead (the record's JSON
/// escapes it, so the record itself is exact).
fn text(s: &str) -> String {
    if s.contains('\0') { s.replace('\0', "\u{fffd}") } else { s.to_owned() }
}

/// The writer task's state: its connection (holding the writer's advisory lock) and the
/// chain's head.
struct Writer {
    conn: Option<PoolConnection<Postgres>>,
    insert: String,
    writer: String,
    table: String,
    seq: u64,
    prev: [u8; 32],
    batch_size: usize,
    delay: Duration,
    rows: Rows,
}

impl Writer {
    async fn run(mut self, mut queue: mpsc::Receiver<Job>) {
        let mut waiting: Vec<Reply> = Vec::new();
        let mut closing: Vec<Reply> = Vec::new();
        let mut queued_ids: Vec<uuid::Uuid> = Vec::new();
        while let Some(first) = queue.recv().await {
            let mut next = Some(first);
            let deadline = tokio::time::Instant::now() + self.delay;
            loop {
                if let Some(job) = next.take() {
                    match job {
                        Job::Record { row, done } => {
                            let id = row.id;
                            match self.push(row) {
                                Ok(()) => match done {
                                    Some(done) => waiting.push(done),
                                    None => queued_ids.push(id),
                                },
                                Err(e) => match done {
                                    Some(done) => {
                                        let _ = done.send(Err(e));
                                    }
                                    None => {
                                        tracing::error!(target: "zta_audit_postgres", writer = %self.writer, record = %id, error = %e, "audit record cannot be stored");
                                    }
                                },
                            }
                        }
                        Job::Flush(done) => waiting.push(done),
                        Job::Close(done) => {
                            // Later sends fail; what is already queued is still taken below.
                            queue.close();
                            closing.push(done);
                        }
                    }
                }
                if self.rows.len() >= self.batch_size {
                    break;
                }
                match queue.try_recv() {
                    Ok(job) => next = Some(job),
                    Err(_) if waiting.is_empty() && closing.is_empty() && self.rows.len() > 0 => {
                        match tokio::time::timeout_at(deadline, queue.recv()).await {
                            Ok(Some(job)) => next = Some(job),
                            _ => break,
                        }
                    }
                    Err(_) => break,
                }
            }
            let result = self.commit().await;
            if let Err(e) = &result {
                queue.close();
                while let Ok(job) = queue.try_recv() {
                    match job {
                        Job::Record { row, done: None } => queued_ids.push(row.id),
                        Job::Record { done: Some(done), .. } | Job::Flush(done) | Job::Close(done) => {
                            waiting.push(done);
                        }
                    }
                }
                tracing::error!(target: "zta_audit_postgres", writer = %self.writer, table = %self.table, error = %e, lost = ?queued_ids, "audit batch not committed; the sink stops, and these queued records may be lost");
                if let Some(conn) = self.conn.take() {
                    // Broken or not, it must not go back into the pool holding the writer lock.
                    drop(conn.detach());
                }
            }
            queued_ids.clear();
            for done in waiting.drain(..) {
                let _ = done.send(result.clone());
            }
            if result.is_err() {
                for done in closing.drain(..) {
                    let _ = done.send(result.clone());
                }
                return;
            }
        }
        // Closed, and everything queued before the close is committed.
        if let Some(mut conn) = self.conn.take() {
            let _ = sqlx::query("SELECT pg_advisory_unlock_all()").execute(&mut *conn).await;
        }
        for done in closing.drain(..) {
            let _ = done.send(Ok(()));
        }
    }

    /// Adds `row` as the chain's next row.
    fn push(&mut self, row: Prepared) -> Result<(), AuditError> {
        let seq = self.seq + 1;
        let signed = i64::try_from(seq).map_err(|_| AuditError::write("the writer's chain is full"))?;
        let hash = chain_hash(&self.writer, seq, &self.prev, row.json.as_bytes());
        let rows = &mut self.rows;
        rows.seq.push(signed);
        rows.prev.push(self.prev.to_vec());
        rows.hash.push(hash.to_vec());
        rows.record.push(row.json);
        rows.id.push(row.id.to_string());
        rows.time.push(row.time);
        rows.event.push(row.event);
        rows.effect.push(row.effect);
        rows.agent.push(row.agent);
        rows.action_kind.push(row.action_kind);
        rows.action_name.push(row.action_name);
        rows.reason.push(row.reason);
        self.seq = seq;
        self.prev = hash;
        Ok(())
    }

    /// Inserts the batch in one statement (one transaction). An error leaves it uncommitted,
    /// or (when the connection broke while committing) possibly committed: either way the
    /// appenders hear of the failure, never a success that did not happen.
    async fn commit(&mut self) -> Result<(), AuditError> {
        if self.rows.len() == 0 {
            return Ok(());
        }
        let Some(conn) = self.conn.as_mut() else { return Err(AuditError::Closed) };
        let rows = std::mem::take(&mut self.rows);
        let first = rows.seq.first().copied().unwrap_or_default();
        let n = rows.len();
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
            .execute(&mut **conn)
            .await;
        self.rows.clear();
        match result {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("23505") => {
                Err(AuditError::write(format!(
                    "writer `{}` seq {first}..: already stored in `{}`; another sink writes as this writer id",
                    self.writer, self.table
                )))
            }
            Err(e) => Err(AuditError::write(format!(
                "batch of {n} records (writer `{}` seq {first}..) not committed to `{}`: {e}",
                self.writer, self.table
            ))),
        }
    }
}
