//! Reading a file back, numbered records, and running a child test of this binary.

use std::{
    path::Path,
    process::{Child, Command, Stdio},
};

use sqlx::{Connection, SqliteConnection};
use zta_core::{AuditEvent, AuditRecord, Effect};

/// Every record of the file at `path`, in stored order.
pub(crate) async fn records(path: &Path) -> Vec<AuditRecord> {
    let mut conn = connect(path).await;
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT record FROM zta_audit ORDER BY pos").fetch_all(&mut conn).await.unwrap();
    conn.close().await.unwrap();
    rows.iter().map(|(r,)| serde_json::from_str(r).unwrap()).collect()
}

/// A plain connection to an existing file, for reading and tampering.
pub(crate) async fn connect(path: &Path) -> SqliteConnection {
    SqliteConnection::connect(&format!("sqlite://{}", path.display())).await.unwrap()
}

/// `n` authorization records numbered in their detail.
pub(crate) fn numbered(n: usize, tag: &str) -> Vec<AuditRecord> {
    (0..n)
        .map(|i| {
            AuditRecord::new(AuditEvent::Authorization, Effect::Allow)
                .with_detail("i", i)
                .with_detail("tag", tag)
        })
        .collect()
}

/// The environment variable that hands a child test its database file.
pub(crate) const CHILD_DB: &str = "ZTA_SQLITE_TEST_CHILD_DB";

/// Starts this test binary again running only the ignored test `name` (a full path such as
/// `two_processes_share_a_file::child_writer`), with `db` in [`CHILD_DB`] and its stdout piped.
pub(crate) fn spawn_child(name: &str, db: &Path) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--ignored", "--nocapture", "--test-threads=1"])
        .env(CHILD_DB, db)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// The database file of a child test; a child test started by hand (without its parent) fails
/// here, saying so.
pub(crate) fn child_db() -> std::path::PathBuf {
    std::env::var_os(CHILD_DB)
        .unwrap_or_else(|| panic!("this test runs as a child process of another test, which sets {CHILD_DB}"))
        .into()
}
