//! The dialog script calls run, reloaded when one of its files changes.
//!
//! New calls take the newest script that passed validation; calls in
//! progress keep the one they started with. A change that fails validation
//! is refused with its problems in one log line, and the previous script
//! stays live. Every file the live script was read from (the script and
//! each import) is watched by polling its modification time every
//! `RELOAD_POLL`, which keeps this free of platform file-watch APIs.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use voxbridge_dialog::interp::Program;

const RELOAD_POLL: Duration = Duration::from_secs(1);

/// A watched file and the modification time last seen (None: unreadable).
type Stamp = (PathBuf, Option<SystemTime>);

/// The live script.
pub struct ScriptStore {
    path: PathBuf,
    /// The live program; receivers (the prompt prewarmer) see each new one.
    current: watch::Sender<Arc<Program>>,
    /// The files of the live program. After a refused change these keep the
    /// times just seen, so the same broken edit is reported once.
    watched: Mutex<Vec<Stamp>>,
}

impl ScriptStore {
    /// Load and validate the script; a bad script stops the start.
    pub fn load(path: &Path) -> Result<Arc<ScriptStore>, String> {
        // Stamped before reading, so an edit during the load is seen next poll.
        let before = stamps(&[path.to_path_buf()]);
        let program = Program::load(path, None).map_err(|p| p.to_string())?;
        let watched = watch_list(path, &program, &before);
        Ok(Arc::new(ScriptStore {
            path: path.to_path_buf(),
            current: watch::Sender::new(Arc::new(program)),
            watched: Mutex::new(watched),
        }))
    }

    /// The script for a new call.
    pub fn current(&self) -> Arc<Program> {
        self.current.borrow().clone()
    }

    /// The live program now and every one that goes live after it.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Program>> {
        self.current.subscribe()
    }

    /// Reload if any file of the script changed since the last load attempt.
    /// Returns `Some(true)` when a new script went live, `Some(false)` when a
    /// change was refused, `None` when nothing changed.
    pub fn reload_if_changed(&self) -> Option<bool> {
        let mut watched = self.watched.lock().unwrap_or_else(|p| p.into_inner());
        let paths: Vec<PathBuf> = watched.iter().map(|(p, _)| p.clone()).collect();
        let now = stamps(&paths);
        if now == *watched {
            return None;
        }
        let changed: Vec<String> = now
            .iter()
            .zip(watched.iter())
            .filter(|(a, b)| a != b)
            .map(|((p, _), _)| p.display().to_string())
            .collect();
        *watched = now.clone();
        match Program::load(&self.path, None) {
            Ok(program) => {
                *watched = watch_list(&self.path, &program, &now);
                self.current.send_replace(Arc::new(program));
                info!(script = %self.path.display(), changed = %changed.join(", "), "dialog script reloaded; new calls use it");
                Some(true)
            }
            Err(problems) => {
                warn!(
                    script = %self.path.display(),
                    changed = %changed.join(", "),
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

fn stamps(paths: &[PathBuf]) -> Vec<Stamp> {
    paths.iter().map(|p| (p.clone(), mtime(p))).collect()
}

/// The files of `program` with their times: those in `seen` (taken before
/// the load) keep that time, others are stamped now.
fn watch_list(script: &Path, program: &Program, seen: &[Stamp]) -> Vec<Stamp> {
    let mut files = program.sources().to_vec();
    if files.is_empty() {
        files.push(script.to_path_buf());
    }
    files
        .into_iter()
        .map(|p| match seen.iter().find(|(s, _)| *s == p) {
            Some((_, t)) => (p, *t),
            None => {
                let t = mtime(&p);
                (p, t)
            }
        })
        .collect()
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

    const MAIN: &str = "name: t\nimports: [common/sub.yaml]\nstart: hello\nstates:\n  hello:\n    flow: greet\n    on:\n      done: bye\n  bye:\n    hangup: done\n";
    const SUB: &str = "flows:\n  greet:\n    start: a\n    states:\n      a:\n        say: Hello from the sub-flow.\n        return: done\n";

    /// Rewrite `path` and move its modification time past any earlier one.
    fn edit(path: &Path, text: &str, secs_ahead: u64) {
        std::fs::write(path, text).unwrap();
        let f = std::fs::File::options().write(true).open(path).unwrap();
        f.set_modified(SystemTime::now() + Duration::from_secs(secs_ahead))
            .unwrap();
    }

    fn says(program: &Program) -> String {
        format!("{:?}", program.script().flows["greet"].states["a"])
    }

    #[test]
    fn an_edit_to_an_imported_file_is_reloaded() {
        let dir =
            std::env::temp_dir().join(format!("voxbridge-script-import-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("common")).unwrap();
        let path = dir.join("main.yaml");
        std::fs::write(&path, MAIN).unwrap();
        let sub = dir.join("common/sub.yaml");
        std::fs::write(&sub, SUB).unwrap();
        let store = ScriptStore::load(&path).unwrap();
        assert!(says(&store.current()).contains("Hello from the sub-flow."));
        assert_eq!(store.reload_if_changed(), None);

        edit(&sub, &SUB.replace("Hello from", "Welcome to"), 2);
        assert_eq!(store.reload_if_changed(), Some(true));
        assert!(says(&store.current()).contains("Welcome to the sub-flow."));
        assert_eq!(store.reload_if_changed(), None);

        // A broken sub-flow is refused once; the last good program stays.
        let live = store.current();
        edit(
            &sub,
            "flows:\n  greet:\n    start: nowhere\n    states: {}\n",
            4,
        );
        assert_eq!(store.reload_if_changed(), Some(false));
        assert_eq!(
            store.reload_if_changed(),
            None,
            "reported once, not every poll"
        );
        assert!(Arc::ptr_eq(&live, &store.current()));

        // Fixing it goes live again.
        edit(&sub, &SUB.replace("Hello from", "Back in"), 6);
        assert_eq!(store.reload_if_changed(), Some(true));
        assert!(says(&store.current()).contains("Back in the sub-flow."));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
