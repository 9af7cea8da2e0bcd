//! voxbridge on-box models: caller audio to text and intents, text to speech.
//!
//! Everything runs on the machine; nothing here downloads at build or test
//! time. The engine wires these pieces together; this crate knows nothing
//! about RTP, SIP or the dialog format and talks in plain types (samples,
//! strings, small structs).
//!
//! - [`intent`]: the hashed-feature intent classifier (ONNX Runtime via
//!   `ort`, sessions pooled), trained by `models/train/train_intent.py`.
//! - [`entities`]: digits, numbers, order ids, yes/no and dates in en and zh.
//! - [`runtime`]: finding and loading the ONNX Runtime library once per process.
//! - [`error`]: the crate's error enum.

pub mod asr;
pub mod audio;
pub mod checksum;
pub mod entities;
pub mod error;
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
