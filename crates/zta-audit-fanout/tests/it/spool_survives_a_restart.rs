//! Records spooled while the sink was down and the process stopped are forwarded, in order, by
//! the next process that opens the spool; a line cut short by a crash is dropped.

use std::io::Write;

use zta_audit_fanout::{FanOutSink, Mode, SpoolConfig, Target};
use zta_core::{AuditEvent, AuditRecord, AuditSink, Durability, Effect};

use crate::common::{Switchable, drained, ids, records_in};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spool_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let spool_dir = dir.path().join("spool");
    let mut sent = Vec::new();
    {
        let central = Switchable::open(&dir.path().join("central"));
        central.set_up(false);
        let spool = Mode::Spool(SpoolConfig::new(&spool_dir));
        let sink = FanOutSink::new(vec![Target::new("central", central.clone(), spool)]).unwrap();
        for i in 0..50 {
            let record = AuditRecord::new(AuditEvent::Login, Effect::Allow).with_detail("i", i);
            sink.append(record.clone(), Durability::Flushed).await.unwrap();
            sent.push(record);
        }
        sink.close().await.unwrap();
        central.inner.close().await.unwrap();
    }
    // A write the crash cut short (never acknowledged).
    let head = std::fs::read_dir(&spool_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "spool"))
        .max()
        .unwrap();
    std::fs::OpenOptions::new().append(true).open(&head).unwrap().write_all(b"{\"id\":\"cut").unwrap();

    let central = Switchable::open(&dir.path().join("central"));
    let spool = Mode::Spool(SpoolConfig::new(&spool_dir));
    let sink = FanOutSink::new(vec![Target::new("central", central.clone(), spool)]).unwrap();
    assert_eq!(sink.backlog(), vec![("central".to_owned(), 50)]);
    let after = AuditRecord::new(AuditEvent::Login, Effect::Deny);
    sink.append(after.clone(), Durability::Queued).await.unwrap();
    sent.push(after);
    drained(&sink).await;
    sink.close().await.unwrap();
    central.inner.close().await.unwrap();
    assert_eq!(ids(&records_in(&dir.path().join("central"))), ids(&sent));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spool_in_use_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let central = Switchable::open(&dir.path().join("central"));
    let spool = || Mode::Spool(SpoolConfig::new(dir.path().join("spool")));
    let first = FanOutSink::new(vec![Target::new("central", central.clone(), spool())]).unwrap();
    let error = FanOutSink::new(vec![Target::new("central", central.clone(), spool())]).unwrap_err();
    assert!(error.to_string().contains("in use by another process"), "{error}");
    first.close().await.unwrap();
    drop(first);
    FanOutSink::new(vec![Target::new("central", central.clone(), spool())]).unwrap().close().await.unwrap();
    central.inner.close().await.unwrap();
}
