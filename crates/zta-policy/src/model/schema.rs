//! Schema declarations as read from a file's `schema:` section: the declared type of each
//! context (and resource) attribute, per action type. Merging and checking them is the
//! crate's `schema` module.

use std::{fmt, sync::Arc};

use zta_core::AttributePath;

use super::{Model, Reader, did_you_mean};
use crate::source::{Key, Node, Pos, Value};

/// The action key whose declarations apply to every action type.
pub(crate) const ANY_ACTION: &str = "*";

/// The type names a declaration may use.
const TYPES: &[&str] = &[
    "string",
    "number",
    "boolean",
    "object",
    "time",
    "list",
    "list<string>",
    "list<number>",
    "list<boolean>",
    "list<object>",
    "list<time>",
];

/// A type a value may have: the element types of a list, or a whole attribute's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    String,
    /// An integer or a float.
    Number,
    Boolean,
    /// A map.
    Object,
    /// A string holding an RFC 3339 time.
    Time,
}

impl Kind {
    pub(crate) fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "string" => Self::String,
            "number" => Self::Number,
            "boolean" => Self::Boolean,
            "object" => Self::Object,
            "time" => Self::Time,
            _ => return None,
        })
    }
}

/// A declared attribute type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AttrType {
    One(Kind),
    /// A list; of elements of one kind if given.
    List(Option<Kind>),
}

impl AttrType {
    pub(crate) fn parse(s: &str) -> Option<Self> {
        if s == "list" {
            return Some(Self::List(None));
        }
        if let Some(inner) = s.strip_prefix("list<").and_then(|r| r.strip_suffix('>')) {
            return Kind::parse(inner).map(|k| Self::List(Some(k)));
        }
        Kind::parse(s).map(Self::One)
    }

    /// The name a policy file writes.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::One(Kind::String) => "string",
            Self::One(Kind::Number) => "number",
            Self::One(Kind::Boolean) => "boolean",
            Self::One(Kind::Object) => "object",
            Self::One(Kind::Time) => "time",
            Self::List(None) => "list",
            Self::List(Some(Kind::String)) => "list<string>",
            Self::List(Some(Kind::Number)) => "list<number>",
            Self::List(Some(Kind::Boolean)) => "list<boolean>",
            Self::List(Some(Kind::Object)) => "list<object>",
            Self::List(Some(Kind::Time)) => "list<time>",
        }
    }
}

impl fmt::Display for AttrType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a declared path is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Root {
    Context,
    /// `resource.<path>`: the resource's attributes.
    Resource,
}

/// One declaration, as read from a file.
#[derive(Debug, Clone)]
pub(crate) struct SchemaDecl {
    /// An action type, or [`ANY_ACTION`].
    pub(crate) action: String,
    pub(crate) path: String,
    pub(crate) ty: AttrType,
    pub(crate) required: bool,
    pub(crate) file: Arc<str>,
    pub(crate) pos: Pos,
}

/// Hints for type names people reach for.
fn type_hint(name: &str) -> String {
    let alias = match name {
        "map" | "dict" | "struct" | "record" => Some("object"),
        "int" | "integer" | "float" | "long" | "double" | "decimal" => Some("number"),
        "bool" => Some("boolean"),
        "array" | "set" | "seq" => Some("list"),
        "str" | "text" => Some("string"),
        "datetime" | "timestamp" | "date" => Some("time"),
        _ => None,
    };
    match alias.or_else(|| did_you_mean(name, TYPES)) {
        Some(s) => format!("did you mean `{s}`? types are: {}", TYPES.join(", ")),
        None => format!("types are: {}", TYPES.join(", ")),
    }
}

impl Reader<'_> {
    /// Reads a `schema:` section: action type (or `"*"`) -> attribute path -> type.
    pub(crate) fn read_schema(&mut self, node: &Node, model: &mut Model) {
        self.rule = None;
        let decls = model.schema.get_or_insert_with(Vec::new);
        let actions = match &node.value {
            Value::Null => return,
            Value::Map(actions) => actions,
            _ => {
                self.error(
                    node.pos,
                    format!("`schema` must be a map of action types, found {}", node.kind()),
                    "write `schema: {send_message: {message.type: {type: string, required: true}}}`",
                );
                return;
            }
        };
        for (action, paths) in actions {
            if action.name.is_empty() || action.name.chars().any(char::is_whitespace) {
                self.error(
                    action.pos,
                    format!("`{}` is not an action type", action.name),
                    "write an action type such as `send_message`, or `\"*\"` for every action",
                );
                continue;
            }
            match &paths.value {
                Value::Null => {}
                Value::Map(paths) => {
                    for (key, value) in paths {
                        if let Some(d) = self.read_schema_entry(&action.name, key, value) {
                            decls.push(d);
                        }
                    }
                }
                _ => self.error(
                    paths.pos,
                    format!(
                        "the schema of `{}` must be a map of attribute paths, found {}",
                        action.name,
                        paths.kind()
                    ),
                    "write `message.type: string` or `message.type: {type: string, required: true}` under it",
                ),
            }
        }
    }

    fn read_schema_entry(&mut self, action: &str, key: &Key, node: &Node) -> Option<SchemaDecl> {
        let before = self.diags.len();
        self.check_schema_path(key);
        let path = &key.name;
        let mut ty = None;
        let mut required = false;
        match &node.value {
            Value::Str(s) => ty = self.read_type(s, node.pos),
            Value::Map(entries) => {
                for (k, v) in entries {
                    match k.name.as_str() {
                        "type" => match v.as_str() {
                            Some(s) => ty = self.read_type(s, v.pos),
                            None => self.error(
                                v.pos,
                                format!("the type of `{path}` must be a name, found {}", v.kind()),
                                format!("types are: {}", TYPES.join(", ")),
                            ),
                        },
                        "required" => match v.value {
                            Value::Bool(b) => required = b,
                            _ => self.error(
                                v.pos,
                                format!("`required` of `{path}` must be true or false, found {}", v.kind()),
                                "write `required: true`; attributes are optional by default",
                            ),
                        },
                        _ => self.unknown_key(k, &["type", "required"], "a schema entry"),
                    }
                }
                if node.get("type").is_none() {
                    self.error(
                        node.pos,
                        format!("the schema entry of `{path}` has no `type`"),
                        "write `{type: string, required: true}`",
                    );
                }
            }
            _ => self.error(
                node.pos,
                format!("`{path}` must be declared with a type, found {}", node.kind()),
                "write a type name such as `string`, or `{type: string, required: true}`",
            ),
        }
        if self.diags.len() > before {
            return None;
        }
        Some(SchemaDecl {
            action: action.to_owned(),
            path: path.clone(),
            ty: ty?,
            required,
            file: self.file.clone(),
            pos: key.pos,
        })
    }

    fn read_type(&mut self, name: &str, pos: Pos) -> Option<AttrType> {
        let ty = AttrType::parse(name);
        if ty.is_none() {
            self.error(pos, format!("unknown type `{name}`"), type_hint(name));
        }
        ty
    }

    /// A schema path names request context, or `resource.<path>`; never a reserved attribute.
    fn check_schema_path(&mut self, key: &Key) {
        if !self.check_dotted(key) {
            return;
        }
        let path = key.name.as_str();
        if matches!(AttributePath::parse(path), AttributePath::Reserved(_) | AttributePath::Unknown) {
            self.error(
                key.pos,
                format!("`{path}` is a reserved attribute; a schema declares request context"),
                "reserved attributes come from the verified identity and the request's own fields, \
                 whose types are fixed; declare context paths such as `message.type`, or \
                 resource attributes such as `resource.owner`",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_round_trip() {
        for name in TYPES {
            assert_eq!(AttrType::parse(name).map(AttrType::name), Some(*name));
        }
        for bad in ["map", "list<list>", "list<>", "List", "string?"] {
            assert_eq!(AttrType::parse(bad), None, "{bad}");
        }
        assert!(type_hint("map").contains("`object`"));
        assert!(type_hint("integer").contains("`number`"));
        assert!(type_hint("strng").contains("`string`"));
    }
}
