//! `what_can` against evaluation: for random rule sets (with references), agents and requests,
//! every request the engine allows is covered by what `what_can` reported for the agent: each
//! determining rule is listed among the allows, admits the request's action type, tool, target
//! agent and target segment, and every open condition it reports holds for the request. And
//! what a policy's answer looks like for a person.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use crate::{
    common::*,
    references_agree_with_a_model::{
        attribute, compile, model_holds, policy_json, principal as any_principal, request_of, rule,
    },
};
use proptest::prelude::*;
use zta_core::{AttrValue, Attribute, AuthzRequest, Principal};
use zta_policy::{OpenCondition, Values, WhatCan};

fn string(r: &AuthzRequest, a: Attribute) -> Option<&str> {
    match r.reserved(a) {
        Some(AttrValue::Str(s)) => Some(s),
        _ => None,
    }
}

/// An open condition, read by the model: the tested side is the principal's value when
/// `what_can` fixed it, else the request's; the operand a literal, or `{"attr": path}` for an
/// attribute the request decides.
fn open_holds(c: &OpenCondition, r: &AuthzRequest) -> bool {
    let tested = c.value.clone().or_else(|| attribute(r, &c.path));
    let operand = match c.operand.as_object().and_then(|m| m.get("attr")) {
        Some(path) => attribute(r, path.as_str().unwrap()),
        None => Some(c.operand.clone()),
    };
    model_holds(&c.operator, tested, operand)
}

fn covered(w: &WhatCan, r: &AuthzRequest, rule: &str) -> bool {
    w.allows.iter().any(|a| {
        a.rule == rule
            && a.actions.admits(string(r, Attribute::ActionType))
            && a.tools.admits(string(r, Attribute::ToolName))
            && a.targets.admits(string(r, Attribute::TargetAgent))
            && a.target_segments.admits(string(r, Attribute::TargetSegment))
            && a.open.iter().all(|c| open_holds(c, r))
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn every_allowed_request_is_covered(
        rules in prop::collection::vec(rule(), 0..8),
        (who, reqs) in any_principal().prop_flat_map(|p| (Just(p.clone()), prop::collection::vec(request_of(p), 1..10))),
    ) {
        let rules = rules.into_iter().enumerate().map(|(i, r)| (format!("r{i:02}"), r)).collect();
        let (p, rules) = compile(rules);
        let w = p.what_can(&who);
        for r in &reqs {
            let d = p.decide(r);
            if d.is_allowed() {
                for rule in d.determining.iter() {
                    prop_assert!(covered(&w, r, rule), "{rule} not covered\nrequest {r:?}\npolicy {}\n{w}", policy_json(&rules));
                }
            }
        }
    }
}

fn writer(groups: &[&str]) -> Principal {
    principal("writer").with_tenant("acme").with_groups(groups.iter().copied()).with_delegation(["ceo"])
}

#[test]
fn the_crew_documents_policy_answers_per_agent() {
    let p =
        zta_policy::PolicySet::from_files(&[std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../examples/policies/crew-documents.yaml")])
        .unwrap();
    let w = p.what_can(&writer(&["analyst"]));
    let names: Vec<&str> = w.allows.iter().map(|a| a.rule.as_str()).collect();
    assert_eq!(names, ["edit_for_the_delegator", "edit_own_documents", "message_peers", "read_documents"]);
    let own = &w.allows[1];
    assert_eq!(own.tools, Values::Only(vec!["edit_document".into()]));
    // The reference to the principal is resolved: the request must name this owner.
    let open: Vec<String> = own.open.iter().map(ToString::to_string).collect();
    assert_eq!(open, ["resource.owner eq \"writer\"", "resource.type eq \"document\""]);
    assert_eq!(own.overridden_by, ["stay_in_your_tenant"]);
    let delegated: Vec<String> = w.allows[0].open.iter().map(ToString::to_string).collect();
    assert!(delegated.contains(&"resource.owner in [\"ceo\"]".to_owned()), "{delegated:?}");
    // The peer list becomes the open condition of the deny that keeps messages to peers.
    let deny = w.denies.iter().find(|d| d.rule == "message_only_your_peers").unwrap();
    assert_eq!(deny.open[0].to_string(), "target_agent not_in [\"analyst\"]");
    assert!(w.may_call_tool("edit_document") && w.may_call_tool("read_document"));
    assert!(!w.may_call_tool("delete_document"));
    // Without peers nobody may be messaged, and without a delegation chain nothing is edited
    // for another agent.
    let alone = p.what_can(&principal("writer").with_tenant("acme"));
    let names: Vec<&str> = alone.allows.iter().map(|a| a.rule.as_str()).collect();
    assert_eq!(names, ["edit_own_documents", "read_documents"]);
    let text = alone.to_string();
    assert!(text.contains("edit_own_documents (priority 100)"), "{text}");
    assert!(text.contains("open: resource.owner eq \"writer\""), "{text}");
    let json = serde_json::to_value(&alone).unwrap();
    assert_eq!(json["allows"][0]["tools"], serde_json::json!({"only": ["edit_document"]}));
}

#[test]
fn segments_and_decided_rules() {
    let p = load(
        r#"
segments:
  flows: [{from: red, to: blue, actions: [send_message]}]
policies:
  - {name: suspended, effect: deny, priority: 50, conditions: {principal.roles: suspended}}
  - {name: red_tools, effect: allow, priority: 10, conditions: {principal.segment: red, tool_name: {in: [a, b]}}}
  - {name: peers, effect: allow, priority: 10, conditions: {target_agent: {in: {attr: principal.groups}}}}
"#,
    );
    let red = principal("r").with_segment("red").with_groups(["g1"]);
    let w = p.what_can(&red);
    assert_eq!(w.allows.len(), 2);
    assert_eq!(w.allows[1].rule, "red_tools");
    assert_eq!(w.allows[1].tools, Values::Only(vec!["a".into(), "b".into()]));
    assert_eq!(w.allows[0].targets, Values::Only(vec!["g1".into()]));
    assert!(w.denies.is_empty(), "the suspended deny cannot match");
    let s = w.segments.as_ref().unwrap();
    assert_eq!(
        (s.from.as_deref(), s.flows.clone()),
        (Some("red"), vec![("blue".into(), Some(vec!["send_message".into()]))])
    );
    // A suspended agent: the unconditional deny above every allow leaves nothing.
    let w = p.what_can(&red.clone().with_roles(["suspended"]));
    assert!(w.allows.is_empty(), "{w}");
    // Another segment: red_tools is decided false.
    let w = p.what_can(&principal("b").with_segment("blue"));
    assert!(w.allows.is_empty(), "no groups, no red segment: {w}");
}
