//! When the cluster moves a slot to another node (a resharding), the store follows: its next
//! command on a key of that slot is answered `MOVED` by the old node, goes to the new one, and
//! reads what was written before the move. A token revoked before the move stays revoked, and
//! a claim made before it is still a replay.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use time::OffsetDateTime;
use zta_core::{AgentId, StateStore};
use zta_state_redis::{RedisConfig, RedisStateStore};

use crate::common::cluster::TestCluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_and_a_claim_survive_their_slot_moving_to_another_node() {
    let cluster = TestCluster::start().await;
    let config = RedisConfig::new(cluster.seed_url())
        .with_cluster(true)
        .with_key_prefix("zta:")
        .with_timeout(Duration::from_secs(2));
    let store = RedisStateStore::connect(config).await.unwrap();
    let agent = AgentId::new("research_bot").unwrap();
    let now = OffsetDateTime::now_utc();
    let until = now + time::Duration::minutes(5);

    store.revoke("jti-1", until).await.unwrap();
    assert!(store.claim_once("assertion-1", until).await.unwrap());
    assert!(store.standing(&["jti-1"], &agent, now).await.unwrap().revoked);

    for key in ["zta:revoked:jti-1", "zta:claimed:assertion-1"] {
        let from = cluster.node_of(key);
        let to = (from + 1) % 3;
        cluster.move_slot_of(key, to);
        assert!(cluster.holds(to, key) && !cluster.holds(from, key), "{key} moved to node {to}");
    }

    assert!(store.standing(&["jti-1"], &agent, now).await.unwrap().revoked, "revoked after the move");
    assert!(!store.claim_once("assertion-1", until).await.unwrap(), "a replay after the move");
    assert!(!store.standing(&["jti-2"], &agent, now).await.unwrap().revoked);
}
