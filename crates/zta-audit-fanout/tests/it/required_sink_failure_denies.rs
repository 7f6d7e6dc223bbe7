//! A required sink that cannot take a record fails the append, naming the sink (and so does
//! the readiness probe); the other targets still get the record.

use zta_audit_fanout::{FanOutSink, Mode, SpoolConfig, Target};
use zta_core::{AuditEvent, AuditRecord, AuditSink, Durability, Effect};

use crate::common::{Switchable, drained, ids, records_in};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_sink_failure_denies() {
    let dir = tempfile::tempdir().unwrap();
    let central = Switchable::open(&dir.path().join("central"));
    let local = Switchable::open(&dir.path().join("local"));
    let sink = FanOutSink::new(vec![
        Target::new("central", central.clone(), Mode::Required),
        Target::new("local", local.clone(), Mode::Spool(SpoolConfig::new(dir.path().join("spool")))),
    ])
    .unwrap();
    let record = AuditRecord::new(AuditEvent::Authorization, Effect::Allow);
    sink.append(record.clone(), Durability::Flushed).await.unwrap();
    sink.ready().await.unwrap();
    // A spooled target that is down leaves the sink ready: its spool takes the records.
    local.set_up(false);
    sink.ready().await.unwrap();
    local.set_up(true);

    central.set_up(false);
    let probe = sink.ready().await.unwrap_err();
    assert!(probe.to_string().contains("sink `central`: connection refused"), "{probe}");
    let refused = AuditRecord::new(AuditEvent::Authorization, Effect::Allow);
    let error = sink.append(refused.clone(), Durability::Queued).await.unwrap_err();
    assert!(error.to_string().contains("sink `central`"), "{error}");
    assert!(sink.flush().await.is_err());

    central.set_up(true);
    drained(&sink).await;
    sink.close().await.unwrap();
    central.inner.close().await.unwrap();
    local.inner.close().await.unwrap();
    assert_eq!(ids(&records_in(&dir.path().join("central"))), ids(std::slice::from_ref(&record)));
    assert_eq!(ids(&records_in(&dir.path().join("local"))), ids(&[record, refused]));
}
