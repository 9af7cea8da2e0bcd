//! Is a 20 ms frame a steady tone, and at what frequency? The spectral half
//! of beep detection.
//!
//! A voicemail beep is one sine (typically 400–2000 Hz); speech spreads its
//! energy over a pitch's many harmonics and formants, noise over the whole
//! band. So the frame is Hann-windowed and a Goertzel filter is run at every
//! 25 Hz of the beep band (about 75 filters: cheaper than an FFT of the
//! frame plus a dependency, and the grid is finer than the window's 100 Hz
//! main lobe, so a tone between two grid points loses under 10% of its
//! power). The strongest filter's share of the frame's windowed energy is
//! ~0.95 for a sine, even with line noise 15 dB below it, and stays under
//! ~0.7 for vowels.

/// Grid step of the filters, Hz.
const STEP_HZ: u32 = 25;
/// Sample rate of call audio.
const RATE: f32 = 8_000.0;

/// What one frame looks like.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrameTone {
    /// The strongest grid frequency, Hz.
    pub hz: u32,
    /// Its share of the frame's energy, 0–1.
    pub share: f32,
    /// The frame's RMS level, dBFS.
    pub dbfs: f32,
}

/// Goertzel filters over a band for frames of a fixed length.
#[derive(Debug, Clone)]
pub struct ToneAnalyzer {
    /// The Hann window, one weight per sample.
    window: Vec<f32>,
    /// The grid frequencies, Hz.
    freqs: Vec<u32>,
    /// 2·cos(ω) per frequency.
    coeffs: Vec<f32>,
    /// The windowed frame, and each filter's two last states.
    scratch: Vec<f32>,
    s1: Vec<f32>,
    s2: Vec<f32>,
}

impl ToneAnalyzer {
    /// Filters every 25 Hz from `min_hz` to `max_hz` for frames of `len`
    /// samples at 8 kHz.
    pub fn new(len: usize, min_hz: u32, max_hz: u32) -> Self {
        let window = (0..len)
            .map(|i| {
                let x = std::f32::consts::TAU * i as f32 / len as f32;
                0.5 - 0.5 * x.cos()
            })
            .collect();
        let freqs: Vec<u32> = (min_hz / STEP_HZ..=max_hz / STEP_HZ)
            .map(|k| k * STEP_HZ)
            .filter(|&f| (min_hz..=max_hz).contains(&f))
            .collect();
        let coeffs = freqs
            .iter()
            .map(|&f| 2.0 * (std::f32::consts::TAU * f as f32 / RATE).cos())
            .collect();
        ToneAnalyzer {
            window,
            s1: vec![0.0; freqs.len()],
            s2: vec![0.0; freqs.len()],
            freqs,
            coeffs,
            scratch: Vec::with_capacity(len),
        }
    }

    /// The frame's strongest frequency in the band and its share of the
    /// energy. Frames of another length than the analyzer's are judged on
    /// what fits (shorter) or their start (longer); an empty or silent
    /// frame has share 0.
    pub fn analyze(&mut self, frame: &[i16]) -> FrameTone {
        let n = frame.len().min(self.window.len());
        let raw: f64 = frame[..n].iter().map(|&v| f64::from(v).powi(2)).sum();
        let dbfs = if n == 0 || raw <= 0.0 {
            f32::NEG_INFINITY
        } else {
            (10.0 * (raw / n as f64).log10() - 20.0 * 32768f64.log10()) as f32
        };
        self.scratch.clear();
        self.scratch.extend(
            frame[..n]
                .iter()
                .zip(&self.window)
                .map(|(&v, &w)| f32::from(v) * w),
        );
        let energy: f32 = self.scratch.iter().map(|v| v * v).sum();
        if n == 0 || energy <= f32::EPSILON || self.freqs.is_empty() {
            return FrameTone {
                hz: 0,
                share: 0.0,
                dbfs,
            };
        }
        // All filters advance together, sample by sample: the inner loop
        // over filters has no dependency between iterations, so it
        // vectorises (one filter at a time is a serial recursion).
        self.s1.iter_mut().for_each(|v| *v = 0.0);
        self.s2.iter_mut().for_each(|v| *v = 0.0);
        for &v in &self.scratch {
            for ((s1, s2), &c) in self.s1.iter_mut().zip(self.s2.iter_mut()).zip(&self.coeffs) {
                let s = v + c * *s1 - *s2;
                *s2 = *s1;
                *s1 = s;
            }
        }
        let (mut best, mut best_power) = (0, 0.0f32);
        for (i, ((&s1, &s2), &c)) in self.s1.iter().zip(&self.s2).zip(&self.coeffs).enumerate() {
            let power = s1 * s1 + s2 * s2 - c * s1 * s2;
            if power > best_power {
                best = i;
                best_power = power;
            }
        }
        // A windowed sine of amplitude A: |X|² = (A·Σw/2)², and its energy
        // A²/2·Σw²; for the Hann window that ratio is n/3 (n = frame length),
        // so 3|X|² / (n·energy) is 1 for a sine on a grid frequency.
        let share = (3.0 * best_power / (n as f32 * energy)).min(1.0);
        FrameTone {
            hz: self.freqs[best],
            share,
            dbfs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sines(parts: &[(f32, f32)], n: usize) -> Vec<i16> {
        (0..n)
            .map(|i| {
                let t = i as f32 / RATE;
                parts
                    .iter()
                    .map(|(f, a)| a * (std::f32::consts::TAU * f * t).sin())
                    .sum::<f32>() as i16
            })
            .collect()
    }

    fn noise(n: usize, amplitude: f32, seed: u32) -> Vec<i16> {
        let mut state = seed | 1;
        (0..n)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                ((state as f32 / u32::MAX as f32 * 2.0 - 1.0) * amplitude) as i16
            })
            .collect()
    }

    #[test]
    fn a_sine_anywhere_in_the_band_is_a_tone_at_its_frequency() {
        let mut t = ToneAnalyzer::new(160, 300, 2_200);
        for f in [440.0, 612.5, 850.0, 1000.0, 1337.0, 1800.0, 2000.0] {
            let got = t.analyze(&sines(&[(f, 8_000.0)], 160));
            assert!(got.share > 0.85, "{f} Hz: {got:?}");
            assert!((got.hz as f32 - f).abs() <= 13.0, "{f} Hz: {got:?}");
            assert!((got.dbfs + 15.2).abs() < 0.5, "{f} Hz: {got:?}");
        }
    }

    #[test]
    fn a_sine_in_line_noise_is_still_a_tone() {
        let mut t = ToneAnalyzer::new(160, 300, 2_200);
        let tone = sines(&[(1_000.0, 4_000.0)], 160);
        // White noise about 15 dB below the tone.
        let noisy: Vec<i16> = tone
            .iter()
            .zip(noise(160, 1_000.0, 7))
            .map(|(a, b)| a.saturating_add(b))
            .collect();
        let got = t.analyze(&noisy);
        assert!(got.share > 0.8, "{got:?}");
        assert_eq!(got.hz, 1_000);
    }

    #[test]
    fn vowels_noise_keys_and_silence_are_not_tones() {
        let mut t = ToneAnalyzer::new(160, 300, 2_200);
        // A vowel: a 140 Hz pitch with harmonics shaped by formants.
        let vowel = sines(
            &[
                (140.0, 3_000.0),
                (280.0, 4_000.0),
                (420.0, 3_000.0),
                (560.0, 2_000.0),
                (700.0, 1_500.0),
                (1_120.0, 800.0),
            ],
            160,
        );
        assert!(t.analyze(&vowel).share < 0.6, "{:?}", t.analyze(&vowel));
        let hiss = noise(160, 3_000.0, 3);
        assert!(t.analyze(&hiss).share < 0.3, "{:?}", t.analyze(&hiss));
        // A DTMF key is two tones: each holds about half.
        let key = sines(&[(770.0, 6_000.0), (1_336.0, 6_000.0)], 160);
        assert!(t.analyze(&key).share < 0.6, "{:?}", t.analyze(&key));
        let silent = t.analyze(&[0; 160]);
        assert_eq!(silent.share, 0.0);
        assert_eq!(silent.dbfs, f32::NEG_INFINITY);
        assert_eq!(t.analyze(&[]).share, 0.0);
        // Out of the band: a 100 Hz hum is not a beep.
        let hum = sines(&[(100.0, 8_000.0)], 160);
        assert!(t.analyze(&hum).share < 0.3, "{:?}", t.analyze(&hum));
    }
}
