//! After the server drops the connection, the store fails the call that finds it dead (a
//! `StateError`, never a guess) and reconnects on its own: the next call works and sees the
//! state as it was. The store logs in as an ACL user of its own, so killing its connection
//! (`CLIENT KILL USER`) touches no other client of the shared Redis.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::time::Duration;

use zta_core::{AgentId, StateStore};
use zta_state_redis::RedisConfig;

/// A store logged in as its own Redis user (which the test can kill or disable), an admin
/// connection, and an agent suspended through the store.
async fn suspended_agent_of_own_user(
    prefix: &str,
) -> (redis::aio::MultiplexedConnection, common::TestUser, zta_state_redis::RedisStateStore, AgentId) {
    let mut admin = common::admin().await;
    let user = common::TestUser::create(&mut admin, prefix).await;
    let config = RedisConfig::new(user.url()).with_key_prefix(prefix).with_timeout(Duration::from_secs(5));
    let store = common::connect(config).await;
    let agent = AgentId::new("compromised_bot").unwrap();
    store.suspend(&agent).await.unwrap();
    (admin, user, store, agent)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_call_after_a_dropped_connection_reconnects() {
    let prefix = common::unique_prefix("reconnect");
    let (mut admin, user, store, agent) = suspended_agent_of_own_user(&prefix).await;
    store.ready().await.unwrap();

    for round in 0..3 {
        let killed: i64 = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("USER")
            .arg(&user.name)
            .query_async(&mut admin)
            .await
            .unwrap();
        assert_eq!(killed, 1, "round {round}: the store should hold exactly one connection");

        let first = store.is_suspended(&agent).await;
        assert!(first.is_err(), "round {round}: a call on the killed connection answered {first:?}");
        assert!(
            matches!(store.is_suspended(&agent).await, Ok(true)),
            "round {round}: the call after the failed one did not reconnect"
        );
    }
    common::clean(&prefix).await;
}

/// A reconnection the server refuses (here: the store's user is disabled while its connection
/// is down, as during a credential rotation) fails calls while it lasts, and the store keeps
/// trying: once the user is enabled again, calls work without rebuilding the store. (Redis's
/// connection manager on its own retries only I/O failures: a refused login would stick.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_login_during_reconnection_does_not_stick() {
    let prefix = common::unique_prefix("relogin");
    let (mut admin, user, store, agent) = suspended_agent_of_own_user(&prefix).await;

    let acl =
        |setting: &'static str| redis::cmd("ACL").arg("SETUSER").arg(&user.name).arg(setting).to_owned();
    acl("off").query_async::<()>(&mut admin).await.unwrap();
    let killed: i64 =
        redis::cmd("CLIENT").arg("KILL").arg("USER").arg(&user.name).query_async(&mut admin).await.unwrap();
    assert_eq!(killed, 1);

    let dropped = store.is_suspended(&agent).await;
    assert!(dropped.is_err(), "a call on the killed connection answered {dropped:?}");
    let refused = store.is_suspended(&agent).await.unwrap_err();
    assert!(refused.to_string().contains("redis is_suspended"), "{refused}");

    acl("on").query_async::<()>(&mut admin).await.unwrap();
    assert!(
        matches!(store.is_suspended(&agent).await, Ok(true)),
        "the store stayed broken after its login was accepted again"
    );
    common::clean(&prefix).await;
}
