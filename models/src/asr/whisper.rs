//! The free-speech engine: whisper.cpp through `whisper-rs`.
//!
//! One `WhisperContext` (the weights) is shared; each worker of the pool
//! owns one `WhisperState` (~190 MB of compute buffers for tiny.en at full
//! width), created once when the pool starts. Per utterance: greedy
//! sampling, no timestamps, one segment, no temperature fallback, the
//! language from the prompt, and an encoder window (`audio_ctx`) of at
//! least [`DEFAULT_MIN_AUDIO_CTX`] (15 s), longer for longer utterances: real
//! tiny.en weights given a window cut to a short utterance repeat it until
//! the token cap (DESIGN.md, "Facts learned the hard way"), while 768 was
//! right as often as the full 30 s at half its cost. The number of tokens
//! is capped in proportion to the audio, so a model that loops cannot hold
//! a worker for long, and what it still says that the caller did not
//! (a trailing repetition loop, `[BLANK_AUDIO]`) is cut by
//! [`cleanup::clean_transcript`]. The model file is checked completely
//! ([`ggml::inspect`]) and against its sha256 before whisper.cpp reads it.

use std::path::PathBuf;
#[cfg(feature = "whisper")]
use std::sync::{Arc, Once};

#[cfg(feature = "whisper")]
use whisper_rs::{
    FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters, WhisperState,
};

#[cfg(feature = "whisper")]
use super::cleanup;
use super::ggml::ModelInfo;
use super::pool::{PoolConfig, PoolStats, WorkerPool};
use super::{AsrError, AsrRequest, SpeechRecognizer, Ticket};
use crate::{Language, ModelError};
#[cfg(feature = "whisper")]
use {
    super::ggml,
    super::pool::{Heard, Worker},
    crate::{audio, checksum},
};

const ENGINE: &str = "whisper";

/// Whisper's encoder positions per second of audio (100 mel frames/s,
/// halved by the second convolution).
const CTX_PER_SECOND: f64 = 50.0;
/// Positions added to the utterance's own (context for the last word).
const CTX_MARGIN: i32 = 32;
/// The smallest encoder window used unless configured: 512 positions
/// (10.2 s). Measured on the accuracy subset (78 phone utterances, real
/// tiny.en, CPU time per utterance): 256 → WER 68.4 %, intent 46.4 %,
/// 241 ms; 384 → 57.4 %, 53.6 %, 290 ms; 512 → 52.6 %, 53.6 %, 366 ms;
/// 768 → 52.9 %, 53.6 %, 672 ms; windows sized to the utterance plus a
/// margin looped (59–65 %). Also the window of the accuracy test.
pub const DEFAULT_MIN_AUDIO_CTX: i32 = 512;
/// Default token budget: a base plus this many per second of audio (speech
/// runs at 2–4 tokens a second).
pub const DEFAULT_TOKENS_BASE: u32 = 8;
pub const DEFAULT_TOKENS_PER_SECOND: f32 = 6.0;

/// How to run whisper.
#[derive(Debug, Clone, PartialEq)]
pub struct WhisperConfig {
    /// The ggml model file (`voxbridge models pull` fetches one).
    pub model: PathBuf,
    /// Its expected sha256 (hex); `None` skips the check.
    pub sha256: Option<String>,
    /// whisper.cpp threads per worker: workers × threads should not exceed
    /// the cores left for calls.
    pub threads_per_worker: usize,
    /// A fixed encoder window (positions, 50 a second, at most 1500) instead
    /// of the default ([`audio_ctx_for`]: at least [`DEFAULT_MIN_AUDIO_CTX`],
    /// more for utterances longer than it holds).
    pub audio_ctx: Option<i32>,
    /// Without a fixed window: the smallest one used (positions), and the
    /// positions added to the utterance's own ([`audio_ctx_with`]).
    pub min_audio_ctx: i32,
    pub audio_ctx_margin: i32,
    /// Token cap per utterance: `tokens_base + tokens_per_second × seconds`.
    pub tokens_base: u32,
    pub tokens_per_second: f32,
    /// Workers (one whisper state each) and the queue in front of them.
    pub pool: PoolConfig,
}

impl WhisperConfig {
    /// One worker, one thread, queue of 4, 3 s maximum wait.
    pub fn new(model: impl Into<PathBuf>) -> Self {
        WhisperConfig {
            model: model.into(),
            sha256: None,
            threads_per_worker: 1,
            audio_ctx: None,
            min_audio_ctx: DEFAULT_MIN_AUDIO_CTX,
            audio_ctx_margin: CTX_MARGIN,
            tokens_base: DEFAULT_TOKENS_BASE,
            tokens_per_second: DEFAULT_TOKENS_PER_SECOND,
            pool: PoolConfig::default(),
        }
    }
}

/// The default `audio_ctx` for `samples` of 16 kHz audio: the utterance
/// and a margin, rounded up to 32, at least [`DEFAULT_MIN_AUDIO_CTX`], at
/// most the model's.
pub fn audio_ctx_for(samples: usize, model_ctx: i32) -> i32 {
    audio_ctx_with(samples, DEFAULT_MIN_AUDIO_CTX, CTX_MARGIN, model_ctx)
}

/// The encoder window for `samples` of 16 kHz audio: the utterance and
/// `margin` positions, rounded up to 32, at least `min`, at most the
/// model's.
pub fn audio_ctx_with(samples: usize, min: i32, margin: i32, model_ctx: i32) -> i32 {
    let secs = samples as f64 / 16_000.0;
    let ctx = (secs * CTX_PER_SECOND).ceil() as i32 + margin.max(0);
    (((ctx + 31) / 32) * 32).max(min).clamp(64, model_ctx)
}

/// The token cap for `samples` of 16 kHz audio.
pub fn max_tokens_for(samples: usize, base: u32, per_second: f32) -> i32 {
    (f64::from(base) + f64::from(per_second) * samples as f64 / 16_000.0).ceil() as i32
}

#[cfg(feature = "whisper")]
struct WhisperWorker {
    state: WhisperState,
    threads: usize,
    audio_ctx: Option<i32>,
    min_ctx: i32,
    margin: i32,
    tokens: (u32, f32),
    model_ctx: i32,
    multilingual: bool,
}

#[cfg(feature = "whisper")]
impl Worker for WhisperWorker {
    fn recognize(&mut self, r: &AsrRequest) -> Result<Heard, AsrError> {
        if r.language != Language::En && !self.multilingual {
            return Err(AsrError::UnsupportedLanguage {
                engine: ENGINE,
                language: r.language,
            });
        }
        let pcm = match r.sample_rate {
            16_000 => r.audio.clone(),
            8_000 => audio::resample(&r.audio, 8_000, 16_000),
            other => {
                return Err(AsrError::BadAudio {
                    engine: ENGINE,
                    reason: format!("sample rate {other} Hz (8000 or 16000)"),
                })
            }
        };
        if pcm.len() < 1_600 {
            return Ok(Heard {
                text: String::new(),
                tag: None,
                confidence: None,
            });
        }
        let samples = audio::to_f32(&pcm);
        let mut p = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
        p.set_n_threads(self.threads as i32);
        p.set_translate(false);
        p.set_language(Some(r.language.code()));
        p.set_no_context(true);
        p.set_no_timestamps(true);
        p.set_single_segment(true);
        p.set_print_special(false);
        p.set_print_progress(false);
        p.set_print_realtime(false);
        p.set_print_timestamps(false);
        // Callers never say "[Music]" or "(laughs)": on phone audio tiny.en
        // otherwise answers short utterances with such tokens.
        p.set_suppress_nst(true);
        p.set_temperature(0.0);
        p.set_temperature_inc(0.0);
        let ctx = match self.audio_ctx {
            Some(c) => c.clamp(64, self.model_ctx),
            None => audio_ctx_with(pcm.len(), self.min_ctx, self.margin, self.model_ctx),
        };
        p.set_audio_ctx(ctx);
        p.set_max_tokens(max_tokens_for(pcm.len(), self.tokens.0, self.tokens.1));
        self.state.full(p, &samples).map_err(|e| AsrError::Engine {
            engine: ENGINE,
            reason: e.to_string(),
        })?;
        let mut text = String::new();
        let mut no_speech = None;
        for seg in self.state.as_iter() {
            text.push_str(&seg.to_str_lossy().unwrap_or_default());
            no_speech = Some(seg.no_speech_probability());
        }
        Ok(Heard {
            text: cleanup::clean_transcript(&text),
            tag: None,
            confidence: no_speech.map(|p| (1.0 - p).clamp(0.0, 1.0)),
        })
    }
}

/// The whisper engine: a shared model and a pool of states.
pub struct WhisperRecognizer {
    pool: WorkerPool,
    info: ModelInfo,
    languages: Vec<Language>,
}

impl std::fmt::Debug for WhisperRecognizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WhisperRecognizer")
            .field("model", &self.info.describe())
            .field("stats", &self.pool.stats())
            .finish()
    }
}

impl WhisperRecognizer {
    /// This build has no `whisper` feature: always [`ModelError::Disabled`].
    #[cfg(not(feature = "whisper"))]
    pub fn start(_config: WhisperConfig) -> Result<Self, ModelError> {
        Err(ModelError::disabled(ENGINE, "whisper"))
    }

    /// Checks the model file (structure, then sha256), loads it once and
    /// starts the workers. A missing, truncated or corrupt file, or one with
    /// the wrong checksum, is an error here.
    #[cfg(feature = "whisper")]
    pub fn start(config: WhisperConfig) -> Result<Self, ModelError> {
        static LOGGING: Once = Once::new();
        // whisper.cpp logs to stderr unless hooked (into nothing here).
        LOGGING.call_once(whisper_rs::install_logging_hooks);
        if config.threads_per_worker == 0 {
            return Err(ModelError::Config(
                "whisper: threads_per_worker must be at least 1".into(),
            ));
        }
        let info = ggml::inspect(&config.model)?;
        if let Some(expected) = &config.sha256 {
            checksum::verify_file(&config.model, expected)?;
        }
        let path = config.model.to_str().ok_or_else(|| {
            ModelError::Config(format!(
                "whisper: model path {} is not UTF-8",
                config.model.display()
            ))
        })?;
        let ctx = WhisperContext::new_with_params(path, WhisperContextParameters::default())
            .map_err(|e| {
                ModelError::corrupt(&config.model, format!("whisper.cpp could not load it: {e}"))
            })?;
        let ctx = Arc::new(ctx);
        let threads = config.threads_per_worker;
        let audio_ctx = config.audio_ctx;
        let (min_ctx, margin) = (config.min_audio_ctx, config.audio_ctx_margin);
        let tokens = (config.tokens_base, config.tokens_per_second);
        let model_ctx = info.dims.n_audio_ctx;
        let multilingual = info.dims.is_multilingual();
        let pool = WorkerPool::start(ENGINE, config.pool.clone(), move |i| {
            let state = ctx.create_state().map_err(|e| {
                ModelError::Config(format!(
                    "whisper: worker {i} cannot allocate its state: {e}"
                ))
            })?;
            Ok(WhisperWorker {
                state,
                threads,
                audio_ctx,
                min_ctx,
                margin,
                tokens,
                model_ctx,
                multilingual,
            })
        })?;
        let languages = if multilingual {
            vec![Language::En, Language::Zh]
        } else {
            vec![Language::En]
        };
        Ok(WhisperRecognizer {
            pool,
            info,
            languages,
        })
    }

    /// What the model file holds.
    pub fn model_info(&self) -> &ModelInfo {
        &self.info
    }
}

impl SpeechRecognizer for WhisperRecognizer {
    fn name(&self) -> &'static str {
        ENGINE
    }

    fn languages(&self) -> &[Language] {
        &self.languages
    }

    fn submit(&self, request: AsrRequest) -> Result<Ticket, AsrError> {
        if !self.languages.contains(&request.language) {
            return Err(AsrError::UnsupportedLanguage {
                engine: ENGINE,
                language: request.language,
            });
        }
        self.pool.submit(request)
    }

    fn stats(&self) -> PoolStats {
        self.pool.stats()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audio_ctx_is_at_least_512_and_follows_long_utterances() {
        // Short utterances get the 512 that real weights need.
        assert_eq!(audio_ctx_for(16_000, 1500), 512);
        assert_eq!(audio_ctx_for(5 * 16_000, 1500), 512);
        assert_eq!(audio_ctx_for(100, 1500), 512);
        assert_eq!(audio_ctx_with(16_000, 256, 128, 1500), 256);
        assert_eq!(audio_ctx_with(4 * 16_000, 128, 128, 1500), 352);
        // Longer ones their length: 20 s → 1000 + 32 → 1056.
        assert_eq!(audio_ctx_for(20 * 16_000, 1500), 1056);
        assert_eq!(audio_ctx_for(60 * 16_000, 1500), 1500);
        // A small (test) model's own window is the limit.
        assert_eq!(audio_ctx_for(16_000, 384), 384);
        assert_eq!(max_tokens_for(16_000, 8, 6.0), 14);
        assert_eq!(max_tokens_for(5 * 16_000, 8, 6.0), 38);
    }
}
