//! The dialog script calls run, reloaded when its file changes.
//!
//! New calls take the newest script that passed validation; calls in
//! progress keep the one they started with. A change that fails validation
//! is refused with its problems in the log, and the previous script stays
//! live. Polling the file's modification time (every `RELOAD_POLL`) keeps
//! this free of platform file-watch APIs.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use voxbridge_dialog::interp::Program;

const RELOAD_POLL: Duration = Duration::from_secs(1);

/// The live script.
pub struct ScriptStore {
    path: PathBuf,
    current: RwLock<Arc<Program>>,
    loaded_mtime: RwLock<Option<SystemTime>>,
}

impl ScriptStore {
    /// Load and validate the script; a bad script stops the start.
    pub fn load(path: &Path) -> Result<Arc<ScriptStore>, String> {
        let program = Program::load(path, None).map_err(|p| p.to_string())?;
        Ok(Arc::new(ScriptStore {
            path: path.to_path_buf(),
            current: RwLock::new(Arc::new(program)),
            loaded_mtime: RwLock::new(mtime(path)),
        }))
    }

    /// The script for a new call.
    pub fn current(&self) -> Arc<Program> {
        match self.current.read() {
            Ok(p) => p.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Reload if the file changed since the last load attempt. Returns
    /// `Some(true)` when a new script went live, `Some(false)` when a change
    /// was refused, `None` when nothing changed.
    pub fn reload_if_changed(&self) -> Option<bool> {
        let now = mtime(&self.path);
        {
            let seen = self.loaded_mtime.read().ok()?;
            if now == *seen {
                return None;
            }
        }
        if let Ok(mut seen) = self.loaded_mtime.write() {
            *seen = now;
        }
        match Program::load(&self.path, None) {
            Ok(program) => {
                if let Ok(mut current) = self.current.write() {
                    *current = Arc::new(program);
                }
                info!(script = %self.path.display(), "dialog script reloaded; new calls use it");
                Some(true)
            }
            Err(problems) => {
                warn!(
                    script = %self.path.display(),
                    problems = %problems.to_string().replace('\n', "; "),
                    "dialog script change refused; the previous version stays live"
                );
                Some(false)
            }
        }
    }

    /// Poll for changes until `stop`.
    pub fn watch(self: &Arc<Self>, stop: CancellationToken) {
        let store = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(RELOAD_POLL) => {}
                }
                let s = store.clone();
                let _ = tokio::task::spawn_blocking(move || s.reload_if_changed()).await;
            }
        });
    }
}

fn mtime(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str =
        "name: t\nstart: hello\nstates:\n  hello:\n    say: Hello.\n    hangup: done\n";

    #[test]
    fn reloads_good_changes_and_refuses_bad_ones() {
        let dir =
            std::env::temp_dir().join(format!("voxbridge-script-store-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("s.yaml");
        std::fs::write(&path, GOOD).unwrap();
        let store = ScriptStore::load(&path).unwrap();
        let first = store.current();
        assert_eq!(store.reload_if_changed(), None);

        // A valid edit goes live (mtime granularity: make sure it moves).
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(&path, GOOD.replace("Hello.", "Hello again.")).unwrap();
        let f = std::fs::File::options().write(true).open(&path).unwrap();
        f.set_modified(SystemTime::now() + Duration::from_secs(2))
            .unwrap();
        assert_eq!(store.reload_if_changed(), Some(true));
        assert!(!Arc::ptr_eq(&first, &store.current()));

        // A broken edit is refused and the last good script stays.
        let live = store.current();
        std::fs::write(&path, "name: t\nstart: nowhere\nstates: {}\n").unwrap();
        let f = std::fs::File::options().write(true).open(&path).unwrap();
        f.set_modified(SystemTime::now() + Duration::from_secs(4))
            .unwrap();
        assert_eq!(store.reload_if_changed(), Some(false));
        assert!(Arc::ptr_eq(&live, &store.current()));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
