//! The whisper path on a generated model (real ggml format, random weights,
//! so the text is junk and never checked): loading, inference on espeak-ng
//! speech through G.711, the pool's queue and thread limits, languages, and
//! bad model files refused at start.

mod support;

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use support::*;
use voxbridge_models::asr::ggml::{self, Dims};
use voxbridge_models::asr::whisper::{WhisperConfig, WhisperRecognizer};
use voxbridge_models::asr::{AsrError, AsrRequest, PoolConfig, SpeechRecognizer};
use voxbridge_models::{Language, ModelError};

fn model(multilingual: bool) -> PathBuf {
    static EN: OnceLock<PathBuf> = OnceLock::new();
    static MULTI: OnceLock<PathBuf> = OnceLock::new();
    let cell = if multilingual { &MULTI } else { &EN };
    cell.get_or_init(|| {
        let dir = temp_dir(if multilingual {
            "whisper-multi"
        } else {
            "whisper-en"
        });
        let p = dir.join("ggml-test.bin");
        let bytes = ggml::write_model(&p, &Dims::test_small(multilingual), 42, true).unwrap();
        assert!(bytes > 5_000_000 && bytes < 10_000_000, "{bytes}");
        p
    })
    .clone()
}

fn start(path: PathBuf, workers: usize, queue: usize) -> WhisperRecognizer {
    WhisperRecognizer::start(WhisperConfig {
        pool: PoolConfig {
            workers,
            queue,
            max_wait: Duration::from_secs(60),
        },
        ..WhisperConfig::new(path)
    })
    .unwrap()
}

fn request(audio: Vec<i16>, language: Language) -> AsrRequest {
    AsrRequest {
        audio,
        sample_rate: 8000,
        language,
        grammar: None,
    }
}

#[test]
fn generated_model_loads_and_transcribes_speech_within_limits() {
    let r = start(model(false), 1, 2);
    let info = r.model_info();
    assert_eq!(info.dims, Dims::test_small(false));
    assert_eq!(info.tensors, info.dims.tensor_count());
    assert!(
        info.describe().contains("English-only"),
        "{}",
        info.describe()
    );
    let speech = phone_speech("I would like to know where my order is", "en-us");
    let t0 = Instant::now();
    let tr = r
        .recognize(
            request(speech.clone(), Language::En),
            Duration::from_secs(60),
        )
        .unwrap();
    let wall = t0.elapsed();
    assert_eq!(tr.engine, "whisper");
    assert_eq!(tr.tag, None);
    assert_eq!(
        tr.audio,
        Duration::from_secs_f64(speech.len() as f64 / 8000.0)
    );
    assert!(tr.processing <= wall);
    // Random weights: junk text, but bounded (the token cap); it came back
    // inside the 60 s wait. Speed is bench/asr's figure, not a test.
    assert!(tr.text.chars().count() < 2000, "{}", tr.text.len());
    println!(
        "whisper (test model): {:?} for {:?} of audio, text {:?}",
        tr.processing,
        tr.audio,
        tr.text.chars().take(40).collect::<String>()
    );
    // Too short to be speech: empty, not an error.
    let tr = r
        .recognize(
            request(silence_ms(50), Language::En),
            Duration::from_secs(10),
        )
        .unwrap();
    assert!(tr.is_empty());
}

#[test]
fn the_pool_stays_within_its_queue_and_threads() {
    let r = start(model(false), 2, 2);
    let speech = phone_speech("talk to an agent please", "en-us");
    let t0 = Instant::now();
    let mut tickets = Vec::new();
    let mut busy = 0;
    for _ in 0..10 {
        match r.submit(request(speech.clone(), Language::En)) {
            Ok(t) => tickets.push(t),
            Err(AsrError::Busy {
                engine: "whisper",
                queue: 2,
            }) => busy += 1,
            Err(e) => panic!("{e}"),
        }
    }
    // Refusals prove submitting did not wait for room (a blocking submit
    // would have accepted all ten); the time only rules out waiting up to
    // the 60 s max_wait, with slack for a loaded machine.
    assert!(
        tickets.len() <= 4 && busy >= 6,
        "{} accepted, {busy} busy",
        tickets.len()
    );
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "submitting blocked for {:?}",
        t0.elapsed()
    );
    for t in tickets {
        let tr = t.wait(Duration::from_secs(60)).unwrap();
        assert_eq!(tr.engine, "whisper");
    }
    let s = r.stats();
    assert!(s.max_busy <= 2, "{s:?}");
    assert!(s.max_queued <= 2, "{s:?}");
    assert_eq!(s.rejected, busy as u64);
    assert_eq!(s.busy, 0);
    assert_eq!(s.queued, 0);
}

#[test]
fn a_caller_that_stops_waiting_gets_a_timeout_and_the_backlog_drains() {
    let r = start(model(false), 1, 4);
    let speech = phone_speech("cancel my order", "en-us");
    let first = r.submit(request(speech.clone(), Language::En)).unwrap();
    let second = r.submit(request(speech.clone(), Language::En)).unwrap();
    assert!(matches!(
        second.wait(Duration::from_millis(1)),
        Err(AsrError::Timeout {
            engine: "whisper",
            ..
        })
    ));
    first.wait(Duration::from_secs(60)).unwrap();
    // The abandoned request is skipped, not transcribed.
    let third = r.submit(request(speech, Language::En)).unwrap();
    third.wait(Duration::from_secs(60)).unwrap();
    let s = r.stats();
    assert_eq!(s.completed, 2, "{s:?}");
    assert_eq!(s.expired, 1, "{s:?}");
}

#[test]
fn languages_follow_the_model() {
    let en = start(model(false), 1, 1);
    assert_eq!(en.languages(), [Language::En]);
    let zh_speech = phone_speech("我想查一下我的订单", "cmn");
    assert!(matches!(
        en.submit(request(zh_speech.clone(), Language::Zh)),
        Err(AsrError::UnsupportedLanguage { .. })
    ));
    let multi = start(model(true), 1, 1);
    assert_eq!(multi.languages(), [Language::En, Language::Zh]);
    let tr = multi
        .recognize(request(zh_speech, Language::Zh), Duration::from_secs(60))
        .unwrap();
    assert_eq!(tr.engine, "whisper");
}

#[test]
fn bad_model_files_are_refused_at_start_with_the_reason() {
    let good = model(false);
    let bytes = std::fs::read(&good).unwrap();
    let dir = temp_dir("whisper-bad");
    let check = |name: &str, data: &[u8], want: &str| {
        let p = dir.join(name);
        std::fs::write(&p, data).unwrap();
        let e = WhisperRecognizer::start(WhisperConfig::new(&p)).unwrap_err();
        assert!(matches!(e, ModelError::Corrupt { .. }), "{name}: {e}");
        assert!(e.to_string().contains(want), "{name}: {e}");
        assert!(e.to_string().contains(name), "{name}: {e}");
    };
    check(
        "cut-in-last-tensor.bin",
        &bytes[..bytes.len() - 1000],
        "truncated",
    );
    check("cut-in-header.bin", &bytes[..30], "header");
    check("cut-in-vocab.bin", &bytes[..100_000], "vocabulary");
    check(
        "not-ggml.bin",
        b"GGUF this is something else entirely",
        "not a ggml",
    );
    // Vocabulary-only (like whisper.cpp's test file): no weights.
    let vocab_only = dir.join("vocab-only.bin");
    ggml::write_model(&vocab_only, &Dims::TINY_EN, 1, false).unwrap();
    let e = WhisperRecognizer::start(WhisperConfig::new(&vocab_only)).unwrap_err();
    assert!(e.to_string().contains("no weights"), "{e}");
    // A flipped bit in a shape.
    let mut flipped = bytes.clone();
    let needle = b"encoder.conv1.weight";
    let at = flipped
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap();
    flipped[at - 12] ^= 0x40; // inside ne[] just before the name
    check("flipped-shape.bin", &flipped, "shape");
    // Checksums.
    let mut cfg = WhisperConfig::new(&good);
    cfg.sha256 = Some("ab".repeat(32));
    assert!(matches!(
        WhisperRecognizer::start(cfg.clone()),
        Err(ModelError::Checksum { .. })
    ));
    cfg.sha256 = Some(voxbridge_models::checksum::sha256_hex(&bytes));
    WhisperRecognizer::start(cfg).unwrap();
    assert!(matches!(
        WhisperRecognizer::start(WhisperConfig::new(dir.join("absent.bin"))),
        Err(ModelError::Io { .. })
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}
