//! `RedisStateStore` passes the `StateStore` conformance suite (zta-testkit) against a real
//! Redis: one test per contract, and `run_all` so a check added to the suite later runs too.
//! Every check uses names under a fresh random prefix, so runs can share one Redis.

mod common;

use std::sync::Arc;

use zta_core::StateStore;
use zta_state_redis::RedisStateStore;
use zta_testkit::state;

async fn store(check: &str) -> Arc<dyn StateStore> {
    Arc::new(common::connect(common::config(check)).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revocation() {
    state::revocation(store("revocation").await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn agent_revocation() {
    state::agent_revocation(store("agent-revocation").await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn suspension() {
    state::suspension(store("suspension").await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn token_revocation() {
    state::token_revocation(store("token-revocation").await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lockout_counters() {
    state::lockout_counters(store("lockout-counters").await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lockout_window_restarts() {
    state::lockout_window_restarts(store("lockout-window").await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_failures() {
    state::concurrent_failures(store("concurrent-failures").await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_time_ids() {
    state::one_time_ids(store("one-time-ids").await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claims() {
    state::concurrent_claims(store("concurrent-claims").await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn separate_key_spaces() {
    state::separate_key_spaces(store("key-spaces").await).await;
}

/// The whole suite, each check on a store of its own (built lazily: the first `connect`
/// showed the server is there).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn run_all() {
    drop(store("run-all").await);
    state::run_all(|| {
        let store = RedisStateStore::new(common::config("run-all"));
        Arc::new(store.unwrap_or_else(|e| panic!("building the store: {e}"))) as Arc<dyn StateStore>
    })
    .await;
}
