//! The caller's audio into the endpointer, on the media task: while the
//! call listens, every 20 ms frame goes through the VAD, and what it
//! noticed (speech started, barge in, a whole utterance) goes to the call
//! task over a channel. The call core decides when it listens (a question
//! takes speech, or a prompt speech may barge into is on, from the moment
//! the bot commits to it, so speech that starts during a prompt is whole
//! when the prompt is barged into); the rest of the time no frame is
//! scored and the endpointer, with the audio it buffers, is not kept.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;
use voxbridge_media::session::AudioSink;
use voxbridge_models::vad::endpoint::{EndpointConfig, EndpointEvent, Endpointer};

/// What the endpointer noticed, for the call task.
#[derive(Debug)]
pub enum SpeechEvent {
    /// The caller started speaking.
    Started,
    /// The caller spoke over a playing prompt long enough to stop it.
    BargeIn,
    /// A complete utterance (8 kHz).
    Utterance {
        audio: Vec<i16>,
        /// When the caller stopped speaking, by the wall clock.
        ended_at: Instant,
        /// Silence waited before the end was certain.
        endpointing: Duration,
    },
}

/// Feeds the endpointer; see the module doc.
pub struct SpeechSink {
    config: EndpointConfig,
    /// Only while listening: made when listening starts, dropped (with
    /// its VAD state, pre-roll and any partial utterance) when it stops.
    endpointer: Option<Endpointer>,
    events: UnboundedSender<SpeechEvent>,
    /// Set by the call task: whether anyone wants the caller's speech.
    listening: Arc<AtomicBool>,
    /// Set by the call task while a prompt plays.
    prompt_playing: Arc<AtomicBool>,
    playing: bool,
    /// Set by the call task: the end-of-speech silence the open question
    /// wants (0: the configured default).
    end_silence_ms: Arc<AtomicU32>,
    end_silence: u32,
    default_end_silence: u32,
}

impl SpeechSink {
    /// A sink that listens while `listening` is set; fails on settings the
    /// endpointer refuses (checked now, not at the first frame).
    pub fn new(
        config: EndpointConfig,
        events: UnboundedSender<SpeechEvent>,
        listening: Arc<AtomicBool>,
        prompt_playing: Arc<AtomicBool>,
        end_silence_ms: Arc<AtomicU32>,
    ) -> Result<Self, voxbridge_models::ModelError> {
        Endpointer::new(config.clone())?;
        let default_end_silence = config.end_silence_ms;
        Ok(SpeechSink {
            config,
            endpointer: None,
            events,
            listening,
            prompt_playing,
            playing: false,
            end_silence_ms,
            end_silence: default_end_silence,
            default_end_silence,
        })
    }

    /// Whether the endpointer runs (the call listens); for tests and logs.
    pub fn is_running(&self) -> bool {
        self.endpointer.is_some()
    }

    /// A fresh endpointer when listening starts (it cannot fail: `new`
    /// accepted the settings). It knows of no prompt and has the default
    /// silence, so `on_audio` tells it both again.
    fn start(&mut self) {
        self.playing = false;
        self.end_silence = self.default_end_silence;
        self.endpointer = Endpointer::new(self.config.clone()).ok();
    }
}

impl AudioSink for SpeechSink {
    fn on_audio(&mut self, pcm: &[i16]) {
        if !self.listening.load(Ordering::Relaxed) {
            // Nobody wants the speech: no VAD, no buffered audio.
            self.endpointer = None;
            return;
        }
        let playing = self.prompt_playing.load(Ordering::Relaxed);
        let wanted = match self.end_silence_ms.load(Ordering::Relaxed) {
            0 => self.default_end_silence,
            ms => ms,
        };
        if self.endpointer.is_none() {
            self.start();
        }
        let Some(endpointer) = self.endpointer.as_mut() else {
            return;
        };
        if playing != self.playing {
            self.playing = playing;
            endpointer.set_prompt_playing(playing);
        }
        if wanted != self.end_silence {
            self.end_silence = wanted;
            endpointer.set_end_silence_ms(wanted);
        }
        endpointer.push(pcm);
        while let Some(event) = endpointer.poll_event() {
            let event = match event {
                EndpointEvent::SpeechStarted { .. } => SpeechEvent::Started,
                EndpointEvent::BargeIn { .. } => SpeechEvent::BargeIn,
                EndpointEvent::Utterance { audio, end_ms, .. } => {
                    let waited = endpointer.now_ms().saturating_sub(end_ms);
                    let endpointing = Duration::from_millis(waited);
                    SpeechEvent::Utterance {
                        audio,
                        ended_at: Instant::now()
                            .checked_sub(endpointing)
                            .unwrap_or_else(Instant::now),
                        endpointing,
                    }
                }
                EndpointEvent::NoInput { .. } => continue,
            };
            // A closed channel means the call is over; nothing to tell.
            let _ = self.events.send(event);
        }
        if endpointer.is_done() {
            // One utterance per turn in the endpointer; calls have many.
            endpointer.reset();
        }
    }
}

/// Two sinks on one session (the recorder and the endpointer).
pub struct Tee(pub Box<dyn AudioSink>, pub Box<dyn AudioSink>);

impl AudioSink for Tee {
    fn on_audio(&mut self, pcm: &[i16]) {
        self.0.on_audio(pcm);
        self.1.on_audio(pcm);
    }

    fn on_sent(&mut self, pcm: &[i16]) {
        self.0.on_sent(pcm);
        self.1.on_sent(pcm);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::mpsc::UnboundedReceiver;

    fn tone(ms: usize, amplitude: f32) -> Vec<i16> {
        // A voiced-like signal: a 200 Hz fundamental with harmonics.
        (0..ms * 8)
            .map(|i| {
                let t = i as f32 / 8000.0;
                let s = (2.0 * std::f32::consts::PI * 200.0 * t).sin()
                    + 0.5 * (2.0 * std::f32::consts::PI * 400.0 * t).sin()
                    + 0.3 * (2.0 * std::f32::consts::PI * 800.0 * t).sin();
                (s * amplitude) as i16
            })
            .collect()
    }

    /// Real speech when the fixture is there, else a harmonic tone.
    fn voiced() -> Vec<i16> {
        let greeting =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/audio/greeting.wav");
        match voxbridge_media::Prompt::load(&greeting) {
            Ok(p) => p.samples().to_vec(),
            Err(_) => tone(1500, 8000.0),
        }
    }

    /// A sink, its events and its listening switch.
    fn sink(listening: bool) -> (SpeechSink, UnboundedReceiver<SpeechEvent>, Arc<AtomicBool>) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let switch = Arc::new(AtomicBool::new(listening));
        let playing = Arc::new(AtomicBool::new(false));
        let end_silence = Arc::new(AtomicU32::new(0));
        let sink = SpeechSink::new(
            EndpointConfig::default(),
            tx,
            switch.clone(),
            playing,
            end_silence,
        )
        .unwrap();
        (sink, rx, switch)
    }

    fn feed(sink: &mut SpeechSink, audio: &[i16]) {
        for frame in audio.chunks(160) {
            sink.on_audio(frame);
        }
    }

    fn utterances(rx: &mut UnboundedReceiver<SpeechEvent>) -> Vec<usize> {
        let mut lens = Vec::new();
        while let Ok(e) = rx.try_recv() {
            if let SpeechEvent::Utterance { audio, .. } = e {
                lens.push(audio.len());
            }
        }
        lens
    }

    #[test]
    fn utterances_keep_coming_after_the_first() {
        let (mut sink, mut rx, _) = sink(true);
        let voiced = voiced();
        let silence = vec![0i16; 8000];
        let mut utterances = 0;
        for _ in 0..2 {
            feed(&mut sink, &voiced);
            feed(&mut sink, &silence);
            while let Ok(e) = rx.try_recv() {
                if let SpeechEvent::Utterance {
                    audio, endpointing, ..
                } = e
                {
                    assert!(audio.len() > 4000, "{}", audio.len());
                    assert!(endpointing >= Duration::from_millis(400), "{endpointing:?}");
                    utterances += 1;
                }
            }
        }
        assert_eq!(utterances, 2);
    }

    #[test]
    fn nothing_is_scored_or_kept_while_nobody_listens() {
        let (mut sink, mut rx, listening) = sink(false);
        let voiced = voiced();
        let silence = vec![0i16; 8000];
        // A caller talking over a keys-only menu read with barge-in off.
        for _ in 0..3 {
            feed(&mut sink, &voiced);
            feed(&mut sink, &silence);
        }
        assert!(!sink.is_running(), "no endpointer while not listening");
        assert!(rx.try_recv().is_err(), "no speech events");

        // A question that takes speech begins: the next answer is heard.
        listening.store(true, Ordering::Relaxed);
        feed(&mut sink, &silence[..1600]);
        assert!(sink.is_running());
        feed(&mut sink, &voiced);
        feed(&mut sink, &silence);
        let heard = utterances(&mut rx);
        assert_eq!(heard.len(), 1, "{heard:?}");
        assert!(heard[0] > 4000, "{heard:?}");
    }

    #[test]
    fn speech_under_way_is_dropped_when_listening_stops() {
        let (mut sink, mut rx, listening) = sink(true);
        let voiced = voiced();
        let half = &voiced[..voiced.len() / 2];
        feed(&mut sink, half);
        let started =
            std::iter::from_fn(|| rx.try_recv().ok()).any(|e| matches!(e, SpeechEvent::Started));
        assert!(started, "the caller was heard starting");
        // The question closes (a key answered it): the half utterance and
        // the endpointer go; what follows is not scored.
        listening.store(false, Ordering::Relaxed);
        feed(&mut sink, &voiced[voiced.len() / 2..]);
        feed(&mut sink, &vec![0i16; 8000]);
        assert!(!sink.is_running());
        assert!(utterances(&mut rx).is_empty());
        // Listening again starts from nothing: no stale half utterance.
        listening.store(true, Ordering::Relaxed);
        feed(&mut sink, &voiced);
        feed(&mut sink, &vec![0i16; 8000]);
        let heard = utterances(&mut rx);
        assert_eq!(heard.len(), 1, "{heard:?}");
        // Pre-roll and trailing silence at most, not the stale half.
        assert!(heard[0] < voiced.len() + 4000, "{heard:?}");
    }
}
