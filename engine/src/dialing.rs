//! What a campaign asks of the dialler, and what comes back.
//!
//! The campaign scheduler (`campaign`) decides who is called when; the
//! outbound dialler places one call, runs the script on the answered call
//! and reports how the attempt ended. This module is the only thing they
//! share, so either side can be tested without the other: the scheduler
//! with a scripted [`Dialer`] in simulated time, the dialler against sipp
//! callees without a campaign.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;

/// What to do when an answering machine picks up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MachinePolicy {
    /// Do not listen for a machine: every answer is a person.
    #[default]
    Ignore,
    /// Hang up as soon as a machine is detected.
    HangUp,
    /// Wait for the beep, play the campaign's message, hang up.
    LeaveMessage,
}

/// One attempt to call one contact.
#[derive(Debug, Clone, PartialEq)]
pub struct DialRequest {
    /// The campaign's name (for logs, metrics and the call record).
    pub campaign: String,
    /// The contact's id in the campaign's list (stable across attempts).
    pub contact_id: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// The number to call, E.164 (`+4930…`).
    pub number: String,
    /// From / P-Asserted-Identity.
    pub caller_id: String,
    /// A registration account or trunk name from the engine config; `None`
    /// dials the number's URI directly.
    pub via: Option<String>,
    /// CANCEL when no final answer has come by then.
    pub ring_timeout: Duration,
    /// The script the answered call runs.
    pub script: PathBuf,
    /// The contact's CRM customer id, when the list has one.
    pub customer_id: Option<String>,
    /// The list's extra fields, given to the script as slots.
    pub fields: BTreeMap<String, String>,
    pub machine: MachinePolicy,
    /// Played after the beep under [`MachinePolicy::LeaveMessage`].
    pub machine_message: Option<String>,
    /// The campaign's pacing as "at most `n` INVITEs leaving in any
    /// window", applied where the INVITE leaves (`None`: unpaced, e.g. one
    /// call placed through the API).
    pub invite_rate: Option<(usize, Duration)>,
}

/// How one attempt ended. Every final SIP status maps to one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Disposition {
    /// A person answered and the script ran.
    Answered,
    /// 486 Busy Here, 600 Busy Everywhere.
    Busy,
    /// No final answer before `ring_timeout` (we sent CANCEL), or 408/480.
    NoAnswer,
    /// 603 Decline.
    Rejected,
    /// 404 Not Found, 484 Address Incomplete, 410 Gone.
    NotFound,
    /// 5xx, other 4xx, a transport error or no response at all.
    Failed,
    /// An answering machine answered.
    Machine,
    /// The number is on the do-not-call list: never dialled.
    DoNotCall,
}

impl Disposition {
    /// Every disposition, in label order of the metrics.
    pub const ALL: [Disposition; 8] = [
        Disposition::Answered,
        Disposition::Busy,
        Disposition::NoAnswer,
        Disposition::Rejected,
        Disposition::NotFound,
        Disposition::Failed,
        Disposition::Machine,
        Disposition::DoNotCall,
    ];

    /// The label in the store, the metrics and `campaign status`.
    pub fn label(self) -> &'static str {
        match self {
            Disposition::Answered => "answered",
            Disposition::Busy => "busy",
            Disposition::NoAnswer => "no_answer",
            Disposition::Rejected => "rejected",
            Disposition::NotFound => "not_found",
            Disposition::Failed => "failed",
            Disposition::Machine => "machine",
            Disposition::DoNotCall => "do_not_call",
        }
    }

    /// The disposition for a final, non-2xx SIP status of an INVITE.
    pub fn from_status(code: u16) -> Disposition {
        match code {
            486 | 600 => Disposition::Busy,
            408 | 480 | 487 => Disposition::NoAnswer,
            603 => Disposition::Rejected,
            404 | 410 | 484 | 604 => Disposition::NotFound,
            _ => Disposition::Failed,
        }
    }
}

/// What the answered call's script produced, for the CRM write-back.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ScriptResult {
    /// The SIP Call-ID of the answered call (joins the call record).
    pub call_id: String,
    /// Intents the caller expressed, in order.
    pub intents: Vec<String>,
    pub slots: BTreeMap<String, String>,
    /// The caller's words, one line per turn.
    pub transcript: Vec<String>,
    /// The lead score the script set (its `score` variable), if any.
    pub score: Option<f64>,
    /// Follow-up tasks for a human the script's triggers asked for.
    pub tasks: Vec<FollowUpTask>,
    /// Ids of the tickets the script opened during the call (already in
    /// the ticket system: they go into the call log, not the outbox again).
    pub tickets: Vec<String>,
    /// The caller asked not to be called again (`stop_calling`).
    pub stop_calling: bool,
}

/// A follow-up task for a human, written through the CRM outbox.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FollowUpTask {
    pub subject: String,
    /// Empty: the write-back says which campaign call it came from.
    pub body: String,
}

impl From<&str> for FollowUpTask {
    fn from(subject: &str) -> Self {
        FollowUpTask {
            subject: subject.to_string(),
            body: String::new(),
        }
    }
}

/// How one attempt went.
#[derive(Debug, Clone, PartialEq)]
pub struct DialOutcome {
    pub disposition: Disposition,
    /// The final SIP status, when there was one.
    pub sip_status: Option<u16>,
    /// Set when the call was answered (by a person or a machine).
    pub script: Option<ScriptResult>,
}

/// Places one call and reports how it ended. The engine's outbound SIP
/// dialler implements it; scheduler tests use a scripted one.
#[async_trait]
pub trait Dialer: Send + Sync {
    /// Returns once the attempt is over (the call ended or never started).
    async fn dial(&self, request: DialRequest) -> DialOutcome;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_final_status_has_a_disposition() {
        assert_eq!(Disposition::from_status(486), Disposition::Busy);
        assert_eq!(Disposition::from_status(600), Disposition::Busy);
        assert_eq!(Disposition::from_status(603), Disposition::Rejected);
        assert_eq!(Disposition::from_status(404), Disposition::NotFound);
        assert_eq!(Disposition::from_status(484), Disposition::NotFound);
        assert_eq!(Disposition::from_status(487), Disposition::NoAnswer);
        assert_eq!(Disposition::from_status(503), Disposition::Failed);
        assert_eq!(Disposition::from_status(415), Disposition::Failed);
    }
}
