//! The tests of the two resamplers this crate replaced (`media::resample`
//! and `models::audio::resample`), and the cases they got wrong: fractional
//! ratios (44100 → 8000, 11025 → 8000), where the media one interpolated
//! linearly after its low-pass and the models one rounded the length.

use super::*;
use std::f64::consts::PI;
use std::time::Instant;

fn sine(freq: f64, rate: u32, len: usize, amplitude: f64) -> Vec<i16> {
    (0..len)
        .map(|n| (amplitude * (2.0 * PI * freq * n as f64 / f64::from(rate)).sin()) as i16)
        .collect()
}

fn tone(hz: f64, rate: u32, secs: f64) -> Vec<i16> {
    sine(hz, rate, (f64::from(rate) * secs) as usize, 10_000.0)
}

fn rms(x: &[i16]) -> f64 {
    (x.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
}

fn rms_dbfs(x: &[i16]) -> f64 {
    20.0 * (rms(x) / 32768.0).log10()
}

/// The frequency of a steady tone from its zero crossings (Hz).
fn frequency(x: &[i16], rate: u32) -> f64 {
    let crossings: Vec<f64> = x
        .windows(2)
        .enumerate()
        .filter(|(_, w)| w[0] < 0 && w[1] >= 0)
        .map(|(i, w)| {
            // Interpolated instant of the upward crossing.
            let (a, b) = (f64::from(w[0]), f64::from(w[1]));
            i as f64 + a / (a - b)
        })
        .collect();
    let (first, last) = (crossings[0], crossings[crossings.len() - 1]);
    (crossings.len() - 1) as f64 * f64::from(rate) / (last - first)
}

// --- from media::resample ---------------------------------------------------

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
    assert!(resample(&x, 8000, 0).is_empty());
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

// --- from models::audio -----------------------------------------------------

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

/// Was `tabulated_kernel_matches_the_direct_one` (the models copy's phase
/// table against its own per-sample kernel, an implementation detail gone
/// with it): the same two-tone signal and rate pairs, now held to the exact
/// band-limited signal at the output instants.
#[test]
fn matches_the_ideal_band_limited_signal() {
    let two_tones = |rate: u32, len: usize| -> Vec<f64> {
        (0..len)
            .map(|n| {
                let t = n as f64 / f64::from(rate);
                5_000.0 * (2.0 * PI * 440.0 * t).sin() + 5_000.0 * (2.0 * PI * 3100.0 * t).sin()
            })
            .collect()
    };
    for (from, to) in [
        (8_000, 16_000),
        (16_000, 8_000),
        (22_050, 8_000),
        (8_000, 11_025),
    ] {
        let len = from as usize / 5;
        let input: Vec<i16> = two_tones(from, len).iter().map(|&v| v as i16).collect();
        let out = resample(&input, from, to);
        let ideal = two_tones(to, out.len());
        // Away from the ends, where the filter sees the zeros past the buffer.
        let edge = to as usize / 50;
        let err: Vec<f64> = out[edge..out.len() - edge]
            .iter()
            .zip(&ideal[edge..ideal.len() - edge])
            .map(|(&a, &b)| f64::from(a) - b)
            .collect();
        let err_rms = (err.iter().map(|e| e * e).sum::<f64>() / err.len() as f64).sqrt();
        // 1 % of the signal's RMS (5000): −40 dB.
        assert!(err_rms < 50.0, "{from} -> {to}: error rms {err_rms:.1}");
    }
}

// --- what the old copies got wrong ------------------------------------------

#[test]
fn fractional_ratios_keep_pass_band_tones() {
    for rate in [44_100, 11_025] {
        for hz in [300.0, 1000.0, 2500.0, 3400.0] {
            let x = tone(hz, rate, 1.0);
            let y = to_8k(&x, rate);
            assert_eq!(y.len(), 8000, "{rate}");
            let inner = &y[400..7600];
            let gain = rms_dbfs(inner) - rms_dbfs(&x);
            assert!(gain.abs() < 0.5, "{rate} Hz, {hz} Hz tone: {gain:+.2} dB");
            let f = frequency(inner, 8000);
            assert!(
                (f - hz).abs() < 0.5,
                "{rate} Hz, {hz} Hz tone came out at {f:.2} Hz"
            );
        }
    }
}

#[test]
fn fractional_ratios_stop_what_would_alias() {
    // Above 4 kHz nothing may survive at 8 kHz: 4.5 kHz would fold to
    // 3.5 kHz, 6 kHz to 2 kHz, 7.9 kHz to 100 Hz.
    for rate in [44_100, 11_025, 22_050, 48_000] {
        for hz in [4_500.0, 6_000.0, 7_900.0] {
            if hz >= f64::from(rate) / 2.0 {
                continue;
            }
            let x = tone(hz, rate, 1.0);
            let y = to_8k(&x, rate);
            let down = rms_dbfs(&y[400..7600]) - rms_dbfs(&x);
            assert!(
                down < -40.0,
                "{rate} Hz, {hz} Hz tone: only {down:.1} dB down"
            );
        }
    }
}

#[test]
fn lengths_are_ceil_of_the_ratio() {
    for (from, to) in [
        (44_100, 8_000),
        (11_025, 8_000),
        (22_050, 8_000),
        (48_000, 8_000),
        (8_000, 16_000),
        (16_000, 8_000),
        (8_000, 11_025),
        (44_101, 8_000),
    ] {
        for len in [1usize, 2, 5, 7, 100, 441, 1001, 12_345] {
            let x = vec![100i16; len];
            let want = (len as u64 * u64::from(to)).div_ceil(u64::from(from)) as usize;
            assert_eq!(resample(&x, from, to).len(), want, "{from} -> {to}, {len}");
        }
    }
}

#[test]
fn an_impulse_stays_centred() {
    for (from, to) in [
        (44_100, 8_000),
        (11_025, 8_000),
        (22_050, 8_000),
        (16_000, 8_000),
        (8_000, 16_000),
        (8_000, 11_025),
    ] {
        for at in [from as usize / 2, from as usize / 3 + 7] {
            let mut x = vec![0i16; from as usize];
            x[at] = 30_000;
            let y = resample(&x, from, to);
            let expected = at as f64 * f64::from(to) / f64::from(from);
            // The centre of mass of the response's main lobe.
            let peak = y
                .iter()
                .enumerate()
                .max_by_key(|(_, v)| v.abs())
                .map(|(i, _)| i)
                .unwrap_or(0);
            let lobe = peak.saturating_sub(2)..(peak + 3).min(y.len());
            let (mut m, mut w) = (0.0, 0.0);
            for i in lobe {
                let v = f64::from(y[i]).max(0.0);
                m += v * i as f64;
                w += v;
            }
            let centre = m / w;
            assert!(
                (centre - expected).abs() < 1.0,
                "{from} -> {to}: impulse at {expected:.2} came out at {centre:.2}"
            );
        }
    }
}

#[test]
fn dc_and_full_scale_survive() {
    let y = to_8k(&vec![1000; 16_000], 16_000);
    assert_eq!(y[4000], 1000);
    let y = to_8k(&vec![-500; 44_100], 44_100);
    assert_eq!(y[4000], -500);
    // A full-scale square wave rings past i16 at its edges: clamped, not wrapped.
    let square: Vec<i16> = (0..44_100)
        .map(|i| {
            if (i / 100) % 2 == 0 {
                i16::MAX
            } else {
                i16::MIN
            }
        })
        .collect();
    let y = to_8k(&square, 44_100);
    assert!(y[1000..7000].contains(&i16::MAX));
}

#[test]
fn odd_and_extreme_rates_do_not_panic() {
    let x = tone(440.0, 8000, 0.1);
    for (from, to) in [
        (1, 8_000),
        (8_000, 1),
        (44_101, 8_000),
        (384_000, 8_000),
        (3_999_999, 8_000),
        (u32::MAX, 8_000),
    ] {
        let want = (x.len() as u64 * u64::from(to)).div_ceil(u64::from(from)) as usize;
        assert_eq!(resample(&x, from, to).len(), want, "{from} -> {to}");
    }
}

/// Time per second of audio for the conversions the engine makes (printed;
/// the figures are in docs/benchmarks.md). Run with `--nocapture`.
#[test]
#[ignore = "benchmark: cargo test --release -p voxbridge-resample -- --ignored --nocapture"]
fn speed() {
    for (from, to) in [
        (8_000, 16_000),
        (16_000, 8_000),
        (22_050, 8_000),
        (44_100, 8_000),
    ] {
        let x = tone(1000.0, from, 3.0);
        let runs = 50;
        let start = Instant::now();
        for _ in 0..runs {
            std::hint::black_box(resample(std::hint::black_box(&x), from, to));
        }
        let per_second = start.elapsed().as_secs_f64() * 1e6 / (runs as f64 * 3.0);
        println!("resample {from} -> {to}: {per_second:.0} µs per second of audio");
    }
}
