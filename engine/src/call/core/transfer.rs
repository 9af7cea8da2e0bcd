//! Transfers: the REFER we send to hand the caller to a human (with the
//! context attached), and the REFER a peer sends us to call someone else.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tracing::{info, warn};

use super::CallCore;
use super::Command;
use crate::call::EndReason;
use crate::flow::FlowEvent;
use crate::pii::mask_uri;
use crate::screen_pop::Handover;
use crate::transfer::{self, ContextOptions, TransferState, TransferTracker};

impl CallCore {
    /// The flow hands the caller over.
    pub(super) fn transfer(&mut self, now: Instant, target: &str, context: Vec<(String, String)>) {
        self.clock.abandon();
        // A configured name says where; a URI may hold a number.
        let shown = if self.config().transfer.targets.contains_key(target) {
            target.to_string()
        } else {
            mask_uri(target)
        };
        self.transcript("system", format!("transfer to {shown}"));
        let uri = match resolve_target(target, &self.config().transfer.targets) {
            Ok(uri) => uri,
            Err(why) => return self.transfer_failed(why),
        };
        let context = self.with_crm_context(context);
        let cfg = &self.config().transfer;
        let options = ContextOptions {
            in_uri: cfg.context_in_uri,
            user_to_user: cfg.user_to_user,
            header_prefix: cfg.header_prefix.clone(),
            max_bytes: cfg.max_context_bytes,
        };
        let timeout = Duration::from_secs(cfg.timeout_secs);
        let request = transfer::refer_request(&uri, &context, &options);
        if !request.dropped.is_empty() {
            warn!(dropped = ?request.dropped, "transfer context over the size limit");
        }
        info!(target = %mask_uri(&uri), "transferring by REFER");
        let item = |key: &str| {
            context
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
        };
        let handover = Handover {
            target: target.trim().to_string(),
            target_uri: uri.clone(),
            customer: self.outcome.customer.clone(),
            intent: item("intent").or_else(|| self.last_intent.clone()),
            reason: item("reason"),
        };
        self.outcome.transfer_target = Some(uri);
        self.transfer = Some((TransferTracker::default(), now + timeout));
        self.push(Command::Refer {
            refer_to: request.refer_to,
            user_to_user: request.user_to_user,
            handover: Box::new(handover),
        });
    }

    /// The script's own context items win; the CRM fills what it left out.
    fn with_crm_context(&self, mut context: Vec<(String, String)>) -> Vec<(String, String)> {
        let has = |key: &str, context: &[(String, String)]| {
            context.iter().any(|(k, v)| k == key && !v.is_empty())
        };
        context.retain(|(_, v)| !v.is_empty());
        if let Some(c) = &self.outcome.customer {
            if !has("customer", &context) {
                context.insert(0, ("customer".to_string(), c.id.clone()));
            }
            if let (Some(tier), false) = (&c.tier, has("tier", &context)) {
                context.insert(1, ("tier".to_string(), tier.clone()));
            }
        }
        context.push(("call-id".to_string(), self.start.call_id.clone()));
        context
    }

    pub(super) fn refer_sent(&mut self, result: Result<u16, String>) {
        let Some((tracker, _)) = self.transfer.as_mut() else {
            return;
        };
        let state = match result {
            Ok(code) => tracker.on_refer_response(code),
            Err(why) => TransferState::Failed(why),
        };
        if let TransferState::Failed(why) = state {
            self.transfer = None;
            self.transfer_failed(why);
        }
    }

    pub(super) fn refer_progress(&mut self, code: u16, terminated: bool) {
        let Some((tracker, _)) = self.transfer.as_mut() else {
            return;
        };
        match tracker.on_notify(code, terminated) {
            TransferState::Pending => {}
            TransferState::Succeeded => {
                self.transfer = None;
                self.settings
                    .metrics
                    .transfers_ok
                    .fetch_add(1, Ordering::Relaxed);
                info!(status = code, "transfer answered; leaving the call");
                self.outcome.activity.transfer_result = Some("answered".to_string());
                self.transcript("system", "transfer answered");
                self.release(true, EndReason::Transferred);
            }
            TransferState::Failed(why) => {
                self.transfer = None;
                self.transfer_failed(why);
            }
        }
    }

    pub(super) fn transfer_timed_out(&mut self) {
        if let Some((tracker, _)) = self.transfer.take() {
            let why = match tracker.on_timeout() {
                TransferState::Failed(why) => why,
                _ => "timeout".to_string(),
            };
            self.transfer_failed(why);
        }
    }

    /// Count and log a failed transfer; the flow hears of it.
    fn transfer_failed(&mut self, why: String) {
        self.outcome.activity.transfer_result = Some(format!("failed: {why}"));
        self.transcript("system", format!("transfer failed: {why}"));
        self.settings
            .metrics
            .transfers_failed
            .fetch_add(1, Ordering::Relaxed);
        self.last_transfer_failed = true;
        warn!(reason = %why, "transfer failed; the bot keeps the call");
        self.queued.push_back(FlowEvent::TransferFailed(why));
    }

    /// An incoming REFER: decline it, or accept, report and call the target.
    pub(super) fn referred(&mut self, target: String) {
        if !self.config().transfer.accept_incoming_refer {
            info!("incoming REFER declined (transfer.accept_incoming_refer is off)");
            self.push(Command::AnswerRefer(Err(603)));
            return;
        }
        if self.referred.is_some() {
            // One at a time: the first target is still being called.
            self.push(Command::AnswerRefer(Err(491)));
            return;
        }
        info!(target = %mask_uri(&target), "referred by the peer; calling the target");
        self.push(Command::AnswerRefer(Ok(())));
        self.push(Command::NotifyRefer {
            code: 100,
            terminated: false,
        });
        self.referred = Some(target.clone());
        self.push(Command::FollowRefer { target });
    }

    /// The REFER target answered (the shell moved the call to it) or not.
    pub(super) fn refer_followed(&mut self, now: Instant, result: Result<(u16, String), u16>) {
        let Some(target) = self.referred.take() else {
            return;
        };
        match result {
            Ok((port, new_call_id)) => {
                info!(new_call_id = %new_call_id, "call moved to the REFER target");
                self.moved(port);
                self.outcome.transfer_target = Some(target);
                // Whatever was under way belonged to the old party.
                self.work = None;
                self.transfer = None;
                self.recognition = None;
                self.prompt_pending = None;
                self.prompt_active = false;
                self.queued.clear();
                self.close_question();
                self.clock.abandon();
                // The new party starts the flow from the top.
                self.start_flow(now);
            }
            Err(code) => {
                warn!(status = code, "REFER target not reached; keeping the call");
                self.push(Command::NotifyRefer {
                    code,
                    terminated: true,
                });
            }
        }
    }
}

/// A script's transfer target: a URI as is, or a name from
/// `transfer.targets`.
pub(crate) fn resolve_target(
    target: &str,
    names: &std::collections::BTreeMap<String, String>,
) -> Result<String, String> {
    let t = target.trim();
    if t.starts_with("sip:")
        || t.starts_with("sips:")
        || t.starts_with("tel:")
        || t.starts_with('<')
    {
        return Ok(t.to_string());
    }
    names
        .get(t)
        .cloned()
        .ok_or_else(|| format!("no transfer target named `{t}` in transfer.targets"))
}
