//! The [`AuditSink`] conformance suite.
//!
//! An audit sink is only as good as what can be read back from it, so the suite drives a sink
//! through an [`AuditBackend`]: the backend opens a sink on a fresh directory, closes it, and
//! reads back the records it durably stored there. Every check gets its own temporary
//! directory. The records it writes have times in whole microseconds (the finest PostgreSQL
//! keeps) and must come back equal in every field.

use std::{
    collections::{HashMap, HashSet},
    path::Path,
    sync::Arc,
};

use async_trait::async_trait;
use serde_json::json;
use time::OffsetDateTime;
use tokio::sync::Barrier;
use uuid::Uuid;
use zta_core::{
    Action, AgentId, AuditEvent, AuditRecord, AuditSink, AuthMethod, Basis, Decision, Determining,
    Durability, Effect, PolicyDigest, Resource,
};

use crate::{assert_multi_thread, must, now_micros};

/// The error a backend's hooks may return; the suite fails the check with it.
pub type BackendError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Concurrent appending tasks in [`concurrent_appenders_lose_nothing`].
pub const APPENDERS: usize = 32;

/// Records each task appends in [`concurrent_appenders_lose_nothing`].
pub const RECORDS_PER_APPENDER: usize = 50;

/// How the audit suite opens, closes and reads one backend.
///
/// `dir` is a fresh, empty directory per check (the same one for every open, close and read of
/// that check). A backend that keeps no files uses it as a unique namespace, e.g. a table or
/// stream named after its file name.
#[async_trait]
pub trait AuditBackend: Send + Sync {
    /// The sink type. The suite uses it only through [`AuditSink`], plus [`close`](Self::close).
    type Sink: AuditSink;

    /// Opens (or reopens) a sink that stores in `dir`. Reopening must keep what is there and
    /// append after it.
    async fn open(&self, dir: &Path) -> Result<Arc<Self::Sink>, BackendError>;

    /// Closes `sink`: commits everything it took, stops it, and releases `dir`. After this,
    /// `append` on the sink must fail. The suite may still hold other clones of the `Arc`.
    async fn close(&self, sink: Arc<Self::Sink>) -> Result<(), BackendError>;

    /// Every record durably stored in `dir`, in stored order, each as appended. Called only while
    /// no append is in flight, but possibly while a sink is open on `dir`. Return only what would
    /// survive a crash (e.g. up to the last commit): the durability checks are only as sharp as
    /// that. Check what you can on the way (a JSON Lines backend verifies its hash chain).
    async fn read_back(&self, dir: &Path) -> Result<Vec<AuditRecord>, BackendError>;
}

/// Runs every check of this module against `backend`.
///
/// Needs a multi-thread runtime (see the [crate docs](crate)).
pub async fn run_all<B: AuditBackend>(backend: &B) {
    rich_records_round_trip(backend).await;
    minimal_records_round_trip(backend).await;
    hostile_text_round_trips(backend).await;
    flushed_append_is_readable_at_once(backend).await;
    flush_makes_queued_records_readable(backend).await;
    concurrent_appenders_lose_nothing(backend).await;
    reopen_appends_after_earlier_records(backend).await;
    closed_sink_refuses_appends(backend).await;
}

/// A typical authorization record, the `i`th of a run (its resource id is `doc-<i>`): what the
/// audit sinks' throughput benchmarks append.
pub fn typical_record(i: u64) -> AuditRecord {
    let mut determining = Determining::new();
    determining.push(Arc::from("allow-research-tools"));
    let decision = Decision::new(Basis::Permitted, determining, PolicyDigest([7; 32]));
    let mut r = AuditRecord::new(AuditEvent::Authorization, Effect::Allow);
    r.note_decision(&decision);
    r.agent_id = AgentId::new("research-agent-7").ok();
    r.auth_method = Some(AuthMethod::AgentKey);
    r.on_behalf_of = vec!["alice@example.com".into()];
    r.action = Some(Action::tool_call("web_search"));
    r.resource = Some(Resource::new("document", format!("doc-{i}")));
    r.latency_us = Some(42);
    r
}

/// Records with every field set, in every variant: each [`AuditEvent`], [`Basis`] (so both
/// effects), [`AuthMethod`] and action kind; delegation chains, several determining rules,
/// resource attributes, detail maps with nested objects, arrays, `null`, booleans, `u64::MAX`,
/// `i64::MIN` and a float; non-ASCII text; times from the Unix epoch to the year 9999.
pub fn rich_records() -> Vec<AuditRecord> {
    let events = AuditEvent::ALL;
    let bases = [Basis::Permitted, Basis::ExplicitDeny, Basis::DefaultDeny, Basis::FailClosed];
    let methods = [
        AuthMethod::AgentKey,
        AuthMethod::AgentSecret,
        AuthMethod::SessionToken,
        AuthMethod::Oidc,
        AuthMethod::Ldap,
    ];
    let actions = [
        Action::tool_call("web_search"),
        Action::message("chat"),
        Action::task("summarize"),
        Action::handoff("review"),
        Action::delegation("read:documents"),
        Action::custom("godkänn_ärende").expect("not a built-in verb"),
    ];
    let now = now_micros();
    let times = [
        now,
        OffsetDateTime::UNIX_EPOCH + time::Duration::microseconds(1),
        time::macros::datetime!(9999-12-31 23:59:59.999999 UTC),
        now - time::Duration::days(400),
    ];
    let n = events.len() * 2;
    (0..n)
        .map(|i| {
            let pick = |len: usize| i % len;
            let basis = bases.get(pick(bases.len())).copied().unwrap_or(Basis::Permitted);
            let mut determining = Determining::new();
            determining.push(Arc::from(format!("rule-{i}")));
            determining.push(Arc::from("räumliche-regel ✓"));
            let decision =
                Decision::new(basis, determining, PolicyDigest([u8::try_from(i).unwrap_or(0xff); 32]));
            let event = events.get(pick(events.len())).copied().unwrap_or(AuditEvent::Admin);
            let mut r = AuditRecord::new(event, basis.effect())
                .with_reason(format!("reason {i}: ünïcødé 日本語 🚀 \"quoted\" back\\slash"))
                .with_detail("i", i)
                .with_detail("big", u64::MAX)
                .with_detail("negative", i64::MIN)
                .with_detail("float", 1.5)
                .with_detail("flag", i % 2 == 0)
                .with_detail("nothing", serde_json::Value::Null)
                .with_detail("list", json!([1, "two", {"three": 3}, [], {}]))
                .with_detail(
                    "nested",
                    json!({"a": {"b": {"c": ["deep", i]}}, "old": "sha256:00", "new": "sha256:ff"}),
                )
                .with_detail("ключ ✓", "значение 漢字");
            r.note_decision(&decision);
            r.time = times.get(pick(times.len())).copied().unwrap_or(now);
            r.agent_id =
                Some(must("AgentId::new", AgentId::new(format!("research-agent-{i}@tenant.example:prod_1"))));
            r.auth_method = methods.get(pick(methods.len())).copied();
            r.on_behalf_of =
                vec!["alice@example.com".into(), "ünïcødé-user".into(), format!("agent:planner-{i}")];
            r.action = actions.get(pick(actions.len())).cloned();
            r.resource = Some(
                Resource::new("document", format!("doc-{i}/ä ö"))
                    .with_attribute("classification", "secret")
                    .with_attribute("tags", json!(["a", "b"]))
                    .with_attribute("owner", json!({"team": "r&d", "since": 2021})),
            );
            r.target_agent = Some(must("AgentId::new", AgentId::new(format!("writer-{i}"))));
            r.latency_us = Some(if i == 0 { u64::MAX } else { 42 + i as u64 });
            r
        })
        .collect()
}

/// Records with as little as a record can have: [`AuditRecord::new`] for every event and
/// effect; then records whose optional fields are present but empty (`Some("")`, an empty
/// resource, a `""` delegation entry and rule, a `""` detail key, latency 0), which a backend
/// must not turn into absent ones.
pub fn minimal_records() -> Vec<AuditRecord> {
    let events = AuditEvent::ALL;
    let mut out: Vec<AuditRecord> = events
        .iter()
        .flat_map(|&e| [Effect::Allow, Effect::Deny].map(|effect| stamped(AuditRecord::new(e, effect))))
        .collect();
    let mut empty =
        stamped(AuditRecord::new(AuditEvent::Admin, Effect::Deny).with_reason("").with_detail("", ""));
    empty.on_behalf_of = vec![String::new()];
    empty.action = Some(Action::custom("").expect("not a built-in verb"));
    empty.resource = Some(Resource::new("", ""));
    empty.determining = [Arc::from("")].into_iter().collect();
    empty.basis = Some(Basis::DefaultDeny);
    empty.policy_digest = Some(PolicyDigest([0; 32]));
    empty.latency_us = Some(0);
    out.push(empty);
    out.push(stamped(AuditRecord::new(AuditEvent::Admin, Effect::Allow).with_detail("empty", json!({}))));
    out
}

/// Text an attacker may control, in every string field: NUL and other control characters,
/// newlines (including U+2028/U+2029), quotes and backslashes, text that looks like the JSON
/// Lines framing, bidi overrides, combining marks, emoji sequences, a BOM and U+FFFF; and one
/// record with a 256 KiB reason. A backend must store it verbatim or refuse it, never alter it.
pub fn hostile_records() -> Vec<AuditRecord> {
    let texts = [
        "\0",
        "nul \0 in the middle\0",
        "line\nbreak\r\ncarriage\rtab\t",
        "\u{2028}line separator\u{2029}",
        "\u{7f}\u{1b}[31mred\u{1b}[0m \u{7}",
        "\"},{\"seq\":1,\"prev_hash\":\"0\",\"hash\":\"0\",\"record\":{",
        "\\\\ \\\" \\u0000 \\n",
        "\u{202e}desrever\u{202c}",
        "e\u{301} a\u{30a}",
        "🚀 👩\u{200d}👩\u{200d}👧 🏳\u{fe0f}\u{200d}🌈",
        "\u{feff}bom",
        "\u{ffff}\u{fffd}",
        "' OR 1=1; --",
        "${jndi:ldap://x}",
    ];
    let mut out: Vec<AuditRecord> = texts
        .iter()
        .map(|&t| {
            let mut r = stamped(
                AuditRecord::new(AuditEvent::Authorization, Effect::Deny)
                    .with_reason(t)
                    .with_detail(t, t)
                    .with_detail("nested", json!({ t: [t] })),
            );
            r.on_behalf_of = vec![t.to_owned()];
            r.action = Some(Action::custom(t).expect("not a built-in verb"));
            r.resource = Some(Resource::new(t, t).with_attribute(t, t));
            r.determining = [Arc::from(t)].into_iter().collect();
            r
        })
        .collect();
    let long: String = "ünïcødé 日本語 🚀 \n".chars().cycle().take(256 * 1024 / 2).collect();
    out.push(stamped(AuditRecord::new(AuditEvent::Admin, Effect::Allow).with_reason(long)));
    out
}

/// [`rich_records`] appended (one in three `Flushed`, the rest `Queued`) and the sink closed:
/// they come back in order, every field intact.
pub async fn rich_records_round_trip<B: AuditBackend>(backend: &B) {
    round_trip(backend, rich_records(), "rich records").await;
}

/// [`minimal_records`] round-trip: absent fields stay absent and empty ones stay empty.
pub async fn minimal_records_round_trip<B: AuditBackend>(backend: &B) {
    round_trip(backend, minimal_records(), "minimal records").await;
}

/// [`hostile_records`] round-trip verbatim.
pub async fn hostile_text_round_trips<B: AuditBackend>(backend: &B) {
    round_trip(backend, hostile_records(), "records with hostile text").await;
}

async fn round_trip<B: AuditBackend>(backend: &B, records: Vec<AuditRecord>, what: &str) {
    let dir = tempdir();
    let sink = must("open", backend.open(dir.path()).await);
    for (i, r) in records.iter().enumerate() {
        let durability = if i % 3 == 0 { Durability::Flushed } else { Durability::Queued };
        must("append", sink.append(r.clone(), durability).await);
    }
    must("close", backend.close(sink).await);
    let back = must("read_back", backend.read_back(dir.path()).await);
    assert_records(&back, &records, &format!("{what}, read back after close"));
}

/// A `Durability::Flushed` append is in `read_back` as soon as it returns (with the sink still
/// open and nothing else asking for a commit), each time.
pub async fn flushed_append_is_readable_at_once<B: AuditBackend>(backend: &B) {
    let dir = tempdir();
    let records = rich_records();
    let sink = must("open", backend.open(dir.path()).await);
    for (n, r) in records.iter().take(4).enumerate() {
        must("append (Flushed)", sink.append(r.clone(), Durability::Flushed).await);
        let back = must("read_back", backend.read_back(dir.path()).await);
        assert_records(
            &back,
            records.get(..=n).unwrap_or_default(),
            "read back right after a Flushed append returned (sink still open)",
        );
    }
    must("close", backend.close(sink).await);
}

/// `flush()` on a sink that took nothing succeeds; after `Queued` appends, `flush()` makes all
/// of them readable (sink still open), in order; again for a second batch.
pub async fn flush_makes_queued_records_readable<B: AuditBackend>(backend: &B) {
    let dir = tempdir();
    let records: Vec<AuditRecord> = (0..250).map(numbered).collect();
    let sink = must("open", backend.open(dir.path()).await);
    must("flush of an empty sink", sink.flush().await);
    for (end, when) in [(200, "first"), (250, "second")] {
        let start = if end == 200 { 0 } else { 200 };
        for r in records.get(start..end).unwrap_or_default() {
            must("append (Queued)", sink.append(r.clone(), Durability::Queued).await);
        }
        must("flush", sink.flush().await);
        let back = must("read_back", backend.read_back(dir.path()).await);
        assert_records(
            &back,
            records.get(..end).unwrap_or_default(),
            &format!(
                "read back right after flush() returned, {when} batch of Queued appends (sink still open)"
            ),
        );
    }
    must("close", backend.close(sink).await);
}

/// [`APPENDERS`] tasks race to append [`RECORDS_PER_APPENDER`] records each (every tenth
/// `Flushed`): after `flush()`, and again after close, exactly those records are stored, none
/// lost, none duplicated, each intact, each task's records in the order it appended them.
/// Needs a multi-thread runtime.
pub async fn concurrent_appenders_lose_nothing<B: AuditBackend>(backend: &B) {
    assert_multi_thread("concurrent_appenders_lose_nothing");
    let dir = tempdir();
    let sink = must("open", backend.open(dir.path()).await);
    let start = Arc::new(Barrier::new(APPENDERS));
    let tasks: Vec<_> = (0..APPENDERS)
        .map(|task| {
            let (sink, start) = (sink.clone(), start.clone());
            tokio::spawn(async move {
                let records: Vec<AuditRecord> = (0..RECORDS_PER_APPENDER)
                    .map(|i| {
                        stamped(
                            AuditRecord::new(AuditEvent::Authorization, Effect::Allow)
                                .with_detail("task", task)
                                .with_detail("i", i),
                        )
                    })
                    .collect();
                start.wait().await;
                for (i, r) in records.iter().enumerate() {
                    let durability = if i % 10 == 9 { Durability::Flushed } else { Durability::Queued };
                    sink.append(r.clone(), durability).await?;
                }
                Ok::<_, zta_core::AuditError>(records)
            })
        })
        .collect();
    let mut sent = Vec::with_capacity(APPENDERS);
    for task in tasks {
        sent.push(must("append", must("appender task", task.await)));
    }
    must("flush", sink.flush().await);
    check_concurrent(&must("read_back", backend.read_back(dir.path()).await), &sent, "after flush()");
    must("close", backend.close(sink).await);
    check_concurrent(&must("read_back", backend.read_back(dir.path()).await), &sent, "after close");
}

fn check_concurrent(back: &[AuditRecord], sent: &[Vec<AuditRecord>], when: &str) {
    let total: usize = sent.iter().map(Vec::len).sum();
    let mut seen = HashSet::with_capacity(back.len());
    let duplicated: Vec<Uuid> = back.iter().filter(|r| !seen.insert(r.id)).map(|r| r.id).collect();
    assert!(
        duplicated.is_empty(),
        "{when}: {} records stored twice, e.g. {:?}",
        duplicated.len(),
        duplicated.first()
    );
    let by_id: HashMap<Uuid, &AuditRecord> = back.iter().map(|r| (r.id, r)).collect();
    let lost: Vec<Uuid> =
        sent.iter().flatten().filter(|r| !by_id.contains_key(&r.id)).map(|r| r.id).collect();
    assert!(lost.is_empty(), "{when}: {} of {total} records lost, e.g. {:?}", lost.len(), lost.first());
    assert_eq!(back.len(), total, "{when}: records stored that nobody appended");
    let position: HashMap<Uuid, usize> = back.iter().enumerate().map(|(i, r)| (r.id, i)).collect();
    for (task, records) in sent.iter().enumerate() {
        for r in records {
            assert_eq!(
                by_id.get(&r.id).copied(),
                Some(r),
                "{when}: a record of task {task} came back different"
            );
        }
        let order: Vec<usize> = records.iter().filter_map(|r| position.get(&r.id).copied()).collect();
        assert!(
            order.windows(2).all(|w| matches!(w, [a, b] if a < b)),
            "{when}: task {task} appended its records one after another, but they are stored out of order"
        );
    }
}

/// A sink opened again on the same directory keeps the earlier records and appends after them.
pub async fn reopen_appends_after_earlier_records<B: AuditBackend>(backend: &B) {
    let dir = tempdir();
    let records: Vec<AuditRecord> = (0..6).map(numbered).collect();
    for half in [records.get(..3), records.get(3..)] {
        let sink = must("open", backend.open(dir.path()).await);
        for r in half.unwrap_or_default() {
            must("append", sink.append(r.clone(), Durability::Queued).await);
        }
        must("close", backend.close(sink).await);
    }
    let back = must("read_back", backend.read_back(dir.path()).await);
    assert_records(&back, &records, "read back after two open-append-close rounds on one directory");
}

/// After close, `append` (either durability) fails instead of taking a record it would never
/// store, and nothing appended after close is stored.
pub async fn closed_sink_refuses_appends<B: AuditBackend>(backend: &B) {
    let dir = tempdir();
    let records: Vec<AuditRecord> = (0..3).map(numbered).collect();
    let sink = must("open", backend.open(dir.path()).await);
    let Some((first, late)) = records.split_first() else { return };
    must("append", sink.append(first.clone(), Durability::Flushed).await);
    must("close", backend.close(sink.clone()).await);
    for (r, durability) in late.iter().zip([Durability::Queued, Durability::Flushed]) {
        assert!(
            sink.append(r.clone(), durability).await.is_err(),
            "a closed sink accepted a record ({durability:?}) it will never store"
        );
    }
    drop(sink);
    let back = must("read_back", backend.read_back(dir.path()).await);
    assert_records(&back, std::slice::from_ref(first), "read back after appends to a closed sink");
}

/// An authorization record numbered `i` (in its detail and resource id).
fn numbered(i: usize) -> AuditRecord {
    let mut r = stamped(AuditRecord::new(AuditEvent::Authorization, Effect::Allow).with_detail("i", i));
    r.resource = Some(Resource::new("document", format!("doc-{i}")));
    r
}

/// `r` with its time cut to whole microseconds.
fn stamped(mut r: AuditRecord) -> AuditRecord {
    r.time = now_micros();
    r
}

fn tempdir() -> tempfile::TempDir {
    must("create a temporary directory", tempfile::Builder::new().prefix("zta-testkit-audit-").tempdir())
}

/// Asserts `got` is `want`: first the ids in order (naming lost, extra and reordered records),
/// then each record field by field.
#[track_caller]
fn assert_records(got: &[AuditRecord], want: &[AuditRecord], when: &str) {
    let got_ids: Vec<Uuid> = got.iter().map(|r| r.id).collect();
    let want_ids: Vec<Uuid> = want.iter().map(|r| r.id).collect();
    if got_ids != want_ids {
        let (got_set, want_set): (HashSet<Uuid>, HashSet<Uuid>) =
            (got_ids.iter().copied().collect(), want_ids.iter().copied().collect());
        let missing: Vec<Uuid> = want_ids.iter().filter(|id| !got_set.contains(id)).copied().collect();
        let mut seen = HashSet::new();
        let extra: Vec<Uuid> =
            got_ids.iter().filter(|id| !want_set.contains(id) || !seen.insert(**id)).copied().collect();
        panic!(
            "{when}: got {} records, want {}; {} missing {}; {} unexpected or duplicated {}{}",
            got.len(),
            want.len(),
            missing.len(),
            first_few(&missing),
            extra.len(),
            first_few(&extra),
            if missing.is_empty() && extra.is_empty() { "; the same records in another order" } else { "" }
        );
    }
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g, w, "{when}: record {i} ({}) came back different", w.id);
    }
}

/// Up to five ids, for a failure message.
fn first_few(ids: &[Uuid]) -> String {
    let shown: Vec<String> = ids.iter().take(5).map(Uuid::to_string).collect();
    let more = if ids.len() > 5 { ", ..." } else { "" };
    format!("[{}{more}]", shown.join(", "))
}
