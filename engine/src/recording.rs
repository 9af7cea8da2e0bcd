//! Per-call recording to WAV: the caller on the left channel and the bot on
//! the right (`stereo`), or both summed into one (`mixed`), 8 kHz 16-bit.
//!
//! The recorder is the media session's audio sink, so both directions arrive
//! on the session's own clock. The WAV header is rewritten every second of
//! audio, not only at the end: a call that ends abruptly, or a process that
//! is killed, still leaves a file whose header matches what was written.

use std::collections::VecDeque;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use tracing::warn;
use voxbridge_media::session::AudioSink;

use crate::config::RecordingMode;

const RATE: u32 = 8000;
/// Rewrite the header after this many sample frames (one second).
const PATCH_EVERY: u64 = RATE as u64;
/// How far the caller's audio may lag the bot's before the gap is filled
/// with silence (lost packets, a caller that stops sending).
const MAX_CALLER_LAG: usize = 480;

/// Bytes buffered before a write: 64 ms of stereo audio. Every call holds
/// one, so it is sized for a write every few frames, not for throughput.
const WRITE_BUFFER: usize = 2048;

/// A PCM WAV file whose header is kept current while it grows: hound's
/// writer, whose `flush` rewrites the header for the data so far.
pub struct WavFile {
    out: hound::WavWriter<BufWriter<File>>,
    channels: u16,
    frames: u64,
    since_patch: u64,
}

fn io_error(e: hound::Error) -> std::io::Error {
    match e {
        hound::Error::IoError(e) => e,
        other => std::io::Error::other(other),
    }
}

impl WavFile {
    pub fn create(path: &Path, channels: u16) -> std::io::Result<WavFile> {
        let spec = hound::WavSpec {
            channels,
            sample_rate: RATE,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let file = BufWriter::with_capacity(WRITE_BUFFER, File::create(path)?);
        let out = hound::WavWriter::new(file, spec).map_err(io_error)?;
        Ok(WavFile {
            out,
            channels,
            frames: 0,
            since_patch: 0,
        })
    }

    /// Append interleaved samples (`channels` per frame).
    pub fn write(&mut self, samples: &[i16]) -> std::io::Result<()> {
        // hound's i16 writer copies a whole block at once, not one call per
        // sample through the generic path.
        let n = u32::try_from(samples.len()).map_err(std::io::Error::other)?;
        let mut block = self.out.get_i16_writer(n);
        for &s in samples {
            block.write_sample(s);
        }
        block.flush().map_err(io_error)?;
        let frames = (samples.len() / self.channels as usize) as u64;
        self.frames += frames;
        self.since_patch += frames;
        if self.since_patch >= PATCH_EVERY {
            self.patch()?;
        }
        Ok(())
    }

    /// Make the header match the data written so far (and flush it).
    pub fn patch(&mut self) -> std::io::Result<()> {
        self.since_patch = 0;
        self.out.flush().map_err(io_error)
    }

    pub fn frames(&self) -> u64 {
        self.frames
    }
}

/// The media session's sink that writes one call's recording.
pub struct CallRecorder {
    file: Option<WavFile>,
    mode: RecordingMode,
    path: PathBuf,
    caller: VecDeque<i16>,
    bot: VecDeque<i16>,
    scratch: Vec<i16>,
}

impl CallRecorder {
    pub fn create(path: &Path, mode: RecordingMode) -> std::io::Result<CallRecorder> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let channels = match mode {
            RecordingMode::Stereo => 2,
            RecordingMode::Mixed => 1,
        };
        Ok(CallRecorder {
            file: Some(WavFile::create(path, channels)?),
            mode,
            path: path.to_path_buf(),
            caller: VecDeque::new(),
            bot: VecDeque::new(),
            scratch: Vec::new(),
        })
    }

    /// Write every sample pair both queues have.
    fn emit(&mut self) {
        // A caller who stops sending (or whose packets are lost) must not
        // hold the bot's side back: fill the gap with silence.
        if self.bot.len() > self.caller.len() + MAX_CALLER_LAG {
            let missing = self.bot.len() - self.caller.len();
            self.caller.extend(std::iter::repeat_n(0, missing));
        }
        let n = self.caller.len().min(self.bot.len());
        if n == 0 {
            return;
        }
        self.scratch.clear();
        for (c, b) in self.caller.drain(..n).zip(self.bot.drain(..n)) {
            match self.mode {
                RecordingMode::Stereo => {
                    self.scratch.push(c);
                    self.scratch.push(b);
                }
                RecordingMode::Mixed => self.scratch.push(c.saturating_add(b)),
            }
        }
        let Some(file) = &mut self.file else { return };
        if let Err(e) = file.write(&self.scratch) {
            warn!(path = %self.path.display(), error = %e, "recording stopped: write failed");
            self.file = None;
        }
    }
}

impl AudioSink for CallRecorder {
    fn on_audio(&mut self, pcm: &[i16]) {
        self.caller.extend(pcm.iter().copied());
    }

    fn on_sent(&mut self, pcm: &[i16]) {
        self.bot.extend(pcm.iter().copied());
        self.emit();
    }
}

impl Drop for CallRecorder {
    fn drop(&mut self) {
        // Whatever either side has queued still counts: pad the shorter.
        let (c, b) = (self.caller.len(), self.bot.len());
        self.bot.extend(std::iter::repeat_n(0, c.saturating_sub(b)));
        self.caller
            .extend(std::iter::repeat_n(0, b.saturating_sub(c)));
        self.emit();
        if let Some(file) = &mut self.file {
            if let Err(e) = file.patch() {
                warn!(path = %self.path.display(), error = %e, "recording not finalised");
            }
        }
    }
}

/// A file name for a call: the Call-ID with anything but `[A-Za-z0-9._-]`
/// replaced, prefixed by the start time so names sort by time.
pub fn file_name(call_id: &str, started_unix_ms: u128) -> String {
    let safe: String = call_id
        .chars()
        .take(96)
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{started_unix_ms}-{safe}.wav")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("voxbridge-rec-{}-{name}.wav", std::process::id()))
    }

    fn read(path: &Path) -> (hound::WavSpec, Vec<i16>) {
        let r = hound::WavReader::open(path).unwrap();
        let spec = r.spec();
        let samples = r.into_samples::<i16>().map(|s| s.unwrap()).collect();
        (spec, samples)
    }

    #[test]
    fn stereo_keeps_caller_left_and_bot_right() {
        let path = temp("stereo");
        {
            let mut rec = CallRecorder::create(&path, RecordingMode::Stereo).unwrap();
            for _ in 0..100 {
                rec.on_audio(&[100; 160]);
                rec.on_sent(&[-200; 160]);
            }
        }
        let (spec, samples) = read(&path);
        assert_eq!(
            (spec.channels, spec.sample_rate, spec.bits_per_sample),
            (2, 8000, 16)
        );
        assert_eq!(samples.len(), 2 * 16_000);
        assert!(samples.chunks(2).all(|f| f == [100, -200]));
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn silent_caller_is_padded_and_mixed_sums() {
        let path = temp("mixed");
        {
            let mut rec = CallRecorder::create(&path, RecordingMode::Mixed).unwrap();
            for _ in 0..50 {
                rec.on_sent(&[7; 160]);
            }
            rec.on_audio(&[3; 160]);
            rec.on_sent(&[7; 160]);
        }
        let (spec, samples) = read(&path);
        assert_eq!(spec.channels, 1);
        assert_eq!(samples.len(), 51 * 160, "bot time is never lost");
        assert!(samples.iter().all(|&s| s == 7 || s == 10));
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn header_is_valid_before_the_call_ends() {
        let path = temp("live");
        let mut rec = CallRecorder::create(&path, RecordingMode::Stereo).unwrap();
        for _ in 0..120 {
            rec.on_audio(&[1; 160]);
            rec.on_sent(&[2; 160]);
        }
        // Not dropped: a crash now would leave exactly this file.
        let (_, samples) = read(&path);
        assert!(
            samples.len() >= 2 * 8000,
            "at least the first second is readable"
        );
        std::mem::forget(rec);
        let _ = std::fs::remove_file(&path);
    }

    /// Killed mid-call: nothing finalises the file, the buffered tail is
    /// lost, and what is on disk is a valid WAV of every whole second so far,
    /// sample for sample.
    #[test]
    fn a_recording_killed_mid_call_is_a_valid_wav_of_the_audio_so_far() {
        let path = temp("killed");
        let mut wav = WavFile::create(&path, 1).unwrap();
        let audio: Vec<i16> = (0..20_000).map(|i| (i % 2000) as i16 - 1000).collect();
        for frame in audio.chunks(160) {
            wav.write(frame).unwrap();
        }
        assert_eq!(wav.frames(), 20_000);
        // As `kill -9` would: no drop, no finalize, no last flush.
        std::mem::forget(wav);
        let (spec, samples) = read(&path);
        assert_eq!((spec.channels, spec.sample_rate), (1, 8000));
        // The header was last rewritten after the second whole second.
        assert_eq!(samples.len(), 16_000);
        assert_eq!(samples[..], audio[..16_000]);
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn names_are_safe() {
        assert_eq!(file_name("a/b@c d", 5), "5-a_b_c_d.wav");
    }
}
