//! Microsegmentation: crossings are denied before any rule unless a flow permits them; a
//! permitted crossing still needs an allow rule.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use crate::common;

use common::*;
use zta_core::{Action, Basis, Effect};
use zta_policy::SEGMENT_BOUNDARY;

const POLICY: &str = r#"
segments:
  flows:
    - {from: research, to: analysis, actions: [send_message, handoff]}
    - {from: ops, to: research}
policies:
  - {name: allow_everything, effect: allow, priority: 1000}
"#;

fn msg(from: Option<&str>, to: Option<&str>) -> Req {
    let mut r = req("sender", Action::message("chat")).target("receiver", to);
    if let Some(s) = from {
        r = r.segment(s);
    }
    r
}

fn boundary() -> (Effect, Basis, Vec<String>) {
    (Effect::Deny, Basis::ExplicitDeny, vec![SEGMENT_BOUNDARY.to_owned()])
}

#[test]
fn a_crossing_without_a_flow_is_denied_above_every_rule() {
    let p = load(POLICY);
    assert_eq!(outcome(&p, msg(Some("writing"), Some("research"))), boundary());
    assert_eq!(outcome(&p, msg(Some("analysis"), Some("research"))), boundary(), "flows are directed");
}

#[test]
fn flows_permit_listed_actions_only() {
    let p = load(POLICY);
    assert_eq!(effect(&p, msg(Some("research"), Some("analysis"))), Effect::Allow);
    let handoff = req("s", Action::handoff("h")).segment("research").target("r", Some("analysis"));
    assert_eq!(effect(&p, handoff), Effect::Allow);
    let delegation = req("s", Action::delegation("d")).segment("research").target("r", Some("analysis"));
    assert_eq!(outcome(&p, delegation), boundary());
    // `actions` omitted: any action.
    let delegation = req("s", Action::delegation("d")).segment("ops").target("r", Some("research"));
    assert_eq!(effect(&p, delegation), Effect::Allow);
}

#[test]
fn unknown_segments() {
    let p = load(POLICY);
    assert_eq!(outcome(&p, msg(None, Some("research"))), boundary(), "unknown sender, known target");
    assert_eq!(outcome(&p, msg(Some("research"), None)), boundary(), "known sender, unknown target");
    assert_eq!(effect(&p, msg(None, None)), Effect::Allow, "both unknown: same");
    assert_eq!(effect(&p, msg(Some("research"), Some("research"))), Effect::Allow);
    // No target agent: no boundary to cross.
    assert_eq!(effect(&p, req("s", Action::task("t")).segment("research")), Effect::Allow);
}

#[test]
fn a_permitted_crossing_still_needs_an_allow_rule() {
    let p = load(
        r#"
segments: {flows: [{from: research, to: analysis}]}
policies:
  - {name: research_to_analysis_tasks, effect: allow, conditions: {action_type: execute_task, target.segment: analysis}}
"#,
    );
    assert_eq!(
        outcome(&p, msg(Some("research"), Some("analysis"))),
        (Effect::Deny, Basis::DefaultDeny, vec![])
    );
    let task = req("s", Action::task("t")).segment("research").target("r", Some("analysis"));
    assert_eq!(effect(&p, task), Effect::Allow);
}

#[test]
fn without_a_segments_section_boundaries_are_not_enforced() {
    let p = load("policies:\n  - {name: all, effect: allow}\n");
    assert!(!p.enforces_segments());
    assert_eq!(effect(&p, msg(Some("writing"), Some("research"))), Effect::Allow);
    let p = load("segments: {}\npolicies:\n  - {name: all, effect: allow}\n");
    assert!(p.enforces_segments(), "an empty section enforces with no flows");
    assert_eq!(outcome(&p, msg(Some("writing"), Some("research"))), boundary());
}
