//! serde over a positioned document: any `Deserialize` type read from a [`Node`], every error
//! located at the key or value it is about.
//!
//! An error raised while reading a value is placed at that value; an unknown or misspelt key
//! at the key; a missing field at the map that lacks it. The innermost position wins.

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, EnumAccess, IntoDeserializer, MapAccess, SeqAccess,
    VariantAccess, Visitor,
};

use crate::{Key, Node, Pos, Value};

/// A document could not be read as the type asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
#[non_exhaustive]
pub struct DeError {
    /// Where (0:0 when the document carries no positions, as JSON read without them).
    pub pos: Pos,
    /// What is wrong, as serde says it (`unknown field `x`, expected one of ...`).
    pub message: String,
}

impl DeError {
    /// An error at `pos` (for checks made beside serde, in serde's words).
    pub fn new(pos: Pos, message: impl Into<String>) -> Self {
        Self { pos, message: message.into() }
    }

    /// Places the error at `pos` unless a deeper value already placed it.
    fn at(mut self, pos: Pos) -> Self {
        if self.pos == Pos::default() {
            self.pos = pos;
        }
        self
    }
}

impl de::Error for DeError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        Self { pos: Pos::default(), message: msg.to_string() }
    }
}

/// Reads `text` in `format` as a `T`: [`parse`](crate::parse), then [`from_node`].
pub fn from_str<T: DeserializeOwned>(text: &str, format: crate::Format) -> Result<T, DeError> {
    let node = crate::parse(text, format).map_err(|e| DeError::new(e.pos, e.message))?;
    from_node(&node)
}

/// Reads `node` as a `T`.
pub fn from_node<T: DeserializeOwned>(node: &Node) -> Result<T, DeError> {
    T::deserialize(NodeDe(node))
}

/// The string under `key` of a map node (a section's `type: ...`), and the map without it, for
/// choosing what to read the rest as.
pub fn split_tag<'n>(node: &'n Node, key: &str) -> Result<(&'n str, Pos, Node), DeError> {
    let Value::Map(entries) = &node.value else {
        return Err(DeError {
            pos: node.pos,
            message: format!("expected a map with `{key}`, found {}", node.kind()),
        });
    };
    let (tag, pos) = match entries.iter().find(|(k, _)| k.name == key) {
        Some((_, v)) => match v.as_str() {
            Some(tag) => (tag, v.pos),
            None => return Err(DeError { pos: v.pos, message: format!("`{key}` must be a string") }),
        },
        None => return Err(DeError { pos: node.pos, message: format!("missing field `{key}`") }),
    };
    let rest = entries.iter().filter(|(k, _)| k.name != key).cloned().collect();
    Ok((tag, pos, Node { value: Value::Map(rest), pos: node.pos }))
}

struct NodeDe<'n>(&'n Node);

impl<'de> de::Deserializer<'de> for NodeDe<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let node = self.0;
        match &node.value {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Int(i) => visitor.visit_i64(*i),
            Value::Float(f) => visitor.visit_f64(*f),
            Value::Str(s) => visitor.visit_str(s),
            Value::Seq(items) => visitor.visit_seq(Items(items.iter())),
            Value::Map(entries) => visitor.visit_map(Entries { entries: entries.iter(), value: None }),
        }
        .map_err(|e| e.at(node.pos))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.0.value {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let node = self.0;
        match &node.value {
            Value::Str(name) => visitor.visit_enum(Variant { name, name_pos: node.pos, content: None }),
            Value::Map(entries) => match entries.as_slice() {
                [(key, content)] => {
                    visitor.visit_enum(Variant { name: &key.name, name_pos: key.pos, content: Some(content) })
                }
                _ => Err(de::Error::custom("expected a name, or a map with one key naming the variant")),
            },
            _ => Err(de::Error::invalid_type(unexpected(node), &"a name")),
        }
        .map_err(|e| e.at(node.pos))
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf unit
        unit_struct seq tuple tuple_struct map struct identifier
    }
}

fn unexpected(node: &Node) -> de::Unexpected<'_> {
    match &node.value {
        Value::Null => de::Unexpected::Unit,
        Value::Bool(b) => de::Unexpected::Bool(*b),
        Value::Int(i) => de::Unexpected::Signed(*i),
        Value::Float(f) => de::Unexpected::Float(*f),
        Value::Str(s) => de::Unexpected::Str(s),
        Value::Seq(_) => de::Unexpected::Seq,
        Value::Map(_) => de::Unexpected::Map,
    }
}

struct Items<'n>(std::slice::Iter<'n, Node>);

impl<'de> SeqAccess<'de> for Items<'_> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, DeError> {
        self.0.next().map(|node| seed.deserialize(NodeDe(node))).transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

struct Entries<'n> {
    entries: std::slice::Iter<'n, (Key, Node)>,
    value: Option<&'n Node>,
}

impl<'de> MapAccess<'de> for Entries<'_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, DeError> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        self.value = Some(value);
        let name: de::value::StrDeserializer<'_, DeError> = key.name.as_str().into_deserializer();
        seed.deserialize(name).map(Some).map_err(|e| e.at(key.pos))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        match self.value.take() {
            Some(node) => seed.deserialize(NodeDe(node)),
            None => Err(de::Error::custom("a map value was read before its key")),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// An enum variant: its name (a string, or the one key of a map) and what follows it.
struct Variant<'n> {
    name: &'n str,
    name_pos: Pos,
    content: Option<&'n Node>,
}

impl<'de, 'n> EnumAccess<'de> for Variant<'n> {
    type Error = DeError;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self), DeError> {
        let name: de::value::StrDeserializer<'_, DeError> = self.name.into_deserializer();
        let value = seed.deserialize(name).map_err(|e| e.at(self.name_pos))?;
        Ok((value, self))
    }
}

impl<'de> VariantAccess<'de> for Variant<'_> {
    type Error = DeError;

    fn unit_variant(self) -> Result<(), DeError> {
        match self.content {
            None | Some(Node { value: Value::Null, .. }) => Ok(()),
            Some(node) => Err(de::Error::invalid_type(unexpected(node), &"nothing after the name")),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, DeError> {
        match self.content {
            Some(node) => seed.deserialize(NodeDe(node)),
            None => Err(de::Error::custom(format!("`{}` needs a value", self.name))),
        }
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, DeError> {
        match self.content {
            Some(node) => de::Deserializer::deserialize_seq(NodeDe(node), visitor),
            None => Err(de::Error::custom(format!("`{}` needs a list", self.name))),
        }
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match self.content {
            Some(node) => de::Deserializer::deserialize_map(NodeDe(node), visitor),
            None => Err(de::Error::custom(format!("`{}` needs a map", self.name))),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, dead_code)]

    use std::collections::BTreeMap;

    use serde::Deserialize;

    use super::*;
    use crate::{Format, parse};

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Agent {
        id: String,
        #[serde(default)]
        roles: Vec<String>,
        weight: Option<f64>,
        mode: Mode,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "snake_case")]
    enum Mode {
        Strict,
        Relaxed,
        Custom { level: u8 },
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Crew {
        agents: Vec<Agent>,
        limits: BTreeMap<String, u32>,
    }

    fn read<T: DeserializeOwned>(text: &str) -> Result<T, DeError> {
        from_node(&parse(text, Format::Yaml).unwrap())
    }

    const CREW: &str = "agents:\n  - id: a\n    mode: strict\n  - id: b\n    roles: [x]\n    weight: 2\n    mode: {custom: {level: 3}}\nlimits: {calls: 5}\n";

    #[test]
    fn a_document_reads_as_its_type() {
        let crew: Crew = read(CREW).unwrap();
        assert_eq!(crew.agents[1].weight, Some(2.0));
        assert_eq!(crew.agents[1].mode, Mode::Custom { level: 3 });
        assert_eq!(crew.limits["calls"], 5);
    }

    #[test]
    fn every_error_names_the_key_or_value_it_is_about() {
        let at = |text: &str| {
            let e = read::<Crew>(text).unwrap_err();
            (e.pos.line, e.pos.col, e.message)
        };
        // An unknown key in the second agent: at the key itself.
        let (line, col, message) = at(&CREW.replace("    weight: 2", "    wieght: 2"));
        assert_eq!((line, col), (6, 5));
        assert!(message.starts_with("unknown field `wieght`"), "{message}");
        // A value of the wrong type: at the value.
        let (line, col, message) = at(&CREW.replace("weight: 2", "weight: heavy"));
        assert_eq!((line, col), (6, 13));
        assert!(message.contains("expected f64"), "{message}");
        // An unknown variant: at the name.
        let (line, col, _) = at(&CREW.replace("mode: strict", "mode: lax"));
        assert_eq!((line, col), (3, 11));
        // A missing field: at the map that lacks it.
        let (line, col, message) = at(&CREW.replace("  - id: b\n", "  - ident: b\n"));
        assert_eq!((line, col), (4, 5));
        assert!(message.contains("unknown field `ident`"), "{message}");
        let (line, _, message) = at("agents:\n  - mode: strict\nlimits: {}\n");
        assert_eq!((line, message.as_str()), (2, "missing field `id`"));
        // An out-of-range number: at the number.
        let (line, col, _) = at(&CREW.replace("calls: 5", "calls: -5"));
        assert_eq!((line, col), (8, 17));
    }

    #[test]
    fn toml_positions_work_the_same() {
        let text = "[[agents]]\nid = \"a\"\nmode = \"strict\"\nsped = 3\n\n[limits]\n";
        let e = from_node::<Crew>(&parse(text, Format::Toml).unwrap()).unwrap_err();
        assert_eq!((e.pos.line, e.pos.col), (4, 1));
        assert!(e.message.starts_with("unknown field `sped`"));
    }

    #[test]
    fn a_tag_chooses_what_the_rest_is_read_as() {
        let node = parse("type: agent\nid: a\nmode: relaxed\n", Format::Yaml).unwrap();
        let (tag, pos, rest) = split_tag(&node, "type").unwrap();
        assert_eq!((tag, pos.line, pos.col), ("agent", 1, 7));
        assert_eq!(from_node::<Agent>(&rest).unwrap().mode, Mode::Relaxed);
        let e = split_tag(&parse("id: a\n", Format::Yaml).unwrap(), "type").unwrap_err();
        assert_eq!(e.message, "missing field `type`");
        let e = split_tag(&parse("type: [1]\n", Format::Yaml).unwrap(), "type").unwrap_err();
        assert_eq!((e.pos.line, e.pos.col), (1, 7));
    }
}
