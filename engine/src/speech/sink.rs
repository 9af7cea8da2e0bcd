//! The caller's audio into the endpointer, on the media task: while the
//! call listens, every 20 ms frame goes through the VAD, and what it
//! noticed (speech started, barge in, a whole utterance) goes to the call
//! task over a channel. The call core decides when it listens (a question
//! takes speech, or a prompt speech may barge into is on, from the moment
//! the bot commits to it, so speech that starts during a prompt is whole
//! when the prompt is barged into); the rest of the time no frame is
//! scored and the endpointer, with the audio it buffers, is not kept.
//!
//! For turns that end sooner ([`super::early`]) the sink also reports a
//! pause within an utterance with the speech so far, and speech after it;
//! when the call ends a turn at such a pause it cuts the utterance
//! ([`EarlyControl`]) and the endpointer starts afresh.
//!
//! What we send comes here too (`on_sent`): the echo detector compares it
//! with what the caller's side carries, so the prompt's own echo never
//! counts as the caller speaking over it.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;
use tracing::debug;
use voxbridge_media::echo::{EchoConfig, EchoDetector};
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
    /// A pause within an utterance: the speech so far (8 kHz), when it
    /// stopped and the silence since.
    Paused {
        audio: Vec<i16>,
        ended_at: Instant,
        endpointing: Duration,
    },
    /// The caller spoke on after a pause.
    Resumed,
}

/// Set by the call task: the pause that hands over the speech so far
/// (0: none), and a counter it bumps to cut the utterance under way.
#[derive(Debug, Default)]
pub struct EarlyControl {
    pub pause_ms: AtomicU32,
    pub cuts: AtomicU64,
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
    /// Set by the call task: the playing prompt's barge-in rule, voiced
    /// speech in ms (0: the configured default).
    barge_in_ms: Arc<AtomicU32>,
    barge_in: u32,
    /// Fed with what we send even while nobody listens, so it has the
    /// prompt's recent past when a barge-in prompt starts.
    echo: EchoDetector,
    early: Arc<EarlyControl>,
    pause: u32,
    cuts_seen: u64,
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
        let echo = EchoDetector::new(EchoConfig {
            sample_rate: config.sample_rate,
            ..EchoConfig::default()
        });
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
            barge_in_ms: Arc::new(AtomicU32::new(0)),
            barge_in: 0,
            echo,
            early: Arc::new(EarlyControl::default()),
            pause: 0,
            cuts_seen: 0,
        })
    }

    /// Reads the pause rule and the cuts from `early`.
    pub fn with_early_control(mut self, early: Arc<EarlyControl>) -> Self {
        self.cuts_seen = early.cuts.load(Ordering::Relaxed);
        self.early = early;
        self
    }

    /// Reads the prompt's barge-in rule from `barge_in_ms` (0: default).
    pub fn with_barge_in_rule(mut self, barge_in_ms: Arc<AtomicU32>) -> Self {
        self.barge_in_ms = barge_in_ms;
        self
    }

    /// Whether the endpointer runs (the call listens); for tests and logs.
    pub fn is_running(&self) -> bool {
        self.endpointer.is_some()
    }

    /// A fresh endpointer when listening starts (it cannot fail: `new`
    /// accepted the settings). It knows of no prompt and has the default
    /// silence and rule, so `on_audio` tells it all three again.
    fn start(&mut self) {
        self.playing = false;
        self.end_silence = self.default_end_silence;
        self.barge_in = 0;
        self.pause = 0;
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
        let cuts = self.early.cuts.load(Ordering::Relaxed);
        if cuts != self.cuts_seen {
            // The turn ended at a pause: the rest of this utterance is
            // not news; start afresh.
            self.cuts_seen = cuts;
            self.endpointer = None;
        }
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
        let pause = self.early.pause_ms.load(Ordering::Relaxed);
        if pause != self.pause {
            self.pause = pause;
            endpointer.set_pause_ms(pause);
        }
        let rule = self.barge_in_ms.load(Ordering::Relaxed);
        if rule != self.barge_in {
            self.barge_in = rule;
            endpointer.set_barge_in_ms((rule > 0).then_some(rule));
        }
        self.echo.push_received(pcm);
        // Only barge-in asks whether this is our echo: skip the sums when
        // no prompt plays and nobody speaks.
        let echo = (playing || endpointer.is_speaking()) && self.echo.is_echo();
        endpointer.set_echo(echo);
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
                EndpointEvent::NotSpeech {
                    start_ms,
                    end_ms,
                    voiced_ms,
                    echo_ms,
                } => {
                    debug!(
                        length_ms = end_ms.saturating_sub(start_ms),
                        voiced_ms, echo_ms, "sound over a prompt was not speech; ignored"
                    );
                    continue;
                }
                EndpointEvent::Paused { audio, end_ms, .. } => {
                    let waited = endpointer.now_ms().saturating_sub(end_ms);
                    let endpointing = Duration::from_millis(waited);
                    SpeechEvent::Paused {
                        audio,
                        ended_at: Instant::now()
                            .checked_sub(endpointing)
                            .unwrap_or_else(Instant::now),
                        endpointing,
                    }
                }
                EndpointEvent::Resumed { .. } => SpeechEvent::Resumed,
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

    fn on_sent(&mut self, pcm: &[i16]) {
        self.echo.push_sent(pcm);
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

    /// One corpus item: name, kind (noise, echo, speech), caller-side audio.
    type Item = (String, String, Vec<i16>);

    /// The barge-in corpus (fixtures/audio/barge-in/make-corpus.sh): the
    /// prompt as sent, and its items.
    fn corpus() -> (Vec<i16>, Vec<Item>) {
        use voxbridge_media::{g711, Codec};
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let dir = std::env::temp_dir().join(format!("vb-sink-corpus-{}", std::process::id()));
        let out = std::process::Command::new("bash")
            .arg(root.join("fixtures/audio/barge-in/make-corpus.sh"))
            .arg(&dir)
            .output()
            .expect("bash runs");
        assert!(
            out.status.success(),
            "the corpus script needs sox and espeak-ng: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let read = |name: &str| {
            let mut pcm = Vec::new();
            g711::decode(
                Codec::Pcmu,
                &std::fs::read(dir.join(format!("{name}.ul"))).unwrap(),
                &mut pcm,
            );
            pcm
        };
        let tsv = std::fs::read_to_string(dir.join("corpus.tsv")).unwrap();
        let items = tsv
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                (f[0].to_string(), f[1].to_string(), read(f[0]))
            })
            .collect();
        let prompt = read("prompt");
        let _ = std::fs::remove_dir_all(&dir);
        (prompt, items)
    }

    #[test]
    fn only_speech_over_a_prompt_barges_in_or_is_heard() {
        let (prompt, items) = corpus();
        for (name, kind, audio) in &items {
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            let playing = Arc::new(AtomicBool::new(true));
            let rule = Arc::new(AtomicU32::new(0));
            let mut sink = SpeechSink::new(
                EndpointConfig::default(),
                tx,
                Arc::new(AtomicBool::new(true)),
                playing.clone(),
                Arc::new(AtomicU32::new(0)),
            )
            .unwrap()
            .with_barge_in_rule(rule);
            let mut barged = None;
            let mut heard = 0;
            let silence = [0i16; 160];
            for (i, frame) in audio.chunks(160).enumerate() {
                sink.on_audio(frame);
                while let Ok(e) = rx.try_recv() {
                    match e {
                        SpeechEvent::BargeIn => {
                            // The call stops the prompt.
                            barged.get_or_insert(i * 20);
                            playing.store(false, Ordering::Relaxed);
                        }
                        SpeechEvent::Utterance { .. } => heard += 1,
                        SpeechEvent::Started
                        | SpeechEvent::Paused { .. }
                        | SpeechEvent::Resumed => {}
                    }
                }
                let playing_now = playing.load(Ordering::Relaxed) && (i + 1) * 160 <= prompt.len();
                let sent = prompt.get(i * 160..(i + 1) * 160).filter(|_| playing_now);
                sink.on_sent(sent.unwrap_or(&silence));
                if !playing_now {
                    playing.store(false, Ordering::Relaxed);
                }
            }
            if kind == "speech" {
                assert!(barged.is_some(), "{name}: speech did not barge in");
            } else {
                assert_eq!(barged, None, "{name} stopped the prompt");
                assert_eq!(heard, 0, "{name} was heard as an utterance");
            }
        }
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
