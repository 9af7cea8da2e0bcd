//! The answered call's turns: what the flow asks for (prompts, questions,
//! lookups, tickets, the end), the caller's keys and speech, and the turn
//! latency of each reply.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tracing::{debug, info, warn};
use voxbridge_dialog::interp::Heard;
use voxbridge_dialog::value::Value;
use voxbridge_media::Prompt;

use super::{CallCore, Command, PromptSource, Recognition, Work, WorkKind};
use super::{LOOKUP_SLACK, TICKET_TIMEOUT};
use crate::call::EndReason;
use crate::flow::{FlowAction, FlowEvent};
use crate::speech::early::{Mode, OnResult, OnUtterance, Speculation};
use crate::speech::understanding::{choose_engine, EngineChoice};
use crate::speech::{SpeechError, Understood};
use crate::turn_latency::{Stage, TurnKind};

/// A prompt's barge-in rule for the endpointer: 0 is the engine's default.
fn min_speech_ms(min_speech: Option<Duration>) -> u32 {
    min_speech.map_or(0, |d| {
        u32::try_from(d.as_millis()).unwrap_or(u32::MAX).max(1)
    })
}

impl CallCore {
    /// The flow's answer to `event`, carried out.
    pub(super) fn ask(&mut self, now: Instant, event: FlowEvent) {
        if matches!(event, FlowEvent::Digit(_)) {
            self.input_deadline = None;
        }
        let Some(flow) = self.flow.as_mut() else {
            return;
        };
        // Measured, not decided on: the dialog's share of the turn.
        let t = std::time::Instant::now();
        let actions = flow.on_event(event);
        self.clock.add(Stage::Dialog, t.elapsed());
        for action in actions {
            if self.is_over() {
                break;
            }
            self.act(now, action);
        }
    }

    fn act(&mut self, now: Instant, action: FlowAction) {
        match action {
            FlowAction::Play(prompt) => {
                // The built-in flow's prompts: keys stop them, speech does not.
                self.prompt_active = true;
                self.prompt_barge_in = false;
                self.push(Command::Play(prompt));
            }
            FlowAction::StopPlayback => {
                // A prompt still being made is not played either.
                self.prompt_pending = None;
                self.prompt_active = false;
                self.push(Command::StopPlayback);
                self.settings
                    .metrics
                    .barge_ins
                    .fetch_add(1, Ordering::Relaxed);
            }
            FlowAction::AwaitInput(d) => self.input_deadline = Some(now + d),
            FlowAction::DigitsCollected(digits) => self.digits_collected(now, digits),
            FlowAction::Say {
                text,
                language,
                voice,
                barge_in,
                min_speech,
            } => {
                self.barge_in_ms = min_speech_ms(min_speech);
                self.transcript("bot", text.clone());
                let source = PromptSource::Speak {
                    text,
                    language,
                    voice,
                };
                self.prepare(source, barge_in);
            }
            FlowAction::PlayFile {
                path,
                barge_in,
                min_speech,
            } => {
                self.barge_in_ms = min_speech_ms(min_speech);
                self.prepare(PromptSource::File(path), barge_in)
            }
            FlowAction::Lookup(request) => {
                let id = self.next_id();
                self.work = Some(Work {
                    id,
                    what: WorkKind::Lookup(request.name.clone()),
                    started: now,
                    deadline: now + request.timeout + LOOKUP_SLACK,
                });
                self.push(Command::Lookup { id, request });
            }
            FlowAction::Ticket(request) => {
                let id = self.next_id();
                self.work = Some(Work {
                    id,
                    what: WorkKind::Ticket,
                    started: now,
                    deadline: now + TICKET_TIMEOUT,
                });
                let customer = self.outcome.customer.clone().map(Box::new);
                self.push(Command::Ticket {
                    id,
                    request,
                    customer,
                });
            }
            FlowAction::Listen(listen) => self.open_question(listen),
            FlowAction::Record(record) => self.outcome.script_record = Some(record),
            FlowAction::Transfer { target, context } => self.transfer(now, &target, context),
            FlowAction::Hangup => self.release(true, EndReason::BotHangup),
        }
    }

    /// Make a prompt; it plays when ready. From now on the caller's speech
    /// counts as speaking over it, so nothing said before the first packet
    /// is lost (and, when speech may barge in, the endpointer listens).
    fn prepare(&mut self, source: PromptSource, barge_in: bool) {
        let id = self.next_id();
        self.prompt_pending = Some(id);
        self.prompt_active = true;
        self.prompt_barge_in = barge_in;
        self.push(Command::PreparePrompt { id, source });
    }

    pub(super) fn prompt_ready(&mut self, id: u64, prompt: Option<Prompt>, took: Duration) {
        if self.prompt_pending != Some(id) {
            // Barged into (or replaced) before it was ready.
            return;
        }
        self.prompt_pending = None;
        self.clock.add(Stage::Tts, took);
        match prompt {
            Some(p) => self.push(Command::Play(p)),
            None => {
                self.prompt_active = false;
                self.queued.push_back(FlowEvent::PlaybackDone);
            }
        }
    }

    pub(super) fn playback_started(&mut self, now: Instant) {
        if let Some(turn) = self.clock.reply_started(now) {
            debug!(
                input = turn.kind.label(),
                total_ms = turn.total_ms,
                asr_ms = turn.asr_ms,
                tts_ms = turn.tts_ms,
                lookup_ms = turn.lookup_ms,
                "turn latency"
            );
            self.settings.metrics.turn(&turn);
            self.outcome.turns.push(turn);
        }
    }

    pub(super) fn key(&mut self, now: Instant, d: char) {
        self.settings
            .metrics
            .dtmf_digits
            .fetch_add(1, Ordering::Relaxed);
        self.last_key_at = Some(now);
        self.queued.push_back(FlowEvent::Digit(d));
    }

    fn digits_collected(&mut self, now: Instant, digits: String) {
        info!(call_id = %self.start.call_id, digits = %digits, "digits collected");
        let keyed = self.last_key_at.unwrap_or(now);
        self.clock.open(TurnKind::Dtmf, keyed);
        // Entry that ended by the inter-digit timeout waited for more
        // keys: that wait is keypad endpointing.
        self.clock
            .add(Stage::Endpointing, now.saturating_duration_since(keyed));
        self.close_question();
        self.transcript("caller", format!("[keys] {digits}"));
        self.outcome.dtmf.push_str(&digits);
        // The caller moved on after a failed transfer.
        self.last_transfer_failed = false;
    }

    fn open_question(&mut self, listen: Box<voxbridge_dialog::interp::Listen>) {
        let Some(ears) = self.settings.ears else {
            debug!("no recogniser loaded; keys only");
            return;
        };
        match choose_engine(&listen, ears.available) {
            EngineChoice::None => {
                debug!(
                    language = listen.language.code(),
                    "no recogniser for this question; keys only"
                );
            }
            EngineChoice::Grammar => {
                self.end_silence_ms = ears.grammar_end_silence_ms;
                self.listen = Some(listen);
                self.listen_generation += 1;
                self.speculate_at(
                    ears.grammar_early_end_ms,
                    ears.grammar_end_silence_ms,
                    Mode::EndOnComplete,
                );
            }
            EngineChoice::Whisper => {
                self.end_silence_ms = ears.end_silence_ms;
                self.listen = Some(listen);
                self.listen_generation += 1;
                self.speculate_at(
                    ears.whisper_speculate_ms,
                    ears.end_silence_ms,
                    Mode::KeepForEnd,
                );
            }
        }
    }

    /// The open question recognises early at a pause of `pause_ms`, when
    /// that is on and shorter than its end-of-speech silence.
    fn speculate_at(&mut self, pause_ms: u32, end_silence_ms: u32, mode: Mode) {
        let on = pause_ms > 0 && pause_ms < end_silence_ms;
        self.pause_ms = if on { pause_ms } else { 0 };
        self.speculation = on.then(|| Speculation::new(mode));
        self.paused = None;
    }

    pub(super) fn close_question(&mut self) {
        self.listen = None;
        self.listen_generation += 1;
        self.end_silence_ms = 0;
        self.pause_ms = 0;
        self.speculation = None;
        self.paused = None;
    }

    /// A pause in the caller's speech: recognise what they said so far
    /// (at most one such recognition at a time).
    pub(super) fn paused(&mut self, audio: Vec<i16>, ended_at: Instant, endpointing: Duration) {
        let Some(listen) = self.listen.clone() else {
            return;
        };
        if !self.speculation.as_mut().is_some_and(|s| s.on_pause()) {
            return;
        }
        let id = self.next_id();
        if let Some(s) = self.speculation.as_mut() {
            s.started(id);
        }
        self.paused = Some((ended_at, endpointing));
        debug!(
            audio_ms = audio.len() / 8,
            silence_ms = endpointing.as_millis() as u64,
            "a pause: recognising the speech so far"
        );
        self.push(Command::Speculate { id, listen, audio });
    }

    /// The caller went on after a pause.
    pub(super) fn resumed(&mut self) {
        self.early_ended = false;
        if let Some(s) = self.speculation.as_mut() {
            s.on_resume();
        }
        self.paused = None;
    }

    /// What a recognition started at a pause is worth (`speech::early`).
    pub(super) fn speculated(
        &mut self,
        now: Instant,
        id: u64,
        result: Result<Understood, SpeechError>,
        complete: bool,
    ) {
        let Some(s) = self.speculation.as_mut() else {
            return;
        };
        let asr_ms = result.as_ref().map(|u| u.asr.as_millis() as u64).ok();
        let outcome = s.on_result(id, result, complete);
        debug!(
            ?asr_ms,
            complete,
            outcome = match &outcome {
                OnResult::Dropped => "dropped",
                OnResult::Kept => "kept",
                OnResult::EndTurn(_) => "ends the turn",
                OnResult::Recognised(_) => "the turn waited for it",
            },
            "recognition at a pause done"
        );
        match outcome {
            OnResult::Dropped | OnResult::Kept => {}
            OnResult::EndTurn(result) => self.end_turn_early(now, result),
            OnResult::Recognised(mut result) => {
                // The turn waited for it from the end of the utterance on.
                if let (Ok(u), Some(since)) = (&mut result, self.waiting_since.take()) {
                    u.asr = now.saturating_duration_since(since);
                }
                self.recognised(id, result);
            }
        }
    }

    /// A complete grammar answer at a pause: the turn ends now, timed from
    /// the end of the caller's speech; the endpointer drops the rest of
    /// the utterance (its trailing silence).
    fn end_turn_early(&mut self, now: Instant, result: Result<Understood, SpeechError>) {
        let Some(listen) = self.listen.take() else {
            return;
        };
        let (ended_at, endpointing) = self.paused.take().unwrap_or((now, Duration::ZERO));
        self.end_silence_ms = 0;
        self.pause_ms = 0;
        self.speculation = None;
        self.early_ended = true;
        self.clock.open(TurnKind::Speech, ended_at);
        self.clock.add(Stage::Endpointing, endpointing);
        self.settings
            .metrics
            .asr_early_ends
            .fetch_add(1, Ordering::Relaxed);
        let id = self.next_id();
        self.recognition = Some(Recognition {
            id,
            listen,
            generation: self.listen_generation,
        });
        self.push(Command::CutUtterance);
        self.recognised(id, result);
    }

    pub(super) fn talking_timeout(&mut self, now: Instant) {
        if self.input_deadline.is_some_and(|t| now >= t) {
            self.input_deadline = None;
            self.close_question();
            self.queued.push_back(FlowEvent::InputTimeout);
        }
        if self.work.as_ref().is_some_and(|w| now >= w.deadline) {
            if let Some(work) = self.work.take() {
                let why = "timed out".to_string();
                match work.what {
                    WorkKind::Lookup(name) => {
                        let took = now.saturating_duration_since(work.started);
                        self.lookup_outcome(&name, Err(why), took);
                    }
                    WorkKind::Ticket => self.queued.push_back(FlowEvent::TicketFailed(why)),
                }
            }
        }
        if self.transfer.as_ref().is_some_and(|t| now >= t.1) {
            self.transfer_timed_out();
        }
    }

    pub(super) fn lookup_done(&mut self, id: u64, result: Result<Value, String>, took: Duration) {
        let Some(Work {
            what: WorkKind::Lookup(name),
            ..
        }) = self.work.take_if(|w| w.id == id)
        else {
            debug!("lookup answered after its deadline; dropped");
            return;
        };
        self.lookup_outcome(&name, result, took);
    }

    fn lookup_outcome(&mut self, name: &str, result: Result<Value, String>, took: Duration) {
        self.clock.add(Stage::Lookup, took);
        let outcome = match &result {
            Ok(v) if v.is_null() => "not found".to_string(),
            Ok(_) => "found".to_string(),
            Err(why) => format!("failed: {why}"),
        };
        let line = format!("{name}: {outcome} ({} ms)", took.as_millis());
        self.transcript("system", format!("lookup {line}"));
        self.outcome.activity.lookups.push(line);
        self.queued.push_back(match result {
            Ok(v) => FlowEvent::LookupDone(v),
            Err(why) => FlowEvent::LookupFailed(why),
        });
    }

    pub(super) fn ticket_done(&mut self, id: u64, result: Result<String, String>, took: Duration) {
        if self.work.take_if(|w| w.id == id).is_none() {
            debug!("ticket answered after its deadline; dropped");
            return;
        }
        self.clock.add(Stage::Lookup, took);
        let event = match result {
            Ok(id) => {
                self.outcome.activity.tickets.push(id.clone());
                self.transcript("system", format!("ticket {id} created"));
                FlowEvent::TicketCreated(id)
            }
            Err(why) => FlowEvent::TicketFailed(why),
        };
        self.queued.push_back(event);
    }

    /// A whole utterance: recognise it for the open question, off the call.
    pub(super) fn utterance(
        &mut self,
        now: Instant,
        audio: Vec<i16>,
        ended_at: Instant,
        endpointing: Duration,
    ) {
        if std::mem::take(&mut self.early_ended) {
            // The rest of an answer whose turn ended at a pause, delivered
            // before the endpointer heard of the cut: already answered.
            debug!("the end of an utterance answered early; ignored");
            return;
        }
        if self.listen.is_none() && self.prompt_active {
            // Speech too short to barge in, over a prompt that leads to a
            // question: it answers the question all the same.
            self.ask(now, FlowEvent::BargeIn);
        }
        self.end_silence_ms = 0;
        self.pause_ms = 0;
        let Some(listen) = self.listen.take() else {
            debug!("speech while no question is open; ignored");
            return;
        };
        self.clock.open(TurnKind::Speech, ended_at);
        self.clock.add(Stage::Endpointing, endpointing);
        let generation = self.listen_generation;
        match self.speculation.as_mut().map(|s| s.on_utterance()) {
            Some(OnUtterance::Use(mut result)) => {
                // Recognised while the endpointer waited: no ASR wait.
                if let Ok(u) = &mut result {
                    u.asr = Duration::ZERO;
                }
                self.settings
                    .metrics
                    .asr_speculation_used
                    .fetch_add(1, Ordering::Relaxed);
                let id = self.next_id();
                self.recognition = Some(Recognition {
                    id,
                    listen,
                    generation,
                });
                self.recognised(id, result);
            }
            Some(OnUtterance::Wait) => {
                // The speculative recognition has exactly this audio.
                let id = self.speculation.as_ref().and_then(Speculation::in_flight);
                if let Some(id) = id {
                    self.settings
                        .metrics
                        .asr_speculation_used
                        .fetch_add(1, Ordering::Relaxed);
                    self.waiting_since = Some(now);
                    self.recognition = Some(Recognition {
                        id,
                        listen,
                        generation,
                    });
                }
            }
            Some(OnUtterance::Recognise) | None => {
                let id = self.next_id();
                self.recognition = Some(Recognition {
                    id,
                    listen: listen.clone(),
                    generation,
                });
                self.push(Command::Recognise { id, listen, audio });
            }
        }
    }

    pub(super) fn recognised(&mut self, id: u64, result: Result<Understood, SpeechError>) {
        let Some(r) = self.recognition.take_if(|r| r.id == id) else {
            return;
        };
        if r.generation != self.listen_generation {
            debug!("transcript for a question no longer open; dropped");
            return;
        }
        let metrics = &self.settings.metrics;
        let heard = match result {
            Ok(u) => {
                self.clock.add(Stage::Asr, u.asr);
                self.clock.add(Stage::Intent, u.intent);
                let counter = if u.heard.text.trim().is_empty() {
                    &metrics.asr_no_match
                } else {
                    &metrics.asr_recognised
                };
                counter.fetch_add(1, Ordering::Relaxed);
                // The words are personal data: they go to the transcript,
                // not the log.
                info!(
                    engine = u.engine,
                    words = u.heard.text.split_whitespace().count(),
                    intent = u.heard.intent.as_deref().unwrap_or("-"),
                    confidence = u.heard.confidence,
                    asr_ms = u.asr.as_millis() as u64,
                    "heard"
                );
                u.heard
            }
            Err(SpeechError::NoEngine) => {
                self.listen = Some(r.listen);
                self.clock.abandon();
                return;
            }
            Err(SpeechError::Busy(e)) => {
                metrics.asr_busy.fetch_add(1, Ordering::Relaxed);
                warn!(error = %e, "recogniser busy; the caller hears the no-match prompt");
                Heard::default()
            }
            Err(SpeechError::Failed(e)) => {
                metrics.asr_failed.fetch_add(1, Ordering::Relaxed);
                warn!(error = %e, "recognition failed; the caller hears the no-match prompt");
                Heard::default()
            }
        };
        let line = if heard.text.trim().is_empty() {
            "[not understood]".to_string()
        } else {
            heard.text.clone()
        };
        self.transcript("caller", line);
        if heard.intent.is_some() {
            self.last_intent = heard.intent.clone();
        }
        self.queued.push_back(FlowEvent::Heard(heard));
    }
}
