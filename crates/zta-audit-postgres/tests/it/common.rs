//! The server under test, and databases that are dropped when a test ends.

use sqlx::{Connection, PgConnection};
use zta_audit_postgres::PostgresConfig;
use zta_core::AuditRecord;

/// The server to test against: `ZTA_TEST_POSTGRES_URL`. Unset, the test fails and says how to
/// set it: these tests need a real PostgreSQL.
pub(crate) fn admin_url() -> String {
    match std::env::var("ZTA_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "the zta-audit-postgres tests need PostgreSQL: set ZTA_TEST_POSTGRES_URL to a database the \
             tests may create databases through, e.g. \
             `ZTA_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test cargo test -p zta-audit-postgres` \
             (`cargo xtask test` sets it)"
        ),
    }
}

/// A database of one test's own, made through [`admin_url`].
#[derive(Debug)]
pub(crate) struct TestDb {
    pub(crate) name: String,
    pub(crate) url: String,
}

impl TestDb {
    pub(crate) async fn new() -> Self {
        let admin = admin_url();
        let name = format!("zta_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = PgConnection::connect(&admin)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at ZTA_TEST_POSTGRES_URL does not answer: {e}"));
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.unwrap();
        conn.close().await.unwrap();
        let (base, query) = admin.split_once('?').map_or((admin.as_str(), None), |(b, q)| (b, Some(q)));
        let (server, _) = base.rsplit_once('/').expect("the URL names a database");
        let url = match query {
            Some(q) => format!("{server}/{name}?{q}"),
            None => format!("{server}/{name}"),
        };
        Self { name, url }
    }

    /// A config for `table` in this database.
    pub(crate) fn config(&self, table: &str) -> PostgresConfig {
        PostgresConfig::new(self.url.clone()).with_table(table)
    }

    pub(crate) async fn connect(&self) -> PgConnection {
        PgConnection::connect(&self.url).await.unwrap()
    }

    /// Returns once no other session is connected to this database: the server has finished
    /// whatever a killed client had sent (a `COMMIT` in flight still commits after the client
    /// is gone), so what is read next is final.
    pub(crate) async fn wait_for_other_sessions_to_end(&self) {
        let mut conn = self.connect().await;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let others: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
            )
            .fetch_one(&mut conn)
            .await
            .unwrap();
            if others == 0 {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{others} sessions of a killed client still open");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        conn.close().await.unwrap();
    }

    /// Every record of `table`, in stored order.
    pub(crate) async fn records(&self, table: &str) -> Vec<AuditRecord> {
        let mut conn = self.connect().await;
        let rows: Vec<(String,)> = sqlx::query_as(&format!("SELECT record FROM {table} ORDER BY pos"))
            .fetch_all(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        rows.iter().map(|(r,)| serde_json::from_str(r).unwrap()).collect()
    }

    pub(crate) async fn drop(self) {
        let mut conn = PgConnection::connect(&admin_url()).await.unwrap();
        sqlx::query(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name))
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
    }
}

/// `n` authorization records numbered in their detail.
pub(crate) fn numbered(n: usize, tag: &str) -> Vec<AuditRecord> {
    use zta_core::{AuditEvent, Effect};
    (0..n)
        .map(|i| {
            AuditRecord::new(AuditEvent::Authorization, Effect::Allow)
                .with_detail("i", i)
                .with_detail("tag", tag)
        })
        .collect()
}

/// The environment variable that hands a child test its database URL.
pub(crate) const CHILD_URL: &str = "ZTA_POSTGRES_TEST_CHILD_URL";

/// Starts this test binary again running only the ignored test `name` (a full path such as
/// `killed_writer_loses_nothing_acknowledged::child_writer`), with `url` in [`CHILD_URL`] and its
/// stdout piped.
pub(crate) fn spawn_child(name: &str, url: &str) -> std::process::Child {
    std::process::Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--ignored", "--nocapture", "--test-threads=1"])
        .env(CHILD_URL, url)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .unwrap()
}

/// The database URL of a child test; a child test started by hand (without its parent) fails
/// here, saying so.
pub(crate) fn child_url() -> String {
    std::env::var(CHILD_URL).unwrap_or_else(|_| {
        panic!("this test runs as a child process of another test, which sets {CHILD_URL}")
    })
}
