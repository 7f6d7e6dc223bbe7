//! The sink and its writer task.

use std::{collections::HashSet, fmt, time::Duration};

use async_trait::async_trait;
use sqlx::{Connection, SqliteConnection, sqlite::Sqlite};
use tokio::sync::{mpsc, oneshot};
use zta_core::{AuditError, AuditRecord, AuditSink, Durability};

use crate::{
    Error, SqliteConfig, chain_hash,
    config::default_writer_id,
    schema::{connect, database, migrate_on},
};

type Reply = oneshot::Sender<Result<(), AuditError>>;

// Records are nearly every job: boxing them would cost an allocation each.
#[allow(clippy::large_enum_variant)]
enum Job {
    Record { row: Prepared, done: Option<Reply> },
    Flush(Reply),
    Close(Reply),
}

/// An [`AuditSink`] that inserts records into a SQLite file in group-committed batches, each
/// writer with its own hash chain.
///
/// A batch that fails to commit fails its waiters; the next batch tries again on the same
/// connection (see the crate docs). Refuses (with [`AuditError::Closed`]) every append after
/// [`close`](Self::close).
pub struct SqliteSink {
    jobs: mpsc::Sender<Job>,
    writer: String,
    task: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    config: SqliteConfig,
}

impl fmt::Debug for SqliteSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteSink").field("config", &self.config).field("writer", &self.writer).finish()
    }
}

impl SqliteSink {
    /// Opens the file (made if missing), applies the embedded migrations (see
    /// [`migrate`](crate::migrate)), checks where this writer's chain ends, and starts the
    /// writer.
    ///
    /// Refuses an unusable config, a file that is not a ZTA audit database of a known schema
    /// version, and a writer whose last stored row is malformed.
    pub async fn open(config: SqliteConfig) -> Result<Self, Error> {
        config.check()?;
        let writer = match &config.writer_id {
            Some(id) => id.clone(),
            None => default_writer_id(),
        };
        let mut conn = connect(&config, true).await?;
        let head = async {
            migrate_on(&mut conn, &config).await?;
            read_head(&mut conn, &writer).await.map_err(|e| database(&config, &e))
        }
        .await;
        let seq = match head {
            Ok(Ok((seq, _))) => seq,
            Ok(Err(what)) => {
                let _ = conn.close().await;
                return Err(Error::Broken {
                    path: config.shown_path(),
                    writer,
                    seq: 0,
                    reason: format!("the last stored row has {what}"),
                });
            }
            Err(e) => {
                let _ = conn.close().await;
                return Err(e);
            }
        };
        let (jobs, queue) = mpsc::channel(config.queue_capacity);
        let writer_task = Writer {
            conn: Some(conn),
            path: config.shown_path(),
            writer: writer.clone(),
            // A chain that already has rows may be sent records it holds (a spool replaying
            // after a restart).
            dedupe: seq > 0,
            lost: false,
            batch_size: config.batch_size,
            delay: config.max_batch_delay,
            pending: Vec::new(),
        };
        let task = tokio::spawn(writer_task.run(queue));
        Ok(Self { jobs, writer, task: std::sync::Mutex::new(Some(task)), config })
    }

    /// This sink's writer id.
    pub fn writer_id(&self) -> &str {
        &self.writer
    }

    /// Commits everything taken, stops the writer and closes the file. Later appends fail with
    /// [`AuditError::Closed`]. Returns the last commit's error, if it failed.
    pub async fn close(&self) -> Result<(), AuditError> {
        let (done, closed) = oneshot::channel();
        let result = match self.jobs.send(Job::Close(done)).await {
            Ok(()) => closed.await.unwrap_or(Err(AuditError::Closed)),
            // Already closed.
            Err(_) => Ok(()),
        };
        let task = self.task.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = task {
            let _ = task.await;
        }
        result
    }
}

/// Where `writer`'s chain ends: its last seq and hash (0 and zero bytes when it has no rows).
/// The inner error names what is wrong with a stored row.
async fn read_head(
    conn: &mut SqliteConnection,
    writer: &str,
) -> Result<Result<(u64, [u8; 32]), &'static str>, sqlx::Error> {
    let last: Option<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT seq, hash FROM zta_audit WHERE writer_id = ?1 ORDER BY seq DESC LIMIT 1")
            .bind(writer)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(match last {
        None => Ok((0, zta_audit_chain::GENESIS)),
        Some((seq, hash)) => match (u64::try_from(seq), <[u8; 32]>::try_from(hash)) {
            (Ok(seq), Ok(hash)) => Ok((seq, hash)),
            (Err(_), _) => Err("a negative seq"),
            (_, Err(_)) => Err("a hash that is not 32 bytes"),
        },
    })
}

#[async_trait]
impl AuditSink for SqliteSink {
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
    id: String,
    json: String,
    time: i64,
    event: &'static str,
    effect: &'static str,
    agent: Option<String>,
    action_kind: Option<&'static str>,
    action_name: Option<String>,
    reason: Option<String>,
}

impl Prepared {
    fn new(record: &AuditRecord) -> Result<Self, AuditError> {
        let mut json = Vec::with_capacity(512);
        record.write_json(&mut json)?;
        let json = String::from_utf8(json)
            .map_err(|e| AuditError::write(format!("audit record `{}` is not UTF-8 JSON: {e}", record.id)))?;
        // Within ±292,000 years of 1970: every time an `OffsetDateTime` holds.
        let time = i64::try_from(record.time.unix_timestamp_nanos() / 1000).map_err(|_| {
            AuditError::write(format!("audit record `{}`: its time is out of range", record.id))
        })?;
        Ok(Self {
            id: record.id.to_string(),
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

/// The query columns get U+FFFD for NUL, which SQLite's text functions take as the end of the
/// text (the record's JSON escapes it, so the record itself is exact).
fn text(s: &str) -> String {
    if s.contains('\0') { s.replace('\0', "\u{fffd}") } else { s.to_owned() }
}

/// Rows per `INSERT` statement, largest first: a batch is cut greedily into these, so that a
/// few statements (each prepared once and cached) insert any number of rows, within SQLite's
/// limit of 32766 bound values per statement.
const CHUNKS: [usize; 3] = [256, 16, 1];
// The last size takes every row the larger ones left.
const _: () = assert!(matches!(CHUNKS.last(), Some(1)));

/// Bound values per row.
const COLUMNS: usize = 13;

fn insert_sql(rows: usize) -> String {
    let one = format!("({})", vec!["?"; COLUMNS].join(","));
    format!(
        "INSERT INTO zta_audit (writer_id, seq, prev_hash, hash, record, record_id, time, event, effect, \
         agent_id, action_kind, action_name, reason) VALUES {}",
        vec![one; rows].join(",")
    )
}

/// The writer task's state.
struct Writer {
    /// `None` once closed.
    conn: Option<SqliteConnection>,
    path: String,
    writer: String,
    /// Whether a record may arrive that is stored already (after a failed batch, or when the
    /// chain had rows at open): then each batch skips the ids the file holds.
    dedupe: bool,
    /// Queued records were lost and no flush has reported it yet: later queued records are
    /// dropped (so that a sender that appends again keeps its order) and the next flush fails.
    lost: bool,
    batch_size: usize,
    delay: Duration,
    pending: Vec<Prepared>,
}

impl Writer {
    async fn run(mut self, mut queue: mpsc::Receiver<Job>) {
        let inserts: Vec<(usize, String)> = CHUNKS.iter().map(|&n| (n, insert_sql(n))).collect();
        let mut waiting: Vec<Reply> = Vec::new();
        let mut closing: Vec<Reply> = Vec::new();
        let mut close_result: Result<(), AuditError> = Ok(());
        let mut queued_ids: Vec<String> = Vec::new();
        let mut dropped: Vec<String> = Vec::new();
        while let Some(first) = queue.recv().await {
            let mut next = Some(first);
            // A queued record was taken after this batch's last flush.
            let mut since_flush = false;
            let deadline = tokio::time::Instant::now() + self.delay;
            loop {
                if let Some(job) = next.take() {
                    match job {
                        Job::Record { row, done: Some(done) } => {
                            self.pending.push(row);
                            waiting.push(done);
                        }
                        Job::Record { row, done: None } if self.lost => dropped.push(row.id),
                        Job::Record { row, done: None } => {
                            queued_ids.push(row.id.clone());
                            since_flush = true;
                            self.pending.push(row);
                        }
                        Job::Flush(done) if self.lost => {
                            self.lost = false;
                            if !dropped.is_empty() {
                                tracing::error!(target: "zta_audit_sqlite", writer = %self.writer, path = %self.path, lost = ?dropped, "audit records queued after a failed batch were dropped (a flush reports it)");
                                dropped.clear();
                            }
                            let _ = done.send(Err(AuditError::write(format!(
                                "records queued for `{}` since the last flush were not stored (a batch failed to commit); append them again",
                                self.path
                            ))));
                        }
                        Job::Flush(done) => {
                            since_flush = false;
                            waiting.push(done);
                        }
                        Job::Close(done) => {
                            // Later sends fail; what is already queued is still taken below.
                            queue.close();
                            closing.push(done);
                        }
                    }
                }
                if self.pending.len() >= self.batch_size {
                    break;
                }
                match queue.try_recv() {
                    Ok(job) => next = Some(job),
                    Err(_) if waiting.is_empty() && closing.is_empty() && !self.pending.is_empty() => {
                        match tokio::time::timeout_at(deadline, queue.recv()).await {
                            Ok(Some(job)) => next = Some(job),
                            _ => break,
                        }
                    }
                    Err(_) => break,
                }
            }
            let result = self.commit(&inserts).await;
            if let Err(e) = &result {
                if since_flush {
                    self.lost = true;
                }
                self.dedupe = true;
                tracing::error!(target: "zta_audit_sqlite", writer = %self.writer, path = %self.path, error = %e, lost = ?queued_ids, "audit batch not committed (these queued records are lost)");
                if !closing.is_empty() {
                    close_result = result.clone();
                }
            }
            queued_ids.clear();
            for done in waiting.drain(..) {
                let _ = done.send(result.clone());
            }
        }
        // Closed, and everything queued before the close is taken.
        if let Some(conn) = self.conn.take() {
            let _ = conn.close().await;
        }
        if self.lost && close_result.is_ok() {
            close_result = Err(AuditError::write(format!(
                "records queued for `{}` since the last flush were not stored (a batch failed to commit)",
                self.path
            )));
        }
        if !dropped.is_empty() {
            tracing::error!(target: "zta_audit_sqlite", writer = %self.writer, path = %self.path, lost = ?dropped, "audit records queued after a failed batch were dropped");
        }
        for done in closing.drain(..) {
            let _ = done.send(close_result.clone());
        }
    }

    /// Inserts the pending records as the chain's next rows in one transaction, after the
    /// head it reads inside that transaction. When `dedupe` is on it first skips the records
    /// this writer has stored already. An error leaves the batch uncommitted.
    async fn commit(&mut self, inserts: &[(usize, String)]) -> Result<(), AuditError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let pending = std::mem::take(&mut self.pending);
        let n = pending.len();
        let Some(conn) = self.conn.as_mut() else { return Err(AuditError::Closed) };
        let (writer, path) = (self.writer.as_str(), self.path.as_str());
        let failed = |e: &dyn fmt::Display| {
            AuditError::write(format!(
                "batch of {n} records (writer `{writer}`) not committed to `{path}`: {e}"
            ))
        };
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.map_err(|e| failed(&e))?;
        let (mut seq, mut prev) = match read_head(&mut tx, writer).await.map_err(|e| failed(&e))? {
            Ok(head) => head,
            Err(what) => return Err(failed(&format_args!("the last stored row has {what}"))),
        };
        let pending = if self.dedupe {
            let mut seen = HashSet::new();
            let mut fresh = Vec::with_capacity(pending.len());
            for row in pending {
                let stored: Option<i64> =
                    sqlx::query_scalar("SELECT 1 FROM zta_audit WHERE record_id = ?1 AND writer_id = ?2")
                        .bind(&row.id)
                        .bind(writer)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(|e| failed(&e))?;
                if stored.is_none() && seen.insert(row.id.clone()) {
                    fresh.push(row);
                }
            }
            if fresh.len() < n {
                tracing::info!(target: "zta_audit_sqlite", writer, path, skipped = n - fresh.len(), "records already stored were not stored again");
            }
            fresh
        } else {
            pending
        };
        // Every seq of the batch must fit the column's i64.
        let last = u64::try_from(pending.len()).ok().and_then(|n| seq.checked_add(n));
        let (Ok(mut signed), Some(Ok(_))) = (i64::try_from(seq), last.map(i64::try_from)) else {
            return Err(AuditError::write("the writer's chain is full"));
        };
        // Statements of CHUNKS rows each, largest first.
        let mut plan = Vec::new();
        let mut left = pending.len();
        for (size, sql) in inserts {
            plan.extend(std::iter::repeat_n((*size, sql.as_str()), left / size));
            left %= size;
        }
        let mut rows = pending.into_iter();
        // Each statement's rows are hashed and bound while SQLite runs the one before.
        let mut statements = plan.into_iter().map(|(size, sql)| {
            let mut query = sqlx::query::<Sqlite>(sql);
            for row in rows.by_ref().take(size) {
                seq += 1;
                signed += 1;
                let hash = chain_hash(writer, seq, &prev, row.json.as_bytes());
                query = query
                    .bind(writer)
                    .bind(signed)
                    .bind(prev.to_vec())
                    .bind(hash.to_vec())
                    .bind(row.json)
                    .bind(row.id)
                    .bind(row.time)
                    .bind(row.event)
                    .bind(row.effect)
                    .bind(row.agent)
                    .bind(row.action_kind)
                    .bind(row.action_name)
                    .bind(row.reason);
                prev = hash;
            }
            query
        });
        let mut next = statements.next();
        while let Some(query) = next {
            let (done, following) = tokio::join!(query.execute(&mut *tx), async { statements.next() });
            done.map_err(|e| failed(&e))?;
            next = following;
        }
        tx.commit().await.map_err(|e| failed(&e))
    }
}
