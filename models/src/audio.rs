//! Sample-rate conversion for the models: callers' audio is 8 kHz, the
//! recognisers want 16 kHz, espeak-ng speaks at 22.05 kHz and calls need
//! 8 kHz. A windowed-sinc resampler does the one-off conversions (a whole
//! utterance or prompt); the VAD's per-frame 8→16 kHz step uses cheap
//! linear interpolation ([`Upsampler2x`]), which is plenty for detection.

use std::f64::consts::PI;

/// Half-width of the sinc kernel, in samples of the lower rate.
const TAPS: i64 = 48;
/// Pass band edge as a fraction of the lower rate's Nyquist frequency
/// (3.8 kHz at 8 kHz: fricatives like the /s/ of "stock" live up there).
const PASS: f64 = 0.95;

/// Resamples `input` from `from_hz` to `to_hz` with a Hann-windowed sinc
/// low-pass at 0.95 × the lower rate's Nyquist frequency (anti-aliasing
/// when going down).
pub fn resample(input: &[i16], from_hz: u32, to_hz: u32) -> Vec<i16> {
    if from_hz == to_hz || input.is_empty() || from_hz == 0 || to_hz == 0 {
        return input.to_vec();
    }
    let ratio = f64::from(to_hz) / f64::from(from_hz);
    let out_len = ((input.len() as f64) * ratio).round() as usize;
    // Cutoff relative to the input rate.
    let cutoff = PASS * ratio.min(1.0); // fraction of the input Nyquist
    let half = (TAPS as f64 / ratio.min(1.0)).ceil() as i64;
    let mut out = Vec::with_capacity(out_len);
    for n in 0..out_len {
        let t = n as f64 / ratio;
        let center = t.floor() as i64;
        let mut acc = 0.0;
        let mut norm = 0.0;
        for k in (center - half + 1)..=(center + half) {
            let x = t - k as f64;
            let w = 0.5 + 0.5 * (PI * x / (half as f64 + 1.0)).cos();
            let s = if x.abs() < 1e-9 {
                cutoff
            } else {
                (PI * cutoff * x).sin() / (PI * x)
            };
            let h = s * w;
            norm += h;
            if k >= 0 && (k as usize) < input.len() {
                acc += h * f64::from(input[k as usize]);
            }
        }
        let v = if norm.abs() > 1e-12 { acc / norm } else { 0.0 };
        out.push(v.round().clamp(-32768.0, 32767.0) as i16);
    }
    out
}

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

    fn tone(hz: f64, rate: u32, secs: f64) -> Vec<i16> {
        (0..(f64::from(rate) * secs) as usize)
            .map(|i| (10_000.0 * (2.0 * PI * hz * i as f64 / f64::from(rate)).sin()) as i16)
            .collect()
    }

    #[test]
    fn keeps_in_band_tones_and_lengths() {
        let t = tone(1000.0, 22_050, 0.5);
        let r = resample(&t, 22_050, 8_000);
        assert_eq!(r.len(), 4000);
        let level = rms_dbfs(&r[400..3600]);
        assert!((level - rms_dbfs(&t)).abs() < 0.5, "{level}");
        let up = resample(&r, 8_000, 16_000);
        assert_eq!(up.len(), 8000);
        assert!((rms_dbfs(&up[800..7200]) - level).abs() < 0.5);
    }

    #[test]
    fn removes_what_would_alias() {
        // 6 kHz cannot exist at 8 kHz: it must be filtered, not folded to 2 kHz.
        let t = tone(6000.0, 22_050, 0.5);
        let r = resample(&t, 22_050, 8_000);
        assert!(rms_dbfs(&r[400..3600]) < rms_dbfs(&t) - 30.0);
    }

    #[test]
    fn upsampler_doubles() {
        let mut u = Upsampler2x::default();
        let mut out = Vec::new();
        u.push(&[100, 200], &mut out);
        assert_eq!(out, [50, 100, 150, 200]);
    }
}
