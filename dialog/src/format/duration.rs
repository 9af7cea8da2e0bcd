//! Durations as people write them in scripts: `5s`, `800ms`, `1.5s`, `2m`,
//! parsed by jiff, and the one rule for a bare number (refused, but `0`).

use std::fmt;
use std::time::Duration;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, Deserialize, Deserializer, Visitor};

/// A duration written with its unit (`ms`, `s`, `m`, `h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Span(pub Duration);

/// Longest duration a script may write: longer is a typo (a timeout of
/// hours on a phone call).
const MAX: Duration = Duration::from_secs(3600);

impl Span {
    /// `5s`, `800ms`, `1.5s`, `2m`, `1m 30s` (jiff's duration syntax), or
    /// `0`. A bare number is refused: it has meant milliseconds in the CRM
    /// configuration and seconds in `voxbridge call`, so reading it either
    /// way here would surprise someone.
    pub fn parse(s: &str) -> Result<Span, String> {
        let s = s.trim();
        if s == "0" {
            return Ok(Span(Duration::ZERO));
        }
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            return Err(format!(
                "`{s}` needs a unit: write e.g. `{s}s`, `{s}ms` or `{s}m`"
            ));
        }
        let not_a_duration = || format!("`{s}` is not a duration (e.g. `5s`, `800ms`)");
        let signed: jiff::SignedDuration = s.parse().map_err(|_| not_a_duration())?;
        // Negative durations ("-1s", "1s ago") do not convert.
        let d = Duration::try_from(signed).map_err(|_| not_a_duration())?;
        if d > MAX {
            return Err(format!("`{s}` is longer than an hour"));
        }
        Ok(Span(d))
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
                if n == 0 {
                    return Ok(Span(Duration::ZERO));
                }
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
            "pattern": "^(0|([0-9]+(\\.[0-9]+)? ?(ms|s|m|h) ?)+)$",
            "description": "A duration with its unit: `5s`, `800ms`, `1.5s`, `2m`, `1m 30s`; or 0.",
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
        assert_eq!(Span::parse("1m 30s").unwrap().0, Duration::from_secs(90));
        assert_eq!(Span::parse("1h").unwrap().0, Duration::from_secs(3600));
        assert_eq!(Span::parse("0").unwrap().0, Duration::ZERO);
        for bad in ["1s ago", "5S", "1..2s", "", "s", "5 days"] {
            assert!(Span::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn zero_needs_no_unit() {
        assert_eq!(
            serde_saphyr::from_str::<Span>("0").unwrap().0,
            Duration::ZERO
        );
    }

    #[test]
    fn bare_number_is_rejected_with_a_hint() {
        let e = serde_saphyr::from_str::<Span>("5").unwrap_err().to_string();
        assert!(e.contains("`5s`"), "{e}");
    }
}
