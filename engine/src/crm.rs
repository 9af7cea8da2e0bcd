//! The engine's link to the CRM bridge: who is calling (looked up while the
//! phone rings, never longer than the budget), and the post-call record,
//! handed to the durable outbox that a background worker delivers.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use voxbridge_crm::model::{CallLog, Customer, Write};
use voxbridge_crm::outbox::{DeliveryTarget, Outbox};
use voxbridge_crm::{Bridge, CrmConfig};

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
    pub fn start(config_path: &Path, lookup_budget: Duration) -> Result<CrmLink, String> {
        let config = CrmConfig::load(config_path).map_err(|e| e.to_string())?;
        let bridge = Arc::new(config.build_bridge().map_err(|e| e.to_string())?);
        let outbox = Arc::new(config.open_outbox().map_err(|e| e.to_string())?);
        let stop = CancellationToken::new();
        let worker = {
            let outbox = outbox.clone();
            let target: Arc<dyn DeliveryTarget> = bridge.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let result = outbox
                    .run(
                        target,
                        async move { stop.cancelled().await },
                        Duration::from_secs(5),
                    )
                    .await;
                if let Err(e) = result {
                    warn!(error = %e, "CRM outbox worker stopped");
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

    /// Queue the post-call record durably; returns once it is committed.
    pub async fn record(&self, log: CallLog) {
        let call_id = log.call_id.clone();
        match self.outbox.enqueue(Write::CallLog(log)).await {
            Ok(_) => info!(call_id = %call_id, "call log queued for the CRM"),
            Err(e) => warn!(call_id = %call_id, error = %e, "call log NOT queued"),
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
