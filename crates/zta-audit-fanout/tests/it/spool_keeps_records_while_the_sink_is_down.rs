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
    let files = std::fs::read_dir(dir.path().join("spool")).unwrap().count();
    assert!(files > 4, "{files} files in the spool: several segments, the cursor, the lock");

    central.set_up(true);
    drained(&sink).await;
    sink.close().await.unwrap();
    central.inner.close().await.unwrap();
    assert_eq!(ids(&records_in(&dir.path().join("central"))), ids(&sent));
    // Forwarded segments are gone: only the head segment remains.
    let segments = |dir: &std::path::Path| {
        std::fs::read_dir(dir)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "spool"))
            .count()
    };
    assert_eq!(segments(&dir.path().join("spool")), 1);
}
