//! A spool at its size limit refuses the append with an error that says it is full; once the
//! sink is back and the spool drains, appends succeed again.

use zta_audit_fanout::{FanOutSink, Mode, SpoolConfig, Target};
use zta_core::{AuditEvent, AuditRecord, AuditSink, Durability, Effect};

use crate::common::{Switchable, drained, ids, records_in};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_spool_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let central = Switchable::open(&dir.path().join("central"));
    central.set_up(false);
    let mut spool = SpoolConfig::new(dir.path().join("spool"));
    spool.max_bytes = 1 << 16;
    let sink = FanOutSink::new(vec![Target::new("central", central.clone(), Mode::Spool(spool))]).unwrap();
    let mut taken = Vec::new();
    let error = loop {
        let record =
            AuditRecord::new(AuditEvent::Authorization, Effect::Allow).with_detail("pad", "p".repeat(1000));
        match sink.append(record.clone(), Durability::Queued).await {
            Ok(()) => taken.push(record),
            Err(e) => break e,
        }
        assert!(taken.len() < 1000, "the spool never filled");
    };
    assert!(error.to_string().contains("is full"), "{error}");
    assert!(taken.len() > 50, "{} records taken", taken.len());

    central.set_up(true);
    drained(&sink).await;
    let after = AuditRecord::new(AuditEvent::Authorization, Effect::Allow);
    sink.append(after.clone(), Durability::Flushed).await.unwrap();
    taken.push(after);
    drained(&sink).await;
    sink.close().await.unwrap();
    central.inner.close().await.unwrap();
    assert_eq!(ids(&records_in(&dir.path().join("central"))), ids(&taken));
}
