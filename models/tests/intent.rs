//! The intent model through ONNX Runtime: golden featurizer file, held-out
//! accuracy goal, metadata, pooled sessions, bad model files, and the
//! trainer's reproducibility. Needs `scripts/install-models-deps.sh`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use voxbridge_models::intent::featurize::{self, BUCKETS};
use voxbridge_models::intent::{IntentClassifier, IntentConfig};
use voxbridge_models::ModelError;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn model_path() -> PathBuf {
    root().join("fixtures/models/intent.onnx")
}

fn classifier() -> Arc<IntentClassifier> {
    static C: OnceLock<Arc<IntentClassifier>> = OnceLock::new();
    C.get_or_init(|| {
        Arc::new(
            IntentClassifier::load(&IntentConfig::new(model_path())).expect(
                "intent model loads (run scripts/install-models-deps.sh for libonnxruntime)",
            ),
        )
    })
    .clone()
}

fn read_tsv(path: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (a, b) = l.split_once('\t').unwrap();
            (a.to_string(), b.to_string())
        })
        .collect()
}

#[test]
fn golden_file_features_and_probabilities_match_python() {
    let text = std::fs::read_to_string(root().join("fixtures/models/intent.golden.jsonl")).unwrap();
    let mut lines = text.lines();
    let header: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(header["featurizer"], featurize::VERSION);
    assert_eq!(header["buckets"], BUCKETS);
    let c = classifier();
    let labels: Vec<String> = serde_json::from_value(header["labels"].clone()).unwrap();
    assert_eq!(labels, c.labels());
    let mut n = 0;
    for line in lines {
        let row: serde_json::Value = serde_json::from_str(line).unwrap();
        let t = row["text"].as_str().unwrap();
        let want: Vec<(usize, f32)> = row["features"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p[0].as_u64().unwrap() as usize,
                    p[1].as_f64().unwrap() as f32,
                )
            })
            .collect();
        assert_eq!(featurize::featurize(t), want, "features of {t:?}");
        let probs = c.probabilities(t).unwrap();
        for (i, p) in row["probabilities"].as_array().unwrap().iter().enumerate() {
            let p = p.as_f64().unwrap() as f32;
            assert!(
                (probs[i] - p).abs() <= 1e-5 + 1e-5 * p,
                "{t:?} label {}: rust {} python {p}",
                labels[i],
                probs[i]
            );
        }
        n += 1;
    }
    assert!(n >= 50, "golden file has {n} rows");
}

#[test]
fn held_out_accuracy_meets_the_goal_in_each_language() {
    let c = classifier();
    for lang in ["en", "zh"] {
        let rows = read_tsv(&root().join(format!("fixtures/intents/heldout/{lang}.tsv")));
        let mut ok = 0;
        let mut misses = Vec::new();
        for (label, text) in &rows {
            let p = c.classify(text).unwrap();
            if &p.label == label {
                ok += 1;
            } else {
                misses.push(format!(
                    "{text:?}: {label} → {} ({:.2})",
                    p.label, p.confidence
                ));
            }
        }
        let acc = ok as f64 / rows.len() as f64;
        println!("held-out accuracy {lang}: {ok}/{} = {acc:.3}", rows.len());
        for m in &misses {
            println!("  miss {m}");
        }
        assert!(
            rows.len() >= 12 * 10,
            "{lang}: only {} held-out rows",
            rows.len()
        );
        assert!(acc >= 0.90, "{lang}: held-out accuracy {acc:.3} below 0.90");
    }
}

#[test]
fn training_data_has_enough_intents_and_examples() {
    for lang in ["en", "zh"] {
        let rows = read_tsv(&root().join(format!("fixtures/intents/{lang}.tsv")));
        let mut counts = std::collections::BTreeMap::<String, usize>::new();
        for (l, _) in &rows {
            *counts.entry(l.clone()).or_default() += 1;
        }
        assert!(counts.len() >= 12, "{lang}: {counts:?}");
        for (l, n) in &counts {
            assert!(*n >= 40, "{lang}: {l} has {n} examples");
        }
        let heldout = read_tsv(&root().join(format!("fixtures/intents/heldout/{lang}.tsv")));
        let train: std::collections::HashSet<&str> = rows.iter().map(|(_, t)| t.as_str()).collect();
        for (_, t) in &heldout {
            assert!(
                !train.contains(t.as_str()),
                "{lang}: held-out {t:?} is in the training data"
            );
        }
    }
    let labels = classifier().labels().to_vec();
    for want in [
        "order_status",
        "stock_check",
        "complaint",
        "cancel_order",
        "talk_to_human",
        "yes",
        "no",
        "repeat",
        "goodbye",
        "greeting",
        "billing",
        "out_of_scope",
    ] {
        assert!(
            labels.iter().any(|l| l == want),
            "{want} missing from {labels:?}"
        );
    }
}

#[test]
fn predictions_threshold_and_allowed_subsets() {
    let c = classifier();
    let p = c.classify("I want to cancel my order").unwrap();
    assert_eq!(p.intent(), Some("cancel_order"));
    assert!(p.confidence >= c.threshold());
    let p = c.classify("我要转人工").unwrap();
    assert_eq!(p.intent(), Some("talk_to_human"));
    // Nothing to go on: uniform-ish, below threshold, a no-match.
    let p = c.classify("").unwrap();
    assert_eq!(p.intent(), None, "{p:?}");
    let p = c.classify("what's the weather on mars").unwrap();
    assert_eq!(p.intent(), None, "{p:?}");
    let total: f32 = p.ranked.iter().map(|(_, v)| v).sum();
    assert!((total - 1.0).abs() < 1e-4);
    let p = c.classify("where is my parcel").unwrap();
    let (best, prob) = p.best_among(&["cancel_order", "order_status"]).unwrap();
    assert_eq!(best, "order_status");
    assert!(prob > 0.5 && prob <= 1.0);
}

#[test]
fn pooled_sessions_serve_concurrent_callers() {
    let c = classifier();
    let want = c.classify("has my order shipped").unwrap();
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let c = c.clone();
            std::thread::spawn(move || {
                (0..50)
                    .map(|_| c.classify("has my order shipped").unwrap())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for h in handles {
        for p in h.join().unwrap() {
            assert_eq!(p, want);
        }
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vb-intent-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn truncated_corrupt_or_mismatched_model_fails_at_load() {
    let _ = classifier(); // the runtime is loaded; failures below are the file's
    let bytes = std::fs::read(model_path()).unwrap();
    let dir = temp_dir("bad");

    let truncated = dir.join("truncated.onnx");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let e = IntentClassifier::load(&IntentConfig::new(&truncated)).unwrap_err();
    assert!(matches!(e, ModelError::Corrupt { .. }), "{e}");
    assert!(e.to_string().contains("truncated.onnx"), "{e}");

    let garbage = dir.join("garbage.onnx");
    std::fs::write(&garbage, b"this is not a model").unwrap();
    let e = IntentClassifier::load(&IntentConfig::new(&garbage)).unwrap_err();
    assert!(matches!(e, ModelError::Corrupt { .. }), "{e}");

    let e = IntentClassifier::load(&IntentConfig::new(dir.join("missing.onnx"))).unwrap_err();
    assert!(matches!(e, ModelError::Io { .. }), "{e}");

    let mut cfg = IntentConfig::new(model_path());
    cfg.sha256 = Some("00".repeat(32));
    let e = IntentClassifier::load(&cfg).unwrap_err();
    assert!(matches!(e, ModelError::Checksum { .. }), "{e}");
    cfg.sha256 = Some(voxbridge_models::checksum::sha256_hex(&bytes).to_uppercase());
    IntentClassifier::load(&cfg).unwrap();

    // A model from another featurizer is refused by its metadata.
    let needle = featurize::VERSION.as_bytes();
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("featurizer version in the metadata");
    let mut other = bytes.clone();
    other[at + needle.len() - 1] = b'9';
    let wrong = dir.join("other-featurizer.onnx");
    std::fs::write(&wrong, &other).unwrap();
    let e = IntentClassifier::load(&IntentConfig::new(&wrong)).unwrap_err();
    assert!(e.to_string().contains("featurizer vbhash-9"), "{e}");

    let mut cfg = IntentConfig::new(model_path());
    cfg.sessions = 0;
    assert!(matches!(
        IntentClassifier::load(&cfg),
        Err(ModelError::Config(_))
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn trainer_reproduces_the_committed_model_byte_for_byte() {
    let python = voxbridge_models::runtime::cache_dir().join("models-venv/bin/python");
    assert!(
        python.exists(),
        "{} missing: run scripts/install-models-deps.sh",
        python.display()
    );
    let out = std::process::Command::new(&python)
        .arg(root().join("models/train/train_intent.py"))
        .arg("--check")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "trainer --check failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("byte for byte"));
}
