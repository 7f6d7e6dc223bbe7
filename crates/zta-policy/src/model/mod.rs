//! The policy model: a parsed document tree checked and normalized into rules, conditions and
//! segment flows. Every error is collected (not just the first) with its position and a hint.

use std::sync::Arc;

use time::OffsetDateTime;
use zta_core::{Effect, Obligation};

mod canonical;
mod reader;
mod schema;

use canonical::write_lit;
pub(crate) use canonical::{logic_key, write_str};
pub(crate) use reader::{Reader, did_you_mean};
pub(crate) use schema::{ANY_ACTION, AttrType, Kind, Root, SchemaDecl};

use crate::source::Pos;

/// Operators a condition may use.
pub(crate) const OPERATORS: &[&str] = &[
    "eq",
    "ne",
    "gt",
    "gte",
    "lt",
    "lte",
    "in",
    "not_in",
    "contains",
    "regex",
    "starts_with",
    "ends_with",
    "glob",
    "cidr",
    "exists",
];

/// An operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Op {
    Eq,
    Ne,
    Gt,
    Gte,
    Lt,
    Lte,
    In,
    NotIn,
    Contains,
    Regex,
    StartsWith,
    EndsWith,
    Glob,
    Cidr,
    Exists,
}

impl Op {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "eq" => Self::Eq,
            "ne" => Self::Ne,
            "gt" => Self::Gt,
            "gte" => Self::Gte,
            "lt" => Self::Lt,
            "lte" => Self::Lte,
            "in" => Self::In,
            "not_in" => Self::NotIn,
            "contains" => Self::Contains,
            "regex" => Self::Regex,
            "starts_with" => Self::StartsWith,
            "ends_with" => Self::EndsWith,
            "glob" => Self::Glob,
            "cidr" => Self::Cidr,
            "exists" => Self::Exists,
            _ => return None,
        })
    }

    /// Whether the operator may compare with another attribute of the request (`{attr: path}`)
    /// instead of a literal. Patterns, networks and `exists` are fixed at load.
    pub(crate) fn takes_reference(self) -> bool {
        !matches!(self, Self::Regex | Self::Glob | Self::Cidr | Self::Exists)
    }

    /// Whether an absent attribute satisfies the operator (`ne`, `not_in`; `exists: false` is
    /// an operand, not an operator).
    pub(crate) fn is_negative(self) -> bool {
        matches!(self, Self::Ne | Self::NotIn)
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Eq => "eq",
            Self::Ne => "ne",
            Self::Gt => "gt",
            Self::Gte => "gte",
            Self::Lt => "lt",
            Self::Lte => "lte",
            Self::In => "in",
            Self::NotIn => "not_in",
            Self::Contains => "contains",
            Self::Regex => "regex",
            Self::StartsWith => "starts_with",
            Self::EndsWith => "ends_with",
            Self::Glob => "glob",
            Self::Cidr => "cidr",
            Self::Exists => "exists",
        }
    }
}

/// A typed literal from a policy file.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Lit {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// An RFC 3339 time (comparison operands only); keeps its text.
    Time(OffsetDateTime, String),
    List(Vec<Lit>),
}

impl Lit {
    pub(crate) fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Self::Null => J::Null,
            Self::Bool(b) => J::Bool(*b),
            Self::Int(i) => J::from(*i),
            Self::Float(f) => {
                serde_json::Number::from_f64(*f).map_or_else(|| J::String(f.to_string()), J::Number)
            }
            Self::Str(s) | Self::Time(_, s) => J::String(s.clone()),
            Self::List(l) => J::Array(l.iter().map(Self::to_json).collect()),
        }
    }
}

/// The operators that take an attribute reference, for messages.
pub(crate) const REFERENCE_OPERATORS: &str = "eq ne gt gte lt lte in not_in contains starts_with ends_with";

/// Another attribute of the same request, named as an operand: `{attr: agent_id}`.
#[derive(Debug, Clone)]
pub(crate) struct RefSpec {
    /// The path (`context.` stripped, as for condition paths).
    pub(crate) path: String,
    /// Where the path was written (not part of equality).
    pub(crate) pos: Pos,
}

impl PartialEq for RefSpec {
    fn eq(&self, other: &Self) -> bool {
        self.path == other.path
    }
}

/// What an operator compares with: a literal, or another attribute of the request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Operand {
    Lit(Lit),
    Ref(RefSpec),
}

impl Operand {
    /// As written in a policy: the literal, or `{"attr": path}`.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        match self {
            Self::Lit(l) => l.to_json(),
            Self::Ref(r) => serde_json::json!({ "attr": r.path }),
        }
    }

    pub(crate) fn lit(&self) -> Option<&Lit> {
        match self {
            Self::Lit(l) => Some(l),
            Self::Ref(_) => None,
        }
    }
}

/// One operator and its operand.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OpSpec {
    pub(crate) op: Op,
    pub(crate) operand: Operand,
    pub(crate) pos: Pos,
}

/// A condition: an attribute path and the operators that must all hold.
#[derive(Debug, Clone)]
pub(crate) struct CondSpec {
    pub(crate) path: String,
    pub(crate) ops: Vec<OpSpec>,
    /// Where the path was written (not part of equality).
    pub(crate) pos: Pos,
}

impl PartialEq for CondSpec {
    fn eq(&self, other: &Self) -> bool {
        self.path == other.path
            && self.ops.len() == other.ops.len()
            && self.ops.iter().zip(&other.ops).all(|(a, b)| a.op == b.op && a.operand == b.operand)
    }
}

/// A `when` tree.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum WhenSpec {
    All(Vec<WhenSpec>),
    Any(Vec<WhenSpec>),
    Not(Box<WhenSpec>),
    Cond(CondSpec),
}

/// A checked rule.
#[derive(Debug, Clone)]
pub(crate) struct RuleSpec {
    pub(crate) name: String,
    pub(crate) effect: Effect,
    pub(crate) priority: i64,
    pub(crate) description: Option<String>,
    /// Sorted by path.
    pub(crate) conditions: Vec<CondSpec>,
    pub(crate) when: Option<WhenSpec>,
    pub(crate) obligations: Vec<Obligation>,
    pub(crate) file: Arc<str>,
    pub(crate) pos: Pos,
}

impl RuleSpec {
    pub(crate) fn is_unconditional(&self) -> bool {
        self.conditions.is_empty() && self.when.is_none()
    }
}

/// A permitted crossing between segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FlowSpec {
    pub(crate) from: String,
    pub(crate) to: String,
    /// `None`: any action.
    pub(crate) actions: Option<Vec<String>>,
}

/// Everything read from all files.
#[derive(Debug, Clone, Default)]
pub(crate) struct Model {
    pub(crate) rules: Vec<RuleSpec>,
    /// `Some` when any file has a `segments:` section (boundaries are then enforced).
    pub(crate) segments: Option<Vec<FlowSpec>>,
    /// Every rule name read (also of rules with errors), for the duplicate check.
    pub(crate) names: Vec<(String, Arc<str>, Pos)>,
    /// `Some` when any file has a `schema:` section: every declaration, in reading order.
    pub(crate) schema: Option<Vec<SchemaDecl>>,
}

impl Model {
    /// The canonical text of the model (see above). `logic` holds [`logic_key`] of each rule,
    /// in the order of `self.rules`, which must be sorted by name; `schema` is the canonical
    /// text of the merged schema, when the policy has one (a policy without one keeps the
    /// digest it had before schemas existed).
    pub(crate) fn canonical(&self, logic: &[String], schema: Option<&str>) -> String {
        let mut out = String::with_capacity(logic.iter().map(|l| l.len() + 64).sum::<usize>() + 64);
        out.push_str("{\"rules\":[");
        for (i, (r, l)) in self.rules.iter().zip(logic).enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str("{\"name\":");
            write_str(&mut out, &r.name);
            out.push_str(",\"description\":");
            match &r.description {
                Some(d) => write_str(&mut out, d),
                None => out.push_str("null"),
            }
            out.push_str(",\"logic\":");
            out.push_str(l);
            out.push('}');
        }
        out.push_str("],\"segments\":");
        match &self.segments {
            None => out.push_str("null"),
            Some(flows) => {
                let mut flows: Vec<String> = flows
                    .iter()
                    .map(|f| {
                        let mut s = String::from("[");
                        write_str(&mut s, &f.from);
                        s.push(',');
                        write_str(&mut s, &f.to);
                        s.push(',');
                        match &f.actions {
                            None => s.push_str("null"),
                            Some(a) => {
                                let mut a = a.clone();
                                a.sort();
                                a.dedup();
                                write_lit(&mut s, &Lit::List(a.into_iter().map(Lit::Str).collect()));
                            }
                        }
                        s.push(']');
                        s
                    })
                    .collect();
                flows.sort();
                flows.dedup();
                out.push('[');
                out.push_str(&flows.join(","));
                out.push(']');
            }
        }
        if let Some(schema) = schema {
            out.push_str(",\"schema\":");
            out.push_str(schema);
        }
        out.push('}');
        out
    }
}
