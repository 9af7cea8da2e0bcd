//! Speech audio for the tests at the 8 kHz of a phone call: sentences from
//! the `espeak-ng` program and prompt WAVs from `fixtures/audio`, resampled
//! with the bot's own resampler so both sides of a comparison share it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{bail, ensure, Context, Result};

use crate::pcap::{ulaw_decode, ulaw_encode};

/// Whether the `espeak-ng` program can be run.
pub fn espeak_available() -> bool {
    Command::new("espeak-ng")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `text` spoken by `espeak-ng` with `voice` (e.g. "en-us") at 160 words a
/// minute, the settings of `fixtures/audio/make-prompts.sh`, as 8 kHz mono.
pub fn espeak_8k(text: &str, voice: &str) -> Result<Vec<i16>> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    // A file, not --stdout: the streamed WAV header has no data length.
    let wav = std::env::temp_dir().join(format!(
        "voxbridge-espeak-{}-{}.wav",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let out = Command::new("espeak-ng")
        .args(["-v", voice, "-s", "160", "-w"])
        .arg(&wav)
        .arg("--")
        .arg(text)
        .stdin(Stdio::null())
        .output()
        .context("running espeak-ng")?;
    let result = if out.status.success() {
        wav_8k(&wav)
    } else {
        Err(anyhow::anyhow!(
            "espeak-ng failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    };
    let _ = std::fs::remove_file(&wav);
    result
}

/// A 16-bit PCM WAV (any rate; channels averaged) as 8 kHz mono.
pub fn wav_8k(path: &Path) -> Result<Vec<i16>> {
    let reader =
        hound::WavReader::open(path).with_context(|| format!("opening {}", path.display()))?;
    let spec = reader.spec();
    ensure!(
        spec.sample_format == hound::SampleFormat::Int && spec.bits_per_sample == 16,
        "{}: {:?} {}-bit, want 16-bit PCM",
        path.display(),
        spec.sample_format,
        spec.bits_per_sample
    );
    let channels = usize::from(spec.channels.max(1));
    let samples = reader
        .into_samples::<i16>()
        .collect::<Result<Vec<i16>, _>>()
        .with_context(|| format!("reading {}", path.display()))?;
    if samples.is_empty() {
        bail!("{}: no samples", path.display());
    }
    let mono: Vec<i16> = samples
        .chunks(channels)
        .map(|frame| {
            let sum: i32 = frame.iter().map(|&s| i32::from(s)).sum();
            (sum / frame.len() as i32) as i16
        })
        .collect();
    Ok(voxbridge_media::resample::to_8k(&mono, spec.sample_rate))
}

/// A prompt of the bundled set (`fixtures/audio/NAME.wav`) at 8 kHz.
pub fn fixture_prompt(name: &str) -> Result<Vec<i16>> {
    let path: PathBuf = crate::workspace_root()
        .join("fixtures")
        .join("audio")
        .join(format!("{name}.wav"));
    wav_8k(&path)
}

/// What the far end decodes after G.711 μ-law.
pub fn ulaw_round_trip(audio: &[i16]) -> Vec<i16> {
    audio.iter().map(|&s| ulaw_decode(ulaw_encode(s))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prompts::best_match;

    #[test]
    fn fixture_prompts_load_at_8k_and_tell_apart() {
        let greeting = fixture_prompt("greeting").unwrap();
        let goodbye = fixture_prompt("goodbye").unwrap();
        // "Welcome to voxbridge. Please enter your account number, then
        // press the pound key." is several seconds long.
        assert!(greeting.len() > 8000 * 3, "{}", greeting.len());
        assert!(best_match(&ulaw_round_trip(&greeting), &greeting) > 0.99);
        assert!(best_match(&greeting, &goodbye) < 0.5);
        assert!(fixture_prompt("no-such-prompt").is_err());
    }

    #[test]
    fn espeak_matches_the_bundled_prompt_text() {
        assert!(
            espeak_available(),
            "espeak-ng missing: ./scripts/install-deps.sh"
        );
        let text =
            "Welcome to voxbridge. Please enter your account number, then press the pound key.";
        let spoken = espeak_8k(text, "en-us").unwrap();
        let bundled = fixture_prompt("greeting").unwrap();
        let score = best_match(&bundled, &spoken);
        // Same engine, same settings, sox's resampler instead of ours.
        assert!(
            score > 0.9,
            "espeak-ng {} samples vs bundled {} samples scored {score}: were \
             fixtures/audio made by another espeak-ng version? (make-prompts.sh)",
            spoken.len(),
            bundled.len()
        );
    }
}
