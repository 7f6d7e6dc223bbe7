//! A suspended agent is shut out whatever it presents: the compromised agent still holds its
//! key, so revoking its sessions is not enough; suspension also refuses fresh assertions,
//! secrets, logins and refreshes until an operator reinstates it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::{sync::Arc, time::Duration};

use zta::{
    Action, AgentId, AuditEvent, AuthError, Credential, DenyReason, Guard, MemoryStateStore, Request,
    StateStore,
    identity::static_agents::{AgentEntry, AgentKey, StaticConfig, StaticProvider, hash_secret},
    policy::PolicySet,
    secrecy::ExposeSecret,
    token::{Algorithm, SigningKey, TokenConfig, TokenService},
};
use zta_audit_jsonl::{JsonlConfig, JsonlSink};

const POLICY: &str = "policies:\n  - {name: tools, effect: allow, conditions: {action_type: call_tool}}\n";

struct Crew {
    guard: Guard,
    sink: Arc<JsonlSink>,
    key: AgentKey,
    id: AgentId,
    _dir: tempfile::TempDir,
}

/// One state store shared by the identity provider, the token service and the guard, as the
/// facade builds it.
fn crew() -> Crew {
    let dir = tempfile::tempdir().unwrap();
    let sink = Arc::new(JsonlSink::open(JsonlConfig::new(dir.path())).unwrap());
    let state: Arc<dyn StateStore> = Arc::new(MemoryStateStore::new());
    let key = AgentKey::generate().unwrap();
    let id = AgentId::new("research_bot").unwrap();
    let identities = StaticConfig::new("aud")
        .with_agent(AgentEntry::from_public_key(id.clone(), key.public_key_pem()))
        .with_agent(AgentEntry::from_secret_hash(
            AgentId::new("writer_bot").unwrap(),
            hash_secret("writer secret").unwrap(),
        ));
    let provider = StaticProvider::new(identities, state.clone()).unwrap();
    let tokens = TokenService::new(
        TokenConfig::new("https://zta.test/", "zta"),
        SigningKey::generate(Algorithm::EdDSA).unwrap(),
        state.clone(),
    )
    .unwrap();
    let guard = Guard::builder(Arc::new(PolicySet::from_yaml(POLICY).unwrap()), sink.clone())
        .identity_provider(Arc::new(provider))
        .token_authority(Arc::new(tokens))
        .state_store(state)
        .build()
        .unwrap();
    Crew { guard, sink, key, id, _dir: dir }
}

impl Crew {
    fn assertion(&self) -> Credential {
        self.key.assertion(&self.id, "aud", Duration::from_secs(30)).unwrap()
    }
}

fn tool() -> Request {
    Request::new(Action::tool_call("web_search"))
}

fn suspended(reason: &DenyReason) -> bool {
    reason == &DenyReason::Unauthenticated(AuthError::Suspended)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_credential_of_a_suspended_agent_is_refused_until_it_is_reinstated() {
    let crew = crew();
    let session = crew.guard.login(&crew.assertion()).await.unwrap();
    let bearer = Credential::bearer(session.access_token.expose_secret());
    assert!(crew.guard.check(&bearer, tool()).await.is_ok());

    crew.guard.suspend_agent(&crew.id, &zta::Actor::Local, "prompt injection seen").await.unwrap();
    assert!(crew.guard.is_suspended(&crew.id).await.unwrap());

    // A fresh, correctly signed assertion: the key is still in the attacker's hands.
    let fresh = crew.guard.check(&crew.assertion(), tool()).await.unwrap_err();
    assert!(suspended(fresh.reason()), "{fresh}");
    assert_eq!(fresh.agent_id(), Some(&crew.id), "the refused attempt is on record under its agent");
    assert_eq!(fresh.reason().to_string(), "agent suspended");
    // The session it already had.
    let old = crew.guard.check(&bearer, tool()).await.unwrap_err();
    assert!(suspended(old.reason()), "{old}");
    // A new login, and a refresh of the old session.
    let login = crew.guard.login(&crew.assertion()).await.unwrap_err();
    assert!(suspended(login.reason()), "{login}");
    assert!(crew.guard.refresh(&session.refresh_token).await.is_err());
    // Other agents are untouched.
    let writer = Credential::password("writer_bot", "writer secret");
    assert!(crew.guard.check(&writer, tool()).await.is_ok());

    crew.guard.reinstate_agent(&crew.id, &zta::Actor::Local, "host rebuilt").await.unwrap();
    assert!(!crew.guard.is_suspended(&crew.id).await.unwrap());
    // Sessions from before the suspension stay ended; a new login works.
    let after = crew.guard.check(&bearer, tool()).await.unwrap_err();
    assert_eq!(after.reason(), &DenyReason::Unauthenticated(AuthError::Revoked));
    assert!(crew.guard.check(&crew.assertion(), tool()).await.is_ok());
    // (A token from this login may itself count as revoked until the second turns: `iat` has
    // second precision, see `TokenService::revoke_agent`.)
    assert!(crew.guard.login(&crew.assertion()).await.is_ok());

    crew.sink.close().await.unwrap();
    let events: Vec<AuditEvent> = read_events(&crew);
    assert!(events.contains(&AuditEvent::Suspension) && events.contains(&AuditEvent::Reinstatement));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_is_refused_for_a_suspended_agent() {
    let crew = crew();
    let writer = AgentId::new("writer_bot").unwrap();
    crew.guard.suspend_agent(&writer, &zta::Actor::Local, "test").await.unwrap();
    let denied =
        crew.guard.check(&Credential::password("writer_bot", "writer secret"), tool()).await.unwrap_err();
    assert!(suspended(denied.reason()), "{denied}");
    // Only after the secret verified: a wrong secret is still just an invalid credential, so
    // suspension tells nothing to someone who does not hold the credential.
    let wrong = crew.guard.check(&Credential::password("writer_bot", "guess"), tool()).await.unwrap_err();
    assert!(matches!(wrong.reason(), DenyReason::Unauthenticated(AuthError::Invalid { .. })), "{wrong}");
}

fn read_events(crew: &Crew) -> Vec<AuditEvent> {
    crate::common::audit_records(crew._dir.path())
        .into_iter()
        .map(|record| serde_json::from_value(record["event"].clone()).unwrap())
        .collect()
}
