//! `voxbridge transcribe FILE.wav…`: the on-box recognisers on recordings,
//! optionally heard the way a call hears them (8 kHz G.711), one line per
//! file with the transcript and the time it took.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use voxbridge_media::{g711, Codec};
use voxbridge_models::asr::sphinx::{SphinxConfig, SphinxRecognizer};
use voxbridge_models::asr::whisper::{WhisperConfig, WhisperRecognizer};
use voxbridge_models::asr::{AsrRequest, Grammar, GrammarSpec, SlotGrammar, SpeechRecognizer};
use voxbridge_models::{audio, Language, ModelError};

/// Which recogniser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineKind {
    Whisper,
    Grammar,
}

impl std::str::FromStr for EngineKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "whisper" => Ok(EngineKind::Whisper),
            "grammar" | "pocketsphinx" => Ok(EngineKind::Grammar),
            o => Err(format!("unknown engine `{o}` (whisper or grammar)")),
        }
    }
}

/// The phone line the audio goes through first: G.711 at 8 kHz, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phone {
    G711(Codec),
    None,
}

impl std::str::FromStr for Phone {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "pcmu" => Ok(Phone::G711(Codec::Pcmu)),
            "pcma" => Ok(Phone::G711(Codec::Pcma)),
            "none" => Ok(Phone::None),
            o => Err(format!("unknown phone line `{o}` (pcmu, pcma or none)")),
        }
    }
}

/// Why a file could not be transcribed.
#[derive(Debug, thiserror::Error)]
pub enum TranscribeError {
    #[error("{path}: {reason}")]
    Wav { path: PathBuf, reason: String },
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("{0}")]
    Asr(#[from] voxbridge_models::asr::AsrError),
}

/// Reads a WAV file (16-bit or float, any rate, channels mixed down).
pub fn read_wav(path: &Path) -> Result<(Vec<i16>, u32), TranscribeError> {
    let bad = |reason: String| TranscribeError::Wav {
        path: path.to_path_buf(),
        reason,
    };
    let mut r = hound::WavReader::open(path).map_err(|e| bad(e.to_string()))?;
    let spec = r.spec();
    let channels = usize::from(spec.channels.max(1));
    let samples: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => r
            .samples::<f32>()
            .collect::<Result<_, _>>()
            .map_err(|e| bad(e.to_string()))?,
        hound::SampleFormat::Int => {
            let scale = 2f32.powi(i32::from(spec.bits_per_sample.clamp(1, 32)) - 1);
            r.samples::<i32>()
                .map(|s| s.map(|s| s as f32 / scale))
                .collect::<Result<_, _>>()
                .map_err(|e| bad(e.to_string()))?
        }
    };
    let mono = samples
        .chunks(channels)
        .map(|c| {
            let m = c.iter().sum::<f32>() / c.len() as f32;
            (m * 32767.0).clamp(-32768.0, 32767.0) as i16
        })
        .collect();
    Ok((mono, spec.sample_rate))
}

/// The audio as a recogniser gets it: through the phone line (8 kHz
/// G.711) or resampled to 16 kHz.
pub fn line_audio(pcm: &[i16], rate: u32, phone: Phone) -> (Vec<i16>, u32) {
    match phone {
        Phone::G711(codec) => {
            let narrow = audio::resample(pcm, rate, 8_000);
            let mut codes = Vec::new();
            g711::encode(codec, &narrow, &mut codes);
            let mut out = Vec::new();
            g711::decode(codec, &codes, &mut out);
            (out, 8_000)
        }
        Phone::None => (audio::resample(pcm, rate, 16_000), 16_000),
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    pub engine: EngineKind,
    pub phone: Phone,
    pub language: Language,
    /// The ggml whisper model.
    pub model: PathBuf,
    /// whisper.cpp threads.
    pub threads: usize,
    /// A fixed whisper encoder window (None: the default of live calls,
    /// `whisper::audio_ctx_for`).
    pub audio_ctx: Option<i32>,
    /// Grammar engine: the phrases, and whether yes/no and digits count.
    pub phrases: Vec<String>,
    pub yes_no: bool,
    pub digits: bool,
}

/// One file's result.
#[derive(Debug, Clone)]
pub struct Line {
    pub path: PathBuf,
    pub audio: Duration,
    pub took: Duration,
    pub text: String,
}

/// A loaded recogniser, reused for every file.
pub struct Transcriber {
    recognizer: Box<dyn SpeechRecognizer>,
    grammar: Option<Arc<Grammar>>,
    options: Options,
}

impl Transcriber {
    /// Loads the engine `options` name.
    pub fn start(options: Options) -> Result<Transcriber, TranscribeError> {
        let (recognizer, grammar): (Box<dyn SpeechRecognizer>, _) = match options.engine {
            EngineKind::Whisper => {
                let mut c = WhisperConfig::new(&options.model);
                c.threads_per_worker = options.threads.max(1);
                c.audio_ctx = options.audio_ctx;
                c.pool.max_wait = Duration::from_secs(120);
                (Box::new(WhisperRecognizer::start(c)?), None)
            }
            EngineKind::Grammar => {
                let mut c = SphinxConfig::default();
                c.pool.max_wait = Duration::from_secs(120);
                let r = SphinxRecognizer::start(c)?;
                let mut spec = GrammarSpec::default();
                for p in &options.phrases {
                    spec = spec.phrase(&p.replace(' ', "_"), p);
                }
                if options.yes_no {
                    spec = spec.slot(SlotGrammar::YesNo);
                }
                if options.digits {
                    spec = spec.slot(SlotGrammar::Digits { min: 1, max: 12 });
                }
                let g = Arc::new(Grammar::build(&spec, r.dictionary())?);
                (Box::new(r), Some(g))
            }
        };
        Ok(Transcriber {
            recognizer,
            grammar,
            options,
        })
    }

    /// Transcribes samples at `rate` (after the phone line).
    pub fn samples(&self, pcm: &[i16], rate: u32) -> Result<(String, Duration), TranscribeError> {
        let (audio, rate) = line_audio(pcm, rate, self.options.phone);
        let start = Instant::now();
        let t = self.recognizer.recognize(
            AsrRequest {
                audio,
                sample_rate: rate,
                language: self.options.language,
                grammar: self.grammar.clone(),
            },
            Duration::from_secs(120),
        )?;
        Ok((t.text, start.elapsed()))
    }

    /// Transcribes one WAV file.
    pub fn file(&self, path: &Path) -> Result<Line, TranscribeError> {
        let (pcm, rate) = read_wav(path)?;
        let audio = Duration::from_secs_f64(pcm.len() as f64 / f64::from(rate.max(1)));
        let (text, took) = self.samples(&pcm, rate)?;
        Ok(Line {
            path: path.to_path_buf(),
            audio,
            took,
            text,
        })
    }
}
