//! `audit:` listing the local log and a SQLite file (required), its path relative to the
//! config file: every decision is in the file when the guard answers, and its chain verifies.
#![cfg(all(
    feature = "audit-sqlite",
    feature = "identity-static",
    feature = "policy-native",
    feature = "audit-jsonl"
))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::time::Duration;

use zta::{
    Action, AgentId, Config, Credential, Request,
    audit::sqlite::{SqliteConfig, verify},
    identity::static_agents::AgentKey,
    secrecy::ExposeSecret,
};

use crate::config_loads_and_refuses_bad_files::{GOOD, POLICY};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_audit_gets_every_decision() {
    let dir = tempfile::tempdir().unwrap();
    crate::common::write_signing_key(&dir.path().join("signing.pem"));
    std::fs::write(dir.path().join("crew.yaml"), POLICY).unwrap();
    let agent = AgentKey::generate().unwrap();
    std::fs::write(dir.path().join("research_bot.pub.pem"), agent.public_key_pem()).unwrap();
    let audit = "audit:\n  - type: jsonl\n    dir: audit\n  - type: sqlite\n    path: audit.db\n";
    let text = format!("{}{audit}", GOOD.split("audit:").next().unwrap());
    std::fs::write(dir.path().join("zta.yaml"), text).unwrap();
    let built = Config::from_file(dir.path().join("zta.yaml")).unwrap().build().await.unwrap();

    let id = AgentId::new("research_bot").unwrap();
    let assertion = agent.assertion(&id, "https://zta.test", Duration::from_secs(30)).unwrap();
    let session = built.guard.login(&assertion).await.unwrap();
    let token = Credential::bearer(session.access_token.expose_secret());
    for tool in ["web_search", "shell", "web_search"] {
        let _ = built.guard.check(&token, Request::new(Action::tool_call(tool))).await;
    }
    built.guard.audit_sink().flush().await.unwrap();

    let report = verify(&SqliteConfig::new(dir.path().join("audit.db"))).await.unwrap();
    assert_eq!(report.rows(), 4, "the login and three decisions");
    assert_eq!(report.writers.len(), 1);
}
