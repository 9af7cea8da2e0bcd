//! Per-call recording to WAV: the caller on the left channel and the bot on
//! the right (`stereo`), or both summed into one (`mixed`), 8 kHz 16-bit.
//!
//! The recorder is the media session's audio sink, so both directions arrive
//! on the session's own clock. The WAV header is rewritten every second of
//! audio, not only at the end: a call that ends abruptly, or a process that
//! is killed, still leaves a file whose header matches what was written.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
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

/// A PCM WAV file whose header is kept current while it grows.
pub struct WavFile {
    out: BufWriter<File>,
    channels: u16,
    frames: u64,
    since_patch: u64,
}

impl WavFile {
    pub fn create(path: &Path, channels: u16) -> std::io::Result<WavFile> {
        let mut out = BufWriter::with_capacity(WRITE_BUFFER, File::create(path)?);
        write_header(&mut out, channels, 0)?;
        Ok(WavFile {
            out,
            channels,
            frames: 0,
            since_patch: 0,
        })
    }

    /// Append interleaved samples (`channels` per frame).
    pub fn write(&mut self, samples: &[i16]) -> std::io::Result<()> {
        // One copy into the buffer per frame, not one call per sample.
        let mut bytes = [0u8; 512];
        for chunk in samples.chunks(bytes.len() / 2) {
            for (b, s) in bytes.chunks_exact_mut(2).zip(chunk) {
                b.copy_from_slice(&s.to_le_bytes());
            }
            self.out.write_all(&bytes[..chunk.len() * 2])?;
        }
        let frames = (samples.len() / self.channels as usize) as u64;
        self.frames += frames;
        self.since_patch += frames;
        if self.since_patch >= PATCH_EVERY {
            self.patch()?;
        }
        Ok(())
    }

    /// Make the header match the data written so far.
    pub fn patch(&mut self) -> std::io::Result<()> {
        self.since_patch = 0;
        self.out.flush()?;
        let end = self.out.stream_position()?;
        self.out.seek(SeekFrom::Start(0))?;
        write_header(&mut self.out, self.channels, self.frames)?;
        self.out.seek(SeekFrom::Start(end))?;
        self.out.flush()
    }

    pub fn frames(&self) -> u64 {
        self.frames
    }
}

fn write_header(out: &mut impl Write, channels: u16, frames: u64) -> std::io::Result<()> {
    let block_align = channels as u32 * 2;
    let data_len = (frames * block_align as u64).min(u32::MAX as u64 - 36) as u32;
    out.write_all(b"RIFF")?;
    out.write_all(&(36 + data_len).to_le_bytes())?;
    out.write_all(b"WAVEfmt ")?;
    out.write_all(&16u32.to_le_bytes())?;
    out.write_all(&1u16.to_le_bytes())?; // PCM
    out.write_all(&channels.to_le_bytes())?;
    out.write_all(&RATE.to_le_bytes())?;
    out.write_all(&(RATE * block_align).to_le_bytes())?;
    out.write_all(&(block_align as u16).to_le_bytes())?;
    out.write_all(&16u16.to_le_bytes())?;
    out.write_all(b"data")?;
    out.write_all(&data_len.to_le_bytes())
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

    #[test]
    fn names_are_safe() {
        assert_eq!(file_name("a/b@c d", 5), "5-a_b_c_d.wav");
    }
}
