//! The answering-machine detector on the media task of a call we placed:
//! the callee's decoded audio goes into `voxbridge_models::amd`, and its
//! events go to the call task (whose core decides what to do with them,
//! `call::core::machine`).
//!
//! Time is the media session's send clock, not the wall clock: `on_sent`
//! comes once per 20 ms frame whether or not the callee sends anything,
//! so it is what tells the detector that silence (no RTP at all) has gone
//! on, and audio is stamped with it. The detector starts with the media
//! session, at the 200 OK, never on early media.

use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;
use voxbridge_media::session::AudioSink;
use voxbridge_models::amd::{AmdConfig, AmdDetector, AmdEvent};
use voxbridge_models::ModelError;

/// 8 kHz: samples per millisecond.
const SAMPLES_PER_MS: u64 = 8;

pub struct MachineSink {
    detector: AmdDetector,
    events: UnboundedSender<AmdEvent>,
    /// The send clock: samples sent since the session started.
    clock: u64,
    /// Whether audio came in the current frame.
    heard: bool,
}

impl MachineSink {
    pub fn new(cfg: AmdConfig, events: UnboundedSender<AmdEvent>) -> Result<Self, ModelError> {
        Ok(MachineSink {
            detector: AmdDetector::new(cfg)?,
            events,
            clock: 0,
            heard: false,
        })
    }

    fn now(&self) -> Duration {
        Duration::from_millis(self.clock / SAMPLES_PER_MS)
    }

    fn drain(&mut self) {
        while let Some(event) = self.detector.poll_event() {
            // The call task is gone: nobody is listening any more.
            let _ = self.events.send(event);
        }
    }
}

impl AudioSink for MachineSink {
    fn on_audio(&mut self, pcm: &[i16]) {
        if self.detector.is_done() {
            return;
        }
        self.heard = true;
        let at = self.now();
        self.detector.push(pcm, at);
        self.drain();
    }

    fn on_sent(&mut self, pcm: &[i16]) {
        self.clock += pcm.len() as u64;
        if self.detector.is_done() {
            return;
        }
        let now = self.now();
        if !std::mem::take(&mut self.heard)
            && self.detector.poll_timeout().is_some_and(|t| t <= now)
        {
            self.detector.handle_timeout(now);
            self.drain();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::mpsc;

    #[test]
    fn silence_without_rtp_is_a_person_on_the_send_clock() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut sink = MachineSink::new(AmdConfig::default(), tx).unwrap();
        // 5 s of our frames, nothing from the callee.
        for _ in 0..250 {
            sink.on_sent(&[0; 160]);
        }
        match rx.try_recv() {
            Ok(AmdEvent::Human { at, .. }) => assert_eq!(at, Duration::from_millis(4000)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_tone_from_the_callee_is_a_machine_and_its_beep() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut sink = MachineSink::new(AmdConfig::default(), tx).unwrap();
        let tone: Vec<i16> = (0..8 * 500)
            .map(|i| (6000.0 * (std::f32::consts::TAU * 1000.0 * i as f32 / 8000.0).sin()) as i16)
            .collect();
        let audio = [vec![0; 8 * 300], tone, vec![0; 8 * 600]].concat();
        for frame in audio.chunks(160) {
            sink.on_audio(frame);
            sink.on_sent(&[0; 160]);
        }
        let events: Vec<_> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
        assert!(
            matches!(
                events[..],
                [AmdEvent::Machine { .. }, AmdEvent::Beep { hz: 1000, .. }]
            ),
            "{events:?}"
        );
    }
}
