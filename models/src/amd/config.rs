//! The detector's thresholds, with the defaults measured on the corpus of
//! `fixtures/audio/amd/` (docs/speech-and-models.md, "Answering-machine
//! detection"), and their validation.

use crate::ModelError;

/// Answering-machine-detection settings. Times are milliseconds of call
/// audio since the answer.
#[derive(Debug, Clone, PartialEq)]
pub struct AmdConfig {
    /// VAD score (0–1) at or above which a 20 ms frame is speech.
    pub vad_threshold: f32,
    /// Right after speech, frames at or above this still count (hysteresis;
    /// ≤ `vad_threshold`).
    pub vad_continue_threshold: f32,
    /// Consecutive speech needed before a greeting starts (clicks and pops
    /// are shorter).
    pub speech_start_ms: u32,
    /// Silence that ends a greeting. A greeting that ends shorter than
    /// `machine_greeting_ms` is a person waiting for the bot: `Human`.
    /// Pauses inside a recorded greeting are shorter than this.
    pub human_silence_ms: u32,
    /// A greeting that has gone on this long (first word to last, pauses
    /// shorter than `human_silence_ms` included) is a recording: `Machine`.
    pub machine_greeting_ms: u32,
    /// Still undecided this long after the answer: `Human` (someone who
    /// says nothing, or has not finished, is not taken for a machine).
    pub decision_limit_ms: u32,
    /// The band searched for a beep, Hz.
    pub beep_min_hz: u32,
    pub beep_max_hz: u32,
    /// Share of a frame's energy (0–1) in its strongest frequency for the
    /// frame to be a tone. A sine scores 0.93–0.99 through G.711 and line
    /// noise, a square wave's fundamental ~0.8; speech frames reach 0.7 in
    /// runs of at most 80 ms (measured on the corpus), well short of
    /// `beep_min_ms`.
    pub beep_tone_share: f32,
    /// Quietest tone frame taken, dBFS RMS.
    pub beep_min_dbfs: f32,
    /// Shortest and longest steady tone that is a beep. Longer tones (a
    /// dial tone, a fax) are not.
    pub beep_min_ms: u32,
    pub beep_max_ms: u32,
    /// After `Machine`: give up waiting for a beep (`NoBeep`) this long
    /// after the verdict…
    pub beep_wait_ms: u32,
    /// …or once the line has been silent (no speech, no tone) this long
    /// after the greeting (a recorder without a beep is listening).
    pub no_beep_silence_ms: u32,
}

impl Default for AmdConfig {
    fn default() -> Self {
        AmdConfig {
            vad_threshold: 0.5,
            vad_continue_threshold: 0.35,
            speech_start_ms: 60,
            human_silence_ms: 800,
            machine_greeting_ms: 2_500,
            decision_limit_ms: 4_000,
            beep_min_hz: 300,
            beep_max_hz: 2_200,
            beep_tone_share: 0.7,
            beep_min_dbfs: -45.0,
            beep_min_ms: 140,
            beep_max_ms: 2_000,
            beep_wait_ms: 30_000,
            no_beep_silence_ms: 4_000,
        }
    }
}

impl AmdConfig {
    /// Checks that the settings make sense together.
    pub fn validate(&self) -> Result<(), ModelError> {
        let bad = |why: &str| Err(ModelError::Config(format!("amd: {why}")));
        if !(0.0..=1.0).contains(&self.vad_threshold)
            || !(0.0..=self.vad_threshold).contains(&self.vad_continue_threshold)
        {
            return bad("need 0 ≤ vad_continue_threshold ≤ vad_threshold ≤ 1");
        }
        if self.human_silence_ms == 0 || self.machine_greeting_ms == 0 {
            return bad("human_silence_ms and machine_greeting_ms must be > 0");
        }
        if self.decision_limit_ms == 0 {
            return bad("decision_limit_ms must be > 0");
        }
        if self.beep_min_hz < 100
            || self.beep_max_hz > 3_800
            || self.beep_min_hz >= self.beep_max_hz
        {
            return bad("need 100 ≤ beep_min_hz < beep_max_hz ≤ 3800");
        }
        if !(0.0..=1.0).contains(&self.beep_tone_share) || !self.beep_min_dbfs.is_finite() {
            return bad("beep_tone_share must be 0–1 and beep_min_dbfs a number");
        }
        if self.beep_min_ms == 0 || self.beep_min_ms > self.beep_max_ms {
            return bad("need 0 < beep_min_ms ≤ beep_max_ms");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid_and_nonsense_is_refused() {
        assert!(AmdConfig::default().validate().is_ok());
        let cases: [fn(&mut AmdConfig); 6] = [
            |c| c.vad_continue_threshold = 0.9,
            |c| c.human_silence_ms = 0,
            |c| c.decision_limit_ms = 0,
            |c| c.beep_min_hz = 3_000,
            |c| c.beep_tone_share = 1.5,
            |c| c.beep_min_ms = 5_000,
        ];
        for (i, break_it) in cases.iter().enumerate() {
            let mut c = AmdConfig::default();
            break_it(&mut c);
            assert!(c.validate().is_err(), "case {i}: {c:?}");
        }
    }
}
