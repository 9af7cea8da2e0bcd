//! The grammar engine: PocketSphinx 5prealpha (Debian `libpocketsphinx-dev`,
//! `pocketsphinx-en-us`) through our own bindgen bindings, decoding with the
//! JSGF grammar of the prompt.
//!
//! Pitfalls measured on this model (see DESIGN.md): it is a 16 kHz model,
//! so 8 kHz call audio is upsampled; a decoder takes ~0.2 s and ~35 MB to
//! start, so each worker keeps one decoder for its whole life; every
//! utterance is fed whole (`full_utt = 1`), which lets the model's batch
//! cepstral mean normalisation (`-cmn batch` in its `feat.params`) use the
//! utterance's own mean instead of a wideband initial guess (live CMN with
//! a phone-measured `-cmninit` did worse on menus here and depends on what
//! the decoder heard before); each utterance is also its own stream, so
//! the noise level the decoder tracks starts afresh (kept across a stream,
//! it made one call's audio decode differently after another's). G.711
//! turns silence into exact zeros, on which the model's log filter-bank
//! energies misbehave: a −70 dBFS noise floor
//! ([`NOISE_FLOOR_RMS`]) is added first, which took espeak-ng menu and
//! yes/no phrases through μ-law from 75 to 95 in 100 exact. An empty
//! hypothesis is a no-match. Grammars are added to a worker's decoder the
//! first time they are used and kept (up to [`MAX_GRAMMARS`]), so switching
//! prompts costs a search switch, not a decoder.

use std::path::PathBuf;
use std::sync::Arc;

use super::grammar::Dictionary;
use super::pool::{PoolConfig, PoolStats, WorkerPool};
use super::{AsrError, AsrRequest, SpeechRecognizer, Ticket};
use crate::{Language, ModelError};

// The FFI half: without the feature there is no decoder and `start` fails.
#[cfg(feature = "sphinx")]
mod decoder;

const ENGINE: &str = "pocketsphinx";

/// Grammars kept per decoder before the oldest is dropped.
pub const MAX_GRAMMARS: usize = 64;

/// Where Debian's `pocketsphinx-en-us` puts the model.
pub const DEBIAN_MODEL_DIR: &str = "/usr/share/pocketsphinx/model/en-us/en-us";
/// Debian's US-English pronouncing dictionary.
pub const DEBIAN_DICT: &str = "/usr/share/pocketsphinx/model/en-us/cmudict-en-us.dict";

/// RMS (16-bit units, about −70 dBFS) of the noise floor added to each
/// utterance before decoding.
pub const NOISE_FLOOR_RMS: f64 = 10.0;

/// How to run the grammar engine.
#[derive(Debug, Clone, PartialEq)]
pub struct SphinxConfig {
    /// The acoustic model directory (with `mdef`, `means`, `feat.params`…).
    pub model_dir: PathBuf,
    /// The pronouncing dictionary.
    pub dict: PathBuf,
    /// Further decoder options (`("-beam", "1e-60")`…), for tuning.
    pub extra_args: Vec<(String, String)>,
    /// Workers (one decoder each, ~35 MB) and queue.
    pub pool: PoolConfig,
}

impl Default for SphinxConfig {
    fn default() -> Self {
        SphinxConfig {
            model_dir: PathBuf::from(DEBIAN_MODEL_DIR),
            dict: PathBuf::from(DEBIAN_DICT),
            extra_args: Vec::new(),
            pool: PoolConfig::default(),
        }
    }
}

/// The PocketSphinx grammar engine: a pool of decoders.
pub struct SphinxRecognizer {
    pool: WorkerPool,
    dictionary: Arc<Dictionary>,
}

impl std::fmt::Debug for SphinxRecognizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SphinxRecognizer")
            .field("stats", &self.pool.stats())
            .finish()
    }
}

impl SphinxRecognizer {
    /// Loads the dictionary and starts `config.pool.workers` decoders; any
    /// missing or broken model file is an error here.
    #[cfg(feature = "sphinx")]
    pub fn start(config: SphinxConfig) -> Result<Self, ModelError> {
        let dictionary = Arc::new(Dictionary::load(&config.dict)?);
        let cfg = Arc::new(config.clone());
        let pool = WorkerPool::start(ENGINE, config.pool, move |_| decoder::Decoder::new(&cfg))?;
        Ok(SphinxRecognizer { pool, dictionary })
    }

    /// This build has no `sphinx` feature: always [`ModelError::Disabled`].
    #[cfg(not(feature = "sphinx"))]
    pub fn start(_config: SphinxConfig) -> Result<Self, ModelError> {
        Err(ModelError::disabled(ENGINE, "sphinx"))
    }

    /// The pronouncing dictionary, to build grammars with
    /// ([`Grammar::build`]).
    pub fn dictionary(&self) -> &Dictionary {
        &self.dictionary
    }
}

impl SpeechRecognizer for SphinxRecognizer {
    fn name(&self) -> &'static str {
        ENGINE
    }

    fn languages(&self) -> &[Language] {
        &[Language::En]
    }

    fn submit(&self, request: AsrRequest) -> Result<Ticket, AsrError> {
        if request.grammar.is_none() {
            return Err(AsrError::GrammarRequired(ENGINE));
        }
        if request.language != Language::En {
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
