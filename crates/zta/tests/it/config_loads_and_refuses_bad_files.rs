//! `zta.yaml` builds a working guard; every mistake in it is a located, explained error.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::path::Path;

use zta::{
    Action, AgentId, Config, Credential, Request, identity::static_agents::AgentKey, secrecy::ExposeSecret,
};

pub(crate) const POLICY: &str = include_str!("../../../../examples/policies/crew.yaml");

/// Writes a signing key, an agent key and the crew policy into `dir`; returns the agent key.
pub(crate) fn setup(dir: &Path) -> AgentKey {
    crate::common::write_signing_key(&dir.join("signing.pem"));
    let agent = AgentKey::generate().unwrap();
    std::fs::write(dir.join("research_bot.pub.pem"), agent.public_key_pem()).unwrap();
    std::fs::write(dir.join("crew.yaml"), POLICY).unwrap();
    agent
}

/// [`setup`] and `zta.yaml` in `dir`: [`GOOD`] with `audit` (a whole `audit:` section) in place
/// of its own; built, with a session token of `research_bot` from a login.
pub(crate) async fn logged_in_with_audit(dir: &Path, audit: &str) -> (zta::Built, Credential) {
    let agent = setup(dir);
    let head = GOOD.split("audit:").next().unwrap();
    std::fs::write(dir.join("zta.yaml"), format!("{head}{audit}")).unwrap();
    let built = Config::from_file(dir.join("zta.yaml")).unwrap().build().await.unwrap();
    let id = AgentId::new("research_bot").unwrap();
    let assertion = agent.assertion(&id, "https://zta.test", std::time::Duration::from_secs(30)).unwrap();
    let session = built.guard.login(&assertion).await.unwrap();
    let token = Credential::bearer(session.access_token.expose_secret());
    (built, token)
}

pub(crate) const GOOD: &str = "\
identity:
  - type: static
    audience: https://zta.test
    agents:
      - id: research_bot
        segment: research
        roles: [researcher]
        public_key_file: research_bot.pub.pem
tokens:
  issuer: https://zta.test
  audience: zta
  signing_key_file: signing.pem
policy:
  type: native
  files: [crew.yaml]
audit:
  type: jsonl
  dir: audit
";

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test]
async fn a_good_config_builds_a_guard_that_decides() {
    let dir = tempfile::tempdir().unwrap();
    let agent = setup(dir.path());
    let config = Config::from_file(write(dir.path(), "zta.yaml", GOOD)).unwrap();
    let built = config.build().await.unwrap();
    let id = AgentId::new("research_bot").unwrap();
    let session = built
        .guard
        .login(&agent.assertion(&id, "https://zta.test", std::time::Duration::from_secs(30)).unwrap())
        .await
        .unwrap();
    let token = Credential::bearer(session.access_token.expose_secret());
    assert!(built.guard.check(&token, Request::new(Action::tool_call("web_search"))).await.is_ok());
    assert!(built.guard.check(&token, Request::new(Action::tool_call("shell"))).await.is_err());
    built.guard.audit_sink().flush().await.unwrap();
    assert!(
        dir.path().join("audit").join("checkpoint.json").exists(),
        "relative paths resolve beside the config"
    );
}

#[tokio::test]
async fn the_same_config_in_toml_builds_too() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    let toml = "\
[[identity]]
type = 'static'
audience = 'https://zta.test'
[[identity.agents]]
id = 'research_bot'
segment = 'research'
public_key_file = 'research_bot.pub.pem'

[tokens]
issuer = 'https://zta.test'
audience = 'zta'
signing_key_file = 'signing.pem'

[policy]
type = 'native'
files = ['crew.yaml']

[audit]
type = 'jsonl'
dir = 'audit'
";
    let config = Config::from_file(write(dir.path(), "zta.toml", toml)).unwrap();
    config.build().await.unwrap();
}

#[test]
fn unknown_keys_are_errors_with_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let text =
        GOOD.replace("        segment: research\n", "        segment: research\n        sgement: oops\n");
    let path = write(dir.path(), "zta.yaml", &text);
    let err = Config::from_file(&path).unwrap_err();
    assert_eq!(err.position.map(|p| (p.line, p.column)), Some((7, 9)), "{err}");
    let shown = err.to_string();
    assert!(shown.contains("zta.yaml:7:9"), "{shown}");
    assert!(shown.contains("unknown field `sgement`"), "{shown}");
    assert!(shown.contains("hint:"), "{shown}");

    let text = GOOD.replace("  dir: audit\n", "  dir: audit\n  retention: 30d\n");
    let err = Config::from_file(write(dir.path(), "zta.yaml", &text)).unwrap_err();
    assert!(err.to_string().contains("unknown field `retention`"), "{err}");
    assert_eq!(err.position.map(|p| p.line), Some(19));

    let text = format!("{GOOD}servre:\n  port: 1\n");
    let err = Config::from_file(write(dir.path(), "zta.yaml", &text)).unwrap_err();
    assert!(err.to_string().contains("unknown field `servre`"), "{err}");
    assert_eq!(err.position.map(|p| p.line), Some(19));
}

#[test]
fn unknown_fields_in_toml_are_located_too() {
    let text = "[tokens]\nissuer = 'x'\naudience = 'y'\nsigning_key_fil = 'k.pem'\n";
    let err = Config::from_toml_str(text).unwrap_err();
    assert!(err.to_string().contains("signing_key_fil"), "{err}");
    assert_eq!(err.position.map(|p| p.line), Some(4), "{err}");
}

#[tokio::test]
async fn a_backend_this_version_does_not_have_is_a_clear_error_naming_no_feature() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    let text =
        GOOD.replace("  type: native\n  files: [crew.yaml]\n", "  type: cedar\n  files: [crew.cedar]\n");
    let err = Config::from_file(write(dir.path(), "zta.yaml", &text)).unwrap().build().await.unwrap_err();
    let shown = err.to_string();
    assert!(shown.contains("policy type `cedar` is not available in this version of ZTA"), "{shown}");
    assert!(!shown.contains("feature"), "a hint may name only a feature that exists: {shown}");
    assert_eq!(err.position.map(|p| p.line), Some(14), "{shown}");
}

#[tokio::test]
async fn missing_and_placeholder_signing_keys_refuse_to_start() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    let missing = GOOD.replace("signing.pem", "nowhere.pem");
    let err = Config::from_file(write(dir.path(), "zta.yaml", &missing)).unwrap().build().await.unwrap_err();
    assert!(err.to_string().contains("cannot read signing key"), "{err}");
    assert_eq!(err.position.map(|p| p.line), Some(12), "{err}");

    std::fs::write(
        dir.path().join("placeholder.pem"),
        "-----BEGIN PRIVATE KEY-----\nCHANGE_ME\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let placeholder = GOOD.replace("signing.pem", "placeholder.pem");
    let err =
        Config::from_file(write(dir.path(), "zta.yaml", &placeholder)).unwrap().build().await.unwrap_err();
    assert!(err.to_string().contains("placeholder"), "{err}");

    let env = GOOD.replace("signing_key_file: signing.pem", "signing_key_env: ZTA_TEST_UNSET_SIGNING_KEY");
    let err = Config::from_file(write(dir.path(), "zta.yaml", &env)).unwrap().build().await.unwrap_err();
    assert!(err.to_string().contains("`ZTA_TEST_UNSET_SIGNING_KEY` is not set"), "{err}");

    let neither = GOOD.replace("  signing_key_file: signing.pem\n", "");
    let err = Config::from_file(write(dir.path(), "zta.yaml", &neither)).unwrap().build().await.unwrap_err();
    assert!(err.to_string().contains("exactly one of"), "{err}");
}

#[tokio::test]
async fn a_broken_policy_file_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    std::fs::write(dir.path().join("crew.yaml"), "policies:\n  - name: x\n    effect: permit\n").unwrap();
    let err = Config::from_file(write(dir.path(), "zta.yaml", GOOD)).unwrap().build().await.unwrap_err();
    assert!(err.to_string().contains("permit"), "{err}");
}

#[tokio::test]
async fn the_example_config_builds_once_its_keys_exist() {
    let dir = tempfile::tempdir().unwrap();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    std::fs::create_dir_all(dir.path().join("config/keys")).unwrap();
    std::fs::create_dir_all(dir.path().join("policies")).unwrap();
    std::fs::copy(examples.join("config/zta.yaml"), dir.path().join("config/zta.yaml")).unwrap();
    std::fs::copy(examples.join("policies/crew.yaml"), dir.path().join("policies/crew.yaml")).unwrap();
    let keys = dir.path().join("config/keys");
    crate::common::write_signing_key(&keys.join("zta-signing.pem"));
    for agent in ["research_bot", "analysis_bot", "writer_bot"] {
        let key = AgentKey::generate().unwrap();
        std::fs::write(keys.join(format!("{agent}.pub.pem")), key.public_key_pem()).unwrap();
    }
    let (checkpoint_key, _) = zta::audit::jsonl::generate_checkpoint_key().unwrap();
    std::fs::write(keys.join("audit-checkpoint.pem"), checkpoint_key.as_bytes()).unwrap();
    let config = Config::from_file(dir.path().join("config/zta.yaml")).unwrap();
    assert!(config.guard.durable_before_permit, "the example is a production config");
    let built = config.build().await.unwrap();
    built.guard.audit_sink().flush().await.unwrap();
}

#[tokio::test]
async fn a_relative_anchor_file_resolves_beside_the_config() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let text = format!("{GOOD}  anchor: {{file: elsewhere/checkpoints.jsonl}}\n");
    let built = Config::from_file(write(dir.path(), "zta.yaml", &text)).unwrap().build().await.unwrap();
    built.guard.audit_sink().flush().await.unwrap();
    // Opening the log published its checkpoint there.
    let anchored = std::fs::read_to_string(elsewhere.join("checkpoints.jsonl")).unwrap();
    assert!(anchored.starts_with("{\"version\":1,\"seq\":0,"), "{anchored}");
}
