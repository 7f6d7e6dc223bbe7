//! `Guard::check_as`: a request that names its subject (AuthZEN's `subject.id`) is denied, and
//! audited with the agent the credential proved, unless that agent is the one named.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use zta_core::*;

use crate::common::{MemorySink, allow_all, guard, research};

#[tokio::test]
async fn the_named_subject_must_be_the_agent_the_credential_proves() {
    let sink = Arc::new(MemorySink::default());
    let g = guard(allow_all(), sink.clone());
    let named = |id: &str| AgentId::new(id).unwrap();

    let permit =
        g.check_as(&research(), &named("research_bot"), Request::new(Action::task("t"))).await.unwrap();
    assert_eq!(permit.agent_id().as_str(), "research_bot");

    let denied =
        g.check_as(&research(), &named("writer_bot"), Request::new(Action::task("t"))).await.unwrap_err();
    assert_eq!(
        denied.reason(),
        &DenyReason::Unauthenticated(AuthError::invalid(
            "the request's subject is not the agent the credential proves"
        ))
    );
    let record = sink.last();
    assert_eq!(record.effect, Effect::Deny);
    assert_eq!(record.agent_id.as_ref().map(AgentId::as_str), Some("research_bot"));
}
