//! Retention: `prune` deletes each writer's rows older than a time (never its last row) and
//! leaves a "pruned up to" marker signed with the checkpoint key; `verify_with` the public key
//! starts each chain after its marker, and a changed, forged or missing marker is a break.
//! `verify` without a key refuses to take a marker on trust.

use sqlx::Connection;
use time::{Duration, OffsetDateTime};
use zta_audit_postgres::{Error, MarkerSigner, PostgresConfig, PostgresSink, prune, verify, verify_with};
use zta_core::{AuditRecord, AuditSink, Durability};

use crate::common::{TestDb, numbered};

fn aged(records: Vec<AuditRecord>, days: i64) -> Vec<AuditRecord> {
    records
        .into_iter()
        .map(|mut r| {
            r.time -= Duration::days(days);
            r
        })
        .collect()
}

async fn write(config: &PostgresConfig, writer: &str, records: Vec<AuditRecord>) {
    let sink = PostgresSink::open(config.clone().with_writer_id(writer)).await.unwrap();
    for r in records {
        sink.append(r, Durability::Queued).await.unwrap();
    }
    sink.close().await.unwrap();
}

fn reason(e: Error) -> String {
    match e {
        Error::Broken { writer, seq, reason, .. } => format!("{writer} {seq}: {reason}"),
        other => panic!("not a break: {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pruned_chains_verify_from_a_signed_marker() {
    let db = TestDb::new().await;
    let config = db.config("pruned_audit");
    write(&config, "w1", aged(numbered(10, "old"), 40)).await;
    write(&config, "w1", numbered(5, "new")).await;
    write(&config, "w2", aged(numbered(3, "old"), 40)).await;
    let signer = MarkerSigner::generate().unwrap();
    let key = signer.public_key();
    let cut = OffsetDateTime::now_utc() - Duration::days(30);

    let pruned = prune(&config, cut, &signer).await.unwrap();
    assert_eq!(pruned.get("w1"), Some(&(10, 10)));
    assert_eq!(pruned.get("w2"), Some(&(2, 2)), "a writer's last row stays");
    assert!(prune(&config, cut, &signer).await.unwrap().is_empty(), "nothing more to prune");

    let (report, markers) = verify_with(&config, Some(&key)).await.unwrap();
    assert_eq!((report.writers["w1"].rows, report.writers["w2"].rows), (5, 1));
    assert_eq!(markers.checked.get("w1"), Some(&10));
    assert!(markers.unchecked.is_empty());
    let (_, unchecked) = verify_with(&config, None).await.unwrap();
    assert_eq!(unchecked.unchecked.len(), 2);
    let refused = reason(verify(&config).await.unwrap_err());
    assert!(refused.contains("signature was not checked"), "{refused}");

    // The chain continues past the pruned rows.
    write(&config, "w1", numbered(2, "later")).await;
    let (report, _) = verify_with(&config, Some(&key)).await.unwrap();
    assert_eq!(report.writers["w1"].rows, 7);

    // Another key's signature, a changed marker, a forged one, none at all: each is a break.
    let other = MarkerSigner::generate().unwrap();
    let wrong_key = reason(verify_with(&config, Some(&other.public_key())).await.unwrap_err());
    assert!(wrong_key.contains("signed by key"), "{wrong_key}");
    let mut conn = db.connect().await;
    sqlx::query(
        "UPDATE zta_audit_pruned SET seq = 9 WHERE audit_table = 'pruned_audit' AND writer_id = 'w1'",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let changed = reason(verify_with(&config, Some(&key)).await.unwrap_err());
    assert!(changed.starts_with("w1") && changed.contains("signature does not verify"), "{changed}");
    // A marker signed by someone else's key, over the right seq and hash.
    let (hash,): (Vec<u8>,) = sqlx::query_as(
        "SELECT hash FROM zta_audit_pruned WHERE audit_table = 'pruned_audit' AND writer_id = 'w1'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    let forged = other.sign(b"zta-audit-postgres/v1\n", "pruned_audit", "w1", 10, hash.try_into().unwrap());
    sqlx::query("UPDATE zta_audit_pruned SET seq = 10, key_id = $1, signature = $2 WHERE audit_table = 'pruned_audit' AND writer_id = 'w1'")
        .bind(&forged.key_id)
        .bind(&forged.signature)
        .execute(&mut conn)
        .await
        .unwrap();
    let forged = reason(verify_with(&config, Some(&key)).await.unwrap_err());
    assert!(forged.contains("signed by key"), "{forged}");
    sqlx::query("DELETE FROM zta_audit_pruned WHERE audit_table = 'pruned_audit' AND writer_id = 'w1'")
        .execute(&mut conn)
        .await
        .unwrap();
    let missing = reason(verify_with(&config, Some(&key)).await.unwrap_err());
    assert!(missing.contains("starts at seq 11") && missing.contains("no pruned-up-to marker"), "{missing}");
    conn.close().await.unwrap();
    db.drop().await;
}

/// A sink with `retention` prunes the table while it runs (the first time right after it
/// opens), with markers that verify; a retention key that cannot be loaded refuses the sink.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_prunes_while_the_sink_runs() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("audit-checkpoint.pem");
    std::fs::write(&key_file, MarkerSigner::generate_pem().unwrap().as_bytes()).unwrap();
    let key = MarkerSigner::load(&key_file).unwrap().public_key();
    let mut config = db.config("kept_audit");
    write(&config, "w1", aged(numbered(5, "old"), 40)).await;
    write(&config, "w1", numbered(1, "new")).await;

    config.retention =
        Some(zta_audit_postgres::Retention::new(std::time::Duration::from_secs(30 * 86_400), &key_file));
    let sink = PostgresSink::open(config.clone().with_writer_id("w2")).await.unwrap();
    sink.append(numbered(1, "w2").remove(0), Durability::Flushed).await.unwrap();
    // The first prune runs on a task of its own: wait for its marker (at most 60 s).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (_, markers) = verify_with(&config, Some(&key)).await.unwrap();
        if markers.checked.get("w1") == Some(&5) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the sink did not prune: {markers:?}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    sink.close().await.unwrap();
    let (report, _) = verify_with(&config, Some(&key)).await.unwrap();
    assert_eq!((report.writers["w1"].rows, report.writers["w2"].rows), (1, 1));

    config.retention = Some(zta_audit_postgres::Retention::new(
        std::time::Duration::from_secs(1),
        dir.path().join("missing.pem"),
    ));
    let refused = PostgresSink::open(config).await.unwrap_err();
    assert!(matches!(refused, Error::Config(ref m) if m.contains("retention.key_file")), "{refused}");
    db.drop().await;
}

/// A verification that runs while a prune commits, writer after writer, reads the markers and
/// the rows from one snapshot: it never sees a writer's rows gone without its marker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verify_during_a_prune_sees_one_snapshot() {
    let db = TestDb::new().await;
    let config = db.config("busy_audit");
    let writers: Vec<String> = (1..=12).map(|n| format!("w{n}")).collect();
    for writer in &writers {
        write(&config, writer, aged(numbered(30, "old"), 40)).await;
        write(&config, writer, numbered(1, "new")).await;
    }
    let signer = MarkerSigner::generate().unwrap();
    let key = signer.public_key();
    let cut = OffsetDateTime::now_utc() - Duration::days(30);

    let pruning = {
        let config = config.clone();
        tokio::spawn(async move { prune(&config, cut, &signer).await })
    };
    let mut verified = 0;
    while !pruning.is_finished() {
        if let Err(e) = verify_with(&config, Some(&key)).await {
            panic!("verification {} during the prune: {}", verified + 1, reason(e));
        }
        verified += 1;
    }
    assert!(verified > 0, "no verification ran while the prune did");
    assert_eq!(pruning.await.unwrap().unwrap().len(), writers.len());
    let (report, markers) = verify_with(&config, Some(&key)).await.unwrap();
    assert!(writers.iter().all(|w| report.writers[w].rows == 1 && markers.checked.get(w) == Some(&30)));
    db.drop().await;
}
