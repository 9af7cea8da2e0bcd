//! What the detector tells the dialler: the verdict (`Human`, `Machine`),
//! then, for a machine, the beep that ends its greeting (or that none came).

use std::time::Duration;

/// One thing the detector decided. Times are call audio since the answer.
#[derive(Debug, Clone, PartialEq)]
pub enum AmdEvent {
    /// A person: run the script.
    Human { at: Duration, reason: HumanReason },
    /// A recorder: hang up, or wait for [`AmdEvent::Beep`] and leave the
    /// message.
    Machine { at: Duration, reason: MachineReason },
    /// The beep that ends a machine's greeting: it began at `at` and ended
    /// at `ended` (start the message now: this event comes when it ends).
    Beep {
        at: Duration,
        ended: Duration,
        /// Its frequency, Hz (to the nearest 25).
        hz: u32,
    },
    /// After `Machine`, no beep came (`beep_wait_ms`) or the line stayed
    /// silent after the greeting (`no_beep_silence_ms`): a recorder without
    /// a beep is listening, so a message can start now.
    NoBeep { at: Duration },
}

/// Why the detector said `Human`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HumanReason {
    /// A greeting shorter than `machine_greeting_ms`, then silence: a
    /// person waiting for an answer.
    ShortGreeting { greeting: Duration },
    /// Nothing was said before `decision_limit_ms`.
    Silence,
    /// `decision_limit_ms` came while a greeting was still going on and
    /// not yet long enough for a machine.
    Limit,
}

/// Why the detector said `Machine`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MachineReason {
    /// A greeting that went on for `machine_greeting_ms` with only short
    /// pauses.
    LongGreeting { greeting: Duration },
    /// A beep came before any other verdict.
    Beep,
}

/// The detector's verdict so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Undecided,
    Human,
    Machine,
}
