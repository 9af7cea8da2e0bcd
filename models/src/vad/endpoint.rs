//! Endpointing: from VAD scores to "speech started", "barge-in",
//! "utterance complete" and "no input", with configurable start-of-speech,
//! end-of-speech silence, maximum utterance length and pre-roll.
//!
//! Barge-in is decided here, and real lines make it hard: the VAD also
//! fires on breathing, coughs, clicks, in-band DTMF and the bot's own prompt
//! echoed back. While a prompt plays, a block of sound only counts towards
//! barge-in when it is voiced speech: VAD above the threshold, periodic at
//! a speech pitch and not a tone ([`super::voicing`]), and not our own
//! echo: the engine compares the caller's audio with what it sent (the
//! media crate's echo detector) and says so with [`Endpointer::set_echo`]. The prompt stops once `barge_in_ms` of such
//! blocks were heard in one utterance. Sound over a prompt that never gets
//! there is dropped as [`EndpointEvent::NotSpeech`] rather than delivered
//! as an utterance, so a cough does not answer the question either.
//!
//! For turns that end sooner, a silence of `pause_ms` within an utterance
//! raises [`EndpointEvent::Paused`] with the speech so far (the engine may
//! recognise it early), and speech after it [`EndpointEvent::Resumed`].
//!
//! Sans-IO in the str0m style: [`Endpointer::push`] takes audio (time is the
//! number of samples seen), then [`Endpointer::poll_event`] is drained until
//! it returns `None`.

use std::collections::VecDeque;

use super::{voicing, Vad, BLOCK_MS};
use crate::ModelError;

/// Audio judged by the voicing checks per block: 32 ms at 8 kHz (two
/// periods of a low voice).
const VOICING_WINDOW: usize = 256;

/// Endpointing settings. Times are in milliseconds of audio.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointConfig {
    /// Input sample rate: 8000 (calls) or 16000.
    pub sample_rate: u32,
    /// VAD score at or above which a block counts as speech.
    pub threshold: f32,
    /// Once speaking, blocks at or above this still count as speech
    /// (hysteresis; ≤ `threshold`).
    pub continue_threshold: f32,
    /// Speech needed (consecutive) before an utterance starts.
    pub start_ms: u32,
    /// Silence after speech that ends the utterance.
    pub end_silence_ms: u32,
    /// Longest utterance; longer speech is cut and delivered.
    pub max_utterance_ms: u32,
    /// Audio kept from before the detected start (word onsets are quiet).
    pub pre_roll_ms: u32,
    /// Voiced speech (VAD, pitch, not a tone, not our echo) needed in one
    /// utterance while a prompt plays before barge-in is raised; a prompt
    /// may ask for another value ([`Endpointer::set_barge_in_ms`]).
    pub barge_in_ms: u32,
    /// Pitch periodicity (0–1) a block needs to count as voiced for
    /// barge-in ([`voicing::periodicity`]).
    pub barge_in_periodicity: f32,
    /// Share of energy in known tones (0–1) above which a block is a key or
    /// a line tone, not speech ([`voicing::tone_fraction`]).
    pub barge_in_max_tone: f32,
    /// No speech start within this long after [`Endpointer::reset`] →
    /// [`EndpointEvent::NoInput`]; `None`: never.
    pub no_input_ms: Option<u32>,
    /// Silence within an utterance after which [`EndpointEvent::Paused`]
    /// hands over the speech so far (for an early or speculative
    /// recognition); 0: no such event.
    pub pause_ms: u32,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        EndpointConfig {
            sample_rate: 8_000,
            threshold: 0.5,
            continue_threshold: 0.35,
            start_ms: 96,
            end_silence_ms: 500,
            max_utterance_ms: 15_000,
            pre_roll_ms: 250,
            barge_in_ms: 200,
            barge_in_periodicity: 0.5,
            barge_in_max_tone: 0.8,
            no_input_ms: None,
            pause_ms: 0,
        }
    }
}

/// Why an utterance ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// `end_silence_ms` of silence followed the speech.
    Silence,
    /// It reached `max_utterance_ms`.
    MaxLength,
    /// [`Endpointer::finish`] was called (the call or the prompt ended).
    Flushed,
}

/// What the endpointer noticed.
#[derive(Debug, Clone, PartialEq)]
pub enum EndpointEvent {
    /// The caller started speaking at `at_ms` (audio time since reset).
    SpeechStarted { at_ms: u64 },
    /// The caller has spoken `barge_in_ms` of voiced speech over a
    /// playing prompt: stop it.
    BargeIn { at_ms: u64 },
    /// Sound over a prompt that never qualified as barge-in (noise, a
    /// cough, a key, our own echo): no utterance is delivered for it.
    NotSpeech {
        start_ms: u64,
        end_ms: u64,
        /// Most voiced speech it had within the rule's window, in ms (less
        /// than `barge_in_ms`).
        voiced_ms: u32,
        /// Blocks of it that were our own echo, in ms.
        echo_ms: u32,
    },
    /// A complete utterance: its audio (input rate, pre-roll included,
    /// trailing silence trimmed to 100 ms) and when it started and ended.
    Utterance {
        audio: Vec<i16>,
        start_ms: u64,
        end_ms: u64,
        reason: EndReason,
    },
    /// `no_input_ms` passed without speech.
    NoInput { at_ms: u64 },
    /// `pause_ms` of silence within an utterance that is not over yet:
    /// the speech so far (as [`EndpointEvent::Utterance`] would give it,
    /// trailing silence trimmed to 100 ms). Once per pause.
    Paused {
        audio: Vec<i16>,
        start_ms: u64,
        end_ms: u64,
    },
    /// Speech went on after a [`EndpointEvent::Paused`]: what it carried
    /// is not the whole utterance.
    Resumed { at_ms: u64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Waiting,
    Speaking,
    Done,
}

/// The endpointer of one call.
#[derive(Debug)]
pub struct Endpointer {
    cfg: EndpointConfig,
    vad: Vad,
    scores: Vec<f32>,
    /// Recent audio not yet part of an utterance (pre-roll), bounded.
    history: VecDeque<i16>,
    /// The utterance so far.
    utterance: Vec<i16>,
    /// Samples of input seen since reset; samples already scored.
    seen: u64,
    scored_blocks: u64,
    state: State,
    voiced_run_ms: u32,
    silent_run_ms: u32,
    speech_start_ms: u64,
    prompt_playing: bool,
    barge_in_sent: bool,
    events: VecDeque<EndpointEvent>,
    /// Barge-in: the current prompt's rule, the recent input for the
    /// voicing checks (ends at `seen`), whether the caller's audio is our
    /// echo now, and what this utterance has had so far.
    barge_in_ms: u32,
    recent: VecDeque<i16>,
    echo_now: bool,
    turn: TurnVoicing,
    /// A `Paused` was sent for the current pause.
    paused_sent: bool,
}

/// What the current utterance has had, for the barge-in rule.
#[derive(Debug, Clone, Default)]
struct TurnVoicing {
    /// A prompt played during some of it.
    over_prompt: bool,
    /// When its recent voiced blocks ended (within the rule's window).
    voiced: VecDeque<u64>,
    /// Most voiced speech seen within one window, in ms.
    best_voiced_ms: u32,
    echo_ms: u32,
    /// Where the voiced speech that met the rule began.
    qualified_from: Option<u64>,
}

/// Voiced speech counts for barge-in within `barge_in_ms` + this much:
/// speech has its unvoiced consonants and pauses, but scattered blocks
/// (a prompt's echo where the detector was unsure, a noise that looked
/// voiced for a moment) never add up.
const BARGE_IN_SPREAD_MS: u64 = 300;

impl Endpointer {
    /// A new endpointer; fails on a sample rate the VAD cannot take or
    /// inconsistent settings.
    pub fn new(cfg: EndpointConfig) -> Result<Self, ModelError> {
        if cfg.continue_threshold > cfg.threshold || !(0.0..=1.0).contains(&cfg.threshold) {
            return Err(ModelError::Config(
                "endpoint: need 0 ≤ continue_threshold ≤ threshold ≤ 1".into(),
            ));
        }
        if cfg.end_silence_ms == 0 || cfg.max_utterance_ms < cfg.start_ms {
            return Err(ModelError::Config(
                "endpoint: end_silence_ms must be > 0 and max_utterance_ms ≥ start_ms".into(),
            ));
        }
        let vad = Vad::new(cfg.sample_rate)?;
        Ok(Endpointer {
            vad,
            scores: Vec::new(),
            history: VecDeque::new(),
            utterance: Vec::new(),
            seen: 0,
            scored_blocks: 0,
            state: State::Waiting,
            voiced_run_ms: 0,
            silent_run_ms: 0,
            speech_start_ms: 0,
            prompt_playing: false,
            barge_in_sent: false,
            events: VecDeque::new(),
            barge_in_ms: cfg.barge_in_ms,
            recent: VecDeque::with_capacity(2 * VOICING_WINDOW * 2),
            echo_now: false,
            turn: TurnVoicing::default(),
            paused_sent: false,
            cfg,
        })
    }

    /// The settings.
    pub fn config(&self) -> &EndpointConfig {
        &self.cfg
    }

    /// Tells the endpointer whether a prompt is playing (barge-in only
    /// happens then).
    pub fn set_prompt_playing(&mut self, playing: bool) {
        self.prompt_playing = playing;
        if !playing {
            self.barge_in_sent = false;
        }
    }

    /// The voiced speech the playing prompt needs before barge-in (`None`:
    /// the configured `barge_in_ms`).
    pub fn set_barge_in_ms(&mut self, ms: Option<u32>) {
        self.barge_in_ms = ms.unwrap_or(self.cfg.barge_in_ms);
    }

    /// Whether the audio pushed next is the echo of our own prompt (the
    /// engine's echo detector decides): echo never counts towards barge-in.
    pub fn set_echo(&mut self, echo: bool) {
        self.echo_now = echo;
    }

    /// Changes the silence that ends an utterance, from the next block on
    /// (a menu answer can end sooner than free speech).
    pub fn set_end_silence_ms(&mut self, ms: u32) {
        self.cfg.end_silence_ms = ms.max(BLOCK_MS);
    }

    /// Changes the pause that raises [`EndpointEvent::Paused`] (0: none).
    pub fn set_pause_ms(&mut self, ms: u32) {
        self.cfg.pause_ms = ms;
    }

    /// Starts listening for a new utterance: clears audio, timers and events
    /// (the VAD keeps its state: the line has not changed).
    pub fn reset(&mut self) {
        self.history.clear();
        self.utterance.clear();
        self.seen = 0;
        self.scored_blocks = 0;
        self.state = State::Waiting;
        self.voiced_run_ms = 0;
        self.silent_run_ms = 0;
        self.barge_in_sent = false;
        self.events.clear();
        self.recent.clear();
        self.turn = TurnVoicing::default();
        self.paused_sent = false;
        // Drop the VAD's partial block so block times stay aligned with `seen`.
        self.vad.pending.clear();
    }

    /// Audio time since the last reset, in ms.
    pub fn now_ms(&self) -> u64 {
        self.seen * 1000 / u64::from(self.cfg.sample_rate)
    }

    fn ms_to_samples(&self, ms: u32) -> usize {
        (u64::from(ms) * u64::from(self.cfg.sample_rate) / 1000) as usize
    }

    /// Feeds caller audio (any frame size) at the configured rate.
    pub fn push(&mut self, samples: &[i16]) {
        if self.state == State::Done {
            return;
        }
        let mut scores = std::mem::take(&mut self.scores);
        scores.clear();
        self.vad.push(samples, &mut scores);
        // Audio goes to the utterance while speaking, else to the pre-roll.
        match self.state {
            State::Speaking => self.utterance.extend_from_slice(samples),
            _ => {
                self.history.extend(samples.iter().copied());
                let keep = self.ms_to_samples(self.cfg.pre_roll_ms + 2 * self.cfg.start_ms + 64);
                while self.history.len() > keep {
                    self.history.pop_front();
                }
            }
        }
        self.seen += samples.len() as u64;
        let window = self.voicing_window();
        self.recent.extend(samples.iter().copied());
        while self.recent.len() > 2 * window {
            self.recent.pop_front();
        }
        for &score in &scores {
            self.scored_blocks += 1;
            self.on_block(score);
            if self.state == State::Done {
                break;
            }
        }
        self.scores = scores;
    }

    /// Input samples judged by the voicing checks (32 ms).
    fn voicing_window(&self) -> usize {
        VOICING_WINDOW * self.cfg.sample_rate as usize / 8_000
    }

    /// Whether the block that just ended (with VAD `score`) is voiced
    /// speech by the barge-in checks, echo aside.
    fn block_is_voiced(&self, score: f32) -> bool {
        if score < self.cfg.threshold {
            return false;
        }
        // The block ends `seen - block_end` samples before the newest input.
        let rate = u64::from(self.cfg.sample_rate);
        let block_end = self.block_end_ms() * rate / 1000;
        let behind = self.seen.saturating_sub(block_end) as usize;
        let window = self.voicing_window();
        if self.recent.len() < behind + window {
            return false;
        }
        let end = self.recent.len() - behind;
        let mut block: Vec<i16> = self.recent.range(end - window..end).copied().collect();
        if self.cfg.sample_rate == 16_000 {
            // The checks work at 8 kHz: average pairs (a crude low-pass).
            block = block
                .chunks_exact(2)
                .map(|p| ((i32::from(p[0]) + i32::from(p[1])) / 2) as i16)
                .collect();
        }
        voicing::tone_fraction(&block) < self.cfg.barge_in_max_tone
            && voicing::periodicity(&block) >= self.cfg.barge_in_periodicity
    }

    /// Counts the block for the barge-in rule; raises barge-in when the
    /// playing prompt's rule is met.
    fn judge_block(&mut self, now: u64, score: f32) {
        if self.prompt_playing {
            self.turn.over_prompt = true;
        }
        if !self.turn.over_prompt || self.turn.qualified_from.is_some() {
            // Nothing to decide (no prompt), or already decided.
            return;
        }
        if self.echo_now && score >= self.cfg.threshold {
            self.turn.echo_ms += BLOCK_MS;
        } else if self.block_is_voiced(score) {
            self.turn.voiced.push_back(now);
        }
        let window = u64::from(self.barge_in_ms) + BARGE_IN_SPREAD_MS;
        while self.turn.voiced.front().is_some_and(|&t| t + window <= now) {
            self.turn.voiced.pop_front();
        }
        let voiced_ms = self.turn.voiced.len() as u32 * BLOCK_MS;
        self.turn.best_voiced_ms = self.turn.best_voiced_ms.max(voiced_ms);
        if voiced_ms >= self.barge_in_ms {
            let first = self.turn.voiced.front().copied().unwrap_or(now);
            self.turn.qualified_from = Some(first.saturating_sub(u64::from(BLOCK_MS)));
        }
        if self.prompt_playing && !self.barge_in_sent && self.turn.qualified_from.is_some() {
            self.barge_in_sent = true;
            self.events.push_back(EndpointEvent::BargeIn { at_ms: now });
        }
    }

    fn block_end_ms(&self) -> u64 {
        self.scored_blocks * u64::from(BLOCK_MS)
    }

    fn on_block(&mut self, score: f32) {
        let now = self.block_end_ms();
        match self.state {
            State::Waiting => {
                if score >= self.cfg.threshold {
                    self.voiced_run_ms += BLOCK_MS;
                    self.judge_block(now, score);
                } else {
                    self.voiced_run_ms = 0;
                    // Those blocks did not start an utterance.
                    self.turn = TurnVoicing::default();
                }
                if self.voiced_run_ms >= self.cfg.start_ms {
                    let start = now.saturating_sub(u64::from(self.voiced_run_ms));
                    self.start_speech(start);
                } else if let Some(limit) = self.cfg.no_input_ms {
                    if now >= u64::from(limit) {
                        self.events.push_back(EndpointEvent::NoInput { at_ms: now });
                        self.state = State::Done;
                    }
                }
            }
            State::Speaking => {
                if score >= self.cfg.continue_threshold {
                    self.silent_run_ms = 0;
                    self.voiced_run_ms += BLOCK_MS;
                    if self.paused_sent {
                        self.paused_sent = false;
                        self.events.push_back(EndpointEvent::Resumed { at_ms: now });
                    }
                } else {
                    self.silent_run_ms += BLOCK_MS;
                }
                self.judge_block(now, score);
                if self.silent_run_ms >= self.cfg.end_silence_ms {
                    self.end_utterance(now, EndReason::Silence);
                } else if now - self.speech_start_ms >= u64::from(self.cfg.max_utterance_ms) {
                    self.end_utterance(now, EndReason::MaxLength);
                } else if self.cfg.pause_ms > 0
                    && !self.paused_sent
                    && self.silent_run_ms >= self.cfg.pause_ms
                    && !(self.turn.over_prompt && self.turn.qualified_from.is_none())
                {
                    // (Sound over a prompt that is not yet speech is not
                    // handed over: it may still turn out to be a cough.)
                    self.paused_sent = true;
                    let mut audio = self.utterance.clone();
                    audio.truncate(audio.len().saturating_sub(self.trailing_cut(now)));
                    self.events.push_back(EndpointEvent::Paused {
                        audio,
                        start_ms: self.speech_start_ms,
                        end_ms: now.saturating_sub(u64::from(self.silent_run_ms)),
                    });
                }
            }
            State::Done => {}
        }
    }

    fn start_speech(&mut self, start_ms: u64) {
        self.state = State::Speaking;
        // The blocks that started it were judged already (see `on_block`).
        self.turn.over_prompt |= self.prompt_playing;
        self.speech_start_ms = start_ms;
        self.silent_run_ms = 0;
        self.paused_sent = false;
        // The utterance begins pre_roll before the first voiced block; the
        // history holds audio up to `seen` (which may run ahead of the block
        // clock by less than one frame).
        let from_ms = start_ms.saturating_sub(u64::from(self.cfg.pre_roll_ms));
        let history_start = self.seen - self.history.len() as u64;
        let from = (from_ms * u64::from(self.cfg.sample_rate) / 1000).max(history_start);
        let skip = (from - history_start) as usize;
        self.utterance.clear();
        self.utterance.extend(self.history.iter().skip(skip));
        self.history.clear();
        self.events
            .push_back(EndpointEvent::SpeechStarted { at_ms: start_ms });
    }

    fn end_utterance(&mut self, now_ms: u64, reason: EndReason) {
        let mut audio = std::mem::take(&mut self.utterance);
        let end_ms = now_ms.saturating_sub(u64::from(self.silent_run_ms));
        let turn = std::mem::take(&mut self.turn);
        self.state = State::Done;
        if turn.over_prompt && turn.qualified_from.is_none() {
            self.events.push_back(EndpointEvent::NotSpeech {
                start_ms: self.speech_start_ms,
                end_ms,
                voiced_ms: turn.best_voiced_ms,
                echo_ms: turn.echo_ms,
            });
            return;
        }
        if let (true, Some(first)) = (turn.echo_ms > 0, turn.qualified_from) {
            // Our echo started this utterance: what the recogniser gets
            // starts at the caller's own speech (less pre-roll), not at the
            // echoed prompt.
            let from = first.saturating_sub(u64::from(self.cfg.pre_roll_ms) + 64);
            let begins = self
                .speech_start_ms
                .saturating_sub(u64::from(self.cfg.pre_roll_ms));
            if from > begins {
                let cut = self.ms_to_samples((from - begins) as u32).min(audio.len());
                audio.drain(..cut);
            }
        }
        if reason == EndReason::Silence {
            audio.truncate(audio.len().saturating_sub(self.trailing_cut(now_ms)));
        }
        self.events.push_back(EndpointEvent::Utterance {
            audio,
            start_ms: self.speech_start_ms,
            end_ms,
            reason,
        });
    }

    /// Samples to cut from the end of the utterance so that 100 ms of the
    /// trailing silence stay (the input may run ahead of the block clock
    /// at `now_ms` by less than one frame).
    fn trailing_cut(&self, now_ms: u64) -> usize {
        let trailing = self.silent_run_ms.saturating_sub(100);
        self.ms_to_samples(trailing)
            + (self.seen - now_ms * u64::from(self.cfg.sample_rate) / 1000) as usize
    }

    /// Ends a running utterance now (the caller hung up, or the engine
    /// stops listening); no-op when nobody is speaking.
    pub fn finish(&mut self) {
        if self.state == State::Speaking {
            let now = self.block_end_ms();
            self.end_utterance(now, EndReason::Flushed);
        }
    }

    /// Whether the caller is currently mid-utterance.
    pub fn is_speaking(&self) -> bool {
        self.state == State::Speaking
    }

    /// Whether this turn is over (utterance delivered or no input): call
    /// [`Self::reset`] to listen again.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<EndpointEvent> {
        self.events.pop_front()
    }
}
