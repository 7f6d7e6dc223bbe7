//! Load-time analysis: rules that can never decide (dead below an unconditional rule, or an
//! allow shadowed by a deny that matches whenever it does), duplicate rules, and (when the
//! policy has a `schema`) conditions on attributes the schema does not declare.
//!
//! The shadowing check is conservative: it warns only when it can prove coverage from the
//! rules' text. A deny covers an allow when the deny's `when` is absent or identical and every
//! condition of the deny is implied by a condition of the allow on the same attribute: the same
//! operators, or a pinned value (`eq`, or every value of an `in` list) that satisfies the deny's
//! positive operators.

use foldhash::{HashMap, HashMapExt};

use zta_core::{AttrValue, AttributePath, Effect};

use crate::{
    compile::{Check, Cond, Rule, Test},
    diag::{Diagnostic, Severity},
    engine::PolicySet,
    model::{CondSpec, Lit, Op, Operand, RuleSpec, WhenSpec},
    schema::Schema,
};

/// Most allow/deny pairs the shadowing check compares: it is quadratic in the worst case, and a
/// policy set must load in bounded time whatever it holds.
const SHADOW_PAIR_BUDGET: usize = 2_000_000;

pub(crate) fn analyze(set: &PolicySet, logic: &[String]) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let specs = &set.specs;
    let rules = &set.rules;
    let warn = |s: &RuleSpec, msg: String, hint: &str| {
        Diagnostic::new(Severity::Warning, &s.file, s.pos, msg).with_rule(Some(&s.name)).with_hint(hint)
    };

    // Rules below an unconditional rule of higher priority.
    let top_unconditional = specs
        .iter()
        .filter(|s| s.is_unconditional())
        .max_by_key(|s| (s.priority, std::cmp::Reverse(&s.name)));
    let mut dead = vec![false; specs.len()];
    if let Some(u) = top_unconditional {
        for (i, s) in specs.iter().enumerate() {
            if s.priority < u.priority {
                if let Some(d) = dead.get_mut(i) {
                    *d = true;
                }
                out.push(warn(
                    s,
                    format!(
                        "rule `{}` (priority {}) can never decide: the unconditional rule `{}` at priority {} decides every request first",
                        s.name, s.priority, u.name, u.priority
                    ),
                    "raise this rule's priority above it, or give that rule conditions",
                ));
            }
        }
    }

    // Duplicates.
    let mut by_logic: HashMap<&str, &RuleSpec> = HashMap::with_capacity(specs.len());
    for (s, key) in specs.iter().zip(logic) {
        match by_logic.get(key.as_str()) {
            Some(first) => out.push(warn(
                s,
                format!(
                    "rule `{}` duplicates rule `{}` (same effect, priority and conditions)",
                    s.name, first.name
                ),
                "remove one of them",
            )),
            None => {
                by_logic.insert(key, s);
            }
        }
    }

    // Allows shadowed by a deny of higher or equal priority. Denies are bucketed by the
    // action types they are limited to, so only plausible pairs are compared.
    let mut keyed: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut unkeyed: Vec<usize> = Vec::new();
    for (i, s) in specs.iter().enumerate() {
        if s.effect != Effect::Deny {
            continue;
        }
        match pinned_strings(s, "action_type") {
            Some(keys) => keys.into_iter().for_each(|k| keyed.entry(k).or_default().push(i)),
            None => unkeyed.push(i),
        }
    }
    let mut pairs_left = SHADOW_PAIR_BUDGET;
    for (i, (a_spec, a_rule)) in specs.iter().zip(rules).enumerate() {
        if a_spec.effect != Effect::Allow || dead.get(i).copied().unwrap_or(false) {
            continue;
        }
        let keyed_candidates = pinned_strings(a_spec, "action_type")
            .and_then(|keys| keys.first().and_then(|k| keyed.get(k)))
            .map(Vec::as_slice)
            .unwrap_or_default();
        let pairs = unkeyed.len() + keyed_candidates.len();
        if pairs > pairs_left {
            out.push(warn(
                a_spec,
                format!(
                    "shadowing analysis stopped at rule `{}` after {SHADOW_PAIR_BUDGET} allow/deny pairs; allows from here on were not checked",
                    a_spec.name
                ),
                "give deny rules an `action_type` condition: the analysis compares an allow only with denies of its action types and denies without one",
            ));
            break;
        }
        pairs_left -= pairs;
        let shadow = unkeyed.iter().chain(keyed_candidates).copied().filter_map(|j| {
            let d_spec = specs.get(j)?;
            let d_rule = rules.get(j)?;
            (d_spec.priority >= a_spec.priority && covers(d_spec, d_rule, a_spec, a_rule)).then_some(d_spec)
        });
        if let Some(d) = shadow.max_by_key(|d| (d.priority, std::cmp::Reverse(&d.name))) {
            out.push(warn(
                a_spec,
                format!(
                    "allow rule `{}` (priority {}) can never allow: deny rule `{}` (priority {}) matches every request it matches",
                    a_spec.name, a_spec.priority, d.name, d.priority
                ),
                "narrow the deny, or give the allow a higher priority than the deny if it is meant as an exception",
            ));
        }
    }
    if let Some(schema) = &set.schema {
        out.extend(specs.iter().flat_map(|s| undeclared(schema, s)));
    }
    out.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
    out
}

/// The conditions of `s` (top level and in `when`, each path once) on a context or resource
/// attribute the schema does not declare for every action type the rule can apply to: a
/// request may give such an attribute another shape (a map where a string is expected), and
/// the condition then quietly fails.
fn undeclared(schema: &Schema, s: &RuleSpec) -> Vec<Diagnostic> {
    fn collect<'a>(w: &'a WhenSpec, out: &mut Vec<&'a CondSpec>) {
        match w {
            WhenSpec::All(v) | WhenSpec::Any(v) => v.iter().for_each(|x| collect(x, out)),
            WhenSpec::Not(x) => collect(x, out),
            WhenSpec::Cond(c) => out.push(c),
        }
    }
    let mut conds: Vec<&CondSpec> = s.conditions.iter().collect();
    if let Some(w) = &s.when {
        collect(w, &mut conds);
    }
    let actions = pinned_strings(s, "action_type");
    // Tested and referenced attributes alike: a reshaped referenced value slips past too.
    let paths = conds.iter().flat_map(|c| {
        std::iter::once((c.path.as_str(), c.pos)).chain(c.ops.iter().filter_map(|o| match &o.operand {
            Operand::Ref(r) => Some((r.path.as_str(), r.pos)),
            Operand::Lit(_) => None,
        }))
    });
    let mut seen: Vec<&str> = Vec::new();
    let mut out = Vec::new();
    for (path, pos) in paths {
        let reserved =
            matches!(AttributePath::parse(path), AttributePath::Reserved(_) | AttributePath::Unknown);
        if reserved || seen.contains(&path) {
            continue;
        }
        seen.push(path);
        let (missing, hint) = match &actions {
            Some(actions) => {
                let missing: Vec<String> = actions
                    .iter()
                    .filter(|a| !schema.declares(Some(a), path))
                    .map(|a| format!("`{a}`"))
                    .collect();
                if missing.is_empty() {
                    continue;
                }
                let hint = format!(
                    "declare it in the schema (e.g. `{path}: string` under `schema:` `{}:`), so that a request giving it another shape is refused instead of slipping past this condition",
                    actions.iter().find(|a| !schema.declares(Some(a), path)).unwrap_or(&"<action>")
                );
                (missing.join(", "), hint)
            }
            None => {
                if schema.declares(None, path) {
                    continue;
                }
                (
                    "every action (`\"*\"`), and the rule does not pin `action_type`".to_owned(),
                    format!(
                        "declare `{path}` under `schema:` `\"*\":`, or pin the rule's `action_type` and declare it for those actions, so that a request giving it another shape is refused"
                    ),
                )
            }
        };
        out.push(
            Diagnostic::new(
                Severity::Warning,
                &s.file,
                pos,
                format!("rule `{}` tests `{path}`, which the schema does not declare for {missing}", s.name),
            )
            .with_rule(Some(&s.name))
            .with_hint(hint),
        );
    }
    out
}

/// The string values a rule pins `path` to (`eq` or `in` of strings), if it does.
pub(crate) fn pinned_strings<'a>(s: &'a RuleSpec, path: &str) -> Option<Vec<&'a str>> {
    let c = s.conditions.iter().find(|c| c.path == path)?;
    c.ops.iter().find_map(|o| match (o.op, o.operand.lit()?) {
        (Op::Eq, Lit::Str(v)) => Some(vec![v.as_str()]),
        (Op::In, Lit::List(items)) => items
            .iter()
            .map(|i| match i {
                Lit::Str(v) => Some(v.as_str()),
                _ => None,
            })
            .collect(),
        _ => None,
    })
}

/// Whether deny `d` matches every request allow `a` matches.
fn covers(d_spec: &RuleSpec, d: &Rule, a_spec: &RuleSpec, a: &Rule) -> bool {
    if d_spec.when.is_some() && d_spec.when != a_spec.when {
        return false;
    }
    d_spec.conditions.iter().zip(d.conds.iter()).all(|(dc_spec, dc)| {
        a_spec
            .conditions
            .iter()
            .zip(a.conds.iter())
            .filter(|(ac_spec, _)| ac_spec.path == dc_spec.path)
            .any(|(ac_spec, ac)| implies(ac_spec, ac, dc_spec, dc))
    })
}

/// Whether allow condition `ac` implies deny condition `dc` (same path).
fn implies(ac_spec: &CondSpec, ac: &Cond, dc_spec: &CondSpec, dc: &Cond) -> bool {
    // Every operator of the deny also appears in the allow (conditions are conjunctions).
    if dc_spec.ops.iter().all(|d| ac_spec.ops.iter().any(|a| a.op == d.op && a.operand == d.operand)) {
        return true;
    }
    // A pinned value proves only literal tests; a reference depends on the request.
    let Some(d_tests) =
        dc.tests.iter().map(|t| t.lit().filter(|t| t.is_positive())).collect::<Option<Vec<_>>>()
    else {
        return false;
    };
    let holds_on = |lit: &Lit| {
        let v = lit.to_json();
        d_tests.iter().all(|t| t.holds(AttrValue::Json(&v)))
    };
    let pinned_and_covered = |o: &crate::model::OpSpec| match (o.op, &o.operand) {
        (_, Operand::Ref(_)) | (Op::Eq, Operand::Lit(Lit::List(_))) => false,
        (Op::Eq, Operand::Lit(lit)) => holds_on(lit),
        (Op::In, Operand::Lit(Lit::List(items))) => !items.is_empty() && items.iter().all(holds_on),
        _ => false,
    };
    if ac_spec.ops.iter().any(pinned_and_covered) {
        return true;
    }
    matches!(&*d_tests, [Test::Exists(true)]) && ac.tests.iter().any(Check::is_positive)
}
