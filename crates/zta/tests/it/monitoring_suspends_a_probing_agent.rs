//! A `monitor:` section puts detectors over the guard's audit stream: an agent denied three
//! times is suspended by the detector before its next request, which is then denied as
//! suspended however legitimate it looks; a dry run only alerts. With the Redis state store,
//! three replicas count into one window and all of them see the suspension.
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

const MONITOR: &str = "\
monitor:
  detectors:
    - name: probing
      detect: denials
      window: 5m
      threshold: 3
      respond: [suspend]
";

fn setup(dir: &Path) -> AgentKey {
    crate::common::write_signing_key(&dir.join("signing.pem"));
    let agent = AgentKey::generate().unwrap();
    std::fs::write(dir.join("research_bot.pub.pem"), agent.public_key_pem()).unwrap();
    std::fs::write(dir.join("crew.yaml"), POLICY).unwrap();
    agent
}

async fn build(dir: &Path, name: &str, extra: &str) -> Built {
    let path = dir.join(format!("{name}.yaml"));
    let text = GOOD.replace("  dir: audit\n", &format!("  dir: audit-{name}\n"));
    std::fs::write(&path, format!("{text}{extra}")).unwrap();
    Config::from_file(&path).unwrap().build().await.unwrap()
}

async fn session(built: &Built, key: &AgentKey) -> Credential {
    let id = AgentId::new("research_bot").unwrap();
    let assertion = key.assertion(&id, "https://zta.test", Duration::from_secs(30)).unwrap();
    let tokens = built.guard.login(&assertion).await.unwrap();
    Credential::bearer(tokens.access_token.expose_secret())
}

fn allowed() -> Request {
    Request::new(Action::tool_call("web_search"))
}

fn forbidden() -> Request {
    Request::new(Action::tool_call("shell_exec"))
}

fn is_suspended(denied: &zta::Denied) -> bool {
    matches!(denied.reason(), DenyReason::Unauthenticated(AuthError::Suspended))
}

#[tokio::test]
async fn the_third_denial_suspends_the_agent_before_its_next_request() {
    let dir = tempfile::tempdir().unwrap();
    let key = setup(dir.path());
    let built = build(dir.path(), "one", MONITOR).await;
    let bearer = session(&built, &key).await;

    assert!(built.guard.check(&bearer, allowed()).await.is_ok(), "the policy does not allow web_search");
    for _ in 0..2 {
        let denied = built.guard.check(&bearer, forbidden()).await.unwrap_err();
        assert!(!is_suspended(&denied), "suspended below the threshold");
    }
    assert!(built.guard.check(&bearer, allowed()).await.is_ok(), "suspended below the threshold");
    let _third = built.guard.check(&bearer, forbidden()).await.unwrap_err();

    let next = built.guard.check(&bearer, allowed()).await.unwrap_err();
    assert!(is_suspended(&next), "the request after the third denial was not refused as suspended: {next}");
    assert!(next.to_string().starts_with("denied: agent suspended"), "{next}");
    let monitor = built.monitor.as_ref().unwrap();
    assert_eq!((monitor.stats().alerts(), monitor.stats().responses()), (1, 1));

    // The log says who suspended it and why.
    built.guard.audit_sink().flush().await.unwrap();
    let log = std::fs::read_dir(dir.path().join("audit-one"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap_or_default())
        .collect::<String>();
    let suspension =
        log.lines().find(|l| l.contains(r#""event":"suspension""#)).expect("no suspension record");
    assert!(suspension.contains(r#""by":"monitor:probing""#), "{suspension}");
    assert!(log.lines().any(|l| l.contains(r#""event":"alert""#)), "no alert record");
}

#[tokio::test]
async fn a_dry_run_alerts_and_lets_the_agent_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let key = setup(dir.path());
    let built = build(dir.path(), "dry", &format!("{MONITOR}      dry_run: true\n")).await;
    let bearer = session(&built, &key).await;
    for _ in 0..3 {
        let _denied = built.guard.check(&bearer, forbidden()).await.unwrap_err();
    }
    assert!(built.guard.check(&bearer, allowed()).await.is_ok(), "a dry run shut the agent out");
    let monitor = built.monitor.as_ref().unwrap();
    assert_eq!((monitor.stats().alerts(), monitor.stats().responses()), (1, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_count_into_one_window_and_all_see_the_suspension() {
    let dir = tempfile::tempdir().unwrap();
    let key = setup(dir.path());
    let url = std::env::var("ZTA_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".to_owned());
    let nanos = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    let state = format!(
        "state:\n  type: redis\n  url: {url}\n  key_prefix: 'zta-test:monitor:{}:{nanos}:'\n  timeout: 5s\n",
        std::process::id()
    );
    let extra = format!("{MONITOR}{state}");
    let mut replicas = Vec::new();
    for name in ["a", "b", "c"] {
        replicas.push(build(dir.path(), name, &extra).await);
    }
    let bearer = session(&replicas[0], &key).await;
    // One denial at each replica: none of them alone reaches the threshold.
    for replica in &replicas {
        let denied = replica.guard.check(&bearer, forbidden()).await.unwrap_err();
        assert!(!is_suspended(&denied));
    }
    for (name, replica) in ["a", "b", "c"].iter().zip(&replicas) {
        let next = replica.guard.check(&bearer, allowed()).await.unwrap_err();
        assert!(
            is_suspended(&next),
            "replica {name} let the agent go on after three denials across replicas"
        );
    }
    let fired: u64 = replicas.iter().map(|r| r.monitor.as_ref().unwrap().stats().alerts()).sum();
    assert_eq!(fired, 1, "the detector fired more than once across the replicas");
}

#[test]
fn a_detector_that_would_act_on_a_claimed_agent_does_not_load() {
    let text = format!(
        "{GOOD}monitor:\n  detectors:\n    - name: guessing\n      detect: auth_failures\n      respond: [suspend]\n"
    );
    let e = Config::from_yaml_str(&text).unwrap_err();
    assert!(e.message.contains("monitor detector `guessing`"), "{e}");
    assert!(e.message.contains("cannot respond with `suspend`"), "{e}");
    assert_eq!(e.position.map(|p| p.line), Some(21), "not at the detector: {e}");
}
