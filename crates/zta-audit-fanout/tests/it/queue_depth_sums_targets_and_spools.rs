//! A fan-out's `queued()` is what its required sinks have queued plus what waits in its spools
//! to be forwarded; `None` when no target keeps a queue.

use std::sync::Arc;

use zta_audit_fanout::{FanOutSink, Mode, SpoolConfig, Target};
use zta_audit_jsonl::{JsonlConfig, JsonlSink};
use zta_core::{AuditEvent, AuditRecord, AuditSink, Durability, Effect};

use crate::common::{Switchable, drained};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_queues_and_spool_backlogs_add_up() {
    let dir = tempfile::tempdir().unwrap();
    let local = Arc::new(JsonlSink::open(JsonlConfig::new(dir.path().join("local"))).unwrap());
    let central = Switchable::open(&dir.path().join("central"));
    let sink = FanOutSink::new(vec![
        Target::new("local", local.clone(), Mode::Required),
        Target::new("central", central.clone(), Mode::Spool(SpoolConfig::new(dir.path().join("spool")))),
    ])
    .unwrap();
    assert_eq!(sink.queued(), Some(0));
    central.set_up(false);
    for i in 0..5 {
        let record = AuditRecord::new(AuditEvent::Authorization, Effect::Allow).with_detail("i", i);
        sink.append(record, Durability::Queued).await.unwrap();
    }
    sink.flush().await.unwrap();
    // The local log committed them; the spool holds all five for the sink that is down.
    assert_eq!(local.queued(), Some(0));
    assert_eq!(sink.queued(), Some(5));
    central.set_up(true);
    drained(&sink).await;
    assert_eq!(sink.queued(), Some(0));
    sink.close().await.unwrap();
}

#[tokio::test]
async fn targets_without_a_queue_report_none() {
    let dir = tempfile::tempdir().unwrap();
    let plain = Switchable::open(dir.path());
    let sink = FanOutSink::new(vec![Target::new("plain", plain, Mode::Required)]).unwrap();
    assert_eq!(sink.queued(), None, "the test wrapper does not report its inner sink's queue");
}
