//! Audio prompts: WAV files (or samples from TTS) turned into the 8 kHz mono
//! 16-bit PCM that the media session encodes and plays.
//!
//! Policy: we accept what recording tools commonly produce rather than
//! making operators re-export files. Integer PCM of 8, 16, 24 or 32 bits and
//! 32-bit float are read; several channels are averaged into one; any sample
//! rate from 4 kHz to 384 kHz is resampled to 8 kHz. Compressed WAVs (μ-law,
//! ADPCM…) and prompts longer than [`MAX_PROMPT_SECONDS`] are refused with a
//! [`PromptError`] naming the file and the reason.
//!
//! A `Prompt` is an `Arc` of samples: load once at start-up, then play it in
//! any number of calls without copying.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hound::{SampleFormat, WavReader};
use thiserror::Error;

use crate::resample;
use crate::Codec;

/// Longest prompt we load (10 minutes is 9.6 MB at 8 kHz).
pub const MAX_PROMPT_SECONDS: u32 = 600;

const MIN_RATE: u32 = 4_000;
const MAX_RATE: u32 = 384_000;

/// Why a prompt could not be loaded.
#[derive(Debug, Error)]
pub enum PromptError {
    /// The file could not be opened or is not a valid WAV file.
    #[error("cannot read WAV prompt {}: {source}", .path.display())]
    Read {
        /// The prompt file.
        path: PathBuf,
        /// What hound reported.
        #[source]
        source: hound::Error,
    },
    /// A valid WAV file in a format we do not play.
    #[error("unsupported WAV prompt {}: {reason}", .path.display())]
    Unsupported {
        /// The prompt file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Longer than [`MAX_PROMPT_SECONDS`].
    #[error("WAV prompt {} lasts {seconds} s, more than the {MAX_PROMPT_SECONDS} s limit", .path.display())]
    TooLong {
        /// The prompt file.
        path: PathBuf,
        /// Its length in whole seconds.
        seconds: u64,
    },
}

/// 8 kHz mono 16-bit audio, cheap to clone.
#[derive(Clone, PartialEq, Eq)]
pub struct Prompt {
    samples: Arc<[i16]>,
}

impl fmt::Debug for Prompt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Prompt")
            .field("samples", &self.samples.len())
            .field("duration", &self.duration())
            .finish()
    }
}

impl Prompt {
    /// A prompt from 8 kHz mono samples.
    pub fn from_samples(samples: impl Into<Arc<[i16]>>) -> Self {
        Prompt {
            samples: samples.into(),
        }
    }

    /// A prompt of `duration` of silence.
    pub fn silence(duration: Duration) -> Self {
        let len = duration.as_millis() as usize * (Codec::CLOCK_RATE as usize / 1000);
        Self::from_samples(vec![0; len])
    }

    /// Load a WAV file (see the module documentation for what is accepted).
    pub fn load(path: impl AsRef<Path>) -> Result<Self, PromptError> {
        let path = path.as_ref();
        let reader = WavReader::open(path).map_err(|source| PromptError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_wav(reader, path)
    }

    /// Read a WAV stream; `name` is used in error messages.
    pub fn from_wav_reader<R: Read>(reader: R, name: &Path) -> Result<Self, PromptError> {
        let reader = WavReader::new(reader).map_err(|source| PromptError::Read {
            path: name.to_owned(),
            source,
        })?;
        Self::from_wav(reader, name)
    }

    fn from_wav<R: Read>(mut reader: WavReader<R>, path: &Path) -> Result<Self, PromptError> {
        let spec = reader.spec();
        let unsupported = |reason: String| PromptError::Unsupported {
            path: path.to_owned(),
            reason,
        };
        if !(MIN_RATE..=MAX_RATE).contains(&spec.sample_rate) {
            return Err(unsupported(format!(
                "sample rate {} Hz (accepted: {MIN_RATE} to {MAX_RATE} Hz)",
                spec.sample_rate
            )));
        }
        let seconds = u64::from(reader.duration()) / u64::from(spec.sample_rate);
        if seconds > u64::from(MAX_PROMPT_SECONDS) {
            return Err(PromptError::TooLong {
                path: path.to_owned(),
                seconds,
            });
        }
        let read_error = |source| PromptError::Read {
            path: path.to_owned(),
            source,
        };
        let interleaved: Vec<i16> = match (spec.sample_format, spec.bits_per_sample) {
            (SampleFormat::Int, 8 | 16) => {
                let shift = 16 - spec.bits_per_sample;
                reader
                    .samples::<i16>()
                    .map(|s| s.map(|s| s << shift))
                    .collect::<Result<_, _>>()
                    .map_err(read_error)?
            }
            (SampleFormat::Int, 24 | 32) => {
                let shift = spec.bits_per_sample - 16;
                reader
                    .samples::<i32>()
                    .map(|s| s.map(|s| (s >> shift) as i16))
                    .collect::<Result<_, _>>()
                    .map_err(read_error)?
            }
            (SampleFormat::Float, 32) => reader
                .samples::<f32>()
                .map(|s| s.map(|s| (s * 32767.0).round().clamp(-32768.0, 32767.0) as i16))
                .collect::<Result<_, _>>()
                .map_err(read_error)?,
            (format, bits) => {
                return Err(unsupported(format!(
                    "{bits}-bit {format:?} samples (accepted: 8/16/24/32-bit integer, 32-bit float)"
                )))
            }
        };
        let mono = downmix(&interleaved, usize::from(spec.channels));
        Ok(Self::from_samples(resample::to_8k(&mono, spec.sample_rate)))
    }

    /// The 8 kHz samples.
    pub fn samples(&self) -> &[i16] {
        &self.samples
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether the prompt has no samples.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Playing time.
    pub fn duration(&self) -> Duration {
        Duration::from_micros(self.samples.len() as u64 * 1_000_000 / u64::from(Codec::CLOCK_RATE))
    }
}

/// Average interleaved channels into one.
fn downmix(interleaved: &[i16], channels: usize) -> Vec<i16> {
    if channels <= 1 {
        return interleaved.to_vec();
    }
    interleaved
        .chunks_exact(channels)
        .map(|frame| {
            let sum: i32 = frame.iter().map(|&s| i32::from(s)).sum();
            (sum / channels as i32) as i16
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hound::{WavSpec, WavWriter};
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A unique path in the temp dir; removed when dropped.
    struct TempWav(PathBuf);
    impl TempWav {
        fn new(tag: &str) -> Self {
            static COUNTER: AtomicU32 = AtomicU32::new(0);
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            TempWav(std::env::temp_dir().join(format!(
                "voxbridge-media-{}-{n}-{tag}.wav",
                std::process::id()
            )))
        }
    }
    impl Drop for TempWav {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn write_int(tag: &str, rate: u32, channels: u16, bits: u16, samples: &[i32]) -> TempWav {
        let file = TempWav::new(tag);
        let spec = WavSpec {
            channels,
            sample_rate: rate,
            bits_per_sample: bits,
            sample_format: SampleFormat::Int,
        };
        let mut w = WavWriter::create(&file.0, spec).unwrap();
        for &s in samples {
            w.write_sample(s).unwrap();
        }
        w.finalize().unwrap();
        file
    }

    #[test]
    fn loads_8k_mono_as_is() {
        let samples: Vec<i32> = (0..800).map(|i| (i * 37 % 2000) - 1000).collect();
        let f = write_int("8k", 8000, 1, 16, &samples);
        let p = Prompt::load(&f.0).unwrap();
        let expected: Vec<i16> = samples.iter().map(|&s| s as i16).collect();
        assert_eq!(p.samples(), &expected[..]);
        assert_eq!(p.duration(), Duration::from_millis(100));
    }

    #[test]
    fn resamples_16k_and_44k() {
        let f = write_int("16k", 16_000, 1, 16, &vec![1000; 16_000]);
        let p = Prompt::load(&f.0).unwrap();
        assert_eq!(p.len(), 8000);
        assert_eq!(p.samples()[4000], 1000);
        let f = write_int("44k", 44_100, 1, 16, &vec![-500; 44_100]);
        let p = Prompt::load(&f.0).unwrap();
        assert_eq!(p.len(), 8000);
        assert_eq!(p.samples()[4000], -500);
    }

    #[test]
    fn downmixes_stereo_and_reads_other_depths() {
        let stereo: Vec<i32> = (0..200).flat_map(|_| [1000, 3000]).collect();
        let f = write_int("stereo", 8000, 2, 16, &stereo);
        let p = Prompt::load(&f.0).unwrap();
        assert_eq!(p.len(), 200);
        assert!(p.samples().iter().all(|&s| s == 2000));

        let f = write_int("24bit", 8000, 1, 24, &[256 * 1234, -256 * 1234]);
        assert_eq!(Prompt::load(&f.0).unwrap().samples(), &[1234, -1234]);

        let f = write_int("8bit", 8000, 1, 8, &[64, -64]);
        assert_eq!(
            Prompt::load(&f.0).unwrap().samples(),
            &[64 * 256, -64 * 256]
        );

        let file = TempWav::new("float");
        let spec = WavSpec {
            channels: 1,
            sample_rate: 8000,
            bits_per_sample: 32,
            sample_format: SampleFormat::Float,
        };
        let mut w = WavWriter::create(&file.0, spec).unwrap();
        for s in [0.5f32, -0.5, 2.0] {
            w.write_sample(s).unwrap();
        }
        w.finalize().unwrap();
        assert_eq!(
            Prompt::load(&file.0).unwrap().samples(),
            &[16384, -16384, 32767]
        );
    }

    #[test]
    fn errors_name_the_file() {
        let missing = std::env::temp_dir().join("voxbridge-no-such-prompt.wav");
        let err = Prompt::load(&missing).unwrap_err();
        assert!(matches!(err, PromptError::Read { .. }));
        assert!(
            err.to_string().contains("voxbridge-no-such-prompt.wav"),
            "{err}"
        );

        let garbage = TempWav::new("garbage");
        std::fs::write(&garbage.0, b"RIFF\x10\0\0\0this is not a wav").unwrap();
        let err = Prompt::load(&garbage.0).unwrap_err();
        assert!(matches!(err, PromptError::Read { .. }));
        assert!(err.to_string().contains("garbage"), "{err}");

        let slow = write_int("slow", 2000, 1, 16, &[0; 10]);
        let err = Prompt::load(&slow.0).unwrap_err();
        assert!(matches!(err, PromptError::Unsupported { .. }));
        assert!(err.to_string().contains("2000 Hz"), "{err}");
    }

    #[test]
    fn from_samples_and_silence() {
        let p = Prompt::from_samples(vec![1i16, 2, 3]);
        assert_eq!(p.samples(), &[1, 2, 3]);
        let q = p.clone();
        assert!(Arc::ptr_eq(&p.samples, &q.samples));
        assert_eq!(Prompt::silence(Duration::from_millis(20)).len(), 160);
        assert!(Prompt::from_samples(Vec::new()).is_empty());
    }
}
