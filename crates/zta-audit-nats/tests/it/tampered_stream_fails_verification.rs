//! Two writers share one stream and both chains verify; a deleted message, or one published
//! with a forged chain, makes verification fail and name the message.

use async_nats::jetstream;
use zta_audit_nats::{NatsSink, verify};
use zta_core::{AuditEvent, AuditRecord, AuditSink, Durability, Effect};

use crate::common::{Streams, url};

async fn write(sink: &NatsSink, n: usize) {
    for i in 0..n {
        let record = AuditRecord::new(AuditEvent::Authorization, Effect::Allow).with_detail("i", i);
        sink.append(record, Durability::Queued).await.unwrap();
    }
    sink.flush().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_stream_fails_verification() {
    let streams = Streams::default();
    let tag = format!("tamper{}", uuid::Uuid::now_v7().simple());
    let config = streams.config(&tag);
    let (a, b) =
        (NatsSink::open(config.clone()).await.unwrap(), NatsSink::open(config.clone()).await.unwrap());
    tokio::join!(write(&a, 200), write(&b, 200));
    let report = verify(&url(), &config.stream).await.unwrap();
    assert_eq!(report.writers.get(a.writer_id()), Some(&200));
    assert_eq!(report.writers.get(b.writer_id()), Some(&200));

    // A writer id given again continues its chain.
    let mut again = config.clone();
    again.writer_id = Some(a.writer_id().to_owned());
    a.close().await.unwrap();
    let a2 = NatsSink::open(again).await.unwrap();
    write(&a2, 5).await;
    let report = verify(&url(), &config.stream).await.unwrap();
    assert_eq!(report.writers.get(a2.writer_id()), Some(&205));

    // Someone publishes a record of their own into writer b's subject.
    let context = jetstream::new(async_nats::connect(url()).await.unwrap());
    let forged = format!(
        "{{\"writer\":\"{}\",\"seq\":201,\"prev_hash\":\"{}\",\"hash\":\"{}\",\"record\":{{}}}}",
        b.writer_id(),
        "0".repeat(64),
        "0".repeat(64)
    );
    let subject = format!("{}.{}", config.subject_prefix, b.writer_id());
    context.publish(subject, forged.into()).await.unwrap().await.unwrap();
    let error = verify(&url(), &config.stream).await.unwrap_err().to_string();
    assert!(error.contains("prev_hash is not the hash before it"), "{error}");

    // A message deleted from the middle of a chain.
    let mut stream = context.get_stream(&config.stream).await.unwrap();
    let last = stream.info().await.unwrap().state.last_sequence;
    stream.delete_message(last).await.unwrap(); // the forgery goes
    assert!(verify(&url(), &config.stream).await.is_ok());
    stream.delete_message(10).await.unwrap();
    let error = verify(&url(), &config.stream).await.unwrap_err().to_string();
    assert!(error.contains("follows"), "{error}");
    streams.delete_all().await;
}
