//! Sustained append throughput of the SQLite sink: several tasks append `Queued` records, then
//! one `flush` (which returns once every record is committed and synced); prints records/s and
//! the process's peak RSS. The file is a new one in a temporary directory:
//!
//! ```text
//! cargo bench -p zta-audit-sqlite --bench throughput
//! ```
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stdout,
    missing_docs
)]

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use zta_audit_sqlite::{SqliteConfig, SqliteSink};
use zta_core::{AuditSink, Durability};
use zta_testkit::audit::typical_record;

const TASKS: u64 = 4;
const PER_TASK: u64 = 25_000;

async fn burst(sink: &Arc<SqliteSink>) {
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let sink = sink.clone();
            tokio::spawn(async move {
                for i in 0..PER_TASK {
                    sink.append(typical_record(t * PER_TASK + i), Durability::Queued).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    sink.flush().await.unwrap();
}

/// CPU time (user and system) of this process so far, in seconds: less sensitive than wall
/// time to other work on the machine.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // After the command name in parentheses: fields 3.., utime and stime are the 14th and 15th.
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let ticks: f64 = fields.get(11..13).into_iter().flatten().filter_map(|f| f.parse::<f64>().ok()).sum();
    ticks / 100.0
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sink =
        Arc::new(rt.block_on(SqliteSink::open(SqliteConfig::new(dir.path().join("audit.db")))).unwrap());

    // One timed burst outside criterion, for the headline number.
    let (start, cpu) = (Instant::now(), cpu_secs());
    rt.block_on(burst(&sink));
    let (secs, cpu) = (start.elapsed().as_secs_f64(), cpu_secs() - cpu);
    let n = TASKS * PER_TASK;
    println!(
        "sqlite_append: {n} queued records from {TASKS} tasks, then flush: {secs:.3} s, {:.0} records/s, {:.2} µs CPU per record",
        n as f64 / secs,
        cpu * 1e6 / n as f64
    );

    let mut group = c.benchmark_group("sqlite_append");
    group.sample_size(10).measurement_time(Duration::from_secs(20)).warm_up_time(Duration::from_secs(1));
    group.throughput(Throughput::Elements(n));
    group.bench_function("queued_4_tasks_then_flush", |b| {
        b.to_async(&rt).iter(|| burst(&sink));
    });
    group.finish();
    rt.block_on(sink.close()).unwrap();
    println!("peak RSS (VmHWM): {} KiB", peak_rss_kib());
}

criterion_group!(benches, bench);
criterion_main!(benches);
