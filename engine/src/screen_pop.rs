//! The agent screen pop: what an agent's console page
//! (`/console/agent?queue=…`, docs/console.md) is sent when the bot hands
//! a caller to that extension or queue — who is calling, their open
//! orders, the transcript so far, the intent and the reason. The call core
//! says what it knows as it sends the REFER ([`Handover`]); the shell adds
//! what the live-call registry holds and publishes a [`ScreenPop`]. Pure
//! data and rules here: no I/O.

use serde::Serialize;
use voxbridge_crm::model::{Customer, Order};

use crate::live_calls::Line;
use crate::pii::mask_uri;

/// Orders shown per pop: an agent reads a few, not a history.
const MAX_ORDERS: usize = 10;

/// What the call core knows of a transfer as it sends the REFER.
#[derive(Debug, Clone, PartialEq)]
pub struct Handover {
    /// The target as the script named it: a `transfer.targets` key
    /// (`agents`) or the URI it gave.
    pub target: String,
    /// The resolved target URI, without the context headers.
    pub target_uri: String,
    /// The caller's CRM profile, when the lookup found one.
    pub customer: Option<Customer>,
    /// The transfer context's `intent`, else the last intent recognised.
    pub intent: Option<String>,
    /// The transfer context's `reason`.
    pub reason: Option<String>,
}

/// The caller's profile on an agent's screen.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PopCustomer {
    pub id: String,
    /// The configured system the record came from.
    pub system: String,
    pub name: String,
    pub tier: Option<String>,
    pub language: Option<String>,
}

/// One open order, as an agent needs it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct OrderBrief {
    pub id: String,
    pub status: String,
    pub placed_at: Option<String>,
    /// Decimal text, as the CRM gave it.
    pub total: Option<String>,
    pub currency: Option<String>,
}

/// One transfer, as agents' pages and CRM widgets receive it (the JSON
/// fields are documented in docs/console.md#agent-screen-pop).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ScreenPop {
    pub call_id: String,
    /// Unix milliseconds when the bot sent the REFER.
    pub refer_ms: u64,
    pub target: String,
    pub target_uri: String,
    /// The caller's URI: whole here, masked by [`ScreenPop::for_reader`]
    /// for readers who may not see numbers.
    pub caller: String,
    pub customer: Option<PopCustomer>,
    pub open_orders: Vec<OrderBrief>,
    pub transcript: Vec<Line>,
    pub intent: Option<String>,
    pub reason: Option<String>,
}

impl ScreenPop {
    pub fn new(
        call_id: &str,
        refer_ms: u64,
        handover: Handover,
        caller: &str,
        open_orders: Vec<OrderBrief>,
        transcript: Vec<Line>,
    ) -> ScreenPop {
        ScreenPop {
            call_id: call_id.to_string(),
            refer_ms,
            target: handover.target,
            target_uri: handover.target_uri,
            caller: caller.to_string(),
            customer: handover.customer.map(|c| PopCustomer {
                id: c.id,
                system: c.system,
                name: c.name,
                tier: c.tier,
                language: c.language,
            }),
            open_orders,
            transcript,
            intent: handover.intent,
            reason: handover.reason,
        }
    }

    /// Whether the page subscribed to `queue` gets this pop (see [`is_for`]).
    pub fn is_for(&self, queue: &str) -> bool {
        is_for(queue, &self.target, &self.target_uri)
    }

    /// The pop as this reader may see it: numbers masked unless
    /// `sees_numbers`, the caller's URI without parameters for everyone.
    pub fn for_reader(&self, sees_numbers: bool) -> ScreenPop {
        let mut pop = self.clone();
        let uri = self.caller.trim().trim_start_matches('<');
        pop.caller = uri.split(['>', ';', '?']).next().unwrap_or(uri).to_string();
        if !sees_numbers {
            pop.caller = mask_uri(&pop.caller);
            pop.target_uri = mask_uri(&pop.target_uri);
            // A name (`agents`) stays; a URI the script gave may hold a number.
            if user_part(&pop.target).is_some() {
                pop.target = mask_uri(&pop.target);
            }
        }
        pop
    }
}

/// Whether a transfer to `target` (as the script named it) resolved to
/// `target_uri` is for the agent page subscribed to `queue`: the queue is
/// the script's target name (`agents`) or the user part of the URI (`7001`
/// in `sip:7001@pbx`), compared without regard to case. An empty queue
/// matches nothing.
pub fn is_for(queue: &str, target: &str, target_uri: &str) -> bool {
    let queue = queue.trim();
    if queue.is_empty() {
        return false;
    }
    queue.eq_ignore_ascii_case(target.trim())
        || user_part(target_uri).is_some_and(|u| queue.eq_ignore_ascii_case(u))
}

/// `7001` of `<sip:7001@pbx;transport=udp>`, `+15551234567` of `tel:+15551234567`.
fn user_part(uri: &str) -> Option<&str> {
    let uri = uri.trim().trim_start_matches('<');
    let (scheme, rest) = uri.split_once(':')?;
    if !["sip", "sips", "tel"]
        .iter()
        .any(|s| scheme.eq_ignore_ascii_case(s))
    {
        return None;
    }
    let user = match rest.split_once('@') {
        Some((user, _)) => user,
        None if scheme.eq_ignore_ascii_case("tel") => rest,
        None => return None,
    };
    let user = user.split([';', '?', '>', ':']).next().unwrap_or(user);
    (!user.is_empty()).then_some(user)
}

/// Statuses that need no agent's attention.
const CLOSED: [&str; 6] = [
    "done",
    "cancelled",
    "canceled",
    "delivered",
    "closed",
    "returned",
];

/// The orders still open, newest first (ISO 8601 dates sort as text;
/// undated ones last), at most [`MAX_ORDERS`].
pub fn open_orders(orders: &[Order]) -> Vec<OrderBrief> {
    let mut open: Vec<&Order> = orders
        .iter()
        .filter(|o| !CLOSED.iter().any(|c| o.status.eq_ignore_ascii_case(c)))
        .collect();
    open.sort_by(|a, b| b.placed_at.cmp(&a.placed_at));
    open.into_iter()
        .take(MAX_ORDERS)
        .map(|o| OrderBrief {
            id: o.id.clone(),
            status: o.status.clone(),
            placed_at: o.placed_at.clone(),
            total: o.total.clone(),
            currency: o.currency.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_matches_the_target_name_or_the_uris_user_part() {
        assert!(is_for("agents", "agents", "sip:queue-7@pbx"));
        assert!(is_for("AGENTS", "agents", "sip:queue-7@pbx"));
        assert!(is_for(
            "queue-7",
            "agents",
            "<sip:queue-7@pbx;transport=udp>"
        ));
        assert!(is_for("7001", "sip:7001@pbx", "sip:7001@pbx"));
        assert!(is_for("7001", "sip:7001@pbx:5060", "sip:7001@pbx:5060"));
        assert!(is_for(
            "+15551234567",
            "tel:+15551234567",
            "tel:+15551234567"
        ));
        assert!(!is_for("sales", "agents", "sip:queue-7@pbx"));
        assert!(!is_for("pbx", "agents", "sip:queue-7@pbx"));
        assert!(!is_for("", "", "sip:@pbx"));
        assert!(!is_for("x", "y", "garbage"));
    }

    #[test]
    fn open_orders_are_newest_first_without_closed_ones() {
        let order = |id: &str, status: &str, placed: Option<&str>| Order {
            id: id.into(),
            status: status.into(),
            placed_at: placed.map(Into::into),
            ..Default::default()
        };
        let orders = [
            order("A", "shipped", Some("2026-11-02")),
            order("B", "done", Some("2026-11-20")),
            order("C", "confirmed", Some("2026-11-18")),
            order("D", "Cancelled", Some("2026-11-19")),
            order("E", "draft", None),
        ];
        let ids: Vec<String> = open_orders(&orders).into_iter().map(|o| o.id).collect();
        assert_eq!(ids, ["C", "A", "E"]);
        let many: Vec<Order> = (0..30)
            .map(|i| order(&i.to_string(), "confirmed", None))
            .collect();
        assert_eq!(open_orders(&many).len(), MAX_ORDERS);
    }

    #[test]
    fn readers_without_numbers_get_them_masked() {
        let pop = ScreenPop::new(
            "c1",
            1,
            Handover {
                target: "sip:+15557654321@pbx".into(),
                target_uri: "sip:+15557654321@pbx".into(),
                customer: None,
                intent: Some("agent".into()),
                reason: None,
            },
            "<sip:+15551234567@127.0.0.1;user=phone>",
            Vec::new(),
            Vec::new(),
        );
        let viewer = pop.for_reader(false);
        assert_eq!(viewer.caller, "sip:********4567@127.0.0.1");
        assert_eq!(viewer.target_uri, "sip:********4321@pbx");
        assert_eq!(viewer.target, "sip:********4321@pbx");
        let operator = pop.for_reader(true);
        assert_eq!(operator.caller, "sip:+15551234567@127.0.0.1");
        let json = serde_json::to_value(&viewer).unwrap();
        assert!(!json.to_string().contains("1234567"), "{json}");
        assert_eq!(json["intent"], "agent");
    }
}
