//! The writer's connection is cut (`pg_terminate_backend`) while durable appends are flowing:
//! an append that was not committed fails instead of reporting success; the next batch
//! reconnects and later appends succeed; every acknowledged record is in the table exactly
//! once, and the chain verifies and continues after a restart with the same writer id.

use std::{
    collections::HashSet,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use sqlx::Connection;
use zta_audit_postgres::{PostgresSink, verify};
use zta_core::{AuditError, AuditEvent, AuditRecord, AuditSink, Durability, Effect};

use crate::common::{TestDb, numbered};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_cut_fails_closed() {
    let db = TestDb::new().await;
    let app = format!("zta-cut-{}", uuid::Uuid::new_v4().simple());
    let mut config = db.config("cut").with_writer_id("cut-writer");
    config.application_name.clone_from(&app);
    let sink = Arc::new(PostgresSink::open(config.clone()).await.unwrap());

    let count = Arc::new(AtomicUsize::new(0));
    let appender = {
        let (sink, count) = (sink.clone(), count.clone());
        tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            let mut failed = None;
            for i in 0..1_000_000 {
                let r = AuditRecord::new(AuditEvent::Authorization, Effect::Allow).with_detail("i", i);
                let id = r.id;
                match sink.append(r, Durability::Flushed).await {
                    Ok(()) => acknowledged.push(id),
                    Err(e) => {
                        assert!(failed.is_none(), "a second failure after the reconnect: {e}");
                        failed = Some((e, acknowledged.len()));
                    }
                }
                if let Some((_, at)) = &failed
                    && acknowledged.len() >= at + 50
                {
                    return (acknowledged, failed);
                }
                count.fetch_add(1, Ordering::Relaxed);
            }
            panic!("the connection was never cut");
        })
    };
    while count.load(Ordering::Relaxed) < 100 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut admin = db.connect().await;
    let cut: Vec<(bool,)> =
        sqlx::query_as("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1")
            .bind(&app)
            .fetch_all(&mut admin)
            .await
            .unwrap();
    assert!(!cut.is_empty(), "no connection named {app}");
    let (acknowledged, failed) =
        tokio::time::timeout(Duration::from_secs(30), appender).await.unwrap().unwrap();
    let (error, at) = failed.unwrap();
    assert!(at > 0);
    assert!(matches!(error, AuditError::Write(_)), "{error:?}");
    // Recovered: queued appends and flushes work again.
    let late = numbered(1, "late").remove(0);
    sink.append(late.clone(), Durability::Queued).await.unwrap();
    sink.flush().await.unwrap();
    sink.close().await.unwrap();
    assert_eq!(
        sink.append(numbered(1, "closed").remove(0), Durability::Queued).await,
        Err(AuditError::Closed)
    );

    let ids: Vec<_> = db.records("cut").await.into_iter().map(|r| r.id).collect();
    let stored: HashSet<_> = ids.iter().copied().collect();
    assert_eq!(stored.len(), ids.len(), "a record is stored twice");
    let lost: Vec<_> = acknowledged.iter().filter(|id| !stored.contains(id)).collect();
    assert!(lost.is_empty(), "{} acknowledged records lost, e.g. {:?}", lost.len(), lost.first());
    assert!(stored.contains(&late.id));
    let before = verify(&config).await.unwrap().writers["cut-writer"].rows;
    assert_eq!(before, ids.len() as u64);

    // Restarted with the same writer id: the chain continues and verifies.
    let again = PostgresSink::open(config.clone()).await.unwrap();
    for r in numbered(5, "after") {
        again.append(r, Durability::Queued).await.unwrap();
    }
    again.close().await.unwrap();
    assert_eq!(verify(&config).await.unwrap().writers["cut-writer"].rows, before + 5);
    admin.close().await.unwrap();
    db.drop().await;
}
