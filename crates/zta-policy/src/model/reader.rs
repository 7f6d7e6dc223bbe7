//! Reading a document tree into the model: every key checked, every error collected with its
//! position and a hint.

use std::sync::Arc;

use time::{OffsetDateTime, format_description::well_known::Rfc3339};
use zta_core::{Attribute, AttributePath, Effect, Obligation};

use super::*;
use crate::{
    diag::{Diagnostic, Severity},
    pattern,
    source::{Key, Node, Pos, Value},
};

/// Collects diagnostics while reading one file.
pub(crate) struct Reader<'a> {
    pub(crate) file: Arc<str>,
    pub(crate) diags: &'a mut Vec<Diagnostic>,
    /// The rule being read, named in diagnostics.
    pub(crate) rule: Option<String>,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(file: &str, diags: &'a mut Vec<Diagnostic>) -> Self {
        Self { file: Arc::from(file), diags, rule: None }
    }

    pub(crate) fn error(&mut self, pos: Pos, message: impl Into<String>, hint: impl Into<String>) {
        let d = Diagnostic::new(Severity::Error, &self.file, pos, message)
            .with_hint(hint)
            .with_rule(self.rule.as_deref());
        self.diags.push(d);
    }

    /// Reads a whole document into `model`.
    pub(crate) fn read_document(&mut self, doc: &Node, model: &mut Model) {
        let Value::Map(top) = &doc.value else {
            if doc.value == Value::Null {
                self.error(doc.pos, "the policy file is empty", "add a `policies:` list of rules");
            } else {
                self.error(
                    doc.pos,
                    format!("a policy file must be a map, found {}", doc.kind()),
                    "start the file with `policies:` followed by a list of rules",
                );
            }
            return;
        };
        let Some(policies) = doc.get("policies") else {
            self.error(doc.pos, "no `policies` section", "add a top-level `policies:` list of rules");
            return;
        };
        match &policies.value {
            // The original project's whole config file: `policies: { policies: [...] }`, next to
            // its other sections (auth, logging, monitoring), which are not ours to judge.
            Value::Map(inner) if policies.get("policies").is_some() => {
                for (key, value) in inner {
                    match key.name.as_str() {
                        "policies" => self.read_rules(value, model),
                        "segments" => self.read_segments(value, model),
                        "schema" => self.read_schema(value, model),
                        _ => self.unknown_key(
                            key,
                            &["policies", "segments", "schema"],
                            "the `policies` section",
                        ),
                    }
                }
            }
            Value::Map(_) => self.error(
                policies.pos,
                "`policies` must be a list of rules",
                "write `policies:` followed by `- name: ...` items (the original's config file nests them as `policies: {policies: [...]}`)",
            ),
            _ => {
                for (key, value) in top {
                    match key.name.as_str() {
                        "policies" => self.read_rules(value, model),
                        "segments" => self.read_segments(value, model),
                        "schema" => self.read_schema(value, model),
                        _ => self.unknown_key(key, &["policies", "segments", "schema"], "a policy file"),
                    }
                }
            }
        }
    }

    pub(crate) fn unknown_key(&mut self, key: &Key, known: &[&str], place: &str) {
        let hint = match did_you_mean(&key.name, known) {
            Some(s) => format!("did you mean `{s}`? {place} accepts: {}", known.join(", ")),
            None => format!("{place} accepts: {}", known.join(", ")),
        };
        self.error(key.pos, format!("unknown key `{}`", key.name), hint);
    }

    fn read_rules(&mut self, node: &Node, model: &mut Model) {
        match &node.value {
            Value::Seq(items) => {
                for item in items {
                    if let Some(rule) = self.read_rule(item, model) {
                        model.rules.push(rule);
                    }
                }
            }
            Value::Null => {}
            _ => self.error(
                node.pos,
                format!("`policies` must be a list of rules, found {}", node.kind()),
                "write each rule as a list item starting with `- name: ...`",
            ),
        }
    }

    fn read_rule(&mut self, node: &Node, model: &mut Model) -> Option<RuleSpec> {
        self.rule = None;
        let Value::Map(entries) = &node.value else {
            self.error(
                node.pos,
                format!("a rule must be a map, found {}", node.kind()),
                "a rule has `name`, `effect`, optional `priority`, `conditions`, `when`, `description`, `obligations`",
            );
            return None;
        };
        let before = self.diags.len();
        let name = match node.get("name") {
            Some(n) => match n.as_str() {
                Some(s) if !s.trim().is_empty() => Some(s.to_owned()),
                _ => {
                    self.error(
                        n.pos,
                        "a rule name must be a non-empty string",
                        "give the rule a unique `name`",
                    );
                    None
                }
            },
            None => {
                self.error(node.pos, "a rule has no `name`", "every rule needs a unique `name`");
                None
            }
        };
        self.rule.clone_from(&name);
        if let Some(n) = &name {
            model.names.push((n.clone(), self.file.clone(), node.pos));
        }
        let mut effect = None;
        let mut priority = 0i64;
        let mut description = None;
        let mut conditions = Vec::new();
        let mut when = None;
        let mut obligations = Vec::new();
        let mut obligations_pos = None;
        for (key, value) in entries {
            match key.name.as_str() {
                "name" => {}
                "effect" => match value.as_str() {
                    Some("allow") => effect = Some(Effect::Allow),
                    Some("deny") => effect = Some(Effect::Deny),
                    Some(other) => self.error(
                        value.pos,
                        format!("unknown effect `{other}`"),
                        if other.eq_ignore_ascii_case("allow") || other.eq_ignore_ascii_case("deny") {
                            format!("write `{}` in lowercase", other.to_ascii_lowercase())
                        } else {
                            "the effect is `allow` or `deny`".to_owned()
                        },
                    ),
                    None => self.error(
                        value.pos,
                        format!("the effect must be a string, found {}", value.kind()),
                        "the effect is `allow` or `deny`",
                    ),
                },
                "priority" => match value.value {
                    Value::Int(p) => priority = p,
                    Value::Null => {}
                    _ => self.error(
                        value.pos,
                        format!("the priority must be an integer, found {}", value.kind()),
                        "write a whole number such as `100`; higher priorities decide first",
                    ),
                },
                "description" => match &value.value {
                    Value::Str(s) => description = Some(s.clone()),
                    Value::Null => {}
                    _ => self.error(value.pos, "the description must be a string", "quote the description"),
                },
                "conditions" => conditions = self.read_conditions(value),
                "when" => when = self.read_when(value, 0),
                "obligations" => {
                    obligations_pos = Some(value.pos);
                    obligations = self.read_obligations(value);
                }
                _ => self.unknown_key(
                    key,
                    &["name", "effect", "priority", "conditions", "when", "description", "obligations"],
                    "a rule",
                ),
            }
        }
        if effect.is_none() && node.get("effect").is_none() {
            self.error(node.pos, "a rule has no `effect`", "add `effect: allow` or `effect: deny`");
        }
        if effect == Some(Effect::Deny) && !obligations.is_empty() {
            self.error(
                obligations_pos.unwrap_or(node.pos),
                "obligations are only allowed on allow rules",
                "remove `obligations` from this deny rule",
            );
        }
        if self.diags.len() > before {
            return None;
        }
        conditions.sort_by(|a: &CondSpec, b: &CondSpec| a.path.cmp(&b.path));
        Some(RuleSpec {
            name: name?,
            effect: effect?,
            priority,
            description,
            conditions,
            when,
            obligations,
            file: self.file.clone(),
            pos: node.pos,
        })
    }

    fn read_obligations(&mut self, node: &Node) -> Vec<Obligation> {
        let mut out = Vec::new();
        let items: &[Node] = match &node.value {
            Value::Seq(items) => items,
            Value::Null => return out,
            _ => {
                self.error(
                    node.pos,
                    format!("`obligations` must be a list, found {}", node.kind()),
                    "write `obligations: [require_approval]` or a list of `{name, params}` maps",
                );
                return out;
            }
        };
        for item in items {
            match &item.value {
                Value::Str(s) if !s.is_empty() => {
                    out.push(Obligation { name: s.clone(), params: serde_json::Value::Null });
                }
                Value::Map(entries) => {
                    let mut name = None;
                    let mut params = serde_json::Value::Null;
                    for (k, v) in entries {
                        match k.name.as_str() {
                            "name" => name = v.as_str().map(str::to_owned),
                            "params" => params = v.to_json(),
                            _ => self.unknown_key(k, &["name", "params"], "an obligation"),
                        }
                    }
                    match name {
                        Some(name) if !name.is_empty() => out.push(Obligation { name, params }),
                        _ => self.error(
                            item.pos,
                            "an obligation needs a `name` string",
                            "write `{name: rate_limit, params: {...}}`",
                        ),
                    }
                }
                _ => self.error(
                    item.pos,
                    format!("an obligation must be a name or a map, found {}", item.kind()),
                    "write `require_approval` or `{name: rate_limit, params: {per_minute: 10}}`",
                ),
            }
        }
        out
    }

    fn read_conditions(&mut self, node: &Node) -> Vec<CondSpec> {
        match &node.value {
            Value::Map(entries) => entries.iter().filter_map(|(k, v)| self.read_condition(k, v)).collect(),
            Value::Null => Vec::new(),
            _ => {
                self.error(
                    node.pos,
                    format!("`conditions` must be a map of attribute paths, found {}", node.kind()),
                    "write `conditions: {action_type: send_message}`; `{}` means always",
                );
                Vec::new()
            }
        }
    }

    /// Whether `key` is a dotted path (no empty part); if not, says so.
    pub(super) fn check_dotted(&mut self, key: &Key) -> bool {
        let path = key.name.as_str();
        if path.is_empty() || path.split('.').any(str::is_empty) {
            self.error(
                key.pos,
                format!("`{path}` is not an attribute path"),
                "write dotted names such as `message.type`",
            );
            return false;
        }
        true
    }

    fn check_path(&mut self, key: &Key) -> bool {
        if !self.check_dotted(key) {
            return false;
        }
        let path = key.name.as_str();
        if AttributePath::parse(path) == AttributePath::Unknown {
            let reserved = Attribute::ALL.map(Attribute::name);
            let hint = match did_you_mean(path, &reserved) {
                Some(s) => format!("did you mean `{s}`? reserved attributes are: {}", reserved.join(", ")),
                None => format!("reserved attributes are: {}", reserved.join(", ")),
            };
            self.error(key.pos, format!("unknown attribute `{path}`"), hint);
            return false;
        }
        true
    }

    fn read_condition(&mut self, key: &Key, node: &Node) -> Option<CondSpec> {
        if !self.check_path(key) {
            return None;
        }
        // One spelling of a context path: `context.message.type` is `message.type`.
        let path = key.name.strip_prefix("context.").unwrap_or(&key.name).to_owned();
        let ops = match &node.value {
            Value::Map(entries) => {
                if entries.is_empty() {
                    self.error(
                        node.pos,
                        format!("empty operator map for `{path}`"),
                        "give at least one operator, e.g. `{eq: value}`, or remove the condition",
                    );
                    return None;
                }
                let before = self.diags.len();
                let mut ops = Vec::new();
                for (k, v) in entries {
                    match Op::parse(&k.name) {
                        Some(op) => {
                            if let Some(operand) = self.read_operand(op, v, &path) {
                                ops.push(OpSpec { op, operand, pos: k.pos });
                            }
                        }
                        None if k.name == "attr" => self.error(
                            k.pos,
                            format!("`{{attr: ...}}` on `{path}` needs an operator"),
                            "a reference is an operand: write `{eq: {attr: agent_id}}`",
                        ),
                        None => {
                            let hint = match did_you_mean(&k.name, OPERATORS) {
                                Some(s) => {
                                    format!("did you mean `{s}`? operators are: {}", OPERATORS.join(" "))
                                }
                                None => format!(
                                    "operators are: {}; to test a nested attribute write the dotted path `{path}.{}`",
                                    OPERATORS.join(" "),
                                    k.name
                                ),
                            };
                            self.error(k.pos, format!("unknown operator `{}`", k.name), hint);
                        }
                    }
                }
                if self.diags.len() > before {
                    return None;
                }
                ops.sort_by_key(|o| o.op);
                ops
            }
            _ => vec![OpSpec {
                op: Op::Eq,
                operand: Operand::Lit(self.read_literal(node, true)?),
                pos: node.pos,
            }],
        };
        Some(CondSpec { path, ops, pos: key.pos })
    }

    fn read_literal(&mut self, node: &Node, allow_list: bool) -> Option<Lit> {
        Some(match &node.value {
            Value::Null => Lit::Null,
            Value::Bool(b) => Lit::Bool(*b),
            Value::Int(i) => Lit::Int(*i),
            Value::Float(f) => Lit::Float(*f),
            Value::Str(s) => Lit::Str(s.clone()),
            Value::Seq(items) if allow_list => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    out.push(self.read_literal(item, false)?);
                }
                Lit::List(out)
            }
            Value::Seq(_) => {
                self.error(
                    node.pos,
                    "a nested list is not a valid value here",
                    "use plain values (strings, numbers, booleans)",
                );
                return None;
            }
            Value::Map(_) => {
                self.error(
                    node.pos,
                    "a map is not a valid value here",
                    "operators go directly under the attribute: `path: {op: value}`; another attribute is named `{attr: path}`",
                );
                return None;
            }
        })
    }

    fn read_operand(&mut self, op: Op, node: &Node, path: &str) -> Option<Operand> {
        if let Value::Map(entries) = &node.value
            && entries.iter().any(|(k, _)| k.name == "attr")
        {
            return self.read_reference(op, node, path).map(Operand::Ref);
        }
        self.read_literal_operand(op, node, path).map(Operand::Lit)
    }

    /// `{attr: path}`: another attribute of the same request, which must exist in the
    /// vocabulary, differ from the tested one, and suit the operator.
    fn read_reference(&mut self, op: Op, node: &Node, path: &str) -> Option<RefSpec> {
        let Value::Map(entries) = &node.value else { return None };
        let [(key, target)] = entries.as_slice() else {
            self.error(
                node.pos,
                "an attribute reference has one key, `attr`",
                "write `{attr: agent_id}` alone as the operand",
            );
            return None;
        };
        if !op.takes_reference() {
            self.error(
                key.pos,
                format!("`{}` on `{path}` cannot take an attribute reference", op.as_str()),
                format!(
                    "{} operands are fixed at load; references work with: {REFERENCE_OPERATORS}",
                    op.as_str()
                ),
            );
            return None;
        }
        let Some(name) = target.as_str() else {
            self.error(
                target.pos,
                format!("`attr` must name an attribute path, found {}", target.kind()),
                "write `{attr: agent_id}` or `{attr: resource.owner}`",
            );
            return None;
        };
        let name_key = Key { name: name.to_owned(), pos: target.pos };
        if !self.check_path(&name_key) {
            return None;
        }
        let name = name.strip_prefix("context.").unwrap_or(name);
        if crate::compile::Accessor::new(name) == crate::compile::Accessor::new(path) {
            self.error(
                target.pos,
                format!("`{path}` is compared with itself"),
                "a reference names another attribute of the request, e.g. `resource.owner: {eq: {attr: agent_id}}`",
            );
            return None;
        }
        Some(RefSpec { path: name.to_owned(), pos: target.pos })
    }

    fn read_literal_operand(&mut self, op: Op, node: &Node, path: &str) -> Option<Lit> {
        let wrong = |this: &mut Self, expected: &str, hint: String| {
            this.error(
                node.pos,
                format!("`{}` on `{path}` needs {expected}, found {}", op.as_str(), node.kind()),
                hint,
            );
            None
        };
        match op {
            Op::Eq | Op::Ne => self.read_literal(node, true),
            Op::Gt | Op::Gte | Op::Lt | Op::Lte => match &node.value {
                Value::Int(i) => Some(Lit::Int(*i)),
                Value::Float(f) if !f.is_nan() => Some(Lit::Float(*f)),
                Value::Str(s) => match OffsetDateTime::parse(s, &Rfc3339) {
                    Ok(t) => Some(Lit::Time(t, s.clone())),
                    Err(_) => wrong(
                        self,
                        "a number or an RFC 3339 time",
                        format!(
                            "`{s}` is neither; comparisons are between numbers or times like `2025-01-01T00:00:00Z`"
                        ),
                    ),
                },
                _ => wrong(self, "a number or an RFC 3339 time", "write e.g. `{gt: 10}`".into()),
            },
            Op::In | Op::NotIn => match &node.value {
                Value::Seq(_) => self.read_literal(node, true),
                Value::Str(s) => wrong(
                    self,
                    "a list",
                    format!(
                        "write `[{s}]`: a string operand would be a substring test (the original's bug); use `contains` for substrings"
                    ),
                ),
                _ => wrong(self, "a list", format!("write `{{{}: [a, b]}}`", op.as_str())),
            },
            Op::Contains => match &node.value {
                Value::Seq(_) | Value::Map(_) => {
                    wrong(self, "a single value", "`contains` tests one element or substring".into())
                }
                _ => self.read_literal(node, false),
            },
            Op::Regex | Op::StartsWith | Op::EndsWith | Op::Glob => match &node.value {
                Value::Str(s) => {
                    if op == Op::Regex
                        && let Err(e) = pattern::build_regex(s)
                    {
                        self.error(
                            node.pos,
                            format!("bad regex `{s}`: {e}"),
                            "the syntax is Rust regex (RE2-like): no look-around or backreferences",
                        );
                        return None;
                    }
                    if op == Op::Glob
                        && let Err(e) = pattern::build_glob(s)
                    {
                        self.error(
                            node.pos,
                            format!("bad glob `{s}`: {e}"),
                            "globs use `*`, `?` and `[abc]`",
                        );
                        return None;
                    }
                    Some(Lit::Str(s.clone()))
                }
                _ => wrong(self, "a string", format!("quote the pattern: `{{{}: \"...\"}}`", op.as_str())),
            },
            Op::Cidr => {
                let items: Vec<&Node> = match &node.value {
                    Value::Str(_) => vec![node],
                    Value::Seq(items) => items.iter().collect(),
                    _ => {
                        return wrong(
                            self,
                            "a network or a list of networks",
                            "write `{cidr: 10.0.0.0/8}`".into(),
                        );
                    }
                };
                let mut nets = Vec::new();
                for item in items {
                    match item.as_str().map(|s| (s, pattern::Net::parse(s))) {
                        Some((s, Some(_))) => nets.push(Lit::Str(s.to_owned())),
                        _ => {
                            self.error(
                                item.pos,
                                format!("`{item}` is not a network"),
                                "write an address with a prefix length, e.g. `10.0.0.0/8` or `2001:db8::/32`",
                            );
                            return None;
                        }
                    }
                }
                if nets.is_empty() {
                    return wrong(self, "at least one network", "write `{cidr: [10.0.0.0/8]}`".into());
                }
                Some(Lit::List(nets))
            }
            Op::Exists => match node.value {
                Value::Bool(b) => Some(Lit::Bool(b)),
                _ => wrong(self, "`true` or `false`", "write `{exists: true}` or `{exists: false}`".into()),
            },
        }
    }

    fn read_when(&mut self, node: &Node, depth: usize) -> Option<WhenSpec> {
        if depth > 32 {
            self.error(node.pos, "`when` is nested too deeply", "flatten the expression");
            return None;
        }
        let Value::Map(entries) = &node.value else {
            self.error(
                node.pos,
                format!("a `when` expression must be a map, found {}", node.kind()),
                "write `{all: [...]}`, `{any: [...]}`, `{not: {...}}` or a map of conditions",
            );
            return None;
        };
        let combinator = entries.iter().find(|(k, _)| matches!(k.name.as_str(), "all" | "any" | "not"));
        if let Some((key, value)) = combinator {
            if entries.len() > 1 {
                self.error(
                    key.pos,
                    format!("`{}` must be the only key of its map", key.name),
                    "wrap the other conditions: `all: [{...}, {...}]`",
                );
                return None;
            }
            return match key.name.as_str() {
                "not" => Some(WhenSpec::Not(Box::new(self.read_when(value, depth + 1)?))),
                name => {
                    let Value::Seq(items) = &value.value else {
                        self.error(
                            value.pos,
                            format!("`{name}` needs a list"),
                            format!("write `{name}: [{{...}}, {{...}}]`"),
                        );
                        return None;
                    };
                    if items.is_empty() {
                        self.error(
                            value.pos,
                            format!("`{name}` has an empty list"),
                            "an empty `all` is always true and an empty `any` never; remove it or add expressions",
                        );
                        return None;
                    }
                    let mut parts = Vec::with_capacity(items.len());
                    let mut ok = true;
                    for item in items {
                        match self.read_when(item, depth + 1) {
                            Some(w) => parts.push(w),
                            None => ok = false,
                        }
                    }
                    if !ok {
                        return None;
                    }
                    Some(if name == "all" { WhenSpec::All(parts) } else { WhenSpec::Any(parts) })
                }
            };
        }
        if entries.is_empty() {
            self.error(node.pos, "an empty `when` map", "remove it, or write conditions inside");
            return None;
        }
        let before = self.diags.len();
        let mut conds: Vec<WhenSpec> =
            entries.iter().filter_map(|(k, v)| self.read_condition(k, v)).map(WhenSpec::Cond).collect();
        if self.diags.len() > before {
            return None;
        }
        if conds.len() == 1 { conds.pop() } else { Some(WhenSpec::All(conds)) }
    }

    fn read_segments(&mut self, node: &Node, model: &mut Model) {
        let flows = model.segments.get_or_insert_with(Vec::new);
        let mut new_flows = Vec::new();
        let mut names: Option<Vec<String>> = None;
        match &node.value {
            Value::Null => {}
            Value::Map(entries) => {
                for (key, value) in entries {
                    match key.name.as_str() {
                        "names" => match &value.value {
                            Value::Seq(items) => {
                                let mut list = Vec::new();
                                for item in items {
                                    match item.as_str() {
                                        Some(s) if !s.is_empty() => list.push(s.to_owned()),
                                        _ => self.error(
                                            item.pos,
                                            "a segment name must be a non-empty string",
                                            "write `names: [research, analysis]`",
                                        ),
                                    }
                                }
                                names = Some(list);
                            }
                            _ => self.error(
                                value.pos,
                                "`names` must be a list",
                                "write `names: [research, analysis]`",
                            ),
                        },
                        "flows" => match &value.value {
                            Value::Seq(items) => {
                                for item in items {
                                    if let Some(f) = self.read_flow(item) {
                                        new_flows.push((f, item.pos));
                                    }
                                }
                            }
                            Value::Null => {}
                            _ => self.error(
                                value.pos,
                                "`flows` must be a list",
                                "write `flows: [{from: a, to: b, actions: [send_message]}]`",
                            ),
                        },
                        _ => self.unknown_key(key, &["names", "flows"], "the `segments` section"),
                    }
                }
            }
            _ => self.error(node.pos, "`segments` must be a map", "write `segments: {flows: [...]}`"),
        }
        if let Some(names) = &names {
            for (f, pos) in &new_flows {
                for s in [&f.from, &f.to] {
                    if !names.contains(s) {
                        self.error(
                            *pos,
                            format!("flow names undeclared segment `{s}`"),
                            format!("declared segments: {}", names.join(", ")),
                        );
                    }
                }
            }
        }
        flows.extend(new_flows.into_iter().map(|(f, _)| f));
    }

    fn read_flow(&mut self, node: &Node) -> Option<FlowSpec> {
        let Value::Map(entries) = &node.value else {
            self.error(
                node.pos,
                "a flow must be a map",
                "write `{from: research, to: analysis, actions: [send_message]}`",
            );
            return None;
        };
        let before = self.diags.len();
        let (mut from, mut to, mut actions) = (None, None, None);
        for (key, value) in entries {
            match key.name.as_str() {
                "from" | "to" => match value.as_str() {
                    Some(s) if !s.is_empty() => {
                        if key.name == "from" {
                            from = Some(s.to_owned());
                        } else {
                            to = Some(s.to_owned());
                        }
                    }
                    _ => self.error(
                        value.pos,
                        format!("`{}` must be a segment name", key.name),
                        "write a string such as `research`",
                    ),
                },
                "actions" => match &value.value {
                    Value::Seq(items) => {
                        let mut list = Vec::new();
                        for item in items {
                            match item.as_str() {
                                Some(s) => list.push(s.to_owned()),
                                None => self.error(
                                    item.pos,
                                    "an action must be a string",
                                    "write action types such as `send_message`",
                                ),
                            }
                        }
                        actions = Some(list);
                    }
                    Value::Str(s) => {
                        self.error(value.pos, "`actions` must be a list", format!("write `actions: [{s}]`"));
                    }
                    _ => self.error(
                        value.pos,
                        "`actions` must be a list",
                        "write `actions: [send_message, handoff]`",
                    ),
                },
                _ => self.unknown_key(key, &["from", "to", "actions"], "a flow"),
            }
        }
        if from.is_none() || to.is_none() {
            self.error(node.pos, "a flow needs `from` and `to`", "write `{from: research, to: analysis}`");
        }
        if self.diags.len() > before {
            return None;
        }
        Some(FlowSpec { from: from?, to: to?, actions })
    }
}

/// A close match for a misspelt name.
pub(crate) fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (strsim::levenshtein(word, c), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 4) && *d < c.len())
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(did_you_mean("regx", OPERATORS), Some("regex"));
        assert_eq!(did_you_mean("condition", &["conditions", "name"]), Some("conditions"));
        assert_eq!(did_you_mean("type", OPERATORS), None);
    }
}
