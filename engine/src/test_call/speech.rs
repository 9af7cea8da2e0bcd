//! What the caller hears: the bot's decoded audio, recorded to a WAV file
//! and cut into spans of speech by its energy, so `quiet` can wait for a
//! prompt to finish and the transcript can show when the bot spoke.
//!
//! [`SpeechTracker`] is sans-IO (time is passed in); [`BotAudio`] is the
//! media session's sink that feeds it on the session task.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use voxbridge_media::AudioSink;

use crate::recording::WavFile;

/// A frame at least this loud (RMS of 16-bit samples, about -44 dBFS) is
/// speech. G.711 silence decodes to 0 or ±8, line noise stays far below this
/// and espeak-ng and recorded prompts far above.
pub const SPEECH_RMS: f64 = 200.0;

/// How long the bot must be silent before a span of speech is over: longer
/// than the pauses between words and sentences of one prompt.
pub const HANGOVER: Duration = Duration::from_millis(700);

/// One stretch of the bot speaking, from its first loud frame to its last,
/// in time since the call was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: Duration,
    pub end: Duration,
}

impl Span {
    pub fn length(&self) -> Duration {
        self.end.saturating_sub(self.start)
    }
}

/// Cuts received audio into [`Span`]s of speech.
#[derive(Debug)]
pub struct SpeechTracker {
    threshold: f64,
    hangover: Duration,
    /// The span in progress: its start and its last loud frame.
    current: Option<Span>,
    /// Spans closed since the last [`take_ended`](Self::take_ended).
    ended: Vec<Span>,
    /// The end of the latest closed span.
    last_end: Option<Duration>,
}

impl Default for SpeechTracker {
    fn default() -> Self {
        Self::new(SPEECH_RMS, HANGOVER)
    }
}

impl SpeechTracker {
    pub fn new(threshold: f64, hangover: Duration) -> Self {
        SpeechTracker {
            threshold,
            hangover,
            current: None,
            ended: Vec::new(),
            last_end: None,
        }
    }

    /// One received frame that ended at `now`.
    pub fn frame(&mut self, now: Duration, pcm: &[i16]) {
        self.poll(now);
        if rms(pcm) < self.threshold {
            return;
        }
        match &mut self.current {
            Some(span) => span.end = now,
            None => {
                // The frame's first sample is when the speech started.
                let length = Duration::from_micros(pcm.len() as u64 * 125);
                self.current = Some(Span {
                    start: now.saturating_sub(length),
                    end: now,
                });
            }
        }
    }

    /// Close the span in progress once the bot has been silent for the
    /// hangover, also when no frames arrive at all (the bot stopped sending).
    pub fn poll(&mut self, now: Duration) {
        if let Some(span) = self.current {
            if now.saturating_sub(span.end) >= self.hangover {
                self.current = None;
                self.last_end = Some(span.end);
                self.ended.push(span);
            }
        }
    }

    /// Whether a span of speech is in progress (or has not been silent for
    /// the hangover yet).
    pub fn is_speaking(&self) -> bool {
        self.current.is_some()
    }

    /// The end of the latest finished span.
    pub fn last_end(&self) -> Option<Duration> {
        self.last_end
    }

    /// The spans closed since the last call.
    pub fn take_ended(&mut self) -> Vec<Span> {
        std::mem::take(&mut self.ended)
    }

    /// Whether the bot spoke after `since` and has been quiet for the
    /// hangover since: its prompt finished.
    pub fn quiet_after(&self, since: Duration) -> bool {
        self.current.is_none() && self.last_end.is_some_and(|end| end >= since)
    }
}

/// Root mean square of a frame.
pub fn rms(pcm: &[i16]) -> f64 {
    if pcm.is_empty() {
        return 0.0;
    }
    let sum: f64 = pcm.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (sum / pcm.len() as f64).sqrt()
}

/// The shared state behind [`BotAudio`].
pub struct Heard {
    pub tracker: SpeechTracker,
    recorder: Option<WavFile>,
    record_error: Option<std::io::Error>,
    /// Received samples, for the summary.
    pub samples: u64,
}

impl Heard {
    /// Close the span in progress as of `now` and return every span not
    /// taken yet: the end of the call ends the bot's speech too.
    pub fn tracker_flush(&mut self, now: Duration) -> Vec<Span> {
        self.tracker.poll(now);
        self.tracker.take_ended()
    }

    /// Stop recording and make the WAV header match what was written; the
    /// number of samples in the file, or the first write error.
    pub fn finish_recording(&mut self) -> Option<std::io::Result<u64>> {
        let mut file = self.recorder.take()?;
        if let Some(e) = self.record_error.take() {
            // Still fix the header over what did get written.
            let _ = file.patch();
            return Some(Err(e));
        }
        Some(file.patch().map(|()| file.frames()))
    }
}

/// The media session's sink: every received frame goes to the tracker and,
/// with `--record`, to the WAV file.
pub struct BotAudio {
    origin: Instant,
    shared: Arc<Mutex<Heard>>,
}

impl BotAudio {
    /// Count time from `origin` (the answer) from now on.
    pub fn set_origin(&mut self, origin: Instant) {
        self.origin = origin;
    }

    /// A sink whose times count from `origin`, recording to `record` when given.
    pub fn new(
        origin: Instant,
        record: Option<&Path>,
    ) -> std::io::Result<(Self, Arc<Mutex<Heard>>)> {
        let recorder = record.map(|p| WavFile::create(p, 1)).transpose()?;
        let shared = Arc::new(Mutex::new(Heard {
            tracker: SpeechTracker::default(),
            recorder,
            record_error: None,
            samples: 0,
        }));
        Ok((
            BotAudio {
                origin,
                shared: shared.clone(),
            },
            shared,
        ))
    }
}

/// Lock the shared state; a panic elsewhere must not stop the recording.
pub fn lock(heard: &Mutex<Heard>) -> MutexGuard<'_, Heard> {
    heard.lock().unwrap_or_else(|e| e.into_inner())
}

impl AudioSink for BotAudio {
    fn on_audio(&mut self, pcm: &[i16]) {
        let now = self.origin.elapsed();
        let mut heard = lock(&self.shared);
        heard.samples += pcm.len() as u64;
        heard.tracker.frame(now, pcm);
        if heard.record_error.is_none() {
            if let Some(file) = heard.recorder.as_mut() {
                if let Err(e) = file.write(pcm) {
                    heard.record_error = Some(e);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOUD: [i16; 160] = [3000; 160];
    const SILENT: [i16; 160] = [0; 160];

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Feed 20 ms frames from `from` to `to` (ms), loud or silent.
    fn feed(t: &mut SpeechTracker, from: u64, to: u64, loud: bool) {
        let mut now = from + 20;
        while now <= to {
            t.frame(ms(now), if loud { &LOUD } else { &SILENT });
            now += 20;
        }
    }

    #[test]
    fn a_prompt_with_pauses_is_one_span() {
        let mut t = SpeechTracker::default();
        feed(&mut t, 0, 200, false);
        assert!(!t.is_speaking());
        feed(&mut t, 200, 1200, true);
        assert!(t.is_speaking());
        // A pause between sentences does not end it.
        feed(&mut t, 1200, 1600, false);
        feed(&mut t, 1600, 2000, true);
        feed(&mut t, 2000, 2600, false);
        assert!(t.is_speaking());
        assert!(!t.quiet_after(ms(0)));
        feed(&mut t, 2600, 2800, false);
        assert!(!t.is_speaking());
        assert_eq!(
            t.take_ended(),
            vec![Span {
                start: ms(200),
                end: ms(2000)
            }]
        );
        assert!(t.take_ended().is_empty());
        assert!(t.quiet_after(ms(0)));
        assert!(t.quiet_after(ms(1500)));
        assert_eq!(t.last_end(), Some(ms(2000)));
        // Speech that ended before the step began does not count.
        assert!(!t.quiet_after(ms(2100)));
    }

    #[test]
    fn silence_without_frames_still_ends_a_span() {
        let mut t = SpeechTracker::default();
        feed(&mut t, 0, 500, true);
        t.poll(ms(1000));
        assert!(t.is_speaking());
        t.poll(ms(1200));
        assert!(!t.is_speaking());
        assert_eq!(t.take_ended()[0].length(), ms(500));
    }

    #[test]
    fn line_noise_is_not_speech() {
        let mut t = SpeechTracker::default();
        let noise: Vec<i16> = (0..160)
            .map(|i| if i % 2 == 0 { 40 } else { -40 })
            .collect();
        for n in 1..100 {
            t.frame(ms(n * 20), &noise);
        }
        assert!(!t.is_speaking());
        assert!(t.take_ended().is_empty());
        assert_eq!(rms(&[]), 0.0);
    }

    #[test]
    fn the_sink_records_what_it_hears() {
        let dir = std::env::temp_dir().join(format!("vb-test-call-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("heard.wav");
        let (mut sink, shared) = BotAudio::new(Instant::now(), Some(&path)).unwrap();
        sink.on_audio(&LOUD);
        sink.on_audio(&SILENT);
        let frames = lock(&shared).finish_recording().unwrap().unwrap();
        assert_eq!(frames, 320);
        assert_eq!(lock(&shared).samples, 320);
        // Audio after the end is not written, and finishing twice is a no-op.
        sink.on_audio(&LOUD);
        assert!(lock(&shared).finish_recording().is_none());
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), 44 + 640);
        assert_eq!(&bytes[40..44], &640u32.to_le_bytes());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
