//! With `cluster: true`, `RedisStateStore` passes the `StateStore` conformance suite
//! (zta-testkit) against a Redis Cluster of three primaries that the test starts on loopback:
//! the suite's random keys spread over every node, and no command or script of the store
//! spans two slots (the cluster would refuse it with `CROSSSLOT`).

use std::{sync::Arc, time::Duration};

use zta_core::StateStore;
use zta_state_redis::{RedisConfig, RedisStateStore};
use zta_testkit::state;

use crate::common::cluster::TestCluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_conformance_suite_passes_on_a_three_node_cluster() {
    let cluster = TestCluster::start().await;
    let config = RedisConfig::new(cluster.seed_url()).with_cluster(true).with_timeout(Duration::from_secs(5));
    if let Err(e) = RedisStateStore::connect(config.clone()).await {
        panic!("connecting to the test cluster at {}: {e}", cluster.seed_url());
    }
    state::run_all(|| {
        let store = RedisStateStore::new(config.clone());
        Arc::new(store.unwrap_or_else(|e| panic!("building the store: {e}"))) as Arc<dyn StateStore>
    })
    .await;
}
