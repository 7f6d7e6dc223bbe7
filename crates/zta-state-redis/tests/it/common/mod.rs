//! Shared fixtures: the test Redis (from `ZTA_TEST_REDIS_URL`, default the one on
//! 127.0.0.1:6379), unique key prefixes, and throwaway ACL users.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
#![allow(dead_code, unreachable_pub)]

pub mod cluster;

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use uuid::Uuid;
use zta_state_redis::{RedisConfig, RedisStateStore};

/// The Redis the tests use.
pub fn redis_url() -> String {
    std::env::var("ZTA_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".to_owned())
}

/// A key prefix no other test run uses.
pub fn unique_prefix(test: &str) -> String {
    format!("zta-test:{test}:{}:", Uuid::new_v4().simple())
}

/// A config for the test Redis under a fresh prefix, with a timeout generous enough for a
/// loaded machine.
pub fn config(test: &str) -> RedisConfig {
    RedisConfig::new(redis_url()).with_key_prefix(unique_prefix(test)).with_timeout(Duration::from_secs(5))
}

/// A connected store, or a failure that says which Redis is missing.
pub async fn connect(config: RedisConfig) -> RedisStateStore {
    match RedisStateStore::connect(config).await {
        Ok(store) => store,
        Err(e) => {
            panic!("these tests need a Redis at {} (set ZTA_TEST_REDIS_URL to use another): {e}", redis_url())
        }
    }
}

/// A plain connection to the test Redis, for setting up and inspecting.
pub async fn admin() -> MultiplexedConnection {
    let client = redis::Client::open(redis_url()).unwrap();
    match client.get_multiplexed_async_connection().await {
        Ok(con) => con,
        Err(e) => {
            panic!("these tests need a Redis at {} (set ZTA_TEST_REDIS_URL to use another): {e}", redis_url())
        }
    }
}

/// An ACL user of its own for one test, deleted when dropped: its connections can be killed
/// without touching anyone else's (`CLIENT KILL USER`).
pub struct TestUser {
    pub name: String,
    pub password: String,
}

impl TestUser {
    /// Creates a user allowed every command on keys under `prefix`.
    pub async fn create(admin: &mut MultiplexedConnection, prefix: &str) -> Self {
        let user = Self {
            name: format!("zta-test-{}", Uuid::new_v4().simple()),
            password: format!("Pw-{}", Uuid::new_v4().simple()),
        };
        redis::cmd("ACL")
            .arg("SETUSER")
            .arg(&user.name)
            .arg("on")
            .arg(format!(">{}", user.password))
            .arg(format!("~{prefix}*"))
            .arg("+@all")
            .query_async::<()>(admin)
            .await
            .expect("ACL SETUSER (the test Redis must let its default user manage ACL users)");
        user
    }

    /// The test Redis's URL with this user's name and `password` in it.
    pub fn url_with(&self, password: &str) -> String {
        let url = redis_url();
        let (scheme, rest) = url.split_once("://").unwrap();
        let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
        format!("{scheme}://{}:{password}@{rest}", self.name)
    }

    /// The test Redis's URL with this user's credentials.
    pub fn url(&self) -> String {
        self.url_with(&self.password)
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        if let Ok(mut con) = redis::Client::open(redis_url()).and_then(|c| c.get_connection()) {
            let _ = redis::cmd("ACL").arg("DELUSER").arg(&self.name).query::<i64>(&mut con);
        }
    }
}

/// A loopback port nothing listens on (bound, then released).
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Deletes every key under `prefix` (what a test left behind: suspensions and agent
/// revocations never expire).
pub async fn clean(prefix: &str) {
    let mut admin = admin().await;
    let mut cursor = 0_u64;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut admin)
            .await
            .unwrap();
        if !keys.is_empty() {
            redis::cmd("DEL").arg(&keys).query_async::<()>(&mut admin).await.unwrap();
        }
        if next == 0 {
            break;
        }
        cursor = next;
    }
}
