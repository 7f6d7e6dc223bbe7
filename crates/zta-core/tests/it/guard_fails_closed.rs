//! Every fault on the request path denies, and the denial is audited.
use crate::common;

use std::sync::{Arc, atomic::Ordering};

use common::*;
use zta_core::*;

#[tokio::test]
async fn policy_error_denies_fail_closed() {
    let sink = Arc::new(MemorySink::default());
    let g = guard(FnPolicy(Box::new(|_| Err(PolicyError::Evaluation("boom".into())))), sink.clone());
    let denied = g.check(&research(), Request::new(Action::task("t"))).await.unwrap_err();
    assert_eq!(denied.reason(), &DenyReason::Policy(Basis::FailClosed));
    assert_eq!(sink.last().basis, Some(Basis::FailClosed));
    assert_eq!(sink.last().effect, Effect::Deny);
}

#[tokio::test]
async fn inconsistent_decision_denies_fail_closed() {
    let sink = Arc::new(MemorySink::default());
    let policy = FnPolicy(Box::new(|_| {
        let mut d = decision(Basis::ExplicitDeny, "liar");
        d.effect = Effect::Allow;
        Ok(d)
    }));
    let g = guard(policy, sink.clone());
    let denied = g.check(&research(), Request::new(Action::task("t"))).await.unwrap_err();
    assert_eq!(denied.reason(), &DenyReason::Policy(Basis::FailClosed));
}

#[tokio::test]
async fn audit_sink_failure_denies_a_permitted_request() {
    let sink = Arc::new(MemorySink::default());
    let g = guard(allow_all(), sink.clone());
    sink.refuse.store(true, Ordering::SeqCst);
    let denied = g.check(&research(), Request::new(Action::task("t"))).await.unwrap_err();
    assert_eq!(denied.reason(), &DenyReason::AuditUnavailable);
    assert_eq!(denied.decision().unwrap().basis, Basis::FailClosed);
    sink.refuse.store(false, Ordering::SeqCst);
    assert!(g.check(&research(), Request::new(Action::task("t"))).await.is_ok());
}

#[tokio::test]
async fn obligation_the_enforcement_point_cannot_discharge_denies() {
    let with_obligation = || {
        FnPolicy(Box::new(|_| {
            let mut d = decision(Basis::Permitted, "needs-approval");
            d.obligations
                .push(Obligation { name: "require_approval".into(), params: serde_json::Value::Null });
            Ok(d)
        }))
    };
    let sink = Arc::new(MemorySink::default());
    let g = guard(with_obligation(), sink.clone());
    let denied = g.check(&research(), Request::new(Action::task("t"))).await.unwrap_err();
    assert_eq!(denied.reason(), &DenyReason::Obligation("require_approval".into()));
    assert_eq!(sink.last().basis, Some(Basis::FailClosed));

    let g = Guard::builder(Arc::new(with_obligation()), sink.clone())
        .identity_provider(Arc::new(crew()))
        .discharges("require_approval")
        .build()
        .unwrap();
    let permit = g.check(&research(), Request::new(Action::task("t"))).await.unwrap();
    assert_eq!(permit.obligations()[0].name, "require_approval");
}

#[tokio::test]
async fn wrong_credential_is_denied_and_audited_without_an_agent() {
    let sink = Arc::new(MemorySink::default());
    let g = guard(allow_all(), sink.clone());
    let denied =
        g.check(&Credential::password("research_bot", "wrong"), Request::new(Action::task("t"))).await;
    let denied = denied.unwrap_err();
    assert!(matches!(denied.reason(), DenyReason::Unauthenticated(AuthError::Invalid { .. })));
    let record = sink.last();
    assert_eq!(record.agent_id, None);
    assert!(record.reason.unwrap().contains("wrong password"));
    // What the agent sees says nothing about why.
    assert!(!denied.to_string().contains("wrong password"));
}

#[tokio::test]
async fn oversized_and_unsupported_credentials_are_denied() {
    let sink = Arc::new(MemorySink::default());
    let g = guard(allow_all(), sink.clone());
    let big = Credential::password("research_bot", "x".repeat(MAX_CREDENTIAL_LEN + 1));
    let denied = g.check(&big, Request::new(Action::task("t"))).await.unwrap_err();
    assert!(matches!(denied.reason(), DenyReason::Unauthenticated(AuthError::Invalid { .. })));
    let denied = g.check(&Credential::bearer("abc"), Request::new(Action::task("t"))).await.unwrap_err();
    assert_eq!(denied.reason(), &DenyReason::Unauthenticated(AuthError::Unsupported("bearer")));
    assert_eq!(sink.records().len(), 2);
}

#[tokio::test]
async fn denial_shown_to_the_agent_names_no_rule() {
    let sink = Arc::new(MemorySink::default());
    let g =
        guard(FnPolicy(Box::new(|_| Ok(decision(Basis::ExplicitDeny, "secret-rule-name")))), sink.clone());
    let denied = g.check(&research(), Request::new(Action::task("t"))).await.unwrap_err();
    assert!(!denied.to_string().contains("secret-rule-name"));
    assert_eq!(&*denied.decision().unwrap().determining[0], "secret-rule-name");
    assert_eq!(&*sink.last().determining[0], "secret-rule-name");
}

#[tokio::test]
async fn permit_covers_only_the_checked_action() {
    let g = guard(allow_all(), Arc::new(MemorySink::default()));
    let permit = g.check(&research(), Request::new(Action::tool_call("web_search"))).await.unwrap();
    assert!(permit.covers(&Action::tool_call("web_search"), None));
    assert!(!permit.covers(&Action::tool_call("shell"), None));
    assert!(!permit.covers(&Action::tool_call("web_search"), Some(&AgentId::new("writer_bot").unwrap())));
}

#[tokio::test]
async fn a_guard_without_identity_cannot_be_built() {
    let err = Guard::builder(Arc::new(allow_all()), Arc::new(MemorySink::default())).build().unwrap_err();
    assert_eq!(err, GuardError::NoIdentity);
}

#[tokio::test]
async fn an_unreachable_suspension_store_denies() {
    use zta_testkit::{FailingStore, StateOp};
    let sink = Arc::new(MemorySink::default());
    let store = Arc::new(FailingStore::new());
    let g = Guard::builder(Arc::new(allow_all()), sink.clone())
        .identity_provider(Arc::new(crew()))
        .state_store(store.clone())
        .build()
        .unwrap();
    store.fail(&[StateOp::IsSuspended]);
    let denied = g.check(&research(), Request::new(Action::task("t"))).await.unwrap_err();
    assert!(
        matches!(denied.reason(), DenyReason::Unauthenticated(AuthError::StateUnavailable { .. })),
        "{:?}",
        denied.reason()
    );
    assert_eq!(sink.last().effect, Effect::Deny);
    store.fail(&[StateOp::Suspend]);
    let agent = AgentId::new("research_bot").unwrap();
    assert!(
        g.suspend_agent(&agent, &Actor::Local, "test").await.is_err(),
        "a suspension that was not stored is an error"
    );
    store.recover();
    assert!(g.check(&research(), Request::new(Action::task("t"))).await.is_ok());
}
