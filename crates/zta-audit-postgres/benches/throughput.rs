//! Sustained append throughput of the PostgreSQL sink: several tasks append `Queued` records,
//! then one `flush`; prints records/s and the process's peak RSS. Needs PostgreSQL in
//! `ZTA_TEST_POSTGRES_URL` (a database of its own is made through it and dropped after):
//!
//! ```text
//! ZTA_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test cargo bench -p zta-audit-postgres
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
use sqlx::{Connection, PgConnection};
use zta_audit_postgres::{PostgresConfig, PostgresSink};
use zta_core::{AuditSink, Durability};
use zta_testkit::audit::typical_record;

const TASKS: u64 = 4;
const PER_TASK: u64 = 25_000;

async fn burst(sink: &Arc<PostgresSink>) {
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
    let admin = std::env::var("ZTA_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!("this benchmark needs PostgreSQL: set ZTA_TEST_POSTGRES_URL, e.g. postgres://postgres@127.0.0.1:5432/test")
    });
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let name = format!("zta_bench_{}", uuid::Uuid::new_v4().simple());
    let (server, _) = admin.split('?').next().unwrap().rsplit_once('/').unwrap();
    let url = format!("{server}/{name}");
    rt.block_on(async {
        let mut conn = PgConnection::connect(&admin).await.unwrap();
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.unwrap();
    });
    let sink = Arc::new(rt.block_on(PostgresSink::open(PostgresConfig::new(url))).unwrap());

    // One timed burst outside criterion, for the headline number.
    let start = Instant::now();
    rt.block_on(burst(&sink));
    let secs = start.elapsed().as_secs_f64();
    let n = TASKS * PER_TASK;
    println!(
        "postgres_append: {n} queued records from {TASKS} tasks, then flush: {secs:.3} s, {:.0} records/s",
        n as f64 / secs
    );

    let mut group = c.benchmark_group("postgres_append");
    group.sample_size(10).measurement_time(Duration::from_secs(20)).warm_up_time(Duration::from_secs(1));
    group.throughput(Throughput::Elements(n));
    group.bench_function("queued_4_tasks_then_flush", |b| {
        b.to_async(&rt).iter(|| burst(&sink));
    });
    group.finish();
    rt.block_on(sink.close()).unwrap();
    println!("peak RSS (VmHWM): {} KiB", peak_rss_kib());
    rt.block_on(async {
        let mut conn = PgConnection::connect(&admin).await.unwrap();
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut conn)
            .await
            .unwrap();
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
