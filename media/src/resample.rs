//! Sample-rate conversion for whole buffers: 8 ↔ 16 kHz for speech engines,
//! and any WAV rate (11025, 22050, 44100, 48000…) down to the 8 kHz of G.711.
//!
//! Deliberately simple: a windowed-sinc FIR low-pass (Hamming window) in
//! front of every decimation so content above the new Nyquist does not fold
//! back as aliasing, zero-stuffing plus the same filter for integer
//! upsampling, and linear interpolation for the ratios that are not integers
//! (after the low-pass). The filter is applied centred, so the output is
//! aligned with the input (no group delay). Buffers are whole prompts or
//! utterances, not streams: there is no state between calls.

use std::f64::consts::PI;

/// Taps per unit of rate ratio; 16 gives a ~0.2·Nyquist transition band.
const TAPS_PER_RATIO: usize = 16;

/// Pass band as a fraction of the target Nyquist frequency (3.6 kHz at 8 kHz).
const PASSBAND: f64 = 0.9;

/// Resample from `from_hz` to `to_hz`. A zero rate yields an empty buffer.
///
/// Output length is `ceil(len * to_hz / from_hz)`: every output instant that
/// falls inside the input gets a sample.
pub fn resample(input: &[i16], from_hz: u32, to_hz: u32) -> Vec<i16> {
    if from_hz == 0 || to_hz == 0 || input.is_empty() {
        return Vec::new();
    }
    if from_hz == to_hz {
        return input.to_vec();
    }
    if to_hz.is_multiple_of(from_hz) {
        return upsample_integer(input, (to_hz / from_hz) as usize);
    }
    if from_hz.is_multiple_of(to_hz) {
        return decimate_integer(input, (from_hz / to_hz) as usize);
    }
    fractional(input, from_hz, to_hz)
}

/// 8 kHz → 16 kHz (exactly twice as many samples).
pub fn upsample_8k_to_16k(input: &[i16]) -> Vec<i16> {
    resample(input, 8_000, 16_000)
}

/// 16 kHz → 8 kHz (half as many samples, rounded up).
pub fn downsample_16k_to_8k(input: &[i16]) -> Vec<i16> {
    resample(input, 16_000, 8_000)
}

/// Any rate → 8 kHz.
pub fn to_8k(input: &[i16], from_hz: u32) -> Vec<i16> {
    resample(input, from_hz, 8_000)
}

/// Low-pass FIR with cutoff `cutoff` (fraction of the sample rate, < 0.5) and
/// unity DC gain. `taps` is made odd so there is a centre tap.
fn lowpass(cutoff: f64, taps: usize) -> Vec<f64> {
    let taps = taps | 1;
    let centre = (taps / 2) as f64;
    let mut h: Vec<f64> = (0..taps)
        .map(|i| {
            let x = i as f64 - centre;
            let sinc = if x == 0.0 {
                2.0 * cutoff
            } else {
                (2.0 * PI * cutoff * x).sin() / (PI * x)
            };
            let window = 0.54 - 0.46 * (2.0 * PI * i as f64 / (taps - 1) as f64).cos();
            sinc * window
        })
        .collect();
    let sum: f64 = h.iter().sum();
    for tap in &mut h {
        *tap /= sum;
    }
    h
}

fn to_i16(x: f64) -> i16 {
    x.round().clamp(f64::from(i16::MIN), f64::from(i16::MAX)) as i16
}

/// Centred FIR output at input position `n` (samples outside are zero).
fn filter_at(input: &[i16], h: &[f64], n: usize) -> f64 {
    let centre = h.len() / 2;
    let first = n.saturating_sub(centre);
    let last = (n + centre).min(input.len() - 1);
    (first..=last)
        .map(|j| f64::from(input[j]) * h[j + centre - n])
        .sum()
}

fn decimate_integer(input: &[i16], factor: usize) -> Vec<i16> {
    let h = lowpass(PASSBAND * 0.5 / factor as f64, TAPS_PER_RATIO * factor);
    (0..input.len().div_ceil(factor))
        .map(|m| to_i16(filter_at(input, &h, m * factor)))
        .collect()
}

fn upsample_integer(input: &[i16], factor: usize) -> Vec<i16> {
    // Zero-stuffing then low-pass at the old Nyquist; only the taps that
    // land on real (non-stuffed) samples contribute.
    let h = lowpass(PASSBAND * 0.5 / factor as f64, TAPS_PER_RATIO * factor);
    let centre = h.len() / 2;
    let gain = factor as f64;
    let out_len = input.len() * factor;
    (0..out_len)
        .map(|j| {
            let lo = j.saturating_sub(centre);
            let hi = (j + centre).min(out_len - 1);
            let first = lo.div_ceil(factor) * factor;
            let acc: f64 = (first..=hi)
                .step_by(factor)
                .map(|z| f64::from(input[z / factor]) * h[z + centre - j])
                .sum();
            to_i16(acc * gain)
        })
        .collect()
}

fn fractional(input: &[i16], from_hz: u32, to_hz: u32) -> Vec<i16> {
    let (from, to) = (u64::from(from_hz), u64::from(to_hz));
    let filtered: Vec<f64> = if from > to {
        let ratio = from_hz as f64 / to_hz as f64;
        let h = lowpass(
            PASSBAND * 0.5 / ratio,
            TAPS_PER_RATIO * ratio.ceil() as usize,
        );
        (0..input.len()).map(|n| filter_at(input, &h, n)).collect()
    } else {
        // Upsampling by a non-integer ratio: interpolation alone is enough
        // for prompts (odd low rates are rare and already band-limited).
        input.iter().map(|&s| f64::from(s)).collect()
    };
    let len = input.len() as u64;
    let out_len = (len * to).div_ceil(from);
    (0..out_len)
        .map(|m| {
            let pos = m * from;
            let i = (pos / to) as usize;
            let frac = (pos % to) as f64 / to as f64;
            let a = filtered[i];
            let b = filtered.get(i + 1).copied().unwrap_or(a);
            to_i16(a + (b - a) * frac)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(freq: f64, rate: u32, len: usize, amplitude: f64) -> Vec<i16> {
        (0..len)
            .map(|n| (amplitude * (2.0 * PI * freq * n as f64 / f64::from(rate)).sin()) as i16)
            .collect()
    }

    fn rms(x: &[i16]) -> f64 {
        (x.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
    }

    #[test]
    fn lengths() {
        let x = vec![0i16; 1001];
        assert_eq!(upsample_8k_to_16k(&x).len(), 2002);
        assert_eq!(downsample_16k_to_8k(&x).len(), 501);
        assert_eq!(to_8k(&x[..1000], 48_000).len(), 167);
        assert_eq!(to_8k(&vec![0; 44_100], 44_100).len(), 8000);
        assert_eq!(to_8k(&vec![0; 11_025], 11_025).len(), 8000);
        assert_eq!(to_8k(&vec![0; 22_050], 22_050).len(), 8000);
        assert_eq!(resample(&vec![0; 6000], 6000, 8000).len(), 8000);
        assert_eq!(to_8k(&x, 8000), x);
        assert!(resample(&x, 0, 8000).is_empty());
        assert!(to_8k(&[], 16_000).is_empty());
    }

    #[test]
    fn sine_survives_8k_16k_8k() {
        let x = sine(1000.0, 8000, 800, 10_000.0);
        let up = upsample_8k_to_16k(&x);
        let back = downsample_16k_to_8k(&up);
        assert_eq!(back.len(), x.len());
        // Ignore the edges where the filter sees zeros beyond the buffer.
        let err: Vec<i16> = x[100..700]
            .iter()
            .zip(&back[100..700])
            .map(|(a, b)| a - b)
            .collect();
        assert!(
            rms(&err) < 0.01 * rms(&x[100..700]),
            "error rms {}",
            rms(&err)
        );
        // And the 16 kHz version is the same sine at twice the rate.
        let expected = sine(1000.0, 16_000, 1600, 10_000.0);
        let err: Vec<i16> = expected[200..1400]
            .iter()
            .zip(&up[200..1400])
            .map(|(a, b)| a - b)
            .collect();
        assert!(rms(&err) < 0.01 * 10_000.0, "error rms {}", rms(&err));
    }

    #[test]
    fn decimation_removes_content_above_the_new_nyquist() {
        // 6 kHz at 16 kHz would alias to 2 kHz at 8 kHz without the filter.
        let x = sine(6000.0, 16_000, 3200, 10_000.0);
        let y = downsample_16k_to_8k(&x);
        assert!(
            rms(&y[100..1500]) < 0.05 * rms(&x),
            "rms {}",
            rms(&y[100..1500])
        );
        // 7 kHz at 44.1 kHz would alias to 1 kHz.
        let x = sine(7000.0, 44_100, 44_100, 10_000.0);
        let y = to_8k(&x, 44_100);
        assert!(
            rms(&y[200..7800]) < 0.05 * rms(&x),
            "rms {}",
            rms(&y[200..7800])
        );
    }

    #[test]
    fn pass_band_survives_every_supported_rate() {
        for rate in [11_025, 16_000, 22_050, 32_000, 44_100, 48_000] {
            let x = sine(1000.0, rate, rate as usize, 10_000.0);
            let y = to_8k(&x, rate);
            let expected = sine(1000.0, 8000, 8000, 10_000.0);
            let err: Vec<i16> = expected[400..7600]
                .iter()
                .zip(&y[400..7600])
                .map(|(a, b)| a - b)
                .collect();
            assert!(
                rms(&err) < 0.03 * 10_000.0,
                "{rate}: error rms {}",
                rms(&err)
            );
        }
    }
}
