//! Append throughput of the JSON Lines sink: queued appends with group commit, and many
//! concurrent `Durability::Flushed` appends sharing each fsync.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, missing_docs)]

use std::{sync::Arc, time::Duration};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use zta_audit_jsonl::{JsonlConfig, JsonlSink};
use zta_core::{AuditSink, Durability};
use zta_testkit::audit::typical_record;

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sink = Arc::new(JsonlSink::open(JsonlConfig::new(dir.path())).unwrap());

    let mut group = c.benchmark_group("jsonl_append");
    group.sample_size(10).measurement_time(Duration::from_secs(5)).warm_up_time(Duration::from_secs(1));

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

    const TASKS: u64 = 64;
    const PER_TASK: u64 = 50;
    group.throughput(Throughput::Elements(TASKS * PER_TASK));
    group.bench_function("flushed_64_concurrent", |b| {
        b.to_async(&rt).iter(|| {
            let sink = sink.clone();
            async move {
                let tasks: Vec<_> = (0..TASKS)
                    .map(|t| {
                        let sink = sink.clone();
                        tokio::spawn(async move {
                            for i in 0..PER_TASK {
                                sink.append(typical_record(t * PER_TASK + i), Durability::Flushed)
                                    .await
                                    .unwrap();
                            }
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await.unwrap();
                }
            }
        });
    });
    group.finish();
    drop(sink);
}

criterion_group!(benches, bench);
criterion_main!(benches);
