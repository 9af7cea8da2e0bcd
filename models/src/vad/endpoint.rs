//! Endpointing: from VAD scores to "speech started", "barge-in",
//! "utterance complete" and "no input", with configurable start-of-speech,
//! end-of-speech silence, maximum utterance length and pre-roll.
//!
//! Sans-IO in the str0m style: [`Endpointer::push`] takes audio (time is the
//! number of samples seen), then [`Endpointer::poll_event`] is drained until
//! it returns `None`.

use std::collections::VecDeque;

use super::{Vad, BLOCK_MS};
use crate::ModelError;

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
    /// Speech needed while a prompt plays before barge-in is raised.
    pub barge_in_ms: u32,
    /// No speech start within this long after [`Endpointer::reset`] →
    /// [`EndpointEvent::NoInput`]; `None`: never.
    pub no_input_ms: Option<u32>,
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
            barge_in_ms: 192,
            no_input_ms: None,
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
    /// The caller has spoken `barge_in_ms` over a playing prompt: stop it.
    BargeIn { at_ms: u64 },
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
}

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

    /// Changes the silence that ends an utterance, from the next block on
    /// (a menu answer can end sooner than free speech).
    pub fn set_end_silence_ms(&mut self, ms: u32) {
        self.cfg.end_silence_ms = ms.max(BLOCK_MS);
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
        for &score in &scores {
            self.scored_blocks += 1;
            self.on_block(score);
            if self.state == State::Done {
                break;
            }
        }
        self.scores = scores;
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
                } else {
                    self.voiced_run_ms = 0;
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
                } else {
                    self.silent_run_ms += BLOCK_MS;
                }
                if self.prompt_playing
                    && !self.barge_in_sent
                    && now - self.speech_start_ms >= u64::from(self.cfg.barge_in_ms)
                    && self.silent_run_ms == 0
                {
                    self.barge_in_sent = true;
                    self.events.push_back(EndpointEvent::BargeIn { at_ms: now });
                }
                if self.silent_run_ms >= self.cfg.end_silence_ms {
                    self.end_utterance(now, EndReason::Silence);
                } else if now - self.speech_start_ms >= u64::from(self.cfg.max_utterance_ms) {
                    self.end_utterance(now, EndReason::MaxLength);
                }
            }
            State::Done => {}
        }
    }

    fn start_speech(&mut self, start_ms: u64) {
        self.state = State::Speaking;
        self.speech_start_ms = start_ms;
        self.silent_run_ms = 0;
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
        if reason == EndReason::Silence {
            // Keep 100 ms of the trailing silence.
            let trailing = self.silent_run_ms.saturating_sub(100);
            let cut = self.ms_to_samples(trailing)
                + (self.seen - now_ms * u64::from(self.cfg.sample_rate) / 1000) as usize;
            audio.truncate(audio.len().saturating_sub(cut));
        }
        self.events.push_back(EndpointEvent::Utterance {
            audio,
            start_ms: self.speech_start_ms,
            end_ms,
            reason,
        });
        self.state = State::Done;
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
