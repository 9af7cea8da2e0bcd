//! voxbridge on-box models: caller audio to text and intents, text to speech.
//!
//! Everything runs on the machine; nothing here downloads at build or test
//! time. The engine wires these pieces together; this crate knows nothing
//! about RTP, SIP or the dialog format and talks in plain types (samples,
//! strings, small structs).
//!
//! - [`vad`]: voice activity detection and endpointing (start of speech,
//!   end-of-speech silence, maximum length, barge-in, no input), sans-IO.
//! - [`amd`]: answering-machine detection for outbound calls (a person or a
//!   recorder, and the recorder's beep), sans-IO.
//! - [`asr`]: speech recognition behind one trait, [`asr::SpeechRecognizer`]:
//!   whisper (free speech, a ggml model) and PocketSphinx (JSGF grammars
//!   generated per prompt), each a worker pool behind a bounded queue;
//!   [`asr::ggml`] checks model files and writes test models.
//! - [`intent`]: the hashed-feature intent classifier (ONNX Runtime via
//!   `ort`, sessions pooled), trained by `models/train/train_intent.py`.
//! - [`entities`]: digits, numbers, order ids, yes/no and dates in en and zh.
//! - [`tts`]: espeak-ng speech at 8 kHz, cached.
//! - [`convert`]: `voxbridge models import`, CTranslate2 whisper models to ggml.
//! - [`pull`] and [`manifest`]: `voxbridge models pull` and `models list`.
//! - [`runtime`]: finding and loading the ONNX Runtime library once per process.
//! - [`background`]: recogniser threads run below the engine's CPU priority.
//! - [`audio`], [`checksum`], [`lang`], [`error`]: small shared pieces.
//!
//! Cargo features `whisper`, `sphinx`, `espeak` and `onnx` (all default)
//! build each engine; without one its types remain and starting it returns
//! [`ModelError::Disabled`], so the engine compiles either way.
//!
//! `models/REFERENCE.md` has configuration, set-up, figures and the API the
//! engine uses.

pub mod amd;
pub mod asr;
pub mod audio;
pub mod background;
pub mod checksum;
pub mod convert;
pub mod entities;
pub mod error;
#[cfg(any(feature = "sphinx", feature = "espeak"))]
mod ffi;
pub mod intent;
pub mod lang;
pub mod manifest;
pub mod pull;
pub mod runtime;
pub mod tts;
pub mod vad;

pub use error::ModelError;
pub use lang::Language;
