//! Intent classification: caller text → intent label and confidence.
//!
//! The model (`fixtures/models/intent.onnx`, trained by
//! `models/train/train_intent.py` from `fixtures/intents/*.tsv`) takes the
//! hashed features of [`featurize`] and returns a probability per label; it
//! L2-normalises, multiplies, adds and applies softmax itself. Labels and the
//! featurizer version live in the model metadata and are checked at load, so
//! a model from another featurizer fails at start. `Session::run` needs
//! `&mut`, so the classifier keeps a small pool of sessions (one per
//! concurrent classification), each single-threaded: classifying a sentence
//! costs microseconds and must not fan out over the cores calls need.

pub mod featurize;

use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};

use crate::ModelError;
#[cfg(feature = "onnx")]
use {
    crate::checksum, ort::session::builder::GraphOptimizationLevel, ort::session::Session,
    ort::value::TensorRef,
};

/// Label the trainer uses for "none of the above".
pub const OUT_OF_SCOPE: &str = "out_of_scope";

/// How to load the classifier.
#[derive(Debug, Clone)]
pub struct IntentConfig {
    /// The ONNX model file.
    pub model: PathBuf,
    /// Expected sha256 of the model file (hex); `None` skips the check.
    pub sha256: Option<String>,
    /// Sessions in the pool: classifications that can run at once.
    pub sessions: usize,
    /// ONNX Runtime intra-op threads per session.
    pub threads_per_session: usize,
    /// Below this confidence a prediction is a no-match.
    pub threshold: f32,
    /// The ONNX Runtime library; `None`: [`crate::runtime::default_library_path`].
    pub onnxruntime: Option<PathBuf>,
}

impl IntentConfig {
    /// Defaults for `model`: 2 sessions, 1 thread each, threshold 0.5.
    pub fn new(model: impl Into<PathBuf>) -> Self {
        IntentConfig {
            model: model.into(),
            sha256: None,
            sessions: 2,
            threads_per_session: 1,
            threshold: 0.5,
            onnxruntime: None,
        }
    }
}

/// What the classifier made of one utterance.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// The most probable label (may be [`OUT_OF_SCOPE`]).
    pub label: String,
    /// Its probability.
    pub confidence: f32,
    /// Whether `label` is a real intent at or above the threshold.
    pub matched: bool,
    /// Every label with its probability, most probable first.
    pub ranked: Vec<(String, f32)>,
}

impl Prediction {
    /// The matched intent, or `None` for a no-match.
    pub fn intent(&self) -> Option<&str> {
        self.matched.then_some(self.label.as_str())
    }

    /// The best label among `allowed` (the intents the current prompt
    /// expects) with its probability renormalised over them, or `None` when
    /// no allowed label has any probability.
    pub fn best_among(&self, allowed: &[&str]) -> Option<(&str, f32)> {
        let total: f32 = self
            .ranked
            .iter()
            .filter(|(l, _)| allowed.contains(&l.as_str()))
            .map(|(_, p)| p)
            .sum();
        if total <= 0.0 {
            return None;
        }
        self.ranked
            .iter()
            .find(|(l, _)| allowed.contains(&l.as_str()))
            .map(|(l, p)| (l.as_str(), p / total))
    }
}

struct Slot {
    #[cfg(feature = "onnx")]
    session: Session,
    dense: Vec<f32>,
    touched: Vec<usize>,
}

/// The loaded classifier; share it between calls (`&self` methods, `Sync`).
pub struct IntentClassifier {
    labels: Vec<String>,
    threshold: f32,
    path: PathBuf,
    free: Mutex<Vec<Slot>>,
    available: Condvar,
    pool_size: usize,
}

impl std::fmt::Debug for IntentClassifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntentClassifier")
            .field("path", &self.path)
            .field("labels", &self.labels)
            .field("threshold", &self.threshold)
            .field("sessions", &self.pool_size)
            .finish()
    }
}

#[cfg(feature = "onnx")]
fn build_session(
    env: &ort::environment::Environment,
    threads: usize,
) -> Result<ort::session::builder::SessionBuilder, String> {
    let b = Session::builder(env).map_err(|e| e.to_string())?;
    let b = b
        .with_optimization_level(GraphOptimizationLevel::Level3)
        .map_err(|e| e.to_string())?;
    let b = b.with_intra_threads(threads).map_err(|e| e.to_string())?;
    let b = b.with_inter_threads(1).map_err(|e| e.to_string())?;
    b.with_intra_op_spinning(false).map_err(|e| e.to_string())
}

#[cfg(feature = "onnx")]
fn ort_err(path: &Path, e: impl std::fmt::Display) -> ModelError {
    ModelError::corrupt(path, e.to_string())
}

impl IntentClassifier {
    /// Loads and checks the model: file readable, sha256 (if configured),
    /// ONNX parses, metadata has this featurizer's version and bucket count
    /// and a label list matching the output width. Every failure is an
    /// error here, never later.
    #[cfg(feature = "onnx")]
    pub fn load(config: &IntentConfig) -> Result<Self, ModelError> {
        if config.sessions == 0 || config.threads_per_session == 0 {
            return Err(ModelError::Config(
                "intent: sessions and threads_per_session must be at least 1".into(),
            ));
        }
        if !(0.0..=1.0).contains(&config.threshold) {
            return Err(ModelError::Config(format!(
                "intent: threshold {} is not between 0 and 1",
                config.threshold
            )));
        }
        let path = config.model.as_path();
        let bytes = std::fs::read(path).map_err(|e| ModelError::io(path, e))?;
        if let Some(expected) = &config.sha256 {
            let actual = checksum::sha256_hex(&bytes);
            if !actual.eq_ignore_ascii_case(expected.trim()) {
                return Err(ModelError::Checksum {
                    path: path.to_path_buf(),
                    expected: expected.trim().to_ascii_lowercase(),
                    actual,
                });
            }
        }
        let env = crate::runtime::environment(config.onnxruntime.as_deref())?;
        let mut slots = Vec::with_capacity(config.sessions);
        let mut labels = Vec::new();
        for i in 0..config.sessions {
            let session = build_session(&env, config.threads_per_session)
                .map_err(ModelError::Runtime)?
                .commit_from_memory(&bytes)
                .map_err(|e| ort_err(path, e))?;
            if i == 0 {
                labels = check_metadata(path, &session)?;
            }
            slots.push(Slot {
                session,
                dense: vec![0.0; featurize::BUCKETS],
                touched: Vec::new(),
            });
        }
        // One run per session now, so a model whose graph fails at run time
        // (wrong shapes) fails here too.
        for slot in &mut slots {
            let p = run(slot, "hello", path)?;
            for &b in &slot.touched {
                slot.dense[b] = 0.0;
            }
            if p.len() != labels.len() {
                return Err(ModelError::corrupt(
                    path,
                    format!("{} outputs for {} labels", p.len(), labels.len()),
                ));
            }
        }
        let classifier = IntentClassifier {
            labels,
            threshold: config.threshold,
            path: path.to_path_buf(),
            pool_size: slots.len(),
            free: Mutex::new(slots),
            available: Condvar::new(),
        };
        Ok(classifier)
    }

    /// This build has no `onnx` feature: always [`ModelError::Disabled`].
    #[cfg(not(feature = "onnx"))]
    pub fn load(_config: &IntentConfig) -> Result<Self, ModelError> {
        Err(ModelError::disabled("intent model", "onnx"))
    }

    /// The model's labels, in output order.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// The no-match threshold.
    pub fn threshold(&self) -> f32 {
        self.threshold
    }

    /// Probabilities of every label for `text`, in [`Self::labels`] order.
    /// Blocks while all sessions are busy.
    pub fn probabilities(&self, text: &str) -> Result<Vec<f32>, ModelError> {
        let mut slot = {
            let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                if let Some(s) = free.pop() {
                    break s;
                }
                free = self.available.wait(free).unwrap_or_else(|e| e.into_inner());
            }
        };
        let result = run(&mut slot, text, &self.path);
        for &b in &slot.touched {
            slot.dense[b] = 0.0;
        }
        self.free
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(slot);
        self.available.notify_one();
        result
    }

    /// Classifies `text`.
    pub fn classify(&self, text: &str) -> Result<Prediction, ModelError> {
        let probs = self.probabilities(text)?;
        let mut ranked: Vec<(String, f32)> = self.labels.iter().cloned().zip(probs).collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let (label, confidence) = ranked[0].clone();
        let matched = confidence >= self.threshold && label != OUT_OF_SCOPE;
        Ok(Prediction {
            label,
            confidence,
            matched,
            ranked,
        })
    }
}

#[cfg(feature = "onnx")]
fn run(slot: &mut Slot, text: &str, path: &Path) -> Result<Vec<f32>, ModelError> {
    featurize::featurize_into(text, &mut slot.dense, &mut slot.touched);
    let input = TensorRef::from_array_view(([1usize, featurize::BUCKETS], slot.dense.as_slice()))
        .map_err(|e| inference(path, e))?;
    let outputs = slot
        .session
        .run(ort::inputs!["features" => input])
        .map_err(|e| inference(path, e))?;
    let (_, probs) = outputs["probabilities"]
        .try_extract_tensor::<f32>()
        .map_err(|e| inference(path, e))?;
    Ok(probs.to_vec())
}

/// Never called: without `onnx` no classifier (so no slot) exists.
#[cfg(not(feature = "onnx"))]
fn run(_slot: &mut Slot, _text: &str, _path: &Path) -> Result<Vec<f32>, ModelError> {
    Err(ModelError::disabled("intent model", "onnx"))
}

#[cfg(feature = "onnx")]
fn inference(path: &Path, e: impl std::fmt::Display) -> ModelError {
    ModelError::Inference {
        engine: "intent",
        reason: format!("{}: {e}", path.display()),
    }
}

#[cfg(feature = "onnx")]
fn check_metadata(path: &Path, session: &Session) -> Result<Vec<String>, ModelError> {
    let meta = session.metadata().map_err(|e| ort_err(path, e))?;
    let get = |key: &str| {
        meta.custom(key)
            .ok_or_else(|| ModelError::corrupt(path, format!("metadata `{key}` missing")))
    };
    let version = get("voxbridge.featurizer")?;
    if version != featurize::VERSION {
        return Err(ModelError::corrupt(
            path,
            format!(
                "trained with featurizer {version}, this build has {}",
                featurize::VERSION
            ),
        ));
    }
    let buckets = get("voxbridge.buckets")?;
    if buckets != featurize::BUCKETS.to_string() {
        return Err(ModelError::corrupt(
            path,
            format!("{buckets} buckets, this build has {}", featurize::BUCKETS),
        ));
    }
    let labels: Vec<String> = serde_json::from_str(&get("voxbridge.labels")?)
        .map_err(|e| ModelError::corrupt(path, format!("metadata `voxbridge.labels`: {e}")))?;
    if labels.is_empty() {
        return Err(ModelError::corrupt(path, "no labels"));
    }
    let input_ok = session.inputs().iter().any(|i| i.name() == "features");
    let output_ok = session
        .outputs()
        .iter()
        .any(|o| o.name() == "probabilities");
    if !input_ok || !output_ok {
        return Err(ModelError::corrupt(
            path,
            "expected input `features` and output `probabilities`",
        ));
    }
    Ok(labels)
}
