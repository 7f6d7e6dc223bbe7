//! `explain` lists, for each rule, which condition held or failed and with what value, plus
//! the decision; it reads well as text and serializes to JSON.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use crate::common;

use common::*;
use serde_json::json;
use zta_core::{Action, Effect};

const POLICY: &str = r#"
segments:
  flows: [{from: research, to: analysis, actions: [send_message]}]
policies:
  - name: deny_system_messages
    effect: deny
    priority: 200
    conditions: {action_type: send_message, message.type: {regex: "^system$"}}
  - name: allow_research_agents
    effect: allow
    priority: 90
    conditions: {agent_id: {regex: "^research_.*"}, action_type: {in: [execute_task, send_message]}}
    when: {not: {principal.roles: suspended}}
  - {name: default_deny, effect: deny, priority: 0}
"#;

#[test]
fn explanation_shows_each_condition_with_its_value() {
    let p = load(POLICY);
    let r = req("research_bot", Action::message("chat"))
        .segment("research")
        .target("analyst", Some("analysis"))
        .ctx("message", json!({"type": "chat"}));
    let e = p.explain(&r.clone().build());
    assert_eq!(e.decision, p.decide(&r.build()));
    assert_eq!(e.decision.effect, Effect::Allow);
    assert_eq!(e.deciding_priority, Some(90));
    let seg = e.segment.as_ref().unwrap();
    assert!(seg.permitted && seg.reason.contains("research -> analysis"));

    let deny = &e.rules[0];
    assert_eq!(deny.name, "deny_system_messages");
    assert!(deny.reached && !deny.matched && !deny.determining);
    let mt = deny.conditions.iter().find(|c| c.path == "message.type").unwrap();
    assert_eq!((mt.operator.as_str(), mt.held), ("regex", false));
    assert_eq!(mt.actual, Some(json!("chat")));
    assert_eq!(mt.operand, json!("^system$"));

    let allow = &e.rules[1];
    assert!(allow.matched && allow.determining);
    assert!(allow.conditions.iter().all(|c| c.held));
    assert!(allow.when.is_some());

    let default = &e.rules[2];
    assert!(!default.reached, "below the deciding tier");

    let text = e.to_string();
    assert!(text.starts_with("ALLOW (permitted) by allow_research_agents"), "{text}");
    assert!(text.contains("failed message.type regex \"^system$\"   (value: \"chat\")"), "{text}");
    assert!(text.contains("<- decides"), "{text}");
    assert!(text.contains("not reached: default_deny (priority 0)"), "{text}");

    let j = serde_json::to_value(&e).unwrap();
    assert_eq!(j["decision"]["effect"], "allow");
    assert_eq!(j["rules"][0]["conditions"][1]["actual"], "chat");
}

#[test]
fn absent_values_and_segment_denials_are_shown() {
    let p = load(POLICY);
    let r =
        req("writer", Action::message("chat")).segment("writing").target("research_bot", Some("research"));
    let e = p.explain(&r.build());
    assert_eq!(e.decision.determining[0].as_ref(), "segment-boundary");
    assert!(e.rules.iter().all(|r| !r.reached));
    let text = e.to_string();
    assert!(text.contains("crossing a segment boundary that no flow permits"), "{text}");

    let e = p.explain(&req("research_bot", Action::message("m")).build());
    let mt = e.rules[0].conditions.iter().find(|c| c.path == "message.type").unwrap();
    assert_eq!(mt.actual, None);
    assert!(e.to_string().contains("(value: absent)"));
}
