//! Two writers append to one file at once, one of them in another process: both chains verify
//! and hold every record of their writer, in order.

use std::io::{BufRead, BufReader, Read, Write};

use zta_audit_sqlite::{SqliteConfig, SqliteSink, verify};
use zta_core::{AuditSink, Durability};

use crate::common::{child_db, numbered, records, spawn_child};

const RECORDS: usize = 2000;

async fn write(sink: &SqliteSink) {
    for (i, r) in numbered(RECORDS, sink.writer_id()).into_iter().enumerate() {
        let durability = if i % 50 == 49 { Durability::Flushed } else { Durability::Queued };
        sink.append(r, durability).await.unwrap();
    }
    sink.flush().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_a_file_and_both_chains_verify() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let sink = SqliteSink::open(SqliteConfig::new(&path).with_writer_id("parent")).await.unwrap();
    let mut child = spawn_child("two_processes_share_a_file::child_writer", &path);
    // Both write once the child has its sink open.
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let out = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        // libtest may put `test <name> ... ` before it on the line.
        while !line.ends_with("opened\n") {
            line.clear();
            assert_ne!(
                out.read_line(&mut line).unwrap(),
                0,
                "the child writer ended before it opened its sink"
            );
        }
        out
    })
    .await
    .unwrap();
    write(&sink).await;
    sink.close().await.unwrap();
    let status = tokio::task::spawn_blocking(move || {
        let mut rest = String::new();
        let mut out = out;
        out.read_to_string(&mut rest).unwrap();
        child.wait().unwrap()
    })
    .await
    .unwrap();
    assert!(status.success(), "the child writer failed: {status}");

    let report = verify(&SqliteConfig::new(&path)).await.unwrap();
    assert_eq!(report.writers.len(), 2, "{report:?}");
    assert_eq!(report.writers["parent"].rows, RECORDS as u64);
    assert_eq!(report.writers["child"].rows, RECORDS as u64);
    let back = records(&path).await;
    for writer in ["parent", "child"] {
        let order: Vec<u64> = back
            .iter()
            .filter(|r| r.detail.get("tag").and_then(|t| t.as_str()) == Some(writer))
            .map(|r| r.detail["i"].as_u64().unwrap())
            .collect();
        assert_eq!(order, (0..RECORDS as u64).collect::<Vec<_>>(), "writer {writer}");
    }
}

/// The other process of the test above: writes as `child`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "runs as the child process of two_processes_share_a_file_and_both_chains_verify"]
async fn child_writer() {
    let sink = SqliteSink::open(SqliteConfig::new(child_db()).with_writer_id("child")).await.unwrap();
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "opened").unwrap();
    stdout.flush().unwrap();
    drop(stdout);
    write(&sink).await;
    sink.close().await.unwrap();
}
