//! Test audio: espeak-ng speech (the `espeak-ng` program), resampled to
//! 8 kHz and sent through a G.711 round trip like call audio, plus silence
//! and line noise.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use voxbridge_media::codec::Codec;
use voxbridge_media::g711;
use voxbridge_models::audio;

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A fresh temporary directory for one test.
pub fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vb-models-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// espeak-ng speaking `text` with `voice` at its native rate (22.05 kHz).
pub fn espeak_raw(text: &str, voice: &str) -> (Vec<i16>, u32) {
    espeak_raw_at(text, voice, 150)
}

/// espeak-ng speaking `text` with `voice` at `wpm` words a minute.
pub fn espeak_raw_at(text: &str, voice: &str, wpm: u32) -> (Vec<i16>, u32) {
    let out = Command::new("espeak-ng")
        .args(["-v", voice, "-s", &wpm.to_string(), "--stdout", text])
        .output()
        .expect("espeak-ng runs (scripts/install-models-deps.sh)");
    assert!(
        out.status.success(),
        "espeak-ng failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // `--stdout` writes a streaming WAV (sizes 0x7fffffff): read it by hand.
    let wav = out.stdout;
    assert_eq!(&wav[0..4], b"RIFF");
    let rate = u32::from_le_bytes(wav[24..28].try_into().unwrap());
    let data = wav.windows(4).position(|w| w == b"data").unwrap() + 8;
    let samples = wav[data..]
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    (samples, rate)
}

/// espeak-ng speech as a caller's audio: 8 kHz, through μ-law and back.
pub fn phone_speech(text: &str, voice: &str) -> Vec<i16> {
    let (raw, rate) = espeak_raw(text, voice);
    g711_round_trip(&audio::resample(&raw, rate, 8_000), Codec::Pcmu)
}

pub fn g711_round_trip(pcm: &[i16], codec: Codec) -> Vec<i16> {
    let mut codes = Vec::new();
    g711::encode(codec, pcm, &mut codes);
    let mut out = Vec::new();
    g711::decode(codec, &codes, &mut out);
    out
}

pub fn silence_ms(ms: u32) -> Vec<i16> {
    vec![0; (ms * 8) as usize]
}

/// Deterministic line noise at 8 kHz: white hiss at `level_dbfs` (RMS) plus
/// a 50 Hz hum 6 dB below it.
pub fn line_noise_ms(ms: u32, level_dbfs: f64, seed: u64) -> Vec<i16> {
    let n = (ms * 8) as usize;
    let rms = 32768.0 * 10f64.powf(level_dbfs / 20.0);
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut uniform = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    (0..n)
        .map(|i| {
            // Sum of 4 uniforms: roughly Gaussian, variance 4/12.
            let g = (0..4).map(|_| uniform()).sum::<f64>() - 2.0;
            let hiss = g / (4.0f64 / 12.0).sqrt() * rms * 0.9;
            let hum = (2.0 * std::f64::consts::PI * 50.0 * i as f64 / 8000.0).sin()
                * rms
                * 0.5
                * 2f64.sqrt()
                * 0.5;
            (hiss + hum).clamp(-32768.0, 32767.0) as i16
        })
        .collect()
}

/// `a + b` sample by sample (b repeated/truncated to a's length).
pub fn mix(a: &[i16], b: &[i16]) -> Vec<i16> {
    a.iter()
        .zip(b.iter().cycle())
        .map(|(&x, &y)| (i32::from(x) + i32::from(y)).clamp(-32768, 32767) as i16)
        .collect()
}

/// Concatenates parts.
pub fn concat(parts: &[&[i16]]) -> Vec<i16> {
    parts.iter().flat_map(|p| p.iter().copied()).collect()
}

/// One item of the barge-in corpus (fixtures/audio/barge-in/make-corpus.sh):
/// caller-side audio aligned with the prompt, decoded from μ-law.
pub struct CorpusItem {
    pub name: String,
    /// `noise`, `echo` or `speech`.
    pub kind: String,
    /// Where speech starts (speech items), ms after the prompt's start.
    pub onset_ms: Option<u64>,
    pub audio: Vec<i16>,
}

/// The barge-in corpus: the prompt as sent and every caller-side item,
/// generated once per test process by the corpus script.
pub fn barge_in_corpus() -> &'static (Vec<i16>, Vec<CorpusItem>) {
    static CORPUS: std::sync::OnceLock<(Vec<i16>, Vec<CorpusItem>)> = std::sync::OnceLock::new();
    CORPUS.get_or_init(|| {
        let dir = temp_dir("barge-in-corpus");
        let script = root().join("fixtures/audio/barge-in/make-corpus.sh");
        let out = Command::new("bash")
            .arg(&script)
            .arg(&dir)
            .output()
            .expect("bash runs the corpus script");
        assert!(
            out.status.success(),
            "{} failed (needs sox and espeak-ng): {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let read = |name: &str| {
            let codes = std::fs::read(dir.join(format!("{name}.ul"))).unwrap();
            let mut pcm = Vec::new();
            g711::decode(Codec::Pcmu, &codes, &mut pcm);
            pcm
        };
        let tsv = std::fs::read_to_string(dir.join("corpus.tsv")).unwrap();
        let items = tsv
            .lines()
            .map(|line| {
                let f: Vec<&str> = line.split('\t').collect();
                CorpusItem {
                    name: f[0].to_string(),
                    kind: f[1].to_string(),
                    onset_ms: f[2].parse().ok(),
                    audio: read(f[0]),
                }
            })
            .collect();
        (read("prompt"), items)
    })
}
