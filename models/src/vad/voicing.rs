//! Is a short block of caller audio voiced speech? (The barge-in checks of
//! [`super::endpoint`].) A neural VAD also fires
//! on breathing, coughs and in-band tones; those are what stop prompts on
//! real lines. Two cheap checks on one 32 ms block at 8 kHz tell them from
//! a vowel:
//! - [`periodicity`]: voiced speech repeats at its pitch period (2.5–16 ms,
//!   400–62 Hz); breath and cough noise does not. Normalised
//!   autocorrelation, taking the best peak after the first zero crossing so
//!   that low-passed noise, which only decays, scores low.
//! - [`tone_fraction`]: DTMF and call-progress tones put nearly all their
//!   energy in one or two known frequencies; speech spreads it over many
//!   harmonics. Goertzel filters at those frequencies.

/// Shortest and longest pitch period looked for, in samples at 8 kHz.
const MIN_PERIOD: usize = 20;
const MAX_PERIOD: usize = 133;

/// DTMF rows and columns, North American call-progress tones, and the fax
/// and modem answer tones (Hz).
const TONES: [f32; 14] = [
    697.0, 770.0, 852.0, 941.0, 1209.0, 1336.0, 1477.0, 1633.0, 350.0, 440.0, 480.0, 620.0, 1100.0,
    2100.0,
];

/// How periodic `block` (8 kHz) is at a speech pitch, 0–1: the best
/// normalised autocorrelation at a lag of 2.5–16.6 ms past its first zero
/// crossing. Vowels score 0.6–0.95, noise bursts below 0.4. Blocks shorter
/// than two long periods (33 ms) are judged on what fits.
pub fn periodicity(block: &[i16]) -> f32 {
    let n = block.len();
    if n < 2 * MIN_PERIOD {
        return 0.0;
    }
    // Pre-emphasis: rumble and brown noise wander slowly and would look
    // periodic over 32 ms; the pitch survives in the harmonics.
    let mut x: Vec<f32> = block
        .windows(2)
        .map(|w| f32::from(w[1]) - 0.95 * f32::from(w[0]))
        .collect();
    let mean = x.iter().sum::<f32>() / x.len() as f32;
    x.iter_mut().for_each(|v| *v -= mean);
    let n = x.len();
    let max_lag = MAX_PERIOD.min(n / 2);
    let mut crossed = false;
    let mut best = 0.0f32;
    for lag in 1..=max_lag {
        let (a, b) = (&x[..n - lag], &x[lag..]);
        let mut xy = 0.0f32;
        let mut xx = 0.0f32;
        let mut yy = 0.0f32;
        for (p, q) in a.iter().zip(b) {
            xy += p * q;
            xx += p * p;
            yy += q * q;
        }
        let denom = (xx * yy).sqrt();
        let r = if denom > f32::EPSILON {
            xy / denom
        } else {
            0.0
        };
        if !crossed {
            crossed = r < 0.0;
            continue;
        }
        if lag >= MIN_PERIOD {
            best = best.max(r);
        }
    }
    best
}

/// The share of `block`'s energy (8 kHz) in its two strongest known tones
/// (DTMF, dial/ring/busy, fax/modem), 0–1. A key or a tone scores above
/// 0.8; speech and noise stay well below.
pub fn tone_fraction(block: &[i16]) -> f32 {
    let n = block.len();
    let energy: f32 = block.iter().map(|&v| f32::from(v) * f32::from(v)).sum();
    if n == 0 || energy <= f32::EPSILON {
        return 0.0;
    }
    let mut powers: Vec<f32> = TONES.iter().map(|&f| goertzel(block, f)).collect();
    powers.sort_by(|a, b| b.total_cmp(a));
    // A sinusoid of amplitude A gives |X|² ≈ (A·n/2)² and Σx² ≈ A²·n/2.
    ((powers[0] + powers[1]) * 2.0 / (n as f32 * energy)).min(1.0)
}

/// |X(f)|² of `x` (8 kHz) at frequency `f`.
fn goertzel(x: &[i16], f: f32) -> f32 {
    let w = 2.0 * std::f32::consts::PI * f / 8000.0;
    let c = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f32, 0.0f32);
    for &v in x {
        let s = f32::from(v) + c * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    s1 * s1 + s2 * s2 - c * s1 * s2
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sines(freqs: &[(f32, f32)], n: usize) -> Vec<i16> {
        (0..n)
            .map(|i| {
                let t = i as f32 / 8000.0;
                freqs
                    .iter()
                    .map(|(f, a)| a * (2.0 * std::f32::consts::PI * f * t).sin())
                    .sum::<f32>() as i16
            })
            .collect()
    }

    fn noise(n: usize, seed: u32, smooth: f32) -> Vec<i16> {
        let mut state = seed | 1;
        let mut y = 0.0f32;
        (0..n)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                let u = (state as f32 / u32::MAX as f32) * 2.0 - 1.0;
                // A one-pole low-pass: `smooth` near 1 is brown-ish noise.
                y = smooth * y + (1.0 - smooth) * u * 8000.0;
                (y * 4.0) as i16
            })
            .collect()
    }

    #[test]
    fn a_buzz_at_a_speech_pitch_is_periodic_and_noise_is_not() {
        let vowel = sines(
            &[
                (140.0, 4000.0),
                (280.0, 3000.0),
                (420.0, 2000.0),
                (700.0, 800.0),
            ],
            256,
        );
        assert!(periodicity(&vowel) > 0.8, "{}", periodicity(&vowel));
        for (seed, smooth) in [(1, 0.0), (2, 0.5), (3, 0.9), (4, 0.97)] {
            let p = periodicity(&noise(256, seed, smooth));
            assert!(p < 0.5, "noise smooth {smooth}: {p}");
        }
        assert_eq!(periodicity(&[0; 256]), 0.0);
        assert_eq!(periodicity(&[5; 10]), 0.0);
    }

    #[test]
    fn keys_and_tones_are_tones_and_a_vowel_is_not() {
        let key = sines(&[(770.0, 6000.0), (1336.0, 6000.0)], 256);
        assert!(tone_fraction(&key) > 0.8, "{}", tone_fraction(&key));
        let dial = sines(&[(350.0, 5000.0), (440.0, 5000.0)], 256);
        assert!(tone_fraction(&dial) > 0.8, "{}", tone_fraction(&dial));
        let vowel = sines(
            &[
                (140.0, 4000.0),
                (280.0, 3000.0),
                (420.0, 2000.0),
                (700.0, 800.0),
            ],
            256,
        );
        assert!(tone_fraction(&vowel) < 0.3, "{}", tone_fraction(&vowel));
        assert!(tone_fraction(&noise(256, 9, 0.0)) < 0.3);
        assert_eq!(tone_fraction(&[]), 0.0);
    }
}
