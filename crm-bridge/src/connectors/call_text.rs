//! The call log as text: the one subject line and body every connector
//! writes for a call, so the connectors cannot drift apart (they did: one
//! wrote the caller's full number into the body under a masked subject).
//!
//! The caller's number is masked here (see [`super::vendor::caller_text`]);
//! the full number goes only into fields meant for it.

use super::vendor::caller_text;
use crate::model::CallLog;

/// `Call from +*********8000, 61 s, resolved`.
pub fn subject(c: &CallLog) -> String {
    format!(
        "Call from {}, {} s, {}",
        caller_text(c.caller.as_deref()),
        c.duration_secs(),
        c.disposition
    )
}

/// The transcript, then one `Name: value` line per fact of the call
/// (start, length, disposition, caller, intents, transfer, recording),
/// then the slots. Every line ends with a newline.
pub fn body(c: &CallLog) -> String {
    let mut out = c.transcript_text();
    if !out.is_empty() {
        out.push('\n');
    }
    out.push_str(&format!(
        "Started: {}\nDuration: {} s\nDisposition: {}\n",
        crate::datetime::rfc3339_ms(c.started_at_ms),
        c.duration_secs(),
        c.disposition
    ));
    if c.caller.is_some() {
        out.push_str(&format!("Caller: {}\n", caller_text(c.caller.as_deref())));
    }
    if !c.intents.is_empty() {
        out.push_str(&format!("Intents: {}\n", c.intents_text()));
    }
    if let Some(t) = &c.transfer_target {
        out.push_str(&format!("Transferred to: {t}\n"));
    }
    if let Some(r) = &c.recording {
        out.push_str(&format!("Recording: {r}\n"));
    }
    out.push_str(&c.slots_text());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{IntentHit, Speaker, Turn};

    fn call() -> CallLog {
        CallLog {
            call_id: "c1".into(),
            caller: Some("+8613800138000".into()),
            started_at_ms: 1_795_253_400_000,
            ended_at_ms: 1_795_253_461_000,
            transcript: vec![Turn {
                speaker: Speaker::Caller,
                text: "Where is my order?".into(),
                at_ms: 0,
            }],
            intents: vec![IntentHit {
                name: "order_status".into(),
                confidence: 0.9,
            }],
            disposition: "resolved".into(),
            recording: Some("rec/c1.wav".into()),
            ..CallLog::default()
        }
    }

    // The old RT body wrote `Caller: +8613800138000` under a masked subject.
    #[test]
    fn the_caller_is_masked_in_subject_and_body() {
        let c = call();
        let (subject, body) = (subject(&c), body(&c));
        assert_eq!(subject, "Call from +*********8000, 61 s, resolved");
        assert_eq!(
            body,
            "Caller: Where is my order?\n\nStarted: 2026-11-21T09:30:00.000Z\nDuration: 61 s\n\
             Disposition: resolved\nCaller: +*********8000\nIntents: order_status\n\
             Recording: rec/c1.wav\n"
        );
    }

    #[test]
    fn a_call_without_a_number_or_words_says_so() {
        let c = CallLog {
            caller: None,
            transcript: Vec::new(),
            ..call()
        };
        assert!(subject(&c).starts_with("Call from unknown caller"));
        assert!(body(&c).starts_with("Started: "));
        assert!(!body(&c).contains("Caller:"));
    }
}
