//! Sustained, acknowledged throughput of the NATS JetStream sink against the server of
//! `ZTA_TEST_NATS_URL` (default `nats://127.0.0.1:4222`): 20,000 queued appends and a flush
//! (which returns once JetStream has acknowledged every record), on a stream of its own that is
//! deleted afterwards. After criterion's report it prints the peak resident memory.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stdout,
    missing_docs
)]

use std::{sync::Arc, time::Duration};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use zta_audit_nats::{NatsConfig, NatsSink};
use zta_core::{AuditSink, Durability};
use zta_testkit::audit::typical_record;

fn bench(c: &mut Criterion) {
    let url = std::env::var("ZTA_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let name = format!("ZTA_BENCH_{}", uuid::Uuid::now_v7().simple());
    let mut config = NatsConfig::new(url.clone());
    config.stream.clone_from(&name);
    config.subject_prefix = format!("zta_bench.{name}");
    let sink = Arc::new(rt.block_on(NatsSink::open(config)).unwrap());

    let mut group = c.benchmark_group("nats_append");
    group.sample_size(10).measurement_time(Duration::from_secs(10)).warm_up_time(Duration::from_secs(1));
    const QUEUED: u64 = 20_000;
    group.throughput(Throughput::Elements(QUEUED));
    group.bench_function("queued_then_flush", |b| {
        b.to_async(&rt).iter(|| {
            let sink = sink.clone();
            async move {
                for i in 0..QUEUED {
                    sink.append(typical_record(i), Durability::Queued).await.unwrap();
                }
                sink.flush().await.unwrap();
            }
        });
    });
    group.finish();
    rt.block_on(async {
        sink.close().await.unwrap();
        let context = async_nats::jetstream::new(async_nats::connect(url.as_str()).await.unwrap());
        context.delete_stream(&name).await.unwrap();
    });
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let peak = status.lines().find(|l| l.starts_with("VmHWM")).unwrap_or("VmHWM: unknown");
    println!("peak resident memory: {}", peak.trim_start_matches("VmHWM:").trim());
}

criterion_group!(benches, bench);
criterion_main!(benches);
