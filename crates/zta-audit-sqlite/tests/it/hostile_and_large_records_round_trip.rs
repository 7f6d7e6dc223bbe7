//! Hostile text (NUL and other control characters, the testkit's hostile records) and 1 MiB
//! fields are stored and read back exactly; the record text holds NUL as the JSON escape
//! `\u0000`, and the query columns hold U+FFFD for it.

use zta_audit_sqlite::{SqliteConfig, SqliteSink, verify};
use zta_core::{Action, AuditEvent, AuditRecord, AuditSink, Durability, Effect};
use zta_testkit::audit::hostile_records;

use crate::common::{connect, records};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_and_large_records_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let config = SqliteConfig::new(dir.path().join("hostile.db"));
    let sink = SqliteSink::open(config.clone()).await.unwrap();
    let mut records_sent = hostile_records();
    let controls: String = (0u8..0x20).map(char::from).chain(['\u{7f}', '\u{85}']).collect();
    let mut r = AuditRecord::new(AuditEvent::Admin, Effect::Deny).with_reason(controls.clone());
    r.action = Some(Action::custom(controls.clone()).unwrap());
    records_sent.push(r);
    let mega: String = "x\0\u{1b}ü🚀".chars().cycle().take(1024 * 1024).collect();
    records_sent.push(
        AuditRecord::new(AuditEvent::Admin, Effect::Allow).with_reason(mega.clone()).with_detail("big", mega),
    );
    for r in &records_sent {
        sink.append(r.clone(), Durability::Flushed).await.unwrap();
    }
    sink.close().await.unwrap();

    assert_eq!(verify(&config).await.unwrap().rows(), records_sent.len() as u64);
    let back = records(&config.path).await;
    assert_eq!(back.len(), records_sent.len());
    for (got, want) in back.iter().zip(&records_sent) {
        assert_eq!(got, want, "record {} came back different", want.id);
    }

    let mut conn = connect(&config.path).await;
    let (record, reason): (String, String) =
        sqlx::query_as("SELECT record, reason FROM zta_audit WHERE record_id = ?1")
            .bind(records_sent[0].id.to_string())
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert!(record.contains("\\u0000"), "{record}");
    assert_eq!(reason, "\u{fffd}");
}
