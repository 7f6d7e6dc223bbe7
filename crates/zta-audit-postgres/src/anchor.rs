//! A PostgreSQL table as the anchor of the JSON Lines sink's checkpoints: each published
//! checkpoint is one row, in the order they arrive (see `zta_audit_chain::CheckpointAnchor`).

use std::{fmt, sync::Arc};

use async_trait::async_trait;
use secrecy::SecretString;
use serde::Deserialize;
use sqlx::{Connection, PgConnection};
use tokio::sync::Mutex;
use zta_audit_chain::{AnchorEntry, AnchorError, CheckpointAnchor};

use crate::{
    Error, PostgresConfig,
    config::check_table,
    schema::{TABLE_LOCK, migrate, options, scrub},
};

/// The table the migrations make, and the model of any other anchor table.
const MODEL: &str = "zta_audit_anchor";

/// `anchor: {postgres: {...}}` of a JSON Lines sink: where its checkpoints are published.
///
/// ```yaml
/// url_env: ZTA_ANCHOR_POSTGRES_URL   # or url: postgres://zta@db.internal/zta
/// table: zta_audit_anchor            # default
/// ```
///
/// Exactly one of `url` and `url_env` (read when the anchor is first used).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PostgresAnchorConfig {
    /// The server. The password never appears in `Debug` output, errors or logs.
    #[serde(default)]
    pub url: Option<SecretString>,
    /// The environment variable that holds the URL instead.
    #[serde(default)]
    pub url_env: Option<String>,
    /// The table (a plain SQL identifier); one not yet there is made like `zta_audit_anchor`.
    /// Default `zta_audit_anchor`.
    #[serde(default = "default_table")]
    pub table: String,
}

fn default_table() -> String {
    MODEL.into()
}

impl PostgresAnchorConfig {
    /// The table `zta_audit_anchor` of the database at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self { url: Some(SecretString::from(url.into())), url_env: None, table: default_table() }
    }

    /// The table `zta_audit_anchor` of the database whose URL the variable `var` holds.
    pub fn from_env(var: impl Into<String>) -> Self {
        Self { url: None, url_env: Some(var.into()), table: default_table() }
    }

    /// The same, in `table`.
    #[must_use]
    pub fn with_table(mut self, table: impl Into<String>) -> Self {
        self.table = table.into();
        self
    }

    /// The connection settings, as the sink's config holds them.
    fn as_sink_config(&self) -> PostgresConfig {
        let mut config = PostgresConfig::new(String::new());
        config.url.clone_from(&self.url);
        config.url_env.clone_from(&self.url_env);
        config.table.clone_from(&self.table);
        config.application_name = "zta-audit-anchor".into();
        config
    }
}

impl fmt::Debug for PostgresAnchorConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresAnchorConfig")
            .field("url", &self.url.as_ref().map(|_| self.as_sink_config().safe_url()))
            .field("url_env", &self.url_env)
            .field("table", &self.table)
            .finish()
    }
}

/// A [`CheckpointAnchor`] on a PostgreSQL table (made by the embedded migrations, like
/// `zta_audit_anchor` when it has another name). Appends one row per published checkpoint;
/// never updates or deletes, so the role it connects as needs only `INSERT` and `SELECT` on
/// the table (and, once, the right to migrate).
///
/// It holds one connection, made on first use on the caller's runtime and made again after a
/// failure; nothing runs in the background.
#[derive(Debug, Clone)]
pub struct PostgresAnchor {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// The settings, with `url` not yet resolved from `url_env`.
    config: PostgresConfig,
    /// `(connection, whether the table is known to be there)`.
    conn: Mutex<Option<PgConnection>>,
    insert: String,
    select: String,
}

impl PostgresAnchor {
    /// The anchor `config` names. Refuses (here, before any connection) both or neither of
    /// `url` and `url_env`, and a table name that is not a plain identifier; an unset
    /// `url_env` is refused when the anchor is used.
    pub fn new(config: &PostgresAnchorConfig) -> Result<Self, Error> {
        check_table(&config.table)?;
        if config.url.is_some() == config.url_env.is_some() {
            return Err(Error::Config("anchor: give exactly one of `url` and `url_env`".into()));
        }
        let table = &config.table;
        Ok(Self {
            inner: Arc::new(Inner {
                config: config.as_sink_config(),
                conn: Mutex::new(None),
                // The name passed `check_table`: a plain identifier, safe in SQL text.
                insert: format!(
                    "INSERT INTO {table} (log_id, key_id, seq, hash, checkpoint) VALUES ($1, $2, $3, $4, $5)"
                ),
                select: format!(
                    "SELECT log_id, key_id, seq, hash, checkpoint FROM {table} \
                     WHERE log_id = $1 AND key_id = $2 ORDER BY pos"
                ),
            }),
        })
    }

    /// The kept connection, taken out of `slot` (a call that fails or is given up on never
    /// puts it back, so a dead one is not used again), or a new one (the table set up first,
    /// when `setup`). `true` with a kept one.
    async fn connection(
        &self,
        slot: &mut Option<PgConnection>,
        setup: bool,
    ) -> Result<(PgConnection, bool), AnchorError> {
        if let Some(conn) = slot.take() {
            return Ok((conn, true));
        }
        let config = self.inner.config.resolve().map_err(|e| AnchorError::new(e.to_string()))?;
        if setup {
            make_table(&config).await.map_err(|e| AnchorError::new(e.to_string()))?;
        }
        let options = options(&config).map_err(|e| AnchorError::new(e.to_string()))?;
        let conn = PgConnection::connect_with(&options).await.map_err(|e| self.failed(&e))?;
        Ok((conn, false))
    }

    fn failed(&self, e: &sqlx::Error) -> AnchorError {
        let config = &self.inner.config;
        let resolved = config.resolve().unwrap_or_else(|_| config.clone());
        AnchorError::new(format!("PostgreSQL `{}`: {}", config.safe_url(), scrub(&e.to_string(), &resolved)))
    }
}

#[async_trait]
impl CheckpointAnchor for PostgresAnchor {
    fn describe(&self) -> String {
        let config = &self.inner.config;
        format!("PostgreSQL table `{}` at `{}`", config.table, config.safe_url())
    }

    async fn publish(&self, entry: &AnchorEntry) -> Result<(), AnchorError> {
        let seq = i64::try_from(entry.seq).map_err(|_| AnchorError::new("seq is out of range"))?;
        let mut slot = self.inner.conn.lock().await;
        loop {
            let (mut conn, kept) = self.connection(&mut slot, true).await?;
            let inserted = sqlx::query(&self.inner.insert)
                .bind(&entry.log_id)
                .bind(&entry.key_id)
                .bind(seq)
                .bind(&entry.hash)
                .bind(&entry.checkpoint)
                .execute(&mut conn)
                .await;
            match inserted {
                Ok(_) => {
                    *slot = Some(conn);
                    return Ok(());
                }
                // A kept connection may have died (a restarted server): a new one, once.
                Err(_) if kept => {}
                Err(e) => return Err(self.failed(&e)),
            }
        }
    }

    async fn entries(&self, log_id: &str, key_id: &str) -> Result<Vec<AnchorEntry>, AnchorError> {
        let mut slot = self.inner.conn.lock().await;
        let rows: Vec<(String, String, i64, String, String)> = loop {
            let (mut conn, kept) = self.connection(&mut slot, false).await?;
            match sqlx::query_as(&self.inner.select).bind(log_id).bind(key_id).fetch_all(&mut conn).await {
                Ok(rows) => {
                    *slot = Some(conn);
                    break rows;
                }
                Err(_) if kept => {}
                Err(e) => return Err(self.failed(&e)),
            }
        };
        rows.into_iter()
            .map(|(log_id, key_id, seq, hash, checkpoint)| {
                let seq = u64::try_from(seq).map_err(|_| AnchorError::new(format!("a row has seq {seq}")))?;
                Ok(AnchorEntry::new(log_id, key_id, seq, hash, checkpoint))
            })
            .collect()
    }
}

/// Applies the embedded migrations (which make `zta_audit_anchor`) and makes `config.table`
/// like it if it is another, missing table.
async fn make_table(config: &PostgresConfig) -> Result<(), Error> {
    // `migrate` also makes the audit table of a sink's config; here that is the model.
    let model = PostgresConfig { table: "zta_audit".into(), ..config.clone() };
    migrate(&model).await?;
    if config.table == MODEL {
        return Ok(());
    }
    let database =
        |e: sqlx::Error| Error::Database { url: config.safe_url(), reason: scrub(&e.to_string(), config) };
    let mut conn = PgConnection::connect_with(&options(config)?).await.map_err(database)?;
    let made = async {
        let mut tx = conn.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(TABLE_LOCK).execute(&mut *tx).await?;
        let create = format!("CREATE TABLE IF NOT EXISTS {} (LIKE {MODEL} INCLUDING ALL)", config.table);
        sqlx::query(&create).execute(&mut *tx).await?;
        tx.commit().await
    }
    .await;
    let _ = conn.close().await;
    made.map_err(database)
}
