//! `audit:` listing the local log and a PostgreSQL table (required): every decision is in the
//! table when the guard answers, and the table's chains verify. Needs the PostgreSQL of
//! `ZTA_TEST_POSTGRES_URL` (`cargo xtask test` sets it).
#![cfg(all(
    feature = "audit-postgres",
    feature = "identity-static",
    feature = "policy-native",
    feature = "audit-jsonl"
))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use zta::{
    Action, Request,
    audit::postgres::{PostgresConfig, verify},
};

use crate::config_loads_and_refuses_bad_files::logged_in_with_audit;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_audit_gets_every_decision() {
    let url = std::env::var("ZTA_TEST_POSTGRES_URL").expect(
        "these tests need PostgreSQL: set ZTA_TEST_POSTGRES_URL (e.g. postgres://postgres@127.0.0.1:5432/test; \
         `cargo xtask test` sets it)",
    );
    let dir = tempfile::tempdir().unwrap();
    let table = format!("zta_test_facade_{}", uuid::Uuid::now_v7().simple());
    let audit = format!(
        "audit:\n  - type: jsonl\n    dir: audit\n  - type: postgres\n    url: {url}\n    table: {table}\n"
    );
    let (built, token) = logged_in_with_audit(dir.path(), &audit).await;

    for tool in ["web_search", "shell", "web_search"] {
        let _ = built.guard.check(&token, Request::new(Action::tool_call(tool))).await;
    }
    built.guard.audit_sink().flush().await.unwrap();

    let mut config = PostgresConfig::new(url.as_str());
    config.table.clone_from(&table);
    let report = verify(&config).await.unwrap();
    assert_eq!(report.rows(), 4, "the login and three decisions");
    assert_eq!(report.writers.len(), 1);
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    sqlx::query(&format!("DROP TABLE {table}")).execute(&pool).await.unwrap();
}
