//! Reserved attributes always come from the verified principal; a policy cannot be fooled by
//! request context, and paths naming no reserved attribute are refused at load.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use crate::common;

use common::*;
use zta_core::{Action, AuthzRequest, Effect, Request};

#[test]
fn agent_id_and_source_agent_come_from_the_principal() {
    let p = load(
        "policies:\n  - {name: r, effect: allow, conditions: {agent_id: research_bot, source_agent: research_bot}}\n",
    );
    assert_eq!(effect(&p, req("research_bot", Action::task("t"))), Effect::Allow);
    assert_eq!(effect(&p, req("agent3", Action::task("t"))), Effect::Deny);
    // A token for agent3 cannot claim to be research_bot through context: core refuses it.
    let forged = Request::new(Action::task("t")).with_context("agent_id", "research_bot");
    assert!(AuthzRequest::new(principal("agent3"), forged, None).is_err());
}

#[test]
fn principal_attributes_are_read() {
    let p = load(
        r#"
policies:
  - name: r
    effect: allow
    conditions:
      principal.roles: researcher
      principal.segment: research
      principal.issuer: test
      principal.auth_method: agent_key
      action.kind: task
      action.name: summarize
"#,
    );
    assert_eq!(
        effect(&p, req("a", Action::task("summarize")).roles(&["researcher"]).segment("research")),
        Effect::Allow
    );
    assert_eq!(effect(&p, req("a", Action::task("summarize")).roles(&["researcher"])), Effect::Deny);
}

#[test]
fn unknown_reserved_paths_are_load_errors() {
    for path in ["principal.rolez", "action.verb", "target.agent", "principal", "resource", "tool_name.x"] {
        let e = load_err(&format!("policies:\n  - {{name: r, effect: allow, conditions: {{{path}: x}}}}\n"));
        let d = &e.diagnostics()[0];
        assert!(d.message.contains("attribute"), "{path}: {d}");
        assert!(d.hint.is_some());
    }
    let e = load_err("policies:\n  - {name: r, effect: allow, conditions: {principal.rolez: x}}\n");
    assert!(e.diagnostics()[0].hint.as_deref().unwrap().contains("principal.roles"));
}
