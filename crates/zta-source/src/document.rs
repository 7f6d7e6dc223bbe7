//! YAML, JSON and TOML text parsed into one positioned document tree, so every later error can
//! name its line and column.

use std::{fmt, path::Path};

use foldhash::HashSet;

use yaml_rust2::{
    Event,
    parser::Parser,
    scanner::{Marker, TScalarStyle},
};

/// The syntax a document is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    /// YAML 1.2 (the original project's format).
    Yaml,
    /// JSON.
    Json,
    /// TOML.
    Toml,
}

impl Format {
    /// The format a file name implies: `.json` is JSON, `.toml` is TOML, anything else YAML.
    pub fn from_path(path: &Path) -> Self {
        match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("json") => Self::Json,
            Some("toml") => Self::Toml,
            _ => Self::Yaml,
        }
    }
}

/// A syntax error (or a document over the size limits) at a position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{column}: {message}", line = pos.line, column = pos.col)]
#[non_exhaustive]
pub struct SyntaxError {
    /// Where.
    pub pos: Pos,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
}

impl SyntaxError {
    /// An error at `pos`.
    pub fn new(pos: Pos, message: impl Into<String>) -> Self {
        Self { pos, message: message.into(), hint: None }
    }

    /// Adds how to fix it.
    #[must_use]
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// A position in a source file: 1-based line and column; 0 means unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, PartialOrd, Ord, Hash)]
pub struct Pos {
    /// Line, from 1.
    pub line: u32,
    /// Column in characters, from 1.
    pub col: u32,
}

impl Pos {
    /// A position (saturating at `u32::MAX`).
    pub fn new(line: usize, col: usize) -> Self {
        Self { line: u32::try_from(line).unwrap_or(u32::MAX), col: u32::try_from(col).unwrap_or(u32::MAX) }
    }
    fn of(mark: &Marker) -> Self {
        Self::new(mark.line(), mark.col() + COL_BASE)
    }
}

/// A parsed document value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null`, `~` or an empty value.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A whole number.
    Int(i64),
    /// Any other number.
    Float(f64),
    /// Text.
    Str(String),
    /// A list.
    Seq(Vec<Node>),
    /// Keys in document order, with their positions.
    Map(Vec<(Key, Node)>),
}

/// A map key and where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    /// The key.
    pub name: String,
    /// Where it was written.
    pub pos: Pos,
}

/// A value and where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The value.
    pub value: Value,
    /// Where it was written.
    pub pos: Pos,
}

impl Node {
    /// What kind of value it is, for messages (`a string`, `a map`, ...).
    pub fn kind(&self) -> &'static str {
        match self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) | Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a map",
        }
    }

    /// The text, if it is a string.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The value under `key`, if it is a map that has one.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries.iter().find(|(k, _)| k.name == key).map(|(_, v)| v),
            _ => None,
        }
    }
}

impl Node {
    /// The node as JSON (positions dropped).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Value::Str(s) => J::String(s.clone()),
            Value::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(entries) => {
                J::Object(entries.iter().map(|(k, v)| (k.name.clone(), v.to_json())).collect())
            }
        }
    }
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_json())
    }
}

/// What to add to the parser's column to make it 1-based.
const COL_BASE: usize = 1;
/// Most nodes a document may expand to through aliases (guards against "billion laughs").
const MAX_NODES: usize = 1_000_000;
/// Deepest nesting accepted.
const MAX_DEPTH: usize = 128;

/// Parses `text` in `format`. Syntax errors come back as diagnostics with positions.
pub fn parse(text: &str, format: Format) -> Result<Node, SyntaxError> {
    match format {
        Format::Yaml => parse_yaml(text),
        Format::Json => {
            // serde_json gives the precise JSON error; the YAML parser (JSON is YAML 1.2) gives
            // positions for every value.
            if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(text) {
                return Err(json_error(&e).with_hint("the file is not valid JSON"));
            }
            // Some valid JSON is not YAML the parser takes (a surrogate pair escape such as
            // `\ud83d\ude00`), and the parser's refusals include a repeated key: read the text
            // as JSON then, without positions, refusing a repeated key there too.
            match parse_yaml(text) {
                Ok(node) => Ok(node),
                Err(_) => zta_core::strict_json::from_str(text).map(|v| from_json(&v, 0)).map_err(|e| {
                    json_error(&e).with_hint("each key may appear once in a map; merge the two entries")
                }),
            }
        }
        Format::Toml => parse_toml(text),
    }
}

/// A serde_json error as a diagnostic at its position (not repeated in the message).
fn json_error(e: &serde_json::Error) -> SyntaxError {
    let full = e.to_string();
    let at = format!(" at line {} column {}", e.line(), e.column());
    let message = full.strip_suffix(&at).unwrap_or(&full);
    SyntaxError::new(Pos::new(e.line(), e.column()), message)
}

fn parse_toml(text: &str) -> Result<Node, SyntaxError> {
    match toml::de::DeTable::parse(text) {
        Ok(table) => {
            let lines = Lines::new(text);
            Ok(from_toml_table(table.get_ref(), lines.pos(table.span().start), &lines, 0))
        }
        Err(e) => {
            let pos = e.span().map(|s| Lines::new(text).pos(s.start)).unwrap_or_default();
            Err(SyntaxError::new(pos, e.message().to_owned()).with_hint("the file is not valid TOML"))
        }
    }
}

fn from_toml_table(t: &toml::de::DeTable<'_>, pos: Pos, lines: &Lines<'_>, depth: usize) -> Node {
    let entries = t
        .iter()
        .map(|(k, v)| {
            let key = Key { name: k.get_ref().to_string(), pos: lines.pos(k.span().start) };
            (key, from_toml(v, lines, depth + 1))
        })
        .collect();
    Node { value: Value::Map(entries), pos }
}

fn from_toml(v: &toml::Spanned<toml::de::DeValue<'_>>, lines: &Lines<'_>, depth: usize) -> Node {
    use toml::de::DeValue;
    let pos = lines.pos(v.span().start);
    let value = match v.get_ref() {
        DeValue::String(s) => Value::Str(s.to_string()),
        DeValue::Integer(i) => {
            let digits = i.as_str().replace('_', "");
            match i64::from_str_radix(&digits, i.radix()) {
                Ok(n) => Value::Int(n),
                Err(_) => Value::Float(digits.parse().unwrap_or(f64::NAN)),
            }
        }
        DeValue::Float(f) => Value::Float(f.as_str().replace('_', "").parse().unwrap_or(f64::NAN)),
        DeValue::Boolean(b) => Value::Bool(*b),
        DeValue::Datetime(d) => Value::Str(d.to_string()),
        DeValue::Array(a) if depth < MAX_DEPTH => {
            Value::Seq(a.iter().map(|x| from_toml(x, lines, depth + 1)).collect())
        }
        DeValue::Table(t) if depth < MAX_DEPTH => return from_toml_table(t, pos, lines, depth),
        _ => Value::Null,
    };
    Node { value, pos }
}

/// Maps byte offsets to line and column.
struct Lines<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str) -> Self {
        let starts = std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect();
        Self { text, starts }
    }

    fn pos(&self, at: usize) -> Pos {
        let line = self.starts.partition_point(|&s| s <= at).max(1);
        let start = self.starts.get(line - 1).copied().unwrap_or(0);
        let col = self.text.get(start..at).map_or(0, |l| l.chars().count()) + 1;
        Pos::new(line, col)
    }
}

fn from_json(v: &serde_json::Value, depth: usize) -> Node {
    let value = match v {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        serde_json::Value::String(s) => Value::Str(s.clone()),
        serde_json::Value::Array(a) if depth < MAX_DEPTH => {
            Value::Seq(a.iter().map(|x| from_json(x, depth + 1)).collect())
        }
        serde_json::Value::Object(o) if depth < MAX_DEPTH => Value::Map(
            o.iter()
                .map(|(k, x)| (Key { name: k.clone(), pos: Pos::default() }, from_json(x, depth + 1)))
                .collect(),
        ),
        _ => Value::Null,
    };
    Node { value, pos: Pos::default() }
}

/// A collection being read, with its position and anchor id.
enum Frame {
    Seq(Vec<Node>, Pos, usize),
    Map(OpenMap, Pos, usize),
}

/// A map being read.
#[derive(Default)]
struct OpenMap {
    entries: Vec<(Key, Node)>,
    /// A key read and waiting for its value.
    pending: Option<Node>,
    /// The key names once the map is large, so that finding a repeated key stays linear.
    names: Option<HashSet<String>>,
}

/// Maps with more keys than this look up repeated keys in a set rather than by scanning.
const KEY_SCAN_LIMIT: usize = 32;

impl OpenMap {
    /// Whether `name` is already a key of this map; remembers it.
    fn repeats(&mut self, name: &str) -> bool {
        if self.names.is_none() && self.entries.len() < KEY_SCAN_LIMIT {
            return self.entries.iter().any(|(k, _)| k.name == name);
        }
        let entries = &self.entries;
        let names = self.names.get_or_insert_with(|| entries.iter().map(|(k, _)| k.name.clone()).collect());
        !names.insert(name.to_owned())
    }
}

fn parse_yaml(text: &str) -> Result<Node, SyntaxError> {
    let err = |pos: Pos, msg: String| SyntaxError::new(pos, msg);
    let mut parser = Parser::new_from_str(text);
    let mut stack: Vec<Frame> = Vec::new();
    let mut anchors: std::collections::HashMap<usize, Node> = std::collections::HashMap::new();
    let mut root: Option<Node> = None;
    let mut documents = 0usize;
    let mut nodes = 0usize;
    loop {
        let (event, mark) = parser.next_token().map_err(|e| {
            err(Pos::of(e.marker()), format!("YAML syntax error: {}", e.info()))
                .with_hint("check indentation, quoting and `:` separators around this position")
        })?;
        let pos = Pos::of(&mark);
        let complete: Option<(Node, usize)> = match event {
            Event::StreamEnd => break,
            Event::StreamStart | Event::DocumentEnd | Event::Nothing => None,
            Event::DocumentStart => {
                documents += 1;
                if documents > 1 {
                    return Err(err(pos, "more than one YAML document".into())
                        .with_hint("a file holds one document; remove the extra `---`"));
                }
                None
            }
            Event::Alias(id) => {
                let node = anchors.get(&id).cloned().ok_or_else(|| err(pos, "unknown YAML alias".into()))?;
                nodes = nodes.saturating_add(count_nodes(&node));
                Some((node, 0))
            }
            Event::Scalar(text, style, anchor, tag) => {
                let value = match (style, tag.as_ref()) {
                    (_, Some(t)) if t.suffix == "str" => Value::Str(text),
                    (TScalarStyle::Plain, _) => resolve_plain(text),
                    _ => Value::Str(text),
                };
                nodes += 1;
                Some((Node { value, pos }, anchor))
            }
            Event::SequenceStart(anchor, _) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(err(pos, "nesting is too deep".into()));
                }
                stack.push(Frame::Seq(Vec::new(), pos, anchor));
                None
            }
            Event::MappingStart(anchor, _) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(err(pos, "nesting is too deep".into()));
                }
                stack.push(Frame::Map(OpenMap::default(), pos, anchor));
                None
            }
            Event::SequenceEnd => match stack.pop() {
                Some(Frame::Seq(items, p, anchor)) => {
                    nodes += 1;
                    Some((Node { value: Value::Seq(items), pos: p }, anchor))
                }
                _ => return Err(err(pos, "unbalanced YAML sequence".into())),
            },
            Event::MappingEnd => match stack.pop() {
                Some(Frame::Map(OpenMap { entries, pending: None, .. }, p, anchor)) => {
                    nodes += 1;
                    Some((Node { value: Value::Map(entries), pos: p }, anchor))
                }
                _ => return Err(err(pos, "unbalanced YAML mapping".into())),
            },
        };
        if nodes > MAX_NODES {
            return Err(err(pos, format!("the document has more than {MAX_NODES} values"))
                .with_hint("aliases count once per use: write them out plainly, or split the document"));
        }
        let Some((node, anchor)) = complete else { continue };
        if anchor > 0 {
            anchors.insert(anchor, node.clone());
        }
        match stack.last_mut() {
            None => root = Some(node),
            Some(Frame::Seq(items, _, _)) => items.push(node),
            Some(Frame::Map(map, _, _)) => match map.pending.take() {
                None => map.pending = Some(node),
                Some(key) => {
                    let name = match key.value {
                        Value::Str(s) => s,
                        Value::Int(i) => i.to_string(),
                        Value::Bool(b) => b.to_string(),
                        Value::Float(f) => f.to_string(),
                        Value::Null => "null".to_owned(),
                        Value::Seq(_) | Value::Map(_) => {
                            return Err(err(key.pos, "a map key must be a plain value".into()));
                        }
                    };
                    if map.repeats(&name) {
                        return Err(err(key.pos, format!("duplicate key `{name}`"))
                            .with_hint("each key may appear once in a map; merge the two entries"));
                    }
                    map.entries.push((Key { name, pos: key.pos }, node));
                }
            },
        }
    }
    Ok(root.unwrap_or(Node { value: Value::Null, pos: Pos::new(1, 1) }))
}

fn count_nodes(node: &Node) -> usize {
    match &node.value {
        Value::Seq(items) => 1 + items.iter().map(count_nodes).sum::<usize>(),
        Value::Map(entries) => 1 + entries.iter().map(|(_, v)| count_nodes(v)).sum::<usize>(),
        _ => 1,
    }
}

/// YAML 1.2 core schema resolution of a plain scalar; a string keeps its allocation.
fn resolve_plain(s: String) -> Value {
    resolve_non_str(&s).unwrap_or(Value::Str(s))
}

/// The null, boolean or number a plain scalar resolves to; `None` for a string.
fn resolve_non_str(s: &str) -> Option<Value> {
    Some(match s {
        "" | "~" | "null" | "Null" | "NULL" => Value::Null,
        "true" | "True" | "TRUE" => Value::Bool(true),
        "false" | "False" | "FALSE" => Value::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => Value::Float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => Value::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => Value::Float(f64::NAN),
        _ => return resolve_number(s),
    })
}

/// The number a plain scalar resolves to, if it is one.
fn resolve_number(s: &str) -> Option<Value> {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(i) = s.parse::<i64>() {
            return Some(Value::Int(i));
        }
        if let Ok(f) = s.parse::<f64>() {
            return Some(Value::Float(f));
        }
    }
    if let Some(hex) = s.strip_prefix("0x")
        && let Ok(i) = i64::from_str_radix(hex, 16)
    {
        return Some(Value::Int(i));
    }
    if let Some(oct) = s.strip_prefix("0o")
        && let Ok(i) = i64::from_str_radix(oct, 8)
    {
        return Some(Value::Int(i));
    }
    if is_yaml_float(s)
        && let Ok(f) = s.parse::<f64>()
    {
        return Some(Value::Float(f));
    }
    None
}

/// `[-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?`
fn is_yaml_float(s: &str) -> bool {
    let b = s.strip_prefix(['-', '+']).unwrap_or(s).as_bytes();
    let mut i = 0;
    let int_digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
    i += int_digits;
    let mut frac_digits = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        frac_digits = b.get(i..).unwrap_or_default().iter().take_while(|c| c.is_ascii_digit()).count();
        i += frac_digits;
    }
    if int_digits == 0 && frac_digits == 0 {
        return false;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'-' | b'+')) {
            i += 1;
        }
        let exp = b.get(i..).unwrap_or_default().iter().take_while(|c| c.is_ascii_digit()).count();
        if exp == 0 {
            return false;
        }
        i += exp;
    }
    i == b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_scalars_resolve_to_the_core_schema() {
        assert_eq!(resolve_plain("200".to_owned()), Value::Int(200));
        assert_eq!(resolve_plain("-3".to_owned()), Value::Int(-3));
        assert_eq!(resolve_plain("1.5".to_owned()), Value::Float(1.5));
        assert_eq!(resolve_plain("1e3".to_owned()), Value::Float(1000.0));
        assert_eq!(resolve_plain("true".to_owned()), Value::Bool(true));
        assert_eq!(resolve_plain("~".to_owned()), Value::Null);
        assert_eq!(resolve_plain("yes".to_owned()), Value::Str("yes".into()));
        assert_eq!(resolve_plain("1.2.3".to_owned()), Value::Str("1.2.3".into()));
        assert_eq!(resolve_plain("10.0.0.0/8".to_owned()), Value::Str("10.0.0.0/8".into()));
    }

    #[test]
    fn yaml_nodes_carry_positions() {
        let doc = parse("a:\n  b: [1, \"x\"]\n", Format::Yaml).unwrap();
        let b = doc.get("a").unwrap().get("b").unwrap();
        assert_eq!(b.pos, Pos::new(2, 6));
        let Value::Seq(items) = &b.value else { panic!() };
        assert_eq!(items[1].value, Value::Str("x".into()));
        assert_eq!(items[1].pos, Pos::new(2, 10));
    }

    #[test]
    fn duplicate_keys_and_syntax_errors_have_positions() {
        let e = parse("a: 1\na: 2\n", Format::Yaml).unwrap_err();
        assert_eq!((e.pos.line, e.pos.col), (2, 1));
        let e = parse("a: [1\n", Format::Yaml).unwrap_err();
        assert!(e.pos.line >= 1, "{e}");
        let e = parse("{\"a\": }", Format::Json).unwrap_err();
        assert_eq!(e.pos.line, 1);
    }

    #[test]
    fn a_repeated_key_in_a_large_map_is_found_where_it_repeats() {
        for repeated in [0, 40, 299] {
            let mut text: String = (0..300).map(|i| format!("k{i}: {i}\n")).collect();
            text.push_str(&format!("k{repeated}: again\n"));
            let e = parse(&text, Format::Yaml).unwrap_err();
            assert_eq!((e.pos.line, e.pos.col), (301, 1), "{e}");
            assert!(e.message.contains(&format!("`k{repeated}`")), "{e}");
        }
        let distinct: String = (0..300).map(|i| format!("k{i}: {i}\n")).collect();
        let Value::Map(entries) = parse(&distinct, Format::Yaml).unwrap().value else { panic!() };
        assert_eq!(entries.len(), 300);
    }

    #[test]
    fn json_the_yaml_parser_refuses_still_loads() {
        let text =
            r#"{"a": {"\ud83d\ude00": [1, 2.5, 18446744073709551615, "x", null, true]}, "b": {"c": -3}}"#;
        assert!(parse_yaml(text).is_err(), "the fallback is not exercised");
        let doc = parse(text, Format::Json).unwrap();
        let Value::Seq(items) = &doc.get("a").unwrap().get("\u{1f600}").unwrap().value else { panic!() };
        let values: Vec<&Value> = items.iter().map(|n| &n.value).collect();
        assert_eq!(
            values,
            [
                &Value::Int(1),
                &Value::Float(2.5),
                &Value::Float(18_446_744_073_709_551_615.0),
                &Value::Str("x".into()),
                &Value::Null,
                &Value::Bool(true)
            ]
        );
        assert_eq!(doc.get("b").unwrap().get("c").unwrap().value, Value::Int(-3));
    }

    #[test]
    fn a_repeated_json_key_is_refused_whichever_reader_reads_it() {
        // Read by the YAML parser, and (with a surrogate pair escape) by the JSON fallback.
        for name in ["a", "\\ud83d\\ude00"] {
            let text = format!("{{\"{name}\": 1, \"effect\": \"deny\",\n \"effect\": \"allow\"}}");
            let e = parse(&text, Format::Json).unwrap_err();
            assert!(e.message.contains("duplicate key `effect`"), "{name}: {e}");
            assert_eq!(e.pos.line, 2, "{name}: {e}");
        }
    }

    #[test]
    fn json_and_toml_parse() {
        let j = parse("{\"a\": {\"b\": 2}}", Format::Json).unwrap();
        assert_eq!(j.get("a").unwrap().get("b").unwrap().value, Value::Int(2));
        let t = parse("[a]\nb = \"x\"\nc = 0x10\nd = 1_000.5\n", Format::Toml).unwrap();
        let a = t.get("a").unwrap();
        assert_eq!(a.get("b").unwrap().value, Value::Str("x".into()));
        assert_eq!(a.get("b").unwrap().pos, Pos::new(2, 5));
        assert_eq!(a.get("c").unwrap().value, Value::Int(16));
        assert_eq!(a.get("d").unwrap().value, Value::Float(1000.5));
    }
}
