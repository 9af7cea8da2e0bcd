//! Intent benchmark (`bench/intent`): µs per utterance through the bundled
//! model (featurize + ONNX Runtime), single caller and 2 concurrent callers
//! on a 2-session pool; also the featurizer alone. Goal: ≤ 1 ms.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use voxbridge_models::intent::featurize;
use voxbridge_models::intent::{IntentClassifier, IntentConfig};

fn texts() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/intents/heldout");
    let mut out = Vec::new();
    for f in ["en.tsv", "zh.tsv"] {
        for line in std::fs::read_to_string(root.join(f)).unwrap().lines() {
            if let Some((_, t)) = line.split_once('\t') {
                if !line.starts_with('#') {
                    out.push(t.to_string());
                }
            }
        }
    }
    out
}

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn main() {
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/models/intent.onnx");
    let c = Arc::new(IntentClassifier::load(&IntentConfig::new(model)).unwrap());
    let texts = texts();
    let rounds = 20;
    for t in &texts {
        c.classify(t).unwrap();
    }
    println!(
        "voxbridge intent benchmark: {} held-out utterances (en+zh) × {rounds}",
        texts.len()
    );

    let mut lat = Vec::with_capacity(texts.len() * rounds);
    let t0 = Instant::now();
    for _ in 0..rounds {
        for t in &texts {
            let s = Instant::now();
            c.classify(t).unwrap();
            lat.push(s.elapsed());
        }
    }
    let mean = t0.elapsed() / (texts.len() * rounds) as u32;
    println!(
        "  one caller: mean {:.1} µs, p50 {:.1} µs, p99 {:.1} µs per utterance (goal ≤ 1000 µs)",
        us(mean),
        us(pct(&mut lat, 0.5)),
        us(pct(&mut lat, 0.99))
    );

    let t0 = Instant::now();
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let c = c.clone();
            let texts = texts.clone();
            std::thread::spawn(move || {
                for _ in 0..rounds {
                    for t in &texts {
                        c.classify(t).unwrap();
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let n = 2 * texts.len() * rounds;
    let el = t0.elapsed();
    println!(
        "  two callers, 2 pooled sessions: {:.0} utterances/s ({:.1} µs each of wall time)",
        n as f64 / el.as_secs_f64(),
        us(el) / n as f64
    );

    let t0 = Instant::now();
    let mut k = 0;
    for _ in 0..rounds {
        for t in &texts {
            k += featurize::featurize(t).len();
        }
    }
    println!(
        "  featurizer alone: {:.1} µs per utterance ({:.0} features on average)",
        us(t0.elapsed()) / (texts.len() * rounds) as f64,
        k as f64 / (texts.len() * rounds) as f64
    );
}
