//! "What may this agent do?": the policy partially evaluated with the principal's attributes
//! fixed (`agent_id`, `principal.*`) and everything the request brings left open. Not on the
//! request path: gateways call it to filter what they offer an agent (a tool list), operators
//! through `zta policy what-can`. Every request the engine allows for the principal is covered
//! by an allow rule of the answer (the answer may be wider, never narrower).

use std::fmt;

use serde::Serialize;
use serde_json::Value as Json;
use zta_core::{
    Action, AttrValue, Attribute, AuthzRequest, Candidates, Effect, Permissible, Principal, Request,
};

use crate::{
    compile::{Accessor, Check, Cond, Expr, Rule, Test},
    engine::PolicySet,
    model::{CondSpec, Op, RuleSpec, WhenSpec},
};

/// The values an attribute may take for a rule to match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Values {
    /// The rule does not pin it (or pins it in a way that is not a list, such as a regex,
    /// which then shows among the open conditions).
    Any,
    /// One of these (sorted, never empty).
    Only(Vec<String>),
}

impl Values {
    /// Whether `value` (`None`: the request has no such attribute) is among them.
    pub fn admits(&self, value: Option<&str>) -> bool {
        match self {
            Self::Any => true,
            Self::Only(v) => value.is_some_and(|x| v.iter().any(|s| s == x)),
        }
    }

    fn narrow(&mut self, mut set: Vec<String>) {
        set.sort();
        set.dedup();
        *self = match std::mem::replace(self, Self::Any) {
            Self::Any => Self::Only(set),
            Self::Only(old) => Self::Only(old.into_iter().filter(|s| set.contains(s)).collect()),
        };
    }

    fn is_empty(&self) -> bool {
        matches!(self, Self::Only(v) if v.is_empty())
    }
}

impl fmt::Display for Values {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("any"),
            Self::Only(v) => f.write_str(&v.join(", ")),
        }
    }
}

/// An operator the principal's attributes do not decide.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct OpenCondition {
    /// The tested attribute.
    pub path: String,
    /// Its value, when it is a principal attribute (then the operand is the open side).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<Json>,
    /// The operator.
    pub operator: String,
    /// The literal; a reference to a principal attribute replaced by that attribute's value;
    /// or `{"attr": path}` for a reference the request decides.
    pub operand: Json,
}

impl fmt::Display for OpenCondition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path)?;
        if let Some(v) = &self.value {
            write!(f, " ({v})")?;
        }
        write!(f, " {} {}", self.operator, self.operand)
    }
}

/// A rule that may still match some request of the principal, and what such a request must be.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct RuleReach {
    /// The rule.
    pub rule: String,
    /// Its effect.
    pub effect: Effect,
    /// Its priority.
    pub priority: i64,
    /// The `action_type`s it may match.
    pub actions: Values,
    /// The `tool_name`s it may match (`Only`: tool calls of those tools only).
    pub tools: Values,
    /// The `target_agent`s it may match.
    pub targets: Values,
    /// The `target.segment`s it may match.
    pub target_segments: Values,
    /// The operators the request still decides (all must hold).
    pub open: Vec<OpenCondition>,
    /// What remains of its `when` expression, if the principal does not decide it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub when: Option<Json>,
    /// For an allow rule: the deny rules of its priority or higher that may also match.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub overridden_by: Vec<String>,
}

/// Whether `a` admits every value `b` admits.
fn wider(a: &Values, b: &Values) -> bool {
    match (a, b) {
        (Values::Any, _) => true,
        (Values::Only(a), Values::Only(b)) => b.iter().all(|x| a.contains(x)),
        (Values::Only(_), Values::Any) => false,
    }
}

impl RuleReach {
    /// Whether this rule matches every request of the principal that `other` may match.
    fn covers(&self, other: &Self) -> bool {
        self.open.is_empty()
            && self.when.is_none()
            && wider(&self.actions, &other.actions)
            && wider(&self.tools, &other.tools)
            && wider(&self.targets, &other.targets)
            && wider(&self.target_segments, &other.target_segments)
    }

    fn may_overlap(&self, other: &Self) -> bool {
        let meet = |a: &Values, b: &Values| match (a, b) {
            (Values::Only(a), Values::Only(b)) => a.iter().any(|x| b.contains(x)),
            _ => true,
        };
        meet(&self.actions, &other.actions)
            && meet(&self.tools, &other.tools)
            && meet(&self.targets, &other.targets)
            && meet(&self.target_segments, &other.target_segments)
    }
}

/// The segment boundary as it applies to the principal.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct SegmentReach {
    /// The principal's segment.
    pub from: Option<String>,
    /// The other segments a flow lets it address, each with the actions allowed across
    /// (`None`: any action). A target in its own segment needs no flow; any other target is
    /// denied at the boundary.
    pub flows: Vec<(String, Option<Vec<String>>)>,
}

/// The answer of [`PolicySet::what_can`].
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct WhatCan {
    /// The agent asked about.
    pub agent: String,
    /// The allow rules that may permit a request of the agent, highest priority first.
    pub allows: Vec<RuleReach>,
    /// The deny rules that may still override one of them.
    pub denies: Vec<RuleReach>,
    /// When segment boundaries are enforced: where the agent may send requests with a target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segments: Option<SegmentReach>,
}

impl WhatCan {
    /// Whether some allow rule may permit calling `tool` (a gateway offers only such tools;
    /// each call is still decided in full).
    pub fn may_call_tool(&self, tool: &str) -> bool {
        self.allows.iter().any(|r| r.actions.admits(Some(CALL_TOOL)) && r.tools.admits(Some(tool)))
    }
}

/// A part of [`Permissible`].
#[derive(Clone, Copy)]
enum Part {
    Actions,
    Tools,
    Targets,
}

impl RuleReach {
    fn part(&self, part: Part) -> &Values {
        match part {
            Part::Actions => &self.actions,
            Part::Tools => &self.tools,
            Part::Targets => &self.targets,
        }
    }

    /// Whether this (unconditional) deny matches every request of `allow` that `part` is
    /// about (for tools: its tool calls), whatever that request's value of `part`, as long as
    /// this deny admits that value.
    fn overrides_across(&self, allow: &Self, part: Part) -> bool {
        let segments = wider(&self.target_segments, &allow.target_segments);
        segments
            && match part {
                Part::Actions => wider(&self.tools, &allow.tools) && wider(&self.targets, &allow.targets),
                Part::Tools => self.actions.admits(Some(CALL_TOOL)) && wider(&self.targets, &allow.targets),
                Part::Targets => wider(&self.actions, &allow.actions) && wider(&self.tools, &allow.tools),
            }
    }
}

const CALL_TOOL: &str = "call_tool";

/// What `allow` may permit of `part`, less what one of `denies` (unconditional, of its
/// priority or higher) always overrides.
fn contribution(allow: &RuleReach, denies: &[&RuleReach], part: Part) -> Candidates {
    let covering: Vec<&Values> =
        denies.iter().filter(|d| d.overrides_across(allow, part)).map(|d| d.part(part)).collect();
    match allow.part(part) {
        Values::Only(values) => {
            Candidates::only(values.iter().filter(|v| !covering.iter().any(|d| d.admits(Some(v.as_str())))))
        }
        Values::Any => {
            let mut except = Vec::new();
            for d in covering {
                match d {
                    Values::Only(v) => except.extend(v.iter().cloned()),
                    // A deny that overrides every value leaves nothing.
                    Values::Any => return Candidates::Only(Vec::new()),
                }
            }
            Candidates::any_except(except)
        }
    }
}

impl WhatCan {
    /// The answer as [`PolicyEngine::permissible`](zta_core::PolicyEngine::permissible) gives
    /// it: what the allow rules may permit, less the values an unconditional deny of their
    /// priority or higher always overrides (a request with such a value is denied whatever
    /// else it carries). Tools are those of the allows that may permit `call_tool`.
    pub(crate) fn permissible(&self) -> Permissible {
        let unconditional: Vec<&RuleReach> =
            self.denies.iter().filter(|d| d.open.is_empty() && d.when.is_none()).collect();
        let none = || Candidates::Only(Vec::new());
        let (mut actions, mut tools, mut targets) = (none(), none(), none());
        for a in &self.allows {
            // Only tool calls have a tool name: a rule that pins one permits nothing else.
            let mut a = a.clone();
            if matches!(a.tools, Values::Only(_)) {
                a.actions.narrow(vec![CALL_TOOL.to_owned()]);
                if a.actions.is_empty() {
                    continue;
                }
            }
            let over: Vec<&RuleReach> =
                unconditional.iter().copied().filter(|d| a.overridden_by.contains(&d.rule)).collect();
            actions = actions.union(contribution(&a, &over, Part::Actions));
            if a.actions.admits(Some(CALL_TOOL)) {
                tools = tools.union(contribution(&a, &over, Part::Tools));
            }
            targets = targets.union(contribution(&a, &over, Part::Targets));
        }
        Permissible::new(actions, tools, targets)
    }
}

impl fmt::Display for WhatCan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "agent {}", self.agent)?;
        if self.allows.is_empty() {
            writeln!(f, "no allow rule can permit any request of this agent")?;
        } else {
            writeln!(f, "may be allowed (when the open conditions hold):")?;
        }
        let rule = |f: &mut fmt::Formatter<'_>, r: &RuleReach| -> fmt::Result {
            writeln!(f, "  {} (priority {})", r.rule, r.priority)?;
            writeln!(
                f,
                "      actions: {}; tools: {}; targets: {}; target segments: {}",
                r.actions, r.tools, r.targets, r.target_segments
            )?;
            for o in &r.open {
                writeln!(f, "      open: {o}")?;
            }
            match &r.when {
                Some(Json::String(w)) => writeln!(f, "      open when: {w}")?,
                Some(w) => writeln!(f, "      open when: {w}")?,
                None => {}
            }
            if !r.overridden_by.is_empty() {
                writeln!(f, "      unless denied by: {}", r.overridden_by.join(", "))?;
            }
            Ok(())
        };
        for r in &self.allows {
            rule(f, r)?;
        }
        if !self.denies.is_empty() {
            writeln!(f, "deny rules that may still override:")?;
            for r in &self.denies {
                rule(f, r)?;
            }
        }
        if let Some(s) = &self.segments {
            let flows: Vec<String> = s
                .flows
                .iter()
                .map(|(to, a)| match a {
                    Some(a) => format!("{to} [{}]", a.join(", ")),
                    None => format!("{to} [any action]"),
                })
                .collect();
            writeln!(
                f,
                "segments: from {}; across the boundary only to: {}",
                s.from.as_deref().unwrap_or("(none)"),
                if flows.is_empty() { "(nothing)".to_owned() } else { flows.join(", ") }
            )?;
        }
        Ok(())
    }
}

/// Whether the attribute is fixed by the principal.
fn fixed(a: &Accessor) -> bool {
    matches!(
        a,
        Accessor::Reserved(
            Attribute::AgentId
                | Attribute::SourceAgent
                | Attribute::PrincipalAgentId
                | Attribute::Subject
                | Attribute::Issuer
                | Attribute::Tenant
                | Attribute::Segment
                | Attribute::AuthMethod
                | Attribute::Roles
                | Attribute::Groups
                | Attribute::Delegation
        )
    )
}

fn json(v: Option<AttrValue<'_>>) -> Json {
    match v {
        None => Json::Null,
        Some(AttrValue::Str(s)) => Json::from(s),
        Some(AttrValue::List(l)) => Json::from(l.to_vec()),
        Some(AttrValue::Json(j)) => j.clone(),
    }
}

/// The string attributes the answer lists values of.
#[derive(Clone, Copy)]
enum Listed {
    Action,
    Tool,
    Target,
    TargetSegment,
}

fn listed(a: &Accessor) -> Option<Listed> {
    match a {
        Accessor::Reserved(Attribute::ActionType) => Some(Listed::Action),
        Accessor::Reserved(Attribute::ToolName) => Some(Listed::Tool),
        Accessor::Reserved(Attribute::TargetAgent) => Some(Listed::Target),
        Accessor::Reserved(Attribute::TargetSegment) => Some(Listed::TargetSegment),
        _ => None,
    }
}

/// A condition with the principal fixed: `None` when it cannot hold.
struct Partial {
    open: Vec<OpenCondition>,
    /// Sets the request's value of a listed attribute must fall in.
    narrowed: Vec<(Listed, Vec<String>)>,
}

/// The set of strings a string attribute must equal (or be one of) for `op` to hold with
/// this operand; `None` when `op` is not such a test.
fn pinned(op: Op, operand: Option<AttrValue<'_>>, lit: Option<&Test>) -> Option<Vec<String>> {
    use crate::compile::Scalar;
    let strs = |it: &mut dyn Iterator<Item = Option<&str>>| it.flatten().map(str::to_owned).collect();
    match (op, lit, operand) {
        (Op::Eq, Some(Test::Eq(Scalar::Str(s))), _) => Some(vec![s.to_string()]),
        (Op::In, Some(Test::In(set)), _) => Some(strs(&mut set.iter().map(|s| match s {
            Scalar::Str(s) => Some(&**s),
            _ => None,
        }))),
        (Op::Eq, None, Some(AttrValue::Str(s))) => Some(vec![s.to_owned()]),
        (Op::Eq, None, Some(AttrValue::Json(Json::String(s)))) => Some(vec![s.clone()]),
        // A string never equals a list, nor is it in a scalar.
        (Op::Eq, None, Some(AttrValue::List(_) | AttrValue::Json(Json::Array(_)))) => Some(Vec::new()),
        (Op::In, None, Some(AttrValue::List(l))) => Some(l.to_vec()),
        (Op::In, None, Some(AttrValue::Json(Json::Array(a)))) => Some(strs(&mut a.iter().map(Json::as_str))),
        (Op::In, None, Some(_)) => Some(Vec::new()),
        _ => None,
    }
}

fn partial_cond(spec: &CondSpec, cond: &Cond, who: &AuthzRequest, narrow: bool) -> Option<Partial> {
    let tested = fixed(&cond.accessor).then(|| cond.accessor.get(who));
    let mut out = Partial { open: Vec::new(), narrowed: Vec::new() };
    for (o, check) in spec.ops.iter().zip(cond.tests.iter()) {
        let other = match check {
            Check::Ref(t) if fixed(&t.other) => Some(t.other.get(who)),
            _ => None,
        };
        match (tested, check, other) {
            // Both sides known.
            (Some(v), Check::Lit(_), _) | (Some(v), Check::Ref(_), Some(_)) => {
                if !check.eval(v, who) {
                    return None;
                }
            }
            // A principal attribute on either side is absent: decided as for any absent side.
            (Some(None), Check::Ref(_), None) | (None, Check::Ref(_), Some(None)) => {
                if check.is_positive() {
                    return None;
                }
            }
            // A reference to an empty principal list: `in` never holds, `not_in` always does.
            (None, Check::Ref(_), Some(Some(AttrValue::List([])))) if matches!(o.op, Op::In | Op::NotIn) => {
                if o.op == Op::In {
                    return None;
                }
            }
            (_, _, other) => {
                let operand = match (&o.operand, other) {
                    (_, Some(v)) => json(v),
                    (op, None) => op.to_json(),
                };
                let set = match (narrow && tested.is_none(), listed(&cond.accessor)) {
                    (true, Some(which)) => pinned(o.op, other.flatten(), check.lit()).map(|s| (which, s)),
                    _ => None,
                };
                match set {
                    Some(set) => out.narrowed.push(set),
                    None => out.open.push(OpenCondition {
                        path: spec.path.clone(),
                        value: tested.map(json),
                        operator: o.op.as_str().to_owned(),
                        operand,
                    }),
                }
            }
        }
    }
    Some(out)
}

/// A `when` tree with the principal fixed: `Ok(b)` when decided, else what remains.
fn partial_when(spec: &WhenSpec, expr: &Expr, who: &AuthzRequest) -> Result<bool, Json> {
    // What remains of `all`/`any`: the open parts (one part stands alone).
    let parts = |specs: &[WhenSpec], exprs: &[Expr], decisive: bool, name: &str| -> Result<bool, Json> {
        let mut open = Vec::new();
        for (s, e) in specs.iter().zip(exprs) {
            match partial_when(s, e, who) {
                Ok(b) if b == decisive => return Ok(decisive),
                Ok(_) => {}
                Err(j) => open.push(j),
            }
        }
        match <[Json; 1]>::try_from(open) {
            Ok([one]) => Err(one),
            Err(open) if open.is_empty() => Ok(!decisive),
            Err(open) => Err(serde_json::json!({ name: open })),
        }
    };
    match (spec, expr) {
        (WhenSpec::All(s), Expr::All(e)) => parts(s, e, false, "all"),
        (WhenSpec::Any(s), Expr::Any(e)) => parts(s, e, true, "any"),
        (WhenSpec::Not(s), Expr::Not(e)) => match partial_when(s, e, who) {
            Ok(b) => Ok(!b),
            Err(j) => Err(serde_json::json!({ "not": j })),
        },
        (WhenSpec::Cond(s), Expr::Cond(c)) => match partial_cond(s, c, who, false) {
            None => Ok(false),
            Some(p) if p.open.is_empty() => Ok(true),
            Some(p) => {
                let mut ops: Vec<Json> = p.open.iter().map(|o| Json::from(o.to_string())).collect();
                Err(if ops.len() == 1 { ops.remove(0) } else { serde_json::json!({ "all": ops }) })
            }
        },
        // The compiled tree mirrors the spec; anything else is left open.
        _ => Err(Json::Null),
    }
}

fn reach(spec: &RuleSpec, rule: &Rule, who: &AuthzRequest) -> Option<RuleReach> {
    let mut r = RuleReach {
        rule: rule.name.to_string(),
        effect: rule.effect,
        priority: rule.priority,
        actions: Values::Any,
        tools: Values::Any,
        targets: Values::Any,
        target_segments: Values::Any,
        open: Vec::new(),
        when: None,
        overridden_by: Vec::new(),
    };
    for (s, c) in spec.conditions.iter().zip(rule.conds.iter()) {
        let p = partial_cond(s, c, who, true)?;
        r.open.extend(p.open);
        for (which, set) in p.narrowed {
            match which {
                Listed::Action => r.actions.narrow(set),
                Listed::Tool => r.tools.narrow(set),
                Listed::Target => r.targets.narrow(set),
                Listed::TargetSegment => r.target_segments.narrow(set),
            }
        }
    }
    if [&r.actions, &r.tools, &r.targets, &r.target_segments].iter().any(|v| v.is_empty()) {
        return None;
    }
    if let (Some(s), Some(e)) = (&spec.when, &rule.when) {
        match partial_when(s, e, who) {
            Ok(false) => return None,
            Ok(true) => {}
            Err(rest) => r.when = Some(rest),
        }
    }
    Some(r)
}

impl PolicySet {
    /// What `principal` could be allowed to do: each allow rule that some request of the
    /// principal may match, with the action types, tool names, target agents and target
    /// segments it may match and the conditions the request still decides (references to the
    /// principal's attributes replaced by their values), and the deny rules of its priority or
    /// higher that may override it. An allow rule that a deny of its priority or higher
    /// overrides for every request of the principal is left out. Every request the policy
    /// allows for the principal is covered by one of the allow rules listed; the converse does
    /// not hold (open conditions are not solved).
    pub fn what_can(&self, principal: &Principal) -> WhatCan {
        // A request carrying only the principal: only principal attributes are read from it.
        let who = AuthzRequest::new(principal.clone(), Request::new(Action::task("what-can")), None);
        let Ok(who) = who else {
            return WhatCan {
                agent: principal.agent_id.to_string(),
                allows: Vec::new(),
                denies: Vec::new(),
                segments: None,
            };
        };
        let mut all: Vec<RuleReach> =
            self.specs.iter().zip(&self.rules).filter_map(|(s, r)| reach(s, r, &who)).collect();
        all.sort_by(|a, b| {
            (std::cmp::Reverse(a.priority), a.effect == Effect::Allow, &a.rule).cmp(&(
                std::cmp::Reverse(b.priority),
                b.effect == Effect::Allow,
                &b.rule,
            ))
        });
        let (denies, allows): (Vec<RuleReach>, Vec<RuleReach>) =
            all.into_iter().partition(|r| r.effect == Effect::Deny);
        let mut used = vec![false; denies.len()];
        let allows = allows
            .into_iter()
            .filter_map(|mut a| {
                let over: Vec<usize> = denies
                    .iter()
                    .enumerate()
                    .filter(|(_, d)| d.priority >= a.priority && d.may_overlap(&a))
                    .map(|(i, _)| i)
                    .collect();
                if over.iter().any(|&i| denies.get(i).is_some_and(|d| d.covers(&a))) {
                    return None;
                }
                for &i in &over {
                    if let (Some(u), Some(d)) = (used.get_mut(i), denies.get(i)) {
                        *u = true;
                        a.overridden_by.push(d.rule.clone());
                    }
                }
                Some(a)
            })
            .collect();
        let denies = denies.into_iter().zip(used).filter(|(_, u)| *u).map(|(d, _)| d).collect();
        let segments = self.flows_from(principal.segment.as_deref());
        WhatCan { agent: principal.agent_id.to_string(), allows, denies, segments }
    }
}
