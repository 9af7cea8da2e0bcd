//! Screening a call we placed for an answering machine, between the 200 OK
//! and the script.
//!
//! The detector (`voxbridge_models::amd`) runs on the media task over the
//! callee's audio and reports its events; this module decides what the
//! call does with them. [`Gate`] is the decision alone, sans-IO (events and
//! times in, one [`Step`] out), so its tests drive whole screenings in
//! simulated time; the `CallCore` methods below carry its steps out.
//!
//! - A person: the script runs as on any answered call.
//! - A machine under `hang_up`: BYE at once.
//! - A machine under `leave_message`: wait for the beep (the detector's
//!   `Beep`, or its `NoBeep` when the recorder has none), play the message,
//!   then BYE.
//!
//! The detector needs the callee's audio to decide. If none comes (no RTP,
//! or the detector could not start), the gate decides by itself:
//! [`VERDICT_SLACK`] after the detector's own `decision_limit_ms` the callee
//! is taken for a person, as the detector would have; and under
//! `leave_message`, [`VERDICT_SLACK`] after `beep_wait_ms` the message plays
//! without a beep.

use std::time::{Duration, Instant};

use tracing::{info, warn};
use voxbridge_models::amd::{AmdConfig, AmdEvent};

use super::{CallCore, Command, PromptSource};
use crate::call::EndReason;
use crate::dialing::MachinePolicy;

/// Beyond the detector's own limits, how long the gate waits for an
/// event that needs the callee's audio before it decides without it.
pub const VERDICT_SLACK: Duration = Duration::from_secs(1);

/// What a call we placed screens for, and what it does on a machine.
#[derive(Debug, Clone, PartialEq)]
pub struct MachineCheck {
    /// `HangUp` or `LeaveMessage` (`Ignore` screens nothing).
    pub policy: MachinePolicy,
    /// Spoken after the beep under `LeaveMessage`.
    pub message: Option<String>,
    /// The message's TTS language.
    pub language: String,
    /// The detector's settings (the gate reads its time limits).
    pub amd: AmdConfig,
}

/// How the screening ended, for the dialler's disposition and the CRM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineOutcome {
    /// A machine answered.
    pub machine: bool,
    /// The message was played to its end.
    pub message_left: bool,
    /// What happened, in words, for the call log.
    pub note: String,
}

/// What the call does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Nothing yet.
    Wait,
    /// A person: run the script.
    RunScript,
    /// Play the message now.
    PlayMessage(String),
    /// Hang up (BYE).
    HangUp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for the verdict, until the deadline.
    Listening {
        until: Instant,
    },
    /// A machine: waiting for its beep, until the deadline.
    AwaitingBeep {
        until: Instant,
    },
    /// The message plays.
    Playing,
    Done,
}

/// The decision of one screening; see the module doc.
#[derive(Debug)]
pub struct Gate {
    policy: MachinePolicy,
    message: Option<String>,
    beep_wait: Duration,
    state: State,
    outcome: Option<MachineOutcome>,
}

impl Gate {
    /// Screening starts at the answer, `answered`.
    pub fn new(check: &MachineCheck, answered: Instant) -> Gate {
        let limit = Duration::from_millis(u64::from(check.amd.decision_limit_ms));
        Gate {
            policy: check.policy,
            message: check.message.clone().filter(|m| !m.trim().is_empty()),
            beep_wait: Duration::from_millis(u64::from(check.amd.beep_wait_ms)) + VERDICT_SLACK,
            state: State::Listening {
                until: answered + limit + VERDICT_SLACK,
            },
            outcome: None,
        }
    }

    /// When [`Gate::on_timeout`] is due; `None` while the message plays and
    /// once done.
    pub fn deadline(&self) -> Option<Instant> {
        match self.state {
            State::Listening { until } | State::AwaitingBeep { until } => Some(until),
            State::Playing | State::Done => None,
        }
    }

    /// How it went so far: `None` until a verdict.
    pub fn outcome(&self) -> Option<&MachineOutcome> {
        self.outcome.as_ref()
    }

    #[cfg(test)]
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// The message is playing (its prompt is being made or plays).
    pub fn is_playing(&self) -> bool {
        self.state == State::Playing
    }

    /// One detector event at `now`.
    pub fn on_event(&mut self, now: Instant, event: &AmdEvent) -> Step {
        match (self.state, event) {
            (State::Listening { .. }, AmdEvent::Human { .. }) => self.person("a person answered"),
            (State::Listening { .. }, AmdEvent::Machine { .. }) => self.machine(now),
            // A beep before any verdict is a machine, and its beep.
            (State::Listening { .. }, AmdEvent::Beep { .. } | AmdEvent::NoBeep { .. }) => {
                match self.machine(now) {
                    Step::Wait => self.on_event(now, event),
                    step => step,
                }
            }
            (State::AwaitingBeep { .. }, AmdEvent::Beep { .. }) => {
                self.play("answering machine; message left after the beep")
            }
            (State::AwaitingBeep { .. }, AmdEvent::NoBeep { .. }) => {
                self.play("answering machine without a beep; message left when it went quiet")
            }
            _ => Step::Wait,
        }
    }

    /// No event came by `now`.
    pub fn on_timeout(&mut self, now: Instant) -> Step {
        match self.state {
            State::Listening { until } if now >= until => {
                self.person("no verdict from the callee's audio; taken for a person")
            }
            State::AwaitingBeep { until } if now >= until => {
                self.play("answering machine; no beep heard in time, message left")
            }
            _ => Step::Wait,
        }
    }

    /// The message played to its end.
    pub fn message_played(&mut self) -> Step {
        if self.state != State::Playing {
            return Step::Wait;
        }
        if let Some(o) = self.outcome.as_mut() {
            o.message_left = true;
        }
        self.state = State::Done;
        Step::HangUp
    }

    /// The message could not be made (TTS failed): hang up without it.
    pub fn message_failed(&mut self) -> Step {
        if self.state != State::Playing {
            return Step::Wait;
        }
        if let Some(o) = self.outcome.as_mut() {
            o.note = "answering machine; the message could not be made, none left".into();
        }
        self.state = State::Done;
        Step::HangUp
    }

    fn person(&mut self, note: &str) -> Step {
        self.state = State::Done;
        self.outcome = Some(MachineOutcome {
            machine: false,
            message_left: false,
            note: note.into(),
        });
        Step::RunScript
    }

    fn machine(&mut self, now: Instant) -> Step {
        let leave = self.policy == MachinePolicy::LeaveMessage && self.message.is_some();
        let note = if leave {
            "answering machine; waiting for the beep"
        } else {
            "answering machine; hung up without a message"
        };
        self.outcome = Some(MachineOutcome {
            machine: true,
            message_left: false,
            note: note.into(),
        });
        if leave {
            self.state = State::AwaitingBeep {
                until: now + self.beep_wait,
            };
            Step::Wait
        } else {
            self.state = State::Done;
            Step::HangUp
        }
    }

    fn play(&mut self, note: &str) -> Step {
        let Some(message) = self.message.clone() else {
            self.state = State::Done;
            return Step::HangUp;
        };
        if let Some(o) = self.outcome.as_mut() {
            o.note = note.into();
        }
        self.state = State::Playing;
        Step::PlayMessage(message)
    }
}

/// The screening of a call: its gate, the message's prompt and language.
#[derive(Debug)]
pub(super) struct Screening {
    pub gate: Gate,
    pub prompt: Option<u64>,
    pub language: String,
}

impl CallCore {
    /// At the answer: screen first when asked to, else run the script.
    pub(super) fn screen_or_start(&mut self, now: Instant) {
        match self.settings.machine.as_ref() {
            Some(check) if check.policy != MachinePolicy::Ignore => {
                info!(policy = ?check.policy, "listening for an answering machine");
                self.screening = Some(Screening {
                    gate: Gate::new(check, now),
                    prompt: None,
                    language: check.language.clone(),
                });
            }
            _ => self.start_flow(now),
        }
    }

    /// Whether the call is still being screened (no script yet).
    pub(super) fn screening(&self) -> bool {
        self.screening.is_some()
    }

    pub(super) fn screening_deadline(&self) -> Option<Instant> {
        self.screening.as_ref().and_then(|s| s.gate.deadline())
    }

    pub(super) fn screening_event(&mut self, now: Instant, event: &AmdEvent) {
        info!(event = ?event, "answering-machine detector");
        let step = match self.screening.as_mut() {
            Some(s) => s.gate.on_event(now, event),
            None => return,
        };
        self.screening_step(now, step);
    }

    pub(super) fn screening_timeout(&mut self, now: Instant) {
        let step = match self.screening.as_mut() {
            Some(s) => s.gate.on_timeout(now),
            None => return,
        };
        self.screening_step(now, step);
    }

    /// Whether prompt `id` is the message's.
    pub(super) fn is_screening_prompt(&self, id: u64) -> bool {
        self.screening
            .as_ref()
            .is_some_and(|s| s.prompt == Some(id))
    }

    /// The message's prompt is ready (`None`: it could not be made).
    pub(super) fn screening_prompt(
        &mut self,
        now: Instant,
        prompt: Option<voxbridge_media::Prompt>,
    ) {
        match prompt {
            Some(p) => self.push(Command::Play(p)),
            None => {
                warn!("answering-machine message could not be made");
                let step = match self.screening.as_mut() {
                    Some(s) => s.gate.message_failed(),
                    None => return,
                };
                self.screening_step(now, step);
            }
        }
    }

    /// The message finished playing.
    pub(super) fn screening_played(&mut self, now: Instant) {
        let step = match self.screening.as_mut() {
            Some(s) if s.gate.is_playing() => s.gate.message_played(),
            _ => return,
        };
        self.screening_step(now, step);
    }

    fn screening_step(&mut self, now: Instant, step: Step) {
        let Some(s) = self.screening.as_mut() else {
            return;
        };
        self.outcome.machine = s.gate.outcome().cloned();
        match step {
            Step::Wait => {}
            Step::RunScript => {
                self.screening = None;
                self.start_flow(now);
            }
            Step::PlayMessage(text) => {
                let language = s.language.clone();
                let id = self.next_id();
                if let Some(s) = self.screening.as_mut() {
                    s.prompt = Some(id);
                }
                self.push(Command::PreparePrompt {
                    id,
                    source: PromptSource::Speak {
                        text,
                        language,
                        voice: None,
                    },
                });
            }
            Step::HangUp => {
                if let Some(o) = &self.outcome.machine {
                    info!(note = %o.note, "answering machine: hanging up");
                }
                self.screening = None;
                self.release(true, EndReason::BotHangup);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use voxbridge_models::amd::{HumanReason, MachineReason};

    fn check(policy: MachinePolicy, message: Option<&str>) -> MachineCheck {
        MachineCheck {
            policy,
            message: message.map(str::to_string),
            language: "en".into(),
            amd: AmdConfig::default(),
        }
    }

    fn ms(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    fn human(at: u64) -> AmdEvent {
        AmdEvent::Human {
            at: Duration::from_millis(at),
            reason: HumanReason::ShortGreeting {
                greeting: Duration::from_millis(600),
            },
        }
    }

    fn machine(at: u64) -> AmdEvent {
        AmdEvent::Machine {
            at: Duration::from_millis(at),
            reason: MachineReason::LongGreeting {
                greeting: Duration::from_millis(2500),
            },
        }
    }

    fn beep(at: u64) -> AmdEvent {
        AmdEvent::Beep {
            at: Duration::from_millis(at),
            ended: Duration::from_millis(at + 400),
            hz: 1000,
        }
    }

    #[test]
    fn a_person_runs_the_script_under_either_policy() {
        for policy in [MachinePolicy::HangUp, MachinePolicy::LeaveMessage] {
            let t0 = Instant::now();
            let mut g = Gate::new(&check(policy, Some("hi")), t0);
            assert_eq!(g.on_timeout(ms(t0, 1000)), Step::Wait);
            assert_eq!(g.on_event(ms(t0, 1500), &human(1500)), Step::RunScript);
            assert!(g.is_done());
            assert!(!g.outcome().unwrap().machine);
            assert_eq!(g.deadline(), None);
            // Later events change nothing.
            assert_eq!(g.on_event(ms(t0, 3000), &machine(3000)), Step::Wait);
        }
    }

    #[test]
    fn a_machine_under_hang_up_is_hung_up_on_at_once() {
        let t0 = Instant::now();
        let mut g = Gate::new(&check(MachinePolicy::HangUp, Some("ignored")), t0);
        assert_eq!(g.on_event(ms(t0, 3200), &machine(3200)), Step::HangUp);
        let o = g.outcome().unwrap();
        assert!(o.machine && !o.message_left, "{o:?}");
        assert!(g.is_done());
    }

    #[test]
    fn leave_message_waits_for_the_beep_then_plays_and_hangs_up() {
        let t0 = Instant::now();
        let mut g = Gate::new(&check(MachinePolicy::LeaveMessage, Some("Call Acme.")), t0);
        assert_eq!(g.on_event(ms(t0, 3000), &machine(3000)), Step::Wait);
        // Waiting for the beep, up to beep_wait_ms (+ slack) after the verdict.
        assert_eq!(g.deadline(), Some(ms(t0, 3000 + 30_000 + 1000)));
        assert_eq!(g.on_timeout(ms(t0, 10_000)), Step::Wait);
        assert_eq!(
            g.on_event(ms(t0, 12_000), &beep(11_600)),
            Step::PlayMessage("Call Acme.".into())
        );
        assert!(g.is_playing());
        assert!(!g.outcome().unwrap().message_left);
        assert_eq!(g.deadline(), None);
        assert_eq!(g.message_played(), Step::HangUp);
        let o = g.outcome().unwrap();
        assert!(o.machine && o.message_left, "{o:?}");
        assert!(o.note.contains("after the beep"), "{o:?}");
    }

    #[test]
    fn no_beep_plays_the_message_on_the_detector_s_word_or_at_the_deadline() {
        let t0 = Instant::now();
        let c = check(MachinePolicy::LeaveMessage, Some("m"));
        let mut g = Gate::new(&c, t0);
        g.on_event(ms(t0, 3000), &machine(3000));
        assert_eq!(
            g.on_event(
                ms(t0, 8000),
                &AmdEvent::NoBeep {
                    at: Duration::from_millis(8000)
                }
            ),
            Step::PlayMessage("m".into())
        );

        // The audio stopped after the verdict: the gate's own deadline.
        let mut g = Gate::new(&c, t0);
        g.on_event(ms(t0, 3000), &machine(3000));
        assert_eq!(g.on_timeout(ms(t0, 34_000)), Step::PlayMessage("m".into()));
        assert!(g.outcome().unwrap().note.contains("no beep"));
    }

    #[test]
    fn no_audio_at_all_is_a_person_after_the_limit() {
        let t0 = Instant::now();
        let mut g = Gate::new(&check(MachinePolicy::HangUp, None), t0);
        assert_eq!(g.deadline(), Some(ms(t0, 4000 + 1000)));
        assert_eq!(g.on_timeout(ms(t0, 4999)), Step::Wait);
        assert_eq!(g.on_timeout(ms(t0, 5000)), Step::RunScript);
        assert!(!g.outcome().unwrap().machine);
    }

    #[test]
    fn a_beep_first_is_a_machine_and_its_beep() {
        let t0 = Instant::now();
        let mut g = Gate::new(&check(MachinePolicy::LeaveMessage, Some("m")), t0);
        assert_eq!(
            g.on_event(ms(t0, 900), &beep(500)),
            Step::PlayMessage("m".into())
        );
        let mut g = Gate::new(&check(MachinePolicy::HangUp, None), t0);
        assert_eq!(g.on_event(ms(t0, 900), &beep(500)), Step::HangUp);
    }

    #[test]
    fn leave_message_without_a_message_hangs_up_and_a_failed_message_is_not_left() {
        let t0 = Instant::now();
        let mut g = Gate::new(&check(MachinePolicy::LeaveMessage, Some("  ")), t0);
        assert_eq!(g.on_event(ms(t0, 3000), &machine(3000)), Step::HangUp);

        let mut g = Gate::new(&check(MachinePolicy::LeaveMessage, Some("m")), t0);
        g.on_event(ms(t0, 3000), &machine(3000));
        g.on_event(ms(t0, 4000), &beep(3600));
        assert_eq!(g.message_failed(), Step::HangUp);
        let o = g.outcome().unwrap();
        assert!(o.machine && !o.message_left, "{o:?}");
    }
}
