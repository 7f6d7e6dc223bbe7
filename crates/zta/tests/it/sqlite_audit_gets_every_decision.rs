//! `audit:` listing the local log and a SQLite file (required), its path relative to the
//! config file: every decision is in the file when the guard answers, and its chain verifies.
#![cfg(all(
    feature = "audit-sqlite",
    feature = "identity-static",
    feature = "policy-native",
    feature = "audit-jsonl"
))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use zta::{
    Action, Request,
    audit::sqlite::{SqliteConfig, verify},
};

use crate::config_loads_and_refuses_bad_files::logged_in_with_audit;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_audit_gets_every_decision() {
    let dir = tempfile::tempdir().unwrap();
    let audit = "audit:\n  - type: jsonl\n    dir: audit\n  - type: sqlite\n    path: audit.db\n";
    let (built, token) = logged_in_with_audit(dir.path(), audit).await;

    for tool in ["web_search", "shell", "web_search"] {
        let _ = built.guard.check(&token, Request::new(Action::tool_call(tool))).await;
    }
    built.guard.audit_sink().flush().await.unwrap();

    let report = verify(&SqliteConfig::new(dir.path().join("audit.db"))).await.unwrap();
    assert_eq!(report.rows(), 4, "the login and three decisions");
    assert_eq!(report.writers.len(), 1);
}
