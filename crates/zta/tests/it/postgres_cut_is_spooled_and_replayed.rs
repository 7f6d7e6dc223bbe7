//! `audit:` listing the local log and a spooled PostgreSQL table whose connections are cut
//! (`pg_terminate_backend`) while the guard decides: the guard keeps permitting (the spool takes
//! the records), the sink reconnects, and the table ends up with every record of the local log,
//! once each and in the same order, its chain verifying. Needs the PostgreSQL of
//! `ZTA_TEST_POSTGRES_URL` (`cargo xtask test` sets it).
#![cfg(all(
    feature = "audit-postgres",
    feature = "identity-static",
    feature = "policy-native",
    feature = "audit-jsonl"
))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::time::{Duration, Instant};

use zta::{
    Action, Request,
    audit::postgres::{PostgresConfig, verify},
};

use crate::config_loads_and_refuses_bad_files::logged_in_with_audit;

/// Ends every connection named `app`; returns how many there were.
async fn cut(pool: &sqlx::PgPool, app: &str) -> usize {
    let cut: Vec<(bool,)> =
        sqlx::query_as("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1")
            .bind(app)
            .fetch_all(pool)
            .await
            .unwrap();
    cut.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_cut_is_spooled_and_replayed() {
    let url = std::env::var("ZTA_TEST_POSTGRES_URL").expect(
        "these tests need PostgreSQL: set ZTA_TEST_POSTGRES_URL (e.g. postgres://postgres@127.0.0.1:5432/test; \
         `cargo xtask test` sets it)",
    );
    let dir = tempfile::tempdir().unwrap();
    let unique = uuid::Uuid::now_v7().simple().to_string();
    let table = format!("zta_test_cut_{unique}");
    let app = format!("zta-test-cut-{unique}");
    let audit = format!(
        "audit:\n  - type: jsonl\n    dir: audit\n  - type: postgres\n    url: {url}\n    table: {table}\n    \
         application_name: {app}\n    spool: {{dir: spool}}\n"
    );
    let (built, token) = logged_in_with_audit(dir.path(), &audit).await;
    let admin = sqlx::PgPool::connect(&url).await.unwrap();

    let (guard, token) = (built.guard.clone(), token.clone());
    let check = move |tool: &'static str| {
        let (guard, token) = (guard.clone(), token.clone());
        async move { guard.check(&token, Request::new(Action::tool_call(tool))).await }
    };
    for tool in ["web_search", "shell", "web_search"] {
        let _ = check(tool).await;
    }
    // The sink is connected from the start: this cut ends its session, and the next batch
    // fails on it.
    assert!(cut(&admin, &app).await > 0, "no connection named `{app}`");
    for _ in 0..20 {
        assert!(check("web_search").await.is_ok(), "the guard denied while the sink was cut");
    }
    // Cuts while decisions flow: batches fail mid-way and are sent again.
    let decisions = {
        let check = check.clone();
        tokio::spawn(async move {
            for _ in 0..400 {
                assert!(check("web_search").await.is_ok(), "the guard denied while the sink was cut");
            }
        })
    };
    while !decisions.is_finished() {
        cut(&admin, &app).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    decisions.await.unwrap();
    built.guard.audit_sink().flush().await.unwrap();

    let local: Vec<String> = crate::common::audit_records(&dir.path().join("audit"))
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(local.len(), 424, "the login and 423 decisions");
    let mut config = PostgresConfig::new(url.as_str());
    config.table.clone_from(&table);
    let read = format!("SELECT record FROM {table} ORDER BY writer_id, seq");
    let deadline = Instant::now() + Duration::from_secs(60);
    let stored = loop {
        let rows: Vec<(String,)> = sqlx::query_as(&read).fetch_all(&admin).await.unwrap_or_default();
        let stored: Vec<String> = rows
            .iter()
            .map(|(r,)| {
                serde_json::from_str::<serde_json::Value>(r).unwrap()["id"].as_str().unwrap().to_owned()
            })
            .collect();
        if stored.len() >= local.len() {
            break stored;
        }
        assert!(
            Instant::now() < deadline,
            "the table holds {} of the {} records of the local log after 60 s",
            stored.len(),
            local.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(stored, local, "the table holds the local log's records, once each, in order");
    let report = verify(&config).await.unwrap();
    assert_eq!(report.rows(), local.len() as u64);
    assert_eq!(report.writers.len(), 1);
    sqlx::query(&format!("DROP TABLE {table}")).execute(&admin).await.unwrap();
}
