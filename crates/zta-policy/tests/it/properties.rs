//! Property tests: deny-overrides within the deciding tier, allow soundness, order and
//! duplication independence, the indexed evaluation equals a naive full scan over
//! `AuthzRequest::attribute`, and no panics on arbitrary policies and requests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use crate::common;

use common::*;
use proptest::prelude::*;
use serde_json::{Value, json};
use zta_core::{Action, AttrValue, AuthzRequest, Basis, Effect, Resource};
use zta_policy::{Format, PolicySet, Source};

const PATHS: &[&str] = &[
    "agent_id",
    "source_agent",
    "action_type",
    "tool_name",
    "resource.type",
    "principal.roles",
    "principal.segment",
    "target.segment",
    "message.type",
    "x",
];
const STRS: &[&str] = &["a", "b", "call_tool", "execute_task", "send_message", "web", "doc", "system", "r1"];

#[derive(Debug, Clone)]
struct GenRule {
    effect: bool,
    priority: i64,
    conds: Vec<(usize, Vec<(&'static str, Value)>)>,
}

fn literal() -> impl Strategy<Value = Value> {
    prop_oneof![4 => prop::sample::select(STRS).prop_map(Value::from), 1 => (0i64..3).prop_map(Value::from)]
}

fn op() -> impl Strategy<Value = (&'static str, Value)> {
    prop_oneof![
        3 => literal().prop_map(|v| ("eq", v)),
        1 => literal().prop_map(|v| ("ne", v)),
        2 => prop::collection::vec(literal(), 1..3).prop_map(|v| ("in", Value::from(v))),
        1 => prop::collection::vec(literal(), 1..3).prop_map(|v| ("not_in", Value::from(v))),
        1 => any::<bool>().prop_map(|b| ("exists", Value::from(b))),
        1 => prop::sample::select(&["", "a", "s", "we"][..]).prop_map(|p| ("starts_with", Value::from(p))),
    ]
}

fn rule() -> impl Strategy<Value = GenRule> {
    (any::<bool>(), 0i64..4, prop::collection::vec((0..PATHS.len(), prop::collection::vec(op(), 1..3)), 0..3))
        .prop_map(|(effect, priority, conds)| GenRule { effect, priority, conds })
}

fn policy_json(rules: &[(String, GenRule)]) -> String {
    let rules: Vec<Value> = rules
        .iter()
        .map(|(name, r)| {
            let mut conds = serde_json::Map::new();
            for (p, ops) in &r.conds {
                let ops: serde_json::Map<String, Value> = ops.iter().map(|(o, v)| ((*o).to_owned(), v.clone())).collect();
                conds.insert(PATHS[*p].to_owned(), Value::Object(ops));
            }
            json!({"name": name, "effect": if r.effect {"allow"} else {"deny"}, "priority": r.priority, "conditions": conds})
        })
        .collect();
    json!({ "policies": rules }).to_string()
}

fn compile(rules: &[(String, GenRule)]) -> PolicySet {
    let text = policy_json(rules);
    PolicySet::from_sources(&[Source { origin: "gen.json", text: &text, format: Format::Json }]).unwrap()
}

fn named(rules: Vec<GenRule>) -> Vec<(String, GenRule)> {
    rules.into_iter().enumerate().map(|(i, r)| (format!("r{i:02}"), r)).collect()
}

/// Rules in generated policies: a condition map holds each path once, an operator map each
/// operator once.
fn dedup_paths(mut r: GenRule) -> GenRule {
    let mut seen = std::collections::HashSet::new();
    r.conds.retain(|(p, _)| seen.insert(*p));
    for (_, ops) in &mut r.conds {
        let mut names = std::collections::HashSet::new();
        ops.retain(|(o, _)| names.insert(*o));
    }
    r
}

fn request() -> impl Strategy<Value = AuthzRequest> {
    (
        prop::sample::select(&["a", "b", "r1", "web"][..]),
        0..5usize,
        prop::sample::select(STRS),
        prop::collection::vec(prop::sample::select(STRS), 0..3),
        prop::option::of(prop::sample::select(STRS)),
        prop::option::of((
            prop::sample::select(&["b", "r1"][..]),
            prop::option::of(prop::sample::select(STRS)),
        )),
        prop::option::of(prop::sample::select(STRS)),
        prop::option::of(prop_oneof![
            literal(),
            prop::collection::vec(literal(), 0..3).prop_map(Value::from),
            Just(json!({"nested": "a"})),
        ]),
        prop::option::of(prop::sample::select(STRS)),
    )
        .prop_map(|(agent, kind, name, roles, segment, target, mtype, x, rtype)| {
            let action = match kind {
                0 => Action::tool_call(name),
                1 => Action::message(name),
                2 => Action::task(name),
                3 => Action::handoff(name),
                _ => Action::custom(name).unwrap_or_else(|_| Action::task(name)),
            };
            let mut r = req(agent, action).roles(&roles);
            if let Some(s) = segment {
                r = r.segment(s);
            }
            if let Some((t, seg)) = target {
                r = r.target(t, seg);
            }
            if let Some(m) = mtype {
                r = r.ctx("message", json!({ "type": m }));
            }
            if let Some(x) = x {
                r = r.ctx("x", x);
            }
            if let Some(t) = rtype {
                r = r.resource(Resource::new(t, "id"));
            }
            r.build()
        })
}

// ----- the naive evaluator: a full scan using AuthzRequest::attribute -----

fn elems(v: AttrValue<'_>) -> Vec<Value> {
    match v {
        AttrValue::Str(s) => vec![Value::from(s)],
        AttrValue::List(l) => l.iter().map(|s| Value::from(s.as_str())).collect(),
        AttrValue::Json(Value::Array(a)) => a.clone(),
        AttrValue::Json(j) => vec![j.clone()],
    }
}

fn naive_op(op: &str, lit: &Value, attr: Option<AttrValue<'_>>) -> bool {
    let Some(v) = attr else {
        return matches!(op, "ne" | "not_in") || (op == "exists" && lit == &json!(false));
    };
    let es = elems(v);
    match op {
        "eq" => es.contains(lit),
        "ne" => !es.contains(lit),
        "in" => es.iter().any(|e| lit.as_array().unwrap().contains(e)),
        "not_in" => !es.iter().any(|e| lit.as_array().unwrap().contains(e)),
        "exists" => lit == &json!(true),
        "starts_with" => es.iter().any(|e| e.as_str().is_some_and(|s| s.starts_with(lit.as_str().unwrap()))),
        _ => unreachable!(),
    }
}

fn naive_matches(r: &GenRule, req: &AuthzRequest) -> bool {
    r.conds.iter().all(|(p, ops)| {
        let attr = req.attribute(PATHS[*p]);
        ops.iter().all(|(o, v)| naive_op(o, v, attr))
    })
}

fn naive_decide(rules: &[(String, GenRule)], req: &AuthzRequest) -> (Effect, Basis, Vec<String>) {
    let mut priorities: Vec<i64> = rules.iter().map(|(_, r)| r.priority).collect();
    priorities.sort_unstable_by(|a, b| b.cmp(a));
    priorities.dedup();
    for p in priorities {
        let matching = |allow: bool| {
            let mut v: Vec<String> = rules
                .iter()
                .filter(|(_, r)| r.priority == p && r.effect == allow && naive_matches(r, req))
                .map(|(n, _)| n.clone())
                .collect();
            v.sort();
            v
        };
        let denies = matching(false);
        if !denies.is_empty() {
            return (Effect::Deny, Basis::ExplicitDeny, denies);
        }
        let allows = matching(true);
        if !allows.is_empty() {
            return (Effect::Allow, Basis::Permitted, allows);
        }
    }
    (Effect::Deny, Basis::DefaultDeny, vec![])
}

fn decide(p: &PolicySet, req: &AuthzRequest) -> (Effect, Basis, Vec<String>) {
    let d = p.decide(req);
    (d.effect, d.basis, d.determining.iter().map(|n| n.to_string()).collect())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn indexed_evaluation_equals_a_naive_full_scan(
        rules in prop::collection::vec(rule().prop_map(dedup_paths), 0..12),
        reqs in prop::collection::vec(request(), 1..8),
    ) {
        let rules = named(rules);
        let p = compile(&rules);
        for r in &reqs {
            prop_assert_eq!(decide(&p, r), naive_decide(&rules, r));
        }
    }

    #[test]
    fn deny_in_the_deciding_tier_denies_and_allow_is_sound(
        rules in prop::collection::vec(rule().prop_map(dedup_paths), 1..12),
        r in request(),
    ) {
        let rules = named(rules);
        let p = compile(&rules);
        let (effect, basis, determining) = decide(&p, &r);
        let by_name = |n: &str| &rules.iter().find(|(m, _)| m == n).unwrap().1;
        let matching: Vec<&GenRule> = rules.iter().map(|(_, g)| g).filter(|g| naive_matches(g, &r)).collect();
        match basis {
            Basis::DefaultDeny => prop_assert!(matching.is_empty()),
            _ => {
                let tier = by_name(&determining[0]).priority;
                prop_assert!(matching.iter().all(|g| g.priority <= tier), "a higher tier matched");
                let deny_in_tier = matching.iter().any(|g| g.priority == tier && !g.effect);
                // A matching deny in the deciding tier means Deny.
                prop_assert_eq!(effect == Effect::Deny, deny_in_tier);
                if effect == Effect::Allow {
                    // Allow: a matching allow, and no matching deny in its tier.
                    prop_assert!(determining.iter().all(|n| by_name(n).effect && naive_matches(by_name(n), &r)));
                    prop_assert!(!deny_in_tier);
                }
            }
        }
    }

    #[test]
    fn shuffling_rules_changes_neither_decision_nor_digest(
        rules in prop::collection::vec(rule().prop_map(dedup_paths), 0..10),
        reqs in prop::collection::vec(request(), 1..6),
        seed in any::<u64>(),
    ) {
        let rules = named(rules);
        let mut shuffled = rules.clone();
        // A deterministic shuffle from the seed.
        let mut s = seed | 1;
        for i in (1..shuffled.len()).rev() {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            shuffled.swap(i, (s % (i as u64 + 1)) as usize);
        }
        let (a, b) = (compile(&rules), compile(&shuffled));
        prop_assert_eq!(a.digest(), b.digest());
        for r in &reqs {
            prop_assert_eq!(a.decide(r), b.decide(r));
        }
    }

    #[test]
    fn duplicating_rules_changes_no_effect_or_basis(
        rules in prop::collection::vec(rule().prop_map(dedup_paths), 0..10),
        reqs in prop::collection::vec(request(), 1..6),
    ) {
        let rules = named(rules);
        let mut doubled = rules.clone();
        doubled.extend(rules.iter().map(|(n, g)| (format!("{n}_copy"), g.clone())));
        let (a, b) = (compile(&rules), compile(&doubled));
        for r in &reqs {
            let (da, db) = (a.decide(r), b.decide(r));
            prop_assert_eq!((da.effect, da.basis), (db.effect, db.basis));
            let expected: Vec<String> = {
                let mut v: Vec<String> = da.determining.iter().flat_map(|n| [n.to_string(), format!("{n}_copy")]).collect();
                v.sort();
                v
            };
            prop_assert_eq!(db.determining.iter().map(|n| n.to_string()).collect::<Vec<_>>(), expected);
        }
    }

    #[test]
    fn arbitrary_text_never_panics_the_loader(text in ".{0,400}") {
        let _ = PolicySet::from_yaml(&text);
        let _ = PolicySet::from_sources(&[Source { origin: "f", text: &text, format: Format::Json }]);
        let _ = PolicySet::from_sources(&[Source { origin: "f", text: &text, format: Format::Toml }]);
    }

    #[test]
    fn arbitrary_policy_shapes_never_panic(doc in arb_json(3)) {
        let text = json!({"policies": [doc.clone()], "segments": doc}).to_string();
        if let Ok(p) = PolicySet::from_sources(&[Source { origin: "f", text: &text, format: Format::Json }]) {
            let _ = p.decide(&req("a", Action::task("t")).build());
        }
        let text = json!({"policies": [{"name": "r", "effect": "allow", "conditions": {"x": doc.clone()}, "when": doc}]}).to_string();
        if let Ok(p) = PolicySet::from_sources(&[Source { origin: "f", text: &text, format: Format::Json }]) {
            let _ = p.explain(&req("a", Action::task("t")).ctx("x", json!([1, "a", {"b": null}])).build());
        }
    }

    #[test]
    fn arbitrary_requests_never_panic(ctx in arb_json(3), r in request()) {
        let p = load(include_str!("../fixtures/original_config.yaml"));
        let _ = p.decide(&r);
        if let Some(obj) = ctx.as_object() {
            let mut rq = req("a", Action::task("t"));
            for (k, v) in obj {
                rq = rq.ctx(k, v.clone());
            }
            if let Ok(built) = AuthzRequest::new(rq.principal, rq.request, None) {
                let _ = p.decide(&built);
                let _ = p.explain(&built).to_string();
            }
        }
        let _ = zta_policy::cli::request_from_attributes(&ctx);
    }
}

fn arb_json(depth: u32) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        prop::sample::select(
            &["eq", "in", "regex", "allow", "deny", "name", "conditions", "(", "^a$", "10.0.0.0/8", "*"][..]
        )
        .prop_map(Value::from),
        ".{0,8}".prop_map(Value::from),
    ];
    leaf.prop_recursive(depth, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(
                prop::sample::select(
                    &[
                        "name",
                        "effect",
                        "priority",
                        "conditions",
                        "when",
                        "all",
                        "any",
                        "not",
                        "eq",
                        "in",
                        "regex",
                        "exists",
                        "gt",
                        "cidr",
                        "flows",
                        "from",
                        "to",
                        "actions",
                        "obligations",
                        "x",
                        "message.type",
                    ][..]
                )
                .prop_map(str::to_owned),
                inner,
                0..4
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}
