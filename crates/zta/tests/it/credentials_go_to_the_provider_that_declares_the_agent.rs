//! A primary credential goes to exactly one identity provider: the one that declares its
//! agent. A second provider of the same kind is used, not silently shadowed by the first; two
//! providers declaring one agent is a startup error.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::{sync::Arc, time::Duration};

use zta::{
    Action, AgentId, Credential, DenyReason, Guard, GuardError, MemoryStateStore, Request, StateStore,
    identity::static_agents::{AgentEntry, AgentKey, StaticConfig, StaticProvider},
    policy::PolicySet,
};
use zta_audit_jsonl::{JsonlConfig, JsonlSink};

const POLICY: &str = "policies:\n  - {name: tools, effect: allow, conditions: {action_type: call_tool}}\n";

fn provider(agents: &[(&str, &AgentKey)], state: &Arc<dyn StateStore>) -> Arc<StaticProvider> {
    let config = agents.iter().fold(StaticConfig::new("aud"), |c, (id, key)| {
        c.with_agent(AgentEntry::from_public_key(AgentId::new(*id).unwrap(), key.public_key_pem()))
    });
    Arc::new(StaticProvider::new(config, state.clone()).unwrap())
}

fn builder(dir: &tempfile::TempDir) -> zta::GuardBuilder {
    let sink = Arc::new(JsonlSink::open(JsonlConfig::new(dir.path())).unwrap());
    Guard::builder(Arc::new(PolicySet::from_yaml(POLICY).unwrap()), sink)
}

fn assertion(key: &AgentKey, id: &str) -> Credential {
    key.assertion(&AgentId::new(id).unwrap(), "aud", Duration::from_secs(30)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_of_a_second_provider_of_the_same_kind_authenticate() {
    let dir = tempfile::tempdir().unwrap();
    let state: Arc<dyn StateStore> = Arc::new(MemoryStateStore::new());
    let (research, finance) = (AgentKey::generate().unwrap(), AgentKey::generate().unwrap());
    let guard = builder(&dir)
        .identity_provider(provider(&[("research_bot", &research)], &state))
        .identity_provider(provider(&[("finance_bot", &finance)], &state))
        .build()
        .unwrap();
    let tool = || Request::new(Action::tool_call("web_search"));
    assert!(guard.check(&assertion(&research, "research_bot"), tool()).await.is_ok());
    assert!(guard.check(&assertion(&finance, "finance_bot"), tool()).await.is_ok());
    // Routing is no proof: a credential routed by its claimed name still has to verify there.
    let forged = guard.check(&assertion(&research, "finance_bot"), tool()).await.unwrap_err();
    assert!(matches!(forged.reason(), DenyReason::Unauthenticated(_)), "{forged}");
    // An agent nobody declares is refused like any bad credential.
    let ghost = guard.check(&assertion(&research, "ghost_bot"), tool()).await.unwrap_err();
    assert!(matches!(ghost.reason(), DenyReason::Unauthenticated(_)), "{ghost}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_providers_declaring_one_agent_do_not_build() {
    let dir = tempfile::tempdir().unwrap();
    let state: Arc<dyn StateStore> = Arc::new(MemoryStateStore::new());
    let (a, b) = (AgentKey::generate().unwrap(), AgentKey::generate().unwrap());
    let err = builder(&dir)
        .identity_provider(provider(&[("research_bot", &a)], &state))
        .identity_provider(provider(&[("writer_bot", &a), ("research_bot", &b)], &state))
        .build()
        .unwrap_err();
    assert!(matches!(&err, GuardError::AmbiguousAgent { agent, .. } if agent.as_str() == "research_bot"));
    assert!(err.to_string().contains("`research_bot` is declared by two identity providers"), "{err}");
}
