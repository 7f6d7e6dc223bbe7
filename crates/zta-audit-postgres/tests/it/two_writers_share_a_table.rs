//! Two sinks with different writer ids write one table at once and both chains verify; a third
//! sink that asks for a writer id a live sink holds is refused.

use zta_audit_postgres::{PostgresSink, verify};
use zta_core::{AuditSink, Durability};

use crate::common::{TestDb, numbered};

async fn write(sink: &PostgresSink, n: usize) {
    for (i, r) in numbered(n, sink.writer_id()).into_iter().enumerate() {
        let durability = if i % 50 == 49 { Durability::Flushed } else { Durability::Queued };
        sink.append(r, durability).await.unwrap();
    }
    sink.flush().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_writers_share_a_table_and_both_chains_verify() {
    let db = TestDb::new().await;
    let config = db.config("shared");
    let (a, b) = tokio::join!(PostgresSink::open(config.clone()), PostgresSink::open(config.clone()));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_ne!(a.writer_id(), b.writer_id());
    tokio::join!(write(&a, 1000), write(&b, 1000));
    let report = verify(&config).await.unwrap();
    assert_eq!(report.writers.len(), 2);
    assert_eq!(report.writers[a.writer_id()].rows, 1000);
    assert_eq!(report.writers[b.writer_id()].rows, 1000);

    let error =
        PostgresSink::open(config.clone().with_writer_id(a.writer_id())).await.unwrap_err().to_string();
    assert!(error.contains("is in use by another live sink"), "{error}");

    a.close().await.unwrap();
    b.close().await.unwrap();
    db.drop().await;
}
