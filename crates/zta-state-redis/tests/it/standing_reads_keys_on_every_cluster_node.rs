//! On a Redis Cluster, an agent's keys share one slot and a token's keys lie in slots of their
//! own: with the agent's keys on one node, the token id's on a second and the family's on a
//! third, each key is where the store expects it and `standing` reads all three nodes and
//! answers right. A token whose key lives on a stopped node is not taken as unrevoked: its
//! `standing` fails (the request is denied) while the other nodes keep answering for theirs,
//! and it answers again once the node is back.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use time::OffsetDateTime;
use zta_core::{AgentId, StateError, StateStore};
use zta_state_redis::{RedisConfig, RedisStateStore};

use crate::common::cluster::{TestCluster, eventually};

const PREFIX: &str = "zta:";

/// The first of `name-0`, `name-1`, ... whose key (`key(name)`) lies on node `node`.
fn name_on(cluster: &TestCluster, node: usize, name: &str, key: impl Fn(&str) -> String) -> String {
    (0..10_000)
        .map(|n| format!("{name}-{n}"))
        .find(|candidate| cluster.node_of(&key(candidate)) == node)
        .unwrap_or_else(|| panic!("no `{name}-n` on node {node}"))
}

fn revoked_key(key: &str) -> String {
    format!("{PREFIX}revoked:{key}")
}

fn agent_key(agent: &str, what: &str) -> String {
    format!("{PREFIX}agent:{{{agent}}}:{what}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standing_reads_the_agent_and_token_keys_on_three_nodes() {
    let mut cluster = TestCluster::start().await;
    let config = RedisConfig::new(cluster.seed_url())
        .with_cluster(true)
        .with_key_prefix(PREFIX)
        .with_timeout(Duration::from_secs(2));
    let store = RedisStateStore::connect(config).await.unwrap();

    let agent_name = name_on(&cluster, 0, "agent", |a| agent_key(a, "suspended"));
    let jti = name_on(&cluster, 1, "jti", revoked_key);
    let family = name_on(&cluster, 2, "family", revoked_key);
    let agent = AgentId::new(&agent_name).unwrap();
    let now = OffsetDateTime::now_utc();
    let until = now + time::Duration::minutes(5);
    let token = [jti.as_str(), family.as_str()];

    let standing = store.standing(&token, &agent, now).await.unwrap();
    assert!(!standing.revoked && !standing.suspended, "{standing:?}");

    // The token id's revocation: on the second node only, and it revokes the token.
    store.revoke(&jti, until).await.unwrap();
    assert!(cluster.holds(1, &revoked_key(&jti)));
    assert!(!cluster.holds(0, &revoked_key(&jti)) && !cluster.holds(2, &revoked_key(&jti)));
    assert!(store.standing(&token, &agent, now).await.unwrap().revoked);
    assert!(!store.standing(&[&family], &agent, now).await.unwrap().revoked);

    // The family's: on the third node, and it revokes every token of the family.
    store.revoke(&family, until).await.unwrap();
    assert!(cluster.holds(2, &revoked_key(&family)));
    assert!(store.standing(&["another-jti", &family], &agent, now).await.unwrap().revoked);

    // The agent's suspension and revocation time: both on the first node (one hash tag).
    store.suspend(&agent).await.unwrap();
    store.revoke_agent(&agent, now).await.unwrap();
    assert!(cluster.holds(0, &agent_key(&agent_name, "suspended")));
    assert!(cluster.holds(0, &agent_key(&agent_name, "revoked_at")));
    let standing = store.standing(&["another-jti"], &agent, now).await.unwrap();
    assert!(standing.revoked && standing.suspended, "{standing:?}");
    let later = now + time::Duration::seconds(1);
    let standing = store.standing(&["another-jti"], &agent, later).await.unwrap();
    assert!(!standing.revoked && standing.suspended, "issued after the agent's revocation: {standing:?}");
    let standing = store.standing(&[], &agent, later).await.unwrap();
    assert!(!standing.revoked && standing.suspended, "{standing:?}");

    // The token id's node stops: the token's standing fails rather than reading "not revoked",
    // while the agent's and the family's nodes still answer for their keys.
    cluster.stop(1);
    for _ in 0..3 {
        let err = store.standing(&token, &agent, later).await.unwrap_err();
        assert!(matches!(err, StateError::Unavailable { .. }), "{err}");
    }
    let standing = store.standing(&[&family], &agent, later).await.unwrap();
    assert!(standing.revoked && standing.suspended, "{standing:?}");
    assert!(store.ready().await.is_err(), "ready with a primary down");

    // Back (empty: the test cluster persists nothing), the token's standing answers again.
    cluster.restart(1).await;
    let standing = eventually("standing after the node is back", || async {
        store.standing(&token, &agent, later).await.ok()
    })
    .await;
    assert!(standing.revoked && standing.suspended, "the family is still revoked: {standing:?}");

    // The seed node (the agent's) stops: the agent's standing fails, and the store, which knows
    // the other nodes, still reads and writes the keys they serve.
    cluster.stop(0);
    for _ in 0..3 {
        let err = store.standing(&token, &agent, later).await.unwrap_err();
        assert!(matches!(err, StateError::Unavailable { .. }), "{err}");
    }
    let on_node_2 = name_on(&cluster, 2, "failures", |k| format!("{PREFIX}failures:{k}"));
    for n in 1..=3 {
        assert_eq!(store.add_failure(&on_node_2, Duration::from_secs(60)).await.unwrap(), n);
    }
    cluster.restart(0).await;
    eventually("standing after the seed is back", || async {
        store.standing(&token, &agent, later).await.ok()
    })
    .await;
}
