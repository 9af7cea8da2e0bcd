//! The plain data a call exchanges with CRMs: who is calling, their orders,
//! stock, and what the call writes back (call log, ticket, follow-up task).
//!
//! These types are the contract with the engine and are serialised into the
//! outbox, so fields are only ever added, with serde defaults.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::mask::{mask_email, mask_phone, mask_text};

/// A customer as the dialog sees it, whatever system it came from.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Customer {
    /// The id in the system it came from (`system`).
    pub id: String,
    /// Name of the configured system that holds this record.
    pub system: String,
    pub name: String,
    /// E.164 where the system's value could be normalised, else as stored.
    pub phone: Option<String>,
    pub email: Option<String>,
    /// Service tier after value mapping (`gold`, `silver`, `standard`…).
    pub tier: Option<String>,
    /// Preferred language (BCP 47 tag, e.g. `zh-CN`), if the system has one.
    pub language: Option<String>,
    /// Further mapped fields (account manager, segment, open balance…).
    pub fields: BTreeMap<String, String>,
}

/// A campaign's list query: which customers to call.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CustomerQuery {
    /// `follow_ups`: customers with a follow-up task; `all`: every
    /// customer with a phone number.
    pub name: String,
    /// Only records created at or after this (Unix milliseconds).
    pub since_ms: Option<i64>,
}

/// One order of a customer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Order {
    pub id: String,
    pub customer_id: Option<String>,
    /// Status after value mapping (`draft`, `confirmed`, `shipped`, `done`,
    /// `cancelled`…).
    pub status: String,
    /// Date or date-time as the system gave it (ISO 8601).
    pub placed_at: Option<String>,
    /// Decimal amount as text: money is never a float.
    pub total: Option<String>,
    pub currency: Option<String>,
    pub lines: Vec<OrderLine>,
    pub fields: BTreeMap<String, String>,
}

/// One line of an order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct OrderLine {
    pub sku: Option<String>,
    pub name: String,
    pub quantity: f64,
}

/// How the caller named a product.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProductQuery {
    /// An exact product code.
    Sku(String),
    /// Words the caller said ("the blue kettle"): matched fuzzily.
    Name(String),
}

/// Stock of one product.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StockLevel {
    pub sku: String,
    pub name: String,
    /// On hand now.
    pub quantity: f64,
    /// Expected after pending moves, if the system knows.
    pub forecast: Option<f64>,
    /// How well the product matched the query, 0..=1 (1 for a SKU match).
    pub score: f32,
}

/// Ticket priority, mapped to each system's scale by its connector.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Low,
    #[default]
    Normal,
    High,
    Urgent,
}

impl Priority {
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Normal => "normal",
            Priority::High => "high",
            Priority::Urgent => "urgent",
        }
    }
}

/// A ticket to open for the caller.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NewTicket {
    /// Queue, group or pipeline name in the target system.
    pub queue: Option<String>,
    pub priority: Priority,
    pub subject: String,
    pub body: String,
    /// The customer's id in the target system, when the lookup found one.
    pub customer_id: Option<String>,
    /// The caller's number (E.164).
    pub phone: Option<String>,
    pub email: Option<String>,
    pub call_id: Option<String>,
}

/// Who spoke a transcript line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Speaker {
    Caller,
    Bot,
}

/// One line of the call transcript.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Turn {
    pub speaker: Speaker,
    pub text: String,
    /// Offset from the start of the call.
    #[serde(default)]
    pub at_ms: u64,
}

/// An intent the classifier recognised during the call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntentHit {
    pub name: String,
    pub confidence: f32,
}

/// The post-call record written back to the CRM.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CallLog {
    /// The SIP Call-ID (or the engine's own call id): unique per call.
    pub call_id: String,
    /// Caller number, E.164 when it could be normalised.
    pub caller: Option<String>,
    pub callee: Option<String>,
    /// The customer's id in the target system, when known.
    pub customer_id: Option<String>,
    /// Unix milliseconds.
    pub started_at_ms: i64,
    pub answered_at_ms: Option<i64>,
    pub ended_at_ms: i64,
    pub transcript: Vec<Turn>,
    pub intents: Vec<IntentHit>,
    /// A site's lead score for the call (`S`, `A`, `B`…), mapped per system.
    pub intent_level: Option<String>,
    pub slots: BTreeMap<String, String>,
    /// How the call ended: `resolved`, `transferred`, `abandoned`, `failed`…
    pub disposition: String,
    /// Where the recording is (a URL or a file name), if recorded.
    pub recording: Option<String>,
    pub transfer_target: Option<String>,
}

impl CallLog {
    /// Call length in whole seconds (never negative).
    pub fn duration_secs(&self) -> u64 {
        u64::try_from((self.ended_at_ms - self.started_at_ms).max(0) / 1000).unwrap_or(0)
    }

    /// The transcript as plain text, one `Caller:`/`Bot:` line per turn.
    pub fn transcript_text(&self) -> String {
        let mut out = String::new();
        for turn in &self.transcript {
            let who = match turn.speaker {
                Speaker::Caller => "Caller",
                Speaker::Bot => "Bot",
            };
            out.push_str(who);
            out.push_str(": ");
            out.push_str(&turn.text);
            out.push('\n');
        }
        out
    }

    /// The slots as `name: value` lines (what the caller gave, lookups made,
    /// tickets, transfer result), sorted by name.
    pub fn slots_text(&self) -> String {
        self.slots
            .iter()
            .map(|(k, v)| format!("{k}: {v}\n"))
            .collect()
    }

    /// The intents as a comma-separated list, most confident first.
    pub fn intents_text(&self) -> String {
        let mut hits: Vec<&IntentHit> = self.intents.iter().collect();
        hits.sort_by(|a, b| b.confidence.total_cmp(&a.confidence));
        hits.iter()
            .map(|h| h.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A follow-up task for a human (call the customer back, check an order).
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NewTask {
    pub subject: String,
    pub body: String,
    /// Due date, `YYYY-MM-DD`.
    pub due: Option<String>,
    pub customer_id: Option<String>,
    pub phone: Option<String>,
    pub assignee: Option<String>,
    pub call_id: Option<String>,
}

/// What a write produced in the target system.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct WriteRef {
    pub system: String,
    /// The record's id there (ticket number, task id…).
    pub id: String,
    /// True when the record already existed (an earlier delivery got through
    /// and this one was recognised by its idempotency key).
    pub existing: bool,
}

/// A write the outbox delivers: one of the three kinds a call produces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "data", rename_all = "snake_case")]
pub enum Write {
    CallLog(CallLog),
    Ticket(NewTicket),
    Task(NewTask),
}

impl Write {
    pub fn kind(&self) -> &'static str {
        match self {
            Write::CallLog(_) => "call_log",
            Write::Ticket(_) => "ticket",
            Write::Task(_) => "task",
        }
    }

    /// The key the outbox keeps writes of one customer in order by: the
    /// customer id when known, else the phone number, else the call.
    pub fn order_key(&self) -> String {
        let (customer, phone, call) = match self {
            Write::CallLog(c) => (&c.customer_id, &c.caller, Some(&c.call_id)),
            Write::Ticket(t) => (&t.customer_id, &t.phone, t.call_id.as_ref()),
            Write::Task(t) => (&t.customer_id, &t.phone, t.call_id.as_ref()),
        };
        if let Some(c) = customer {
            format!("customer:{c}")
        } else if let Some(p) = phone {
            format!("phone:{p}")
        } else {
            format!("call:{}", call.map(String::as_str).unwrap_or(""))
        }
    }
}

// Debug output of the records that carry personal data masks it: a stray
// `{:?}` in a log line must not leak a caller's number, e-mail or words.

fn masked(v: &Option<String>, f: fn(&str) -> String) -> Option<String> {
    v.as_deref().map(f)
}

/// A profile's size for the cache's byte bound: its JSON length, which
/// counts the site's extra `fields` too.
impl crate::resilience::cache::Weight for Customer {
    fn weight(&self) -> usize {
        serde_json::to_vec(self).map_or(0, |v| v.len())
    }
}

impl fmt::Debug for Customer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Customer")
            .field("id", &self.id)
            .field("system", &self.system)
            .field("name", &self.name)
            .field("phone", &masked(&self.phone, mask_phone))
            .field("email", &masked(&self.email, mask_email))
            .field("tier", &self.tier)
            .field("language", &self.language)
            .field("fields", &self.fields.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl fmt::Debug for CallLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallLog")
            .field("call_id", &self.call_id)
            .field("caller", &masked(&self.caller, mask_phone))
            .field("callee", &masked(&self.callee, mask_phone))
            .field("customer_id", &self.customer_id)
            .field("started_at_ms", &self.started_at_ms)
            .field("ended_at_ms", &self.ended_at_ms)
            .field("turns", &self.transcript.len())
            .field("intents", &self.intents_text())
            .field("intent_level", &self.intent_level)
            .field("slots", &self.slots.keys().collect::<Vec<_>>())
            .field("disposition", &self.disposition)
            .field("recording", &self.recording.is_some())
            .field(
                "transfer_target",
                &masked(&self.transfer_target, mask_phone),
            )
            .finish()
    }
}

impl fmt::Debug for NewTicket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewTicket")
            .field("queue", &self.queue)
            .field("priority", &self.priority)
            .field("subject", &mask_text(&self.subject))
            .field("body_chars", &self.body.chars().count())
            .field("customer_id", &self.customer_id)
            .field("phone", &masked(&self.phone, mask_phone))
            .field("email", &masked(&self.email, mask_email))
            .field("call_id", &self.call_id)
            .finish()
    }
}

impl fmt::Debug for NewTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewTask")
            .field("subject", &mask_text(&self.subject))
            .field("body_chars", &self.body.chars().count())
            .field("due", &self.due)
            .field("customer_id", &self.customer_id)
            .field("phone", &masked(&self.phone, mask_phone))
            .field("assignee", &self.assignee)
            .field("call_id", &self.call_id)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_masks_personal_data() {
        let c = Customer {
            id: "C1".into(),
            name: "Li Wei".into(),
            phone: Some("+8613800138000".into()),
            email: Some("li.wei@example.cn".into()),
            ..Customer::default()
        };
        let text = format!("{c:?}");
        assert!(
            !text.contains("13800138000") && !text.contains("li.wei@"),
            "{text}"
        );
        assert!(text.contains("8000"));
        let call = CallLog {
            caller: Some("+8613800138000".into()),
            transcript: vec![Turn {
                speaker: Speaker::Caller,
                text: "my id is 110101199003074518".into(),
                at_ms: 0,
            }],
            ..CallLog::default()
        };
        let text = format!("{call:?}");
        assert!(
            !text.contains("13800138000") && !text.contains("110101199003074518"),
            "{text}"
        );
    }
}
