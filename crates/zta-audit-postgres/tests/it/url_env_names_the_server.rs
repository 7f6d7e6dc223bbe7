//! `url_env` reads the server's URL from an environment variable when the sink opens; an unset
//! variable is a config error naming it, and a password in the URL never shows in an error.
//!
//! Tests cannot set their own environment (it is shared by every test thread): the checks that
//! need a variable set run in a child copy of this binary started with it.

use zta_audit_postgres::{PostgresConfig, PostgresSink, verify};
use zta_core::{AuditSink, Durability};

use crate::common::{TestDb, numbered};

/// The variable that holds the real test database's URL in the child.
const GOOD: &str = "ZTA_POSTGRES_TEST_URL_ENV_GOOD";
/// The variable that holds an unreachable server's URL, with a password, in the child.
const BAD: &str = "ZTA_POSTGRES_TEST_URL_ENV_BAD";
/// The password in the unreachable URL.
const PASSWORD: &str = "hunter2-never-printed";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unset_variable_is_a_config_error_naming_it() {
    let config = PostgresConfig::from_env("ZTA_TEST_POSTGRES_URL_THAT_IS_NEVER_SET");
    for e in [
        PostgresSink::open(config.clone()).await.unwrap_err(),
        verify(&config).await.unwrap_err(),
        zta_audit_postgres::migrate(&config).await.unwrap_err(),
    ] {
        let text = e.to_string();
        assert!(matches!(e, zta_audit_postgres::Error::Config(_)), "{text}");
        assert!(text.contains("`ZTA_TEST_POSTGRES_URL_THAT_IS_NEVER_SET` is not set"), "{text}");
    }
    let mut both = PostgresConfig::new("postgres://h/db");
    both.url_env = Some("X".into());
    let text = PostgresSink::open(both).await.unwrap_err().to_string();
    assert!(text.contains("exactly one of `url` and `url_env`"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sink_writes_to_the_server_the_variable_names() {
    let db = TestDb::new().await;
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["url_env_names_the_server::child", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
        .env(GOOD, &db.url)
        .env(BAD, format!("postgres://zta:{PASSWORD}@127.0.0.1:1/nowhere"))
        .status()
        .unwrap();
    assert!(status.success(), "the child test failed (its output is above)");
    let report = verify(&db.config("zta_audit")).await.unwrap();
    assert_eq!(report.writers["from-env"].rows, 3);
    let details: Vec<_> = db.records("zta_audit").await.into_iter().map(|r| r.detail).collect();
    let sent: Vec<_> = numbered(3, "env").into_iter().map(|r| r.detail).collect();
    assert_eq!(details, sent);
    db.drop().await;
}

/// Started by [`the_sink_writes_to_the_server_the_variable_names`] with both variables set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "runs as a child process of the_sink_writes_to_the_server_the_variable_names"]
async fn child() {
    assert!(std::env::var(GOOD).is_ok(), "this test runs as a child process of another test");
    let sink = PostgresSink::open(PostgresConfig::from_env(GOOD).with_writer_id("from-env")).await.unwrap();
    for r in numbered(3, "env") {
        sink.append(r, Durability::Flushed).await.unwrap();
    }
    sink.close().await.unwrap();
    let bad = PostgresConfig::from_env(BAD);
    let refused = PostgresSink::open(bad.clone()).await.unwrap_err();
    let text = format!("{refused} {refused:?} {:?}", bad);
    assert!(!text.contains(PASSWORD), "{text}");
    assert!(text.contains("127.0.0.1:1"), "{text}");
}
