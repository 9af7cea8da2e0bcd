//! Speech recognition behind one trait, [`SpeechRecognizer`], chosen per
//! prompt by the dialog: [`whisper`] (free speech, en and zh, a ggml model
//! file) or [`sphinx`] (PocketSphinx with a JSGF grammar generated per
//! prompt from the expected phrases and slot types: yes/no, menu choices,
//! short digit strings).
//!
//! Both run as a fixed pool of worker threads fed by a bounded queue
//! ([`pool`]): a worker owns the expensive per-thread state (a whisper
//! state, a PocketSphinx decoder), the queue bounds waiting, and a full
//! queue answers [`AsrError::Busy`] at once so the call can play a fallback
//! instead of waiting.

pub mod cleanup;
pub mod ggml;
pub mod grammar;
// Without a recogniser feature nothing starts a pool (its tests still run).
#[cfg_attr(not(any(feature = "whisper", feature = "sphinx")), allow(dead_code))]
pub mod pool;
pub mod sphinx;
pub mod whisper;

use std::sync::Arc;
use std::time::Duration;

pub use grammar::{Grammar, GrammarSpec, SlotGrammar};
pub use pool::{PoolConfig, PoolStats, Ticket};

use crate::Language;

/// One endpointed utterance to recognise.
#[derive(Debug, Clone)]
pub struct AsrRequest {
    /// Mono 16-bit samples.
    pub audio: Vec<i16>,
    /// Their rate (8000 for call audio, or 16000).
    pub sample_rate: u32,
    /// The language the prompt was asked in.
    pub language: Language,
    /// The prompt's grammar (required by grammar engines, ignored by whisper).
    pub grammar: Option<Arc<Grammar>>,
}

/// What an engine heard.
#[derive(Debug, Clone, PartialEq)]
pub struct Transcript {
    /// The text; empty when nothing matched (a no-match).
    pub text: String,
    /// Which engine produced it (`whisper`, `pocketsphinx`).
    pub engine: &'static str,
    /// For grammar engines: the tag of the matched grammar alternative
    /// (an intent name, `yes`, `no`, `digits`, `number`).
    pub tag: Option<String>,
    /// Engine confidence in 0–1 when it has one.
    pub confidence: Option<f32>,
    /// Length of the audio.
    pub audio: Duration,
    /// Time spent waiting in the queue.
    pub queued: Duration,
    /// Time the worker spent on it.
    pub processing: Duration,
}

impl Transcript {
    /// Whether nothing was recognised.
    pub fn is_empty(&self) -> bool {
        self.text.trim().is_empty()
    }
}

/// Why recognition gave no transcript.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AsrError {
    /// The queue is full: every worker is busy and `queue` requests wait.
    #[error("{engine}: all workers busy and {queue} requests queued")]
    Busy { engine: &'static str, queue: usize },
    /// The request waited or ran longer than allowed.
    #[error("{engine}: no result within {waited:?}")]
    Timeout {
        engine: &'static str,
        waited: Duration,
    },
    /// A grammar engine was asked without a grammar.
    #[error("{0}: this engine needs a grammar for the prompt")]
    GrammarRequired(&'static str),
    /// The engine cannot do this language.
    #[error("{engine}: language {language} not supported")]
    UnsupportedLanguage {
        engine: &'static str,
        language: Language,
    },
    /// The audio cannot be used (empty, bad rate).
    #[error("{engine}: {reason}")]
    BadAudio {
        engine: &'static str,
        reason: String,
    },
    /// The engine failed.
    #[error("{engine}: {reason}")]
    Engine {
        engine: &'static str,
        reason: String,
    },
    /// The pool has shut down.
    #[error("{0}: shut down")]
    Stopped(&'static str),
}

/// A speech recogniser: a pool of workers behind a bounded queue.
pub trait SpeechRecognizer: Send + Sync {
    /// The engine name (`whisper`, `pocketsphinx`).
    fn name(&self) -> &'static str;
    /// The languages it recognises.
    fn languages(&self) -> &[Language];
    /// Queues a request; fails at once with [`AsrError::Busy`] when the
    /// queue is full. The ticket yields the result (blocking or `.await`).
    fn submit(&self, request: AsrRequest) -> Result<Ticket, AsrError>;
    /// Queue length, busy workers and counters.
    fn stats(&self) -> PoolStats;
    /// Submits and waits at most `timeout` for the transcript.
    fn recognize(&self, request: AsrRequest, timeout: Duration) -> Result<Transcript, AsrError> {
        self.submit(request)?.wait(timeout)
    }
}
