//! Where a state goes next: a state name, or a list of conditional branches
//! tried in order.

use std::fmt;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::value::SeqAccessDeserializer;
use serde::de::{self, Deserialize, Deserializer, SeqAccess, Visitor};

/// The reserved target that says the current question again and keeps
/// listening (for a "repeat" intent or a `*` key).
pub const REPEAT: &str = "repeat";

/// `next: menu`, or
///
/// ```yaml
/// next:
///   - if: customer.tier == "gold"
///     goto: agent
///   - goto: menu
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    State(String),
    Branches(Vec<Branch>),
}

impl Target {
    /// Every state this target can lead to.
    pub fn states(&self) -> Vec<&str> {
        match self {
            Target::State(s) => vec![s.as_str()],
            Target::Branches(b) => b.iter().map(|b| b.goto.as_str()).collect(),
        }
    }
}

/// One branch: go to `goto` when `if` holds (or always, without `if`).
#[derive(Debug, Clone, PartialEq, serde::Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Branch {
    /// A condition, e.g. `stock.available > 0`; leave out on the last branch.
    #[serde(default, rename = "if")]
    pub when: Option<String>,
    /// The state to go to.
    pub goto: String,
}

impl<'de> Deserialize<'de> for Target {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Target;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a state name or a list of `{if, goto}` branches")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Target, E> {
                Ok(Target::State(s.to_string()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Target, A::Error> {
                Vec::<Branch>::deserialize(SeqAccessDeserializer::new(seq)).map(Target::Branches)
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for Target {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Target".into()
    }
    fn json_schema(g: &mut SchemaGenerator) -> Schema {
        let branch = g.subschema_for::<Branch>();
        json_schema!({
            "description": "A state name (or `repeat`), or branches tried in order; the last one should have no `if`.",
            "anyOf": [
                { "type": "string" },
                { "type": "array", "items": branch, "minItems": 1 }
            ]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_name_or_branches() {
        let t: Target = serde_saphyr::from_str("menu").unwrap();
        assert_eq!(t, Target::State("menu".into()));
        let t: Target = serde_saphyr::from_str(
            "- if: customer.tier == \"gold\"\n  goto: agent\n- goto: menu\n",
        )
        .unwrap();
        assert_eq!(t.states(), vec!["agent", "menu"]);
    }

    #[test]
    fn branch_rejects_unknown_keys() {
        assert!(serde_saphyr::from_str::<Target>("- when: x\n  goto: y\n").is_err());
    }
}
