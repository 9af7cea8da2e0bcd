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

/// Most kernel coefficients [`resample`] tabulates (8 MB of f64); rate
/// pairs with a larger table (coprime odd rates) compute them per sample.
const MAX_TABLE: usize = 1 << 20;

/// Resamples `input` from `from_hz` to `to_hz` with a Hann-windowed sinc
/// low-pass at 0.95 × the lower rate's Nyquist frequency (anti-aliasing
/// when going down).
///
/// Output sample `n` sits at input time `n · from / to`, whose fractional
/// part takes only `to / gcd(from, to)` values (2 for 8 → 16 kHz, 160 for
/// espeak-ng's 22.05 → 8 kHz). The kernel is tabulated once per phase
/// rather than evaluated (a sine and a cosine per tap) for every output
/// sample: that evaluation was most of a recogniser's CPU time.
pub fn resample(input: &[i16], from_hz: u32, to_hz: u32) -> Vec<i16> {
    if from_hz == to_hz || input.is_empty() || from_hz == 0 || to_hz == 0 {
        return input.to_vec();
    }
    let ratio = f64::from(to_hz) / f64::from(from_hz);
    let out_len = ((input.len() as f64) * ratio).round() as usize;
    // Cutoff relative to the input rate.
    let cutoff = PASS * ratio.min(1.0); // fraction of the input Nyquist
    let half = (TAPS as f64 / ratio.min(1.0)).ceil() as i64;
    let taps = (2 * half) as usize;
    let kernel = |x: f64| {
        let w = 0.5 + 0.5 * (PI * x / (half as f64 + 1.0)).cos();
        let s = if x.abs() < 1e-9 {
            cutoff
        } else {
            (PI * cutoff * x).sin() / (PI * x)
        };
        s * w
    };
    let g = gcd(from_hz, to_hz);
    let (up, down) = (u64::from(to_hz / g), u64::from(from_hz / g));
    // Phase p (input time frac = p / up): the coefficients of the taps
    // k = center − half + 1 … center + half, and their sum.
    let table: Option<Vec<f64>> = (up as usize)
        .checked_mul(taps)
        .filter(|&n| n <= MAX_TABLE)
        .map(|_| {
            (0..up)
                .flat_map(|p| {
                    let frac = p as f64 / up as f64;
                    (0..half * 2).map(move |j| frac + (half - 1 - j) as f64)
                })
                .map(kernel)
                .collect()
        });
    let mut out = Vec::with_capacity(out_len);
    let mut coeffs = vec![0.0; taps];
    for n in 0..out_len as u64 {
        let center = (n * down / up) as i64;
        let phase = (n * down % up) as usize;
        let h = match &table {
            Some(t) => &t[phase * taps..(phase + 1) * taps],
            None => {
                let frac = phase as f64 / up as f64;
                for (j, c) in coeffs.iter_mut().enumerate() {
                    *c = kernel(frac + (half - 1 - j as i64) as f64);
                }
                &coeffs[..]
            }
        };
        let first = center - half + 1;
        let mut acc = 0.0;
        let mut norm = 0.0;
        for (j, &c) in h.iter().enumerate() {
            norm += c;
            let k = first + j as i64;
            if k >= 0 && (k as usize) < input.len() {
                acc += c * f64::from(input[k as usize]);
            }
        }
        let v = if norm.abs() > 1e-12 { acc / norm } else { 0.0 };
        out.push(v.round().clamp(-32768.0, 32767.0) as i16);
    }
    out
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
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

    /// The kernel evaluated at every output sample, as `resample` did
    /// before it tabulated phases: the table must not change the output.
    fn direct(input: &[i16], from_hz: u32, to_hz: u32) -> Vec<i16> {
        let ratio = f64::from(to_hz) / f64::from(from_hz);
        let out_len = ((input.len() as f64) * ratio).round() as usize;
        let cutoff = PASS * ratio.min(1.0);
        let half = (TAPS as f64 / ratio.min(1.0)).ceil() as i64;
        (0..out_len)
            .map(|n| {
                let t = n as f64 * f64::from(from_hz) / f64::from(to_hz);
                let center = t.floor() as i64;
                let (mut acc, mut norm) = (0.0, 0.0);
                for k in (center - half + 1)..=(center + half) {
                    let x = t - k as f64;
                    let w = 0.5 + 0.5 * (PI * x / (half as f64 + 1.0)).cos();
                    let s = if x.abs() < 1e-9 {
                        cutoff
                    } else {
                        (PI * cutoff * x).sin() / (PI * x)
                    };
                    norm += s * w;
                    if k >= 0 && (k as usize) < input.len() {
                        acc += s * w * f64::from(input[k as usize]);
                    }
                }
                (acc / norm).round().clamp(-32768.0, 32767.0) as i16
            })
            .collect()
    }

    #[test]
    fn tabulated_kernel_matches_the_direct_one() {
        let t: Vec<i16> = tone(440.0, 8_000, 0.2)
            .iter()
            .zip(tone(3100.0, 8_000, 0.2))
            .map(|(a, b)| a / 2 + b / 2)
            .collect();
        for (from, to) in [
            (8_000, 16_000),
            (16_000, 8_000),
            (22_050, 8_000),
            (8_000, 11_025),
        ] {
            let a = resample(&t, from, to);
            let b = direct(&t, from, to);
            assert_eq!(a.len(), b.len());
            let worst = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).max();
            assert!(worst <= Some(1), "{from} -> {to}: off by {worst:?}");
        }
    }

    #[test]
    fn upsampler_doubles() {
        let mut u = Upsampler2x::default();
        let mut out = Vec::new();
        u.push(&[100, 200], &mut out);
        assert_eq!(out, [50, 100, 150, 200]);
    }
}
