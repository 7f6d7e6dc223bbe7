//! While a spooled sink is down every append still succeeds; the records wait in the spool and
//! reach the sink in order once it is back.

use zta_audit_fanout::{FanOutSink, Mode, SpoolConfig, Target};
use zta_core::{AuditEvent, AuditRecord, AuditSink, Durability, Effect};

use crate::common::{Switchable, drained, ids, records_in};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spool_keeps_records_while_the_sink_is_down() {
    let dir = tempfile::tempdir().unwrap();
    let central = Switchable::open(&dir.path().join("central"));
    // Small segments (max_bytes / 8) so that forwarding crosses several segment files.
    let mut spool = SpoolConfig::new(dir.path().join("spool"));
    spool.max_bytes = 2 << 20;
    let sink = FanOutSink::new(vec![Target::new("central", central.clone(), Mode::Spool(spool))]).unwrap();

    let mut sent = Vec::new();
    for i in 0..100 {
        let record = AuditRecord::new(AuditEvent::Authorization, Effect::Allow).with_detail("i", i);
        sink.append(record.clone(), Durability::Queued).await.unwrap();
        sent.push(record);
    }
    drained(&sink).await;
    central.set_up(false);
    for i in 100..2000 {
        let record = AuditRecord::new(AuditEvent::Authorization, Effect::Deny)
            .with_detail("i", i)
            .with_detail("padding", "x".repeat(500));
        sink.append(record.clone(), Durability::Queued).await.unwrap();
        sent.push(record);
    }
    sink.flush().await.unwrap();
    assert_eq!(sink.backlog(), vec![("central".to_owned(), 1900)]);
    let segments = std::fs::read_dir(dir.path().join("spool")).unwrap().count();
    assert!(segments > 3, "{segments} files in the spool");

    central.set_up(true);
    drained(&sink).await;
    sink.close().await.unwrap();
    central.inner.close().await.unwrap();
    assert_eq!(ids(&records_in(&dir.path().join("central"))), ids(&sent));
    // Forwarded segments are gone: the head segment and the cursor remain.
    let left = std::fs::read_dir(dir.path().join("spool")).unwrap().count();
    assert!(left <= 2, "{left} files left in the spool");
}
