//! `audit:` as a list: every record reaches each sink, a spooled one through its spool; the
//! list's mistakes are located errors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::time::{Duration, Instant};

use zta::{
    Action, AgentId, Config, Credential, Request, identity::static_agents::AgentKey, secrecy::ExposeSecret,
};

use crate::{
    common::audit_records,
    config_loads_and_refuses_bad_files::{GOOD, POLICY},
};

const LISTED: &str = "\
audit:
  - type: jsonl
    dir: local
  - type: jsonl
    dir: central
    spool: { dir: spool/central, max_bytes: 1048576 }
";

fn config_with(dir: &std::path::Path, audit: &str) -> std::path::PathBuf {
    crate::common::write_signing_key(&dir.join("signing.pem"));
    std::fs::write(dir.join("crew.yaml"), POLICY).unwrap();
    let head = GOOD.split("audit:").next().unwrap();
    let path = dir.join("zta.yaml");
    std::fs::write(&path, format!("{head}{audit}")).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_listed_sink_gets_each_record() {
    let dir = tempfile::tempdir().unwrap();
    let agent = AgentKey::generate().unwrap();
    std::fs::write(dir.path().join("research_bot.pub.pem"), agent.public_key_pem()).unwrap();
    let built = Config::from_file(config_with(dir.path(), LISTED)).unwrap().build().await.unwrap();
    let id = AgentId::new("research_bot").unwrap();
    let session = built
        .guard
        .login(&agent.assertion(&id, "https://zta.test", Duration::from_secs(30)).unwrap())
        .await
        .unwrap();
    let token = Credential::bearer(session.access_token.expose_secret());
    assert!(built.guard.check(&token, Request::new(Action::tool_call("web_search"))).await.is_ok());
    assert!(built.guard.check(&token, Request::new(Action::tool_call("shell"))).await.is_err());
    built.guard.audit_sink().flush().await.unwrap();

    let ids = |dir: &std::path::Path| -> Vec<String> {
        audit_records(dir).iter().map(|r| r["id"].as_str().unwrap().to_owned()).collect()
    };
    let local = ids(&dir.path().join("local"));
    assert_eq!(local.len(), 3, "login, allow, deny");
    // The spooled sink gets the same records, in order, once its spool is forwarded.
    let deadline = Instant::now() + Duration::from_secs(60);
    while ids(&dir.path().join("central")) != local {
        assert!(Instant::now() < deadline, "the spool did not reach the central log");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn an_empty_list_or_a_bad_spool_is_a_located_error() {
    let dir = tempfile::tempdir().unwrap();
    let empty = Config::from_file(config_with(dir.path(), "audit: []\n")).unwrap_err().to_string();
    assert!(empty.contains("zta.yaml:") && empty.contains("lists no sink"), "{empty}");

    let typo = "audit:\n  - type: jsonl\n    dir: a\n    spool: { dir: s, max_byte: 10 }\n";
    let error = Config::from_file(config_with(dir.path(), typo)).unwrap_err().to_string();
    assert!(error.contains("unknown field `max_byte`"), "{error}");
    assert!(error.contains(":19:22:"), "the place of the typo: {error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_spools_in_one_directory_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let shared = "audit:\n  - type: jsonl\n    dir: a\n    spool: { dir: s }\n  - type: jsonl\n    dir: b\n    spool: { dir: s }\n";
    let config = Config::from_file(config_with(dir.path(), shared)).unwrap();
    let error = config.build().await.unwrap_err().to_string();
    assert!(error.contains("two spools in"), "{error}");
}
