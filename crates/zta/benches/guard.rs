//! `Guard::check` (verify a session token, revocation checks, policy decision, audit enqueue)
//! against the bare signature verification of the same token, in the same run.
//!
//! * `ref_bare_verify` — `jsonwebtoken::decode` of the access token (EdDSA), nothing else.
//! * `check_cold` — a token the guard has never seen (full verification).
//! * `check_warm` — the same token again (verified-token cache; expiry and revocation still
//!   checked). The sink's writer drains concurrently; the queue is flushed between samples
//!   (untimed) so the figure is the request path's own cost, not the writer's throughput.
//! * `check_warm_sustained` — the same, never flushing: once the queue is full every check
//!   waits for the writer (backpressure), so this is the sustained rate one sink allows.
//! * `check_warm_discarding_audit` — a breakdown, not a deployable setup: the same check with
//!   a sink that takes records and drops them, to show what the guard itself costs apart from
//!   serializing and queueing the record.
//!
//! Group `monitor`: `check_warm` with every kind of detector watching the audit stream
//! (`check_warm_monitored`) against the same check without (`ref_check_warm`), each on a JSON
//! Lines sink of its own, one after the other in one run.
//!
//! Group `postgres_audit` (with `audit-postgres` and `ZTA_TEST_POSTGRES_URL`; skipped, saying
//! so, without the variable): `check_warm` with the PostgreSQL sink (`check_warm_postgres`, a
//! fresh table dropped afterwards) against the same check with the JSON Lines sink
//! (`ref_check_warm_jsonl`), one after the other in one run; each sink is flushed between
//! samples (untimed), as in `check_warm`. A breakdown, not a deployable setting:
//! `check_warm_postgres_commit_deferred` is the same with `max_batch_delay: 1h` and
//! `batch_size: 32768`, so that nothing is inserted while a sample of up to 32,768 checks is
//! timed (the flush between samples commits): the request path's own cost, without
//! PostgreSQL's inserts competing for the same cores.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::{sync::Arc, time::Instant};

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use zta::{
    Action, AgentId, AuditSink, AuthMethod, Credential, Guard, MemoryStateStore, Principal, Request,
    StateStore, TokenAuthority,
    audit::jsonl::{JsonlConfig, JsonlSink},
    secrecy::ExposeSecret,
    token::{Algorithm, SigningKey, TokenConfig, TokenService},
};

const CREW_POLICY: &str = include_str!("../../../examples/policies/crew.yaml");

fn principal() -> Principal {
    let now = time::OffsetDateTime::now_utc();
    Principal::new(
        AgentId::new("research_bot").unwrap(),
        "static",
        AuthMethod::AgentKey,
        now,
        now + time::Duration::minutes(5),
    )
    .with_segment("research")
    .with_roles(["researcher"])
}

/// Takes every record and keeps none (for the cost breakdown only).
#[derive(Debug)]
struct Discard;

#[async_trait::async_trait]
impl AuditSink for Discard {
    async fn append(&self, _: zta::AuditRecord, _: zta::Durability) -> Result<(), zta::AuditError> {
        Ok(())
    }
    async fn flush(&self) -> Result<(), zta::AuditError> {
        Ok(())
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate(Algorithm::EdDSA).unwrap();
    let public_pem = key.public_key_pem();
    let state: Arc<dyn StateStore> = Arc::new(MemoryStateStore::new());
    let tokens =
        Arc::new(TokenService::new(TokenConfig::new("https://zta.bench", "bench"), key, state).unwrap());
    let policy = zta::policy::PolicySet::from_yaml(CREW_POLICY).unwrap();
    let mut audit = JsonlConfig::new(dir.path());
    audit.queue_capacity = 1 << 18;
    let sink = Arc::new(JsonlSink::open(audit).unwrap());
    let guard =
        Guard::builder(Arc::new(policy), sink.clone()).token_authority(tokens.clone()).build().unwrap();

    let issue = || rt.block_on(tokens.issue(&principal())).unwrap();
    let request = || Request::new(Action::tool_call("web_search"));
    let warm = Credential::bearer(issue().access_token.expose_secret());
    let _permit = rt.block_on(guard.check(&warm, request())).expect("the bench request must be allowed");

    let decoding = jsonwebtoken::DecodingKey::from_ed_pem(public_pem.as_bytes()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.set_audience(&["bench"]);
    validation.set_issuer(&["https://zta.bench"]);
    let bare_token = issue().access_token.expose_secret().to_owned();

    let mut group = c.benchmark_group("guard");
    group.bench_function("ref_bare_verify", |b| {
        b.iter(|| jsonwebtoken::decode::<serde_json::Value>(&bare_token, &decoding, &validation).unwrap())
    });
    group.bench_function("check_cold", |b| {
        b.iter_batched(
            || Credential::bearer(issue().access_token.expose_secret()),
            |cred| rt.block_on(guard.check(&cred, request())).unwrap(),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("check_warm", |b| {
        b.iter_custom(|iters| {
            let started = Instant::now();
            for _ in 0..iters {
                let _permit = rt.block_on(guard.check(&warm, request())).unwrap();
            }
            let elapsed = started.elapsed();
            rt.block_on(sink.flush()).unwrap();
            elapsed
        })
    });
    group.bench_function("check_warm_sustained", |b| {
        b.iter(|| rt.block_on(guard.check(&warm, request())).unwrap())
    });
    let discarding =
        Guard::builder(Arc::new(zta::policy::PolicySet::from_yaml(CREW_POLICY).unwrap()), Arc::new(Discard))
            .token_authority(tokens.clone())
            .build()
            .unwrap();
    group.bench_function("check_warm_discarding_audit", |b| {
        b.iter(|| rt.block_on(discarding.check(&warm, request())).unwrap())
    });
    group.finish();

    let monitored_dir = tempfile::tempdir().unwrap();
    let mut monitored_audit = JsonlConfig::new(monitored_dir.path());
    monitored_audit.queue_capacity = 1 << 18;
    let monitored_sink = Arc::new(JsonlSink::open(monitored_audit).unwrap());
    let detectors: zta::monitor::MonitorConfig = serde_json::from_value(serde_json::json!({"detectors": [
        {"name": "denials", "detect": "denials", "threshold": 10, "respond": ["suspend"]},
        {"name": "scanning", "detect": "scanning", "threshold": 10, "respond": ["suspend"]},
        {"name": "rate", "detect": "rate", "window": "10s", "threshold": 1000000, "respond": ["suspend"]},
        {"name": "guessing", "detect": "auth_failures"},
        {"name": "reuse", "detect": "token_reuse", "respond": ["revoke"]},
        {"name": "reserved", "detect": "reserved_attribute", "respond": ["suspend"]},
    ]}))
    .unwrap();
    let monitor_state: Arc<dyn StateStore> = Arc::new(MemoryStateStore::new());
    let watched = zta::monitor::MonitoredSink::new(monitored_sink.clone(), detectors, monitor_state).unwrap();
    let monitored =
        Guard::builder(Arc::new(zta::policy::PolicySet::from_yaml(CREW_POLICY).unwrap()), Arc::new(watched))
            .token_authority(tokens.clone())
            .build()
            .unwrap();
    let mut group = c.benchmark_group("monitor");
    for (name, guard, sink) in
        [("ref_check_warm", &guard, &sink), ("check_warm_monitored", &monitored, &monitored_sink)]
    {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let started = Instant::now();
                for _ in 0..iters {
                    let _permit = rt.block_on(guard.check(&warm, request())).unwrap();
                }
                let elapsed = started.elapsed();
                rt.block_on(sink.flush()).unwrap();
                elapsed
            })
        });
    }
    group.finish();

    #[cfg(feature = "audit-postgres")]
    postgres_audit(c, &rt, &tokens, &warm, (&guard, &sink));
}

/// The group `postgres_audit`: `jsonl` is the JSON Lines guard and its sink, the reference.
#[cfg(feature = "audit-postgres")]
fn postgres_audit(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    tokens: &Arc<TokenService>,
    warm: &Credential,
    jsonl: (&Guard, &Arc<JsonlSink>),
) {
    use zta::audit::postgres::{PostgresConfig, PostgresSink};
    let Ok(url) = std::env::var("ZTA_TEST_POSTGRES_URL") else {
        println!("postgres_audit: skipped, ZTA_TEST_POSTGRES_URL is not set");
        return;
    };
    let table = format!("zta_bench_{}", uuid::Uuid::now_v7().simple());
    let sink = Arc::new(
        rt.block_on(PostgresSink::open(PostgresConfig::new(url.as_str()).with_table(table.as_str())))
            .unwrap(),
    );
    let guard =
        Guard::builder(Arc::new(zta::policy::PolicySet::from_yaml(CREW_POLICY).unwrap()), sink.clone())
            .token_authority(tokens.clone())
            .build()
            .unwrap();
    let mut deferred_config = PostgresConfig::new(url.as_str()).with_table(table.as_str());
    deferred_config.max_batch_delay = std::time::Duration::from_secs(3600);
    deferred_config.batch_size = 32_768;
    let deferred_sink = Arc::new(rt.block_on(PostgresSink::open(deferred_config)).unwrap());
    let deferred = Guard::builder(
        Arc::new(zta::policy::PolicySet::from_yaml(CREW_POLICY).unwrap()),
        deferred_sink.clone(),
    )
    .token_authority(tokens.clone())
    .build()
    .unwrap();
    let request = || Request::new(Action::tool_call("web_search"));
    let (jsonl_guard, jsonl_sink) = jsonl;
    let jsonl_sink: Arc<dyn AuditSink> = jsonl_sink.clone();
    let postgres_sink: Arc<dyn AuditSink> = sink.clone();
    let deferred_audit: Arc<dyn AuditSink> = deferred_sink.clone();
    let mut group = c.benchmark_group("postgres_audit");
    for (name, guard, sink) in [
        ("ref_check_warm_jsonl", jsonl_guard, &jsonl_sink),
        ("check_warm_postgres", &guard, &postgres_sink),
        ("check_warm_postgres_commit_deferred", &deferred, &deferred_audit),
    ] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let started = Instant::now();
                for _ in 0..iters {
                    let _permit = rt.block_on(guard.check(warm, request())).unwrap();
                }
                let elapsed = started.elapsed();
                rt.block_on(sink.flush()).unwrap();
                elapsed
            })
        });
    }
    group.finish();
    rt.block_on(async {
        sink.close().await.unwrap();
        deferred_sink.close().await.unwrap();
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        sqlx::query(&format!("DROP TABLE {table}")).execute(&pool).await.unwrap();
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
