//! JSON maps deserialized with every object key at most once. Parsers disagree on which of two
//! equal keys wins (serde_json keeps the last), so a repeated key could show a gateway or a
//! log reader one value and the policy another; a request that repeats a key is refused.

use std::fmt;

use serde::{
    Deserializer,
    de::{self, MapAccess, SeqAccess, Visitor},
};
use serde_json::{Map, Number, Value};

/// Parses JSON text like `serde_json::from_str::<Value>`, but refuses a repeated key in any
/// object, naming it.
pub fn from_str(text: &str) -> serde_json::Result<Value> {
    serde_json::from_str::<StrictValue>(text).map(|v| v.0)
}

/// `#[serde(deserialize_with = "...")]` for a `Map<String, Value>` field.
pub(crate) fn map<'de, D: Deserializer<'de>>(d: D) -> Result<Map<String, Value>, D::Error> {
    d.deserialize_map(MapVisitor)
}

struct MapVisitor;

impl<'de> Visitor<'de> for MapVisitor {
    type Value = Map<String, Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            if map.contains_key(&key) {
                return Err(de::Error::custom(format_args!("duplicate key `{key}`")));
            }
            let StrictValue(value) = access.next_value()?;
            map.insert(key, value);
        }
        Ok(map)
    }
}

/// A JSON value whose maps (at any depth) have no repeated key.
struct StrictValue(Value);

impl<'de> serde::Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor).map(Self)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E>(self, i: i64) -> Result<Value, E> {
        Ok(Value::Number(i.into()))
    }
    fn visit_u64<E>(self, u: u64) -> Result<Value, E> {
        Ok(Value::Number(u.into()))
    }
    fn visit_f64<E: de::Error>(self, f: f64) -> Result<Value, E> {
        Number::from_f64(f).map(Value::Number).ok_or_else(|| E::custom("a number must be finite"))
    }
    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_owned()))
    }
    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(StrictValue(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, access: A) -> Result<Value, A::Error> {
        MapVisitor.visit_map(access).map(Value::Object)
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    struct Holder {
        #[serde(deserialize_with = "super::map")]
        m: serde_json::Map<String, serde_json::Value>,
    }

    #[test]
    fn values_round_trip_and_repeated_keys_are_refused_at_any_depth() {
        let text =
            r#"{"m": {"a": [1, -2, 2.5, "x", null, true, {"b": {}}], "c": {"d": 18446744073709551615}}}"#;
        let h: Holder = serde_json::from_str(text).unwrap();
        let expected: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(serde_json::Value::Object(h.m), expected["m"]);

        for bad in [r#"{"m": {"a": 1, "a": 2}}"#, r#"{"m": {"a": {"b": [{"c": 1, "c": 1}]}}}"#] {
            let e = serde_json::from_str::<Holder>(bad).unwrap_err().to_string();
            assert!(e.contains("duplicate key"), "{bad}: {e}");
            let e = super::from_str(bad).unwrap_err().to_string();
            assert!(e.contains("duplicate key"), "{bad}: {e}");
        }
        assert_eq!(super::from_str(text).unwrap(), expected);
    }
}
