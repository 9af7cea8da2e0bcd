//! The actions a state can take besides asking: CRM/ERP lookups, tickets,
//! transfers and hanging up.

use indexmap::IndexMap;
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

use super::duration::Span;
use super::prompt::Say;

/// The lookups the engine knows how to run, with the arguments each needs.
/// The engine maps each name onto its CRM connector.
pub const KNOWN_LOOKUPS: &[(&str, &[&str], &str)] = &[
    (
        "customer",
        &["phone"],
        "the customer with this phone number",
    ),
    ("orders", &["customer"], "a customer's orders, newest first"),
    (
        "latest_order",
        &["customer"],
        "a customer's most recent order",
    ),
    ("order_status", &["order_id"], "one order by its number"),
    ("stock", &["product"], "stock level of a product"),
];

/// ```yaml
/// lookup:
///   name: order_status
///   args: { order_id: "{{ order_id }}" }
///   into: order
///   timeout: 3s
///   filler: { en: "One moment please.", zh: "请稍等。" }
/// on: { not_found: order_unknown, error: sorry }
/// next: tell_status
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Lookup {
    /// What to look up: customer, orders, latest_order, order_status, stock.
    pub name: String,
    /// Arguments (templates).
    #[serde(default)]
    pub args: IndexMap<String, String>,
    /// The variable that holds the result (e.g. `order` → `{{ order.status }}`).
    pub into: String,
    /// Give up (outcome `error`) after this long. Default 3s.
    #[serde(default)]
    pub timeout: Option<Span>,
    /// Said while waiting.
    #[serde(default)]
    pub filler: Option<Say>,
}

/// ```yaml
/// ticket:
///   queue: complaints
///   priority: { by: customer.tier, map: { gold: urgent, silver: high }, default: normal }
///   subject: "Complaint from {{ customer.name }}"
///   body: "{{ complaint }}"
///   into: ticket_id
/// on: { error: sorry }
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Ticket {
    /// The queue (team) the ticket goes to.
    pub queue: String,
    /// A fixed priority, or one chosen by a value (e.g. the customer's tier).
    #[serde(default)]
    pub priority: Option<PrioritySpec>,
    /// Subject line (template).
    pub subject: String,
    /// Body (template).
    #[serde(default)]
    pub body: Option<String>,
    /// Variable that receives the ticket's id.
    #[serde(default)]
    pub into: Option<String>,
}

/// Ticket priorities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    Low,
    Normal,
    High,
    Urgent,
}

impl Priority {
    pub fn name(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Normal => "normal",
            Priority::High => "high",
            Priority::Urgent => "urgent",
        }
    }
}

/// `priority: high`, or `priority: { by: customer.tier, map: {gold: urgent}, default: normal }`.
#[derive(Debug, Clone, PartialEq)]
pub enum PrioritySpec {
    Fixed(Priority),
    By(PriorityBy),
}

/// A priority chosen by a value.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PriorityBy {
    /// The expression whose value picks the priority, e.g. `customer.tier`.
    pub by: String,
    /// Value → priority.
    pub map: IndexMap<String, Priority>,
    /// Priority for any other value. Default `normal`.
    #[serde(default)]
    pub default: Option<Priority>,
}

impl<'de> Deserialize<'de> for PrioritySpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = PrioritySpec;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("low, normal, high, urgent, or {by, map, default}")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<PrioritySpec, E> {
                Priority::deserialize(de::value::StrDeserializer::<E>::new(s))
                    .map(PrioritySpec::Fixed)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<PrioritySpec, A::Error> {
                PriorityBy::deserialize(MapAccessDeserializer::new(map)).map(PrioritySpec::By)
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for PrioritySpec {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "PrioritySpec".into()
    }
    fn json_schema(g: &mut SchemaGenerator) -> Schema {
        let fixed = g.subschema_for::<Priority>();
        let by = g.subschema_for::<PriorityBy>();
        json_schema!({ "anyOf": [fixed, by] })
    }
}

/// ```yaml
/// transfer:
///   to: agents
///   context: { reason: "{{ last.intent }}", customer: "{{ customer.id }}" }
/// on: { failed: agents_busy }
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Transfer {
    /// Queue name or SIP URI (template).
    pub to: String,
    /// Data attached to the transfer for the agent's screen (templates).
    #[serde(default)]
    pub context: IndexMap<String, String>,
}
