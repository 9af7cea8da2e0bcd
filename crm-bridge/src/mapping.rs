//! Field mapping between a system's JSON and voxbridge's types: JSON paths
//! to pick values out of replies, and value maps to translate codes
//! (`G` → `gold`, intent level `S` → `high intent`).
//!
//! Paths are a small, predictable subset of JSONPath: `$`, `.name`,
//! `['odd name']`, `[0]`, `[-1]` (last). Everything is parsed when the
//! configuration loads, so a typo is a start-up error, not a silent empty
//! field in the middle of a call.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(i64),
}

/// A parsed JSON path.
#[derive(Clone, PartialEq, Eq)]
pub struct JsonPath {
    text: String,
    steps: Vec<Step>,
}

impl fmt::Debug for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JsonPath({})", self.text)
    }
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl JsonPath {
    /// Parse `$.a.b[0]['c d']`. A leading `$` is optional (`a.b` works).
    pub fn parse(text: &str) -> Result<JsonPath, String> {
        let t = text.trim();
        let mut rest = t.strip_prefix('$').unwrap_or(t);
        let mut steps = Vec::new();
        let bad = |why: &str| format!("JSON path `{text}`: {why}");
        // A bare first segment without a dot: `data.items`.
        if !rest.is_empty() && !rest.starts_with('.') && !rest.starts_with('[') {
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            steps.push(Step::Key(rest[..end].to_string()));
            rest = &rest[end..];
        }
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix('.') {
                let end = r.find(['.', '[']).unwrap_or(r.len());
                if end == 0 {
                    return Err(bad("empty name after `.`"));
                }
                steps.push(Step::Key(r[..end].to_string()));
                rest = &r[end..];
            } else if let Some(r) = rest.strip_prefix('[') {
                let close = r.find(']').ok_or_else(|| bad("`[` without `]`"))?;
                let inner = r[..close].trim();
                if let Some(q) = inner
                    .strip_prefix('\'')
                    .and_then(|s| s.strip_suffix('\''))
                    .or_else(|| inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')))
                {
                    steps.push(Step::Key(q.to_string()));
                } else {
                    let i: i64 = inner
                        .parse()
                        .map_err(|_| bad("brackets hold an index or a quoted name"))?;
                    steps.push(Step::Index(i));
                }
                rest = &r[close + 1..];
            } else {
                return Err(bad("expected `.` or `[`"));
            }
        }
        Ok(JsonPath {
            text: t.to_string(),
            steps,
        })
    }

    /// The value at this path, if present and not null.
    pub fn get<'a>(&self, mut v: &'a Value) -> Option<&'a Value> {
        for step in &self.steps {
            v = match (step, v) {
                (Step::Key(k), Value::Object(m)) => m.get(k)?,
                (Step::Index(i), Value::Array(a)) => {
                    let idx = if *i < 0 {
                        a.len()
                            .checked_sub(usize::try_from(i.unsigned_abs()).ok()?)?
                    } else {
                        usize::try_from(*i).ok()?
                    };
                    a.get(idx)?
                }
                _ => return None,
            };
        }
        (!v.is_null()).then_some(v)
    }
}

impl<'de> Deserialize<'de> for JsonPath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        JsonPath::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A value map: codes to words, with `"*"` as the fallback. Without a
/// fallback, unknown codes pass through unchanged.
pub type ValueMap = BTreeMap<String, String>;

/// Named value maps of one system.
pub type ValueMaps = BTreeMap<String, ValueMap>;

/// Apply a value map to a code.
pub fn map_value(map: &ValueMap, code: &str) -> String {
    map.get(code)
        .or_else(|| {
            map.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(code))
                .map(|(_, v)| v)
        })
        .or_else(|| map.get("*"))
        .cloned()
        .unwrap_or_else(|| code.to_string())
}

/// Where one field comes from: a path, optionally through a value map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldSpec {
    pub path: JsonPath,
    pub map: Option<String>,
}

impl<'de> Deserialize<'de> for FieldSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Path(String),
            Full { path: String, map: Option<String> },
        }
        let (path, map) = match Raw::deserialize(d)? {
            Raw::Path(p) => (p, None),
            Raw::Full { path, map } => (path, map),
        };
        Ok(FieldSpec {
            path: JsonPath::parse(&path).map_err(serde::de::Error::custom)?,
            map,
        })
    }
}

impl FieldSpec {
    /// The field as text (numbers and booleans rendered, arrays and
    /// objects as JSON), mapped if the spec names a map.
    pub fn text(&self, v: &Value, maps: &ValueMaps) -> Option<String> {
        let raw = match self.path.get(v)? {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        Some(match self.map.as_ref().and_then(|m| maps.get(m)) {
            Some(map) => map_value(map, &raw),
            None => raw,
        })
    }

    /// The field as a number (a JSON number or numeric text).
    pub fn number(&self, v: &Value) -> Option<f64> {
        match self.path.get(v)? {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths() {
        let v = json!({"data": [{"id": 7, "attrs": {"full name": "Li Wei", "tags": ["a", "b"]}}], "n": null});
        let get = |p: &str| JsonPath::parse(p).expect(p).get(&v).cloned();
        assert_eq!(get("$.data[0].id"), Some(json!(7)));
        assert_eq!(get("data[0].attrs['full name']"), Some(json!("Li Wei")));
        assert_eq!(get("$.data[0].attrs.tags[-1]"), Some(json!("b")));
        assert_eq!(get("$.data[3]"), None);
        assert_eq!(get("$.data[0].attrs.tags[-3]"), None);
        assert_eq!(get("$.n"), None);
        assert_eq!(get("$.data.id"), None);
        assert_eq!(get("$"), Some(v.clone()));
        assert!(JsonPath::parse("$.a[").is_err());
        assert!(JsonPath::parse("$..a").is_err());
        assert!(JsonPath::parse("$.a[x]").is_err());
    }

    #[test]
    fn value_maps() {
        let map: ValueMap = [("G", "gold"), ("S", "silver"), ("*", "standard")]
            .into_iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert_eq!(map_value(&map, "G"), "gold");
        assert_eq!(map_value(&map, "s"), "silver");
        assert_eq!(map_value(&map, "X"), "standard");
        let open: ValueMap = [("A".to_string(), "alpha".to_string())]
            .into_iter()
            .collect();
        assert_eq!(map_value(&open, "B"), "B");

        let maps: ValueMaps = [("tier".to_string(), map)].into_iter().collect();
        let spec: FieldSpec =
            serde_json::from_value(json!({"path": "$.level", "map": "tier"})).expect("spec");
        assert_eq!(
            spec.text(&json!({"level": "G"}), &maps).as_deref(),
            Some("gold")
        );
        let spec: FieldSpec = serde_json::from_value(json!("$.qty")).expect("spec");
        assert_eq!(spec.number(&json!({"qty": "12.5"})), Some(12.5));
        assert_eq!(spec.text(&json!({"qty": 3}), &maps).as_deref(), Some("3"));
    }
}
