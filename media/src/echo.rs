//! Is the caller's audio our own prompt coming back? Phone lines return
//! part of what we send (hybrid and acoustic echo: 10–20 dB down, tens to
//! hundreds of ms late, band-limited), and a VAD hears that echo as speech.
//! We know what we play, so we compare: [`EchoDetector`] keeps 5 ms energy
//! envelopes of the sent and the received audio and, over the last 200 ms
//! of received audio, takes the best normalised cross-correlation with the
//! sent envelope at lags up to 200 ms. Envelopes, not waveforms: an echo
//! path filters and phase-shifts the signal, which ruins sample-level
//! correlation but keeps the syllable rhythm; and 40 points × 40 lags costs
//! a few thousand multiply-adds per 20 ms frame.
//!
//! Sans-IO: audio in, a verdict out; no clock. The two streams are aligned
//! by their latest blocks: call [`EchoDetector::push_sent`] for every frame
//! sent (silence included) and [`EchoDetector::push_received`] for every
//! frame received, in the session's order (received, then sent, per frame).

use std::collections::VecDeque;

/// Envelope block length, in ms.
const BLOCK_MS: u32 = 5;
/// Fewest blocks a verdict is given on.
const MIN_BLOCKS: usize = 8;

/// Settings of an [`EchoDetector`].
#[derive(Debug, Clone, PartialEq)]
pub struct EchoConfig {
    /// Sample rate of both streams (8000 for calls).
    pub sample_rate: u32,
    /// Received audio compared, in ms.
    pub window_ms: u32,
    /// Longest echo delay looked for, in ms (network round trip, jitter
    /// buffer and the echo path together).
    pub max_lag_ms: u32,
    /// Correlation at or above which the received audio is our echo.
    pub min_correlation: f32,
    /// An echo is at least this much quieter than what we sent (dB): a
    /// caller louder than our own prompt is not its echo.
    pub min_loss_db: f32,
    /// Sent audio below this RMS (dBFS) over the window is silence: there
    /// is nothing to echo.
    pub silence_dbfs: f32,
}

impl Default for EchoConfig {
    fn default() -> Self {
        EchoConfig {
            sample_rate: 8_000,
            window_ms: 200,
            max_lag_ms: 200,
            min_correlation: 0.8,
            min_loss_db: 3.0,
            silence_dbfs: -50.0,
        }
    }
}

/// The best match of the received window against the sent audio.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EchoMatch {
    /// Normalised cross-correlation of the envelopes (−1…1).
    pub correlation: f32,
    /// The lag it was found at, in ms behind the latest sent block.
    pub lag_ms: u32,
    /// How much quieter the received window is than the sent one at that
    /// lag, in dB (positive: quieter).
    pub loss_db: f32,
}

/// Echo detection for one call; see the module doc.
#[derive(Debug, Clone)]
pub struct EchoDetector {
    cfg: EchoConfig,
    block_len: usize,
    window: usize,
    max_lag: usize,
    /// Sent envelope, newest last: window + max_lag blocks at most.
    sent: VecDeque<f32>,
    /// Received envelope, newest last: window blocks at most.
    received: VecDeque<f32>,
    sent_acc: Accumulator,
    received_acc: Accumulator,
}

/// Sum of squares of a block being filled.
#[derive(Debug, Clone, Copy, Default)]
struct Accumulator {
    sum: f64,
    n: usize,
}

impl EchoDetector {
    /// A detector; lengths are rounded to whole 5 ms blocks.
    pub fn new(cfg: EchoConfig) -> Self {
        let block_len = (cfg.sample_rate * BLOCK_MS / 1000).max(1) as usize;
        let window = (cfg.window_ms / BLOCK_MS).max(4) as usize;
        let max_lag = (cfg.max_lag_ms / BLOCK_MS) as usize;
        EchoDetector {
            block_len,
            window,
            max_lag,
            sent: VecDeque::with_capacity(window + max_lag + 1),
            received: VecDeque::with_capacity(window + 1),
            sent_acc: Accumulator::default(),
            received_acc: Accumulator::default(),
            cfg,
        }
    }

    /// The settings.
    pub fn config(&self) -> &EchoConfig {
        &self.cfg
    }

    /// What we sent (the prompt, or silence while nothing plays).
    pub fn push_sent(&mut self, pcm: &[i16]) {
        let keep = self.window + self.max_lag;
        push_env(
            &mut self.sent,
            &mut self.sent_acc,
            self.block_len,
            keep,
            pcm,
        );
    }

    /// What the caller's side carried.
    pub fn push_received(&mut self, pcm: &[i16]) {
        let keep = self.window;
        push_env(
            &mut self.received,
            &mut self.received_acc,
            self.block_len,
            keep,
            pcm,
        );
    }

    /// Forgets both streams (a new call, or the streams lost alignment).
    pub fn reset(&mut self) {
        self.sent.clear();
        self.received.clear();
        self.sent_acc = Accumulator::default();
        self.received_acc = Accumulator::default();
    }

    /// The best match over all lags, when there is enough of both streams
    /// (40 ms; the window is shorter until 200 ms have been heard, so the
    /// start of a call's first prompt is judged too) and we sent something
    /// audible.
    pub fn best_match(&self) -> Option<EchoMatch> {
        let w = self.window.min(self.received.len()).min(self.sent.len());
        if w < MIN_BLOCKS {
            return None;
        }
        let floor = 32768.0 * 10f32.powf(self.cfg.silence_dbfs / 20.0);
        let recv = self.received.range(self.received.len() - w..);
        let (r_mean, r_dev) = mean_dev(recv.clone(), w);
        if r_dev <= f32::EPSILON {
            return None;
        }
        let lags = (self.sent.len() - w).min(self.max_lag);
        let mut best: Option<EchoMatch> = None;
        for lag in 0..=lags {
            // Lag 0: the newest sent blocks.
            let end = self.sent.len() - lag;
            let s = self.sent.range(end - w..end);
            let (s_mean, s_dev) = mean_dev(s.clone(), w);
            if s_mean < floor || s_dev <= f32::EPSILON {
                continue;
            }
            let cov: f32 = recv
                .clone()
                .zip(s)
                .map(|(r, s)| (r - r_mean) * (s - s_mean))
                .sum();
            let correlation = cov / (r_dev * s_dev);
            if best.is_none_or(|b| correlation > b.correlation) {
                best = Some(EchoMatch {
                    correlation,
                    lag_ms: lag as u32 * BLOCK_MS,
                    loss_db: 20.0 * (s_mean / r_mean.max(1e-3)).log10(),
                });
            }
        }
        best
    }

    /// Whether the last window of received audio is our echo.
    pub fn is_echo(&self) -> bool {
        self.best_match().is_some_and(|m| {
            m.correlation >= self.cfg.min_correlation && m.loss_db >= self.cfg.min_loss_db
        })
    }
}

/// Appends `pcm`'s 5 ms RMS values to `env`, keeping the newest `keep`.
fn push_env(
    env: &mut VecDeque<f32>,
    acc: &mut Accumulator,
    block_len: usize,
    keep: usize,
    pcm: &[i16],
) {
    for &x in pcm {
        acc.sum += f64::from(x) * f64::from(x);
        acc.n += 1;
        if acc.n == block_len {
            env.push_back((acc.sum / block_len as f64).sqrt() as f32);
            *acc = Accumulator::default();
            while env.len() > keep {
                env.pop_front();
            }
        }
    }
}

/// Mean and the root of the summed squared deviations of `n` values.
fn mean_dev<'a>(x: impl Iterator<Item = &'a f32> + Clone, n: usize) -> (f32, f32) {
    let mean = x.clone().sum::<f32>() / n as f32;
    let ss: f32 = x.map(|v| (v - mean) * (v - mean)).sum();
    (mean, ss.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A syllable-like signal: a 150 Hz buzz switched on and off irregularly.
    fn babble(ms: usize, seed: u32) -> Vec<i16> {
        let mut state = seed | 1;
        let mut on = true;
        let mut out = Vec::with_capacity(ms * 8);
        for chunk in 0..ms / 40 {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            if !(state >> 16).is_multiple_of(3) {
                on = !on;
            }
            for i in 0..320 {
                let t = (chunk * 320 + i) as f32 / 8000.0;
                let s = (2.0 * std::f32::consts::PI * 150.0 * t).sin()
                    + 0.5 * (2.0 * std::f32::consts::PI * 450.0 * t).sin();
                out.push(if on { (s * 6000.0) as i16 } else { 0 });
            }
        }
        out
    }

    /// Runs `sent` and `received` through a detector frame by frame; the
    /// share of frames (after the first 400 ms) judged echo.
    fn echo_share(sent: &[i16], received: &[i16]) -> f32 {
        let mut d = EchoDetector::new(EchoConfig::default());
        let mut echo = 0;
        let mut n = 0;
        for (i, (s, r)) in sent.chunks(160).zip(received.chunks(160)).enumerate() {
            d.push_received(r);
            if i >= 20 {
                n += 1;
                echo += usize::from(d.is_echo());
            }
            d.push_sent(s);
        }
        echo as f32 / n as f32
    }

    fn delayed(x: &[i16], ms: usize, gain_db: f32) -> Vec<i16> {
        let g = 10f32.powf(gain_db / 20.0);
        let mut out = vec![0i16; ms * 8];
        out.extend(x.iter().map(|&v| (f32::from(v) * g) as i16));
        out.truncate(x.len());
        out
    }

    #[test]
    fn an_attenuated_delayed_copy_is_echo() {
        let sent = babble(4000, 7);
        for (ms, db) in [(20, -10.0), (60, -15.0), (120, -20.0), (180, -12.0)] {
            let share = echo_share(&sent, &delayed(&sent, ms, db));
            assert!(share > 0.9, "{ms} ms, {db} dB: {share}");
        }
    }

    #[test]
    fn other_speech_and_loud_copies_are_not_echo() {
        let sent = babble(4000, 7);
        let caller = babble(4000, 99);
        let share = echo_share(&sent, &caller);
        assert!(share < 0.1, "independent babble: {share}");
        // Louder than what we sent: not an echo, whatever its shape.
        let share = echo_share(&sent, &delayed(&sent, 40, 3.0));
        assert_eq!(share, 0.0);
        // Nothing sent: nothing can be an echo.
        let share = echo_share(&vec![0; sent.len()], &caller);
        assert_eq!(share, 0.0);
    }

    #[test]
    fn a_caller_over_the_echo_is_not_echo() {
        let sent = babble(4000, 7);
        let echo = delayed(&sent, 60, -15.0);
        let caller = babble(4000, 31);
        let both: Vec<i16> = echo
            .iter()
            .zip(&caller)
            .map(|(&e, &c)| e.saturating_add(c))
            .collect();
        let share = echo_share(&sent, &both);
        assert!(share < 0.2, "{share}");
    }
}
