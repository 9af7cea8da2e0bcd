//! What each call has said and heard so far, for the admin endpoint
//! `GET /calls/{call_id}` (what `voxbridge call` prints live) and the
//! console's live pages, which hear of every change on [`LiveCalls::subscribe`].
//! Ended calls stay readable for a while: the last [`KEEP_ENDED`] of them.
//! Transfers go out as screen pops to the agent pages subscribed on
//! [`LiveCalls::subscribe_transfers`].

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::sync::broadcast;

use crate::screen_pop::{Handover, OrderBrief, ScreenPop};

/// Ended calls kept for reading after their end.
pub const KEEP_ENDED: usize = 200;

/// Lines kept per call: a runaway script must not grow memory without end.
const MAX_LINES: usize = 500;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Line {
    /// `bot`, `caller` or `system`.
    pub speaker: &'static str,
    pub text: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CallView {
    pub call_id: String,
    /// `active` or `ended`.
    pub state: &'static str,
    pub transcript: Vec<Line>,
    /// `inbound` or `outbound`.
    pub direction: &'static str,
    /// The other side's URI (the caller inbound, the callee outbound);
    /// unmasked: whoever shows it masks it for its reader.
    #[serde(skip)]
    pub party: String,
    /// The CRM customer's name (or id), once the lookup found one.
    pub customer: Option<String>,
    /// Unix milliseconds of the start and, once over, the end.
    pub started_ms: u64,
    pub ended_ms: Option<u64>,
    /// The customer's open orders, read after the caller lookup for the
    /// agent screen pop (console on only).
    #[serde(skip)]
    pub open_orders: Vec<OrderBrief>,
}

impl CallView {
    /// The last thing the caller said or keyed.
    pub fn last_heard(&self) -> Option<&str> {
        self.transcript
            .iter()
            .rev()
            .find(|l| l.speaker == "caller")
            .map(|l| l.text.as_str())
    }
}

#[derive(Debug, Default)]
struct Inner {
    calls: HashMap<String, CallView>,
    ended: VecDeque<String>,
}

/// Changes waiting for a slow subscriber; past this it hears `Lagged` and
/// reads the whole table again.
const CHANGES_KEPT: usize = 256;

/// The registry; one per process.
#[derive(Debug)]
pub struct LiveCalls {
    inner: Mutex<Inner>,
    /// The id of each call that changed.
    changes: broadcast::Sender<String>,
    /// Each transfer, for the agents' pages.
    transfers: broadcast::Sender<Arc<ScreenPop>>,
}

/// Transfers waiting for a slow agent page; past this it hears `Lagged`.
const TRANSFERS_KEPT: usize = 64;

impl Default for LiveCalls {
    fn default() -> Self {
        LiveCalls {
            inner: Mutex::default(),
            changes: broadcast::channel(CHANGES_KEPT).0,
            transfers: broadcast::channel(TRANSFERS_KEPT).0,
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl LiveCalls {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Tell the subscribers; nobody listening is fine.
    fn changed(&self, call_id: &str) {
        let _ = self.changes.send(call_id.to_string());
    }

    /// The id of every call that starts, changes or ends from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<String> {
        self.changes.subscribe()
    }

    pub fn start(&self, call_id: &str) {
        self.lock().calls.insert(
            call_id.to_string(),
            CallView {
                call_id: call_id.to_string(),
                state: "active",
                transcript: Vec::new(),
                direction: "inbound",
                party: String::new(),
                customer: None,
                started_ms: now_ms(),
                ended_ms: None,
                open_orders: Vec::new(),
            },
        );
        self.changed(call_id);
    }

    /// Who the call is with, and which way it goes.
    pub fn describe(&self, call_id: &str, outbound: bool, party: &str) {
        if let Some(c) = self.lock().calls.get_mut(call_id) {
            c.direction = if outbound { "outbound" } else { "inbound" };
            c.party = party.to_string();
        }
        self.changed(call_id);
    }

    /// The CRM found the caller.
    pub fn customer(&self, call_id: &str, name: &str) {
        if let Some(c) = self.lock().calls.get_mut(call_id) {
            c.customer = Some(name.to_string());
        }
        self.changed(call_id);
    }

    /// The customer's open orders, for a screen pop later in the call.
    pub fn orders(&self, call_id: &str, orders: Vec<OrderBrief>) {
        if let Some(c) = self.lock().calls.get_mut(call_id) {
            c.open_orders = orders;
        }
    }

    /// The bot sent a REFER: tell the agent pages, with what the call has
    /// heard and found so far. Returns the pop sent.
    pub fn transferred(&self, call_id: &str, handover: Handover) -> Arc<ScreenPop> {
        let (caller, orders, transcript) = match self.lock().calls.get(call_id) {
            Some(c) => (c.party.clone(), c.open_orders.clone(), c.transcript.clone()),
            None => Default::default(),
        };
        let pop = Arc::new(ScreenPop::new(
            call_id,
            now_ms(),
            handover,
            &caller,
            orders,
            transcript,
        ));
        // No agent page open is fine.
        let _ = self.transfers.send(pop.clone());
        pop
    }

    /// Every transfer from now on.
    pub fn subscribe_transfers(&self) -> broadcast::Receiver<Arc<ScreenPop>> {
        self.transfers.subscribe()
    }

    pub fn line(&self, call_id: &str, speaker: &'static str, text: impl Into<String>) {
        if let Some(c) = self.lock().calls.get_mut(call_id) {
            if c.transcript.len() < MAX_LINES {
                c.transcript.push(Line {
                    speaker,
                    text: text.into(),
                });
            }
        }
        self.changed(call_id);
    }

    pub fn end(&self, call_id: &str) {
        {
            let mut inner = self.lock();
            let Some(c) = inner.calls.get_mut(call_id) else {
                return;
            };
            c.state = "ended";
            c.ended_ms = Some(now_ms());
            inner.ended.push_back(call_id.to_string());
            while inner.ended.len() > KEEP_ENDED {
                if let Some(old) = inner.ended.pop_front() {
                    inner.calls.remove(&old);
                }
            }
        }
        self.changed(call_id);
    }

    pub fn get(&self, call_id: &str) -> Option<CallView> {
        self.lock().calls.get(call_id).cloned()
    }

    /// Every call in progress, oldest first.
    pub fn in_progress(&self) -> Vec<CallView> {
        let mut calls: Vec<CallView> = self
            .lock()
            .calls
            .values()
            .filter(|c| c.state == "active")
            .cloned()
            .collect();
        calls.sort_by(|a, b| (a.started_ms, &a.call_id).cmp(&(b.started_ms, &b.call_id)));
        calls
    }

    pub fn active(&self) -> usize {
        self.lock()
            .calls
            .values()
            .filter(|c| c.state == "active")
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_follow_the_call_and_old_calls_go() {
        let live = LiveCalls::default();
        live.start("a");
        live.line("a", "bot", "Hello");
        live.line("a", "caller", "[keys] 1001#");
        live.line("nobody", "bot", "ignored");
        let v = live.get("a").unwrap();
        assert_eq!(v.state, "active");
        assert_eq!(v.transcript.len(), 2);
        assert_eq!(v.transcript[1].text, "[keys] 1001#");
        live.end("a");
        assert_eq!(live.get("a").unwrap().state, "ended");
        for i in 0..KEEP_ENDED {
            let id = format!("c{i}");
            live.start(&id);
            live.end(&id);
        }
        assert!(live.get("a").is_none(), "the oldest ended call is dropped");
        assert!(live.in_progress().is_empty());
        assert!(live.get("c1").is_some());
        assert_eq!(live.active(), 0);
    }

    #[test]
    fn subscribers_hear_of_each_change() {
        let live = LiveCalls::default();
        let mut rx = live.subscribe();
        live.start("a");
        live.describe("a", false, "sip:+15551234567@pbx");
        live.customer("a", "Ada Lovelace");
        live.line("a", "caller", "where is my order");
        live.line("a", "bot", "It shipped.");
        let v = live.get("a").unwrap();
        assert_eq!(v.direction, "inbound");
        assert_eq!(v.customer.as_deref(), Some("Ada Lovelace"));
        assert_eq!(v.last_heard(), Some("where is my order"));
        assert_eq!(live.in_progress().len(), 1);
        live.end("a");
        assert!(live.get("a").unwrap().ended_ms.is_some());
        let mut heard = 0;
        while let Ok(id) = rx.try_recv() {
            assert_eq!(id, "a");
            heard += 1;
        }
        assert_eq!(heard, 6);
    }

    #[test]
    fn a_transfer_pops_with_what_the_call_holds() {
        let live = LiveCalls::default();
        let mut rx = live.subscribe_transfers();
        live.start("a");
        live.describe("a", false, "sip:+15551234567@pbx");
        live.line("a", "caller", "[keys] 0#");
        live.orders(
            "a",
            vec![OrderBrief {
                id: "SO-1".into(),
                status: "shipped".into(),
                placed_at: None,
                total: None,
                currency: None,
            }],
        );
        let handover = Handover {
            target: "agents".into(),
            target_uri: "sip:agents@pbx".into(),
            customer: None,
            intent: Some("agent".into()),
            reason: Some("asked".into()),
        };
        live.transferred("a", handover);
        let pop = rx.try_recv().unwrap();
        assert_eq!(pop.call_id, "a");
        assert_eq!(pop.caller, "sip:+15551234567@pbx");
        assert_eq!(pop.transcript.len(), 1);
        assert_eq!(pop.open_orders[0].id, "SO-1");
        assert!(pop.is_for("agents") && !pop.is_for("sales"));
    }
}
