//! Priority tiers, deny-overrides within a tier, default deny, determining rules, obligations,
//! order independence, and the TOML/JSON forms of the same model.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use crate::common;

use common::*;
use zta_core::{Action, Basis, Effect};
use zta_policy::{Format, PolicySet, Source};

#[test]
fn equal_priority_deny_wins_whatever_the_file_order() {
    // The original let file order decide ties.
    for yaml in [
        "policies:\n  - {name: a, effect: allow, priority: 5}\n  - {name: d, effect: deny, priority: 5}\n",
        "policies:\n  - {name: d, effect: deny, priority: 5}\n  - {name: a, effect: allow, priority: 5}\n",
    ] {
        let p = load(yaml);
        assert_eq!(
            outcome(&p, req("x", Action::task("t"))),
            (Effect::Deny, Basis::ExplicitDeny, vec!["d".into()])
        );
    }
}

#[test]
fn the_highest_matching_tier_decides() {
    let p = load(
        r#"
policies:
  - {name: deny_low, effect: deny, priority: 1}
  - {name: allow_mid, effect: allow, priority: 50, conditions: {action_type: execute_task}}
  - {name: deny_high, effect: deny, priority: 100, conditions: {action_type: send_message}}
"#,
    );
    assert_eq!(
        outcome(&p, req("x", Action::task("t"))),
        (Effect::Allow, Basis::Permitted, vec!["allow_mid".into()])
    );
    assert_eq!(outcome(&p, req("x", Action::message("m"))).2, vec!["deny_high".to_owned()]);
    assert_eq!(outcome(&p, req("x", Action::tool_call("t"))).2, vec!["deny_low".to_owned()]);
}

#[test]
fn no_matching_rule_is_a_default_deny() {
    let p = load("policies:\n  - {name: a, effect: allow, conditions: {action_type: nope}}\n");
    assert_eq!(outcome(&p, req("x", Action::task("t"))), (Effect::Deny, Basis::DefaultDeny, vec![]));
    let empty = load("policies: []\n");
    assert!(empty.is_empty());
    assert_eq!(outcome(&empty, req("x", Action::task("t"))).1, Basis::DefaultDeny);
}

#[test]
fn determining_lists_every_matching_rule_of_the_winning_effect_sorted_by_name() {
    let p = load(
        r#"
policies:
  - {name: zeta, effect: deny, priority: 3}
  - {name: alpha, effect: deny, priority: 3, conditions: {action_type: execute_task}}
  - {name: allow_it, effect: allow, priority: 3}
  - {name: lower, effect: deny, priority: 2}
  - {name: mid, effect: deny, priority: 3, conditions: {agent_id: x}}
"#,
    );
    assert_eq!(
        outcome(&p, req("x", Action::task("t"))),
        (Effect::Deny, Basis::ExplicitDeny, vec!["alpha".into(), "mid".into(), "zeta".into()])
    );
    let p = load(
        "policies:\n  - {name: b, effect: allow, priority: 3}\n  - {name: a, effect: allow, priority: 3, conditions: {agent_id: x}}\n",
    );
    assert_eq!(
        outcome(&p, req("x", Action::task("t"))),
        (Effect::Allow, Basis::Permitted, vec!["a".into(), "b".into()])
    );
}

#[test]
fn allow_rules_attach_their_obligations() {
    let p = load(
        r#"
policies:
  - name: tools_with_approval
    effect: allow
    priority: 10
    conditions: {action_type: call_tool}
    obligations:
      - require_approval
      - {name: rate_limit, params: {per_minute: 10}}
  - {name: tasks, effect: allow, priority: 10, conditions: {action_type: execute_task}}
"#,
    );
    let d = p.decide(&req("x", Action::tool_call("shell")).build());
    assert!(d.is_allowed());
    let names: Vec<&str> = d.obligations.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["require_approval", "rate_limit"]);
    assert_eq!(d.obligations[1].params["per_minute"], 10);
    assert!(p.decide(&req("x", Action::task("t")).build()).obligations.is_empty());
}

#[test]
fn a_file_without_priorities_is_pure_deny_overrides() {
    let p = load(
        "policies:\n  - {name: a, effect: allow}\n  - {name: d, effect: deny, conditions: {agent_id: bad}}\n",
    );
    assert_eq!(effect(&p, req("good", Action::task("t"))), Effect::Allow);
    assert_eq!(effect(&p, req("bad", Action::task("t"))), Effect::Deny);
}

const YAML: &str = r#"
segments:
  flows: [{from: research, to: analysis, actions: [send_message]}]
policies:
  - name: allow_research
    effect: allow
    priority: 90
    conditions:
      agent_id: {regex: "^research_.*"}
      action_type: {in: [execute_task, research]}
  - name: deny_system
    effect: deny
    priority: 200
    conditions: {action_type: send_message, message.type: {regex: "^system$"}}
"#;

const TOML: &str = r#"
[segments]
flows = [{ from = "research", to = "analysis", actions = ["send_message"] }]

[[policies]]
name = "deny_system"
effect = "deny"
priority = 200
conditions = { action_type = "send_message", "message.type" = { regex = "^system$" } }

[[policies]]
name = "allow_research"
effect = "allow"
priority = 90
[policies.conditions]
agent_id = { regex = "^research_.*" }
action_type = { in = ["execute_task", "research"] }
"#;

const JSON: &str = r#"{
  "policies": [
    {"name": "allow_research", "effect": "allow", "priority": 90,
     "conditions": {"action_type": {"in": ["execute_task", "research"]}, "agent_id": {"regex": "^research_.*"}}},
    {"name": "deny_system", "effect": "deny", "priority": 200,
     "conditions": {"action_type": "send_message", "message.type": {"regex": "^system$"}}}
  ],
  "segments": {"flows": [{"from": "research", "to": "analysis", "actions": ["send_message"]}]}
}"#;

#[test]
fn yaml_toml_and_json_forms_compile_to_the_same_policy() {
    let from = |text, format| PolicySet::from_sources(&[Source { origin: "p", text, format }]).unwrap();
    let y = from(YAML, Format::Yaml);
    let t = from(TOML, Format::Toml);
    let j = from(JSON, Format::Json);
    assert_eq!(y.digest(), t.digest());
    assert_eq!(y.digest(), j.digest());
    assert_eq!(effect(&t, req("research_bot", Action::task("t"))), Effect::Allow);
}

#[test]
fn reordering_rules_or_keys_changes_neither_decision_nor_digest() {
    let a = load(YAML);
    let b = load(
        r#"
policies:
  - name: deny_system
    conditions: {message.type: {regex: "^system$"}, action_type: {eq: send_message}}
    priority: 200
    effect: deny
  - priority: 90
    effect: allow
    name: allow_research
    conditions:
      action_type: {in: [execute_task, research]}
      agent_id: {regex: "^research_.*"}
segments:
  flows: [{actions: [send_message], to: analysis, from: research}]
"#,
    );
    assert_eq!(a.digest(), b.digest());
    let c = load(&YAML.replace("priority: 90", "priority: 91"));
    assert_ne!(a.digest(), c.digest());
}

#[test]
fn several_files_load_together() {
    let p = PolicySet::from_sources(&[
        Source {
            origin: "a.yaml",
            text: "policies:\n  - {name: a, effect: allow, conditions: {agent_id: x}}\n",
            format: Format::Yaml,
        },
        Source {
            origin: "b.yaml",
            text: "policies:\n  - {name: b, effect: deny, priority: 1, conditions: {agent_id: y}}\n",
            format: Format::Yaml,
        },
    ])
    .unwrap();
    assert_eq!(p.len(), 2);
    assert_eq!(effect(&p, req("x", Action::task("t"))), Effect::Allow);
    assert_eq!(effect(&p, req("y", Action::task("t"))), Effect::Deny);
}
