//! The caller's audio into the endpointer, on the media task: every 20 ms
//! frame goes through the VAD, and what it noticed (speech started, barge
//! in, a whole utterance) goes to the call task over a channel. Endpointing
//! runs all the time, not only while the script listens, so speech that
//! starts during a prompt is whole when the prompt is barged into.

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
    endpointer: Endpointer,
    events: UnboundedSender<SpeechEvent>,
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
    pub fn new(
        config: EndpointConfig,
        events: UnboundedSender<SpeechEvent>,
        prompt_playing: Arc<AtomicBool>,
        end_silence_ms: Arc<AtomicU32>,
    ) -> Result<Self, voxbridge_models::ModelError> {
        let default_end_silence = config.end_silence_ms;
        Ok(SpeechSink {
            endpointer: Endpointer::new(config)?,
            events,
            prompt_playing,
            playing: false,
            end_silence_ms,
            end_silence: default_end_silence,
            default_end_silence,
        })
    }
}

impl AudioSink for SpeechSink {
    fn on_audio(&mut self, pcm: &[i16]) {
        let playing = self.prompt_playing.load(Ordering::Relaxed);
        if playing != self.playing {
            self.playing = playing;
            self.endpointer.set_prompt_playing(playing);
        }
        let wanted = match self.end_silence_ms.load(Ordering::Relaxed) {
            0 => self.default_end_silence,
            ms => ms,
        };
        if wanted != self.end_silence {
            self.end_silence = wanted;
            self.endpointer.set_end_silence_ms(wanted);
        }
        self.endpointer.push(pcm);
        while let Some(event) = self.endpointer.poll_event() {
            let event = match event {
                EndpointEvent::SpeechStarted { .. } => SpeechEvent::Started,
                EndpointEvent::BargeIn { .. } => SpeechEvent::BargeIn,
                EndpointEvent::Utterance { audio, end_ms, .. } => {
                    let waited = self.endpointer.now_ms().saturating_sub(end_ms);
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
        if self.endpointer.is_done() {
            // One utterance per turn in the endpointer; calls have many.
            self.endpointer.reset();
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

    #[test]
    fn utterances_keep_coming_after_the_first() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let playing = Arc::new(AtomicBool::new(false));
        let end_silence = Arc::new(AtomicU32::new(0));
        let mut sink =
            SpeechSink::new(EndpointConfig::default(), tx, playing, end_silence.clone()).unwrap();
        // Real speech when the fixture is there, else a harmonic tone.
        let greeting =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/audio/greeting.wav");
        let voiced: Vec<i16> = match voxbridge_media::Prompt::load(&greeting) {
            Ok(p) => p.samples().to_vec(),
            Err(_) => tone(1500, 8000.0),
        };
        let silence = vec![0i16; 8000];
        let mut utterances = 0;
        for _ in 0..2 {
            for frame in voiced.chunks(160).chain(silence.chunks(160)) {
                sink.on_audio(frame);
            }
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
}
