//! The call core: everything one call decides, as a sans-IO state machine
//! in the style of `media::MediaCore` and str0m.
//!
//! Inputs are the leg's events, media and endpointer events, the results
//! of work the core asked for, the drain signal and `Timeout`; each comes
//! with the time it happened. Outputs are [`Command`]s for the shell and,
//! when there are none left, the next deadline. After every input the
//! shell drains [`CallCore::poll_output`] until it returns a timeout. The
//! core never reads a clock, never waits and never touches a socket, so a
//! test plays a whole call (ringing, prompts, barge-in, lookups that time
//! out, transfers, drains) in simulated time.
//!
//! One core serves every kind of call: what is particular to inbound SIP,
//! outbound campaign calls or browser calls lives in the leg behind the
//! shell. The parts: [`setup`] (offer, ringing, the caller lookup, the
//! answer, re-INVITEs), [`turns`] (the flow's actions: prompts, keys,
//! speech, lookups, tickets), [`transfer`] (REFER out and in).

mod io;
mod machine;
mod setup;
mod transfer;
mod turns;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::info;
use voxbridge_crm::model::Customer;
use voxbridge_dialog::interp::{CallRecord as ScriptRecord, Listen};
use voxbridge_media::Codec;

pub use io::{Command, Done, Input, LegEnd, LegInput, MediaInput, Output, PromptSource};
pub use machine::{MachineCheck, MachineOutcome};
pub use setup::media_params;

use crate::call::{EndReason, FlowStart};
use crate::call_log::CallActivity;
use crate::config::Config;
use crate::flow::{CallFlow, FlowEvent};
use crate::metrics::Metrics;
use crate::sdp::{Negotiated, SessionOrigin};
use crate::speech::understanding::Available;
use crate::turn_latency::{TurnClock, TurnLatency};

/// Builds the flow of a call once it is answered (and again when a
/// followed REFER moves it to a new party).
pub type NewFlow = Arc<dyn Fn(&FlowStart) -> Box<dyn CallFlow> + Send + Sync>;

/// What the recognisers loaded can do, and the silences they want: all the
/// core needs to decide whether and how a question is listened to.
#[derive(Debug, Clone, Copy)]
pub struct Ears {
    pub available: Available,
    /// End-of-speech silence for whisper questions.
    pub end_silence_ms: u32,
    /// End-of-speech silence for grammar questions.
    pub grammar_end_silence_ms: u32,
    /// Pauses that start an early recognition (grammar) or a speculative
    /// one (whisper); 0: off.
    pub grammar_early_end_ms: u32,
    pub whisper_speculate_ms: u32,
}

/// The facts a call starts with.
#[derive(Debug, Clone)]
pub struct CallStart {
    pub call_id: String,
    /// The From URI, unmasked.
    pub from: String,
    /// The caller's SDP offer.
    pub offer: Vec<u8>,
    /// When the call arrived.
    pub received: Instant,
    /// Whether its media must, may or must not be SRTP (`srtp_policy`).
    pub srtp: crate::sdp::SrtpPolicy,
}

/// Settings of the core, from the engine configuration.
pub struct CoreSettings {
    pub config: Arc<Config>,
    pub metrics: Arc<Metrics>,
    pub new_flow: NewFlow,
    /// Recognisers, when speech is on.
    pub ears: Option<Ears>,
    /// Whether a CRM is there to look the caller up.
    pub crm: bool,
    /// Screen the answered call for an answering machine before the
    /// script (calls we placed, when the campaign asks).
    pub machine: Option<MachineCheck>,
}

/// Longest a ticket may take before the script hears it failed (the
/// connectors bound their own requests below this).
const TICKET_TIMEOUT: Duration = Duration::from_secs(15);
/// Slack over a lookup's own budget before the core gives up on it.
const LOOKUP_SLACK: Duration = Duration::from_millis(250);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Negotiating, ringing, looking the caller up.
    Setup,
    /// The 200 OK is on its way and media starting.
    Answering,
    /// Media runs and the flow drives the call.
    Talking,
    /// The call is over; `Finished` was emitted.
    Over,
}

/// A lookup or ticket under way, which the script waits for.
#[derive(Debug)]
struct Work {
    id: u64,
    what: WorkKind,
    started: Instant,
    deadline: Instant,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum WorkKind {
    Lookup(String),
    Ticket,
}

/// Recognition of one utterance, for the question open when it ended.
#[derive(Debug)]
struct Recognition {
    id: u64,
    listen: Box<Listen>,
    generation: u64,
}

/// What the call produced, for its record and the CRM's call log.
#[derive(Debug, Default)]
pub struct CallOutcome {
    pub customer: Option<Customer>,
    pub dtmf: String,
    pub transfer_target: Option<String>,
    pub turns: Vec<TurnLatency>,
    pub script_record: Option<Box<ScriptRecord>>,
    pub activity: CallActivity,
    /// When the 200 OK was sent (simulated or real clock of the inputs).
    pub answered: Option<Instant>,
    /// How answering-machine screening ended, when the call was screened.
    pub machine: Option<MachineOutcome>,
}

/// One call's decisions; see the module doc.
pub struct CallCore {
    settings: CoreSettings,
    start: CallStart,
    phase: Phase,
    out: VecDeque<Command>,
    next_id: u64,
    origin: SessionOrigin,

    // Setup.
    negotiated: Option<Negotiated>,
    /// Our SRTP key, drawn once per call when SRTP may be used and kept
    /// across re-INVITEs (the send context's state then carries on).
    srtp_key: Option<voxbridge_media::SrtpKey>,
    port: Option<u16>,
    ring_until: Option<Instant>,
    /// The caller lookup is running; the answer waits until `answer_by`.
    looking_up: bool,
    answer_by: Option<Instant>,

    // Talking.
    flow: Option<Box<dyn CallFlow>>,
    queued: VecDeque<FlowEvent>,
    input_deadline: Option<Instant>,
    work: Option<Work>,
    /// The prompt being made, which plays when it is ready.
    prompt_pending: Option<u64>,
    /// From the moment the bot commits to a prompt until it ends: speech
    /// then is a barge-in, even before the first packet leaves.
    prompt_active: bool,
    /// Whether speech may stop the prompt in `prompt_active` (its
    /// `barge_in`); when it may not and no question is open, nobody
    /// listens and the endpointer stops.
    prompt_barge_in: bool,
    listen: Option<Box<Listen>>,
    /// Bumped whenever the open question changes, so a transcript that
    /// arrives after the caller moved on is dropped.
    listen_generation: u64,
    end_silence_ms: u32,
    /// The pause the open question recognises early at (0: none), its
    /// speculative recognition, and the pause (end of speech, silence so
    /// far) that recognition covers.
    pause_ms: u32,
    speculation: Option<crate::speech::early::Speculation>,
    paused: Option<(Instant, Duration)>,
    /// The utterance under way was answered at a pause: its end, should
    /// the endpointer deliver it before it heard of the cut, is not news.
    early_ended: bool,
    /// When the turn began waiting for a speculative recognition.
    waiting_since: Option<Instant>,
    recognition: Option<Recognition>,
    /// The playing prompt's barge-in rule: voiced speech needed, in ms (0:
    /// the engine's `speech.barge_in_ms`).
    barge_in_ms: u32,
    /// The endpointer state last told to the shell: listening, prompt
    /// active, end-of-speech silence, barge-in rule, pause.
    hearing_told: (bool, bool, u32, u32, u32),
    last_key_at: Option<Instant>,
    clock: TurnClock,
    transfer: Option<(crate::transfer::TransferTracker, Instant)>,
    /// The target of an incoming REFER being called.
    referred: Option<String>,
    last_transfer_failed: bool,
    /// Answering-machine screening under way: no script yet.
    screening: Option<machine::Screening>,
    /// The last intent recognised, for the agent screen pop.
    last_intent: Option<String>,
    outcome: CallOutcome,
}

impl CallCore {
    pub fn new(settings: CoreSettings, start: CallStart, origin_id: u64) -> CallCore {
        CallCore {
            settings,
            start,
            phase: Phase::Setup,
            out: VecDeque::new(),
            next_id: 0,
            origin: SessionOrigin::new(origin_id),
            negotiated: None,
            srtp_key: None,
            port: None,
            ring_until: None,
            looking_up: false,
            answer_by: None,
            flow: None,
            queued: VecDeque::new(),
            input_deadline: None,
            work: None,
            prompt_pending: None,
            prompt_active: false,
            prompt_barge_in: false,
            listen: None,
            listen_generation: 0,
            end_silence_ms: 0,
            pause_ms: 0,
            speculation: None,
            paused: None,
            early_ended: false,
            waiting_since: None,
            recognition: None,
            barge_in_ms: 0,
            hearing_told: (false, false, 0, 0, 0),
            last_key_at: None,
            clock: TurnClock::default(),
            transfer: None,
            referred: None,
            last_transfer_failed: false,
            screening: None,
            last_intent: None,
            outcome: CallOutcome::default(),
        }
    }

    /// The call's first input: read the offer and get ready to ring.
    pub fn begin(&mut self, now: Instant) {
        self.setup_begin(now);
    }

    /// Whether the call is over (`Finished` was emitted).
    pub fn is_over(&self) -> bool {
        self.phase == Phase::Over
    }

    /// Feed one input that happened at `now`.
    pub fn handle_input(&mut self, now: Instant, input: Input) {
        if self.phase == Phase::Over {
            return;
        }
        match input {
            Input::Timeout => self.on_timeout(now),
            Input::Drain => self.on_drain(),
            Input::Leg(ev) => self.on_leg(now, ev),
            Input::Media(ev) => self.on_media(now, ev),
            Input::Done(done) => self.on_done(now, done),
        }
        self.run_queued(now);
        self.sync_hearing();
    }

    /// The next command, or the next deadline when there is none.
    pub fn poll_output(&mut self) -> Output {
        match self.out.pop_front() {
            Some(c) => Output::Command(c),
            None => Output::Timeout(self.next_deadline()),
        }
    }

    /// What the call produced (call once it is over).
    pub fn take_outcome(&mut self) -> CallOutcome {
        std::mem::take(&mut self.outcome)
    }

    fn next_deadline(&self) -> Option<Instant> {
        if self.phase == Phase::Over {
            return None;
        }
        [
            self.ring_until,
            self.answer_by.filter(|_| self.looking_up),
            self.input_deadline,
            self.work.as_ref().map(|w| w.deadline),
            self.transfer.as_ref().map(|t| t.1),
            self.screening_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn push(&mut self, c: Command) {
        self.out.push_back(c);
    }

    fn transcript(&mut self, speaker: &'static str, text: impl Into<String>) {
        self.push(Command::Transcript {
            speaker,
            text: text.into(),
        });
    }

    fn config(&self) -> &Config {
        &self.settings.config
    }

    fn advertised_ip(&self) -> IpAddr {
        self.settings.config.advertised_ip()
    }

    fn preferences(&self) -> Vec<Codec> {
        self.config().sip.codecs.iter().map(|c| c.codec()).collect()
    }

    fn on_timeout(&mut self, now: Instant) {
        match self.phase {
            Phase::Setup => self.setup_timeout(now),
            Phase::Talking if self.screening() => self.screening_timeout(now),
            Phase::Talking => self.talking_timeout(now),
            Phase::Answering | Phase::Over => {}
        }
    }

    fn on_drain(&mut self) {
        match self.phase {
            Phase::Setup => {
                self.push(Command::Reject { code: 503 });
                self.finish(EndReason::Rejected);
            }
            Phase::Answering | Phase::Talking => {
                info!("drain timeout: hanging up");
                self.release(true, EndReason::BotHangup);
            }
            Phase::Over => {}
        }
    }

    fn on_leg(&mut self, now: Instant, ev: LegInput) {
        if let LegInput::Ended(end) = ev {
            let reason = match end {
                LegEnd::RemoteBye => EndReason::CallerHangup,
                LegEnd::Cancelled => EndReason::CallerCancel,
                LegEnd::LocalBye => EndReason::BotHangup,
                LegEnd::Rejected | LegEnd::Timeout | LegEnd::Other => EndReason::Error,
            };
            if self.phase == Phase::Setup {
                self.finish(reason);
            } else {
                self.release(false, reason);
            }
            return;
        }
        if self.phase != Phase::Talking {
            // Before the answer the leg itself refuses re-INVITEs and REFERs.
            return;
        }
        if self.screening() && matches!(ev, LegInput::Dtmf(_) | LegInput::Referred(_)) {
            // Nobody is talking to the callee yet: keys and REFERs wait
            // for the script (a REFER is refused).
            if matches!(ev, LegInput::Referred(_)) {
                self.push(Command::AnswerRefer(Err(603)));
            }
            return;
        }
        match ev {
            LegInput::Confirmed | LegInput::Ended(_) => {}
            LegInput::Dtmf(d) => self.key(now, d),
            LegInput::Offer(body) => self.reoffer(&body),
            LegInput::Referred(target) => self.referred(target),
            LegInput::ReferProgress { code, terminated } => self.refer_progress(code, terminated),
        }
    }

    fn on_media(&mut self, now: Instant, ev: MediaInput) {
        if self.phase != Phase::Talking {
            return;
        }
        if self.screening() {
            match ev {
                MediaInput::Machine(event) => self.screening_event(now, &event),
                MediaInput::PlaybackDone => self.screening_played(now),
                MediaInput::Inactive => {
                    tracing::warn!("no RTP from the callee; hanging up");
                    self.release(true, EndReason::RtpTimeout);
                }
                MediaInput::Stopped => {
                    tracing::warn!("media session ended unexpectedly");
                    self.release(true, EndReason::Error);
                }
                // Keys and speech wait for the script.
                _ => {}
            }
            return;
        }
        match ev {
            MediaInput::Machine(_) => {}
            MediaInput::Dtmf(d) => self.key(now, d),
            MediaInput::PlaybackStarted => self.playback_started(now),
            MediaInput::PlaybackDone => {
                self.prompt_active = false;
                self.queued.push_back(FlowEvent::PlaybackDone);
            }
            MediaInput::Inactive => {
                tracing::warn!("no RTP from the caller; hanging up");
                self.release(true, EndReason::RtpTimeout);
            }
            MediaInput::Stopped => {
                tracing::warn!("media session ended unexpectedly");
                self.release(true, EndReason::Error);
            }
            MediaInput::SpeechStarted => {
                // A new utterance: not the rest of one answered early.
                self.early_ended = false;
                // The caller is answering: no "I didn't hear you" while
                // they speak.
                if self.listen.is_some() {
                    self.input_deadline = None;
                }
            }
            MediaInput::BargeIn => self.queued.push_back(FlowEvent::BargeIn),
            MediaInput::Utterance {
                audio,
                ended_at,
                endpointing,
            } => self.utterance(now, audio, ended_at, endpointing),
            MediaInput::Paused {
                audio,
                ended_at,
                endpointing,
            } => self.paused(audio, ended_at, endpointing),
            MediaInput::Resumed => self.resumed(),
        }
    }

    fn on_done(&mut self, now: Instant, done: Done) {
        match done {
            Done::Port(result) => self.port_ready(now, result),
            Done::Customer(customer) => self.customer_found(now, customer),
            Done::Answered(result) => self.answered(now, result),
            Done::Prompt { id, prompt, took } => {
                if self.is_screening_prompt(id) {
                    self.screening_prompt(now, prompt);
                } else {
                    self.prompt_ready(id, prompt, took);
                }
            }
            Done::Recognised { id, result } => self.recognised(id, result),
            Done::Speculated {
                id,
                result,
                complete,
            } => self.speculated(now, id, result, complete),
            Done::Lookup { id, result, took } => self.lookup_done(id, result, took),
            Done::Ticket { id, result, took } => self.ticket_done(id, result, took),
            Done::ReferSent(result) => self.refer_sent(result),
            Done::ReferFollowed(result) => self.refer_followed(now, result),
        }
    }

    /// Hand queued events to the flow until it waits for something.
    fn run_queued(&mut self, now: Instant) {
        while self.phase == Phase::Talking {
            let Some(event) = self.queued.pop_front() else {
                break;
            };
            self.ask(now, event);
        }
    }

    /// Stop media, end the leg (BYE when `bye`), and finish.
    fn release(&mut self, bye: bool, reason: EndReason) {
        self.clock.abandon();
        self.push(Command::Hangup { bye });
        self.finish(reason);
    }

    /// The call is over: let the script write its record, then say so.
    fn finish(&mut self, mut reason: EndReason) {
        if self.phase == Phase::Over {
            return;
        }
        if self.outcome.script_record.is_none() {
            if let Some(flow) = self.flow.as_mut() {
                for action in flow.on_event(FlowEvent::CallerHungUp) {
                    if let crate::flow::FlowAction::Record(r) = action {
                        self.outcome.script_record = Some(r);
                    }
                }
            }
        }
        if self.last_transfer_failed
            && matches!(reason, EndReason::CallerHangup | EndReason::BotHangup)
        {
            reason = EndReason::TransferFailed;
        }
        self.phase = Phase::Over;
        self.queued.clear();
        self.push(Command::Finished(reason));
    }

    /// Whether anyone wants the caller's speech now: an open question, or
    /// a prompt speech may barge into (from the moment the bot commits to
    /// it). Otherwise the endpointer does not run: a keys-only menu read
    /// with barge-in off costs no VAD and holds no audio.
    fn listening(&self) -> bool {
        self.listen.is_some() || (self.prompt_active && self.prompt_barge_in)
    }

    /// Tell the shell when the endpointer's view of the call changed.
    fn sync_hearing(&mut self) {
        let want = (
            self.listening(),
            self.prompt_active,
            self.end_silence_ms,
            self.barge_in_ms,
            self.pause_ms,
        );
        if want != self.hearing_told && self.phase == Phase::Talking {
            self.hearing_told = want;
            self.push(Command::Hearing {
                listening: want.0,
                prompt_active: want.1,
                end_silence_ms: want.2,
                barge_in_ms: want.3,
                pause_ms: want.4,
            });
        }
    }
}
