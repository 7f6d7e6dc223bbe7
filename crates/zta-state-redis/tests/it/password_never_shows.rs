//! The password in a Redis URL never shows: not in `Debug` of the config or the store, not in
//! a connection error, not in a `StateError`. On a cluster, the seed URL's password logs in to
//! every node.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::time::Duration;

use zta_core::StateStore;
use zta_state_redis::{RedisConfig, RedisStateStore};

const PASSWORD: &str = "Sup3r-Secret-Pa55";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_and_errors_hide_the_password_of_an_unreachable_server() {
    let url = format!("redis://zta:{PASSWORD}@127.0.0.1:{}/0", common::closed_port());
    let config = RedisConfig::new(url).with_timeout(Duration::from_millis(300));
    let shown = format!("{config:?}");
    assert!(!shown.contains(PASSWORD) && shown.contains("redis://***@127.0.0.1:"), "{shown}");

    let store = RedisStateStore::new(config.clone()).unwrap();
    let shown = format!("{store:?}");
    assert!(!shown.contains(PASSWORD) && shown.contains("127.0.0.1"), "{shown}");
    let err = store.failures("k").await.unwrap_err();
    assert!(!format!("{err} {err:?}").contains(PASSWORD), "{err}");

    let err = RedisStateStore::connect(config).await.unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains(PASSWORD) && shown.contains("redis://***@127.0.0.1:"), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_refused_without_showing_it() {
    let prefix = common::unique_prefix("password");
    let user = common::TestUser::create(&mut common::admin().await, &prefix).await;
    let config = |password: &str| {
        RedisConfig::new(user.url_with(password))
            .with_key_prefix(&prefix)
            .with_timeout(Duration::from_secs(5))
    };

    // The right password works (so the refusal below is about the password).
    let store = common::connect(config(&user.password)).await;
    assert!(!format!("{store:?}").contains(&user.password));
    assert!(matches!(store.add_failure("k", Duration::from_secs(60)).await, Ok(1)));

    let wrong = format!("{PASSWORD}-{}", user.name);
    let err = RedisStateStore::connect(config(&wrong)).await.unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains(&wrong) && !shown.contains(PASSWORD), "{shown}");
    assert!(shown.contains("***@"), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_is_reached_on_every_node_with_the_seed_urls_password() {
    let cluster = crate::common::cluster::TestCluster::start_with_password(Some(PASSWORD)).await;
    let config = |url: String| RedisConfig::new(url).with_cluster(true).with_timeout(Duration::from_secs(5));
    let store = RedisStateStore::connect(config(cluster.seed_url())).await.unwrap();
    assert!(!format!("{store:?}").contains(PASSWORD));
    store.ready().await.unwrap();
    let until = time::OffsetDateTime::now_utc() + time::Duration::minutes(5);
    for node in 0..3 {
        let id = (0..10_000)
            .map(|n| format!("claim-{n}"))
            .find(|id| cluster.node_of(&format!("zta:claimed:{id}")) == node)
            .unwrap();
        assert!(store.claim_once(&id, until).await.unwrap(), "a claim on node {node}");
        assert!(cluster.holds(node, &format!("zta:claimed:{id}")));
    }

    let wrong = cluster.seed_url().replace(PASSWORD, "Wr0ng-Pa55");
    let err = RedisStateStore::connect(config(wrong)).await.unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("Wr0ng-Pa55") && !shown.contains(PASSWORD), "{shown}");
    assert!(shown.contains("redis://***@127.0.0.1:"), "{shown}");
}
