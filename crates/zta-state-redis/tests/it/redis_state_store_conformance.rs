//! `RedisStateStore` passes the `StateStore` conformance suite (zta-testkit) against a real
//! Redis: one test per contract, and `run_all` so a check added to the suite later runs too.
//! Every check uses names under a fresh random prefix, so runs can share one Redis.

use crate::common;

use std::{future::Future, sync::Arc};

use zta_core::StateStore;
use zta_state_redis::RedisStateStore;
use zta_testkit::state;

/// Runs `check` on a fresh store under a prefix of its own, then deletes what it left.
async fn on_fresh_store<F: Future<Output = ()>>(name: &str, check: impl FnOnce(Arc<dyn StateStore>) -> F) {
    let config = common::config(name);
    let prefix = config.key_prefix.clone();
    check(Arc::new(common::connect(config).await)).await;
    common::clean(&prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revocation() {
    on_fresh_store("revocation", state::revocation).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn agent_revocation() {
    on_fresh_store("agent-revocation", state::agent_revocation).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn suspension() {
    on_fresh_store("suspension", state::suspension).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn token_revocation() {
    on_fresh_store("token-revocation", state::token_revocation).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lockout_counters() {
    on_fresh_store("lockout-counters", state::lockout_counters).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lockout_window_restarts() {
    on_fresh_store("lockout-window", state::lockout_window_restarts).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_failures() {
    on_fresh_store("concurrent-failures", state::concurrent_failures).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_time_ids() {
    on_fresh_store("one-time-ids", state::one_time_ids).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claims() {
    on_fresh_store("concurrent-claims", state::concurrent_claims).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn separate_key_spaces() {
    on_fresh_store("key-spaces", state::separate_key_spaces).await;
}

/// The whole suite, each check on a store of its own (built lazily: the first `connect`
/// showed the server is there) under one prefix.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn run_all() {
    let config = common::config("run-all");
    drop(common::connect(config.clone()).await);
    state::run_all(|| {
        let store = RedisStateStore::new(config.clone());
        Arc::new(store.unwrap_or_else(|e| panic!("building the store: {e}"))) as Arc<dyn StateStore>
    })
    .await;
    common::clean(&config.key_prefix).await;
}
