//! The engine against an executable model of the semantics: a small interpreter written here
//! over JSON values and `AuthzRequest::attribute`, on random rule sets whose operands are
//! literals or references to other attributes, and random requests. They agree on every
//! decision (effect, basis and determining rules).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use crate::common;

use common::*;
use proptest::prelude::*;
use serde_json::{Value, json};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};
use zta_core::{Action, AttrValue, AuthzRequest, Basis, Effect, Principal, Resource};
use zta_policy::{Format, PolicySet, Source};

const PATHS: &[&str] = &[
    "agent_id",
    "principal.roles",
    "principal.tenant",
    "target_agent",
    "tool_name",
    "resource.owner",
    "x",
    "y",
    "z",
];
/// `eq` and `in` thrice: they pin values (what `what_can` lists).
const OPS: &[&str] = &[
    "eq",
    "eq",
    "eq",
    "ne",
    "gt",
    "gte",
    "lt",
    "lte",
    "in",
    "in",
    "in",
    "not_in",
    "contains",
    "starts_with",
    "ends_with",
];

fn values() -> Vec<Value> {
    vec![
        json!("ana"),
        json!("call_tool"),
        json!(["call_tool", "send_message", "web"]),
        json!("bob"),
        json!("an"),
        json!(1),
        json!(2.5),
        json!("2030-01-01T00:00:00Z"),
        json!("2031-06-01T00:00:00+02:00"),
        json!(["ana", "bob"]),
        json!(["bob"]),
        json!([1, 2.5]),
        json!({"k": "ana"}),
        json!(null),
        json!(true),
    ]
}

#[derive(Debug, Clone)]
enum Operand {
    Lit(Value),
    Ref(usize),
}

#[derive(Debug, Clone)]
pub(crate) struct GenRule {
    allow: bool,
    priority: i64,
    /// (tested path, operator, operand); one operator per condition.
    conds: Vec<(usize, &'static str, Operand)>,
}

fn literal(op: &'static str) -> BoxedStrategy<Value> {
    match op {
        "in" | "not_in" => prop::sample::select(vec![
            json!(["ana", "an"]),
            json!([1, "bob"]),
            json!(["x"]),
            json!(["call_tool", "web", "bob", "red"]),
        ])
        .boxed(),
        "gt" | "gte" | "lt" | "lte" => {
            prop::sample::select(vec![json!(2), json!(1.5), json!("2030-06-01T00:00:00Z")]).boxed()
        }
        "starts_with" | "ends_with" => {
            prop::sample::select(vec![json!("a"), json!("n"), json!("bo")]).boxed()
        }
        "contains" => prop::sample::select(vec![json!("an"), json!("bob"), json!(1)]).boxed(),
        // Mostly names requests use, so that pinned values often match.
        _ => prop::sample::select(vec![
            json!("ana"),
            json!("bob"),
            json!("call_tool"),
            json!("web"),
            json!("red"),
            json!(1),
            json!(["ana", "bob"]),
            json!(null),
        ])
        .boxed(),
    }
}

fn cond() -> impl Strategy<Value = (usize, &'static str, Operand)> {
    (0..PATHS.len(), prop::sample::select(OPS), 1..PATHS.len(), any::<u8>()).prop_flat_map(
        |(p, op, d, pick)| {
            // Half the operands are references, never to the tested path itself.
            let reference = Just((p, op, Operand::Ref((p + d) % PATHS.len())));
            if pick % 2 == 0 {
                literal(op).prop_map(move |v| (p, op, Operand::Lit(v))).boxed()
            } else {
                reference.boxed()
            }
        },
    )
}

pub(crate) fn rule() -> impl Strategy<Value = GenRule> {
    (any::<bool>(), 0i64..3, prop::collection::vec(cond(), 0..3)).prop_map(|(allow, priority, mut conds)| {
        let mut seen = std::collections::HashSet::new();
        conds.retain(|(p, _, _)| seen.insert(*p));
        GenRule { allow, priority, conds }
    })
}

pub(crate) fn policy_json(rules: &[(String, GenRule)]) -> String {
    let rules: Vec<Value> = rules
        .iter()
        .map(|(name, r)| {
            let conds: serde_json::Map<String, Value> = r
                .conds
                .iter()
                .map(|(p, op, o)| {
                    let operand = match o {
                        Operand::Lit(v) => v.clone(),
                        Operand::Ref(q) => json!({ "attr": PATHS[*q] }),
                    };
                    (PATHS[*p].to_owned(), json!({ *op: operand }))
                })
                .collect();
            json!({"name": name, "effect": if r.allow {"allow"} else {"deny"}, "priority": r.priority, "conditions": conds})
        })
        .collect();
    json!({ "policies": rules }).to_string()
}

fn load_json(rules: &[(String, GenRule)]) -> Result<PolicySet, zta_policy::Error> {
    let text = policy_json(rules);
    PolicySet::from_sources(&[Source { origin: "gen.json", text: &text, format: Format::Json }])
}

/// Compiles the rules, leaving out those refused for comparing two reserved attributes whose
/// fixed types can never match (the only load error the generator can provoke).
pub(crate) fn compile(mut rules: Vec<(String, GenRule)>) -> (PolicySet, Vec<(String, GenRule)>) {
    match load_json(&rules) {
        Ok(p) => (p, rules),
        Err(e) => {
            let refused: Vec<String> = e
                .diagnostics()
                .iter()
                .map(|d| {
                    assert!(d.message.contains("can never match"), "unexpected load error: {d}");
                    d.rule.clone().unwrap()
                })
                .collect();
            rules.retain(|(n, _)| !refused.contains(n));
            (load_json(&rules).unwrap(), rules)
        }
    }
}

/// A principal: agent, roles, groups (peers), tenant, segment.
pub(crate) fn principal() -> impl Strategy<Value = Principal> {
    (
        prop::sample::select(&["ana", "bob"][..]),
        prop::sample::subsequence(&["ana", "bob", "admin"][..], 0..3),
        prop::sample::subsequence(&["bob", "eve", "web"][..], 0..3),
        prop::option::of(prop::sample::select(&["ana", "acme"][..])),
        prop::option::of(prop::sample::select(&["red", "blue"][..])),
    )
        .prop_map(|(agent, roles, groups, tenant, segment)| {
            let mut p = common::principal(agent).with_roles(roles).with_groups(groups);
            if let Some(t) = tenant {
                p = p.with_tenant(t);
            }
            if let Some(s) = segment {
                p = p.with_segment(s);
            }
            p
        })
}

/// A request of `principal`: a tool call, a message or a task, with or without a target, a
/// resource owner and context values.
pub(crate) fn request_of(principal: Principal) -> impl Strategy<Value = AuthzRequest> {
    let v = prop::option::of(prop::sample::select(values()));
    (
        0..3usize,
        prop::sample::select(&["ana", "web", "call_tool"][..]),
        prop::option::of((
            prop::sample::select(&["ana", "bob", "eve"][..]),
            prop::option::of(prop::sample::select(&["red", "blue", "ana"][..])),
        )),
        prop::option::of(prop::sample::select(values())),
        (v.clone(), v.clone(), v),
    )
        .prop_map(move |(kind, name, target, owner, (x, y, z))| {
            let action = match kind {
                0 => Action::tool_call(name),
                1 => Action::message(name),
                _ => Action::task(name),
            };
            let mut r = req("a", action);
            r.principal = principal.clone();
            if let Some((t, segment)) = target {
                r = r.target(t, segment);
            }
            if let Some(o) = owner {
                r = r.resource(Resource::new("doc", "d").with_attribute("owner", o));
            }
            for (k, v) in [("x", x), ("y", y), ("z", z)] {
                if let Some(v) = v {
                    r = r.ctx(k, v);
                }
            }
            r.build()
        })
}

fn request() -> impl Strategy<Value = AuthzRequest> {
    principal().prop_flat_map(request_of)
}

// ----- the model -----

fn json_of(v: AttrValue<'_>) -> Value {
    match v {
        AttrValue::Str(s) => Value::from(s),
        AttrValue::List(l) => Value::from(l.to_vec()),
        AttrValue::Json(j) => j.clone(),
    }
}

/// Equal scalars of one type (numbers by value); lists and maps equal nothing.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::String(_) | Value::Bool(_) | Value::Null, _) => a == b,
        _ => false,
    }
}

/// A list's elements, or the value itself.
fn elems(v: &Value) -> Vec<&Value> {
    match v {
        Value::Array(a) => a.iter().collect(),
        other => vec![other],
    }
}

fn time(v: &Value) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(v.as_str()?, &Rfc3339).ok()
}

fn order(op: &str, o: std::cmp::Ordering) -> bool {
    use std::cmp::Ordering::*;
    match op {
        "gt" => o == Greater,
        "gte" => o != Less,
        "lt" => o == Less,
        _ => o != Greater,
    }
}

/// `tested op operand`, both present.
fn model_op(op: &str, t: &Value, o: &Value) -> bool {
    let any = |f: &dyn Fn(&Value) -> bool| elems(t).into_iter().any(f);
    match op {
        "eq" if o.is_array() => t
            .as_array()
            .zip(o.as_array())
            .is_some_and(|(a, b)| a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y))),
        "eq" => any(&|e| same(e, o)),
        "ne" => !model_op("eq", t, o),
        "gt" | "gte" | "lt" | "lte" => {
            if let Some(n) = o.as_f64() {
                any(&|e| e.as_f64().is_some_and(|a| a.partial_cmp(&n).is_some_and(|c| order(op, c))))
            } else if let Some(b) = time(o) {
                any(&|e| time(e).is_some_and(|a| order(op, a.cmp(&b))))
            } else {
                false
            }
        }
        "in" => o.as_array().is_some_and(|set| any(&|e| set.iter().any(|s| same(e, s)))),
        "not_in" => !model_op("in", t, o),
        "contains" => match (t, o) {
            (Value::String(h), Value::String(n)) => h.contains(n.as_str()),
            (Value::Array(a), o) => a.iter().any(|e| same(e, o)),
            _ => false,
        },
        "starts_with" => o.as_str().is_some_and(|p| any(&|e| e.as_str().is_some_and(|s| s.starts_with(p)))),
        "ends_with" => o.as_str().is_some_and(|p| any(&|e| e.as_str().is_some_and(|s| s.ends_with(p)))),
        _ => unreachable!("{op}"),
    }
}

/// `tested op operand`, where an absent side satisfies exactly the negative operators.
pub(crate) fn model_holds(op: &str, tested: Option<Value>, operand: Option<Value>) -> bool {
    match (tested, operand) {
        (Some(t), Some(o)) => model_op(op, &t, &o),
        _ => matches!(op, "ne" | "not_in"),
    }
}

pub(crate) fn attribute(req: &AuthzRequest, path: &str) -> Option<Value> {
    req.attribute(path).map(json_of)
}

fn model_matches(r: &GenRule, req: &AuthzRequest) -> bool {
    r.conds.iter().all(|(p, op, operand)| {
        let operand = match operand {
            Operand::Lit(v) => Some(v.clone()),
            Operand::Ref(q) => attribute(req, PATHS[*q]),
        };
        model_holds(op, attribute(req, PATHS[*p]), operand)
    })
}

fn model_decide(rules: &[(String, GenRule)], req: &AuthzRequest) -> (Effect, Basis, Vec<String>) {
    let mut tiers: Vec<i64> = rules.iter().map(|(_, r)| r.priority).collect();
    tiers.sort_unstable_by(|a, b| b.cmp(a));
    tiers.dedup();
    for tier in tiers {
        for allow in [false, true] {
            let mut names: Vec<String> = rules
                .iter()
                .filter(|(_, r)| r.priority == tier && r.allow == allow && model_matches(r, req))
                .map(|(n, _)| n.clone())
                .collect();
            if !names.is_empty() {
                names.sort();
                return if allow {
                    (Effect::Allow, Basis::Permitted, names)
                } else {
                    (Effect::Deny, Basis::ExplicitDeny, names)
                };
            }
        }
    }
    (Effect::Deny, Basis::DefaultDeny, Vec::new())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn the_engine_agrees_with_the_model(
        rules in prop::collection::vec(rule(), 0..8),
        reqs in prop::collection::vec(request(), 1..8),
    ) {
        let rules: Vec<(String, GenRule)> = rules.into_iter().enumerate().map(|(i, r)| (format!("r{i:02}"), r)).collect();
        let (p, rules) = compile(rules);
        for r in &reqs {
            let d = p.decide(r);
            let engine = (d.effect, d.basis, d.determining.iter().map(|n| n.to_string()).collect::<Vec<_>>());
            prop_assert_eq!(engine, model_decide(&rules, r), "policy {}", policy_json(&rules));
        }
    }
}
