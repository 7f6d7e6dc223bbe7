//! Opening the file, and the embedded migrations.

use sqlx::{
    Connection, SqliteConnection,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous},
};

use crate::{Error, SqliteConfig};

/// The migrations, in order, embedded in the binary. The file's `user_version` counts those
/// applied.
const MIGRATIONS: &[(&str, &str)] = &[
    ("zta audit", include_str!("../migrations/0001_zta_audit.sql")),
    ("zta audit action name index", include_str!("../migrations/0002_zta_audit_action_name.sql")),
    ("zta audit pruned markers", include_str!("../migrations/0003_zta_audit_pruned.sql")),
];

/// A connection to the file of `config` (made if `create`): WAL mode, every commit synced.
pub(crate) async fn connect(config: &SqliteConfig, create: bool) -> Result<SqliteConnection, Error> {
    let options = SqliteConnectOptions::new()
        .filename(&config.path)
        .create_if_missing(create)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(config.busy_timeout)
        // Each row goes into seven B-trees (the table, its unique key and five indexes): with
        // 16 KiB pages (for a new file) and up to 64 MiB of page cache the bench appends about
        // 1.5 times as many records/s as with SQLite's defaults (4 KiB, 2 MiB).
        .page_size(16384)
        .pragma("cache_size", "-65536");
    SqliteConnection::connect_with(&options).await.map_err(|e| database(config, &e))
}

pub(crate) fn database(config: &SqliteConfig, e: &sqlx::Error) -> Error {
    Error::Database { path: config.shown_path(), reason: e.to_string() }
}

/// What [`migrate`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Migrated {
    /// The migrations applied by this call (version, description), in order; empty when the
    /// schema was current.
    pub applied: Vec<(i64, String)>,
    /// The schema version afterwards (the file's `user_version`).
    pub version: i64,
    /// What else this call made: the file, when it was missing.
    pub made: Vec<String>,
}

/// Applies the embedded migrations to the file of `config`, making the file if it is missing.
/// Safe when several processes run it at once: each applies what is missing inside one
/// `BEGIN IMMEDIATE` transaction (sqlx's own migrator takes no lock on SQLite); running it
/// again changes nothing. Refuses a file whose schema is newer than this version knows.
/// `zta audit migrate` runs it, and so does [`SqliteSink::open`](crate::SqliteSink::open).
pub async fn migrate(config: &SqliteConfig) -> Result<Migrated, Error> {
    let existed = config.path.exists();
    let mut conn = connect(config, true).await?;
    let result = migrate_on(&mut conn, config).await;
    let _ = conn.close().await;
    let mut migrated = result?;
    if !existed {
        migrated.made.push(format!("file `{}`", config.shown_path()));
    }
    Ok(migrated)
}

pub(crate) async fn migrate_on(
    conn: &mut SqliteConnection,
    config: &SqliteConfig,
) -> Result<Migrated, Error> {
    let failed =
        |e: &dyn std::fmt::Display| Error::Migrate { path: config.shown_path(), reason: e.to_string() };
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.map_err(|e| failed(&e))?;
    let version: i64 =
        sqlx::query_scalar("PRAGMA user_version").fetch_one(&mut *tx).await.map_err(|e| failed(&e))?;
    let known = MIGRATIONS.len();
    let applied =
        usize::try_from(version).map_err(|_| failed(&format_args!("user_version {version} is negative")))?;
    if applied > known {
        return Err(failed(&format_args!(
            "the file's schema is version {applied}, made by a newer ZTA; this one knows up to {known}"
        )));
    }
    let mut migrated = Migrated { applied: Vec::new(), version, made: Vec::new() };
    if applied == known {
        return Ok(migrated);
    }
    for (number, (description, sql)) in MIGRATIONS.iter().enumerate().skip(applied) {
        sqlx::query(sql).execute(&mut *tx).await.map_err(|e| failed(&e))?;
        let number = i64::try_from(number).unwrap_or(i64::MAX).saturating_add(1);
        migrated.applied.push((number, (*description).to_owned()));
        migrated.version = number;
    }
    // A number from this crate, not user input.
    sqlx::query(&format!("PRAGMA user_version = {known}")).execute(&mut *tx).await.map_err(|e| failed(&e))?;
    tx.commit().await.map_err(|e| failed(&e))?;
    Ok(migrated)
}
