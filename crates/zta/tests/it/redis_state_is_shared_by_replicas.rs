//! `state: {type: redis}` builds a Redis state store, so replicas built from the same config
//! share it: an assertion used at one is a replay at another, and an agent suspended at one is
//! shut out at the other. An unreachable Redis refuses to start, at the `state` section.
//! Needs the Redis of `ZTA_TEST_REDIS_URL` (default `redis://127.0.0.1:6379/`).
#![cfg(all(
    feature = "state-redis",
    feature = "identity-static",
    feature = "policy-native",
    feature = "audit-jsonl"
))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::{path::Path, time::Duration};

use zta::{
    Action, AgentId, AuthError, Built, Config, Credential, DenyReason, Request,
    identity::static_agents::AgentKey, secrecy::ExposeSecret,
};

use crate::config_loads_and_refuses_bad_files::{GOOD, POLICY};

fn redis_url() -> String {
    std::env::var("ZTA_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".to_owned())
}

/// The config of one replica: its own audit directory, everything else shared.
fn replica_config(audit_dir: &str, state: &str) -> String {
    let audit = format!("  dir: {audit_dir}\n");
    format!("{}state:\n{state}", GOOD.replace("  dir: audit\n", &audit))
}

fn setup(dir: &Path) -> AgentKey {
    crate::common::write_signing_key(&dir.join("signing.pem"));
    let agent = AgentKey::generate().unwrap();
    std::fs::write(dir.join("research_bot.pub.pem"), agent.public_key_pem()).unwrap();
    std::fs::write(dir.join("crew.yaml"), POLICY).unwrap();
    agent
}

async fn replica(dir: &Path, name: &str, state: &str) -> Built {
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, replica_config(&format!("audit-{name}"), state)).unwrap();
    Config::from_file(&path).unwrap().build().await.unwrap_or_else(|e| {
        panic!("this test needs a Redis at {} (set ZTA_TEST_REDIS_URL): {e}", redis_url())
    })
}

fn tool() -> Request {
    Request::new(Action::tool_call("web_search"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_replay_ids_and_suspensions() {
    let dir = tempfile::tempdir().unwrap();
    let key = setup(dir.path());
    let nanos = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    let state = format!(
        "  type: redis\n  url: {}\n  key_prefix: 'zta-test:facade:{}:{nanos}:'\n  timeout: 5s\n",
        redis_url(),
        std::process::id()
    );
    let a = replica(dir.path(), "a", &state).await;
    let b = replica(dir.path(), "b", &state).await;
    let id = AgentId::new("research_bot").unwrap();

    let assertion = key.assertion(&id, "https://zta.test", Duration::from_secs(30)).unwrap();
    let session = a.guard.login(&assertion).await.unwrap();
    let replay = b.guard.login(&assertion).await.unwrap_err();
    assert!(
        matches!(replay.reason(), DenyReason::Unauthenticated(AuthError::Replayed)),
        "an assertion used at replica A was accepted again at B: {replay}"
    );

    let bearer = Credential::bearer(session.access_token.expose_secret());
    assert!(b.guard.check(&bearer, tool()).await.is_ok(), "B does not accept A's session token");
    a.guard.suspend_agent(&id, &zta::Actor::Local, "prompt injection seen").await.unwrap();
    assert!(b.guard.is_suspended(&id).await.unwrap(), "a suspension at A is not seen at B");
    let denied = b.guard.check(&bearer, tool()).await.unwrap_err();
    assert_eq!(denied.reason(), &DenyReason::Unauthenticated(AuthError::Suspended), "{denied}");

    b.guard.reinstate_agent(&id, &zta::Actor::Local, "host rebuilt").await.unwrap();
    assert!(!a.guard.is_suspended(&id).await.unwrap(), "a reinstatement at B is not seen at A");
    let old = a.guard.check(&bearer, tool()).await.unwrap_err();
    assert_eq!(old.reason(), &DenyReason::Unauthenticated(AuthError::Revoked), "{old}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_redis_refuses_to_start_at_the_state_section() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let state =
        format!("  type: redis\n  url: redis://zta:hunter2-secret@127.0.0.1:{port}/\n  timeout: 1s\n");
    let path = dir.path().join("zta.yaml");
    let text = replica_config("audit", &state);
    std::fs::write(&path, &text).unwrap();
    let err = Config::from_file(&path).unwrap().build().await.unwrap_err();
    let shown = err.to_string();
    assert!(
        shown.contains(&format!("state store: cannot reach redis at `redis://***@127.0.0.1:{port}/`")),
        "{shown}"
    );
    assert!(!shown.contains("hunter2-secret"), "{shown}");
    let state_line = text.lines().position(|l| l == "state:").unwrap() + 1;
    assert_eq!(err.position.map(|p| p.line), Some(state_line), "{shown}");
}
