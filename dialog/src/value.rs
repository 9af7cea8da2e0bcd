//! The values scripts compute with: customer profiles and lookup results
//! (from the engine), slot values (from the caller) and `set` literals (from
//! the script). JSON-shaped on purpose so CRM data converts without loss.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Serialize, Serializer};

/// A JSON-like value. Maps are ordered by key so records and test output are
/// stable.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    #[default]
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    List(Vec<Value>),
    Map(BTreeMap<String, Value>),
}

impl Value {
    /// Truthiness for conditions: null, false, 0, "" and empty collections are
    /// false, so `if: customer` reads "if we know the customer".
    pub fn truthy(&self) -> bool {
        match self {
            Value::Null => false,
            Value::Bool(b) => *b,
            Value::Number(n) => *n != 0.0 && !n.is_nan(),
            Value::String(s) => !s.is_empty(),
            Value::List(l) => !l.is_empty(),
            Value::Map(m) => !m.is_empty(),
        }
    }

    /// A field of a map, `Null` for anything else: missing data never stops a
    /// call, it reads as "not there".
    pub fn field(&self, name: &str) -> &Value {
        match self {
            Value::Map(m) => m.get(name).unwrap_or(&NULL),
            _ => &NULL,
        }
    }

    /// An element of a list (or a field when indexing a map with a string).
    pub fn item(&self, key: &Value) -> &Value {
        match (self, key) {
            (Value::List(l), Value::Number(n)) if *n >= 0.0 && n.fract() == 0.0 => {
                l.get(*n as usize).unwrap_or(&NULL)
            }
            (Value::Map(m), Value::String(k)) => m.get(k).unwrap_or(&NULL),
            _ => &NULL,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The number a value stands for: numbers, and strings that parse as
    /// numbers (a stock level that a CRM sends as `"12"` still compares).
    pub fn as_number(&self) -> Option<f64> {
        match self {
            Value::Number(n) => Some(*n),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// "Nothing found": what turns a lookup result into `not_found`.
    pub fn is_empty_result(&self) -> bool {
        match self {
            Value::Null => true,
            Value::List(l) => l.is_empty(),
            Value::Map(m) => m.is_empty(),
            _ => false,
        }
    }

    /// A map from pairs; handy for building customers and results in tests.
    pub fn map<K: Into<String>>(pairs: impl IntoIterator<Item = (K, Value)>) -> Value {
        Value::Map(pairs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }
}

static NULL: Value = Value::Null;

/// How a value is spoken or written into a template: text as is, whole
/// numbers without a decimal point, lists joined with commas, null as nothing.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => Ok(()),
            Value::Bool(b) => write!(f, "{}", if *b { "true" } else { "false" }),
            Value::Number(n) => write!(f, "{}", format_number(*n)),
            Value::String(s) => f.write_str(s),
            Value::List(l) => {
                for (i, v) in l.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{v}")?;
                }
                Ok(())
            }
            Value::Map(m) => {
                let json = serde_json::to_string(&Value::Map(m.clone())).unwrap_or_default();
                f.write_str(&json)
            }
        }
    }
}

/// `3` rather than `3.0`; other numbers in their shortest form.
pub fn format_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_string())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}
impl From<f64> for Value {
    fn from(n: f64) -> Self {
        Value::Number(n)
    }
}
impl From<i64> for Value {
    fn from(n: i64) -> Self {
        Value::Number(n as f64)
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl From<serde_json::Value> for Value {
    fn from(v: serde_json::Value) -> Self {
        match v {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(b),
            serde_json::Value::Number(n) => Value::Number(n.as_f64().unwrap_or(f64::NAN)),
            serde_json::Value::String(s) => Value::String(s),
            serde_json::Value::Array(a) => Value::List(a.into_iter().map(Value::from).collect()),
            serde_json::Value::Object(o) => {
                Value::Map(o.into_iter().map(|(k, v)| (k, Value::from(v))).collect())
            }
        }
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Number(n) if n.fract() == 0.0 && n.abs() < 1e15 => s.serialize_i64(*n as i64),
            Value::Number(n) => s.serialize_f64(*n),
            Value::String(v) => s.serialize_str(v),
            Value::List(l) => s.collect_seq(l),
            Value::Map(m) => s.collect_map(m),
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v as f64))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v as f64))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Number(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::List(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = BTreeMap::new();
        while let Some(k) = map.next_key::<String>()? {
            if out.contains_key(&k) {
                return Err(de::Error::custom(format!("duplicate key `{k}`")));
            }
            let v = map.next_value()?;
            out.insert(k, v);
        }
        Ok(Value::Map(out))
    }
}

impl schemars::JsonSchema for Value {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Value".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "Any value: text (may hold {{ }} templates), number, true/false, null, list or map."
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truthiness_reads_as_presence() {
        assert!(!Value::Null.truthy());
        assert!(!Value::from("").truthy());
        assert!(!Value::from(0.0).truthy());
        assert!(Value::from("gold").truthy());
        assert!(Value::map([("a", Value::Null)]).truthy());
    }

    #[test]
    fn display_speaks_whole_numbers_plainly() {
        assert_eq!(Value::from(3.0).to_string(), "3");
        assert_eq!(Value::from(2.5).to_string(), "2.5");
        assert_eq!(
            Value::List(vec![Value::from("a"), Value::from(1i64)]).to_string(),
            "a, 1"
        );
        assert_eq!(Value::Null.to_string(), "");
    }

    #[test]
    fn missing_fields_are_null() {
        let v = Value::map([("tier", Value::from("gold"))]);
        assert_eq!(v.field("tier"), &Value::from("gold"));
        assert!(v.field("nope").is_null());
        assert!(Value::from("x").field("y").is_null());
        assert!(Value::List(vec![]).item(&Value::from(-1.0)).is_null());
    }

    #[test]
    fn parses_from_yaml() {
        let v: Value = serde_saphyr::from_str("a: [1, x, true, ~]\nb: {c: 2.5}\n").unwrap();
        assert_eq!(
            v.field("a"),
            &Value::List(vec![
                Value::from(1i64),
                Value::from("x"),
                Value::Bool(true),
                Value::Null
            ])
        );
        assert_eq!(v.field("b").field("c"), &Value::from(2.5));
    }
}
