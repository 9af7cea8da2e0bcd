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
        if !script.tickets.is_empty() {
            slots.insert("tickets".into(), script.tickets.join(", "));
        }
        if script.stop_calling {
            slots.insert("do_not_call".into(), "yes".into());
        }
        for task in &script.tasks {
            let origin = format!(
                "Campaign {}, attempt {}, call {call_id}.",
                request.campaign, request.attempt
            );
            tasks.push(NewTask {
                subject: task.subject.clone(),
                body: if task.body.is_empty() {
                    origin
                } else {
                    format!("{}\n\n{origin}", task.body)
                },
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialing::{Disposition, FollowUpTask, ScriptResult};

    fn request() -> DialRequest {
        DialRequest {
            campaign: "nov".into(),
            contact_id: "c7".into(),
            attempt: 2,
            number: "+12125550107".into(),
            caller_id: "+15550100".into(),
            via: None,
            ring_timeout: std::time::Duration::from_secs(20),
            script: "s.yaml".into(),
            customer_id: Some("C7".into()),
            fields: Default::default(),
            machine: Default::default(),
            machine_message: None,
            invite_rate: None,
        }
    }

    #[test]
    fn a_trigger_task_and_the_score_reach_the_outbox_writes() {
        let outcome = DialOutcome {
            disposition: Disposition::Answered,
            sip_status: Some(200),
            script: Some(ScriptResult {
                call_id: "abc@vb".into(),
                score: Some(90.0),
                tasks: vec![FollowUpTask {
                    subject: "Send Ann a quote within 24 h".into(),
                    body: "The caller said: \"the price?\"".into(),
                }],
                tickets: vec!["1001".into()],
                ..ScriptResult::default()
            }),
        };
        let writes = writes(&request(), &outcome, 1_000, 2_000, false);
        assert_eq!(writes.len(), 2, "the call log and exactly one task");
        let Write::CallLog(log) = &writes[0] else {
            panic!("the call log first: {writes:?}")
        };
        assert_eq!(log.slots["score"], "90");
        assert_eq!(log.slots["tickets"], "1001");
        let Write::Task(task) = &writes[1] else {
            panic!("then the task: {writes:?}")
        };
        assert_eq!(task.subject, "Send Ann a quote within 24 h");
        assert!(task.body.starts_with("The caller said: \"the price?\""));
        assert!(task.body.contains("Campaign nov, attempt 2, call abc@vb."));
        assert_eq!(task.customer_id.as_deref(), Some("C7"));
        assert_eq!(task.call_id.as_deref(), Some("abc@vb"));
    }
}
