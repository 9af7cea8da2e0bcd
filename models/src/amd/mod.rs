//! Answering-machine detection (AMD) for outbound calls: from the first
//! seconds of the answered call's audio, a person or a recorder, and for a
//! recorder the beep after which it records.
//!
//! What the audio shows: a person says a short greeting ("Hello?", "Yes?",
//! "Speaking") and waits for the caller; a recorder plays a long greeting
//! with only short pauses, then a beep (one steady tone). So each 20 ms
//! frame gets a VAD score ([`crate::vad::Vad`], the detector the endpointer
//! uses) and a tone check ([`tone`]: the share of its energy at its
//! strongest frequency), and [`rules`] turns those into a verdict.
//!
//! Sans-IO like the endpointer: the dialler pushes the decoded G.711 of the
//! callee with its time since the answer ([`AmdDetector::push`]), calls
//! [`AmdDetector::handle_timeout`] at [`AmdDetector::poll_timeout`] when no
//! audio comes, and drains [`AmdDetector::poll_event`] after each.
//!
//! - [`config`]: the thresholds ([`AmdConfig`]) and their defaults.
//! - [`event`]: what comes out ([`AmdEvent`], [`Verdict`]).
//! - [`tone`]: the spectral check for beeps.
//! - [`rules`]: the decision rules on per-frame observations.

pub mod config;
pub mod event;
mod rules;
pub mod tone;

use std::time::Duration;

pub use config::AmdConfig;
pub use event::{AmdEvent, HumanReason, MachineReason, Verdict};

use crate::audio;
use crate::vad::Vad;
use crate::ModelError;
use rules::Rules;
use tone::ToneAnalyzer;

/// Call audio rate.
const RATE: u32 = 8_000;
/// Analysis frame: 20 ms at 8 kHz.
const FRAME: usize = 160;
const FRAME_MS: u32 = 20;
/// A push that starts later than the audio so far by more than this means
/// audio was lost in between: the gap is silence.
const GAP_MS: u64 = 40;
/// Times are capped here (35,000 years), so adding to them cannot overflow.
const MAX_MS: u64 = 1 << 50;

/// `d` in ms, capped at [`MAX_MS`].
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).map_or(MAX_MS, |ms| ms.min(MAX_MS))
}

/// The answering-machine detector of one answered call.
pub struct AmdDetector {
    cfg: AmdConfig,
    vad: Vad,
    tone: ToneAnalyzer,
    rules: Rules,
    /// Audio not yet analysed (under one frame) and the time of its first
    /// sample, ms since the answer.
    pending: Vec<i16>,
    pending_at: u64,
    scores: Vec<f32>,
    last_score: f32,
}

impl std::fmt::Debug for AmdDetector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmdDetector")
            .field("verdict", &self.rules.verdict())
            .field("done", &self.rules.is_done())
            .field("pending_at", &self.pending_at)
            .finish()
    }
}

impl AmdDetector {
    /// A detector for 8 kHz linear PCM; fails on inconsistent settings.
    pub fn new(cfg: AmdConfig) -> Result<Self, ModelError> {
        cfg.validate()?;
        Ok(AmdDetector {
            vad: Vad::new(RATE)?,
            tone: ToneAnalyzer::new(FRAME, cfg.beep_min_hz, cfg.beep_max_hz),
            rules: Rules::new(cfg.clone()),
            pending: Vec::with_capacity(2 * FRAME),
            pending_at: 0,
            scores: Vec::with_capacity(4),
            last_score: 0.0,
            cfg,
        })
    }

    /// The settings.
    pub fn config(&self) -> &AmdConfig {
        &self.cfg
    }

    /// Feeds the callee's audio: `frame` (8 kHz linear PCM, any length;
    /// RTP's 20 ms is 160 samples) whose first sample is `at` after the
    /// answer. A frame that starts later than the audio so far continues
    /// after a gap of silence (lost packets); after the last event
    /// ([`Self::is_done`]) audio is ignored.
    pub fn push(&mut self, frame: &[i16], at: Duration) {
        if self.rules.is_done() {
            return;
        }
        let at = millis(at);
        let expected = self.pending_at + (self.pending.len() / (RATE as usize / 1000)) as u64;
        if self.pending.is_empty() || at > expected + GAP_MS {
            // A partial frame before a gap is too short to judge.
            self.pending.clear();
            self.pending_at = at.max(self.pending_at);
        }
        self.pending.extend_from_slice(frame);
        let mut used = 0;
        while self.pending.len() - used >= FRAME {
            let block = &self.pending[used..used + FRAME];
            self.scores.clear();
            self.vad.push(block, &mut self.scores);
            // 20 ms gives one or two 16 ms VAD blocks: the frame is as
            // speech-like as the more speech-like of them.
            if let Some(max) = self.scores.iter().copied().reduce(f32::max) {
                self.last_score = max;
            }
            // Quiet frames (most of a call's pauses) cannot be a beep: skip
            // the filters.
            let tone = if audio::rms_dbfs(block) >= f64::from(self.cfg.beep_min_dbfs) {
                let t = self.tone.analyze(block);
                (t.share >= self.cfg.beep_tone_share).then_some(t.hz)
            } else {
                None
            };
            self.rules
                .frame(self.pending_at, FRAME_MS, self.last_score, tone);
            self.pending_at += u64::from(FRAME_MS);
            used += FRAME;
            if self.rules.is_done() {
                self.pending.clear();
                return;
            }
        }
        self.pending.drain(..used);
    }

    /// No audio came until `now` (after the answer): the rules that wait
    /// on silence run (the decision limit, the end of a greeting, no beep).
    pub fn handle_timeout(&mut self, now: Duration) {
        let now = millis(now);
        self.rules.advance_to(now);
        if now > self.pending_at {
            self.pending.clear();
            self.pending_at = now;
        }
    }

    /// When [`Self::handle_timeout`] must be called if no audio comes
    /// (time since the answer); `None` once done.
    pub fn poll_timeout(&self) -> Option<Duration> {
        self.rules.deadline().map(Duration::from_millis)
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<AmdEvent> {
        self.rules.poll_event()
    }

    /// The verdict so far.
    pub fn verdict(&self) -> Verdict {
        self.rules.verdict()
    }

    /// Whether detection is over (a person; or a machine's beep or no
    /// beep): stop feeding it.
    pub fn is_done(&self) -> bool {
        self.rules.is_done()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(hz: f32, amplitude: f32, ms: u32) -> Vec<i16> {
        (0..ms * 8)
            .map(|i| (amplitude * (std::f32::consts::TAU * hz * i as f32 / 8000.0).sin()) as i16)
            .collect()
    }

    fn feed(d: &mut AmdDetector, audio: &[i16], from_ms: u64) -> Vec<AmdEvent> {
        let mut out = Vec::new();
        for (i, f) in audio.chunks(FRAME).enumerate() {
            d.push(f, Duration::from_millis(from_ms + 20 * i as u64));
            out.extend(std::iter::from_fn(|| d.poll_event()));
        }
        out
    }

    #[test]
    fn silence_is_a_person_at_the_limit_and_deadlines_need_no_audio() {
        let mut d = AmdDetector::new(AmdConfig::default()).unwrap();
        let ev = feed(&mut d, &vec![0; 8 * 3000], 0);
        assert!(ev.is_empty(), "{ev:?}");
        assert_eq!(d.verdict(), Verdict::Undecided);
        assert_eq!(d.poll_timeout(), Some(Duration::from_millis(4000)));
        // The audio stops (no RTP): the deadline decides.
        d.handle_timeout(Duration::from_millis(4000));
        assert_eq!(
            d.poll_event(),
            Some(AmdEvent::Human {
                at: Duration::from_millis(4000),
                reason: HumanReason::Silence
            })
        );
        assert!(d.is_done());
        assert_eq!(d.poll_timeout(), None);
    }

    #[test]
    fn a_beep_alone_is_a_machine_and_its_beep() {
        let mut d = AmdDetector::new(AmdConfig::default()).unwrap();
        let audio: Vec<i16> = [
            vec![0; 8 * 500],
            sine(1000.0, 6000.0, 500),
            vec![0; 8 * 500],
        ]
        .concat();
        let ev = feed(&mut d, &audio, 0);
        assert!(
            matches!(
                ev[0],
                AmdEvent::Machine {
                    reason: MachineReason::Beep,
                    ..
                }
            ),
            "{ev:?}"
        );
        let AmdEvent::Beep { at, ended, hz } = ev[1] else {
            panic!("{ev:?}")
        };
        assert_eq!(hz, 1000);
        assert!(at.as_millis().abs_diff(500) <= 20, "{at:?}");
        assert!(ended.as_millis().abs_diff(1000) <= 20, "{ended:?}");
        assert!(d.is_done());
    }

    #[test]
    fn odd_frame_sizes_and_lost_packets_are_handled() {
        let mut d = AmdDetector::new(AmdConfig::default()).unwrap();
        // 30 ms frames (240 samples), then nothing for 1 s, then 30 ms more.
        let mut ev = Vec::new();
        for i in 0..10u64 {
            d.push(&[0; 240], Duration::from_millis(30 * i));
            ev.extend(std::iter::from_fn(|| d.poll_event()));
        }
        for i in 0..200u64 {
            d.push(&[0; 240], Duration::from_millis(1300 + 30 * i));
            ev.extend(std::iter::from_fn(|| d.poll_event()));
        }
        assert!(
            matches!(ev[..], [AmdEvent::Human { at, reason: HumanReason::Silence }] if at.as_millis().abs_diff(4000) <= 20),
            "{ev:?}"
        );
        // Empty and tiny frames are fine too.
        let mut d = AmdDetector::new(AmdConfig::default()).unwrap();
        d.push(&[], Duration::ZERO);
        d.push(&[1, -1, 32767, -32768], Duration::ZERO);
        assert_eq!(d.poll_event(), None);
    }

    #[test]
    fn bad_settings_are_an_error() {
        let cfg = AmdConfig {
            beep_min_hz: 2_500,
            beep_max_hz: 400,
            ..AmdConfig::default()
        };
        assert!(AmdDetector::new(cfg).is_err());
    }
}
