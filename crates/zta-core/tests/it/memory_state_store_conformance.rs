//! `MemoryStateStore` passes the `StateStore` conformance suite (zta-testkit), one test per
//! contract.

use std::sync::Arc;

use zta_core::{MemoryStateStore, StateStore};
use zta_testkit::state;

fn store() -> Arc<dyn StateStore> {
    Arc::new(MemoryStateStore::new())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revocation() {
    state::revocation(store()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn agent_revocation() {
    state::agent_revocation(store()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lockout_counters() {
    state::lockout_counters(store()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lockout_window_restarts() {
    state::lockout_window_restarts(store()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_failures() {
    state::concurrent_failures(store()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_time_ids() {
    state::one_time_ids(store()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claims() {
    state::concurrent_claims(store()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn separate_key_spaces() {
    state::separate_key_spaces(store()).await;
}

/// One store for every check, as a store shared between replicas (and test runs) would be.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn all_checks_on_one_shared_store() {
    let shared = store();
    state::run_all(|| shared.clone()).await;
}
