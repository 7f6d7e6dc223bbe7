//! `Built::audit_source`, what `zta serve`'s audit query API and `/ui` read: the first sink of
//! `audit:` that can be read back (`jsonl`, `postgres`, `sqlite`, in the order listed). Through
//! it, a SQLite file and a PostgreSQL table pass the `AuditSource` conformance suite of
//! zta-testkit: the guard's sink writes, the source finds with `zta audit query`'s semantics.
#![cfg(all(
    feature = "audit-sqlite",
    feature = "audit-postgres",
    feature = "identity-static",
    feature = "policy-native",
    feature = "audit-jsonl"
))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::path::Path;

use zta::Config;
use zta_testkit::audit_source;

use crate::config_loads_and_refuses_bad_files::{GOOD, setup};

async fn built(dir: &Path, audit: &str) -> zta::Built {
    setup(dir);
    let head = GOOD.split("audit:").next().unwrap();
    std::fs::write(dir.join("zta.yaml"), format!("{head}{audit}")).unwrap();
    Config::from_file(dir.join("zta.yaml")).unwrap().build().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_readable_sink_listed_is_read() {
    for (audit, reader) in [
        ("audit:\n  - type: jsonl\n    dir: audit\n  - type: sqlite\n    path: audit.db\n", "JsonlReader"),
        ("audit:\n  - type: sqlite\n    path: audit.db\n  - type: jsonl\n    dir: audit\n", "SqliteSource"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let built = built(dir.path(), audit).await;
        let source = built.audit_source.expect("a readable sink");
        assert!(format!("{source:?}").contains(reader), "{audit}: {source:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_file_read_through_the_config_passes_the_suite() {
    let dir = tempfile::tempdir().unwrap();
    let built = built(dir.path(), "audit:\n  type: sqlite\n  path: audit.db\n").await;
    let source = built.audit_source.clone().unwrap();
    audit_source::run_all(built.guard.audit_sink().as_ref(), source.as_ref()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_table_read_through_the_config_passes_the_suite() {
    let url = std::env::var("ZTA_TEST_POSTGRES_URL").expect(
        "these tests need PostgreSQL: set ZTA_TEST_POSTGRES_URL (e.g. postgres://postgres@127.0.0.1:5432/test; \
         `cargo xtask test` sets it)",
    );
    let dir = tempfile::tempdir().unwrap();
    let table = format!("zta_test_source_{}", uuid::Uuid::now_v7().simple());
    let built =
        built(dir.path(), &format!("audit:\n  type: postgres\n  url: {url}\n  table: {table}\n")).await;
    let source = built.audit_source.clone().unwrap();
    audit_source::run_all(built.guard.audit_sink().as_ref(), source.as_ref()).await;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    sqlx::query(&format!("DROP TABLE {table}")).execute(&pool).await.unwrap();
}
