//! `voxbridge models pull NAME`: download a ggml whisper model with sha256
//! verification and resume.
//!
//! The file is written to `<dir>/ggml-NAME.bin.part`, hashed as it arrives,
//! and renamed to `ggml-NAME.bin` only when its sha256 matches. An
//! interrupted download keeps its `.part` file; the next attempt (in the
//! same call, up to `attempts`, or a later call) asks for the rest with an
//! HTTP `Range` request and falls back to starting over if the server
//! ignores it. A checksum mismatch deletes the part file and installs
//! nothing. Nothing here runs at build or test time against the internet:
//! the tests use a local server.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::checksum::hex;
use crate::ModelError;

/// The public whisper.cpp model host (Hugging Face `ggerganov/whisper.cpp`).
pub const DEFAULT_BASE_URL: &str = "https://huggingface.co/ggerganov/whisper.cpp/resolve/main";

/// A model `pull` knows the checksum of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatalogEntry {
    pub name: &'static str,
    pub bytes: u64,
    pub sha256: &'static str,
}

/// Models with pinned checksums. Others can be pulled by giving their
/// sha256 explicitly.
pub const CATALOG: &[CatalogEntry] = &[CatalogEntry {
    name: "tiny.en",
    bytes: 77_704_715,
    sha256: "921e4cf8686fdd993dcd081a5da5b6c365bfde1162e72b08d75ac75289920b1f",
}];

/// Where and how to download.
#[derive(Debug, Clone, PartialEq)]
pub struct PullOptions {
    /// Base URL; the file is `<base>/ggml-NAME.bin`.
    pub base_url: String,
    /// Directory the model goes to (created if missing).
    pub dir: PathBuf,
    /// Expected sha256; required for names not in [`CATALOG`], and must
    /// agree with the catalog for names in it.
    pub sha256: Option<String>,
    /// Tries per call; each retry resumes.
    pub attempts: u32,
    /// Connect timeout and the longest pause between two received chunks.
    pub stall_timeout: Duration,
}

impl PullOptions {
    /// Defaults: the public host, 4 attempts, 30 s stall timeout.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        PullOptions {
            base_url: DEFAULT_BASE_URL.into(),
            dir: dir.into(),
            sha256: None,
            attempts: 4,
            stall_timeout: Duration::from_secs(30),
        }
    }
}

/// What `pull` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullOutcome {
    pub path: PathBuf,
    pub bytes: u64,
    pub sha256: String,
    /// Bytes that were already on disk from an earlier, interrupted try.
    pub resumed_from: u64,
    /// The verified file was already there; nothing was downloaded.
    pub already_present: bool,
    /// HTTP requests made.
    pub requests: u32,
}

/// The file name of model `name`.
pub fn file_name(name: &str) -> String {
    format!("ggml-{name}.bin")
}

fn check_name(name: &str) -> Result<(), ModelError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-' | '_'));
    if ok {
        Ok(())
    } else {
        Err(ModelError::Config(format!(
            "models pull: `{name}` is not a model name (e.g. tiny.en, base, small.en-q5_1)"
        )))
    }
}

fn expected_sha(name: &str, given: Option<&str>) -> Result<String, ModelError> {
    let pinned = CATALOG.iter().find(|e| e.name == name).map(|e| e.sha256);
    match (pinned, given) {
        (Some(p), Some(g)) if !p.eq_ignore_ascii_case(g.trim()) => Err(ModelError::Config(
            format!("models pull: sha256 {g} for {name} differs from the pinned {p}"),
        )),
        (Some(p), _) => Ok(p.to_string()),
        (None, Some(g)) => {
            let g = g.trim().to_ascii_lowercase();
            if g.len() == 64 && g.bytes().all(|b| b.is_ascii_hexdigit()) {
                Ok(g)
            } else {
                Err(ModelError::Config(format!(
                    "models pull: `{g}` is not a sha256"
                )))
            }
        }
        (None, None) => Err(ModelError::Config(format!(
            "models pull: no pinned checksum for `{name}`; pass its sha256 (known: {})",
            CATALOG
                .iter()
                .map(|e| e.name)
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

async fn hash_existing(path: &Path) -> Result<(Sha256, u64), ModelError> {
    let mut hasher = Sha256::new();
    let mut n = 0u64;
    let mut f = match tokio::fs::File::open(path).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((hasher, 0)),
        Err(e) => return Err(ModelError::io(path, e)),
    };
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let k = f
            .read(&mut buf)
            .await
            .map_err(|e| ModelError::io(path, e))?;
        if k == 0 {
            break;
        }
        hasher.update(&buf[..k]);
        n += k as u64;
    }
    Ok((hasher, n))
}

fn net(url: &str, e: impl std::fmt::Display) -> ModelError {
    ModelError::Inference {
        engine: "models pull",
        reason: format!("{url}: {e}"),
    }
}

/// Downloads model `name` (see the module documentation).
pub async fn pull(name: &str, opts: &PullOptions) -> Result<PullOutcome, ModelError> {
    check_name(name)?;
    let sha = expected_sha(name, opts.sha256.as_deref())?;
    tokio::fs::create_dir_all(&opts.dir)
        .await
        .map_err(|e| ModelError::io(&opts.dir, e))?;
    let dest = opts.dir.join(file_name(name));
    let part = opts.dir.join(format!("{}.part", file_name(name)));
    if tokio::fs::metadata(&dest).await.is_ok() {
        let (h, n) = hash_existing(&dest).await?;
        let have = hex(&h.finalize());
        if have == sha {
            return Ok(PullOutcome {
                path: dest,
                bytes: n,
                sha256: have,
                resumed_from: 0,
                already_present: true,
                requests: 0,
            });
        }
        return Err(ModelError::Checksum {
            path: dest,
            expected: sha,
            actual: have,
        });
    }
    let url = format!(
        "{}/{}",
        opts.base_url.trim_end_matches('/'),
        file_name(name)
    );
    let client = reqwest::Client::builder()
        .connect_timeout(opts.stall_timeout)
        .read_timeout(opts.stall_timeout)
        .user_agent(concat!("voxbridge-models/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| net(&url, e))?;
    let (mut hasher, mut have) = hash_existing(&part).await?;
    let resumed_from = have;
    let mut requests = 0u32;
    let mut last_error = None;
    for attempt in 0..opts.attempts.max(1) {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
        }
        requests += 1;
        let mut req = client.get(&url);
        if have > 0 {
            req = req.header(reqwest::header::RANGE, format!("bytes={have}-"));
        }
        let mut resp = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                last_error = Some(net(&url, e));
                continue;
            }
        };
        let status = resp.status();
        let append = match status.as_u16() {
            206 if have > 0 => true,
            200 => false,
            416 if have > 0 => {
                // Nothing left to send: the part file may already be whole.
                last_error = None;
                break;
            }
            404 => {
                return Err(net(
                    &url,
                    "not found (404): check the model name and base URL",
                ))
            }
            _ => {
                last_error = Some(net(&url, format!("HTTP {status}")));
                continue;
            }
        };
        if !append && have > 0 {
            // The server ignored the range: start over.
            hasher = Sha256::new();
            have = 0;
        }
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(append)
            .truncate(!append)
            .open(&part)
            .await
            .map_err(|e| ModelError::io(&part, e))?;
        let mut failed = false;
        loop {
            match resp.chunk().await {
                Ok(Some(bytes)) => {
                    hasher.update(&bytes);
                    file.write_all(&bytes)
                        .await
                        .map_err(|e| ModelError::io(&part, e))?;
                    have += bytes.len() as u64;
                }
                Ok(None) => break,
                Err(e) => {
                    last_error = Some(net(&url, format!("interrupted after {have} bytes: {e}")));
                    failed = true;
                    break;
                }
            }
        }
        file.flush().await.map_err(|e| ModelError::io(&part, e))?;
        file.sync_all()
            .await
            .map_err(|e| ModelError::io(&part, e))?;
        if !failed {
            last_error = None;
            break;
        }
    }
    if let Some(e) = last_error {
        return Err(e);
    }
    let actual = hex(&hasher.clone().finalize());
    if actual != sha {
        let _ = tokio::fs::remove_file(&part).await;
        return Err(ModelError::Checksum {
            path: dest,
            expected: sha,
            actual,
        });
    }
    tokio::fs::rename(&part, &dest)
        .await
        .map_err(|e| ModelError::io(&dest, e))?;
    Ok(PullOutcome {
        path: dest,
        bytes: have,
        sha256: actual,
        resumed_from,
        already_present: false,
        requests,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_checksums() {
        assert!(check_name("tiny.en").is_ok());
        assert!(check_name("small.en-q5_1").is_ok());
        for bad in ["", "../etc", "a/b", ".hidden", "Tiny"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        assert_eq!(expected_sha("tiny.en", None).unwrap(), CATALOG[0].sha256);
        assert!(expected_sha("tiny.en", Some(&"0".repeat(64))).is_err());
        assert!(expected_sha("base", None).is_err());
        assert!(expected_sha("base", Some("xyz")).is_err());
        assert_eq!(
            expected_sha("base", Some(&"AB".repeat(32))).unwrap(),
            "ab".repeat(32)
        );
        assert_eq!(file_name("tiny.en"), "ggml-tiny.en.bin");
    }
}
