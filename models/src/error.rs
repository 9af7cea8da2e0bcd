//! Errors of the models crate: one enum that says what went wrong and with
//! which file, so a bad model is reported at start, never mid-call.

use std::path::PathBuf;

/// Everything that can go wrong loading or running a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A model file's sha256 is not the one the configuration expects.
    #[error("{path}: sha256 mismatch: expected {expected}, file has {actual}")]
    Checksum {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    /// A model file is truncated, has the wrong format or the wrong contents.
    #[error("{path}: not a usable model: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    /// A model in another format cannot be converted faithfully (a tensor
    /// whisper.cpp has no place for is not zero, a quantised type…).
    #[error("{path}: cannot be converted: {reason}")]
    Convert { path: PathBuf, reason: String },
    /// The ONNX Runtime library could not be found or loaded.
    #[error("ONNX Runtime: {0}")]
    Runtime(String),
    /// An inference engine failed on an input.
    #[error("{engine}: {reason}")]
    Inference {
        engine: &'static str,
        reason: String,
    },
    /// A configuration value makes no sense (zero workers, unknown language…).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The configuration asks for an engine this build was compiled
    /// without (see the crate's Cargo features).
    #[error("{what}: this build has no `{feature}` feature (rebuild with `--features {feature}`)")]
    Disabled {
        what: &'static str,
        feature: &'static str,
    },
}

impl ModelError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ModelError::Io {
            path: path.into(),
            source,
        }
    }

    /// `what` needs the Cargo feature `feature`, which is off in this build.
    #[cfg(not(all(
        feature = "whisper",
        feature = "sphinx",
        feature = "espeak",
        feature = "onnx"
    )))]
    pub(crate) fn disabled(what: &'static str, feature: &'static str) -> Self {
        ModelError::Disabled { what, feature }
    }

    pub(crate) fn corrupt(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        ModelError::Corrupt {
            path: path.into(),
            reason: reason.into(),
        }
    }
}
