//! With the real JSON Lines sink: when the audit log cannot take a record, the guard denies
//! (fail closed) instead of granting an unrecorded permit, and recovers when the log does.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::{sync::Arc, time::Duration};

use zta::{
    Action, AgentId, AuditSink, Credential, DenyReason, Guard, MemoryStateStore, Request,
    identity::static_agents::{AgentEntry, AgentKey, StaticConfig, StaticProvider},
    policy::PolicySet,
};
use zta_audit_jsonl::{JsonlConfig, JsonlSink, OnFull};

const POLICY: &str = "policies:\n  - {name: tools, effect: allow, conditions: {action_type: call_tool}}\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_audit_queue_denies_and_the_guard_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = JsonlConfig::new(dir.path());
    config.queue_capacity = 1;
    config.on_full = OnFull::Deny;
    let sink = Arc::new(JsonlSink::open(config).unwrap());

    let key = AgentKey::generate().unwrap();
    let id = AgentId::new("research_bot").unwrap();
    let identities =
        StaticConfig::new("aud").with_agent(AgentEntry::from_public_key(id.clone(), key.public_key_pem()));
    let provider = StaticProvider::new(identities, Arc::new(MemoryStateStore::new())).unwrap();
    let guard = Guard::builder(Arc::new(PolicySet::from_yaml(POLICY).unwrap()), sink.clone())
        .identity_provider(Arc::new(provider))
        .build()
        .unwrap();
    let credential = || -> Credential { key.assertion(&id, "aud", Duration::from_secs(30)).unwrap() };
    let request = || Request::new(Action::tool_call("web_search"));

    let pause = sink.pause_writer().await;
    let first = guard.check(&credential(), request()).await;
    assert!(first.is_ok(), "the queue had room for one record: {first:?}");
    let second = guard.check(&credential(), request()).await.unwrap_err();
    assert_eq!(second.reason(), &DenyReason::AuditUnavailable);
    assert_eq!(second.decision().unwrap().basis, zta::Basis::FailClosed);

    drop(pause);
    sink.flush().await.unwrap();
    let third = guard.check(&credential(), request()).await;
    assert!(third.is_ok(), "the guard permits again once the log takes records: {third:?}");
    sink.close().await.unwrap();
    let report = zta_audit_jsonl::verify(dir.path(), None).unwrap();
    assert_eq!(report.records, 2, "the permits are on record; the refused record is not: {report}");
}
