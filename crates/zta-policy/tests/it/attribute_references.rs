//! Conditions that compare two attributes of one request (`{attr: path}` as the operand): each
//! operator, absent and wrong-typed references, identity attributes still from the credential,
//! the load errors with their positions, and `explain` showing both values.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use crate::common;

use common::*;
use serde_json::{Value, json};
use zta_core::{Action, Effect, Resource};
use zta_policy::{Diagnostic, Format, PolicySet, Severity, Source};

/// One allow rule `x: {op: {attr: y}}`, decided for context values `x` and `y` (`None`: absent).
fn holds(op: &str, x: Option<Value>, y: Option<Value>) -> bool {
    let p = load(&format!(
        "policies:\n  - {{name: r, effect: allow, conditions: {{x: {{{op}: {{attr: y}}}}}}}}\n"
    ));
    let mut r = req("a", Action::task("t"));
    if let Some(x) = x {
        r = r.ctx("x", x);
    }
    if let Some(y) = y {
        r = r.ctx("y", y);
    }
    effect(&p, r) == Effect::Allow
}

fn some(v: Value) -> Option<Value> {
    Some(v)
}

#[test]
fn eq_and_ne_compare_typed_values() {
    assert!(holds("eq", some(json!("ana")), some(json!("ana"))));
    assert!(!holds("eq", some(json!("ana")), some(json!("bob"))));
    assert!(holds("eq", some(json!(2)), some(json!(2.0))), "numbers compare as numbers");
    assert!(!holds("eq", some(json!("2")), some(json!(2))), "across types: false");
    assert!(holds("eq", some(json!(["a", "b"])), some(json!("b"))), "a list attribute: membership");
    assert!(holds("eq", some(json!(["a", "b"])), some(json!(["a", "b"]))), "a list operand: whole list");
    assert!(!holds("eq", some(json!(["a", "b"])), some(json!(["b", "a"]))));
    assert!(!holds("eq", some(json!({"k": 1})), some(json!({"k": 1}))), "maps equal nothing");
    assert!(holds("ne", some(json!("ana")), some(json!("bob"))));
    assert!(!holds("ne", some(json!("ana")), some(json!("ana"))));
    assert!(holds("ne", some(json!("2")), some(json!(2))), "`ne` is the negation of `eq`");
}

#[test]
fn ordering_operators_compare_numbers_or_times() {
    for (op, lt, eq, gt) in [
        ("gt", false, false, true),
        ("gte", false, true, true),
        ("lt", true, false, false),
        ("lte", true, true, false),
    ] {
        assert_eq!(holds(op, some(json!(1)), some(json!(2))), lt, "{op} 1 2");
        assert_eq!(holds(op, some(json!(2)), some(json!(2))), eq, "{op} 2 2");
        assert_eq!(holds(op, some(json!(3.5)), some(json!(2))), gt, "{op} 3.5 2");
        let (early, late) = (json!("2030-01-01T00:00:00Z"), json!("2031-01-01T00:00:00+01:00"));
        assert_eq!(holds(op, some(early.clone()), some(late.clone())), lt, "{op} times");
        assert_eq!(holds(op, some(late), some(early)), gt, "{op} times");
        // Across types, or a string that is no time: false.
        assert!(!holds(op, some(json!("3")), some(json!(2))));
        assert!(!holds(op, some(json!("b")), some(json!("a"))));
        assert!(!holds(op, some(json!(3)), some(json!([2]))));
    }
}

#[test]
fn in_and_not_in_take_a_referenced_list() {
    assert!(holds("in", some(json!("bob")), some(json!(["ana", "bob"]))));
    assert!(!holds("in", some(json!("eve")), some(json!(["ana", "bob"]))));
    assert!(holds("in", some(json!(["eve", "bob"])), some(json!(["ana", "bob"]))), "any element");
    assert!(!holds("in", some(json!("bob")), some(json!("bob"))), "a scalar is not a list");
    assert!(holds("not_in", some(json!("eve")), some(json!(["ana", "bob"]))));
    assert!(!holds("not_in", some(json!("bob")), some(json!(["ana", "bob"]))));
    assert!(holds("not_in", some(json!("bob")), some(json!("bob"))), "the negation of `in`");
}

#[test]
fn contains_takes_the_referenced_element() {
    assert!(holds("contains", some(json!(["ana", "bob"])), some(json!("bob"))));
    assert!(!holds("contains", some(json!(["ana", "bob"])), some(json!("eve"))));
    assert!(holds("contains", some(json!("research_bot")), some(json!("search"))), "substring");
    assert!(!holds("contains", some(json!(["ana"])), some(json!(["ana"]))), "a list is not an element");
    assert!(!holds("contains", some(json!(12)), some(json!(1))));
}

#[test]
fn starts_with_and_ends_with_take_a_referenced_string() {
    assert!(holds("starts_with", some(json!("tenant_a/doc")), some(json!("tenant_a/"))));
    assert!(!holds("starts_with", some(json!("tenant_b/doc")), some(json!("tenant_a/"))));
    assert!(holds("ends_with", some(json!("doc.tenant_a")), some(json!(".tenant_a"))));
    assert!(!holds("starts_with", some(json!("1234")), some(json!(12))), "a number is not a prefix");
}

#[test]
fn an_absent_side_satisfies_exactly_the_negative_operators() {
    let ops = ["eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in", "contains", "starts_with", "ends_with"];
    for op in ops {
        let negative = matches!(op, "ne" | "not_in");
        assert_eq!(holds(op, some(json!("a")), None), negative, "{op}: referenced absent");
        assert_eq!(holds(op, None, some(json!(["a"]))), negative, "{op}: tested absent");
        assert_eq!(holds(op, None, None), negative, "{op}: both absent");
    }
}

#[test]
fn identity_attributes_come_from_the_credential() {
    let p = load(
        "policies:\n  - {name: own, effect: allow, conditions: {resource.owner: {eq: {attr: agent_id}}}}\n  - {name: tenant, effect: allow, conditions: {resource.tenant: {eq: {attr: principal.tenant}}}}\n",
    );
    let doc = |owner: &str| Resource::new("doc", "d1").with_attribute("owner", owner);
    assert_eq!(effect(&p, req("ana", Action::task("edit")).resource(doc("ana"))), Effect::Allow);
    assert_eq!(effect(&p, req("bob", Action::task("edit")).resource(doc("ana"))), Effect::Deny);
    // A context key cannot stand in for the principal's attributes: the request is refused.
    let mut r = req("bob", Action::task("edit")).resource(doc("ana"));
    r.request = r.request.with_context("agent_id", "ana");
    assert!(zta_core::AuthzRequest::new(r.principal, r.request, None).is_err());
    // The tenant compared is the verified one; a principal without a tenant matches nothing.
    let in_tenant = |tenant: Option<&str>| {
        let mut r = req("bob", Action::task("edit"))
            .resource(Resource::new("doc", "d1").with_attribute("tenant", "acme"));
        if let Some(t) = tenant {
            r.principal = r.principal.with_tenant(t);
        }
        effect(&p, r)
    };
    assert_eq!(in_tenant(Some("acme")), Effect::Allow);
    assert_eq!(in_tenant(Some("other")), Effect::Deny);
    assert_eq!(in_tenant(None), Effect::Deny);
}

#[test]
fn references_work_inside_when_and_beside_literals() {
    let p = load(
        "policies:\n  - name: r\n    effect: allow\n    conditions: {level: {gte: {attr: min}, lt: 10}}\n    when: {not: {resource.owner: {ne: {attr: source_agent}}}}\n",
    );
    let r = |level: i64| {
        req("ana", Action::task("t"))
            .ctx("level", level)
            .ctx("min", 3)
            .resource(Resource::new("doc", "d").with_attribute("owner", "ana"))
    };
    assert_eq!(effect(&p, r(5)), Effect::Allow);
    assert_eq!(effect(&p, r(2)), Effect::Deny);
    assert_eq!(effect(&p, r(10)), Effect::Deny);
}

fn errors(yaml: &str) -> Vec<Diagnostic> {
    let e = PolicySet::from_sources(&[Source { origin: "p.yaml", text: yaml, format: Format::Yaml }])
        .unwrap_err();
    let d = e.diagnostics().to_vec();
    for x in &d {
        assert_eq!((x.severity, x.file.as_str()), (Severity::Error, "p.yaml"));
        assert!(x.line > 0 && x.column > 0 && x.hint.is_some(), "{x}");
    }
    d
}

fn one(cond: &str) -> Diagnostic {
    let d = errors(&format!("policies:\n  - name: r\n    effect: allow\n    conditions:\n      {cond}\n"));
    assert_eq!(d.len(), 1, "{d:#?}");
    d.into_iter().next().unwrap()
}

#[test]
fn a_reference_to_a_reserved_path_that_does_not_exist_is_refused() {
    let d = one("resource.owner: {eq: {attr: principal.agentid}}");
    assert_eq!((d.line, d.column, d.rule.as_deref()), (5, 35, Some("r")));
    assert!(d.message.contains("unknown attribute `principal.agentid`"), "{d}");
    assert!(d.hint.unwrap().contains("did you mean `principal.agent_id`"));
    let d = one("resource.owner: {eq: {attr: 7}}");
    assert!(d.message.contains("`attr` must name an attribute path"), "{d}");
    let d = one("resource.owner: {eq: {attr: agent_id, x: 1}}");
    assert!(d.message.contains("one key, `attr`"), "{d}");
}

#[test]
fn operators_that_cannot_take_a_reference_are_refused() {
    for op in ["regex", "glob", "cidr", "exists"] {
        let d = one(&format!("x: {{{op}: {{attr: y}}}}"));
        assert_eq!((d.line, d.column), (5, 14 + op.len() as u32), "{d}");
        assert!(d.message.contains(&format!("`{op}` on `x` cannot take an attribute reference")), "{d}");
        assert!(d.hint.unwrap().contains("eq ne gt"));
    }
    let d = one("x: {attr: y}");
    assert!(
        d.message.contains("needs an operator") && d.hint.clone().unwrap().contains("{eq: {attr:"),
        "{d}"
    );
}

#[test]
fn a_self_reference_is_refused_in_any_spelling() {
    for (tested, referenced) in [
        ("resource.owner", "resource.owner"),
        ("agent_id", "source_agent"),
        ("principal.agent_id", "agent_id"),
        ("message.type", "context.message.type"),
    ] {
        let d = one(&format!("{tested}: {{ne: {{attr: {referenced}}}}}"));
        assert!(d.message.contains("compared with itself"), "{d}");
        assert_eq!(d.line, 5);
    }
}

#[test]
fn a_reference_whose_types_can_never_match_is_refused() {
    // Reserved attributes have fixed types: a string is never in a string.
    let d = one("agent_id: {in: {attr: tool_name}}");
    assert!(d.message.contains("`agent_id` (string) in `tool_name` (string) can never match"), "{d}");
    assert_eq!((d.line, d.column), (5, 29));
    let d = one("principal.roles: {starts_with: {attr: principal.groups}}");
    assert!(d.message.contains("can never match"), "{d}");
    // Context types come from the schema, for the action types the rule applies to.
    let schema = "schema:\n  call_tool:\n    level: number\n    owner: string\n    peers: list<string>\n  \"*\":\n    quota: number\n";
    let with = |cond: &str| {
        format!(
            "{schema}policies:\n  - name: r\n    effect: allow\n    conditions:\n      action_type: call_tool\n      {cond}\n"
        )
    };
    for bad in [
        "level: {eq: {attr: owner}}",
        "owner: {gt: {attr: level}}",
        "owner: {in: {attr: level}}",
        "level: {contains: {attr: quota}}",
        "agent_id: {eq: {attr: peers}}",
        "tool_name: {starts_with: {attr: quota}}",
    ] {
        let d = errors(&with(bad));
        assert_eq!(d.len(), 1, "{bad}: {d:#?}");
        assert!(d[0].message.contains("can never match"), "{bad}: {}", d[0]);
        assert_eq!(d[0].line, 13, "{bad}");
    }
    for good in [
        "level: {lt: {attr: quota}}",
        "agent_id: {in: {attr: peers}}",
        "peers: {contains: {attr: agent_id}}",
        "owner: {eq: {attr: agent_id}}",
        "principal.roles: {in: {attr: peers}}",
        "undeclared: {eq: {attr: level}}",
    ] {
        let text = with(good);
        let p = PolicySet::from_sources(&[Source { origin: "p.yaml", text: &text, format: Format::Yaml }]);
        assert!(p.is_ok(), "{good}: {}", p.unwrap_err());
    }
}

#[test]
fn explain_shows_both_values_of_each_reference() {
    let p = load(
        "policies:\n  - {name: own, effect: allow, conditions: {resource.owner: {eq: {attr: agent_id}}}}\n",
    );
    let r =
        req("bob", Action::task("edit")).resource(Resource::new("doc", "d1").with_attribute("owner", "ana"));
    let e = p.explain(&r.build());
    let c = &e.rules[0].conditions[0];
    assert_eq!((c.path.as_str(), c.operator.as_str(), c.held), ("resource.owner", "eq", false));
    assert_eq!(c.operand, json!({"attr": "agent_id"}));
    assert_eq!(c.actual, Some(json!("ana")));
    let reference = c.reference.as_ref().unwrap();
    assert_eq!((reference.path.as_str(), &reference.value), ("agent_id", &Some(json!("bob"))));
    let text = e.to_string();
    assert!(
        text.contains("failed resource.owner eq {attr: agent_id}   (value: \"ana\", agent_id: \"bob\")"),
        "{text}"
    );
    let json = serde_json::to_value(&e).unwrap();
    assert_eq!(json["rules"][0]["conditions"][0]["reference"], json!({"path": "agent_id", "value": "bob"}));
    // An absent referenced attribute reads as absent.
    let e = p.explain(&req("bob", Action::task("edit")).resource(Resource::new("doc", "d1")).build());
    assert!(e.to_string().contains("(value: absent, agent_id: \"bob\")"), "{e}");
}

#[test]
fn a_reference_is_part_of_the_digest_and_not_a_literal() {
    let a = load("policies:\n  - {name: r, effect: allow, conditions: {x: {eq: {attr: y}}}}\n");
    let b = load("policies:\n  - {name: r, effect: allow, conditions: {x: {eq: {attr: context.y}}}}\n");
    let c = load("policies:\n  - {name: r, effect: allow, conditions: {x: {eq: {attr: z}}}}\n");
    assert_eq!(a.digest(), b.digest(), "`context.y` is `y`");
    assert_ne!(a.digest(), c.digest());
    // The literal string "{attr: y}" is a string, not a reference.
    let lit = load("policies:\n  - {name: r, effect: allow, conditions: {x: {eq: \"{attr: y}\"}}}\n");
    assert_eq!(effect(&lit, req("a", Action::task("t")).ctx("x", "{attr: y}")), Effect::Allow);
    assert_eq!(effect(&a, req("a", Action::task("t")).ctx("x", "{attr: y}")), Effect::Deny);
}

#[test]
fn a_referenced_attribute_the_schema_does_not_declare_is_warned_about() {
    let p = load(
        "schema:\n  call_tool:\n    owner: string\npolicies:\n  - name: r\n    effect: allow\n    conditions:\n      action_type: call_tool\n      owner: {eq: {attr: requester}}\n",
    );
    let w = p.warnings();
    assert_eq!(w.len(), 1, "{w:#?}");
    assert!(w[0].message.contains("tests `requester`, which the schema does not declare"), "{}", w[0]);
    assert_eq!((w[0].line, w[0].column), (9, 26));
}
