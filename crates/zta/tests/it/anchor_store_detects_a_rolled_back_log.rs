//! A JSON Lines log whose signed checkpoints go to an anchor store (a PostgreSQL table, a
//! NATS JetStream stream; a fresh table or stream per test): the intact log matches the
//! anchor; a truncated log, and a log rolled back to an older copy and then written on with
//! new validly signed records, are caught and named; entries of other logs sharing the store
//! are never taken for this log's; a forged entry is an error; and while the store is
//! unreachable the guard still permits requests, the anchor catching up once it is back.
//!
//! Needs the PostgreSQL of `ZTA_TEST_POSTGRES_URL` and the NATS (JetStream) of
//! `ZTA_TEST_NATS_URL` (default `nats://127.0.0.1:4222`).
#![cfg(all(
    feature = "audit-postgres",
    feature = "audit-nats",
    feature = "identity-static",
    feature = "policy-native",
    feature = "audit-jsonl"
))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::{
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use zta::{
    Action, AuditSink, Durability, Request,
    audit::{
        jsonl::{
            AnchorConfig, AnchorEntry, CheckpointAnchor, JsonlConfig, JsonlSink, RollbackProblem,
            VerifyError, VerifyReport, generate_checkpoint_key, verify, verify_anchored,
        },
        nats::{NatsAnchor, NatsAnchorConfig},
        postgres::{PostgresAnchor, PostgresAnchorConfig},
    },
};

use crate::config_loads_and_refuses_bad_files::logged_in_with_audit;

fn postgres_url() -> String {
    std::env::var("ZTA_TEST_POSTGRES_URL").expect(
        "these tests need PostgreSQL: set ZTA_TEST_POSTGRES_URL (e.g. postgres://postgres@127.0.0.1:5432/test; \
         `cargo xtask test` sets it)",
    )
}

fn nats_url() -> String {
    std::env::var("ZTA_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

/// A fresh table or stream of one test, removed by [`Fresh::remove`].
#[derive(Debug, Clone)]
enum Fresh {
    Postgres { url: String, table: String },
    Nats { url: String, stream: String, prefix: String },
}

impl Fresh {
    fn postgres() -> Self {
        let table = format!("zta_test_anchor_{}", uuid::Uuid::now_v7().simple());
        Self::Postgres { url: postgres_url(), table }
    }

    fn nats() -> Self {
        let id = uuid::Uuid::now_v7().simple().to_string();
        Self::Nats {
            url: nats_url(),
            stream: format!("ZTA_TEST_ANCHOR_{id}"),
            prefix: format!("zta_test_anchor.{id}"),
        }
    }

    /// The store, reached through `server` (`host:port`) instead of the real one if given.
    fn store(&self, server: Option<&str>) -> Arc<dyn CheckpointAnchor> {
        match self {
            Self::Postgres { url, table } => {
                let url = server.map_or_else(|| url.clone(), |s| via(url, s));
                Arc::new(
                    PostgresAnchor::new(&PostgresAnchorConfig::new(url).with_table(table.as_str())).unwrap(),
                )
            }
            Self::Nats { url, stream, prefix } => {
                let url = server.map_or_else(|| url.clone(), |s| via(url, s));
                let mut config = NatsAnchorConfig::new(url).with_stream(stream.as_str());
                config.subject_prefix.clone_from(prefix);
                Arc::new(NatsAnchor::new(&config).unwrap())
            }
        }
    }

    /// The `anchor:` store key of a config, reached through `server`.
    fn yaml(&self, server: &str) -> String {
        match self {
            Self::Postgres { url, table } => {
                format!("postgres: {{url: \"{}\", table: {table}}}", via(url, server))
            }
            Self::Nats { url, stream, prefix } => {
                format!("nats: {{url: \"{}\", stream: {stream}, subject_prefix: {prefix}}}", via(url, server))
            }
        }
    }

    async fn remove(&self) {
        match self {
            Self::Postgres { url, table } => {
                let pool = sqlx::PgPool::connect(url).await.unwrap();
                sqlx::query(&format!("DROP TABLE IF EXISTS {table}")).execute(&pool).await.unwrap();
            }
            Self::Nats { url, stream, .. } => {
                let context = async_nats::jetstream::new(async_nats::connect(url.as_str()).await.unwrap());
                let _ = context.delete_stream(stream).await;
            }
        }
    }
}

/// `url` with its host and port replaced by `server`.
fn via(url: &str, server: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
    let user = authority.rsplit_once('@').map(|(u, _)| format!("{u}@")).unwrap_or_default();
    let path = if path.is_empty() { String::new() } else { format!("/{path}") };
    format!("{scheme}://{user}{server}{path}")
}

/// A checkpoint key: (its directory, the private key file, the public key PEM).
fn key() -> (tempfile::TempDir, PathBuf, String) {
    let keys = tempfile::tempdir().unwrap();
    let (private, public) = generate_checkpoint_key().unwrap();
    let file = keys.path().join("audit-checkpoint.pem");
    std::fs::write(&file, private.as_bytes()).unwrap();
    (keys, file, public)
}

fn record(i: u64) -> zta::AuditRecord {
    let mut r = zta::AuditRecord::new(zta::AuditEvent::Authorization, zta::Effect::Allow);
    r.reason = Some(format!("record {i}"));
    r
}

/// Appends `n` records to the log in `dir` (signed with `key_file`, anchored to `anchor` as
/// `log_id` if given) and closes it: a clean close publishes the newest checkpoint.
async fn write(dir: &Path, key_file: &Path, anchor: Option<(&str, Arc<dyn CheckpointAnchor>)>, n: u64) {
    let mut config = JsonlConfig::new(dir);
    config.flush_interval = Duration::ZERO;
    config.checkpoint_key_file = Some(key_file.to_owned());
    config.anchor = anchor.map(|(log_id, store)| {
        let mut a = AnchorConfig::store(log_id, store);
        a.interval = Duration::ZERO;
        a
    });
    let sink = JsonlSink::open(config).unwrap();
    for i in 0..n {
        sink.append(record(i), Durability::Flushed).await.unwrap();
    }
    sink.close().await.unwrap();
}

/// Every file of `dir` replaced by those of `from`.
fn restore(dir: &Path, from: &Path) {
    for e in std::fs::read_dir(dir).unwrap() {
        std::fs::remove_file(e.unwrap().path()).unwrap();
    }
    copy(from, dir);
}

fn copy(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

fn rolled_back(result: Result<VerifyReport, VerifyError>) -> (u64, RollbackProblem, String) {
    match result {
        Err(e @ VerifyError::RolledBack { .. }) => {
            let message = e.to_string();
            let VerifyError::RolledBack { anchored_seq, problem, .. } = e else { unreachable!() };
            (anchored_seq, problem, message)
        }
        other => panic!("expected a rollback, got {other:?}"),
    }
}

async fn intact_truncated_rolled_back_other_logs_and_forgeries(fresh: Fresh) {
    // The sinks publish through a store of their own; the checks read through another.
    let (sinks, store) = (fresh.store(None), fresh.store(None));
    let (_keys, key_file, public) = key();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit");

    write(&log, &key_file, Some(("log-a", sinks.clone())), 10).await;
    let older = tempfile::tempdir().unwrap();
    copy(&log, older.path()); // a backup: signed checkpoint at seq 10
    write(&log, &key_file, Some(("log-a", sinks.clone())), 10).await;
    let newer = tempfile::tempdir().unwrap();
    copy(&log, newer.path());

    // Another log with the same key, and a log named alike with another key, share the store.
    let (_other_keys, other_key_file, _) = key();
    let other = tempfile::tempdir().unwrap();
    write(other.path(), &key_file, Some(("log-b", sinks.clone())), 30).await;
    write(other.path().join("x").as_path(), &other_key_file, Some(("log-a", sinks.clone())), 40).await;

    // Intact: matches the anchor, which is up to date; only this log's entries were used.
    let report = verify_anchored(&log, public.as_bytes(), store.as_ref(), "log-a").await.unwrap();
    let anchor = report.anchor.clone().unwrap();
    assert_eq!((report.last_seq, anchor.seq, anchor.lag(&report)), (20, 20, 0));
    let ours = store.entries("log-a", &report_key_id(&report)).await.unwrap();
    assert_eq!(anchor.checkpoints, ours.len() as u64);
    assert!(ours.iter().all(|e| e.log_id == "log-a" && e.seq <= 20), "{ours:?}");
    assert!(report.to_string().contains("the anchor is up to date"), "{report}");
    // The other log is not taken for this one: held against log-b's entries it fails.
    assert!(verify_anchored(&log, public.as_bytes(), store.as_ref(), "log-b").await.is_err());
    // A log id the store has nothing of vouches for nothing.
    let err = verify_anchored(&log, public.as_bytes(), store.as_ref(), "log-z").await.unwrap_err();
    assert!(matches!(&err, VerifyError::Anchor { .. }) && err.to_string().contains("no checkpoint"), "{err}");

    // Records the anchor has not seen (a writer that does not publish, as during an outage):
    // still intact, and the report says how far the anchor lags.
    let lagging = tempfile::tempdir().unwrap();
    copy(&log, lagging.path());
    write(lagging.path(), &key_file, None, 5).await;
    let report = verify_anchored(lagging.path(), public.as_bytes(), store.as_ref(), "log-a").await.unwrap();
    assert_eq!((report.last_seq, report.anchor.as_ref().unwrap().lag(&report)), (25, 5));
    assert!(report.to_string().contains("the anchor lags by 5 records"), "{report}");

    // Truncated: the older copy put back. Its signature verifies; the anchor says it was cut.
    restore(&log, older.path());
    assert_eq!(verify(&log, Some(public.as_bytes())).unwrap().last_seq, 10);
    let (seq, problem, message) =
        rolled_back(verify_anchored(&log, public.as_bytes(), store.as_ref(), "log-a").await);
    assert_eq!((seq, problem), (20, RollbackProblem::LogEndsBefore { last_seq: 10 }));
    assert!(
        message.contains("records were cut from the end") && message.contains("log `log-a`"),
        "{message}"
    );

    // Rolled back and written on: new records and checkpoints, validly signed (by a writer
    // that does not publish), past the anchored seq 20.
    write(&log, &key_file, None, 15).await;
    let report = verify(&log, Some(public.as_bytes())).unwrap();
    assert_eq!((report.last_seq, report.checkpoint_seq), (25, 25));
    let (seq, problem, message) =
        rolled_back(verify_anchored(&log, public.as_bytes(), store.as_ref(), "log-a").await);
    assert!((11..=20).contains(&seq), "the first anchored checkpoint after the copy: {seq}");
    assert_eq!(problem, RollbackProblem::HashDiffers);
    assert!(message.contains("the log was rewritten"), "{message}");

    // A forged entry (its signature does not verify) is an error, not skipped.
    restore(&log, newer.path());
    assert!(verify_anchored(&log, public.as_bytes(), store.as_ref(), "log-a").await.is_ok());
    let good = ours.last().unwrap();
    let forged =
        good.checkpoint.replace(&format!("\"seq\":{}", good.seq), &format!("\"seq\":{}", good.seq + 1));
    assert_ne!(forged, good.checkpoint);
    let entry =
        AnchorEntry::new(good.log_id.clone(), good.key_id.clone(), good.seq + 1, good.hash.clone(), forged);
    store.publish(&entry).await.unwrap();
    let err = verify_anchored(&log, public.as_bytes(), store.as_ref(), "log-a").await.unwrap_err();
    assert!(matches!(&err, VerifyError::Anchor { .. }), "{err}");
    assert!(err.to_string().contains("signature that does not verify"), "{err}");
    fresh.remove().await;
}

/// The key id the report's verified signature names.
fn report_key_id(report: &VerifyReport) -> String {
    match &report.signature {
        zta::audit::jsonl::SignatureStatus::Verified { key_id } => key_id.clone(),
        other => panic!("expected a verified signature, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_anchor_catches_a_truncated_or_rolled_back_log() {
    intact_truncated_rolled_back_other_logs_and_forgeries(Fresh::postgres()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_anchor_catches_a_truncated_or_rolled_back_log() {
    intact_truncated_rolled_back_other_logs_and_forgeries(Fresh::nats()).await;
}

/// A TCP proxy on loopback to `target`, which refuses every connection (accepts and closes
/// it) until [`Proxy::up`].
struct Proxy {
    addr: String,
    up: Arc<AtomicBool>,
}

impl Proxy {
    async fn start(target: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let up = Arc::new(AtomicBool::new(false));
        let on = up.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else { return };
                if !on.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let target = target.clone();
                tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Self { addr, up }
    }

    fn up(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

/// `host:port` of a URL.
fn server_of(url: &str) -> String {
    let rest = url.split_once("://").unwrap().1;
    let authority = rest.split('/').next().unwrap();
    authority.rsplit_once('@').map_or(authority, |(_, a)| a).to_owned()
}

async fn unreachable_anchor_never_denies_and_catches_up(fresh: Fresh) {
    let real = match &fresh {
        Fresh::Postgres { url, .. } | Fresh::Nats { url, .. } => server_of(url),
    };
    let proxy = Proxy::start(real).await;
    let dir = tempfile::tempdir().unwrap();
    let (_keys, key_file, public) = key();
    let audit = format!(
        "audit:\n  type: jsonl\n  dir: audit\n  flush_interval: 0s\n  checkpoint_key_file: {}\n  \
         anchor: {{ {}, log_id: guard-1, interval: 0s }}\n",
        key_file.display(),
        fresh.yaml(&proxy.addr)
    );
    let (built, token) = logged_in_with_audit(dir.path(), &audit).await;

    // The anchor is down: every request is still decided as policy says, and recorded.
    for _ in 0..5 {
        assert!(built.guard.check(&token, Request::new(Action::tool_call("web_search"))).await.is_ok());
    }
    assert!(built.guard.check(&token, Request::new(Action::tool_call("shell"))).await.is_err());
    built.guard.audit_sink().flush().await.unwrap();
    let log = dir.path().join("audit");
    let local = verify(&log, Some(public.as_bytes())).unwrap();
    assert_eq!(local.checkpoint_seq, 7, "the login and six decisions, all kept");
    let store = fresh.store(None);
    let key_id = report_key_id(&local);
    assert!(store.entries("guard-1", &key_id).await.map_or(true, |e| e.is_empty()), "nothing got through");

    // Back: the newest checkpoint is published without any new request.
    proxy.up();
    let newest = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            if let Ok(entries) = store.entries("guard-1", &key_id).await
                && let Some(last) = entries.last()
                && last.seq == local.checkpoint_seq
            {
                return last.seq;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the anchor never caught up once its store was back");
    assert_eq!(newest, 7);
    let report = verify_anchored(&log, public.as_bytes(), store.as_ref(), "guard-1").await.unwrap();
    assert_eq!(report.anchor.unwrap().seq, 7);
    drop(built);
    fresh.remove().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_postgres_anchor_never_denies_and_catches_up() {
    unreachable_anchor_never_denies_and_catches_up(Fresh::postgres()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_nats_anchor_never_denies_and_catches_up() {
    unreachable_anchor_never_denies_and_catches_up(Fresh::nats()).await;
}
