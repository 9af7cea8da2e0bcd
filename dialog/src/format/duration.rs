//! Durations as people write them in scripts: `5s`, `800ms`, `1.5s`, `2m`.

use std::fmt;
use std::time::Duration;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, Deserialize, Deserializer, Visitor};

/// A duration written with its unit (`ms`, `s` or `m`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Span(pub Duration);

impl Span {
    pub fn parse(s: &str) -> Result<Span, String> {
        let s = s.trim();
        let (num, unit_ms) = if let Some(n) = s.strip_suffix("ms") {
            (n, 1.0)
        } else if let Some(n) = s.strip_suffix('s') {
            (n, 1000.0)
        } else if let Some(n) = s.strip_suffix('m') {
            (n, 60_000.0)
        } else {
            return Err(format!(
                "`{s}` needs a unit: write e.g. `5s`, `800ms` or `2m`"
            ));
        };
        let n: f64 = num
            .trim()
            .parse()
            .map_err(|_| format!("`{s}` is not a duration (e.g. `5s`, `800ms`)"))?;
        if !n.is_finite() || n < 0.0 {
            return Err(format!("`{s}` is not a duration (e.g. `5s`, `800ms`)"));
        }
        let ms = n * unit_ms;
        if ms > 3_600_000.0 {
            return Err(format!("`{s}` is longer than an hour"));
        }
        Ok(Span(Duration::from_micros((ms * 1000.0).round() as u64)))
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if (ms / 1000) * 1000 == ms {
            write!(f, "{}s", ms / 1000)
        } else {
            write!(f, "{ms}ms")
        }
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Span;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration such as `5s` or `800ms`")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Span, E> {
                Span::parse(s).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Span, E> {
                Err(E::custom(format!(
                    "`{n}` needs a unit: write `{n}s` or `{n}ms`"
                )))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Span, E> {
                Err(E::custom(format!(
                    "`{n}` needs a unit: write `{n}s` or `{n}ms`"
                )))
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<Span, E> {
                Err(E::custom(format!("`{n}` needs a unit: write `{n}s`")))
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for Span {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": "^[0-9]+(\\.[0-9]+)?(ms|s|m)$",
            "description": "A duration with its unit: `5s`, `800ms`, `1.5s`, `2m`.",
            "examples": ["5s", "800ms"]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(Span::parse("5s").unwrap().0, Duration::from_secs(5));
        assert_eq!(Span::parse("800ms").unwrap().0, Duration::from_millis(800));
        assert_eq!(Span::parse("1.5s").unwrap().0, Duration::from_millis(1500));
        assert_eq!(Span::parse("2m").unwrap().0, Duration::from_secs(120));
        assert!(Span::parse("5").is_err());
        assert!(Span::parse("-1s").is_err());
        assert!(Span::parse("fast").is_err());
        assert!(Span::parse("2h").is_err());
    }

    #[test]
    fn bare_number_is_rejected_with_a_hint() {
        let e = serde_saphyr::from_str::<Span>("5").unwrap_err().to_string();
        assert!(e.contains("`5s`"), "{e}");
    }
}
