//! The ONNX Runtime shared library: where it is and loading it once.
//!
//! `ort` is built with `load-dynamic`: the library (`libonnxruntime.so`,
//! 1.31.x, from the PyPI `onnxruntime==1.31.1` wheel) is opened at run time
//! with [`ort::init_from`]. Without that call `ort` would try to open it
//! lazily on first use and panic if it is missing; [`environment`] makes the
//! failure an error at start instead. `scripts/install-models-deps.sh` puts a
//! symlink at `~/.cache/voxbridge/onnxruntime/libonnxruntime.so`. Without
//! the `onnx` feature only the paths remain (for `voxbridge models list`).

use std::path::PathBuf;
#[cfg(feature = "onnx")]
use {
    crate::ModelError,
    std::path::Path,
    std::sync::{Mutex, OnceLock},
};

/// Where [`default_library_path`] looks, relative to the cache directory.
pub const LIBRARY_IN_CACHE: &str = "onnxruntime/libonnxruntime.so";

/// The voxbridge cache directory: `$VOXBRIDGE_CACHE`, else `~/.cache/voxbridge`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("VOXBRIDGE_CACHE").filter(|v| !v.is_empty()) {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
    PathBuf::from(home).join(".cache").join("voxbridge")
}

/// The library to load when the configuration names none: `$ORT_DYLIB_PATH`
/// if set, else [`LIBRARY_IN_CACHE`] under [`cache_dir`].
pub fn default_library_path() -> PathBuf {
    match std::env::var_os("ORT_DYLIB_PATH").filter(|v| !v.is_empty()) {
        Some(p) => PathBuf::from(p),
        None => cache_dir().join(LIBRARY_IN_CACHE),
    }
}

#[cfg(feature = "onnx")]
static ENVIRONMENT: OnceLock<ort::environment::Environment> = OnceLock::new();
#[cfg(feature = "onnx")]
static INIT: Mutex<()> = Mutex::new(());

/// The process-wide ONNX Runtime environment, loading the library from
/// `library` (or [`default_library_path`]) on the first call. Later calls
/// return the same environment whatever path they pass: a process can load
/// only one ONNX Runtime.
#[cfg(feature = "onnx")]
pub fn environment(library: Option<&Path>) -> Result<ort::environment::Environment, ModelError> {
    if let Some(env) = ENVIRONMENT.get() {
        return Ok(env.clone());
    }
    let _guard = INIT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(env) = ENVIRONMENT.get() {
        return Ok(env.clone());
    }
    let path = library
        .map(Path::to_path_buf)
        .unwrap_or_else(default_library_path);
    if !path.exists() {
        return Err(ModelError::Runtime(format!(
            "library {} not found (run scripts/install-models-deps.sh, or set ORT_DYLIB_PATH)",
            path.display()
        )));
    }
    let env = ort::init_from(&path)
        .map_err(|e| ModelError::Runtime(e.to_string()))?
        .with_name("voxbridge")
        .with_telemetry(false)
        .build()
        .map_err(|e| ModelError::Runtime(e.to_string()))?;
    let _ = ENVIRONMENT.set(env.clone());
    Ok(env)
}
