//! Audio helpers for the models: callers' audio is 8 kHz, the recognisers
//! want 16 kHz, espeak-ng speaks at 22.05 kHz and calls need 8 kHz. The
//! one-off conversions (a whole utterance or prompt) are [`resample`]'s
//! (`voxbridge-resample`); the VAD's per-frame 8→16 kHz step uses cheap
//! linear interpolation ([`Upsampler2x`]), which is plenty for detection.

/// Whole-buffer conversion: the workspace's one resampler (`voxbridge-resample`,
/// on rubato), shared with the media crate's prompts.
pub use voxbridge_resample::resample;

/// i16 samples to f32 in [-1, 1).
pub fn to_f32(samples: &[i16]) -> Vec<f32> {
    samples.iter().map(|&s| f32::from(s) / 32768.0).collect()
}

/// Streaming ×2 upsampler by linear interpolation (8 → 16 kHz for the VAD).
#[derive(Debug, Default, Clone)]
pub struct Upsampler2x {
    last: i16,
}

impl Upsampler2x {
    /// Appends two output samples per input sample to `out`.
    pub fn push(&mut self, input: &[i16], out: &mut Vec<i16>) {
        for &s in input {
            let mid = ((i32::from(self.last) + i32::from(s)) / 2) as i16;
            out.push(mid);
            out.push(s);
            self.last = s;
        }
    }
}

/// Adds a deterministic white noise floor of `rms` (16-bit units) to
/// `samples`. Recognisers trained on real recordings misbehave on digital
/// silence (log energies of exact zeros); G.711 decodes silence to exact
/// zeros, a real line never does.
pub fn add_noise_floor(samples: &mut [i16], rms: f64, seed: u64) {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut uniform = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    // Sum of 4 uniforms: near-Gaussian with variance 1/3.
    let scale = rms / (1.0f64 / 3.0).sqrt();
    for s in samples {
        let g = (uniform() + uniform() + uniform() + uniform() - 2.0) * scale;
        *s = (f64::from(*s) + g).round().clamp(-32768.0, 32767.0) as i16;
    }
}

/// Root-mean-square level of `samples` in dBFS (−∞ for silence).
pub fn rms_dbfs(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return f64::NEG_INFINITY;
    }
    let sum: f64 = samples.iter().map(|&s| f64::from(s).powi(2)).sum();
    let rms = (sum / samples.len() as f64).sqrt();
    20.0 * (rms / 32768.0).log10()
}

#[cfg(test)]
mod tests {
    use super::*;

    // The resampler's own tests moved with it to resample/src/tests.rs.

    #[test]
    fn upsampler_doubles() {
        let mut u = Upsampler2x::default();
        let mut out = Vec::new();
        u.push(&[100, 200], &mut out);
        assert_eq!(out, [50, 100, 150, 200]);
    }
}
