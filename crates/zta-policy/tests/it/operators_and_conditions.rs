//! Every operator, typed comparisons, the absent-attribute rule, regex anchoring, list
//! attributes and `when` trees, as POLICY.md and the crate docs define them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use crate::common;

use common::*;
use serde_json::json;
use zta_core::{Action, Effect, Resource};

/// A policy with one allow rule on `cond` (YAML flow text for the condition map).
fn allow_if(cond: &str) -> zta_policy::PolicySet {
    load(&format!("policies:\n  - name: r\n    effect: allow\n    conditions: {cond}\n"))
}

fn allowed(cond: &str, r: Req) -> bool {
    effect(&allow_if(cond), r) == Effect::Allow
}

fn task() -> Req {
    req("research_bot", Action::task("t"))
}

#[test]
fn multiple_operators_in_one_condition_must_all_hold() {
    // The original read only the first key: `{ne: x, regex: ...}` was just `ne`.
    let c = r#"{tier: {gte: 2, lt: 5}}"#;
    assert!(allowed(c, task().ctx("tier", 3)));
    assert!(!allowed(c, task().ctx("tier", 5)), "second operator ignored");
    assert!(!allowed(c, task().ctx("tier", 1)), "first operator ignored");
    let c = r#"{agent_id: {regex: "^research_", ne: research_admin}}"#;
    assert!(allowed(c, req("research_bot", Action::task("t"))));
    assert!(!allowed(c, req("research_admin", Action::task("t"))));
}

#[test]
fn equality_literals_and_eq_ne() {
    assert!(allowed("{framework: crewai}", task().ctx("framework", "crewai")));
    assert!(!allowed("{framework: crewai}", task().ctx("framework", "autogen")));
    assert!(allowed("{framework: {eq: crewai}}", task().ctx("framework", "crewai")));
    assert!(allowed("{framework: {ne: crewai}}", task().ctx("framework", "autogen")));
    assert!(!allowed("{framework: {ne: crewai}}", task().ctx("framework", "crewai")));
    assert!(allowed("{urgent: true}", task().ctx("urgent", true)));
    assert!(!allowed("{urgent: true}", task().ctx("urgent", "true")), "no coercion of strings");
    assert!(allowed("{n: 3}", task().ctx("n", 3.0)), "3 == 3.0");
    assert!(!allowed("{n: 3}", task().ctx("n", "3")), "number vs string is false");
}

#[test]
fn absent_attributes_satisfy_exactly_the_negative_operators() {
    // deny {role: {ne: admin}} fires for a request with no role (the original failed open).
    let p = load(
        "policies:\n  - {name: allow_all, effect: allow, priority: 1, conditions: {}}\n  - {name: non_admins, effect: deny, priority: 1, conditions: {role: {ne: admin}}}\n",
    );
    assert_eq!(effect(&p, task()), Effect::Deny);
    assert_eq!(effect(&p, task().ctx("role", "admin")), Effect::Allow);
    assert!(allowed("{role: {not_in: [a, b]}}", task()));
    assert!(allowed("{role: {exists: false}}", task()));
    assert!(!allowed("{role: {exists: true}}", task()));
    for positive in [
        "{role: {eq: x}}",
        "{role: {in: [x]}}",
        "{role: {regex: \".*\"}}",
        "{role: {starts_with: \"\"}}",
        "{role: {ends_with: \"\"}}",
        "{role: {contains: x}}",
        "{role: {glob: \"*\"}}",
        "{role: {gt: 0}}",
        "{role: {lte: 0}}",
        "{ip: {cidr: 0.0.0.0/0}}",
        "{message.type: {regex: \"^system$\"}}",
    ] {
        assert!(!allowed(positive, task()), "{positive} held for an absent attribute");
    }
    // Absent when a parent is not a map, or the resource or target is missing.
    assert!(!allowed("{message.type: system}", task().ctx("message", "system")));
    assert!(allowed("{resource.type: {ne: doc}}", task()));
    assert!(allowed("{target_agent: {exists: false}}", task()));
}

#[test]
fn comparisons_are_typed() {
    assert!(allowed("{n: {gt: 10}}", task().ctx("n", 11)));
    assert!(!allowed("{n: {gt: 10}}", task().ctx("n", 10)));
    assert!(allowed("{n: {gte: 10}}", task().ctx("n", 10)));
    assert!(allowed("{n: {lt: 1.5}}", task().ctx("n", 1)));
    assert!(allowed("{n: {lte: -1}}", task().ctx("n", -1.0)));
    assert!(!allowed("{n: {gt: 10}}", task().ctx("n", "11")), "string vs number is false");
    assert!(!allowed("{n: {lt: 10}}", task().ctx("n", true)));
    let t = r#"{when: {gte: "2025-01-01T00:00:00Z", lt: "2026-01-01T00:00:00+00:00"}}"#;
    assert!(allowed(t, task().ctx("when", "2025-06-01T12:00:00Z")));
    assert!(allowed(t, task().ctx("when", "2025-12-31T23:00:00-00:30")));
    assert!(allowed(t, task().ctx("when", "2026-01-01T00:30:00+01:00")), "offsets are honoured");
    assert!(!allowed(t, task().ctx("when", "2026-06-01T00:00:00Z")));
    assert!(!allowed(t, task().ctx("when", "not a time")));
    assert!(!allowed(t, task().ctx("when", 20250601)), "number vs time is false");
}

#[test]
fn membership_operators() {
    assert!(allowed("{action_type: {in: [execute_task, research]}}", task()));
    assert!(!allowed("{action_type: {in: [research]}}", task()));
    assert!(allowed("{action_type: {not_in: [research]}}", task()));
    // `in` is membership, never a substring test (the original's string operand bug).
    assert!(!allowed("{action_type: {in: [execute]}}", task()));
    assert!(allowed("{n: {in: [1, 2]}}", task().ctx("n", 2)));
    assert!(allowed("{msg: {contains: secret}}", task().ctx("msg", "top secret stuff")));
    assert!(!allowed("{msg: {contains: secret}}", task().ctx("msg", "nothing")));
}

#[test]
fn regex_is_anchored_at_start_and_dollar_means_end_of_text() {
    let c = r#"{message.type: {regex: "^system$"}}"#;
    assert!(allowed(c, task().ctx("message", json!({"type": "system"}))));
    // Python's re.match("^system$", "system\n") matches; ours does not.
    assert!(!allowed(c, task().ctx("message", json!({"type": "system\n"}))));
    let c = r#"{message.type: {regex: "sys(tem)?$"}}"#;
    assert!(!allowed(c, task().ctx("message", json!({"type": "system\n"}))));
    assert!(allowed(c, task().ctx("message", json!({"type": "sys"}))));
    // Anchored at the start like re.match, not re.search.
    let c = r#"{agent_id: {regex: "research"}}"#;
    assert!(allowed(c, req("research_bot", Action::task("t"))));
    assert!(!allowed(c, req("my_research", Action::task("t"))));
    assert!(allowed(r#"{agent_id: {regex: "[a-z]+_b.t$"}}"#, req("research_bot", Action::task("t"))));
    assert!(!allowed(r#"{n: {regex: ".*"}}"#, task().ctx("n", 5)), "regex on a number is false");
}

#[test]
fn string_patterns_glob_and_cidr() {
    assert!(allowed("{tool_name: {starts_with: web_}}", req("a", Action::tool_call("web_search"))));
    assert!(allowed("{tool_name: {ends_with: _search}}", req("a", Action::tool_call("web_search"))));
    assert!(!allowed("{tool_name: {ends_with: _fetch}}", req("a", Action::tool_call("web_search"))));
    assert!(allowed("{tool_name: {glob: \"web_*\"}}", req("a", Action::tool_call("web_search"))));
    assert!(!allowed("{tool_name: {glob: \"*web\"}}", req("a", Action::tool_call("web_search"))));
    assert!(allowed("{tool_name: {glob: \"w?b_[st]earch\"}}", req("a", Action::tool_call("web_search"))));
    let c = "{client_ip: {cidr: [10.0.0.0/8, \"2001:db8::/32\"]}}";
    assert!(allowed(c, task().ctx("client_ip", "10.2.3.4")));
    assert!(allowed(c, task().ctx("client_ip", "2001:db8::7")));
    assert!(!allowed(c, task().ctx("client_ip", "192.168.1.1")));
    assert!(!allowed(c, task().ctx("client_ip", "not an ip")));
    assert!(allowed("{client_ip: {cidr: 192.168.1.100}}", task().ctx("client_ip", "192.168.1.100")));
}

#[test]
fn list_attributes_follow_the_documented_semantics() {
    let r = || task().roles(&["researcher", "reviewer"]);
    assert!(allowed("{principal.roles: researcher}", r()), "literal = membership");
    assert!(allowed("{principal.roles: {eq: reviewer}}", r()));
    assert!(!allowed("{principal.roles: admin}", r()));
    assert!(allowed("{principal.roles: {ne: admin}}", r()), "ne = no element equals");
    assert!(!allowed("{principal.roles: {ne: reviewer}}", r()));
    assert!(allowed("{principal.roles: {in: [admin, reviewer]}}", r()), "in = some element in the list");
    assert!(
        !allowed("{principal.roles: {not_in: [admin, reviewer]}}", r()),
        "not_in = no element in the list"
    );
    assert!(allowed("{principal.roles: {not_in: [admin]}}", r()));
    assert!(allowed("{principal.roles: {contains: researcher}}", r()), "contains = membership");
    assert!(!allowed("{principal.roles: {contains: research}}", r()), "not a substring of an element");
    assert!(allowed("{principal.roles: {regex: \"^rev\"}}", r()), "pattern = some element matches");
    assert!(allowed("{principal.roles: [researcher, reviewer]}", r()), "list literal = whole list");
    assert!(!allowed("{principal.roles: [reviewer, researcher]}", r()), "in order");
    assert!(allowed("{principal.roles: {exists: true}}", task()), "an empty list is present");
    assert!(!allowed("{principal.roles: researcher}", task()));
    // JSON arrays in the context behave the same.
    assert!(allowed("{tags: urgent}", task().ctx("tags", json!(["urgent", "pii"]))));
    assert!(allowed("{scores: {gt: 5}}", task().ctx("scores", json!([1, 9]))));
    assert!(!allowed("{tags: {not_in: [pii]}}", task().ctx("tags", json!(["urgent", "pii"]))));
}

#[test]
fn resource_and_context_paths() {
    let r = task().resource(Resource::new("dataset", "d1").with_attribute("meta", json!({"owner": "ana"})));
    assert!(allowed("{resource.type: dataset, resource.id: d1, resource.meta.owner: ana}", r.clone()));
    assert!(!allowed("{resource.meta.owner: bob}", r));
    assert!(allowed("{a.b.c: 1}", task().ctx("a", json!({"b": {"c": 1}}))));
}

#[test]
fn when_trees_combine_conditions() {
    let p = load(
        r#"
policies:
  - name: r
    effect: allow
    conditions: {action_type: execute_task}
    when:
      all:
        - any:
            - {principal.roles: admin}
            - {team: red, level: {gte: 3}}
        - not: {blocked: true}
"#,
    );
    assert_eq!(effect(&p, task().roles(&["admin"])), Effect::Allow);
    assert_eq!(effect(&p, task().ctx("team", "red").ctx("level", 3)), Effect::Allow);
    assert_eq!(effect(&p, task().ctx("team", "red").ctx("level", 2)), Effect::Deny);
    assert_eq!(effect(&p, task().roles(&["admin"]).ctx("blocked", true)), Effect::Deny);
    assert_eq!(effect(&p, req("x", Action::message("m")).roles(&["admin"])), Effect::Deny);
}
