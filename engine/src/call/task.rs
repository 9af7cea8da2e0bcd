//! The task of one call: its tracing span, its place in the metrics, panic
//! containment, and the record written at the end whatever ended the call
//! (a panic included: the record says `error`, the peer gets a BYE, the
//! count `voxbridge_call_panics_total` goes up).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::SystemTime;

use tracing::{error, info, Instrument};

use voxbridge_dialog::interp::CallRecord as ScriptRecord;

use super::leg::Leg;
pub use super::shell::Party;
use super::shell::{self, ShellEnd};
use super::{CallContext, EndReason};
use crate::call_log::{call_log, follow_up_tasks};
use crate::cdr::{CallRecord, Direction};
use crate::pii::mask_uri;
use crate::sip::{CallInfo, CallLeg};

/// Run one inbound call to its end and write its record.
pub async fn run(leg: CallLeg, ctx: Arc<CallContext>) -> EndReason {
    let info = leg.info().clone();
    let party = Party::caller(&info);
    run_leg(Box::new(leg), info, party, ctx).await.reason
}

/// How a call ended, for whoever placed it.
#[derive(Debug)]
pub struct CallEnd {
    pub reason: EndReason,
    /// The script's record, when a script ran.
    pub script: Option<Box<ScriptRecord>>,
    pub answered: bool,
    /// How answering-machine screening ended, when the call was screened.
    pub machine: Option<super::MachineOutcome>,
}

/// Run a call on any kind of leg to its end and write its record; `party`
/// is the other side (the caller inbound, the callee of a call we placed).
pub async fn run_leg(
    leg: Box<dyn Leg>,
    info: CallInfo,
    party: Party,
    ctx: Arc<CallContext>,
) -> CallEnd {
    let outbound = party.outbound;
    ctx.metrics.calls_started.fetch_add(1, Ordering::Relaxed);
    ctx.metrics.calls_active.fetch_add(1, Ordering::Relaxed);
    // Every line of the call, and of the tasks it starts, carries its id.
    let span = tracing::info_span!("call", call_id = %info.call_id, caller = %mask_uri(&info.from));
    ctx.live.start(&info.call_id);
    ctx.live.describe(&info.call_id, outbound, &party.uri);
    if outbound {
        info!(parent: &span, call_id = %info.call_id, from = %mask_uri(&info.from), to = %mask_uri(&info.to), "outgoing call answered");
    } else {
        info!(parent: &span, call_id = %info.call_id, from = %mask_uri(&info.from), to = %mask_uri(&info.to), "incoming call");
    }
    let task =
        tokio::spawn(shell::run(leg, info.clone(), party, ctx.clone()).instrument(span.clone()));
    let end = match task.await {
        Ok(end) => end,
        Err(e) => {
            // The leg went down with the task: its drop sent BYE (or a
            // final response) and freed the admission slot.
            ctx.metrics.call_panics.fetch_add(1, Ordering::Relaxed);
            let what = if e.is_panic() {
                "panicked"
            } else {
                "was cancelled"
            };
            error!(parent: &span, call_id = %info.call_id, error = %e, "call task {what}; the call ends as an error");
            ShellEnd {
                reason: EndReason::Error,
                outcome: Default::default(),
                answered_at: None,
                recording: None,
            }
        }
    };
    let mut outcome = end.outcome;
    let record = CallRecord {
        call_id: info.call_id.clone(),
        from: info.from.clone(),
        to: info.to.clone(),
        started: info.received_at,
        answered: end.answered_at,
        ended: SystemTime::now(),
        end_reason: end.reason.label().to_string(),
        dtmf: std::mem::take(&mut outcome.dtmf),
        recording: end.recording,
        transfer_target: outcome.transfer_target.take(),
        turns: std::mem::take(&mut outcome.turns),
        // The CDR writer names this node.
        node: None,
        direction: Some(if outbound {
            Direction::Outbound
        } else {
            Direction::Inbound
        }),
    };
    info!(
        call_id = %info.call_id,
        reason = end.reason.label(),
        duration_ms = record.duration().as_millis() as u64,
        "call ended"
    );
    // The call log goes to the durable outbox in the same step that
    // closes the call record, and the task waits for its commit.
    if let (Some(crm), true) = (&ctx.crm, record.answered.is_some()) {
        outcome.activity.customer_id = outcome.customer.as_ref().map(|c| c.id.clone());
        // A call we placed hands its follow-ups to whoever placed it (a
        // campaign writes them with the attempt's result, under keys that
        // survive a restart): writing them here too would make two tasks.
        let tasks = if outbound {
            Vec::new()
        } else {
            follow_up_tasks(
                &record,
                outcome.script_record.as_deref(),
                outcome.activity.customer_id.as_deref(),
            )
        };
        crm.record_with_tasks(
            call_log(&record, outcome.script_record.as_deref(), &outcome.activity),
            tasks,
        )
        .await;
    }
    ctx.live.end(&info.call_id);
    let record_answered = record.answered.is_some();
    ctx.cdr.write(record);
    ctx.metrics.calls_active.fetch_sub(1, Ordering::Relaxed);
    ctx.metrics.call_ended(end.reason);
    CallEnd {
        reason: end.reason,
        answered: record_answered,
        script: outcome.script_record,
        machine: outcome.machine,
    }
}
