//! The values request templates can name, per operation: the caller's
//! number in its forms, the call record with derived fields (duration,
//! transcript text, top intent), the ticket or task, and the idempotency
//! key.

use serde_json::{json, Map, Value};

use crate::model::{CallLog, NewTask, NewTicket, ProductQuery};
use crate::phone::E164;

/// Roots available to each operation's templates.
pub fn roots(op: crate::connector::Operation) -> &'static [&'static str] {
    use crate::connector::Operation::*;
    match op {
        FindCustomer => &[
            "phone",
            "phone_digits",
            "phone_national",
            "phone_country_code",
            "now",
        ],
        GetCustomer => &["id", "now"],
        ListOrders => &["customer_id", "now"],
        OrderStatus => &["order_id", "now"],
        Stock => &["query", "sku", "name", "now"],
        CreateTicket => &["ticket", "key", "now"],
        LogCall => &["call", "key", "now"],
        CreateTask => &["task", "key", "now"],
        ListCustomers => &["query", "since_ms", "now"],
    }
}

fn base() -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("now".into(), json!(crate::datetime::now_ms()));
    m
}

/// `phone` is E.164 (`+8613800138000`); `phone_digits`, `phone_national`
/// and `phone_country_code` give the other forms CRMs store.
pub fn phone(phone: &E164) -> Value {
    let country = phone.country();
    let mut m = base();
    m.insert("phone".into(), json!(phone.as_str()));
    m.insert("phone_digits".into(), json!(phone.digits()));
    m.insert(
        "phone_national".into(),
        json!(country
            .and_then(|c| phone.national(c))
            .unwrap_or(phone.digits())),
    );
    m.insert(
        "phone_country_code".into(),
        json!(country.map(|c| c.calling_code()).unwrap_or("")),
    );
    Value::Object(m)
}

pub fn single(name: &str, value: &str) -> Value {
    let mut m = base();
    m.insert(name.into(), json!(value));
    Value::Object(m)
}

pub fn stock(query: &ProductQuery) -> Value {
    let mut m = base();
    let (text, sku, name) = match query {
        ProductQuery::Sku(s) => (s.as_str(), Value::from(s.as_str()), Value::Null),
        ProductQuery::Name(n) => (n.as_str(), Value::Null, Value::from(n.as_str())),
    };
    m.insert("query".into(), json!(text));
    m.insert("sku".into(), sku);
    m.insert("name".into(), name);
    Value::Object(m)
}

/// The call record plus derived values: `duration_secs`,
/// `transcript_text`, `intents_text`, `top_intent`, `top_confidence`.
pub fn call(call: &CallLog, key: &str) -> Value {
    let mut c = serde_json::to_value(call).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut c {
        m.insert("duration_secs".into(), json!(call.duration_secs()));
        m.insert("transcript_text".into(), json!(call.transcript_text()));
        m.insert("intents_text".into(), json!(call.intents_text()));
        let top = call
            .intents
            .iter()
            .max_by(|a, b| a.confidence.total_cmp(&b.confidence));
        m.insert("top_intent".into(), json!(top.map(|t| t.name.clone())));
        m.insert("top_confidence".into(), json!(top.map(|t| t.confidence)));
    }
    let mut m = base();
    m.insert("call".into(), c);
    m.insert("key".into(), json!(key));
    Value::Object(m)
}

pub fn ticket(t: &NewTicket, key: &str) -> Value {
    let mut m = base();
    let mut v = serde_json::to_value(t).unwrap_or(Value::Null);
    if let Value::Object(o) = &mut v {
        o.insert("priority".into(), json!(t.priority.as_str()));
    }
    m.insert("ticket".into(), v);
    m.insert("key".into(), json!(key));
    Value::Object(m)
}

pub fn task(t: &NewTask, key: &str) -> Value {
    let mut m = base();
    m.insert(
        "task".into(),
        serde_json::to_value(t).unwrap_or(Value::Null),
    );
    m.insert("key".into(), json!(key));
    Value::Object(m)
}
