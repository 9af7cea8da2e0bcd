//! Speech benchmark (`bench/asr`): prints figures.
//!
//! - whisper with a generated model of tiny.en's real dimensions (random
//!   weights: the encoder's compute equals the real model's; the decoder
//!   runs to the token cap, so two settings are measured: the shipped cap
//!   and a cap at 3 tokens/s, a real model's rate on speech): real-time
//!   factor at 1 and 2 threads, latency p50/p95 for 1–5 s utterances, and
//!   the calls a 2-core pool sustains at a 30 % speech duty cycle;
//! - PocketSphinx grammar decoding: latency and calls per core;
//! - the VAD: cost per 20 ms frame and calls per core;
//! - espeak-ng TTS: a synthesis (cache miss) for a short and a long prompt,
//!   and a cache hit (goal < 5 ms: a repeated prompt starts at once).
//!
//! Audio: espeak-ng speech (the TTS module), 8 kHz, through μ-law.
//! `bench/asr [--quick]`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use voxbridge_media::codec::Codec;
use voxbridge_media::g711;
use voxbridge_models::asr::ggml::{self, Dims};
use voxbridge_models::asr::sphinx::{SphinxConfig, SphinxRecognizer};
use voxbridge_models::asr::whisper::{WhisperConfig, WhisperRecognizer};
use voxbridge_models::asr::{
    AsrError, AsrRequest, Grammar, GrammarSpec, PoolConfig, SlotGrammar, SpeechRecognizer,
};
use voxbridge_models::audio::add_noise_floor;
use voxbridge_models::tts::{Tts, TtsConfig};
use voxbridge_models::vad::{EndpointConfig, Endpointer};
use voxbridge_models::Language;

const SENTENCES: [&str; 6] = [
    "yes",
    "where is my order",
    "I would like to talk to an agent please",
    "my parcel has not arrived and I have been waiting for two weeks",
    "I was charged twice on my card for the same order and I would like a refund",
    "hello, I am calling because the screen of the laptop I bought last month is cracked and I want a replacement",
];

fn phone(tts: &Tts, text: &str) -> Vec<i16> {
    let a = tts.speak(text, Language::En).unwrap();
    let mut codes = Vec::new();
    g711::encode(Codec::Pcmu, &a, &mut codes);
    let mut out = Vec::new();
    g711::decode(Codec::Pcmu, &codes, &mut out);
    out
}

/// Speech of exactly `secs` seconds: sentences back to back, cut.
fn utterance(speech: &[Vec<i16>], secs: f64, seed: usize) -> Vec<i16> {
    let n = (secs * 8000.0) as usize;
    let mut out = Vec::with_capacity(n);
    let mut i = seed;
    while out.len() < n {
        out.extend_from_slice(&speech[i % speech.len()]);
        i += 1;
    }
    out.truncate(n);
    add_noise_floor(&mut out, 10.0, seed as u64);
    out
}

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

fn req(audio: Vec<i16>) -> AsrRequest {
    AsrRequest {
        audio,
        sample_rate: 8000,
        language: Language::En,
        grammar: None,
    }
}

fn tiny_model() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench-models");
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("ggml-tiny.en-random.bin");
    if ggml::inspect(&p)
        .map(|i| i.dims == Dims::TINY_EN)
        .unwrap_or(false)
    {
        return p;
    }
    let t0 = Instant::now();
    let bytes = ggml::write_model(&p, &Dims::TINY_EN, 2026, true).unwrap();
    println!(
        "generated {} ({:.1} MB, {:.1} s)",
        p.display(),
        bytes as f64 / 1e6,
        t0.elapsed().as_secs_f64()
    );
    p
}

fn whisper(
    path: &PathBuf,
    workers: usize,
    threads: usize,
    tokens_per_second: f32,
    tokens_base: u32,
) -> WhisperRecognizer {
    WhisperRecognizer::start(WhisperConfig {
        threads_per_worker: threads,
        tokens_base,
        tokens_per_second,
        pool: PoolConfig {
            workers,
            queue: 64,
            max_wait: Duration::from_secs(120),
        },
        ..WhisperConfig::new(path)
    })
    .unwrap()
}

/// Latency per length and the real-time factor over all of them.
fn latency(
    r: &WhisperRecognizer,
    speech: &[Vec<i16>],
    reps: usize,
) -> (Vec<(u32, Duration, Duration)>, f64) {
    let mut rows = Vec::new();
    let (mut cpu, mut audio) = (0.0, 0.0);
    // Warm-up.
    r.recognize(req(utterance(speech, 2.0, 0)), Duration::from_secs(120))
        .unwrap();
    for secs in 1..=5u32 {
        let mut lat = Vec::new();
        for k in 0..reps {
            let t0 = Instant::now();
            let tr = r
                .recognize(
                    req(utterance(speech, f64::from(secs), k)),
                    Duration::from_secs(120),
                )
                .unwrap();
            lat.push(t0.elapsed());
            cpu += tr.processing.as_secs_f64();
            audio += tr.audio.as_secs_f64();
        }
        let p50 = pct(&mut lat, 0.5);
        let p95 = pct(&mut lat, 0.95);
        rows.push((secs, p50, p95));
    }
    (rows, cpu / audio)
}

/// Calls at a 30 % speech duty cycle: each call sends an utterance of 1–5 s
/// (mean 3) and the next one when that much speech plus 70/30 of it in
/// silence has passed. Returns (p95 latency, rejected, utterances).
fn load(
    r: &WhisperRecognizer,
    speech: &[Vec<i16>],
    calls: usize,
    secs: f64,
) -> (Duration, u64, usize) {
    let start = Instant::now();
    let mut next: Vec<(Instant, usize)> = (0..calls)
        .map(|c| {
            (
                start + Duration::from_secs_f64(10.0 * c as f64 / calls as f64),
                c,
            )
        })
        .collect();
    let done: Arc<std::sync::Mutex<Vec<Duration>>> = Arc::default();
    let mut waiters = Vec::new();
    let mut rejected = 0;
    let mut k = 0usize;
    let end = start + Duration::from_secs_f64(secs);
    while Instant::now() < end {
        next.sort();
        let (at, call) = next[0];
        if at > end {
            break;
        }
        if let Some(wait) = at.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        k += 1;
        let len = 1.0 + ((k * 7919 + call * 104_729) % 400) as f64 / 100.0; // 1.0–5.0 s
                                                                            // The utterance is submitted when the caller stops speaking.
        let t0 = Instant::now();
        match r.submit(req(utterance(speech, len, k))) {
            Ok(t) => {
                let done = done.clone();
                waiters.push(std::thread::spawn(move || {
                    t.wait(Duration::from_secs(300)).unwrap();
                    done.lock().unwrap().push(t0.elapsed());
                }));
            }
            Err(AsrError::Busy { .. }) => rejected += 1,
            Err(e) => panic!("{e}"),
        }
        next[0] = (at + Duration::from_secs_f64(len / 0.3), call);
    }
    for w in waiters {
        w.join().unwrap();
    }
    let mut lat = done.lock().unwrap().clone();
    let n = lat.len();
    let p95 = if lat.is_empty() {
        Duration::ZERO
    } else {
        pct(&mut lat, 0.95)
    };
    (p95, rejected, n)
}

/// The 1, 5 and 15 minute load averages.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split(' ')
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let reps = if quick { 3 } else { 10 };
    let load_secs = if quick { 30.0 } else { 60.0 };
    let tts = Tts::start(TtsConfig::default()).unwrap();
    let speech: Vec<Vec<i16>> = SENTENCES.iter().map(|s| phone(&tts, s)).collect();
    println!(
        "voxbridge ASR benchmark ({} cores, load average {} at start)",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        loadavg()
    );

    // ---------------------------------------------------------------- whisper
    let model = tiny_model();
    for (label, tps, base) in [
        ("shipped token cap: 8 + 6/s", 6.0f32, 8u32),
        ("real-model token rate: 4 + 3/s", 3.0, 4),
    ] {
        println!("\nwhisper, generated tiny.en-size model ({label})");
        for threads in [1, 2] {
            let r = whisper(&model, 1, threads, tps, base);
            let (rows, rtf) = latency(&r, &speech, reps);
            println!("  {threads} thread(s): real-time factor {rtf:.3}");
            for (secs, p50, p95) in rows {
                println!("    {secs} s utterance: p50 {} p95 {}", ms(p50), ms(p95));
            }
        }
        // Capacity: 2 workers × 1 thread (both cores), p95 ≤ 1 s and nothing refused.
        let r = whisper(&model, 2, 1, tps, base);
        let mut best = 0;
        for calls in [4usize, 8, 16, 24, 32, 48, 64, 80, 96, 128] {
            let (p95, rejected, n) = load(&r, &speech, calls, load_secs);
            println!(
                "    {calls:>2} calls at 30% speech: {n} utterances, p95 {}, {rejected} refused",
                ms(p95)
            );
            if p95 > Duration::from_secs(1) || rejected > 0 {
                break;
            }
            best = calls;
        }
        println!("  pool of 2 workers × 1 thread sustains {best} concurrent calls (p95 ≤ 1 s, none refused)");
    }

    // ----------------------------------------------------------- pocketsphinx
    println!("\npocketsphinx grammar engine (1 worker)");
    let ps = SphinxRecognizer::start(SphinxConfig::default()).unwrap();
    let menu = [
        "where is my order",
        "talk to an agent",
        "billing question",
        "cancel my order",
        "check stock",
        "make a complaint",
        "repeat that",
        "goodbye",
    ];
    let mut spec = GrammarSpec::default();
    for m in menu {
        spec = spec.phrase(m, m);
    }
    let cases: Vec<(&str, Arc<Grammar>, Vec<&str>)> = vec![
        (
            "menu (8 phrases)",
            Arc::new(Grammar::build(&spec, ps.dictionary()).unwrap()),
            menu.to_vec(),
        ),
        (
            "yes/no",
            Arc::new(
                Grammar::build(
                    &GrammarSpec::default().slot(SlotGrammar::YesNo),
                    ps.dictionary(),
                )
                .unwrap(),
            ),
            vec!["yes", "no", "yes please", "that's wrong"],
        ),
        (
            "digits (1–8)",
            Arc::new(
                Grammar::build(
                    &GrammarSpec::default().slot(SlotGrammar::Digits { min: 1, max: 8 }),
                    ps.dictionary(),
                )
                .unwrap(),
            ),
            vec![
                "five five two one",
                "nine one one",
                "one two three four five six",
            ],
        ),
    ];
    for (label, g, phrases) in cases {
        let mut lat = Vec::new();
        let (mut cpu, mut audio) = (0.0, 0.0);
        for _ in 0..reps.max(3) {
            for p in &phrases {
                let a = phone(&tts, p);
                let tr = ps
                    .recognize(
                        AsrRequest {
                            audio: a,
                            sample_rate: 8000,
                            language: Language::En,
                            grammar: Some(g.clone()),
                        },
                        Duration::from_secs(30),
                    )
                    .unwrap();
                lat.push(tr.processing);
                cpu += tr.processing.as_secs_f64();
                audio += tr.audio.as_secs_f64();
            }
        }
        let mean_audio = audio / lat.len() as f64;
        let cpu_per_utt = cpu / lat.len() as f64;
        // A call at 30 % speech sends 0.3 / mean_audio utterances a second.
        let calls_per_core = 1.0 / (cpu_per_utt * 0.3 / mean_audio);
        println!(
            "  {label}: p50 {} p95 {} per utterance ({:.1} s mean audio, RTF {:.3}), ≈{:.0} calls per core at 30% speech",
            ms(pct(&mut lat, 0.5)),
            ms(pct(&mut lat, 0.95)),
            mean_audio,
            cpu / audio,
            calls_per_core
        );
    }

    // -------------------------------------------------------------------- VAD
    let mut ep = Endpointer::new(EndpointConfig::default()).unwrap();
    let audio: Vec<i16> = speech.iter().flatten().copied().collect();
    let frames = audio.chunks_exact(160).count();
    let t0 = Instant::now();
    let mut n = 0;
    for _ in 0..5 {
        for f in audio.chunks_exact(160) {
            ep.push(f);
            while ep.poll_event().is_some() {}
            if ep.is_done() {
                ep.reset();
            }
            n += 1;
        }
    }
    let per_frame = t0.elapsed().as_secs_f64() / f64::from(n);
    println!(
        "\nVAD + endpointing: {:.1} µs per 20 ms frame ({frames} frames × 5), ≈{:.0} calls per core",
        per_frame * 1e6,
        0.02 / per_frame
    );

    // -------------------------------------------------------------------- TTS
    println!("\nespeak-ng TTS (1 synthesis per text, then 100 cache hits)");
    for text in [
        "Please hold while I transfer you.",
        "You can ask about an order, check whether a product is in stock, make a complaint, \
         or ask for an agent. How can I help? You can also press 1 for orders, 2 for stock, \
         3 for complaints, or 0 for an agent.",
    ] {
        let t0 = Instant::now();
        let audio = tts.speak(text, Language::En).unwrap();
        let miss = t0.elapsed();
        let mut hits: Vec<Duration> = (0..100)
            .map(|_| {
                let t0 = Instant::now();
                let _ = tts.speak(text, Language::En).unwrap();
                t0.elapsed()
            })
            .collect();
        println!(
            "  {:.1} s of speech: synthesis {}, cache hit p50 {:.1} µs p95 {:.1} µs (goal < 5 ms)",
            audio.len() as f64 / 8000.0,
            ms(miss),
            pct(&mut hits, 0.5).as_secs_f64() * 1e6,
            pct(&mut hits, 0.95).as_secs_f64() * 1e6
        );
    }
    println!(
        "load average {} at the end (other work on the machine skews the figures)",
        loadavg()
    );
}
