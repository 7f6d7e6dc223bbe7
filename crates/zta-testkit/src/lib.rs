//! Conformance suites for ZTA's backend traits: every backend runs the suite of the trait it
//! implements, so a Redis state store or a PostgreSQL audit sink is held to exactly the
//! behaviour the in-process implementations are.
//!
//! * [`state`] checks a [`StateStore`](zta_core::StateStore): revocations, agent-wide
//!   revocations, lockout counters (including 40 racing failures) and one-time ids (including
//!   racing claims of one id).
//! * [`audit`] checks an [`AuditSink`](zta_core::AuditSink) through a small [`AuditBackend`]
//!   trait that opens a sink on a fresh directory and reads back what it stored: records come
//!   back in order and intact, `Durability::Flushed` and `flush()` mean what they say, racing
//!   appenders lose and duplicate nothing, a closed sink refuses records.
//! * [`audit_source`] checks an [`AuditSource`](zta_core::AuditSource) reading what a sink
//!   stored: each query finds the records [`AuditQuery::matches`](zta_core::AuditQuery::matches)
//!   selects, the latest `limit` of them, oldest first, whole.
//! * [`identity`] checks an [`IdentityProvider`](zta_core::IdentityProvider) through an
//!   [`IdentityFixture`] that builds the provider and makes credentials for it: wrong kinds,
//!   malformed input, unknown agents (refused like wrong credentials), replays, the principal's
//!   fields, fail-closed on state-store errors, no secret in `Debug` or errors.
//! * [`token`] checks a [`TokenAuthority`](zta_core::TokenAuthority) through a
//!   [`TokenFixture`] that builds it on a [`ManualClock`]: round trip, tampering, expiry
//!   without sleeping, refresh reuse, revocation, fail-closed on state-store errors.
//! * [`policy`] checks a [`PolicyEngine`](zta_core::PolicyEngine) through a [`PolicyFixture`]
//!   that loads small [`Scenario`]s (written in the native language; another engine supplies
//!   its translation): default deny, absent attributes, determinism, digests.
//!
//! [`FailingStore`] is a memory store whose chosen operations fail on demand, for testing that
//! a caller of the [`StateStore`](zta_core::StateStore) fails closed when its store is down.
//!
//! A check is a plain `async fn` that fails by panicking (`assert!`), like a test. Each one is
//! public, so a backend's test file can give every check its own `#[tokio::test]` (a failure then
//! names the contract), and `run_all` runs them all. Run them on a **multi-thread** runtime: the
//! race checks assert that they are, since on one thread nothing really races.
//!
//! This crate exists only to be used from tests (as a dev-dependency), so it allows
//! `clippy::panic`, `unwrap_used` and `expect_used`: failing loudly is its job.
//!
//! # Running the state suite
//!
//! A backend's `tests/<backend>_conformance.rs` gives each check a test (this is what
//! `zta-core` does for [`MemoryStateStore`](zta_core::MemoryStateStore)):
//!
//! ```
//! use std::sync::Arc;
//! use zta_core::{MemoryStateStore, StateStore};
//! use zta_testkit::state;
//!
//! fn store() -> Arc<dyn StateStore> {
//!     Arc::new(MemoryStateStore::new())
//! }
//!
//! // In a test file:
//! // #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
//! // async fn revocation() { state::revocation(store()).await }
//! // ...one per check, or all at once:
//! # tokio::runtime::Builder::new_multi_thread().worker_threads(4).build().unwrap().block_on(async {
//! state::run_all(store).await;
//! # });
//! ```
//!
//! A store shared between runs (one Redis for the whole CI job) is fine: every check uses keys
//! under a fresh random prefix.
//!
//! # Running the audit suite
//!
//! Implement [`AuditBackend`] in the test file: how to open the sink on a directory, how to
//! close it, and how to read back what it durably stored.
//!
//! ```ignore
//! use std::{path::Path, sync::Arc};
//! use zta_audit_jsonl::{JsonlConfig, JsonlSink};
//! use zta_core::AuditRecord;
//! use zta_testkit::{AuditBackend, BackendError, audit};
//!
//! #[derive(Debug)]
//! struct Jsonl;
//!
//! #[async_trait::async_trait]
//! impl AuditBackend for Jsonl {
//!     type Sink = JsonlSink;
//!     async fn open(&self, dir: &Path) -> Result<Arc<JsonlSink>, BackendError> {
//!         Ok(Arc::new(JsonlSink::open(JsonlConfig::new(dir))?))
//!     }
//!     async fn close(&self, sink: Arc<JsonlSink>) -> Result<(), BackendError> {
//!         Ok(sink.close().await?)
//!     }
//!     async fn read_back(&self, dir: &Path) -> Result<Vec<AuditRecord>, BackendError> {
//!         todo!("parse the committed lines of the segment files in `dir`")
//!     }
//! }
//!
//! #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
//! async fn records_round_trip() {
//!     audit::rich_records_round_trip(&Jsonl).await
//! }
//! // ...one per check, or `audit::run_all(&Jsonl).await`.
//! ```
//!
//! A backend that keeps no files (PostgreSQL, NATS) still gets a fresh, empty directory per
//! check: use it as a unique namespace (a schema or stream name derived from its file name).

#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

pub mod audit;
pub mod audit_source;
mod failing;
pub mod identity;
pub mod policy;
pub mod state;
pub mod token;

pub use audit::{AuditBackend, BackendError};
pub use failing::{FailingStore, StateOp};
pub use identity::{Expected, IdentityFixture};
pub use policy::{PolicyFixture, Scenario};
pub use token::{ManualClock, TokenFixture};

use std::fmt::Display;

use time::OffsetDateTime;

/// `Ok`'s value, or a panic naming `what` failed and why.
#[track_caller]
fn must<T, E: Display>(what: &str, result: Result<T, E>) -> T {
    match result {
        Ok(value) => value,
        Err(e) => panic!("{what} failed: {e}"),
    }
}

/// Now, cut to whole microseconds: the finest time PostgreSQL keeps, so every backend can be
/// asked to give times back exactly.
fn now_micros() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now - time::Duration::nanoseconds(i64::from(now.nanosecond() % 1_000))
}

/// Asserts that the current Tokio runtime is multi-threaded, so the race checks race.
#[track_caller]
fn assert_multi_thread(check: &str) {
    let flavor = tokio::runtime::Handle::current().runtime_flavor();
    assert!(
        flavor == tokio::runtime::RuntimeFlavor::MultiThread,
        "`{check}` needs a multi-thread runtime to race for real: \
         use #[tokio::test(flavor = \"multi_thread\", worker_threads = 4)]"
    );
}
