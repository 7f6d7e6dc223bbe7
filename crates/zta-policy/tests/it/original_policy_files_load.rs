//! The original project's policy files load unchanged and decide as POLICY.md says.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use crate::common;

use common::*;
use zta_core::{Action, Basis, Effect, Resource};
use zta_policy::PolicySet;

#[test]
fn policy_md_example_loads_and_decides() {
    let p = PolicySet::from_files(&[fixture("policy_md_example.yaml")]).unwrap();
    assert_eq!(p.len(), 3);
    assert_eq!(
        outcome(&p, req("research_bot", Action::task("summarize"))),
        (Effect::Allow, Basis::Permitted, vec!["allow_research_agents".to_owned()])
    );
    assert_eq!(
        outcome(
            &p,
            req("research_bot", Action::message("system"))
                .ctx("message", serde_json::json!({"type": "system"}))
        ),
        (Effect::Deny, Basis::ExplicitDeny, vec!["deny_system_messages".to_owned()])
    );
    // A message without a type is not a system message; nothing allows it, so default_deny.
    assert_eq!(
        outcome(&p, req("research_bot", Action::message("chat"))),
        (Effect::Deny, Basis::ExplicitDeny, vec!["default_deny".to_owned()])
    );
    assert_eq!(effect(&p, req("writer", Action::task("x"))), Effect::Deny);
}

#[test]
fn the_originals_whole_config_file_loads() {
    let p = PolicySet::from_files(&[fixture("original_config.yaml")]).unwrap();
    assert_eq!(p.len(), 14);
    assert_eq!(effect(&p, req("analyst_7", Action::task("t"))), Effect::Allow);
    assert_eq!(
        effect(&p, req("worker", Action::task("t")).resource(Resource::new("read", "doc1"))),
        Effect::Allow
    );
    assert_eq!(
        effect(&p, req("worker", Action::task("t")).resource(Resource::new("write", "doc1"))),
        Effect::Deny
    );
    assert_eq!(
        outcome(
            &p,
            req("bot", Action::custom("create_agent").unwrap())
                .ctx("framework", "openai_agents")
                .ctx("agent_name", "ResearchBot")
        ),
        (Effect::Deny, Basis::ExplicitDeny, vec!["deny_suspicious_openai_operations".to_owned()])
    );
    assert_eq!(
        effect(
            &p,
            req("bot", Action::custom("execute_guardrail").unwrap()).ctx("framework", "openai_agents")
        ),
        Effect::Allow
    );
    assert_eq!(effect(&p, req("bot", Action::message("chat")).ctx("framework", "crewai")), Effect::Allow);
}

#[test]
fn loading_the_shipped_file_warns_that_its_openai_allows_can_never_allow() {
    let p = PolicySet::from_files(&[fixture("original_config.yaml")]).unwrap();
    let shadowed: Vec<&str> = p
        .warnings()
        .iter()
        .filter(|w| {
            w.message.contains("can never allow") && w.message.contains("deny_suspicious_openai_operations")
        })
        .filter_map(|w| w.rule.as_deref())
        .collect();
    assert_eq!(
        shadowed,
        ["allow_openai_agent_creation", "allow_openai_tool_execution", "allow_openai_runner_execution"],
        "{:#?}",
        p.warnings()
    );
    let w = p.warnings().iter().find(|w| w.rule.as_deref() == Some("allow_openai_agent_creation")).unwrap();
    assert!(w.file.ends_with("original_config.yaml"));
    assert!(w.line > 0 && w.column > 0);
    assert!(w.hint.is_some());
    // The handoff, session and guardrail allows are not covered by that deny.
    for ok in
        ["allow_openai_agent_handoffs", "allow_openai_session_management", "allow_openai_guardrail_execution"]
    {
        assert!(p.warnings().iter().all(|w| w.rule.as_deref() != Some(ok)), "{ok}");
    }
}
