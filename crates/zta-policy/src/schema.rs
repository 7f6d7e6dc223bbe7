//! The request schema: the declared types of context (and resource) attributes, per action
//! type. A request that does not conform is refused before any rule runs, so that a deny rule
//! cannot be dodged by reshaping an attribute (a map or a list where a string is expected).
//!
//! Declarations are read with the rest of a file (the model's reader), merged across the
//! files of a set ([`merge`]: a path declared twice for one action with different types is a
//! load error), and compiled into pre-split paths per action type ([`Schema`]). Checking a
//! request walks those paths and allocates nothing unless the request is refused.

use std::{collections::BTreeMap, fmt, sync::Arc};

use serde_json::Value as Json;
use time::{OffsetDateTime, format_description::well_known::Rfc3339};
use zta_core::{Attribute, AttributePath, AuthzRequest};

use crate::{
    diag::{Diagnostic, Severity},
    model::{
        ANY_ACTION, AttrType, CondSpec, Kind, Op, Operand, Root, RuleSpec, SchemaDecl, WhenSpec, write_str,
    },
    source::Pos,
};

/// One merged declaration.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) ty: AttrType,
    pub(crate) required: bool,
    file: Arc<str>,
    pos: Pos,
}

impl Entry {
    fn at(&self) -> String {
        format!("{}:{}:{}", self.file, self.pos.line, self.pos.col)
    }
}

/// The schema of every file, merged: action type -> path -> declaration (sorted).
pub(crate) type Merged = BTreeMap<String, BTreeMap<String, Entry>>;

/// Merges the declarations of every file. A path declared twice for one action (or for one
/// action and `"*"`) with different types, and a path declared inside one that is not an
/// `object`, are errors; `required` holds if any declaration says so.
pub(crate) fn merge(decls: &[SchemaDecl], diags: &mut Vec<Diagnostic>) -> Merged {
    let error = |file: &str, pos: Pos, msg: String, hint: String| {
        Diagnostic::new(Severity::Error, file, pos, msg).with_hint(hint)
    };
    let mut merged = Merged::new();
    for d in decls {
        let entries = merged.entry(d.action.clone()).or_default();
        match entries.get_mut(&d.path) {
            Some(e) if e.ty != d.ty => diags.push(error(
                &d.file,
                d.pos,
                format!("`{}` is declared as {} for `{}`, and as {} before", d.path, d.ty, d.action, e.ty),
                format!("the first declaration is at {}; give the attribute one type", e.at()),
            )),
            Some(e) => e.required |= d.required,
            None => {
                entries.insert(
                    d.path.clone(),
                    Entry { ty: d.ty, required: d.required, file: d.file.clone(), pos: d.pos },
                );
            }
        }
    }
    let empty = BTreeMap::new();
    let any = merged.get(ANY_ACTION).unwrap_or(&empty);
    for (action, own) in &merged {
        let wildcard = action == ANY_ACTION;
        if !wildcard {
            for (path, e) in own {
                if let Some(w) = any.get(path)
                    && w.ty != e.ty
                {
                    diags.push(error(
                        &e.file,
                        e.pos,
                        format!("`{path}` is declared as {} for `{action}`, and as {} for `\"*\"`", e.ty, w.ty),
                        format!(
                            "declarations under `\"*\"` apply to every action (at {}); give the attribute one type",
                            w.at()
                        ),
                    ));
                }
            }
        }
        // A path inside another declared path: that one must be an object. Each pair is
        // reported once: under `"*"` when both are declared there, else under the action.
        let mut effective: BTreeMap<&str, (&Entry, bool)> = if wildcard {
            BTreeMap::new()
        } else {
            any.iter().map(|(p, e)| (p.as_str(), (e, false))).collect()
        };
        effective.extend(own.iter().map(|(p, e)| (p.as_str(), (e, true))));
        for (path, (e, e_own)) in &effective {
            for (i, _) in path.match_indices('.') {
                let Some(prefix) = path.get(..i) else { continue };
                let Some((q, q_own)) = effective.get(prefix) else { continue };
                if q.ty == AttrType::One(Kind::Object) || !(*e_own || *q_own) {
                    continue;
                }
                let (file, pos) = if *e_own { (&e.file, e.pos) } else { (&q.file, q.pos) };
                diags.push(error(
                    file,
                    pos,
                    format!(
                        "`{path}` is declared inside `{prefix}` for `{action}`, but `{prefix}` is declared as {}",
                        q.ty
                    ),
                    format!(
                        "only an `object` holds attributes: declare `{prefix}` (at {}) as `object`, or drop one of the two",
                        q.at()
                    ),
                ));
            }
        }
    }
    merged
}

/// Refuses attribute references whose two sides have types that can never match under the
/// operator. Reserved attributes have fixed types; context and resource attributes have the
/// types the schema declares for every action type the rule can apply to (those its
/// `action_type` condition pins, else `"*"`), and are not checked when it declares none.
pub(crate) fn check_references(rules: &[RuleSpec], merged: Option<&Merged>, diags: &mut Vec<Diagnostic>) {
    fn conds<'a>(w: &'a WhenSpec, out: &mut Vec<&'a CondSpec>) {
        match w {
            WhenSpec::All(v) | WhenSpec::Any(v) => v.iter().for_each(|x| conds(x, out)),
            WhenSpec::Not(x) => conds(x, out),
            WhenSpec::Cond(c) => out.push(c),
        }
    }
    for rule in rules {
        let mut all: Vec<&CondSpec> = rule.conditions.iter().collect();
        if let Some(w) = &rule.when {
            conds(w, &mut all);
        }
        let actions = crate::analysis::pinned_strings(rule, "action_type");
        let types = |path: &str| declared_types(merged, actions.as_deref(), path);
        for c in all {
            for o in &c.ops {
                let Operand::Ref(r) = &o.operand else { continue };
                let (Some(left), Some(right)) = (types(&c.path), types(&r.path)) else { continue };
                if left.iter().any(|&l| right.iter().any(|&x| can_match(o.op, l, x))) {
                    continue;
                }
                let names = |t: &[AttrType]| t.iter().map(|t| t.name()).collect::<Vec<_>>().join(" or ");
                diags.push(
                    Diagnostic::new(
                        Severity::Error,
                        &rule.file,
                        r.pos,
                        format!(
                            "`{}` ({}) {} `{}` ({}) can never match: the types do not fit the operator",
                            c.path,
                            names(&left),
                            o.op.as_str(),
                            r.path,
                            names(&right)
                        ),
                        )
                    .with_rule(Some(&rule.name))
                    .with_hint(
                        "compare attributes of one type (`in`/`not_in` need a list on the referenced side, `contains` a list or string on the tested side); context and resource types come from the schema",
                    ),
                );
            }
        }
    }
}

/// The types `path` may have in a request a rule with these action types (`None`: any)
/// applies to; `None` when unknown.
fn declared_types(merged: Option<&Merged>, actions: Option<&[&str]>, path: &str) -> Option<Vec<AttrType>> {
    match AttributePath::parse(path) {
        AttributePath::Reserved(Attribute::Roles | Attribute::Groups | Attribute::Delegation) => {
            return Some(vec![AttrType::List(Some(Kind::String))]);
        }
        AttributePath::Reserved(_) => return Some(vec![AttrType::One(Kind::String)]),
        AttributePath::Unknown => return None,
        AttributePath::Resource(_) | AttributePath::Context(_) => {}
    }
    let merged = merged?;
    let lookup = |action: &str| {
        merged
            .get(action)
            .and_then(|m| m.get(path))
            .or_else(|| merged.get(ANY_ACTION)?.get(path))
            .map(|e| e.ty)
    };
    let mut out: Vec<AttrType> = match actions {
        Some(actions) => actions.iter().map(|a| lookup(a)).collect::<Option<_>>()?,
        None => vec![merged.get(ANY_ACTION)?.get(path)?.ty],
    };
    out.dedup();
    Some(out)
}

/// Whether `op` can hold between a tested value of type `l` and a referenced one of type `r`.
fn can_match(op: Op, l: AttrType, r: AttrType) -> bool {
    // The kind of a scalar or of a list's elements; `None`: any.
    let elem = |t: AttrType| match t {
        AttrType::One(k) | AttrType::List(Some(k)) => Some(k),
        AttrType::List(None) => None,
    };
    let stringy = |k: Kind| matches!(k, Kind::String | Kind::Time);
    let fits = |a: Option<Kind>, b: Option<Kind>| match (a, b) {
        (Some(Kind::Object), _) | (_, Some(Kind::Object)) => false,
        (Some(a), Some(b)) => a == b || (stringy(a) && stringy(b)),
        _ => true,
    };
    let is_list = |t: AttrType| matches!(t, AttrType::List(_));
    match op {
        Op::Eq | Op::Ne => match r {
            AttrType::One(_) => fits(elem(l), elem(r)),
            AttrType::List(_) => is_list(l) && fits(elem(l), elem(r)),
        },
        Op::Gt | Op::Gte | Op::Lt | Op::Lte => match r {
            AttrType::One(Kind::Number) => fits(elem(l), Some(Kind::Number)),
            AttrType::One(k) if stringy(k) => elem(l).is_none_or(stringy),
            _ => false,
        },
        Op::In | Op::NotIn => is_list(r) && fits(elem(l), elem(r)),
        Op::Contains => match (l, r) {
            (_, AttrType::List(_)) => false,
            (AttrType::One(a), AttrType::One(b)) => stringy(a) && stringy(b),
            (AttrType::List(_), AttrType::One(_)) => fits(elem(l), elem(r)),
        },
        Op::StartsWith | Op::EndsWith => match r {
            AttrType::One(k) if stringy(k) => elem(l).is_none_or(stringy),
            _ => false,
        },
        Op::Regex | Op::Glob | Op::Cidr | Op::Exists => true,
    }
}

/// The canonical text of a merged schema, for the digest.
pub(crate) fn canonical(merged: &Merged) -> String {
    let mut out = String::from("{");
    for (i, (action, entries)) in merged.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_str(&mut out, action);
        out.push_str(":[");
        for (j, (path, e)) in entries.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            out.push('[');
            write_str(&mut out, path);
            out.push(',');
            write_str(&mut out, e.ty.name());
            out.push_str(if e.required { ",true]" } else { ",false]" });
        }
        out.push(']');
    }
    out.push('}');
    out
}

/// One compiled declaration: a pre-split path and its type.
#[derive(Debug, Clone)]
struct Check {
    /// The path as written (`message.type`, `resource.owner`).
    path: Box<str>,
    root: Root,
    /// The path below its root, split at the dots (never empty).
    parts: Box<[Box<str>]>,
    ty: AttrType,
    required: bool,
}

impl Check {
    fn new(path: &str, e: &Entry) -> Self {
        let (root, rest) = match path.strip_prefix("resource.") {
            Some(rest) => (Root::Resource, rest),
            None => (Root::Context, path),
        };
        Self {
            path: path.into(),
            root,
            parts: rest.split('.').map(Box::from).collect(),
            ty: e.ty,
            required: e.required,
        }
    }

    /// What is wrong with the request's value at this path, if anything.
    #[inline]
    fn problem(&self, req: &AuthzRequest) -> Option<Problem> {
        let missing = || self.required.then_some(Problem::Missing);
        let mut map = match self.root {
            Root::Context => req.context(),
            Root::Resource => match req.resource() {
                Some(r) => &r.attributes,
                None => return missing(),
            },
        };
        let (last, parents) = self.parts.split_last()?;
        for (depth, part) in parents.iter().enumerate() {
            match map.get(&**part) {
                None => return missing(),
                Some(Json::Object(inner)) => map = inner,
                Some(other) => return Some(Problem::Parent { depth, found: found(other) }),
            }
        }
        match map.get(&**last) {
            None => missing(),
            Some(v) => self.ty.check(v).err(),
        }
    }
}

/// Why a value does not conform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Problem {
    /// A required attribute is absent.
    Missing,
    /// The value has another type.
    Wrong(&'static str),
    /// A list element has another type.
    Element { index: usize, found: &'static str },
    /// The map at this many parts below the root holds a non-map where the path continues.
    Parent { depth: usize, found: &'static str },
}

/// A request attribute that does not conform to the schema. Displays as the detail of
/// `PolicyError::InvalidRequest`: the path, the expected type and what was found (never the
/// value itself).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Violation<'a> {
    check: &'a Check,
    action: &'a str,
    problem: Problem,
}

impl fmt::Display for Violation<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Check { path, ty, root, .. } = self.check;
        match (self.problem, ty) {
            (Problem::Missing, _) => {
                write!(f, "`{path}` ({ty}) is required for `{}` and missing", self.action)
            }
            (Problem::Wrong(found), AttrType::One(k)) => {
                write!(f, "`{path}` must be {}, found {found}", k.expected())
            }
            (Problem::Wrong(found), AttrType::List(None)) => {
                write!(f, "`{path}` must be a list, found {found}")
            }
            (Problem::Wrong(found) | Problem::Element { found, .. }, AttrType::List(Some(k))) => {
                write!(f, "`{path}` must be a list of {} ({ty}), found {found}", k.plural())?;
                match self.problem {
                    Problem::Element { index, .. } => write!(f, " at index {index}"),
                    _ => Ok(()),
                }
            }
            (Problem::Element { found, index }, _) => write!(f, "`{path}` has {found} at index {index}"),
            (Problem::Parent { depth, found }, _) => {
                let keep = depth + 1 + usize::from(*root == Root::Resource);
                let parent: Vec<&str> = path.split('.').take(keep).collect();
                write!(f, "`{}` must be a map to hold `{path}` ({ty}), found {found}", parent.join("."))
            }
        }
    }
}

/// A compiled schema: for each declared action type, its checks and those of `"*"`.
#[derive(Debug, Default)]
pub(crate) struct Schema {
    by_action: foldhash::HashMap<Box<str>, Box<[Check]>>,
    any: Box<[Check]>,
}

impl Schema {
    pub(crate) fn compile(merged: &Merged) -> Self {
        let empty = BTreeMap::new();
        let any_entries = merged.get(ANY_ACTION).unwrap_or(&empty);
        let any: Box<[Check]> = any_entries.iter().map(|(p, e)| Check::new(p, e)).collect();
        let by_action = merged
            .iter()
            .filter(|(action, _)| *action != ANY_ACTION)
            .map(|(action, own)| {
                let mut all: BTreeMap<&str, Entry> =
                    any_entries.iter().map(|(p, e)| (p.as_str(), e.clone())).collect();
                for (p, e) in own {
                    let required = e.required || all.get(p.as_str()).is_some_and(|w| w.required);
                    all.insert(p, Entry { required, ..e.clone() });
                }
                let checks: Box<[Check]> = all.iter().map(|(p, e)| Check::new(p, e)).collect();
                (Box::from(action.as_str()), checks)
            })
            .collect();
        Self { by_action, any }
    }

    fn checks(&self, action: &str) -> &[Check] {
        if self.by_action.is_empty() {
            return &self.any;
        }
        self.by_action.get(action).map_or(&self.any, |c| &**c)
    }

    /// Every way `req` fails to conform, in path order.
    pub(crate) fn violations<'a>(&'a self, req: &'a AuthzRequest) -> impl Iterator<Item = Violation<'a>> {
        let action = req.action().action_type();
        self.checks(action)
            .iter()
            .filter_map(move |check| check.problem(req).map(|problem| Violation { check, action, problem }))
    }

    /// Whether the schema declares `path` (or a path inside it) for `action`; `None` means for
    /// every action, which only `"*"` does.
    pub(crate) fn declares(&self, action: Option<&str>, path: &str) -> bool {
        let checks = match action {
            Some(a) => self.checks(a),
            None => &self.any,
        };
        checks
            .iter()
            .any(|c| c.path.strip_prefix(path).is_some_and(|rest| rest.is_empty() || rest.starts_with('.')))
    }
}

// The checks a declared type makes of a request value.

impl Kind {
    #[inline]
    fn holds(self, v: &Json) -> bool {
        match self {
            Self::String => v.is_string(),
            Self::Number => v.is_number(),
            Self::Boolean => v.is_boolean(),
            Self::Object => v.is_object(),
            Self::Time => v.as_str().is_some_and(|s| OffsetDateTime::parse(s, &Rfc3339).is_ok()),
        }
    }

    fn expected(self) -> &'static str {
        match self {
            Self::String => "a string",
            Self::Number => "a number",
            Self::Boolean => "a boolean",
            Self::Object => "a map (object)",
            Self::Time => "an RFC 3339 time (time)",
        }
    }

    fn plural(self) -> &'static str {
        match self {
            Self::String => "strings",
            Self::Number => "numbers",
            Self::Boolean => "booleans",
            Self::Object => "maps",
            Self::Time => "RFC 3339 times",
        }
    }

    /// What `v` is, in the words of an error about this kind.
    fn found(self, v: &Json) -> &'static str {
        match (self, v) {
            (Self::Time, Json::String(_)) => "a string that is not an RFC 3339 time",
            _ => found(v),
        }
    }
}

/// What a JSON value is, in words.
fn found(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "a list",
        Json::Object(_) => "a map",
    }
}

impl AttrType {
    /// Whether `v` has this type; else what is wrong.
    #[inline]
    fn check(self, v: &Json) -> Result<(), Problem> {
        match self {
            Self::One(k) if k.holds(v) => Ok(()),
            Self::One(k) => Err(Problem::Wrong(k.found(v))),
            Self::List(k) => {
                let Json::Array(items) = v else { return Err(Problem::Wrong(found(v))) };
                let Some(k) = k else { return Ok(()) };
                match items.iter().enumerate().find(|(_, x)| !k.holds(x)) {
                    Some((index, x)) => Err(Problem::Element { index, found: k.found(x) }),
                    None => Ok(()),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_checked_by_type() {
        use serde_json::json;
        let t = |name: &str, v: Json| AttrType::parse(name).unwrap().check(&v);
        assert_eq!(t("string", json!("x")), Ok(()));
        assert_eq!(t("string", json!({"nested": "system"})), Err(Problem::Wrong("a map")));
        assert_eq!(t("string", json!(["system"])), Err(Problem::Wrong("a list")));
        assert_eq!(t("string", json!(null)), Err(Problem::Wrong("null")));
        assert_eq!(t("number", json!(1.5)), Ok(()));
        assert_eq!(t("number", json!("1")), Err(Problem::Wrong("a string")));
        assert_eq!(t("time", json!("2030-01-01T00:00:00Z")), Ok(()));
        assert_eq!(
            t("time", json!("tomorrow")),
            Err(Problem::Wrong("a string that is not an RFC 3339 time"))
        );
        assert_eq!(t("list", json!([1, "a"])), Ok(()));
        assert_eq!(t("list<string>", json!(["a", 2])), Err(Problem::Element { index: 1, found: "a number" }));
        assert_eq!(t("object", json!({})), Ok(()));
        assert_eq!(t("boolean", json!(0)), Err(Problem::Wrong("a number")));
    }
}
