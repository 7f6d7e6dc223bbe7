//! Hostile text (NUL and other control characters, the testkit's hostile records) and 1 MiB
//! fields are stored and read back exactly; the record text holds NUL as the JSON escape
//! `\u0000`, and the query columns (which PostgreSQL text cannot give a NUL) hold U+FFFD.

use zta_audit_postgres::{PostgresSink, verify};
use zta_core::{Action, AuditEvent, AuditRecord, AuditSink, Durability, Effect};
use zta_testkit::audit::hostile_records;

use crate::common::TestDb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_and_large_records_round_trip() {
    let db = TestDb::new().await;
    let config = db.config("hostile");
    let sink = PostgresSink::open(config.clone()).await.unwrap();
    let mut records = hostile_records();
    let controls: String = (0u8..0x20).map(char::from).chain(['\u{7f}', '\u{85}']).collect();
    let mut r = AuditRecord::new(AuditEvent::Admin, Effect::Deny).with_reason(controls.clone());
    r.action = Some(Action::custom(controls.clone()).unwrap());
    records.push(r);
    let mega: String = "x\0\u{1b}ü🚀".chars().cycle().take(1024 * 1024).collect();
    records.push(
        AuditRecord::new(AuditEvent::Admin, Effect::Allow).with_reason(mega.clone()).with_detail("big", mega),
    );
    for r in &records {
        sink.append(r.clone(), Durability::Flushed).await.unwrap();
    }
    sink.close().await.unwrap();

    assert_eq!(verify(&config).await.unwrap().rows(), records.len() as u64);
    let back = db.records("hostile").await;
    assert_eq!(back.len(), records.len());
    for (got, want) in back.iter().zip(&records) {
        assert_eq!(got, want, "record {} came back different", want.id);
    }

    let mut conn = db.connect().await;
    let (record, reason): (String, String) =
        sqlx::query_as("SELECT record, reason FROM hostile WHERE record_id = $1::uuid")
            .bind(records[0].id.to_string())
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert!(record.contains("\\u0000"), "{record}");
    assert_eq!(reason, "\u{fffd}");
    drop(conn);
    db.drop().await;
}
