//! A sink opened again with the same writer id continues its chain from the last stored row.

use zta_audit_postgres::{PostgresSink, verify};
use zta_core::{AuditSink, Durability};

use crate::common::{TestDb, numbered};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_writer_continues_its_chain() {
    let db = TestDb::new().await;
    let config = db.config("zta_audit").with_writer_id("gateway-1");
    let records = numbered(30, "restart");
    for part in records.chunks(10) {
        let sink = PostgresSink::open(config.clone()).await.unwrap();
        for r in part {
            sink.append(r.clone(), Durability::Queued).await.unwrap();
        }
        sink.close().await.unwrap();
    }
    let report = verify(&config).await.unwrap();
    assert_eq!(report.writers["gateway-1"].rows, 30);
    assert_eq!(db.records("zta_audit").await, records);
    db.drop().await;
}
