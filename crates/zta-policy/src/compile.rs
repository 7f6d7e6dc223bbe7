//! Compiled predicates: attribute paths become accessors (reserved attributes read fields of the
//! request directly, context paths are pre-split), literals become typed values, regexes and
//! globs become linear-time automata. Evaluation allocates nothing.

use std::{net::IpAddr, sync::Arc};

use regex_automata::{Anchored, Input, meta::Regex};
use serde_json::Value as Json;
use time::{OffsetDateTime, format_description::well_known::Rfc3339};
use zta_core::{AttrValue, Attribute, AttributePath, AuthzRequest, Effect, Obligation, RuleName};

use crate::{
    model::{CondSpec, Lit, Op, Operand, WhenSpec},
    pattern::{Net, build_glob, build_regex},
};

/// How an attribute is read from a request: the core's [`AttributePath`], with resource and
/// context paths pre-split. Reading a reserved attribute is an enum match in
/// [`AuthzRequest::reserved`], the same one [`AuthzRequest::attribute`] uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Accessor {
    /// A reserved attribute; `source_agent` and `principal.agent_id` are compiled to
    /// `agent_id` (the same value), so the rule index treats all three alike.
    Reserved(Attribute),
    Resource(Box<[Box<str>]>),
    Context(Box<[Box<str>]>),
    /// A path under a reserved root naming no attribute (refused at load; kept for completeness).
    Never,
}

impl Accessor {
    pub(crate) fn new(path: &str) -> Self {
        let split = |p: &str| p.split('.').map(Box::from).collect();
        match AttributePath::parse(path) {
            AttributePath::Reserved(Attribute::SourceAgent | Attribute::PrincipalAgentId) => {
                Self::Reserved(Attribute::AgentId)
            }
            AttributePath::Reserved(attribute) => Self::Reserved(attribute),
            AttributePath::Resource(rest) => Self::Resource(split(rest)),
            AttributePath::Unknown => Self::Never,
            AttributePath::Context(path) => Self::Context(split(path)),
        }
    }

    #[inline]
    pub(crate) fn get<'r>(&self, req: &'r AuthzRequest) -> Option<AttrValue<'r>> {
        match self {
            Self::Reserved(attribute) => req.reserved(*attribute),
            Self::Resource(path) => walk(&req.resource()?.attributes, path).map(AttrValue::Json),
            Self::Context(path) => walk(req.context(), path).map(AttrValue::Json),
            Self::Never => None,
        }
    }
}

#[inline]
fn walk<'a>(map: &'a serde_json::Map<String, Json>, path: &[Box<str>]) -> Option<&'a Json> {
    let (first, rest) = path.split_first()?;
    let mut value = map.get(&**first)?;
    for part in rest {
        value = value.as_object()?.get(&**part)?;
    }
    Some(value)
}

/// A number, kept exact for integers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Num {
    Int(i64),
    Float(f64),
}

impl Num {
    fn of_json(n: &serde_json::Number) -> Option<Self> {
        match n.as_i64() {
            Some(i) => Some(Self::Int(i)),
            None => n.as_f64().map(Self::Float),
        }
    }
    fn cmp(self, other: Self) -> Option<std::cmp::Ordering> {
        match (self, other) {
            (Self::Int(a), Self::Int(b)) => Some(a.cmp(&b)),
            (a, b) => a.as_f64().partial_cmp(&b.as_f64()),
        }
    }
    #[allow(clippy::cast_precision_loss)]
    fn as_f64(self) -> f64 {
        match self {
            Self::Int(i) => i as f64,
            Self::Float(f) => f,
        }
    }
}

/// A compiled scalar literal.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Scalar {
    Null,
    Bool(bool),
    Num(Num),
    Str(Box<str>),
}

impl Scalar {
    fn of_lit(lit: &Lit) -> Option<Self> {
        Some(match lit {
            Lit::Null => Self::Null,
            Lit::Bool(b) => Self::Bool(*b),
            Lit::Int(i) => Self::Num(Num::Int(*i)),
            Lit::Float(f) => Self::Num(Num::Float(*f)),
            Lit::Str(s) | Lit::Time(_, s) => Self::Str(s.as_str().into()),
            Lit::List(_) => return None,
        })
    }

    /// Typed equality with a scalar view of an attribute; across types false.
    #[inline]
    fn eq_view(&self, v: View<'_>) -> bool {
        match (self, v) {
            (Self::Str(a), View::Str(b)) => **a == *b,
            (Self::Num(a), View::Num(b)) => a.cmp(b) == Some(std::cmp::Ordering::Equal),
            (Self::Bool(a), View::Bool(b)) => *a == b,
            (Self::Null, View::Null) => true,
            _ => false,
        }
    }
}

/// A scalar seen in an attribute.
#[derive(Debug, Clone, Copy)]
pub(crate) enum View<'a> {
    Null,
    Bool(bool),
    Num(Num),
    Str(&'a str),
    /// A nested list or map: equal to no scalar.
    Other,
}

impl<'a> View<'a> {
    #[inline]
    fn of_json(v: &'a Json) -> Self {
        match v {
            Json::Null => Self::Null,
            Json::Bool(b) => Self::Bool(*b),
            Json::Number(n) => Num::of_json(n).map_or(Self::Other, Self::Num),
            Json::String(s) => Self::Str(s),
            Json::Array(_) | Json::Object(_) => Self::Other,
        }
    }

    /// Typed equality of two request values; across types, and for nested lists or maps, false.
    #[inline]
    fn same(self, other: View<'_>) -> bool {
        match (self, other) {
            (Self::Str(a), View::Str(b)) => a == b,
            (Self::Num(a), View::Num(b)) => a.cmp(b) == Some(std::cmp::Ordering::Equal),
            (Self::Bool(a), View::Bool(b)) => a == b,
            (Self::Null, View::Null) => true,
            _ => false,
        }
    }
}

/// An attribute value: one scalar or a list of them.
#[derive(Clone, Copy)]
enum Shape<'a> {
    One(View<'a>),
    Strings(&'a [String]),
    Array(&'a [Json]),
    Map,
}

#[inline]
fn shape(v: AttrValue<'_>) -> Shape<'_> {
    match v {
        AttrValue::Str(s) => Shape::One(View::Str(s)),
        AttrValue::List(l) => Shape::Strings(l),
        AttrValue::Json(Json::Array(a)) => Shape::Array(a),
        AttrValue::Json(Json::Object(_)) => Shape::Map,
        AttrValue::Json(j) => Shape::One(View::of_json(j)),
    }
}

/// Whether `f` holds for the scalar, or for any element of a list.
#[inline]
fn any_view(v: AttrValue<'_>, mut f: impl FnMut(View<'_>) -> bool) -> bool {
    match shape(v) {
        Shape::One(x) => f(x),
        Shape::Strings(l) => l.iter().any(|s| f(View::Str(s))),
        Shape::Array(a) => a.iter().any(|j| f(View::of_json(j))),
        Shape::Map => false,
    }
}

/// A regex lowered to plain string tests where its shape allows (`^abc.*`, `^abc$`,
/// `^(a|b)$`), else the automaton.
#[derive(Debug, Clone)]
pub(crate) enum Pattern {
    /// One of these prefixes.
    Prefix(Box<[Box<str>]>),
    /// Exactly one of these strings.
    Exact(Box<[Box<str>]>),
    /// The automaton, anchored at the start.
    Regex(Arc<Regex>),
}

impl Pattern {
    pub(crate) fn new(pattern: &str, cache: &mut RegexCache) -> Result<Self, String> {
        if let Some(p) = simple_regex(pattern) {
            return Ok(p);
        }
        cache.get(pattern).map(Self::Regex)
    }

    #[inline]
    fn is_match(&self, s: &str) -> bool {
        match self {
            Self::Prefix(p) => p.iter().any(|p| s.starts_with(&**p)),
            Self::Exact(p) => p.iter().any(|p| **p == *s),
            Self::Regex(re) => re.is_match(Input::new(s).anchored(Anchored::Yes)),
        }
    }
}

/// Compiled regexes shared between rules with the same pattern.
#[derive(Default)]
pub(crate) struct RegexCache(std::collections::HashMap<String, Arc<Regex>>);

impl RegexCache {
    fn get(&mut self, pattern: &str) -> Result<Arc<Regex>, String> {
        if let Some(re) = self.0.get(pattern) {
            return Ok(re.clone());
        }
        let re = Arc::new(build_regex(pattern)?);
        self.0.insert(pattern.to_owned(), re.clone());
        Ok(re)
    }
}

/// `^?LIT(.*)?`, `^?LIT$`, `^?(A|B|C)(.*|$)?` with plain literal text.
fn simple_regex(pattern: &str) -> Option<Pattern> {
    let body = pattern.strip_prefix('^').unwrap_or(pattern);
    let (body, exact) = if let Some(b) = body.strip_suffix(".*") {
        (b, false)
    } else if let Some(b) = body.strip_suffix('$') {
        if b.ends_with('\\') {
            return None;
        }
        (b, true)
    } else {
        (body, false)
    };
    let plain = |s: &str| {
        s.chars().all(|c| {
            c.is_alphanumeric()
                || matches!(
                    c,
                    '_' | '-'
                        | ':'
                        | '@'
                        | '/'
                        | ' '
                        | ','
                        | '='
                        | '!'
                        | '%'
                        | '&'
                        | '\''
                        | '"'
                        | '<'
                        | '>'
                        | ';'
                        | '`'
                        | '~'
                )
        })
    };
    let alts: Vec<&str> = match body.strip_prefix('(').and_then(|b| b.strip_suffix(')')) {
        Some(inner) => {
            let inner = inner.strip_prefix("?:").unwrap_or(inner);
            inner.split('|').collect()
        }
        None => vec![body],
    };
    if alts.iter().any(|a| !plain(a)) {
        return None;
    }
    if !exact && alts.iter().any(|a| a.is_empty()) {
        // An empty prefix matches everything: fine, but keep it simple and exact.
        return Some(Pattern::Prefix(vec![Box::<str>::from("")].into_boxed_slice()));
    }
    let list: Box<[Box<str>]> = alts.into_iter().map(Box::from).collect();
    Some(if exact { Pattern::Exact(list) } else { Pattern::Prefix(list) })
}

/// A compiled test on one attribute.
#[derive(Debug, Clone)]
pub(crate) enum Test {
    Eq(Scalar),
    EqList(Box<[Scalar]>),
    Ne(Box<Test>),
    Cmp(Op, Num),
    CmpTime(Op, OffsetDateTime),
    In(Box<[Scalar]>),
    NotIn(Box<[Scalar]>),
    Contains(Scalar),
    Pattern(Pattern),
    StartsWith(Box<str>),
    EndsWith(Box<str>),
    Cidr(Box<[Net]>),
    Exists(bool),
}

impl Test {
    pub(crate) fn new(op: Op, lit: &Lit, cache: &mut RegexCache) -> Result<Self, String> {
        let scalars = |l: &Lit| -> Result<Box<[Scalar]>, String> {
            match l {
                Lit::List(items) => {
                    items.iter().map(|i| Scalar::of_lit(i).ok_or_else(|| "nested list".to_owned())).collect()
                }
                _ => Err("expected a list".into()),
            }
        };
        fn string(l: &Lit) -> Result<&str, String> {
            match l {
                Lit::Str(s) => Ok(s.as_str()),
                _ => Err("expected a string".to_owned()),
            }
        }
        Ok(match op {
            Op::Eq | Op::Ne => {
                let eq = match lit {
                    Lit::List(_) => Self::EqList(scalars(lit)?),
                    _ => Self::Eq(Scalar::of_lit(lit).ok_or("bad literal")?),
                };
                if op == Op::Eq { eq } else { Self::Ne(Box::new(eq)) }
            }
            Op::Gt | Op::Gte | Op::Lt | Op::Lte => match lit {
                Lit::Int(i) => Self::Cmp(op, Num::Int(*i)),
                Lit::Float(f) => Self::Cmp(op, Num::Float(*f)),
                Lit::Time(t, _) => Self::CmpTime(op, *t),
                _ => return Err("expected a number or a time".into()),
            },
            Op::In => Self::In(scalars(lit)?),
            Op::NotIn => Self::NotIn(scalars(lit)?),
            Op::Contains => Self::Contains(Scalar::of_lit(lit).ok_or("expected a value")?),
            Op::Regex => Self::Pattern(Pattern::new(string(lit)?, cache)?),
            Op::Glob => Self::Pattern(Pattern::Regex(Arc::new(build_glob(string(lit)?)?))),
            Op::StartsWith => Self::StartsWith(string(lit)?.into()),
            Op::EndsWith => Self::EndsWith(string(lit)?.into()),
            Op::Cidr => match lit {
                Lit::List(items) => Self::Cidr(
                    items
                        .iter()
                        .map(|i| match i {
                            Lit::Str(s) => Net::parse(s).ok_or_else(|| format!("bad network `{s}`")),
                            _ => Err("expected a network".to_owned()),
                        })
                        .collect::<Result<_, _>>()?,
                ),
                _ => return Err("expected networks".into()),
            },
            Op::Exists => match lit {
                Lit::Bool(b) => Self::Exists(*b),
                _ => return Err("expected a boolean".into()),
            },
        })
    }

    /// Whether the test holds for an attribute that is absent: exactly the negative operators.
    #[inline]
    pub(crate) fn on_absent(&self) -> bool {
        matches!(self, Self::Ne(_) | Self::NotIn(_) | Self::Exists(false))
    }

    /// Whether the test holds for a present attribute.
    #[inline]
    pub(crate) fn holds(&self, v: AttrValue<'_>) -> bool {
        match self {
            Self::Eq(s) => any_view(v, |x| s.eq_view(x)),
            Self::EqList(items) => match shape(v) {
                Shape::Strings(l) => {
                    l.len() == items.len() && l.iter().zip(items.iter()).all(|(a, b)| b.eq_view(View::Str(a)))
                }
                Shape::Array(a) => {
                    a.len() == items.len()
                        && a.iter().zip(items.iter()).all(|(a, b)| b.eq_view(View::of_json(a)))
                }
                _ => false,
            },
            Self::Ne(eq) => !eq.holds(v),
            Self::Cmp(op, n) => any_view(v, |x| match x {
                View::Num(a) => a.cmp(*n).is_some_and(|o| ord_holds(*op, o)),
                _ => false,
            }),
            Self::CmpTime(op, t) => any_view(v, |x| match x {
                View::Str(s) => OffsetDateTime::parse(s, &Rfc3339).is_ok_and(|a| ord_holds(*op, a.cmp(t))),
                _ => false,
            }),
            Self::In(set) => any_view(v, |x| set.iter().any(|s| s.eq_view(x))),
            Self::NotIn(set) => !any_view(v, |x| set.iter().any(|s| s.eq_view(x))),
            Self::Contains(s) => match shape(v) {
                Shape::One(View::Str(hay)) => match s {
                    Scalar::Str(needle) => hay.contains(&**needle),
                    _ => false,
                },
                Shape::One(_) | Shape::Map => false,
                Shape::Strings(l) => l.iter().any(|x| s.eq_view(View::Str(x))),
                Shape::Array(a) => a.iter().any(|x| s.eq_view(View::of_json(x))),
            },
            Self::Pattern(p) => any_view(v, |x| matches!(x, View::Str(s) if p.is_match(s))),
            Self::StartsWith(p) => any_view(v, |x| matches!(x, View::Str(s) if s.starts_with(&**p))),
            Self::EndsWith(p) => any_view(v, |x| matches!(x, View::Str(s) if s.ends_with(&**p))),
            Self::Cidr(nets) => any_view(v, |x| match x {
                View::Str(s) => s.parse::<IpAddr>().is_ok_and(|ip| nets.iter().any(|n| n.contains(ip))),
                _ => false,
            }),
            Self::Exists(b) => *b,
        }
    }

    /// The test on an optional attribute.
    #[inline]
    pub(crate) fn eval(&self, v: Option<AttrValue<'_>>) -> bool {
        match v {
            Some(v) => self.holds(v),
            None => self.on_absent(),
        }
    }

    /// Whether the operator is positive (never satisfied by an absent attribute).
    pub(crate) fn is_positive(&self) -> bool {
        !self.on_absent()
    }
}

#[inline]
fn ord_holds(op: Op, o: std::cmp::Ordering) -> bool {
    use std::cmp::Ordering::{Equal, Greater, Less};
    match op {
        Op::Gt => o == Greater,
        Op::Gte => o != Less,
        Op::Lt => o == Less,
        Op::Lte => o != Greater,
        _ => o == Equal,
    }
}

/// An operator comparing the tested attribute with another attribute of the same request,
/// resolved to its accessor at load. The referenced value stands where a literal would: the
/// operator holds as if that value had been written in the policy, and a value of a type the
/// operator does not take (a list for `gt`, a scalar for `in`, a map for anything) makes it
/// false, and its negative twin true. An absent side satisfies exactly `ne` and `not_in`.
#[derive(Debug, Clone)]
pub(crate) struct RefTest {
    pub(crate) op: Op,
    pub(crate) other: Accessor,
}

impl RefTest {
    #[inline]
    fn eval(&self, v: Option<AttrValue<'_>>, req: &AuthzRequest) -> bool {
        match (v, self.other.get(req)) {
            (Some(v), Some(r)) => self.holds(v, r),
            _ => self.op.is_negative(),
        }
    }

    /// Whether the operator holds between present values `v` (tested) and `r` (referenced).
    #[inline]
    pub(crate) fn holds(&self, v: AttrValue<'_>, r: AttrValue<'_>) -> bool {
        let r = shape(r);
        let scalar = match r {
            Shape::One(x) => Some(x),
            _ => None,
        };
        // Whole-list equality, as with a list literal.
        let list_eq = |v: Shape<'_>| -> bool {
            match (v, r) {
                (Shape::Strings(a), Shape::Strings(b)) => a == b,
                (Shape::Strings(a), Shape::Array(b)) | (Shape::Array(b), Shape::Strings(a)) => {
                    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| View::Str(x).same(View::of_json(y)))
                }
                (Shape::Array(a), Shape::Array(b)) => {
                    a.len() == b.len()
                        && a.iter().zip(b).all(|(x, y)| View::of_json(x).same(View::of_json(y)))
                }
                _ => false,
            }
        };
        let member = |x: View<'_>| match r {
            Shape::Strings(l) => l.iter().any(|e| x.same(View::Str(e))),
            Shape::Array(a) => a.iter().any(|e| x.same(View::of_json(e))),
            Shape::One(_) | Shape::Map => false,
        };
        match self.op {
            Op::Eq | Op::Ne => {
                let eq = match scalar {
                    Some(s) => any_view(v, |x| x.same(s)),
                    None => list_eq(shape(v)),
                };
                eq == (self.op == Op::Eq)
            }
            Op::Gt | Op::Gte | Op::Lt | Op::Lte => match scalar {
                Some(View::Num(n)) => any_view(v, |x| match x {
                    View::Num(a) => a.cmp(n).is_some_and(|o| ord_holds(self.op, o)),
                    _ => false,
                }),
                Some(View::Str(t)) => match OffsetDateTime::parse(t, &Rfc3339) {
                    Ok(t) => any_view(v, |x| match x {
                        View::Str(s) => {
                            OffsetDateTime::parse(s, &Rfc3339).is_ok_and(|a| ord_holds(self.op, a.cmp(&t)))
                        }
                        _ => false,
                    }),
                    Err(_) => false,
                },
                _ => false,
            },
            Op::In => any_view(v, member),
            Op::NotIn => !any_view(v, member),
            Op::Contains => match (shape(v), scalar) {
                (Shape::One(View::Str(hay)), Some(View::Str(needle))) => hay.contains(needle),
                (Shape::Strings(l), Some(s)) => l.iter().any(|e| s.same(View::Str(e))),
                (Shape::Array(a), Some(s)) => a.iter().any(|e| s.same(View::of_json(e))),
                _ => false,
            },
            Op::StartsWith | Op::EndsWith => match scalar {
                Some(View::Str(p)) => any_view(v, |x| match x {
                    View::Str(s) if self.op == Op::StartsWith => s.starts_with(p),
                    View::Str(s) => s.ends_with(p),
                    _ => false,
                }),
                _ => false,
            },
            // Refused at load (`Op::takes_reference`).
            Op::Regex | Op::Glob | Op::Cidr | Op::Exists => false,
        }
    }
}

/// One operator of a condition: against a literal, or against another attribute.
#[derive(Debug, Clone)]
pub(crate) enum Check {
    Lit(Test),
    Ref(RefTest),
}

impl Check {
    #[inline]
    pub(crate) fn eval(&self, v: Option<AttrValue<'_>>, req: &AuthzRequest) -> bool {
        match self {
            Self::Lit(t) => t.eval(v),
            Self::Ref(t) => t.eval(v, req),
        }
    }

    /// Whether the operator is positive (never satisfied by an absent attribute).
    pub(crate) fn is_positive(&self) -> bool {
        match self {
            Self::Lit(t) => t.is_positive(),
            Self::Ref(t) => !t.op.is_negative(),
        }
    }

    /// The literal test, if the operand is a literal.
    pub(crate) fn lit(&self) -> Option<&Test> {
        match self {
            Self::Lit(t) => Some(t),
            Self::Ref(_) => None,
        }
    }
}

/// A compiled condition: every test must hold.
#[derive(Debug, Clone)]
pub(crate) struct Cond {
    pub(crate) accessor: Accessor,
    pub(crate) tests: Box<[Check]>,
}

impl Cond {
    pub(crate) fn new(spec: &CondSpec, cache: &mut RegexCache) -> Result<Self, String> {
        Ok(Self {
            accessor: Accessor::new(&spec.path),
            tests: spec
                .ops
                .iter()
                .map(|o| match &o.operand {
                    Operand::Lit(l) => Test::new(o.op, l, cache).map(Check::Lit),
                    Operand::Ref(r) => Ok(Check::Ref(RefTest { op: o.op, other: Accessor::new(&r.path) })),
                })
                .collect::<Result<_, _>>()?,
        })
    }

    #[inline]
    pub(crate) fn holds(&self, req: &AuthzRequest) -> bool {
        let v = self.accessor.get(req);
        self.tests.iter().all(|t| t.eval(v, req))
    }
}

/// A compiled `when` tree.
#[derive(Debug, Clone)]
pub(crate) enum Expr {
    All(Box<[Expr]>),
    Any(Box<[Expr]>),
    Not(Box<Expr>),
    Cond(Cond),
}

impl Expr {
    pub(crate) fn new(spec: &WhenSpec, cache: &mut RegexCache) -> Result<Self, String> {
        Ok(match spec {
            WhenSpec::All(v) => Self::All(v.iter().map(|w| Self::new(w, cache)).collect::<Result<_, _>>()?),
            WhenSpec::Any(v) => Self::Any(v.iter().map(|w| Self::new(w, cache)).collect::<Result<_, _>>()?),
            WhenSpec::Not(w) => Self::Not(Box::new(Self::new(w, cache)?)),
            WhenSpec::Cond(c) => Self::Cond(Cond::new(c, cache)?),
        })
    }

    pub(crate) fn holds(&self, req: &AuthzRequest) -> bool {
        match self {
            Self::All(v) => v.iter().all(|e| e.holds(req)),
            Self::Any(v) => v.iter().any(|e| e.holds(req)),
            Self::Not(e) => !e.holds(req),
            Self::Cond(c) => c.holds(req),
        }
    }
}

/// A compiled rule.
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    pub(crate) name: RuleName,
    pub(crate) effect: Effect,
    pub(crate) priority: i64,
    pub(crate) conds: Box<[Cond]>,
    pub(crate) when: Option<Expr>,
    pub(crate) obligations: Box<[Obligation]>,
    /// The condition the index already proved when the rule is reached through it.
    pub(crate) indexed_cond: Option<usize>,
}

impl Rule {
    /// Whether the rule matches; `via_index` skips the condition the index proved.
    #[inline]
    pub(crate) fn matches(&self, req: &AuthzRequest, via_index: bool) -> bool {
        let skip = if via_index { self.indexed_cond } else { None };
        self.conds.iter().enumerate().all(|(i, c)| Some(i) == skip || c.holds(req))
            && self.when.as_ref().is_none_or(|w| w.holds(req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn re(p: &str) -> Pattern {
        Pattern::new(p, &mut RegexCache::default()).unwrap()
    }

    #[test]
    fn regexes_are_anchored_at_start_only_and_dollar_is_end_of_text() {
        assert!(re("^research_.*").is_match("research_bot"));
        assert!(re("research").is_match("research_bot"));
        assert!(!re("research").is_match("my_research"));
        assert!(re("^system$").is_match("system"));
        assert!(!re("^system$").is_match("system\n"));
        assert!(!re("^sys(tem)$").is_match("system\n"));
        assert!(re("sys(tem)?$").is_match("sys"));
        assert!(!re("sys(tem)?$").is_match("sys\n"));
        assert!(re("^(text|function_call)$").is_match("function_call"));
        assert!(!re("^(text|function_call)$").is_match("texts"));
        assert!(re("^(assistant|user).*").is_match("user_proxy"));
        assert!(matches!(re("^(assistant|user).*"), Pattern::Prefix(_)));
        assert!(matches!(re("^system$"), Pattern::Exact(_)));
        assert!(matches!(re("a+b"), Pattern::Regex(_)));
    }

    #[test]
    fn globs_match_whole_values() {
        let g = Pattern::Regex(Arc::new(build_glob("web_*").unwrap()));
        assert!(g.is_match("web_search"));
        assert!(!g.is_match("my_web_search"));
        let g = Pattern::Regex(Arc::new(build_glob("file?.[ch]").unwrap()));
        assert!(g.is_match("file1.c"));
        assert!(!g.is_match("file1.cc"));
        assert!(build_glob("[abc").is_err());
    }

    #[test]
    fn networks() {
        let n = Net::parse("10.0.0.0/8").unwrap();
        assert!(n.contains("10.1.2.3".parse().unwrap()));
        assert!(!n.contains("11.1.2.3".parse().unwrap()));
        assert!(n.contains("::ffff:10.1.2.3".parse().unwrap()));
        assert!(Net::parse("0.0.0.0/0").unwrap().contains("1.2.3.4".parse().unwrap()));
        assert!(Net::parse("2001:db8::/32").unwrap().contains("2001:db8::1".parse().unwrap()));
        assert!(Net::parse("10.0.0.0/33").is_none());
        assert!(Net::parse("nope").is_none());
    }
}
