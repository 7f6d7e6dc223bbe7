//! A Redis that cannot be reached fails closed: building with `connect` is an error, and a
//! store built without connecting answers every operation with a `StateError` (never a
//! "not revoked" or "not suspended"), its readiness probe included. Bad settings are refused before any connection.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::time::Duration;

use time::OffsetDateTime;
use zta_core::{AgentId, StateError, StateStore};
use zta_state_redis::{Error, RedisConfig, RedisStateStore};

fn closed_config() -> RedisConfig {
    RedisConfig::new(format!("redis://127.0.0.1:{}/", common::closed_port()))
        .with_timeout(Duration::from_millis(300))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_to_a_closed_port_is_an_error() {
    let err = RedisStateStore::connect(closed_config()).await.unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert!(err.to_string().starts_with("cannot reach redis at `redis://127.0.0.1:"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_on_an_unreachable_server_is_a_state_error() {
    let store = RedisStateStore::new(closed_config()).unwrap();
    let agent = AgentId::new("research_bot").unwrap();
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
        let error = error.as_ref().unwrap_or_else(|| panic!("operation {i} succeeded without a server"));
        assert!(
            matches!(error, StateError::Unavailable { detail, .. } if detail.starts_with("redis ")),
            "operation {i}: {error}"
        );
    }
}

#[tokio::test]
async fn bad_settings_are_refused() {
    let refused = |config: RedisConfig, field: &str| {
        let err = RedisStateStore::new(config).unwrap_err();
        assert!(matches!(&err, Error::Config { field: f, .. } if *f == field), "{field}: {err:?}");
    };
    refused(RedisConfig::new("http://127.0.0.1:6379/"), "url");
    refused(RedisConfig::new("127.0.0.1:6379"), "url");
    refused(RedisConfig::new("unix:///run/redis.sock"), "url");
    refused(RedisConfig::new("rediss://127.0.0.1:6379/#insecure"), "url");
    refused(RedisConfig::new("redis://127.0.0.1:6379/not-a-db"), "url");
    refused(RedisConfig::new("redis://127.0.0.1/").with_key_prefix("{zta}:"), "key_prefix");
    refused(RedisConfig::new("redis://127.0.0.1/").with_timeout(Duration::ZERO), "timeout");
    refused(RedisConfig::from_env("ZTA_TEST_REDIS_URL_THAT_IS_NEVER_SET"), "url_env");

    let both: RedisConfig = zta_source::from_str(
        "url: redis://127.0.0.1/\nurl_env: ZTA_TEST_REDIS_URL",
        zta_source::Format::Yaml,
    )
    .unwrap();
    refused(both, "url");
    let neither: RedisConfig = zta_source::from_str("key_prefix: 'zta:'", zta_source::Format::Yaml).unwrap();
    refused(neither, "url");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_is_not_downgraded_to_plain_text() {
    // A rediss:// URL pointed at the plain-text test Redis: the TLS handshake fails, the store
    // does not fall back to talking in clear.
    let url = common::redis_url().replacen("redis://", "rediss://", 1);
    let err = RedisStateStore::connect(RedisConfig::new(url).with_timeout(Duration::from_secs(2)))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
}
