//! An edited record and rows deleted from a chain (in the middle, the first): `verify` names
//! the first break.

use zta_audit_sqlite::{Error, SqliteConfig, SqliteSink, verify};
use zta_core::{AuditSink, Durability};

use crate::common::{connect, numbered};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_rows_are_detected() {
    let dir = tempfile::tempdir().unwrap();
    let config = SqliteConfig::new(dir.path().join("tamper.db")).with_writer_id("w1");
    let sink = SqliteSink::open(config.clone()).await.unwrap();
    for r in numbered(20, "tamper") {
        sink.append(r, Durability::Queued).await.unwrap();
    }
    sink.close().await.unwrap();
    assert_eq!(verify(&config).await.unwrap().rows(), 20);

    let mut conn = connect(&config.path).await;
    let (original,): (String,) =
        sqlx::query_as("SELECT record FROM zta_audit WHERE seq = 7").fetch_one(&mut conn).await.unwrap();
    let edited = original.replace("\"allow\"", "\"deny\"");
    assert_ne!(edited, original);
    sqlx::query("UPDATE zta_audit SET record = ?1 WHERE seq = 7")
        .bind(&edited)
        .execute(&mut conn)
        .await
        .unwrap();
    match verify(&config).await {
        Err(Error::Broken { writer, seq: 7, reason, .. }) => {
            assert_eq!(writer, "w1");
            assert!(reason.contains("does not match its hash"), "{reason}");
        }
        other => panic!("an edited record verified: {other:?}"),
    }
    sqlx::query("UPDATE zta_audit SET record = ?1 WHERE seq = 7")
        .bind(&original)
        .execute(&mut conn)
        .await
        .unwrap();
    assert!(verify(&config).await.is_ok());

    sqlx::query("DELETE FROM zta_audit WHERE seq = 12").execute(&mut conn).await.unwrap();
    match verify(&config).await {
        Err(Error::Broken { seq: 12, reason, .. }) => assert!(reason.contains("missing"), "{reason}"),
        other => panic!("a deleted row went unnoticed: {other:?}"),
    }

    sqlx::query("DELETE FROM zta_audit WHERE seq = 1").execute(&mut conn).await.unwrap();
    match verify(&config).await {
        Err(Error::Broken { seq: 1, reason, .. }) => assert!(reason.contains("starts at seq 2"), "{reason}"),
        other => panic!("a deleted first row went unnoticed: {other:?}"),
    }
}
