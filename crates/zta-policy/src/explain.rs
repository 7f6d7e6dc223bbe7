//! Explanations: why a request was decided the way it was, rule by rule and condition by
//! condition, for a person (`Display`) or a program (`Serialize`).

use std::fmt;

use serde::Serialize;
use zta_core::{AttrValue, AuthzRequest, Basis, Decision, Effect};

use crate::{
    compile::{Check, Cond, Expr, Rule},
    engine::{PolicySet, SegmentOutcome},
    model::{CondSpec, Operand, WhenSpec},
};

/// The full account of one decision.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Explanation {
    /// The decision (identical to [`PolicySet::decide`]'s).
    pub decision: Decision,
    /// How the request fails to conform to the policy's `schema` (empty: it conforms, or
    /// there is no schema). When not empty, the request is denied as invalid before any rule.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub schema_violations: Vec<String>,
    /// The segment check, when segments are enforced and the request has a target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segment: Option<SegmentTrace>,
    /// The deciding priority tier, if a rule decided.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deciding_priority: Option<i64>,
    /// Every rule, highest priority first (deny before allow, then by name).
    pub rules: Vec<RuleTrace>,
}

/// The segment boundary check.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct SegmentTrace {
    /// The acting agent's segment.
    pub from: Option<String>,
    /// The target agent's segment.
    pub to: Option<String>,
    /// Whether the request may go on to the rules.
    pub permitted: bool,
    /// In words.
    pub reason: String,
}

/// How one rule fared.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct RuleTrace {
    /// The rule.
    pub name: String,
    /// Its effect.
    pub effect: Effect,
    /// Its priority.
    pub priority: i64,
    /// Whether all its conditions held.
    pub matched: bool,
    /// Whether its tier was evaluated (false below the deciding tier, or when the segment
    /// check decided).
    pub reached: bool,
    /// Whether it is one of the determining rules.
    pub determining: bool,
    /// One entry per operator of each condition.
    pub conditions: Vec<ConditionTrace>,
    /// The `when` expression, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub when: Option<WhenTrace>,
}

/// One operator of one condition.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct ConditionTrace {
    /// The attribute path.
    pub path: String,
    /// The operator.
    pub operator: String,
    /// Its operand, from the policy.
    pub operand: serde_json::Value,
    /// The attribute's value in the request (`None`: absent).
    pub actual: Option<serde_json::Value>,
    /// When the operand is another attribute (`{attr: path}`): that attribute and its value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<ReferenceTrace>,
    /// Whether the operator held.
    pub held: bool,
}

/// The other side of a comparison between two attributes of the request.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct ReferenceTrace {
    /// The referenced attribute path.
    pub path: String,
    /// Its value in the request (`None`: absent).
    pub value: Option<serde_json::Value>,
}

/// A node of a `when` expression.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum WhenTrace {
    /// All must hold.
    All {
        /// Whether it held.
        held: bool,
        /// The parts.
        parts: Vec<WhenTrace>,
    },
    /// One must hold.
    Any {
        /// Whether it held.
        held: bool,
        /// The parts.
        parts: Vec<WhenTrace>,
    },
    /// Must not hold.
    Not {
        /// Whether it held.
        held: bool,
        /// The negated part.
        part: Box<WhenTrace>,
    },
    /// A condition.
    Condition {
        /// Whether it held.
        held: bool,
        /// Its operators.
        operators: Vec<ConditionTrace>,
    },
}

impl WhenTrace {
    fn held(&self) -> bool {
        match self {
            Self::All { held, .. }
            | Self::Any { held, .. }
            | Self::Not { held, .. }
            | Self::Condition { held, .. } => *held,
        }
    }
}

fn actual(v: Option<AttrValue<'_>>) -> Option<serde_json::Value> {
    v.map(|v| match v {
        AttrValue::Str(s) => serde_json::Value::String(s.to_owned()),
        AttrValue::List(l) => serde_json::Value::from(l.to_vec()),
        AttrValue::Json(j) => j.clone(),
    })
}

fn trace_cond(spec: &CondSpec, cond: &Cond, req: &AuthzRequest) -> Vec<ConditionTrace> {
    let v = cond.accessor.get(req);
    spec.ops
        .iter()
        .zip(cond.tests.iter())
        .map(|(o, t)| ConditionTrace {
            path: spec.path.clone(),
            operator: o.op.as_str().to_owned(),
            operand: o.operand.to_json(),
            actual: actual(v),
            reference: match (&o.operand, t) {
                (Operand::Ref(r), Check::Ref(t)) => {
                    Some(ReferenceTrace { path: r.path.clone(), value: actual(t.other.get(req)) })
                }
                _ => None,
            },
            held: t.eval(v, req),
        })
        .collect()
}

fn trace_when(spec: &WhenSpec, expr: &Expr, req: &AuthzRequest) -> WhenTrace {
    match (spec, expr) {
        (WhenSpec::All(s), Expr::All(e)) => {
            let parts: Vec<WhenTrace> = s.iter().zip(e.iter()).map(|(s, e)| trace_when(s, e, req)).collect();
            WhenTrace::All { held: parts.iter().all(WhenTrace::held), parts }
        }
        (WhenSpec::Any(s), Expr::Any(e)) => {
            let parts: Vec<WhenTrace> = s.iter().zip(e.iter()).map(|(s, e)| trace_when(s, e, req)).collect();
            WhenTrace::Any { held: parts.iter().any(WhenTrace::held), parts }
        }
        (WhenSpec::Not(s), Expr::Not(e)) => {
            let part = trace_when(s, e, req);
            WhenTrace::Not { held: !part.held(), part: Box::new(part) }
        }
        (WhenSpec::Cond(s), Expr::Cond(c)) => {
            WhenTrace::Condition { held: c.holds(req), operators: trace_cond(s, c, req) }
        }
        _ => WhenTrace::Condition { held: expr.holds(req), operators: Vec::new() },
    }
}

impl PolicySet {
    /// Decides `request` and says why: every schema violation, the segment check, then every
    /// rule with each condition's operand, the request's value, and whether it held.
    pub fn explain(&self, request: &AuthzRequest) -> Explanation {
        let decision = self.decide(request);
        let schema_violations: Vec<String> = self
            .schema
            .as_ref()
            .map(|s| s.violations(request).map(|v| v.to_string()).collect())
            .unwrap_or_default();
        let invalid = !schema_violations.is_empty();
        let segment = self.crossing(request).map(|outcome| {
            let from = request.principal().segment.clone();
            let to = request.target().and_then(|t| t.segment.clone());
            let (permitted, reason) = match outcome {
                SegmentOutcome::Same => (true, "same segment".to_owned()),
                SegmentOutcome::Flow(i) => {
                    (true, format!("crossing permitted by flow {}", self.flow_text(i).unwrap_or_default()))
                }
                SegmentOutcome::Denied => {
                    (false, "crossing a segment boundary that no flow permits".to_owned())
                }
            };
            SegmentTrace { from, to, permitted, reason }
        });
        let denied_before_rules = invalid || segment.as_ref().is_some_and(|s| !s.permitted);
        let deciding_priority = if denied_before_rules {
            None
        } else {
            let mut m = smallvec::SmallVec::new();
            self.decide_rules(request, &mut m).1
        };
        let mut order: Vec<(&Rule, &crate::model::RuleSpec)> = self.rules.iter().zip(&self.specs).collect();
        order.sort_by(|(a, _), (b, _)| {
            (std::cmp::Reverse(a.priority), a.effect == Effect::Allow, &a.name).cmp(&(
                std::cmp::Reverse(b.priority),
                b.effect == Effect::Allow,
                &b.name,
            ))
        });
        let rules = order
            .into_iter()
            .map(|(rule, spec)| {
                let conditions: Vec<ConditionTrace> = spec
                    .conditions
                    .iter()
                    .zip(rule.conds.iter())
                    .flat_map(|(s, c)| trace_cond(s, c, request))
                    .collect();
                let when = spec.when.as_ref().zip(rule.when.as_ref()).map(|(s, e)| trace_when(s, e, request));
                let reached = !denied_before_rules && deciding_priority.is_none_or(|p| rule.priority >= p);
                RuleTrace {
                    name: rule.name.to_string(),
                    effect: rule.effect,
                    priority: rule.priority,
                    matched: rule.matches(request, false),
                    reached,
                    determining: !denied_before_rules && decision.determining.contains(&rule.name),
                    conditions,
                    when,
                }
            })
            .collect();
        Explanation { decision, schema_violations, segment, deciding_priority, rules }
    }
}

fn basis_text(b: Basis) -> &'static str {
    match b {
        Basis::Permitted => "permitted",
        Basis::ExplicitDeny => "explicit deny",
        Basis::DefaultDeny => "default deny: no rule matched",
        Basis::FailClosed => "fail closed",
    }
}

fn show(v: &serde_json::Value) -> String {
    v.to_string()
}

fn write_ops(f: &mut fmt::Formatter<'_>, ops: &[ConditionTrace], indent: usize) -> fmt::Result {
    for c in ops {
        let value = |v: Option<&serde_json::Value>| v.map_or_else(|| "absent".to_owned(), show);
        let actual = value(c.actual.as_ref());
        let (operand, other) = match &c.reference {
            Some(r) => {
                (format!("{{attr: {}}}", r.path), format!(", {}: {}", r.path, value(r.value.as_ref())))
            }
            None => (show(&c.operand), String::new()),
        };
        writeln!(
            f,
            "{:indent$}{} {} {} {operand}   (value: {actual}{other})",
            "",
            if c.held { "held  " } else { "failed" },
            c.path,
            c.operator,
        )?;
    }
    Ok(())
}

fn write_when(f: &mut fmt::Formatter<'_>, w: &WhenTrace, indent: usize) -> fmt::Result {
    let mark = |h: bool| if h { "held  " } else { "failed" };
    match w {
        WhenTrace::All { held, parts } | WhenTrace::Any { held, parts } => {
            let name = if matches!(w, WhenTrace::All { .. }) { "all of" } else { "any of" };
            writeln!(f, "{:indent$}{} {name}:", "", mark(*held))?;
            for p in parts {
                write_when(f, p, indent + 4)?;
            }
            Ok(())
        }
        WhenTrace::Not { held, part } => {
            writeln!(f, "{:indent$}{} not:", "", mark(*held))?;
            write_when(f, part, indent + 4)
        }
        WhenTrace::Condition { operators, .. } => write_ops(f, operators, indent),
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = &self.decision;
        let effect = match d.effect {
            Effect::Allow => "ALLOW",
            Effect::Deny => "DENY",
        };
        if self.schema_violations.is_empty() {
            write!(f, "{effect} ({})", basis_text(d.basis))?;
        } else {
            write!(f, "{effect} (invalid request: it does not conform to the policy schema)")?;
        }
        if !d.determining.is_empty() && self.schema_violations.is_empty() {
            let names: Vec<&str> = d.determining.iter().map(|n| &**n).collect();
            write!(f, " by {}", names.join(", "))?;
        }
        writeln!(f)?;
        for o in &d.obligations {
            writeln!(
                f,
                "obligation: {} {}",
                o.name,
                if o.params.is_null() { String::new() } else { show(&o.params) }
            )?;
        }
        writeln!(f, "policy digest: {}", d.policy_digest)?;
        for v in &self.schema_violations {
            writeln!(f, "schema: {v}")?;
        }
        if let Some(s) = &self.segment {
            writeln!(
                f,
                "segments: {} -> {}: {}",
                s.from.as_deref().unwrap_or("(none)"),
                s.to.as_deref().unwrap_or("(none)"),
                s.reason
            )?;
        }
        let mut tier = None;
        let mut unreached = Vec::new();
        for r in &self.rules {
            if !r.reached {
                unreached.push(format!("{} (priority {})", r.name, r.priority));
                continue;
            }
            if tier != Some(r.priority) {
                writeln!(f, "priority {}:", r.priority)?;
                tier = Some(r.priority);
            }
            let effect = match r.effect {
                Effect::Allow => "allow",
                Effect::Deny => "deny ",
            };
            writeln!(
                f,
                "  {} {effect} {}{}",
                if r.matched { "[match]   " } else { "[no match]" },
                r.name,
                if r.determining { "   <- decides" } else { "" }
            )?;
            if r.conditions.is_empty() && r.when.is_none() {
                writeln!(f, "      (no conditions: always matches)")?;
            }
            write_ops(f, &r.conditions, 6)?;
            if let Some(w) = &r.when {
                writeln!(f, "      when:")?;
                write_when(f, w, 8)?;
            }
        }
        if !unreached.is_empty() {
            writeln!(f, "not reached: {}", unreached.join(", "))?;
        }
        Ok(())
    }
}
