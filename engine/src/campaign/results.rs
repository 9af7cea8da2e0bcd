//! What an attempt writes back to the CRM: a call log per attempt (its
//! disposition, SIP status, the script's intents, slots, transcript and
//! score) and a task per follow-up the script asked for, plus one when the
//! caller asked not to be called again. Plain data in, plain data out.

use voxbridge_crm::model::{CallLog, IntentHit, NewTask, Speaker, Turn, Write};

use crate::dialing::{DialOutcome, DialRequest};

/// The outbox key of an attempt's `index`-th write: stable, so a write
/// sent again after a crash is recognised.
pub fn key(campaign: &str, contact: &str, attempt: u32, index: usize) -> String {
    format!("campaign:{campaign}:{contact}:{attempt}:{index}")
}

/// The writes for one ended attempt. `recovered`: the process died during
/// it (it counts as failed; the person may have been rung).
pub fn writes(
    request: &DialRequest,
    outcome: &DialOutcome,
    started_ms: i64,
    ended_ms: i64,
    recovered: bool,
) -> Vec<Write> {
    let mut slots = request.fields.clone();
    slots.insert("campaign".into(), request.campaign.clone());
    slots.insert("contact_id".into(), request.contact_id.clone());
    slots.insert("attempt".into(), request.attempt.to_string());
    if let Some(status) = outcome.sip_status {
        slots.insert("sip_status".into(), status.to_string());
    }
    if recovered {
        slots.insert(
            "recovered".into(),
            "the engine stopped during this attempt".into(),
        );
    }
    let call_id = outcome
        .script
        .as_ref()
        .map(|s| s.call_id.clone())
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| {
            format!(
                "campaign:{}:{}:{}",
                request.campaign, request.contact_id, request.attempt
            )
        });
    let mut log = CallLog {
        call_id: call_id.clone(),
        caller: Some(request.caller_id.clone()),
        callee: Some(request.number.clone()),
        customer_id: request.customer_id.clone(),
        started_at_ms: started_ms,
        answered_at_ms: None,
        ended_at_ms: ended_ms,
        disposition: outcome.disposition.label().to_string(),
        ..CallLog::default()
    };
    let mut tasks = Vec::new();
    if let Some(script) = &outcome.script {
        for (k, v) in &script.slots {
            slots.insert(k.clone(), v.clone());
        }
        log.intents = script
            .intents
            .iter()
            .map(|name| IntentHit {
                name: name.clone(),
                confidence: 1.0,
            })
            .collect();
        log.transcript = script
            .transcript
            .iter()
            .map(|line| Turn {
                speaker: Speaker::Caller,
                text: line.clone(),
                at_ms: 0,
            })
            .collect();
        if let Some(score) = script.score {
            slots.insert("score".into(), format!("{score}"));
        }
        if script.stop_calling {
            slots.insert("do_not_call".into(), "yes".into());
        }
        for subject in &script.tasks {
            tasks.push(NewTask {
                subject: subject.clone(),
                body: format!(
                    "Campaign {}, attempt {}, call {call_id}.",
                    request.campaign, request.attempt
                ),
                customer_id: request.customer_id.clone(),
                phone: Some(request.number.clone()),
                call_id: Some(call_id.clone()),
                ..NewTask::default()
            });
        }
        if script.stop_calling {
            tasks.push(NewTask {
                subject: "Do not call this customer again".into(),
                body: format!(
                    "The caller asked not to be called again during campaign {} (call {call_id}); the number is on voxbridge's do-not-call list.",
                    request.campaign
                ),
                customer_id: request.customer_id.clone(),
                phone: Some(request.number.clone()),
                call_id: Some(call_id.clone()),
                ..NewTask::default()
            });
        }
    }
    log.slots = slots;
    let mut out = vec![Write::CallLog(log)];
    out.extend(tasks.into_iter().map(Write::Task));
    out
}
