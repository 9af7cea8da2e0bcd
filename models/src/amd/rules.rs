//! The decision rules of answering-machine detection, on what each 20 ms
//! frame showed (its VAD score, whether it is a tone) rather than on audio,
//! so every rule is tested with a few lines of frames.
//!
//! - A greeting starts after `speech_start_ms` of speech and goes on across
//!   pauses shorter than `human_silence_ms`.
//! - It lasts `machine_greeting_ms` → `Machine` (a recording speaks on).
//! - It ends (`human_silence_ms` of silence) shorter → `Human` (a person
//!   said "Hello?" and waits).
//! - A steady tone of `beep_min_ms` before any verdict → `Machine`.
//! - `decision_limit_ms` without a verdict → `Human`.
//! - After `Machine`: the tone's end gives `Beep`; no tone within
//!   `beep_wait_ms`, or `no_beep_silence_ms` of silence, gives `NoBeep`.

use std::collections::VecDeque;
use std::time::Duration;

use super::config::AmdConfig;
use super::event::{AmdEvent, HumanReason, MachineReason, Verdict};

/// Frequencies of one beep's frames may differ by this much (the grid
/// step twice: a tone between grid points, noise).
const SAME_TONE_HZ: u32 = 50;

/// No audio this long during a tone ends it (a deadline; lost packets
/// within a beep are shorter).
const TONE_GAP_MS: u64 = 100;

/// A run of tone frames at one frequency.
#[derive(Debug, Clone, Copy)]
struct ToneRun {
    start: u64,
    end: u64,
    hz: u32,
}

/// The decision state of one answered call.
#[derive(Debug)]
pub(crate) struct Rules {
    cfg: AmdConfig,
    verdict: Verdict,
    done: bool,
    /// End of the audio seen (ms since the answer).
    now: u64,
    was_speech: bool,
    speech_run: u64,
    greeting_start: Option<u64>,
    last_speech_end: u64,
    /// End of the last speech or tone.
    last_sound_end: u64,
    tone: Option<ToneRun>,
    machine_at: u64,
    events: VecDeque<AmdEvent>,
}

fn dur(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

impl Rules {
    pub(crate) fn new(cfg: AmdConfig) -> Self {
        Rules {
            cfg,
            verdict: Verdict::Undecided,
            done: false,
            now: 0,
            was_speech: false,
            speech_run: 0,
            greeting_start: None,
            last_speech_end: 0,
            last_sound_end: 0,
            tone: None,
            machine_at: 0,
            events: VecDeque::new(),
        }
    }

    pub(crate) fn verdict(&self) -> Verdict {
        self.verdict
    }

    /// Nothing more will be decided.
    pub(crate) fn is_done(&self) -> bool {
        self.done
    }

    pub(crate) fn poll_event(&mut self) -> Option<AmdEvent> {
        self.events.pop_front()
    }

    /// The frame `[at, at + len_ms)` had VAD score `vad` and, when it is a
    /// tone, the tone's frequency.
    pub(crate) fn frame(&mut self, at: u64, len_ms: u32, vad: f32, tone: Option<u32>) {
        if self.done {
            return;
        }
        // Time never runs backwards here: a frame from the past is taken as
        // the next one.
        let at = at.max(self.now);
        self.advance_to(at);
        let end = at + u64::from(len_ms);
        // A tone is never speech, whatever the VAD made of it.
        let speech = tone.is_none()
            && (vad >= self.cfg.vad_threshold
                || (self.was_speech && vad >= self.cfg.vad_continue_threshold));
        self.was_speech = speech;
        if speech {
            self.speech_run += u64::from(len_ms);
            if self.speech_run >= u64::from(self.cfg.speech_start_ms) {
                self.greeting_start
                    .get_or_insert(end.saturating_sub(self.speech_run));
                self.last_speech_end = end;
                self.last_sound_end = end;
            }
        } else {
            self.speech_run = 0;
        }
        self.track_tone(at, end, tone);
        self.now = end;
        self.decide();
    }

    /// No audio until `now` (lost packets, or a deadline): silence.
    pub(crate) fn advance_to(&mut self, now: u64) {
        if self.done || now <= self.now {
            return;
        }
        self.was_speech = false;
        self.speech_run = 0;
        if let Some(run) = self.tone.take() {
            self.end_tone(run);
        }
        self.now = now;
        self.decide();
    }

    fn track_tone(&mut self, at: u64, end: u64, tone: Option<u32>) {
        match (tone, self.tone) {
            (Some(hz), Some(run)) if hz.abs_diff(run.hz) <= SAME_TONE_HZ => {
                self.tone = Some(ToneRun { end, ..run });
            }
            (Some(hz), run) => {
                if let Some(run) = run {
                    self.end_tone(run);
                }
                self.tone = Some(ToneRun { start: at, end, hz });
            }
            (None, Some(run)) => {
                self.tone = None;
                self.end_tone(run);
            }
            (None, None) => {}
        }
        if let Some(run) = self.tone {
            self.last_sound_end = end;
            let long = run.end.saturating_sub(run.start);
            if self.verdict == Verdict::Undecided && long >= u64::from(self.cfg.beep_min_ms) {
                self.set_machine(end, MachineReason::Beep);
            }
        }
    }

    /// A tone run ended: a beep if it was long enough and not too long.
    fn end_tone(&mut self, run: ToneRun) {
        let long = run.end.saturating_sub(run.start);
        let beep =
            (u64::from(self.cfg.beep_min_ms)..=u64::from(self.cfg.beep_max_ms)).contains(&long);
        if beep && self.verdict == Verdict::Machine && !self.done {
            self.events.push_back(AmdEvent::Beep {
                at: dur(run.start),
                ended: dur(run.end),
                hz: run.hz,
            });
            self.done = true;
        }
    }

    fn set_machine(&mut self, at: u64, reason: MachineReason) {
        self.verdict = Verdict::Machine;
        self.machine_at = at;
        self.events.push_back(AmdEvent::Machine {
            at: dur(at),
            reason,
        });
    }

    fn set_human(&mut self, at: u64, reason: HumanReason) {
        self.verdict = Verdict::Human;
        self.done = true;
        self.events.push_back(AmdEvent::Human {
            at: dur(at),
            reason,
        });
    }

    /// The rules that depend on time, at `self.now`.
    fn decide(&mut self) {
        if self.done {
            return;
        }
        let now = self.now;
        match self.verdict {
            Verdict::Undecided => {
                if let Some(start) = self.greeting_start {
                    let greeting = self.last_speech_end.saturating_sub(start);
                    if greeting >= u64::from(self.cfg.machine_greeting_ms) {
                        self.set_machine(
                            now,
                            MachineReason::LongGreeting {
                                greeting: dur(greeting),
                            },
                        );
                        return;
                    }
                    if now.saturating_sub(self.last_speech_end)
                        >= u64::from(self.cfg.human_silence_ms)
                    {
                        self.set_human(
                            now,
                            HumanReason::ShortGreeting {
                                greeting: dur(greeting),
                            },
                        );
                        return;
                    }
                }
                if now >= u64::from(self.cfg.decision_limit_ms) {
                    let reason = match self.greeting_start {
                        Some(_) => HumanReason::Limit,
                        None => HumanReason::Silence,
                    };
                    self.set_human(now, reason);
                }
            }
            Verdict::Machine => {
                if self.tone.is_some() {
                    return;
                }
                let waited =
                    now.saturating_sub(self.machine_at) >= u64::from(self.cfg.beep_wait_ms);
                let silent = now.saturating_sub(self.last_sound_end.max(self.machine_at))
                    >= u64::from(self.cfg.no_beep_silence_ms);
                if waited || silent {
                    self.events.push_back(AmdEvent::NoBeep { at: dur(now) });
                    self.done = true;
                }
            }
            Verdict::Human => self.done = true,
        }
    }

    /// When a rule would fire if no more audio came (ms since the answer).
    pub(crate) fn deadline(&self) -> Option<u64> {
        if self.done {
            return None;
        }
        match self.verdict {
            Verdict::Undecided => {
                let limit = u64::from(self.cfg.decision_limit_ms);
                Some(match self.greeting_start {
                    Some(_) => {
                        limit.min(self.last_speech_end + u64::from(self.cfg.human_silence_ms))
                    }
                    None => limit,
                })
            }
            // A tone still going on: if no audio comes for a while, it
            // has ended (its end is then judged).
            Verdict::Machine if self.tone.is_some() => Some(self.now + TONE_GAP_MS),
            Verdict::Machine => Some((self.machine_at + u64::from(self.cfg.beep_wait_ms)).min(
                self.last_sound_end.max(self.machine_at) + u64::from(self.cfg.no_beep_silence_ms),
            )),
            Verdict::Human => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One stretch of frames: how long, VAD score, tone frequency.
    #[derive(Clone, Copy)]
    enum Part {
        Speech(u64),
        Silence(u64),
        Tone(u64, u32),
    }
    use Part::*;

    /// Feeds the parts in 20 ms frames; returns the events with the time
    /// (ms) each came out.
    fn run(cfg: AmdConfig, parts: &[Part]) -> Vec<(u64, AmdEvent)> {
        let mut r = Rules::new(cfg);
        let mut t = 0;
        let mut out = Vec::new();
        for &p in parts {
            let (ms, vad, tone) = match p {
                Speech(ms) => (ms, 0.9, None),
                Silence(ms) => (ms, 0.05, None),
                // The VAD often takes a beep for speech: the tone wins.
                Tone(ms, hz) => (ms, 0.8, Some(hz)),
            };
            for _ in 0..ms / 20 {
                r.frame(t, 20, vad, tone);
                t += 20;
                while let Some(e) = r.poll_event() {
                    out.push((t, e));
                }
            }
        }
        out
    }

    fn ms(d: Duration) -> u64 {
        d.as_millis() as u64
    }

    #[test]
    fn a_short_greeting_then_silence_is_a_person() {
        let ev = run(
            AmdConfig::default(),
            &[Silence(500), Speech(600), Silence(3000)],
        );
        assert_eq!(ev.len(), 1, "{ev:?}");
        let (t, AmdEvent::Human { at, reason }) = &ev[0] else {
            panic!("{ev:?}")
        };
        // Decided once 800 ms of silence followed the 600 ms greeting.
        assert_eq!(*t, 1900);
        assert_eq!(ms(*at), 1900);
        assert_eq!(*reason, HumanReason::ShortGreeting { greeting: dur(600) });
    }

    #[test]
    fn a_long_greeting_with_short_pauses_is_a_machine() {
        let ev = run(
            AmdConfig::default(),
            &[
                Silence(300),
                Speech(900),
                Silence(400),
                Speech(700),
                Silence(300),
                Speech(2000),
            ],
        );
        let (t, AmdEvent::Machine { reason, .. }) = &ev[0] else {
            panic!("{ev:?}")
        };
        // 2.5 s after its first word, pauses included.
        assert_eq!(*t, 2800);
        assert_eq!(
            *reason,
            MachineReason::LongGreeting {
                greeting: dur(2500)
            }
        );
        assert_eq!(ev.len(), 1, "{ev:?}");
    }

    #[test]
    fn the_beep_after_a_machine_greeting_is_reported_when_it_ends() {
        let ev = run(
            AmdConfig::default(),
            &[
                Silence(200),
                Speech(3000),
                Silence(500),
                Tone(600, 1000),
                Silence(1000),
            ],
        );
        assert!(matches!(ev[0].1, AmdEvent::Machine { .. }), "{ev:?}");
        assert_eq!(
            ev[1],
            (
                4320,
                AmdEvent::Beep {
                    at: dur(3700),
                    ended: dur(4300),
                    hz: 1000
                }
            ),
            "{ev:?}"
        );
        assert_eq!(ev.len(), 2, "{ev:?}");
    }

    #[test]
    fn a_beep_before_any_verdict_says_machine() {
        // A short greeting, and the beep comes before the silence rule.
        let ev = run(
            AmdConfig::default(),
            &[
                Silence(300),
                Speech(1200),
                Silence(300),
                Tone(400, 850),
                Silence(500),
            ],
        );
        assert_eq!(
            ev[0],
            (
                1940,
                AmdEvent::Machine {
                    at: dur(1940),
                    reason: MachineReason::Beep
                }
            )
        );
        assert!(
            matches!(ev[1].1, AmdEvent::Beep { at, hz: 850, .. } if ms(at) == 1800),
            "{ev:?}"
        );
    }

    #[test]
    fn tones_too_short_or_too_long_are_not_beeps() {
        // 100 ms: a click of tone, not a beep; the person rule decides.
        let ev = run(
            AmdConfig::default(),
            &[Speech(600), Silence(200), Tone(100, 1000), Silence(1000)],
        );
        assert!(matches!(ev[0].1, AmdEvent::Human { .. }), "{ev:?}");
        // A machine, then a 3 s steady tone (not a beep), then silence.
        let ev = run(
            AmdConfig::default(),
            &[Speech(3000), Tone(3000, 440), Silence(5000)],
        );
        assert!(matches!(ev[0].1, AmdEvent::Machine { .. }), "{ev:?}");
        assert!(matches!(ev[1].1, AmdEvent::NoBeep { .. }), "{ev:?}");
        // A tone whose frequency jumps is two short tones.
        let ev = run(
            AmdConfig::default(),
            &[Speech(600), Tone(100, 500), Tone(100, 1500), Silence(1000)],
        );
        assert!(matches!(ev[0].1, AmdEvent::Human { .. }), "{ev:?}");
    }

    #[test]
    fn a_silent_callee_is_a_person_at_the_limit() {
        let ev = run(AmdConfig::default(), &[Silence(6000)]);
        assert_eq!(
            ev,
            vec![(
                4000,
                AmdEvent::Human {
                    at: dur(4000),
                    reason: HumanReason::Silence
                }
            )]
        );
        // Still talking at the limit, not yet long enough: a person too.
        let ev = run(AmdConfig::default(), &[Silence(2000), Speech(3000)]);
        assert!(
            matches!(
                ev[0],
                (
                    4000,
                    AmdEvent::Human {
                        reason: HumanReason::Limit,
                        ..
                    }
                )
            ),
            "{ev:?}"
        );
    }

    #[test]
    fn clicks_do_not_start_a_greeting() {
        // 40 ms bursts (under speech_start_ms) every 500 ms: silence.
        let mut parts = Vec::new();
        for _ in 0..8 {
            parts.extend([Speech(40), Silence(460)]);
        }
        let ev = run(AmdConfig::default(), &parts);
        assert!(
            matches!(
                ev[0].1,
                AmdEvent::Human {
                    reason: HumanReason::Silence,
                    ..
                }
            ),
            "{ev:?}"
        );
    }

    #[test]
    fn a_machine_without_a_beep_ends_in_no_beep() {
        let ev = run(
            AmdConfig::default(),
            &[Speech(3000), Silence(600), Speech(1000), Silence(6000)],
        );
        assert!(matches!(ev[0].1, AmdEvent::Machine { .. }), "{ev:?}");
        // 4 s of silence after the greeting's last word (at 4.6 s).
        assert_eq!(ev[1], (8600, AmdEvent::NoBeep { at: dur(8600) }));
        // A greeting that never stops: beep_wait_ms after the verdict.
        let cfg = AmdConfig {
            beep_wait_ms: 5_000,
            ..AmdConfig::default()
        };
        let ev = run(cfg, &[Speech(10_000)]);
        assert_eq!(ev[1], (7500, AmdEvent::NoBeep { at: dur(7500) }));
    }

    #[test]
    fn lost_audio_is_silence_and_deadlines_fire_without_audio() {
        let mut r = Rules::new(AmdConfig::default());
        for i in 0..30 {
            r.frame(i * 20, 20, 0.9, None);
        }
        // 600 ms of speech: a person once 800 ms of silence pass.
        assert_eq!(r.deadline(), Some(1400));
        r.advance_to(1399);
        assert_eq!(r.poll_event(), None);
        r.advance_to(1400);
        assert!(matches!(r.poll_event(), Some(AmdEvent::Human { .. })));
        assert!(r.is_done());
        assert_eq!(r.deadline(), None);
        // A frame after the verdict changes nothing.
        r.frame(1400, 20, 0.9, Some(1000));
        assert_eq!(r.poll_event(), None);

        let mut r = Rules::new(AmdConfig::default());
        assert_eq!(r.deadline(), Some(4000));
        r.advance_to(10_000);
        assert!(matches!(
            r.poll_event(),
            Some(AmdEvent::Human {
                reason: HumanReason::Silence,
                ..
            })
        ));
    }

    #[test]
    fn the_thresholds_are_the_configured_ones() {
        let cfg = AmdConfig {
            machine_greeting_ms: 1_500,
            human_silence_ms: 400,
            ..AmdConfig::default()
        };
        let ev = run(cfg.clone(), &[Speech(1600)]);
        assert!(matches!(ev[0], (1500, AmdEvent::Machine { .. })), "{ev:?}");
        let ev = run(cfg, &[Speech(1000), Silence(500)]);
        assert!(matches!(ev[0], (1400, AmdEvent::Human { .. })), "{ev:?}");
    }
}
