//! Load-time analysis: shadowed allows, dead rules below an unconditional rule, duplicates.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use crate::common;

use common::*;
use zta_policy::Severity;

fn warned(yaml: &str) -> Vec<(String, String)> {
    let p = load(yaml);
    p.warnings()
        .iter()
        .map(|w| {
            assert_eq!(w.severity, Severity::Warning);
            assert!(w.line > 0 && w.hint.is_some(), "{w}");
            (w.rule.clone().unwrap(), w.message.clone())
        })
        .collect()
}

#[test]
fn an_allow_covered_by_a_higher_or_equal_deny_is_shadowed() {
    let w = warned(
        r#"
policies:
  - {name: deny_crewai, effect: deny, priority: 10, conditions: {framework: crewai}}
  - {name: allow_crewai_msgs, effect: allow, priority: 10, conditions: {framework: crewai, action_type: send_message}}
  - {name: allow_crewai_low, effect: allow, priority: 5, conditions: {framework: crewai}}
  - {name: allow_exception, effect: allow, priority: 11, conditions: {framework: crewai, agent_id: boss}}
  - {name: allow_autogen, effect: allow, priority: 5, conditions: {framework: autogen}}
"#,
    );
    let names: Vec<&str> = w.iter().map(|(r, _)| r.as_str()).collect();
    assert_eq!(names, ["allow_crewai_msgs", "allow_crewai_low"], "{w:#?}");
    assert!(w[0].1.contains("deny_crewai"));
}

#[test]
fn pinned_values_are_checked_against_the_denys_operators() {
    let w = warned(
        r#"
policies:
  - {name: deny_tools, effect: deny, priority: 9, conditions: {tool_name: {regex: "^(shell|exec)"}, action_type: {in: [call_tool]}}}
  - {name: allow_shell, effect: allow, priority: 1, conditions: {action_type: call_tool, tool_name: shell}}
  - {name: allow_two, effect: allow, priority: 1, conditions: {action_type: call_tool, tool_name: {in: [shell, exec_py]}}}
  - {name: allow_mixed, effect: allow, priority: 1, conditions: {action_type: call_tool, tool_name: {in: [shell, web]}}}
  - {name: allow_any_tool, effect: allow, priority: 1, conditions: {action_type: call_tool}}
"#,
    );
    let names: Vec<&str> = w.iter().map(|(r, _)| r.as_str()).collect();
    assert_eq!(names, ["allow_shell", "allow_two"], "{w:#?}");
}

#[test]
fn negative_deny_conditions_are_not_assumed_to_cover() {
    let w = warned(
        r#"
policies:
  - {name: deny_non_admin, effect: deny, priority: 9, conditions: {role: {ne: admin}}}
  - {name: allow_admin, effect: allow, priority: 1, conditions: {role: admin}}
  - {name: deny_when, effect: deny, priority: 9, conditions: {a: 1}, when: {b: 2}}
  - {name: allow_a, effect: allow, priority: 1, conditions: {a: 1}}
"#,
    );
    assert!(w.is_empty(), "{w:#?}");
}

#[test]
fn rules_below_an_unconditional_rule_are_dead() {
    let w = warned(
        r#"
policies:
  - {name: block_all, effect: deny, priority: 50}
  - {name: allow_low, effect: allow, priority: 10, conditions: {a: 1}}
  - {name: deny_low, effect: deny, priority: 0, conditions: {b: 1}}
  - {name: allow_high, effect: allow, priority: 60, conditions: {a: 1}}
"#,
    );
    let names: Vec<&str> = w.iter().map(|(r, _)| r.as_str()).collect();
    assert_eq!(names, ["allow_low", "deny_low"], "{w:#?}");
    assert!(w[0].1.contains("block_all"));
}

#[test]
fn duplicate_rules_are_reported() {
    let w = warned(
        r#"
policies:
  - {name: a, effect: allow, priority: 1, conditions: {x: 1, y: {in: [2]}}}
  - {name: b, effect: allow, priority: 1, description: same thing, conditions: {y: {in: [2]}, x: {eq: 1}}}
  - {name: c, effect: allow, priority: 2, conditions: {x: 1, y: {in: [2]}}}
"#,
    );
    assert_eq!(w.len(), 1, "{w:#?}");
    assert_eq!(w[0].0, "b");
    assert!(w[0].1.contains("duplicates rule `a`"));
}

#[test]
fn a_clean_policy_has_no_warnings() {
    assert!(warned("policies:\n  - {name: a, effect: allow, priority: 1, conditions: {x: 1}}\n  - {name: d, effect: deny}\n").is_empty());
}

#[test]
fn the_shadowing_check_stops_at_its_budget_and_says_so() {
    // 1,500 allows, each compared with 1,500 denies that name no action type: 2.25 million
    // pairs, over the 2 million the check compares. The first allow in name order is shadowed.
    let mut yaml = String::from("policies:\n");
    yaml.push_str("  - {name: a_0000, effect: allow, conditions: {tool_name: t, zone: z}}\n");
    for i in 1..1500 {
        yaml.push_str(&format!("  - {{name: a_{i:04}, effect: allow, conditions: {{tool_name: t{i}}}}}\n"));
    }
    for i in 0..1500 {
        yaml.push_str(&format!("  - {{name: d_{i:04}, effect: deny, conditions: {{zone: z}}}}\n"));
    }
    let w = warned(&yaml);
    assert!(w.iter().any(|(r, m)| r == "a_0000" && m.contains("can never allow")), "{w:#?}");
    let stopped: Vec<_> = w.iter().filter(|(_, m)| m.contains("shadowing analysis stopped")).collect();
    assert_eq!(stopped.len(), 1, "{w:#?}");
    assert_eq!(stopped[0].0, "a_1333", "{w:#?}");
}
