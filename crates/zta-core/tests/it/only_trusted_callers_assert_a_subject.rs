//! `Guard::check_asserted`: a trusted enforcement point, proven by its own credential, may
//! vouch for a subject without the subject's credential; the subject is decided as
//! `asserted` (no roles, its known segment) and the record names who asserted it. A caller
//! that is not trusted, a caller whose credential fails, and a suspended subject are denied
//! and audited.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use zta_core::*;

use crate::common::{FnPolicy, MemorySink, allow_all, decision, guard, research};

fn id(name: &str) -> AgentId {
    AgentId::new(name).unwrap()
}

fn writer() -> Credential {
    Credential::password("writer_bot", "right")
}

#[tokio::test]
async fn a_trusted_caller_asserts_and_is_named() {
    let seen: Arc<Mutex<Option<Principal>>> = Arc::default();
    let kept = seen.clone();
    let policy = FnPolicy(Box::new(move |request| {
        *kept.lock().unwrap() = Some(request.principal().clone());
        Ok(decision(Basis::Permitted, "allow-all"))
    }));
    let sink = Arc::new(MemorySink::default());
    let g = guard(policy, sink.clone());
    let trusted = [id("writer_bot")];

    let permit = g
        .check_asserted(&writer(), &trusted, &id("research_bot"), Request::new(Action::task("t")))
        .await
        .unwrap();
    assert_eq!(permit.agent_id().as_str(), "research_bot");
    let principal = seen.lock().unwrap().clone().unwrap();
    assert_eq!(principal.auth_method, AuthMethod::Asserted);
    assert_eq!(principal.issuer, "writer_bot");
    assert!(principal.roles.is_empty(), "nothing verified the subject's roles");
    assert_eq!(principal.segment.as_deref(), Some("research"));
    let record = sink.last();
    assert_eq!(record.effect, Effect::Allow);
    assert_eq!(record.agent_id.as_ref().map(AgentId::as_str), Some("research_bot"));
    assert_eq!(record.auth_method, Some(AuthMethod::Asserted));
    assert_eq!(record.detail.get("asserted_by"), Some(&"writer_bot".into()));
}

#[tokio::test]
async fn untrusted_or_unproven_callers_and_suspended_subjects_are_denied() {
    let sink = Arc::new(MemorySink::default());
    let g = guard(allow_all(), sink.clone());
    let trusted = [id("writer_bot")];
    let subject = id("research_bot");
    let task = || Request::new(Action::task("t"));

    // Not trusted: denied, and the record names the caller and what it tried.
    let denied = g.check_asserted(&research(), &trusted, &id("writer_bot"), task()).await.unwrap_err();
    assert!(matches!(denied.reason(), DenyReason::Unauthenticated(AuthError::Invalid { .. })));
    let record = sink.last();
    assert_eq!(record.effect, Effect::Deny);
    assert_eq!(record.agent_id.as_ref().map(AgentId::as_str), Some("research_bot"));
    assert_eq!(record.detail.get("asserted_by"), Some(&"research_bot".into()));
    assert_eq!(
        record.reason.as_deref(),
        Some(
            "invalid credential: `research_bot` is not a trusted enforcement point and may not assert subject `writer_bot`"
        )
    );
    // Nothing is trusted by default.
    assert!(g.check_asserted(&writer(), &[], &subject, task()).await.is_err());
    // The caller's credential must hold.
    let wrong = Credential::password("writer_bot", "wrong");
    assert!(g.check_asserted(&wrong, &trusted, &subject, task()).await.is_err());
    assert_eq!(sink.last().agent_id, None);

    // A suspended subject is refused, whoever vouches for it.
    g.suspend_agent(&subject, &Actor::Local, "test").await.unwrap();
    let denied = g.check_asserted(&writer(), &trusted, &subject, task()).await.unwrap_err();
    assert_eq!(denied.reason(), &DenyReason::Unauthenticated(AuthError::Suspended));
    assert_eq!(sink.last().agent_id.as_ref(), Some(&subject));
    assert_eq!(sink.records().iter().filter(|r| r.event == AuditEvent::Authorization).count(), 4);
}
