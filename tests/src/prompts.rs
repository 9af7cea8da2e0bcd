//! Did the caller hear the right prompts, in the right order? Compares what
//! the bot sent (8 kHz, decoded from G.711, shifted in time, with silence
//! between prompts) with the audio the prompts were made from.
//!
//! The measure is normalised cross-correlation at the best lag: 1.0 for the
//! same waveform at any gain, about 0.99 after a μ-law round trip, and low
//! for different words even from the same voice. It is computed for every
//! lag at once with an FFT (overlap-save blocks, so a long recording costs
//! memory proportional to the prompt, not the recording), which finds a
//! prompt anywhere in a call without guessing a search window.
//!
//! Scores compare the expected prompt with the stretch of the recording it
//! lines up with, so the rest of the recording does not dilute them, while a
//! prompt cut short scores at most the square root of the energy fraction
//! that was heard.

use std::f64::consts::PI;
use std::ops::Range;

use anyhow::{bail, Result};

/// Samples in one 20 ms analysis frame at 8 kHz.
const FRAME: usize = 160;

/// A window quieter than this (sum of squared samples: one LSB in total)
/// is digital silence; its correlation means nothing.
const SILENT_WINDOW_ENERGY: f64 = 1.0;

/// Stretches of `audio` louder than `threshold` (RMS per 20 ms frame, in
/// sample units: a few hundred separates speech from line noise), split
/// where at least `min_gap_ms` of quieter frames lie between them. Ranges
/// are in samples, frame aligned, clipped to the audio.
pub fn split_utterances(audio: &[i16], min_gap_ms: u32, threshold: f32) -> Vec<Range<usize>> {
    let min_gap_frames = (min_gap_ms as usize).div_ceil(20).max(1);
    let threshold = f64::from(threshold);
    let mut utterances: Vec<Range<usize>> = Vec::new();
    for (i, frame) in audio.chunks(FRAME).enumerate() {
        let energy: f64 = frame.iter().map(|&s| f64::from(s).powi(2)).sum();
        if (energy / frame.len() as f64).sqrt() < threshold {
            continue;
        }
        let start = i * FRAME;
        let end = start + frame.len();
        match utterances.last_mut() {
            Some(last) if start - last.end < min_gap_frames * FRAME => last.end = end,
            _ => utterances.push(start..end),
        }
    }
    utterances
}

/// How well `heard` contains `expected`: the normalised cross-correlation
/// at the best lag, in [-1, 1]; 0 when either is empty or silent.
pub fn best_match(heard: &[i16], expected: &[i16]) -> f32 {
    find_in(heard, expected).map_or(0.0, |(_, score)| score)
}

/// Where `expected` best lines up with `heard_all`: the sample of
/// `heard_all` where the prompt starts (0 when its start lies before the
/// recording) and the score there. `None` when either is empty or
/// `expected` is silent. The caller decides which score counts as heard;
/// see [`find_in_order`].
pub fn find_in(heard_all: &[i16], expected: &[i16]) -> Option<(usize, f32)> {
    let m = expected.len();
    let n = heard_all.len();
    let expected_energy: f64 = expected.iter().map(|&s| f64::from(s).powi(2)).sum();
    if m == 0 || n == 0 || expected_energy < SILENT_WINDOW_ENERGY {
        return None;
    }
    // Zeros on both sides let the prompt hang over either end of the
    // recording, so a clipped prompt is found (with a lower score).
    let pad = m - 1;
    let padded_len = n + 2 * pad;
    let sample = |j: usize| -> f64 {
        j.checked_sub(pad)
            .and_then(|k| heard_all.get(k))
            .map_or(0.0, |&s| f64::from(s))
    };
    // Exact integer prefix sums: the window energy is a difference of two
    // large numbers.
    let mut prefix = Vec::with_capacity(n + 1);
    prefix.push(0u64);
    let mut acc = 0u64;
    for &s in heard_all {
        acc += (i64::from(s) * i64::from(s)) as u64;
        prefix.push(acc);
    }
    let window_energy = |p: usize| -> f64 {
        let from = p.saturating_sub(pad).min(n);
        let to = (p + m).saturating_sub(pad).min(n);
        (prefix[to] - prefix[from]) as f64
    };

    let size = (2 * m)
        .next_power_of_two()
        .max(padded_len.min(4 * m).next_power_of_two());
    let hop = size - m + 1;
    let fft = Fft::new(size);
    let mut reference: Vec<Complex> = expected
        .iter()
        .map(|&s| Complex::new(f64::from(s), 0.0))
        .chain(std::iter::repeat(Complex::ZERO))
        .take(size)
        .collect();
    fft.forward(&mut reference);

    let last_lag = padded_len - m;
    let mut best: Option<(usize, f64)> = None;
    let mut block = vec![Complex::ZERO; size];
    let mut start = 0;
    while start <= last_lag {
        for (i, slot) in block.iter_mut().enumerate() {
            *slot = Complex::new(sample(start + i), 0.0);
        }
        fft.forward(&mut block);
        for (b, r) in block.iter_mut().zip(&reference) {
            *b = b.mul(r.conj());
        }
        fft.inverse(&mut block);
        for (lag, c) in block.iter().take(hop.min(last_lag + 1 - start)).enumerate() {
            let p = start + lag;
            let energy = window_energy(p);
            if energy < SILENT_WINDOW_ENERGY {
                continue;
            }
            let score = c.re / (expected_energy * energy).sqrt();
            if best.is_none_or(|(_, s)| score > s) {
                best = Some((p, score));
            }
        }
        start += hop;
    }
    let (p, score) = best.unwrap_or((pad, 0.0));
    Some((p.saturating_sub(pad), score.clamp(-1.0, 1.0) as f32))
}

/// Find each of `prompts` in `heard_all`, each after the start of the one
/// before, every one scoring at least `min_score`. Returns (start, score)
/// per prompt, or an error naming the first prompt not heard.
pub fn find_in_order(
    heard_all: &[i16],
    prompts: &[(&str, &[i16])],
    min_score: f32,
) -> Result<Vec<(usize, f32)>> {
    let mut found = Vec::with_capacity(prompts.len());
    let mut from = 0;
    for (name, prompt) in prompts {
        let rest = heard_all.get(from..).unwrap_or_default();
        match find_in(rest, prompt) {
            Some((at, score)) if score >= min_score => {
                found.push((from + at, score));
                // Half a prompt on: tolerant of prompts cut short by the
                // next one, yet the same prompt cannot be found twice.
                from += at + (prompt.len() / 2).max(1);
            }
            Some((at, score)) => bail!(
                "prompt {name:?} not heard after sample {from}: best score {score:.3} at sample {}",
                from + at
            ),
            None => bail!("prompt {name:?} not heard after sample {from}: nothing to compare"),
        }
    }
    Ok(found)
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Complex {
    re: f64,
    im: f64,
}

impl Complex {
    const ZERO: Complex = Complex { re: 0.0, im: 0.0 };

    fn new(re: f64, im: f64) -> Self {
        Complex { re, im }
    }

    fn mul(self, o: Complex) -> Complex {
        Complex::new(
            self.re * o.re - self.im * o.im,
            self.re * o.im + self.im * o.re,
        )
    }

    fn add(self, o: Complex) -> Complex {
        Complex::new(self.re + o.re, self.im + o.im)
    }

    fn sub(self, o: Complex) -> Complex {
        Complex::new(self.re - o.re, self.im - o.im)
    }

    fn conj(self) -> Complex {
        Complex::new(self.re, -self.im)
    }
}

/// In-place iterative radix-2 FFT of one power-of-two size. A crate would
/// do, but this is forty lines and the tests crate stays dependency-light.
struct Fft {
    size: usize,
    /// e^(-2πik/size) for k < size/2.
    twiddles: Vec<Complex>,
}

impl Fft {
    fn new(size: usize) -> Self {
        debug_assert!(size.is_power_of_two());
        let twiddles = (0..size / 2)
            .map(|k| {
                let angle = -2.0 * PI * k as f64 / size as f64;
                Complex::new(angle.cos(), angle.sin())
            })
            .collect();
        Fft { size, twiddles }
    }

    fn forward(&self, data: &mut [Complex]) {
        self.transform(data, false);
    }

    /// Inverse transform, scaled so that inverse(forward(x)) == x.
    fn inverse(&self, data: &mut [Complex]) {
        self.transform(data, true);
        let scale = 1.0 / self.size as f64;
        for x in data.iter_mut() {
            x.re *= scale;
            x.im *= scale;
        }
    }

    fn transform(&self, data: &mut [Complex], inverse: bool) {
        let n = self.size;
        let bits = n.trailing_zeros();
        if n > 1 {
            for i in 0..n {
                let j = i.reverse_bits() >> (usize::BITS - bits);
                if i < j {
                    data.swap(i, j);
                }
            }
        }
        let mut len = 2;
        while len <= n {
            let stride = n / len;
            for chunk in data.chunks_mut(len) {
                let (low, high) = chunk.split_at_mut(len / 2);
                for (k, (a, b)) in low.iter_mut().zip(high.iter_mut()).enumerate() {
                    let w = self.twiddles[k * stride];
                    let w = if inverse { w.conj() } else { w };
                    let t = b.mul(w);
                    *b = a.sub(t);
                    *a = a.add(t);
                }
            }
            len *= 2;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pcap::{ulaw_decode, ulaw_encode};

    /// Deterministic noise (xorshift), so failures reproduce.
    fn noise(len: usize, seed: u64, amplitude: f64) -> Vec<i16> {
        let mut x = seed.max(1);
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                ((x >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) * amplitude
            })
            .map(|v| v as i16)
            .collect()
    }

    /// A rising chirp `ms` long, from `f0` to `f1` Hz, under a smooth envelope.
    fn chirp(ms: usize, f0: f64, f1: f64) -> Vec<i16> {
        let n = ms * 8;
        (0..n)
            .map(|i| {
                let t = i as f64 / 8000.0;
                let dur = n as f64 / 8000.0;
                let phase = 2.0 * PI * (f0 * t + (f1 - f0) * t * t / (2.0 * dur));
                let envelope = (PI * i as f64 / n as f64).sin();
                (phase.sin() * envelope * 12_000.0) as i16
            })
            .collect()
    }

    fn ulaw(audio: &[i16]) -> Vec<i16> {
        audio.iter().map(|&s| ulaw_decode(ulaw_encode(s))).collect()
    }

    fn silence(ms: usize) -> Vec<i16> {
        vec![0; ms * 8]
    }

    #[test]
    fn fft_matches_a_direct_correlation() {
        let heard = noise(300, 1, 1000.0);
        let expected = noise(40, 2, 1000.0);
        let energy = |s: &[i16]| s.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>();
        let mut best = (0, f64::MIN);
        for p in 0..=heard.len() - expected.len() {
            let window = &heard[p..p + expected.len()];
            let dot: f64 = window
                .iter()
                .zip(&expected)
                .map(|(&a, &b)| f64::from(a) * f64::from(b))
                .sum();
            let score = dot / (energy(window) * energy(&expected)).sqrt();
            if score > best.1 {
                best = (p, score);
            }
        }
        let (at, score) = find_in(&heard, &expected).unwrap();
        assert_eq!(at, best.0);
        assert!(
            (f64::from(score) - best.1).abs() < 1e-5,
            "{score} vs {}",
            best.1
        );
    }

    #[test]
    fn same_signal_through_ulaw_scores_high_and_others_low() {
        let prompt = chirp(1500, 300.0, 3000.0);
        let heard = ulaw(&prompt);
        let same = best_match(&heard, &prompt);
        assert!(same > 0.95, "μ-law copy scored {same}");
        let quieter: Vec<i16> = prompt.iter().map(|&s| s / 4).collect();
        assert!(
            best_match(&ulaw(&quieter), &prompt) > 0.95,
            "gain changes nothing"
        );

        let other = chirp(1500, 3000.0, 300.0);
        let burst = noise(12_000, 7, 8000.0);
        assert!(best_match(&ulaw(&other), &prompt) < 0.5);
        assert!(best_match(&ulaw(&burst), &prompt) < 0.5);
        assert!(best_match(&prompt, &burst) < 0.5);

        assert_eq!(best_match(&[], &prompt), 0.0);
        assert_eq!(best_match(&heard, &[]), 0.0);
        assert_eq!(best_match(&heard, &silence(100)), 0.0);
        assert_eq!(best_match(&silence(2000), &prompt), 0.0);
    }

    #[test]
    fn shifted_copies_are_found_where_they_are() {
        let prompt = chirp(800, 500.0, 2500.0);
        for shift in [0usize, 1, 159, 4000, 12_345] {
            let mut heard = noise(shift, 3, 30.0);
            heard.extend(ulaw(&prompt));
            heard.extend(silence(300));
            let (at, score) = find_in(&heard, &prompt).unwrap();
            assert_eq!(at, shift);
            assert!(score > 0.95, "shift {shift}: {score}");
        }
        // Only the second half made it into the recording.
        let half = &prompt[prompt.len() / 2..];
        let (at, score) = find_in(half, &prompt).unwrap();
        assert_eq!(at, 0);
        assert!(score > 0.5 && score < 0.8, "half a prompt scored {score}");
    }

    #[test]
    fn prompts_are_recovered_in_order() {
        let greeting = chirp(1200, 300.0, 2000.0);
        let menu = noise(9600, 11, 6000.0);
        let goodbye = chirp(700, 2500.0, 600.0);
        let mut call = noise(2400, 5, 20.0);
        for prompt in [&greeting, &menu, &goodbye] {
            call.extend(ulaw(prompt));
            call.extend(noise(4000, 6, 20.0));
        }
        let found = find_in_order(
            &call,
            &[
                ("greeting", &greeting),
                ("menu", &menu),
                ("goodbye", &goodbye),
            ],
            0.9,
        )
        .unwrap();
        let starts: Vec<usize> = found.iter().map(|f| f.0).collect();
        assert_eq!(
            starts,
            [2400, 2400 + 9600 + 4000, 2400 + 2 * 4000 + 9600 * 2]
        );

        let err = find_in_order(
            &call,
            &[("goodbye", &goodbye), ("greeting", &greeting)],
            0.9,
        )
        .unwrap_err();
        assert!(err.to_string().contains("\"greeting\""), "{err}");

        let parts = split_utterances(&call, 300, 300.0);
        let near = |a: usize, b: usize| a.abs_diff(b) <= 2 * FRAME;
        let prompts = [2400..12_000, 16_000..25_600, 29_600..35_200];
        assert_eq!(parts.len(), 3, "{parts:?}");
        for (part, prompt) in parts.iter().zip(&prompts) {
            // The chirps fade in and out, so their quiet edges may fall
            // under the threshold.
            assert!(
                near(part.start, prompt.start) && near(part.end, prompt.end),
                "{parts:?}"
            );
        }
        for (part, prompt) in parts.iter().zip([&greeting, &menu, &goodbye]) {
            assert!(best_match(&call[part.clone()], prompt) > 0.95);
        }
    }

    #[test]
    fn utterances_split_on_long_gaps_only() {
        let word = chirp(200, 400.0, 900.0);
        let mut audio = silence(100);
        audio.extend(&word);
        audio.extend(silence(100)); // a pause inside a sentence
        audio.extend(&word);
        audio.extend(silence(600));
        audio.extend(&word[..1000]); // ends mid-frame
        let parts = split_utterances(&audio, 300, 300.0);
        assert_eq!(parts.len(), 2, "{parts:?}");
        assert!(
            parts[0].start <= 800 + 480 && parts[0].end >= 4800 - 480,
            "{parts:?}"
        );
        assert_eq!(parts[1].end, audio.len());
        assert!(split_utterances(&silence(1000), 300, 300.0).is_empty());
        assert!(split_utterances(&[], 300, 300.0).is_empty());
    }

    /// Real speech: two sentences from the same voice must be told apart
    /// from each other and from a third, and found where they were played.
    #[test]
    fn espeak_sentences_are_found_in_order() {
        use crate::speech::{espeak_8k, espeak_available, ulaw_round_trip};
        assert!(
            espeak_available(),
            "espeak-ng missing: ./scripts/install-deps.sh"
        );
        let greeting = espeak_8k(
            "Welcome to voxbridge. Please say your order number.",
            "en-us",
        )
        .unwrap();
        let confirm = espeak_8k(
            "Thank you. Your order has been shipped and arrives tomorrow.",
            "en-us",
        )
        .unwrap();
        let unrelated = espeak_8k("The quick brown fox jumps over the lazy dog.", "en-us").unwrap();

        let mut call = noise(4000, 21, 20.0);
        let greeting_at = call.len();
        call.extend(ulaw_round_trip(&greeting));
        call.extend(noise(8000, 22, 20.0));
        let confirm_at = call.len();
        call.extend(ulaw_round_trip(&confirm));
        call.extend(noise(4000, 23, 20.0));

        let t = std::time::Instant::now();
        let found = find_in_order(
            &call,
            &[("greeting", &greeting), ("confirm", &confirm)],
            0.9,
        )
        .unwrap();
        eprintln!("found {found:?} in {:?}", t.elapsed());
        assert_eq!(found[0].0, greeting_at);
        assert_eq!(found[1].0, confirm_at);
        let (_, stranger) = find_in(&call, &unrelated).unwrap();
        let cross = best_match(&ulaw_round_trip(&confirm), &greeting);
        eprintln!("unrelated sentence {stranger:.3}, greeting in confirm {cross:.3}");
        assert!(stranger < 0.5, "an unrelated sentence scored {stranger}");
        assert!(cross < 0.5, "a different sentence scored {cross}");

        // The bot's TTS may resample along another path; a sub-sample
        // offset and a different filter must not matter much.
        let raw = espeak_22k("Welcome to voxbridge. Please say your order number.");
        let other_path = voxbridge_media::resample::resample(
            &voxbridge_media::resample::resample(&raw, 22_050, 16_000),
            16_000,
            8_000,
        );
        let via_16k = best_match(&ulaw_round_trip(&other_path), &greeting);
        eprintln!("greeting resampled through 16 kHz {via_16k:.3}");
        assert!(via_16k > 0.9, "{via_16k}");

        let parts = split_utterances(&call, 700, 300.0);
        eprintln!("utterances {parts:?}");
        assert_eq!(parts.len(), 2, "{parts:?}");
        assert!(best_match(&call[parts[0].clone()], &greeting) > 0.9);
        assert!(best_match(&call[parts[1].clone()], &confirm) > 0.9);
    }

    fn espeak_22k(text: &str) -> Vec<i16> {
        let wav =
            std::env::temp_dir().join(format!("voxbridge-prompts-{}.wav", std::process::id()));
        let ok = std::process::Command::new("espeak-ng")
            .args(["-v", "en-us", "-s", "160", "-w"])
            .arg(&wav)
            .arg(text)
            .status()
            .unwrap()
            .success();
        assert!(ok);
        let reader = hound::WavReader::open(&wav).unwrap();
        assert_eq!(reader.spec().sample_rate, 22_050);
        let samples = reader.into_samples::<i16>().map(Result::unwrap).collect();
        std::fs::remove_file(&wav).ok();
        samples
    }

    /// A 10 s recording against a 10 s and a 3 s prompt: found, and where.
    /// The time is printed (the cost the e2e tests pay per comparison,
    /// about 0.7 s in release on a busy two-core machine), not asserted.
    #[test]
    fn ten_seconds_compare_and_the_part_is_found() {
        let recording = ulaw(&noise(80_000, 31, 4000.0));
        let long = &recording[..80_000];
        let short = &recording[30_000..54_000];
        let t = std::time::Instant::now();
        let whole = best_match(&recording, long);
        let whole_time = t.elapsed();
        let t = std::time::Instant::now();
        let found = find_in(&recording, short);
        let part_time = t.elapsed();
        eprintln!("10 s vs 10 s: {whole_time:?}, 10 s vs 3 s: {part_time:?}");
        assert!(whole > 0.99);
        assert_eq!(found.map(|f| f.0), Some(30_000));
    }
}
