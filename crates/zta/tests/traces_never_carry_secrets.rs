//! Tracing on the request path names the agent, action and decision, and never a token, an
//! assertion or a secret, not even at TRACE level.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::{
    io::Write,
    sync::{Arc, Mutex},
    time::Duration,
};

use zta::{
    Action, AgentId, Credential, Guard, MemoryStateStore, Request, StateStore,
    audit::jsonl::{JsonlConfig, JsonlSink},
    identity::static_agents::{AgentEntry, AgentKey, StaticConfig, StaticProvider},
    policy::PolicySet,
    secrecy::ExposeSecret,
    token::{Algorithm, SigningKey, TokenConfig, TokenService},
};

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

const POLICY: &str = "policies:\n  - {name: tools, effect: allow, conditions: {action_type: call_tool, tool_name: web_search}}\n";

#[tokio::test]
async fn traces_name_the_decision_but_hold_no_secret() {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let dir = tempfile::tempdir().unwrap();
    let key = AgentKey::generate().unwrap();
    let secret = "correct horse battery staple";
    let id = AgentId::new("research_bot").unwrap();
    let identities = StaticConfig::new("https://zta.test")
        .with_agent(AgentEntry::from_public_key(id.clone(), key.public_key_pem()))
        .with_agent(AgentEntry::from_secret_hash(
            AgentId::new("writer_bot").unwrap(),
            zta::identity::static_agents::hash_secret(secret).unwrap(),
        ));
    let state: Arc<dyn StateStore> = Arc::new(MemoryStateStore::new());
    let tokens = TokenService::new(
        TokenConfig::new("https://zta.test", "zta"),
        SigningKey::generate(Algorithm::EdDSA).unwrap(),
        state.clone(),
    )
    .unwrap();
    let guard = Guard::builder(
        Arc::new(PolicySet::from_yaml(POLICY).unwrap()),
        Arc::new(JsonlSink::open(JsonlConfig::new(dir.path())).unwrap()),
    )
    .identity_provider(Arc::new(StaticProvider::new(identities, state).unwrap()))
    .token_authority(Arc::new(tokens))
    .build()
    .unwrap();

    let assertion = key.assertion(&id, "https://zta.test", Duration::from_secs(30)).unwrap();
    let Credential::AgentAssertion(assertion_text) = &assertion else { panic!("not an assertion") };
    let assertion_text = assertion_text.expose_secret().to_owned();
    let session = guard.login(&assertion).await.unwrap();
    let access = session.access_token.expose_secret().to_owned();
    let refresh = session.refresh_token.expose_secret().to_owned();
    let bearer = Credential::bearer(&access);

    let _permit = guard.check(&bearer, Request::new(Action::tool_call("web_search"))).await.unwrap();
    guard.check(&bearer, Request::new(Action::tool_call("shell"))).await.unwrap_err();
    guard.check(&assertion, Request::new(Action::tool_call("web_search"))).await.unwrap_err(); // replay
    let tampered = format!("{}x", &access[..access.len() - 1]);
    guard
        .check(&Credential::bearer(&tampered), Request::new(Action::tool_call("web_search")))
        .await
        .unwrap_err();
    guard
        .check(&Credential::password("writer_bot", "wrong horse"), Request::new(Action::task("t")))
        .await
        .unwrap_err();
    guard
        .check(&Credential::password("writer_bot", secret), Request::new(Action::task("t")))
        .await
        .unwrap_err();
    guard.refresh(&session.refresh_token).await.unwrap();
    guard.refresh(&session.refresh_token).await.unwrap_err();

    let logs = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("zta.check"), "no request span in:\n{logs}");
    assert!(logs.contains("research_bot"), "the agent is not named:\n{logs}");
    assert!(logs.contains("request denied"), "no denial event:\n{logs}");
    for (what, secret_text) in [
        ("access token", access.as_str()),
        ("refresh token", refresh.as_str()),
        ("assertion", assertion_text.as_str()),
        ("tampered token", tampered.as_str()),
        ("secret", secret),
        ("wrong secret", "wrong horse"),
    ] {
        assert!(!logs.contains(secret_text), "the {what} leaked into traces");
        // Not even the signature part alone.
        if let Some(sig) = secret_text.rsplit('.').next().filter(|s| s.len() > 20) {
            assert!(!logs.contains(sig), "the {what}'s signature leaked into traces");
        }
    }
}
