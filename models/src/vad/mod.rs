//! Voice activity detection and endpointing for callers' audio.
//!
//! [`Vad`] scores audio in 16 ms blocks with earshot's neural detector (a
//! small pure-Rust network on log-mel features, 16 kHz; 8 kHz call audio is
//! upsampled first). [`Endpointer`] turns the scores into events: speech
//! started (and barge-in while a prompt plays), an utterance ended (silence
//! after speech, or the maximum length), or no input. Both are sans-IO: they
//! count time in audio samples, so tests push minutes of audio in
//! milliseconds and the engine owns the clock.

pub mod endpoint;
pub mod voicing;

pub use endpoint::{EndReason, EndpointConfig, EndpointEvent, Endpointer};

use crate::audio::Upsampler2x;
use crate::ModelError;

/// Samples per VAD block at 16 kHz (16 ms).
pub const BLOCK_16K: usize = 256;
/// Milliseconds per VAD block.
pub const BLOCK_MS: u32 = 16;

/// A voice activity detector for one audio stream (one per call).
pub struct Vad {
    detector: Box<earshot::Detector>,
    sample_rate: u32,
    up: Upsampler2x,
    pending: Vec<i16>,
}

impl std::fmt::Debug for Vad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vad")
            .field("sample_rate", &self.sample_rate)
            .field("pending", &self.pending.len())
            .finish()
    }
}

impl Vad {
    /// A detector for audio at `sample_rate` (8000 or 16000 Hz).
    pub fn new(sample_rate: u32) -> Result<Self, ModelError> {
        if sample_rate != 8_000 && sample_rate != 16_000 {
            return Err(ModelError::Config(format!(
                "VAD: sample rate {sample_rate} Hz (8000 or 16000 supported)"
            )));
        }
        Ok(Vad {
            detector: earshot::Detector::default_boxed(),
            sample_rate,
            up: Upsampler2x::default(),
            pending: Vec::with_capacity(2 * BLOCK_16K),
        })
    }

    /// The input sample rate.
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// Input samples per 16 ms block.
    pub fn block_len(&self) -> usize {
        BLOCK_16K * self.sample_rate as usize / 16_000
    }

    /// Feeds samples; appends one speech probability (0–1) per completed
    /// 16 ms block to `scores`.
    pub fn push(&mut self, samples: &[i16], scores: &mut Vec<f32>) {
        if self.sample_rate == 8_000 {
            self.up.push(samples, &mut self.pending);
        } else {
            self.pending.extend_from_slice(samples);
        }
        let mut used = 0;
        while self.pending.len() - used >= BLOCK_16K {
            scores.push(
                self.detector
                    .predict_i16(&self.pending[used..used + BLOCK_16K]),
            );
            used += BLOCK_16K;
        }
        self.pending.drain(..used);
    }

    /// Forgets all state (a new stream).
    pub fn reset(&mut self) {
        self.detector.reset();
        self.up = Upsampler2x::default();
        self.pending.clear();
    }
}
