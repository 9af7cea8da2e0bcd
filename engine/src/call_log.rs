//! The CRM's post-call record: built from the call record (times, end
//! reason, keys, recording, turn latency), what the dialog script made of
//! the call (transcript, intents, slots, disposition) and what the call
//! task did for it (lookups, tickets, transfer). Plain data in, plain data
//! out.

use std::collections::BTreeMap;

use voxbridge_crm::model::{CallLog, IntentHit, NewTask, Speaker, Turn};
use voxbridge_dialog::interp::CallRecord as ScriptRecord;

use crate::cdr::{ms, CallRecord};

/// What the call task itself did, beyond the script's record.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct CallActivity {
    pub customer_id: Option<String>,
    /// `name: outcome (N ms)` per lookup made, in order.
    pub lookups: Vec<String>,
    /// Ticket ids created.
    pub tickets: Vec<String>,
    /// `answered`, or `failed: reason`, for the last transfer tried.
    pub transfer_result: Option<String>,
}

/// The post-call record for the CRM. Lookups, tickets, the transfer and
/// the turn latencies go in as slots (`lookups`, `tickets`,
/// `transfer_result`, `turn_latency_ms`) so every connector carries them.
pub fn call_log(
    record: &CallRecord,
    script: Option<&ScriptRecord>,
    activity: &CallActivity,
) -> CallLog {
    let mut slots = BTreeMap::new();
    let mut transcript = Vec::new();
    let mut intents = Vec::new();
    if !record.dtmf.is_empty() {
        slots.insert("digits".to_string(), record.dtmf.clone());
    }
    let mut disposition = match record.end_reason.as_str() {
        "transferred" => "transferred",
        "transfer_failed" => "transfer_failed",
        "bot_hangup" => "resolved",
        "caller_hangup" | "caller_cancel" => "abandoned",
        _ => "failed",
    }
    .to_string();
    match script {
        // A script knows better: its transcript, intents, facts, disposition.
        Some(script) => {
            for turn in &script.transcript {
                let speaker = match turn.speaker {
                    voxbridge_dialog::interp::Speaker::Caller => Speaker::Caller,
                    voxbridge_dialog::interp::Speaker::Bot => Speaker::Bot,
                    // Notes ("no input (1)", "transfer to agents") are the
                    // script's, not words anyone said: the path and slots
                    // carry them.
                    voxbridge_dialog::interp::Speaker::System => continue,
                };
                transcript.push(Turn {
                    speaker,
                    text: turn.text.clone(),
                    at_ms: 0,
                });
                if let (Some(intent), Some(confidence)) = (&turn.intent, turn.confidence) {
                    intents.push(IntentHit {
                        name: intent.clone(),
                        confidence,
                    });
                }
            }
            for (name, value) in &script.facts {
                slots.insert(name.clone(), value.to_string());
            }
            slots.insert("language".to_string(), script.language.code().to_string());
            if let Some(score) = script.score {
                slots.insert(
                    "score".to_string(),
                    voxbridge_dialog::value::format_number(score),
                );
            }
            // A transfer that went through ends the call for the script
            // too, but the script only hears of it as a hang-up.
            let hangup_after_transfer =
                record.end_reason == "transferred" && script.disposition == "caller_hangup";
            if !script.disposition.is_empty() && !hangup_after_transfer {
                disposition = script.disposition.clone();
            }
        }
        None if !record.dtmf.is_empty() => transcript.push(Turn {
            speaker: Speaker::Caller,
            text: format!("[keys] {}", record.dtmf),
            at_ms: 0,
        }),
        None => {}
    }
    if !activity.lookups.is_empty() {
        slots.insert("lookups".to_string(), activity.lookups.join("; "));
    }
    if !activity.tickets.is_empty() {
        slots.insert("tickets".to_string(), activity.tickets.join(", "));
    }
    if let Some(result) = &activity.transfer_result {
        slots.insert("transfer_result".to_string(), result.clone());
    }
    if !record.turns.is_empty() {
        let list: Vec<String> = record
            .turns
            .iter()
            .map(|t| format!("{}:{:.0}", t.kind.label(), t.total_ms))
            .collect();
        slots.insert("turn_latency_ms".to_string(), list.join(", "));
    }
    CallLog {
        call_id: record.call_id.clone(),
        caller: crate::crm::caller_number(&record.from),
        callee: Some(record.to.clone()),
        customer_id: activity.customer_id.clone(),
        started_at_ms: ms(record.started),
        answered_at_ms: record.answered.map(ms),
        ended_at_ms: ms(record.ended),
        transcript,
        intents,
        intent_level: None,
        slots,
        disposition,
        recording: record.recording.as_ref().map(|p| p.display().to_string()),
        transfer_target: record.transfer_target.clone(),
    }
}

/// The follow-up tasks the script's triggers asked for, for the outbox
/// with the call log (one transaction: both or neither).
pub fn follow_up_tasks(
    record: &CallRecord,
    script: Option<&ScriptRecord>,
    customer_id: Option<&str>,
) -> Vec<NewTask> {
    let Some(script) = script else {
        return Vec::new();
    };
    script
        .follow_ups
        .iter()
        .map(|f| NewTask {
            subject: f.subject.clone(),
            body: f.body.clone(),
            customer_id: customer_id.map(str::to_string),
            phone: crate::crm::caller_number(&record.from),
            call_id: Some(record.call_id.clone()),
            ..NewTask::default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::turn_latency::{TurnKind, TurnLatency};
    use std::time::{Duration, UNIX_EPOCH};

    fn record(end: &str) -> CallRecord {
        let t = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        CallRecord {
            call_id: "c1".into(),
            from: "sip:+15551230001@pbx".into(),
            to: "sip:bot@vb".into(),
            started: t,
            answered: Some(t + Duration::from_millis(200)),
            ended: t + Duration::from_secs(30),
            end_reason: end.into(),
            dtmf: "1001#".into(),
            recording: None,
            transfer_target: Some("sip:agents@pbx".into()),
            turns: vec![TurnLatency {
                kind: TurnKind::Speech,
                total_ms: 612.4,
                endpointing_ms: 500.0,
                asr_ms: 80.0,
                intent_ms: 0.1,
                dialog_ms: 0.2,
                lookup_ms: 0.0,
                tts_ms: 20.0,
            }],
            node: None,
            direction: Some(crate::cdr::Direction::Inbound),
        }
    }

    #[test]
    fn the_script_record_gives_words_intents_language_not_notes() {
        use voxbridge_dialog::interp::{EndedBy, Speaker as S, Turn as T};
        let turn = |speaker, text: &str, intent: Option<&str>| T {
            speaker,
            text: text.into(),
            state: "menu".into(),
            intent: intent.map(str::to_string),
            confidence: intent.map(|_| 0.9),
        };
        let script = ScriptRecord {
            script: "customer-service".into(),
            caller: "+15551230001".into(),
            customer_id: None,
            language: voxbridge_dialog::format::Lang::Zh,
            ended_by: EndedBy::Bot,
            disposition: "resolved".into(),
            facts: Default::default(),
            intents: vec!["agent".into()],
            tickets: vec![],
            score: None,
            follow_ups: vec![],
            transferred_to: None,
            path: vec!["menu".into()],
            transcript: vec![
                turn(S::Bot, "您好", None),
                turn(S::System, "no input (1)", None),
                turn(S::Caller, "转人工", Some("agent")),
            ],
        };
        let log = call_log(
            &record("bot_hangup"),
            Some(&script),
            &CallActivity::default(),
        );
        assert_eq!(log.transcript.len(), 2, "the note is not a turn");
        assert_eq!(log.transcript[1].speaker, Speaker::Caller);
        assert_eq!(log.intents.len(), 1);
        assert_eq!(log.slots["language"], "zh");
        assert_eq!(log.disposition, "resolved");
    }

    #[test]
    fn activity_and_latency_travel_as_slots() {
        let activity = CallActivity {
            customer_id: Some("C-1".into()),
            lookups: vec!["order_status: found (12 ms)".into()],
            tickets: vec!["42".into()],
            transfer_result: Some("answered".into()),
        };
        let log = call_log(&record("transferred"), None, &activity);
        assert_eq!(log.disposition, "transferred");
        assert_eq!(log.customer_id.as_deref(), Some("C-1"));
        assert_eq!(log.caller.as_deref(), Some("+15551230001"));
        assert_eq!(log.slots["lookups"], "order_status: found (12 ms)");
        assert_eq!(log.slots["tickets"], "42");
        assert_eq!(log.slots["transfer_result"], "answered");
        assert_eq!(log.slots["turn_latency_ms"], "speech:612");
        assert_eq!(log.slots["digits"], "1001#");
        assert_eq!(log.transcript.len(), 1, "keys stand in for a transcript");
    }
}
