//! A NATS server killed (SIGKILL) and started again while records are being published: the
//! sink publishes the unacknowledged batch again once the server is back, every acknowledged
//! record is in the stream exactly once, and the chain verifies. Runs a private `nats-server`
//! (the one this machine kind has installed) on a free loopback port.

use std::{
    net::TcpListener,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use zta_audit_nats::{NatsConfig, NatsSink, verify};
use zta_core::{AuditEvent, AuditRecord, AuditSink, Durability, Effect};

fn start(port: u16, store: &std::path::Path) -> Child {
    let child = Command::new("nats-server")
        .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
        .arg(store)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nats-server (installed on this machine kind) could not be started");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nats-server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_server_loses_nothing() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let store = tempfile::tempdir().unwrap();
    let mut server = start(port, store.path());
    let url = format!("nats://127.0.0.1:{port}");
    let mut config = NatsConfig::new(url.clone());
    config.retry_for = Duration::from_secs(60);
    config.batch_size = 16;
    let sink = NatsSink::open(config).await.unwrap();

    let sink = std::sync::Arc::new(sink);
    let record = |i: usize| AuditRecord::new(AuditEvent::Authorization, Effect::Allow).with_detail("i", i);
    let mut acknowledged = Vec::new();
    for i in 0..100 {
        let r = record(i);
        sink.append(r.clone(), Durability::Flushed).await.unwrap();
        acknowledged.push(r.id);
    }
    // The server dies with batches of queued records on their way to it.
    let queued = tokio::spawn({
        let sink = sink.clone();
        async move {
            let mut ids = Vec::new();
            for i in 100..300 {
                let r = record(i);
                sink.append(r.clone(), Durability::Queued).await.unwrap();
                ids.push(r.id);
            }
            sink.flush().await.unwrap();
            ids
        }
    });
    server.kill().unwrap();
    server.wait().unwrap();
    server = start(port, store.path());
    acknowledged.extend(queued.await.unwrap());
    let report = verify(&url, "ZTA_AUDIT").await.unwrap();
    let stored: Vec<_> = report.records.iter().map(|r| r.id).collect();
    assert_eq!(stored, acknowledged, "every record, once, in order");
    server.kill().unwrap();
    server.wait().unwrap();
}
