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
];

/// The table every other audit table is made like.
const MODEL: &str = "zta_audit";

/// Advisory lock key held while a table is made (`"zta-audit-pg"` as a number).
const TABLE_LOCK: i64 = 0x7a74_612d_6175_6469;

fn migrator() -> Migrator {
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

/// Applies the embedded migrations to the database of `config` and makes `config.table`
/// (like `zta_audit`) if it is missing. Safe when several processes run it at once: sqlx
/// holds an advisory lock over the migrations, and the table is made under another. For a
/// future `zta audit migrate`; [`PostgresSink::open`](crate::PostgresSink::open) runs it too.
/// Refuses a table name that is not a plain identifier.
pub async fn migrate(config: &PostgresConfig) -> Result<(), Error> {
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

async fn migrate_on(conn: &mut PgConnection, config: &PostgresConfig) -> Result<(), Error> {
    let database =
        |e: sqlx::Error| Error::Database { url: config.safe_url(), reason: scrub(&e.to_string(), config) };
    migrator()
        .run_direct(&mut *conn)
        .await
        .map_err(|e| Error::Migrate { url: config.safe_url(), reason: scrub(&e.to_string(), config) })?;
    if config.table != MODEL {
        let mut tx = conn.begin().await.map_err(database)?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(TABLE_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(database)?;
        // The name passed `check_table`: a plain identifier, safe in SQL text.
        let create = format!("CREATE TABLE IF NOT EXISTS {} (LIKE {MODEL} INCLUDING ALL)", config.table);
        sqlx::query(&create).execute(&mut *tx).await.map_err(database)?;
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
        }
        tx.commit().await.map_err(database)?;
    }
    Ok(())
}
