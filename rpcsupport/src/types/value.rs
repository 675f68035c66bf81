//! [`Value`], the typed payload value, and the JSON writers that serialize
//! an item and its values without building a `serde_json::Value` first.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::Item;

/// Serializes an item as [`Item::to_json`] would build it: keys in the
/// order a `serde_json` object keeps them (sorted), `id` as given.
pub(super) struct JsonItem<'a> {
    pub(super) item: &'a Item,
    pub(super) id: Option<&'a str>,
}

impl Serialize for JsonItem<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(4))?;
        map.serialize_entry("id", &self.id)?;
        map.serialize_entry("kind", &self.item.kind)?;
        map.serialize_entry("payload", &JsonMap(&self.item.payload))?;
        map.serialize_entry("url", &self.item.url)?;
        map.end()
    }
}

/// A payload map as JSON, as [`Value::to_json`] makes it.
struct JsonMap<'a>(&'a BTreeMap<String, Value>);

impl Serialize for JsonMap<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (k, JsonValue(v))))
    }
}

/// A value as JSON, as [`Value::to_json`] makes it: a float that is not
/// finite becomes `null`.
struct JsonValue<'a>(&'a Value);

impl Serialize for JsonValue<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(i) => s.serialize_i64(*i),
            Value::Float(f) if f.is_finite() => s.serialize_f64(*f),
            Value::Float(_) => s.serialize_unit(),
            Value::Str(t) => s.serialize_str(t),
            Value::List(l) => s.collect_seq(l.iter().map(JsonValue)),
            Value::Map(m) => JsonMap(m).serialize(s),
        }
    }
}

/// A typed payload value. Numbers stay numbers end to end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Value {
    /// Absent or JSON null.
    Null,
    /// true / false.
    Bool(bool),
    /// A whole number.
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// Text.
    Str(String),
    /// An ordered list.
    List(Vec<Value>),
    /// Named values.
    Map(BTreeMap<String, Value>),
}

impl Value {
    /// Whether this value nests deeper than `max` levels: a scalar is one
    /// level, a list or map one more than its deepest element. Recurses at
    /// most `max` levels.
    pub fn deeper_than(&self, max: usize) -> bool {
        if max == 0 {
            return true;
        }
        match self {
            Value::List(l) => l.iter().any(|v| v.deeper_than(max - 1)),
            Value::Map(m) => m.values().any(|v| v.deeper_than(max - 1)),
            _ => false,
        }
    }

    /// The JSON form: numbers as JSON numbers, maps as objects. A NaN or
    /// infinite float becomes null, as JSON has no such numbers.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Value::Str(s) => J::String(s.clone()),
            Value::List(l) => J::Array(l.iter().map(Value::to_json).collect()),
            Value::Map(m) => J::Object(m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect()),
        }
    }

    /// From JSON. Integers that fit `i64` stay integers; other numbers
    /// become floats.
    pub fn from_json(json: &serde_json::Value) -> Value {
        use serde_json::Value as J;
        match json {
            J::Null => Value::Null,
            J::Bool(b) => Value::Bool(*b),
            J::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            J::String(s) => Value::Str(s.clone()),
            J::Array(a) => Value::List(a.iter().map(Value::from_json).collect()),
            J::Object(o) => Value::Map(
                o.iter()
                    .map(|(k, v)| (k.clone(), Value::from_json(v)))
                    .collect(),
            ),
        }
    }

    /// The text of a string value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The number of an integer value.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Str(s) => f.write_str(s),
            other => write!(f, "{}", other.to_json()),
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(s)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}

impl From<f64> for Value {
    fn from(f: f64) -> Self {
        Value::Float(f)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}
