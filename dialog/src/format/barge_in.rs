//! `barge_in`: may the caller interrupt a prompt, and what it takes. Written
//! `true`/`false`, or as a rule in the style of jambonz's
//! `minBargeinWordCount`: `barge_in: {min_speech: 300ms}`.

use std::fmt;
use std::time::Duration;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};

use super::duration::Span;

/// Shortest and longest `min_speech` accepted: below 50 ms a click would
/// do, above 3 s the caller has said a sentence before the bot listens.
const MIN_SPEECH_RANGE: (Duration, Duration) = (Duration::from_millis(50), Duration::from_secs(3));

/// May the caller interrupt, and how much speech it takes. A rule left out
/// at one level (prompt, question, `defaults`) comes from the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BargeIn {
    /// `false`: the prompt is heard in full (legal text).
    pub allowed: bool,
    /// Voiced speech the caller must produce before the prompt stops (noise,
    /// coughs, keys and the prompt's own echo never count). `None`: the
    /// engine's `speech.barge_in_ms`.
    pub min_speech: Option<Duration>,
}

impl BargeIn {
    /// Barge-in on, with the engine's rule.
    pub const ON: BargeIn = BargeIn {
        allowed: true,
        min_speech: None,
    };

    /// This rule with what it leaves out taken from `outer` (the
    /// question's or the script's).
    pub fn or(self, outer: BargeIn) -> BargeIn {
        BargeIn {
            allowed: self.allowed,
            min_speech: self.min_speech.or(outer.min_speech),
        }
    }
}

/// The map form.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Rule {
    #[serde(default)]
    min_speech: Option<Span>,
    #[serde(default)]
    min_words: Option<u32>,
}

impl<'de> Deserialize<'de> for BargeIn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = BargeIn;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("true, false, or a rule such as `{min_speech: 300ms}`")
            }
            fn visit_bool<E: de::Error>(self, allowed: bool) -> Result<BargeIn, E> {
                Ok(BargeIn {
                    allowed,
                    min_speech: None,
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<BargeIn, A::Error> {
                let rule = Rule::deserialize(MapAccessDeserializer::new(map))?;
                if rule.min_words.is_some() {
                    // Words need a recogniser running on partial audio while
                    // the prompt plays; until then, refuse rather than
                    // silently ignore it.
                    return Err(de::Error::custom(
                        "`min_words` is not supported yet: barge-in is decided on voiced \
                         speech; write `min_speech` (e.g. `min_speech: 400ms`)",
                    ));
                }
                let min_speech = rule.min_speech.map(|s| s.0);
                if let Some(ms) = min_speech {
                    let (lo, hi) = MIN_SPEECH_RANGE;
                    if ms < lo || ms > hi {
                        return Err(de::Error::custom(format!(
                            "`min_speech: {}` must be between {} and {}",
                            Span(ms),
                            Span(lo),
                            Span(hi)
                        )));
                    }
                }
                Ok(BargeIn {
                    allowed: true,
                    min_speech,
                })
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for BargeIn {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "BargeIn".into()
    }
    fn json_schema(g: &mut SchemaGenerator) -> Schema {
        let span = g.subschema_for::<Span>();
        json_schema!({
            "description": "May the caller interrupt: `true`, `false`, or a rule \
                            `{min_speech: 300ms}` (voiced speech needed before the prompt stops; \
                            noise, coughs, keys and the prompt's echo never count).",
            "anyOf": [
                { "type": "boolean" },
                {
                    "type": "object",
                    "properties": { "min_speech": span },
                    "additionalProperties": false
                }
            ]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn true_false_or_a_rule() {
        let b: BargeIn = serde_saphyr::from_str("true").unwrap();
        assert_eq!(b, BargeIn::ON);
        let b: BargeIn = serde_saphyr::from_str("false").unwrap();
        assert!(!b.allowed);
        let b: BargeIn = serde_saphyr::from_str("{min_speech: 300ms}").unwrap();
        assert!(b.allowed);
        assert_eq!(b.min_speech, Some(Duration::from_millis(300)));
    }

    #[test]
    fn bad_rules_say_why() {
        let e = serde_saphyr::from_str::<BargeIn>("{min_speech: 300ms, min_words: 1}").unwrap_err();
        assert!(e.to_string().contains("min_words"), "{e}");
        let e = serde_saphyr::from_str::<BargeIn>("{min_speech: 10ms}").unwrap_err();
        assert!(e.to_string().contains("between 50ms and 3s"), "{e}");
        let e = serde_saphyr::from_str::<BargeIn>("{min_speech: 300}").unwrap_err();
        assert!(e.to_string().contains("needs a unit"), "{e}");
        let e = serde_saphyr::from_str::<BargeIn>("{min_sppech: 300ms}").unwrap_err();
        assert!(e.to_string().contains("min_sppech"), "{e}");
        assert!(serde_saphyr::from_str::<BargeIn>("maybe").is_err());
    }

    #[test]
    fn an_inner_rule_takes_what_it_leaves_out_from_the_outer() {
        let outer = BargeIn {
            allowed: true,
            min_speech: Some(Duration::from_millis(400)),
        };
        assert_eq!(BargeIn::ON.or(outer).min_speech, outer.min_speech);
        let own = BargeIn {
            allowed: true,
            min_speech: Some(Duration::from_millis(150)),
        };
        assert_eq!(own.or(outer), own);
        let off = BargeIn::default();
        assert!(!off.or(outer).allowed);
    }
}
