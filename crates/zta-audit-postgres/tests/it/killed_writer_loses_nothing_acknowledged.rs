//! A process appending `Flushed` records is killed with SIGKILL in the middle of its writes:
//! every record whose append it saw succeed (printed on its stdout) is in the table, the chain
//! verifies, and the writer, started again with the same id, continues its chain.

use std::{
    collections::HashSet,
    io::{BufRead, BufReader, Write},
    sync::{Arc, mpsc},
    time::{Duration, Instant},
};

use zta_audit_postgres::{PostgresConfig, PostgresSink, verify};
use zta_core::{AuditSink, Durability};

use crate::common::{TestDb, child_url, numbered, spawn_child};

/// Acknowledged appends seen before the kill.
const BEFORE_KILL: usize = 500;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_writer_loses_nothing_acknowledged() {
    let db = TestDb::new().await;
    let mut child = spawn_child("killed_writer_loses_nothing_acknowledged::child_writer", &db.url);
    let (tx, acks) = mpsc::channel::<String>();
    let out = BufReader::new(child.stdout.take().unwrap());
    let reader = std::thread::spawn(move || {
        for line in out.lines() {
            // libtest may put `test <name> ... ` before the first one on its line.
            if let Some((_, id)) = line.unwrap().split_once("ack ") {
                tx.send(id.to_owned()).unwrap();
            }
        }
    });
    let mut acknowledged = HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while acknowledged.len() < BEFORE_KILL {
        let left = deadline.saturating_duration_since(Instant::now());
        match acks.recv_timeout(left) {
            Ok(id) => {
                acknowledged.insert(id);
            }
            Err(e) => panic!("the child acknowledged {} appends, then: {e}", acknowledged.len()),
        }
    }
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert!(!status.success(), "the child was killed, yet: {status}");
    reader.join().unwrap();
    // Acknowledged between the count above and the kill.
    acknowledged.extend(acks.try_iter());
    // The server may still commit a batch the child sent before it died.
    db.wait_for_other_sessions_to_end().await;

    let config = db.config("zta_audit").with_writer_id("victim");
    let before = verify(&config).await.unwrap().writers["victim"].rows;
    let stored: HashSet<String> = db.records("zta_audit").await.iter().map(|r| r.id.to_string()).collect();
    assert_eq!(stored.len() as u64, before, "the table holds a record the chain does not, or one twice");
    let lost: Vec<&String> = acknowledged.iter().filter(|id| !stored.contains(*id)).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged records lost, e.g. {:?}",
        lost.len(),
        acknowledged.len(),
        lost.first()
    );

    // Restarted: the chain continues and verifies.
    let sink = PostgresSink::open(config.clone()).await.unwrap();
    for r in numbered(10, "after") {
        sink.append(r, Durability::Flushed).await.unwrap();
    }
    sink.close().await.unwrap();
    assert_eq!(verify(&config).await.unwrap().writers["victim"].rows, before + 10);
    db.drop().await;
}

/// The process that is killed: four tasks append `Flushed` records until it dies, each printing
/// `ack <record id>` once its append succeeded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "runs as the child process of killed_writer_loses_nothing_acknowledged"]
async fn child_writer() {
    let config = PostgresConfig::new(child_url()).with_table("zta_audit").with_writer_id("victim");
    let sink = Arc::new(PostgresSink::open(config).await.unwrap());
    let tasks: Vec<_> = (0..4)
        .map(|t| {
            let sink = sink.clone();
            tokio::spawn(async move {
                for i in 0.. {
                    let r = numbered(1, &format!("{t}-{i}")).remove(0);
                    let id = r.id;
                    sink.append(r, Durability::Flushed).await.unwrap();
                    let mut stdout = std::io::stdout().lock();
                    writeln!(stdout, "ack {id}").unwrap();
                    stdout.flush().unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
}
