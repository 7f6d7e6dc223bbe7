//! Several sinks opening a new file at once apply the migrations once (the file's
//! `user_version` counts them; `migrate` reports what it applied, nothing the second time) and
//! leave it in WAL mode, with 16 KiB pages and the query indexes; a file whose schema is newer than this version knows is refused.

use zta_audit_sqlite::{Error, SqliteConfig, SqliteSink, migrate};

use crate::common::connect;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_run_once_in_wal_mode() {
    let dir = tempfile::tempdir().unwrap();
    let config = SqliteConfig::new(dir.path().join("new.db"));
    let opens: Vec<_> = (0..6)
        .map(|_| {
            let config = config.clone();
            tokio::spawn(async move { SqliteSink::open(config).await })
        })
        .collect();
    for open in opens {
        open.await.unwrap().unwrap().close().await.unwrap();
    }
    let again = migrate(&config).await.unwrap();
    assert!(again.applied.is_empty() && again.made.is_empty(), "{again:?}");
    assert_eq!(again.version, 3);
    let fresh = SqliteConfig::new(dir.path().join("fresh.db"));
    let first = migrate(&fresh).await.unwrap();
    let applied: Vec<i64> = first.applied.iter().map(|(v, _)| *v).collect();
    assert_eq!((applied, first.version, first.made.len()), (vec![1, 2, 3], 3, 1), "{first:?}");
    assert!(migrate(&fresh).await.unwrap().applied.is_empty());

    let mut conn = connect(&config.path).await;
    let version: i64 = sqlx::query_scalar("PRAGMA user_version").fetch_one(&mut conn).await.unwrap();
    assert_eq!(version, 3);
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(&mut conn).await.unwrap();
    assert_eq!(mode, "wal");
    let page: i64 = sqlx::query_scalar("PRAGMA page_size").fetch_one(&mut conn).await.unwrap();
    assert_eq!(page, 16384);
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'zta_audit' AND sql IS NOT NULL ORDER BY name",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(
        indexes,
        [
            "zta_audit_action_name_time",
            "zta_audit_action_time",
            "zta_audit_agent_time",
            "zta_audit_effect_time",
            "zta_audit_record_id",
            "zta_audit_time"
        ]
    );

    sqlx::query("PRAGMA user_version = 99").execute(&mut conn).await.unwrap();
    match SqliteSink::open(config.clone()).await {
        Err(Error::Migrate { reason, .. }) => assert!(reason.contains("newer"), "{reason}"),
        other => panic!("a newer schema was accepted: {other:?}"),
    }
}
