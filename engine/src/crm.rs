//! The engine's link to the CRM bridge: who is calling (looked up while the
//! phone rings, never longer than the budget), and the post-call record,
//! handed to the durable outbox that a background worker delivers (and
//! restarts when it fails, reporting itself down meanwhile).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use voxbridge_crm::model::{
    CallLog, Customer, NewTask, NewTicket, Order, Priority, ProductQuery, Write,
};
use voxbridge_crm::outbox::{DeliveryTarget, Outbox};
use voxbridge_crm::{Bridge, CrmConfig};
use voxbridge_dialog::interp::{LookupRequest, TicketRequest};
use voxbridge_dialog::value::Value;

use crate::health::{Component, DownOnDrop};
use crate::metrics::Metrics;

/// How long a failed outbox worker waits before it starts again.
const OUTBOX_RESTART: Duration = Duration::from_secs(5);

/// A running bridge and outbox worker.
pub struct CrmLink {
    bridge: Arc<Bridge>,
    outbox: Arc<Outbox>,
    lookup_budget: Duration,
    stop: CancellationToken,
    worker: std::sync::Mutex<Option<JoinHandle<()>>>,
}

impl CrmLink {
    /// Load the CRM configuration, build the bridge, open the outbox and
    /// start delivering it.
    pub fn start(
        config_path: &Path,
        lookup_budget: Duration,
        metrics: Arc<Metrics>,
    ) -> Result<CrmLink, String> {
        let config = CrmConfig::load(config_path).map_err(|e| e.to_string())?;
        let bridge = Arc::new(config.build_bridge().map_err(|e| e.to_string())?);
        let outbox = Arc::new(config.open_outbox().map_err(|e| e.to_string())?);
        let stop = CancellationToken::new();
        let worker = {
            let outbox = outbox.clone();
            let target: Arc<dyn DeliveryTarget> = bridge.clone();
            let stop = stop.clone();
            metrics.health.set(Component::Outbox, true);
            tokio::spawn(async move {
                let _down = DownOnDrop {
                    health: &metrics.health,
                    component: Component::Outbox,
                };
                loop {
                    let result = outbox
                        .run(
                            target.clone(),
                            stop.clone().cancelled_owned(),
                            Duration::from_secs(5),
                        )
                        .await;
                    if stop.is_cancelled() {
                        if let Err(e) = result {
                            warn!(error = %e, "CRM outbox worker stopped");
                        }
                        return;
                    }
                    // The records stay in the outbox; a worker that failed
                    // (its database locked or unreadable) tries again.
                    metrics.health.set(Component::Outbox, false);
                    match result {
                        Err(e) => {
                            warn!(error = %e, retry_secs = OUTBOX_RESTART.as_secs(), "CRM outbox worker stopped; not ready")
                        }
                        Ok(()) => warn!(
                            retry_secs = OUTBOX_RESTART.as_secs(),
                            "CRM outbox worker ended; not ready"
                        ),
                    }
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(OUTBOX_RESTART) => {}
                    }
                    info!("CRM outbox worker restarting");
                    metrics.health.set(Component::Outbox, true);
                }
            })
        };
        info!(config = %config_path.display(), "CRM bridge ready");
        Ok(CrmLink {
            bridge,
            outbox,
            lookup_budget,
            stop,
            worker: std::sync::Mutex::new(Some(worker)),
        })
    }

    /// The customer behind a From URI, within the lookup budget counted
    /// from `since` (the INVITE). Failures and timeouts are logged and read
    /// as "unknown caller": the call goes on.
    pub async fn lookup(&self, from_uri: &str, since: Instant) -> Option<Customer> {
        let number = caller_number(from_uri)?;
        let left = self.lookup_budget.saturating_sub(since.elapsed());
        match tokio::time::timeout(left, self.bridge.lookup_caller(&number)).await {
            Ok(Ok(found)) => found,
            Ok(Err(e)) => {
                warn!(error = %e, "caller lookup failed");
                None
            }
            Err(_) => {
                warn!(
                    budget_ms = self.lookup_budget.as_millis() as u64,
                    "caller lookup over budget"
                );
                None
            }
        }
    }

    /// A customer's orders for the agent screen pop, within the lookup
    /// budget; a failure or timeout is logged and reads as none.
    pub async fn orders(&self, customer_id: &str) -> Vec<Order> {
        match tokio::time::timeout(self.lookup_budget, self.bridge.orders(customer_id)).await {
            Ok(Ok(orders)) => orders,
            Ok(Err(e)) => {
                warn!(error = %e, "orders for the screen pop unavailable");
                Vec::new()
            }
            Err(_) => {
                warn!(
                    budget_ms = self.lookup_budget.as_millis() as u64,
                    "orders for the screen pop over budget"
                );
                Vec::new()
            }
        }
    }

    /// CRM lookups that failed since the start (the console's overview).
    pub fn lookup_failures(&self) -> u64 {
        self.bridge.stats().lookups_failed
    }

    /// The durable outbox (campaign results go through it too).
    pub fn outbox(&self) -> Arc<Outbox> {
        self.outbox.clone()
    }

    /// The customers a campaign's `list: crm:` query names.
    pub async fn list_customers(
        &self,
        query: &voxbridge_crm::model::CustomerQuery,
    ) -> Result<Vec<Customer>, String> {
        self.bridge
            .list_customers(query)
            .await
            .map_err(|e| e.to_string())
    }

    /// The customer with this CRM id (a campaign contact's), within the
    /// same budget as [`lookup`](Self::lookup); failures read as unknown.
    pub async fn lookup_id(&self, id: &str, since: Instant) -> Option<Customer> {
        let left = self.lookup_budget.saturating_sub(since.elapsed());
        match tokio::time::timeout(left, self.bridge.customer(id)).await {
            Ok(Ok(found)) => found,
            Ok(Err(e)) => {
                warn!(error = %e, "customer lookup by id failed");
                None
            }
            Err(_) => {
                warn!(
                    budget_ms = self.lookup_budget.as_millis() as u64,
                    "customer lookup by id over budget"
                );
                None
            }
        }
    }

    /// Queue the post-call record durably; returns once it is committed.
    pub async fn record(&self, log: CallLog) {
        self.record_with_tasks(log, Vec::new()).await
    }

    /// Queue the post-call record and the follow-up tasks the script's
    /// triggers asked for in one transaction (both or neither, each once:
    /// their keys come from the call id); returns once it is committed.
    pub async fn record_with_tasks(&self, log: CallLog, tasks: Vec<NewTask>) {
        let call_id = log.call_id.clone();
        let n = tasks.len();
        let mut writes = vec![Write::CallLog(log)];
        writes.extend(tasks.into_iter().map(Write::Task));
        match self.outbox.enqueue_all(writes).await {
            Ok(_) => info!(call_id = %call_id, tasks = n, "call log queued for the CRM"),
            Err(e) => warn!(call_id = %call_id, error = %e, "call log NOT queued"),
        }
    }

    /// Answer a dialog script's `lookup` (names in `KNOWN_LOOKUPS`) within
    /// its timeout. `Null` means "not found"; `Err` a failure to report.
    pub async fn script_lookup(&self, request: &LookupRequest) -> Result<Value, String> {
        let arg = |name: &str| {
            request
                .args
                .get(name)
                .cloned()
                .ok_or_else(|| format!("lookup {} needs `{name}`", request.name))
        };
        let work = async {
            let json = match request.name.as_str() {
                "customer" => to_json(
                    &self
                        .bridge
                        .lookup_caller(&arg("phone")?)
                        .await
                        .map_err(|e| e.to_string())?,
                ),
                "orders" => to_json(
                    &self
                        .bridge
                        .orders(&arg("customer")?)
                        .await
                        .map_err(|e| e.to_string())?,
                ),
                "latest_order" => {
                    let mut orders = self
                        .bridge
                        .orders(&arg("customer")?)
                        .await
                        .map_err(|e| e.to_string())?;
                    // ISO 8601 dates sort as text; undated orders go first.
                    orders.sort_by(|a, b| a.placed_at.cmp(&b.placed_at));
                    to_json(&orders.pop())
                }
                "order_status" => to_json(
                    &self
                        .bridge
                        .order_status(&arg("order_id")?)
                        .await
                        .map_err(|e| e.to_string())?,
                ),
                "stock" => {
                    let product = arg("product")?;
                    let levels = self
                        .bridge
                        .stock(&ProductQuery::Name(product))
                        .await
                        .map_err(|e| e.to_string())?;
                    // The best match, with its own fields, answers "do you have…".
                    to_json(&levels.into_iter().next())
                }
                other => return Err(format!("unknown lookup `{other}`")),
            };
            Ok::<Value, String>(Value::from(json))
        };
        match tokio::time::timeout(request.timeout, work).await {
            Ok(result) => result,
            Err(_) => Err(format!("lookup {} timed out", request.name)),
        }
    }

    /// Open a script's ticket now; the id the ticket system gave it.
    /// `customer` is the caller's CRM profile: its id goes along only when
    /// the ticket system is the system that id belongs to (an id from
    /// Tryton means someone else in RT); its e-mail always.
    pub async fn ticket(
        &self,
        request: &TicketRequest,
        call_id: &str,
        customer: Option<&voxbridge_crm::model::Customer>,
    ) -> Result<String, String> {
        let mut ticket = NewTicket {
            queue: Some(request.queue.clone()),
            priority: match request.priority {
                voxbridge_dialog::format::Priority::Low => Priority::Low,
                voxbridge_dialog::format::Priority::Normal => Priority::Normal,
                voxbridge_dialog::format::Priority::High => Priority::High,
                voxbridge_dialog::format::Priority::Urgent => Priority::Urgent,
            },
            subject: request.subject.clone(),
            body: request.body.clone(),
            customer_id: request.customer_id.clone(),
            phone: caller_number(&request.caller).or_else(|| Some(request.caller.clone())),
            email: customer.and_then(|c| c.email.clone()),
            call_id: Some(call_id.to_string()),
        };
        let ticket_system = self
            .bridge
            .system_for(&voxbridge_crm::model::Write::Ticket(ticket.clone()))
            .map(str::to_string);
        if let Some(c) = customer {
            if ticket_system.as_deref() != Some(c.system.as_str()) {
                ticket.customer_id = None;
            }
        }
        // One ticket per call and subject: a retried request finds the first.
        let key = format!("ticket:{call_id}:{}", request.subject);
        match tokio::time::timeout(
            Duration::from_secs(5),
            self.bridge.create_ticket(&ticket, &key),
        )
        .await
        {
            Ok(Ok(created)) => Ok(created.id),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("ticket system did not answer in 5 s".to_string()),
        }
    }

    /// Stop the worker after it has had a moment to deliver what is due.
    pub async fn stop(&self) {
        self.stop.cancel();
        let worker = self.worker.lock().ok().and_then(|mut w| w.take());
        if let Some(worker) = worker {
            let _ = tokio::time::timeout(Duration::from_secs(8), worker).await;
        }
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> serde_json::Value {
    script_view(serde_json::to_value(v).unwrap_or(serde_json::Value::Null))
}

/// A CRM record as a script sees it: a system's extra `fields` (an order's
/// `eta`, a customer's `city`) next to the standard ones, so scripts write
/// `order.eta` whatever the system; and a customer `name` also split into
/// `first_name` and `last_name` when the system gave only the whole name.
pub fn script_view(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        J::Array(items) => J::Array(items.into_iter().map(script_view).collect()),
        J::Object(mut map) => {
            if let Some(J::Object(fields)) = map.remove("fields") {
                for (k, v) in fields {
                    // The standard field wins over a same-named extra.
                    map.entry(k).or_insert(v);
                }
            }
            let name = map.get("name").and_then(J::as_str).map(str::to_string);
            // Romanised Chinese names ("Wang Fang") put the family name first.
            let family_first = map
                .get("language")
                .and_then(J::as_str)
                .is_some_and(|l| l.to_ascii_lowercase().starts_with("zh"))
                || map.get("country").and_then(J::as_str) == Some("CN");
            if let Some((first, last)) = name.as_deref().and_then(|n| split_name(n, family_first)) {
                map.entry("first_name").or_insert(J::String(first));
                map.entry("last_name").or_insert(J::String(last));
            }
            J::Object(map.into_iter().map(|(k, v)| (k, script_view(v))).collect())
        }
        other => other,
    }
}

/// `Alice Johnson` → (Alice, Johnson); `王芳` → (芳, 王): a Chinese name
/// written in characters starts with the family name, and so does a
/// romanised one when `family_first`.
fn split_name(name: &str, family_first: bool) -> Option<(String, String)> {
    let name = name.trim();
    let words: Vec<&str> = name.split_whitespace().collect();
    match words.as_slice() {
        [] => None,
        [one] => {
            let chars: Vec<char> = one.chars().collect();
            let cjk = chars.iter().all(|c| ('\u{4e00}'..='\u{9fff}').contains(c));
            if cjk && chars.len() >= 2 {
                Some((chars[1..].iter().collect(), chars[0].to_string()))
            } else {
                Some((one.to_string(), String::new()))
            }
        }
        [family, rest @ ..] if family_first => Some((rest.join(" "), family.to_string())),
        [first, .., last] => Some((first.to_string(), last.to_string())),
    }
}

/// The number in a From URI's user part: `sip:+8613800138000@pbx` →
/// `+8613800138000`; `tel:` URIs too. None for non-numeric users.
pub fn caller_number(uri: &str) -> Option<String> {
    let uri = uri.trim().trim_start_matches('<').trim_end_matches('>');
    let rest = uri
        .strip_prefix("sip:")
        .or_else(|| uri.strip_prefix("sips:"))
        .or_else(|| uri.strip_prefix("tel:"))?;
    let user = rest.split(['@', ';', '?']).next()?;
    let digits = user.chars().filter(|c| c.is_ascii_digit()).count();
    let plausible = digits >= 3
        && user
            .chars()
            .all(|c| c.is_ascii_digit() || "+-(). ".contains(c));
    plausible.then(|| user.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_from_uris() {
        assert_eq!(
            caller_number("sip:+8613800138000@pbx").as_deref(),
            Some("+8613800138000")
        );
        assert_eq!(
            caller_number("<sip:013800138000@10.0.0.1:5060>").as_deref(),
            Some("013800138000")
        );
        assert_eq!(
            caller_number("tel:+1-555-123-4567").as_deref(),
            Some("+1-555-123-4567")
        );
        assert_eq!(caller_number("sip:alice@pbx"), None);
        assert_eq!(caller_number("sip:12@pbx"), None);
        assert_eq!(caller_number("mailto:x"), None);
    }
}

#[cfg(test)]
mod script_view_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn extra_fields_and_name_parts_are_visible() {
        let v = script_view(json!({
            "id": "C5", "name": "Alice Johnson",
            "fields": {"city": "Springfield", "id": "ignored"}
        }));
        assert_eq!(v["city"], "Springfield");
        assert_eq!(v["id"], "C5");
        assert_eq!(v["first_name"], "Alice");
        assert_eq!(v["last_name"], "Johnson");
        let zh = script_view(json!({"name": "王芳"}));
        assert_eq!(
            (zh["first_name"].as_str(), zh["last_name"].as_str()),
            (Some("芳"), Some("王"))
        );
        let cn = script_view(json!({"name": "Wang Fang", "language": "zh-CN"}));
        assert_eq!(
            (cn["first_name"].as_str(), cn["last_name"].as_str()),
            (Some("Fang"), Some("Wang"))
        );
        let given = script_view(json!({"name": "Li Wei", "first_name": "Wei"}));
        assert_eq!(given["first_name"], "Wei");
        let orders = script_view(json!([{"id": "SO-1", "fields": {"eta": "2026-12-01"}}]));
        assert_eq!(orders[0]["eta"], "2026-12-01");
    }
}
