//! The embedded migrations and the per-table setup.

use std::{borrow::Cow, str::FromStr};

use sqlx::{
    Connection, PgConnection,
    migrate::{Migration, MigrationType, Migrator},
    postgres::PgConnectOptions,
};

use crate::{Error, PostgresConfig, config::check_table};

/// The migrations, in order, embedded in the binary. The table `zta_audit` they make is the
/// default table and the model of every other (`LIKE zta_audit INCLUDING ALL`).
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "zta audit", include_str!("../migrations/0001_zta_audit.sql")),
    (2, "zta audit action name index", include_str!("../migrations/0002_zta_audit_action_name.sql")),
    (3, "zta audit pruned markers", include_str!("../migrations/0003_zta_audit_pruned.sql")),
    (4, "zta audit checkpoint anchor", include_str!("../migrations/0004_zta_audit_anchor.sql")),
];

/// The table every other audit table is made like.
const MODEL: &str = "zta_audit";

/// Advisory lock key held while a table is made (`"zta-audit-pg"` as a number).
pub(crate) const TABLE_LOCK: i64 = 0x7a74_612d_6175_6469;

/// Advisory lock key held over a whole [`migrate`] (`"zta-migr"`), so that what one reports
/// applied is what it applied.
pub(crate) const MIGRATE_LOCK: i64 = 0x7a74_612d_6d69_6772;

pub(crate) fn migrator() -> Migrator {
    let migrations: Vec<Migration> = MIGRATIONS
        .iter()
        .map(|&(version, description, sql)| {
            Migration::new(
                version,
                Cow::Borrowed(description),
                MigrationType::Simple,
                Cow::Borrowed(sql),
                false,
            )
        })
        .collect();
    Migrator { migrations: Cow::Owned(migrations), ignore_missing: false, locking: true, no_tx: false }
}

/// Connection options for `config`, with its application name.
pub(crate) fn options(config: &PostgresConfig) -> Result<PgConnectOptions, Error> {
    PgConnectOptions::from_str(config.url())
        .map(|o| o.application_name(&config.application_name))
        .map_err(|e| Error::Config(format!("url `{}`: {}", config.safe_url(), scrub(&e.to_string(), config))))
}

/// `text` with the URL's password removed (driver errors may quote the URL).
pub(crate) fn scrub(text: &str, config: &PostgresConfig) -> String {
    let url = config.url();
    if url.is_empty() {
        return text.to_owned();
    }
    let text = text.replace(url, &config.safe_url());
    match url
        .split_once("://")
        .and_then(|(_, rest)| rest.rsplit_once('@'))
        .and_then(|(u, _)| u.split_once(':'))
    {
        Some((_, password)) if !password.is_empty() => text.replace(password, "***"),
        _ => text,
    }
}

/// What [`migrate`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Migrated {
    /// The migrations applied by this call (version, description), in order; empty when the
    /// schema was current. When several processes migrate at once, each migration is reported
    /// by the one that applied it.
    pub applied: Vec<(i64, String)>,
    /// The schema version afterwards (the last migration this version knows).
    pub version: i64,
    /// What else this call made: the table (when it is not `zta_audit`) and its indexes.
    pub made: Vec<String>,
}

/// Applies the embedded migrations to the database of `config` and makes `config.table`
/// (like `zta_audit`) if it is missing, with the indexes of later migrations if it was made
/// before them. Safe when several processes run it at once: sqlx holds an advisory lock over
/// the migrations, and the table is made under another; running it again changes nothing.
/// `zta audit migrate` runs it, and so does [`PostgresSink::open`](crate::PostgresSink::open).
/// Refuses a table name that is not a plain identifier, and an unset `url_env`.
pub async fn migrate(config: &PostgresConfig) -> Result<Migrated, Error> {
    check_table(&config.table)?;
    let config = &config.resolve()?;
    let database =
        |e: sqlx::Error| Error::Database { url: config.safe_url(), reason: scrub(&e.to_string(), config) };
    // A connection of its own, closed afterwards: a failed migration may leave its advisory
    // lock held on the connection, which must not go back into a pool.
    let mut conn = PgConnection::connect_with(&options(config)?).await.map_err(database)?;
    let result = migrate_on(&mut conn, config).await;
    let _ = conn.close().await;
    result
}

/// The versions of the migrations applied to the database.
async fn applied_versions(conn: &mut PgConnection) -> Result<Vec<i64>, sqlx::Error> {
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(&mut *conn)
        .await?;
    if !exists {
        return Ok(Vec::new());
    }
    sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
        .fetch_all(&mut *conn)
        .await
}

async fn migrate_on(conn: &mut PgConnection, config: &PostgresConfig) -> Result<Migrated, Error> {
    let database =
        |e: sqlx::Error| Error::Database { url: config.safe_url(), reason: scrub(&e.to_string(), config) };
    // Held by this session until the connection closes (`migrate` closes it afterwards).
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(MIGRATE_LOCK)
        .execute(&mut *conn)
        .await
        .map_err(database)?;
    let before = applied_versions(conn).await.map_err(database)?;
    migrator()
        .run_direct(&mut *conn)
        .await
        .map_err(|e| Error::Migrate { url: config.safe_url(), reason: scrub(&e.to_string(), config) })?;
    let after = applied_versions(conn).await.map_err(database)?;
    let mut migrated = Migrated {
        applied: MIGRATIONS
            .iter()
            .filter(|(version, _, _)| after.contains(version) && !before.contains(version))
            .map(|&(version, description, _)| (version, description.to_owned()))
            .collect(),
        version: after.iter().copied().max().unwrap_or(0),
        made: Vec::new(),
    };
    if config.table != MODEL {
        let mut tx = conn.begin().await.map_err(database)?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(TABLE_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(database)?;
        let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
            .bind(&config.table)
            .fetch_one(&mut *tx)
            .await
            .map_err(database)?;
        if !exists {
            // The name passed `check_table`: a plain identifier, safe in SQL text.
            let create = format!("CREATE TABLE {} (LIKE {MODEL} INCLUDING ALL)", config.table);
            sqlx::query(&create).execute(&mut *tx).await.map_err(database)?;
            migrated.made.push(format!("table `{}`", config.table));
        }
        // A table made before migration 2 lacks its index (a newer one copied it).
        let indexed: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_index WHERE indrelid = $1::regclass AND string_to_array(indkey::text, ' ')::int2[] = \
             ARRAY(SELECT attnum FROM pg_attribute WHERE attrelid = $1::regclass \
                   AND attname IN ('action_name', 'time') ORDER BY attname))",
        )
        .bind(&config.table)
        .fetch_one(&mut *tx)
        .await
        .map_err(database)?;
        if !indexed {
            let index = format!("CREATE INDEX ON {} (action_name, time)", config.table);
            sqlx::query(&index).execute(&mut *tx).await.map_err(database)?;
            migrated.made.push(format!("index on `{}` (action_name, time)", config.table));
        }
        tx.commit().await.map_err(database)?;
    }
    Ok(migrated)
}
