//! A Redis Cluster that cannot be reached fails closed: `connect` to a dead seed is an error,
//! and while every node is down each operation of a store already in use is an "unavailable"
//! `StateError` (never a "not revoked" or "not suspended"). When the nodes are back the same
//! store works again, without being rebuilt, and so does one built while they were down.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use time::OffsetDateTime;
use zta_core::{AgentId, StateError, StateStore};
use zta_state_redis::{Error, RedisConfig, RedisStateStore};

use crate::common::{
    self,
    cluster::{TestCluster, eventually},
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_to_a_dead_seed_is_an_error() {
    let url = format!("redis://127.0.0.1:{}/", common::closed_port());
    let config = RedisConfig::new(url).with_cluster(true).with_timeout(Duration::from_millis(500));
    let err = RedisStateStore::connect(config).await.unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert!(err.to_string().starts_with("cannot reach redis at `redis://127.0.0.1:"), "{err}");
}

#[tokio::test]
async fn a_cluster_has_only_database_zero() {
    let err =
        RedisStateStore::new(RedisConfig::new("redis://127.0.0.1:7000/1").with_cluster(true)).unwrap_err();
    assert!(matches!(&err, Error::Config { field: "url", .. }), "{err:?}");
    assert!(RedisStateStore::new(RedisConfig::new("redis://127.0.0.1:7000/0").with_cluster(true)).is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_fails_while_the_cluster_is_down_and_works_when_it_is_back() {
    let mut cluster = TestCluster::start().await;
    let config = RedisConfig::new(cluster.seed_url()).with_cluster(true).with_timeout(Duration::from_secs(1));
    let store = RedisStateStore::connect(config).await.unwrap();
    let agent = AgentId::new("research_bot").unwrap();
    store.suspend(&agent).await.unwrap();
    assert!(store.is_suspended(&agent).await.unwrap());

    for node in 0..3 {
        cluster.stop(node);
    }
    // A store built (without connecting) while the cluster is down.
    let config = RedisConfig::new(cluster.seed_url()).with_cluster(true).with_timeout(Duration::from_secs(1));
    let built_while_down = RedisStateStore::new(config).unwrap();
    let err = built_while_down.is_suspended(&agent).await.unwrap_err();
    assert!(matches!(err, StateError::Unavailable { .. }), "{err:?}");
    let until = OffsetDateTime::now_utc() + time::Duration::minutes(5);
    let window = Duration::from_secs(60);
    let errors = [
        store.revoke("jti", until).await.err(),
        store.revoke_agent(&agent, until).await.err(),
        store.suspend(&agent).await.err(),
        store.reinstate(&agent).await.err(),
        store.is_suspended(&agent).await.err(),
        store.standing(&["jti", "family"], &agent, until).await.err(),
        store.standing(&[], &agent, until).await.err(),
        store.add_failure("agent", window).await.err(),
        store.failures("agent").await.err(),
        store.clear_failures("agent").await.err(),
        store.claim_once("jti", until).await.err(),
        store.ready().await.err(),
    ];
    for (i, error) in errors.iter().enumerate() {
        let error = error.as_ref().unwrap_or_else(|| panic!("operation {i} succeeded with every node down"));
        assert!(
            matches!(error, StateError::Unavailable { detail, .. } if detail.starts_with("redis ")),
            "operation {i}: {error:?}"
        );
    }

    for node in 0..3 {
        cluster.restart(node).await;
    }
    cluster.wait_until_ok().await;
    // The nodes come back empty (the test cluster persists nothing); what matters is that the
    // store answers again and writes and reads what it writes.
    eventually("the store answers again", || async { store.ready().await.ok() }).await;
    eventually("a suspension is written again", || async { store.suspend(&agent).await.ok() }).await;
    let standing = store.standing(&["jti", "family"], &agent, until).await.unwrap();
    assert!(standing.suspended && !standing.revoked, "{standing:?}");
    assert!(store.claim_once("jti", until).await.unwrap());
    assert!(!store.claim_once("jti", until).await.unwrap());
    let suspended = eventually("the store built while down answers", || async {
        built_while_down.is_suspended(&agent).await.ok()
    })
    .await;
    assert!(suspended, "it reads what the other store wrote");
}
