//! Request templates: `{{ call.duration_secs }}`-style placeholders in
//! URLs, query strings, headers and JSON bodies, so a site describes its
//! CRM's requests in YAML.
//!
//! A placeholder is a dotted name into the operation's context (`phone`,
//! `call.caller`, `ticket.subject`, `key`…) followed by filters:
//! `| map:NAME` (a value map), `| default:TEXT`, `| upper`, `| lower`,
//! `| date` / `| datetime` / `| sql_datetime` (unix ms → text). A string that
//! is a single placeholder becomes the value itself, so numbers stay
//! numbers in JSON bodies; anything else is text interpolation. Templates
//! are parsed and checked when the configuration loads.

use std::fmt;

use serde_json::Value;

use crate::datetime;
use crate::mapping::{map_value, ValueMaps};

/// A filter applied to a placeholder's value.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Filter {
    Map(String),
    Default(String),
    Upper,
    Lower,
    Date,
    DateTime,
    SqlDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Placeholder {
    path: Vec<String>,
    filters: Vec<Filter>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Var(Placeholder),
}

/// A parsed template string.
#[derive(Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

impl fmt::Debug for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Template({:?})", self.source)
    }
}

/// How rendered values are escaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    /// Inside a URL path: percent-encoded.
    PathSegment,
    /// As is (query values, headers and bodies are encoded by their
    /// serialiser).
    None,
}

impl Template {
    /// Parse `text`, failing on unclosed braces or unknown filters.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                parts.push(Part::Text(rest[..start].to_string()));
            }
            let after = &rest[start + 2..];
            let end = after
                .find("}}")
                .ok_or_else(|| format!("template `{text}`: `{{{{` without `}}}}`"))?;
            parts.push(Part::Var(
                parse_placeholder(&after[..end]).map_err(|e| format!("template `{text}`: {e}"))?,
            ));
            rest = &after[end + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(Template {
            source: text.to_string(),
            parts,
        })
    }

    /// Check that every placeholder names a root in `roots` and every map
    /// exists.
    pub fn check(&self, roots: &[&str], maps: &ValueMaps) -> Result<(), String> {
        for part in &self.parts {
            if let Part::Var(p) = part {
                let root = p.path.first().map(String::as_str).unwrap_or("");
                if !roots.contains(&root) {
                    return Err(format!(
                        "template `{}`: unknown value `{}` (available here: {})",
                        self.source,
                        p.path.join("."),
                        roots.join(", ")
                    ));
                }
                for f in &p.filters {
                    if let Filter::Map(name) = f {
                        if !maps.contains_key(name) {
                            return Err(format!(
                                "template `{}`: no value map named `{name}`",
                                self.source
                            ));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Render to a JSON value: a lone placeholder keeps its type.
    pub fn render_value(&self, ctx: &Value, maps: &ValueMaps) -> Value {
        if let [Part::Var(p)] = self.parts.as_slice() {
            return eval(p, ctx, maps);
        }
        Value::String(self.render(ctx, maps, Escape::None))
    }

    /// Render to text.
    pub fn render(&self, ctx: &Value, maps: &ValueMaps, escape: Escape) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Var(p) => {
                    let text = value_text(&eval(p, ctx, maps));
                    match escape {
                        Escape::None => out.push_str(&text),
                        Escape::PathSegment => out.push_str(
                            &percent_encoding::utf8_percent_encode(&text, PATH_SEGMENT).to_string(),
                        ),
                    }
                }
            }
        }
        out
    }
}

/// Everything but unreserved characters (RFC 3986) is encoded in a path
/// segment, so a `/` or `?` in a value cannot change the URL's shape.
const PATH_SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn parse_placeholder(inner: &str) -> Result<Placeholder, String> {
    let mut pieces = inner.split('|');
    let name = pieces.next().unwrap_or("").trim();
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '.')
    {
        return Err(format!("`{name}` is not a value name"));
    }
    let mut filters = Vec::new();
    for f in pieces {
        let f = f.trim();
        let (fname, arg) = match f.split_once(':') {
            Some((n, a)) => (n.trim(), Some(a.trim().to_string())),
            None => (f, None),
        };
        filters.push(match (fname, arg) {
            ("map", Some(a)) if !a.is_empty() => Filter::Map(a),
            ("default", Some(a)) => Filter::Default(a),
            ("upper", None) => Filter::Upper,
            ("lower", None) => Filter::Lower,
            ("date", None) => Filter::Date,
            ("datetime", None) => Filter::DateTime,
            ("sql_datetime", None) => Filter::SqlDateTime,
            _ => {
                return Err(format!(
                    "unknown filter `{f}` (filters: map:NAME, default:TEXT, upper, lower, date, datetime, sql_datetime)"
                ))
            }
        });
    }
    Ok(Placeholder {
        path: name.split('.').map(str::to_string).collect(),
        filters,
    })
}

fn eval(p: &Placeholder, ctx: &Value, maps: &ValueMaps) -> Value {
    let mut v = ctx;
    let mut found = true;
    for key in &p.path {
        match v.get(key) {
            Some(next) => v = next,
            None => {
                found = false;
                break;
            }
        }
    }
    let mut value = if found { v.clone() } else { Value::Null };
    for f in &p.filters {
        value = match f {
            Filter::Map(name) => match (&value, maps.get(name)) {
                (Value::Null, _) => Value::Null,
                (v, Some(map)) => Value::String(map_value(map, &value_text(v))),
                (v, None) => v.clone(),
            },
            Filter::Default(d) => match &value {
                Value::Null => Value::String(d.clone()),
                Value::String(s) if s.is_empty() => Value::String(d.clone()),
                _ => value,
            },
            Filter::Upper => text_or_null(&value, |s| s.to_uppercase()),
            Filter::Lower => text_or_null(&value, |s| s.to_lowercase()),
            Filter::Date => ms_or_null(&value, datetime::date),
            Filter::DateTime => ms_or_null(&value, datetime::rfc3339_ms),
            Filter::SqlDateTime => ms_or_null(&value, datetime::sql_datetime),
        };
    }
    value
}

fn text_or_null(v: &Value, f: impl Fn(&str) -> String) -> Value {
    match v {
        Value::Null => Value::Null,
        other => Value::String(f(&value_text(other))),
    }
}

fn ms_or_null(v: &Value, f: impl Fn(i64) -> String) -> Value {
    match v
        .as_i64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
    {
        // An instant with no four-digit year is a wrong field, not a date.
        Some(ms) if datetime::in_range(ms) => Value::String(f(ms)),
        _ => Value::Null,
    }
}

/// A value as text: strings bare, null empty, the rest as JSON.
pub fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A JSON body template: any JSON/YAML value whose strings are templates.
#[derive(Debug, Clone, PartialEq)]
pub enum BodyTemplate {
    Object(Vec<(String, BodyTemplate)>),
    Array(Vec<BodyTemplate>),
    Text(Template),
    Literal(Value),
}

impl BodyTemplate {
    /// Parse every string in `v` as a template.
    pub fn from_value(v: &Value) -> Result<BodyTemplate, String> {
        Ok(match v {
            Value::Object(m) => BodyTemplate::Object(
                m.iter()
                    .map(|(k, v)| Ok((k.clone(), BodyTemplate::from_value(v)?)))
                    .collect::<Result<_, String>>()?,
            ),
            Value::Array(a) => BodyTemplate::Array(
                a.iter()
                    .map(BodyTemplate::from_value)
                    .collect::<Result<_, _>>()?,
            ),
            Value::String(s) => BodyTemplate::Text(Template::parse(s)?),
            other => BodyTemplate::Literal(other.clone()),
        })
    }

    pub fn check(&self, roots: &[&str], maps: &ValueMaps) -> Result<(), String> {
        match self {
            BodyTemplate::Object(fields) => {
                fields.iter().try_for_each(|(_, t)| t.check(roots, maps))
            }
            BodyTemplate::Array(items) => items.iter().try_for_each(|t| t.check(roots, maps)),
            BodyTemplate::Text(t) => t.check(roots, maps),
            BodyTemplate::Literal(_) => Ok(()),
        }
    }

    /// Render; object fields whose value renders to null are left out, so
    /// an unknown customer id does not send `"customer": null`.
    pub fn render(&self, ctx: &Value, maps: &ValueMaps) -> Value {
        match self {
            BodyTemplate::Object(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(k, t)| (k.clone(), t.render(ctx, maps)))
                    .filter(|(_, v)| !v.is_null())
                    .collect(),
            ),
            BodyTemplate::Array(items) => {
                Value::Array(items.iter().map(|t| t.render(ctx, maps)).collect())
            }
            BodyTemplate::Text(t) => t.render_value(ctx, maps),
            BodyTemplate::Literal(v) => v.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn maps() -> ValueMaps {
        let level = [
            ("S", "high intent"),
            ("A", "medium intent"),
            ("*", "low intent"),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        [("intent_level".to_string(), level)].into_iter().collect()
    }

    #[test]
    fn renders_values_and_text() {
        let ctx = json!({"call": {"duration_secs": 61, "intent_level": "S", "customer_id": null,
                                  "started_at_ms": 1_795_253_400_250_i64}, "phone": "+86 138/x"});
        let m = maps();
        let t = |s: &str| Template::parse(s).expect(s);
        assert_eq!(
            t("{{call.duration_secs}}").render_value(&ctx, &m),
            json!(61)
        );
        assert_eq!(
            t("{{ call.duration_secs }} s").render_value(&ctx, &m),
            json!("61 s")
        );
        assert_eq!(
            t("{{call.intent_level | map:intent_level}}").render_value(&ctx, &m),
            json!("high intent")
        );
        assert_eq!(
            t("{{call.customer_id}}").render_value(&ctx, &m),
            Value::Null
        );
        assert_eq!(
            t("{{call.customer_id | default:unknown | upper}}").render_value(&ctx, &m),
            json!("UNKNOWN")
        );
        assert_eq!(
            t("{{call.started_at_ms | datetime}}").render_value(&ctx, &m),
            json!("2026-11-21T09:30:00.250Z")
        );
        assert_eq!(
            t("/customers/{{phone}}").render(&ctx, &m, Escape::PathSegment),
            "/customers/%2B86%20138%2Fx"
        );
    }

    /// Microseconds or garbage in a date field used to print a five-digit
    /// year; now the field is left out like any other missing value.
    #[test]
    fn instants_without_a_four_digit_year_render_as_null() {
        let m = maps();
        let t = |s: &str| Template::parse(s).expect("parse");
        let ctx = json!({ "us": 1_795_253_400_250_000i64, "ok": 0, "text": "1795253400250" });
        assert_eq!(t("{{us | datetime}}").render_value(&ctx, &m), Value::Null);
        assert_eq!(t("{{us | date}}").render_value(&ctx, &m), Value::Null);
        assert_eq!(
            t("{{ok | sql_datetime}}").render_value(&ctx, &m),
            json!("1970-01-01 00:00:00")
        );
        assert_eq!(
            t("{{text | date}}").render_value(&ctx, &m),
            json!("2026-11-21")
        );
    }

    #[test]
    fn parse_and_check_errors() {
        assert!(Template::parse("{{call.x").is_err());
        assert!(Template::parse("{{ call.x | shout }}").is_err());
        assert!(Template::parse("{{ }}").is_err());
        let m = maps();
        let t = Template::parse("{{ticket.subject}}").expect("parse");
        let err = t.check(&["call", "key"], &m).expect_err("wrong root");
        assert!(err.contains("unknown value `ticket.subject`"), "{err}");
        let t = Template::parse("{{call.x | map:nope}}").expect("parse");
        assert!(t
            .check(&["call"], &m)
            .expect_err("map")
            .contains("no value map named `nope`"));
    }

    #[test]
    fn bodies_drop_nulls() {
        let body = BodyTemplate::from_value(&json!({
            "subject": "Call {{call.id}}", "customer": "{{call.customer_id}}",
            "tags": ["voxbridge", "{{call.intent_level | map:intent_level}}"], "public": false
        }))
        .expect("body");
        let out = body.render(&json!({"call": {"id": "c1", "intent_level": "B"}}), &maps());
        assert_eq!(
            out,
            json!({"subject": "Call c1", "tags": ["voxbridge", "low intent"], "public": false})
        );
    }
}
