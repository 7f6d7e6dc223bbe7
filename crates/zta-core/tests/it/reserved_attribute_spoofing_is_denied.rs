//! A request can never choose who it acts as: identity comes only from the credential.
use crate::common;

use std::sync::Arc;

use common::*;
use zta_core::*;

#[tokio::test]
async fn context_claiming_another_agent_is_denied_and_audited() {
    let sink = Arc::new(MemorySink::default());
    let g = guard(allow_all(), sink.clone());
    for key in ["agent_id", "source_agent", "principal", "principal.roles", "action_type"] {
        let request = Request::new(Action::task("research")).with_context(key, "writer_bot");
        let denied = g.check(&research(), request).await.unwrap_err();
        assert_eq!(denied.reason(), &DenyReason::ReservedAttribute(key.to_owned()));
        let record = sink.last();
        assert_eq!(record.id, denied.request_id());
        assert_eq!(record.effect, Effect::Deny);
        assert_eq!(record.agent_id.as_ref().map(AgentId::as_str), Some("research_bot"));
    }
}

#[tokio::test]
async fn policy_sees_the_verified_agent_not_the_callers_claim() {
    let sink = Arc::new(MemorySink::default());
    let policy = FnPolicy(Box::new(|r: &AuthzRequest| {
        let basis = if r.attribute("agent_id") == Some(AttrValue::Str("writer_bot")) {
            Basis::Permitted
        } else {
            Basis::DefaultDeny
        };
        Ok(decision(basis, "only-writer"))
    }));
    let g = guard(policy, sink.clone());
    let request = Request::new(Action::message("chat")).with_context("sender", "writer_bot");
    let denied = g.check(&research(), request).await.unwrap_err();
    assert_eq!(denied.reason(), &DenyReason::Policy(Basis::DefaultDeny));
}

#[tokio::test]
async fn target_segment_comes_from_the_identity_provider() {
    let sink = Arc::new(MemorySink::default());
    let policy = FnPolicy(Box::new(|r: &AuthzRequest| {
        assert_eq!(r.attribute("target.segment"), Some(AttrValue::Str("writing")));
        Ok(decision(Basis::Permitted, "seen"))
    }));
    let g = guard(policy, sink);
    let request = Request::new(Action::message("result")).with_target(AgentId::new("writer_bot").unwrap());
    let permit = g.check(&research(), request).await.unwrap();
    assert_eq!(permit.request().target().unwrap().segment.as_deref(), Some("writing"));
}

#[tokio::test]
async fn a_dotted_key_is_an_invalid_request_not_an_absent_attribute() {
    // `{"message.type": "system"}` would leave the path `message.type` absent, so a deny
    // rule on it would not fire; the guard refuses the shape instead of letting it through.
    let sink = Arc::new(MemorySink::default());
    let g = guard(allow_all(), sink.clone());
    let request = Request::new(Action::message("chat")).with_context("message.type", "system");
    let denied = g.check(&research(), request).await.unwrap_err();
    assert!(matches!(denied.reason(), DenyReason::InvalidRequest(_)), "{:?}", denied.reason());
    assert_eq!(denied.reason().to_string(), "invalid request");
    let record = sink.last();
    assert_eq!((record.id, record.effect), (denied.request_id(), Effect::Deny));
    assert!(record.reason.as_deref().unwrap_or_default().contains("`message.type`"), "{:?}", record.reason);
}

#[tokio::test]
async fn a_request_the_policy_schema_refuses_is_denied_before_any_rule() {
    let sink = Arc::new(MemorySink::default());
    let policy =
        FnPolicy(Box::new(|_| Err(PolicyError::InvalidRequest("`message.type` must be a string".into()))));
    let g = guard(policy, sink.clone());
    let denied = g.check(&research(), Request::new(Action::message("chat"))).await.unwrap_err();
    assert_eq!(denied.reason(), &DenyReason::InvalidRequest("`message.type` must be a string".into()));
    assert!(denied.decision().is_none());
    assert_eq!(sink.last().reason.as_deref(), Some("invalid request: `message.type` must be a string"));
}
