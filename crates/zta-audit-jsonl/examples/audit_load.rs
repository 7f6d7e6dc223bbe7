//! Load test of the JSON Lines sink: appends realistic records from a few tokio tasks, flushes,
//! verifies the result, and prints records/s and peak RSS (VmHWM).
//!
//! ```text
//! cargo run --release -p zta-audit-jsonl --example audit_load -- [RECORDS] [TASKS] [queued|flushed] [DIR]
//! ```
//!
//! Defaults: 1,000,000 records, 4 tasks, `queued` (group commit every 5 ms), a temporary
//! directory. `flushed` makes every append wait for its fsync (use many tasks, e.g. 256).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stdout
)]

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use zta_audit_jsonl::{JsonlConfig, JsonlSink, verify};
use zta_core::{
    Action, AgentId, AuditEvent, AuditRecord, AuditSink, AuthMethod, Basis, Decision, Determining,
    Durability, PolicyDigest, Resource,
};

const AGENTS: [&str; 4] = ["research-agent-7", "planner", "billing-bot", "support-triage-2"];
const TOOLS: [&str; 4] = ["web_search", "read_file", "send_email", "sql_query"];

/// A record like the guard writes for an authorization.
fn record(task: u64, i: u64) -> AuditRecord {
    let allow = !i.is_multiple_of(10);
    let mut determining = Determining::new();
    determining.push(Arc::from(if allow { "allow-research-tools" } else { "deny-external-email" }));
    let basis = if allow { Basis::Permitted } else { Basis::ExplicitDeny };
    let decision = Decision::new(basis, determining, PolicyDigest([0x5a; 32]));
    let effect = basis.effect();
    let mut r = AuditRecord::new(AuditEvent::Authorization, effect);
    r.note_decision(&decision);
    let n = usize::try_from(i % 4).unwrap();
    r.agent_id = Some(AgentId::new(AGENTS[n]).unwrap());
    r.auth_method = Some(AuthMethod::SessionToken);
    r.on_behalf_of = vec![format!("user-{}@example.com", (task * 31 + i) % 1000)];
    r.action = Some(Action::tool_call(TOOLS[n]));
    r.resource = Some(Resource::new("document", format!("doc-{task}-{i}")));
    r.latency_us = Some(20 + i % 50);
    if !allow {
        r.reason = Some("denied by rule `deny-external-email`".into());
    }
    r
}

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// CPU time (user + system, all threads) used so far, in seconds.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // After the parenthesised command name come state, ppid, ...; utime and stime are the
    // 12th and 13th of those, in clock ticks of 1/100 s.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
    (tick(11) + tick(12)) as f64 / 100.0
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let records: u64 = args.first().map_or(1_000_000, |s| s.parse().expect("RECORDS is a number"));
    let tasks: u64 = args.get(1).map_or(4, |s| s.parse().expect("TASKS is a number"));
    let durability = match args.get(2).map(String::as_str) {
        None | Some("queued") => Durability::Queued,
        Some("flushed") => Durability::Flushed,
        Some(other) => panic!("unknown durability `{other}`: queued or flushed"),
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = args.get(3).map_or_else(|| tmp.path().to_owned(), std::path::PathBuf::from);

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let config = JsonlConfig::new(&dir);
    let (queue, batch) = (config.queue_capacity, config.max_batch);
    let sink = Arc::new(JsonlSink::open(config).unwrap());
    let rss_before = peak_rss_kib();

    let (start, cpu_start) = (Instant::now(), cpu_seconds());
    rt.block_on(async {
        let per_task = records / tasks;
        let handles: Vec<_> = (0..tasks)
            .map(|t| {
                let sink = sink.clone();
                let n = if t + 1 == tasks { records - per_task * (tasks - 1) } else { per_task };
                tokio::spawn(async move {
                    for i in 0..n {
                        sink.append(record(t, i), durability).await.unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.await.unwrap();
        }
        sink.flush().await.unwrap();
    });
    let elapsed = start.elapsed();
    let cpu = cpu_seconds() - cpu_start;
    drop(sink);
    let rss_after = peak_rss_kib();

    let bytes: u64 = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".jsonl"))
        .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
        .sum();
    let vstart = Instant::now();
    let report = verify(&dir, None).unwrap();
    let vtime = vstart.elapsed();
    assert_eq!(report.records, records, "every record is in the log");

    let rate = records as f64 / elapsed.as_secs_f64();
    println!(
        "appended {records} records ({durability:?}, {tasks} tasks, queue {queue}, batch {batch}) in {:.3} s: {:.0} records/s, {:.1} MB/s",
        elapsed.as_secs_f64(),
        rate,
        bytes as f64 / 1e6 / elapsed.as_secs_f64()
    );
    println!(
        "cpu: {:.2} s user+sys for {records} records = {:.2} us/record (record building included)",
        cpu,
        cpu * 1e6 / records as f64
    );
    println!(
        "log: {} files, {:.1} MB, {:.0} bytes/record; verify: {:.3} s ({:.0} records/s)",
        report.files.len(),
        bytes as f64 / 1e6,
        bytes as f64 / records as f64,
        vtime.as_secs_f64(),
        records as f64 / vtime.as_secs_f64().max(Duration::from_micros(1).as_secs_f64())
    );
    println!("peak RSS (VmHWM): {} MiB (before appending: {} MiB)", rss_after / 1024, rss_before / 1024);
}
