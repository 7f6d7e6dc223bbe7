//! The sink, and the store its group-commit writer inserts through.

use std::{collections::HashSet, fmt};

use async_trait::async_trait;
use sqlx::{Connection, SqliteConnection, sqlite::Sqlite};
use zta_audit_chain::{BatchStore, Batching, GroupCommit, MarkerSigner};
use zta_core::{AuditError, AuditRecord, AuditSink, Durability};

use crate::{
    Error, SqliteConfig, chain_hash,
    schema::{connect, database, migrate_on},
};

/// An [`AuditSink`] that inserts records into a SQLite file in group-committed batches, each
/// writer with its own hash chain.
///
/// A batch that fails to commit fails its waiters; the next batch tries again on the same
/// connection (see the crate docs). Refuses (with [`AuditError::Closed`]) every append after
/// [`close`](Self::close).
pub struct SqliteSink {
    writes: GroupCommit<Prepared>,
    writer: String,
    config: SqliteConfig,
    /// The retention task, if `retention` is set.
    retention: Option<tokio::task::AbortHandle>,
}

impl Drop for SqliteSink {
    fn drop(&mut self) {
        if let Some(task) = &self.retention {
            task.abort();
        }
    }
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
    /// Refuses an unusable config (a `retention` key that cannot be loaded among it), a file
    /// that is not a ZTA audit database of a known schema version, and a writer whose last
    /// stored row is malformed. With `retention`, a task prunes the file at once and then
    /// every `retention.every`, until the sink is closed or dropped.
    pub async fn open(config: SqliteConfig) -> Result<Self, Error> {
        config.check()?;
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
        let store = Store {
            conn,
            path: config.shown_path(),
            writer: writer.clone(),
            // A chain that already has rows may be sent records it holds (a spool replaying
            // after a restart).
            dedupe: seq > 0,
            inserts: CHUNKS.iter().map(|&n| (n, insert_sql(n))).collect(),
        };
        let batching = Batching {
            batch_size: config.batch_size,
            max_delay: config.max_batch_delay,
            queue_capacity: config.queue_capacity,
        };
        let writes =
            GroupCommit::start(store, batching, format!("`{}` (writer `{writer}`)", config.shown_path()));
        let retention = match (&config.retention, signer) {
            (Some(r), Some(signer)) => Some(start_retention(config.clone(), r, signer)),
            _ => None,
        };
        Ok(Self { writes, writer, config, retention })
    }

    /// This sink's writer id.
    pub fn writer_id(&self) -> &str {
        &self.writer
    }

    /// Commits everything taken, stops the writer and closes the file. Later appends fail with
    /// [`AuditError::Closed`]. Returns the last commit's error, if it failed.
    pub async fn close(&self) -> Result<(), AuditError> {
        if let Some(task) = &self.retention {
            task.abort();
        }
        self.writes.close().await
    }
}

/// The log target of the retention task.
const TARGET: &str = "zta_audit_sqlite";

/// Starts the task that prunes the store every `retention.every` (the first time at once),
/// with `signer`; failures are logged and retried at the next interval.
fn start_retention(
    config: SqliteConfig,
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
    Ok(zta_audit_chain::stored_head(last))
}

#[async_trait]
impl AuditSink for SqliteSink {
    async fn append(&self, record: AuditRecord, durability: Durability) -> Result<(), AuditError> {
        if self.writes.is_closed() {
            return Err(AuditError::Closed);
        }
        // Serialized here, on the appender's task, so that the writer only hashes and inserts.
        self.writes.append(Prepared::new(&record)?, durability).await
    }

    async fn flush(&self) -> Result<(), AuditError> {
        self.writes.flush().await
    }

    /// Records in the group-commit queue or batch, not yet stored.
    fn queued(&self) -> Option<u64> {
        Some(self.writes.queued())
    }
}

/// A record serialized for its row (everything but the chain columns).
struct Prepared {
    id: uuid::Uuid,
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

/// Where the group-commit writer inserts: its connection and statements.
struct Store {
    conn: SqliteConnection,
    path: String,
    writer: String,
    /// Whether a record may arrive that is stored already (after a failed batch, or when the
    /// chain had rows at open): then each batch skips the ids the file holds.
    dedupe: bool,
    /// The `INSERT` statements of [`CHUNKS`] rows.
    inserts: Vec<(usize, String)>,
}

#[async_trait]
impl BatchStore for Store {
    type Row = Prepared;

    fn record_id(row: &Prepared) -> uuid::Uuid {
        row.id
    }

    async fn commit(&mut self, rows: Vec<Prepared>) -> Result<(), AuditError> {
        let result = self.insert(rows).await;
        if result.is_err() {
            self.dedupe = true;
        }
        result
    }

    async fn close(self) {
        let _ = self.conn.close().await;
    }
}

impl Store {
    /// Inserts `pending` as the chain's next rows in one transaction, after the head it reads
    /// inside that transaction. When `dedupe` is on it first skips the records this writer has
    /// stored already. An error leaves the batch uncommitted.
    async fn insert(&mut self, pending: Vec<Prepared>) -> Result<(), AuditError> {
        let n = pending.len();
        let conn = &mut self.conn;
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
                        .bind(row.id.to_string())
                        .bind(writer)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(|e| failed(&e))?;
                if stored.is_none() && seen.insert(row.id) {
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
        for (size, sql) in &self.inserts {
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
                    .bind(row.id.to_string())
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
