//! WAV prompts loaded once and shared by every call that plays them.
//!
//! A script's `play` names a file; reading and resampling it for each call
//! would cost a read, a decode and a copy of the samples per play. The
//! cache keeps one [`Prompt`] (an `Arc` of samples) per path and checks the
//! file's modification time and length at every play, so an edited prompt
//! is picked up at its next play without a restart. It is bounded in bytes
//! of samples; the least recently played prompt goes first.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use crate::prompt::{Prompt, PromptError};

/// What identifies one version of a file: a change to either means reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
}

#[derive(Debug)]
struct Entry {
    stamp: Stamp,
    prompt: Prompt,
    last_used: u64,
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<PathBuf, Entry>,
    bytes: usize,
    clock: u64,
}

/// The shared cache of prompt files; see the module doc.
#[derive(Debug)]
pub struct PromptFiles {
    inner: Mutex<Inner>,
    max_bytes: usize,
}

impl PromptFiles {
    /// A cache holding at most `max_bytes` of samples (a prompt larger
    /// than that is loaded at each play, never kept).
    pub fn new(max_bytes: usize) -> PromptFiles {
        PromptFiles {
            inner: Mutex::new(Inner::default()),
            max_bytes,
        }
    }

    /// The prompt in `path`: from the cache when the file has not changed
    /// since it was loaded, else read now (blocking: call it off the async
    /// runtime's workers).
    pub fn load(&self, path: &Path) -> Result<Prompt, PromptError> {
        let Ok(meta) = std::fs::metadata(path) else {
            // Missing or unreadable: the loader says why, with the path.
            return Prompt::load(path);
        };
        let stamp = Stamp {
            modified: meta.modified().ok(),
            len: meta.len(),
        };
        {
            let mut inner = self.lock();
            inner.clock += 1;
            let now = inner.clock;
            if let Some(e) = inner.entries.get_mut(path).filter(|e| e.stamp == stamp) {
                e.last_used = now;
                return Ok(e.prompt.clone());
            }
        }
        // Read outside the lock: other calls' plays need not wait for it.
        let prompt = Prompt::load(path)?;
        self.insert(path, stamp, prompt.clone());
        Ok(prompt)
    }

    /// Prompts cached now.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn insert(&self, path: &Path, stamp: Stamp, prompt: Prompt) {
        let size = prompt.len() * std::mem::size_of::<i16>();
        let mut inner = self.lock();
        if let Some(old) = inner.entries.remove(path) {
            inner.bytes -= old.prompt.len() * std::mem::size_of::<i16>();
        }
        if size > self.max_bytes {
            return;
        }
        while inner.bytes + size > self.max_bytes {
            let oldest = inner
                .entries
                .iter()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(p, _)| p.clone());
            let Some(oldest) = oldest else { break };
            if let Some(e) = inner.entries.remove(&oldest) {
                inner.bytes -= e.prompt.len() * std::mem::size_of::<i16>();
            }
        }
        inner.clock += 1;
        let last_used = inner.clock;
        inner.bytes += size;
        inner.entries.insert(
            path.to_path_buf(),
            Entry {
                stamp,
                prompt,
                last_used,
            },
        );
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock leaves a usable map.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_wav(path: &Path, samples: &[i16]) {
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(path, spec).unwrap();
        for &s in samples {
            w.write_sample(s).unwrap();
        }
        w.finalize().unwrap();
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "voxbridge-prompt-files-{name}-{}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_file_is_read_once_and_shared_until_it_changes() {
        let dir = temp_dir("shared");
        let path = dir.join("menu.wav");
        write_wav(&path, &[100; 800]);
        let files = PromptFiles::new(1 << 20);
        let a = files.load(&path).unwrap();
        let b = files.load(&path).unwrap();
        // The same samples, not a copy.
        assert!(std::ptr::eq(a.samples().as_ptr(), b.samples().as_ptr()));
        assert_eq!(files.len(), 1);

        // An edited prompt (another length) is reloaded at its next play.
        write_wav(&path, &[200; 1600]);
        let c = files.load(&path).unwrap();
        assert_eq!(c.len(), 1600);
        assert_eq!(c.samples()[0], 200);
        assert_eq!(files.len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_cache_stays_within_its_bytes() {
        let dir = temp_dir("bounded");
        let files = PromptFiles::new(4000);
        let paths: Vec<PathBuf> = (0..3).map(|i| dir.join(format!("p{i}.wav"))).collect();
        for p in &paths {
            write_wav(p, &[1; 800]); // 1,600 bytes of samples each
        }
        files.load(&paths[0]).unwrap();
        files.load(&paths[1]).unwrap();
        files.load(&paths[0]).unwrap(); // p1 is now the least recently played
        files.load(&paths[2]).unwrap();
        assert_eq!(files.len(), 2);
        let inner = files.lock();
        assert!(inner.entries.contains_key(&paths[0]));
        assert!(!inner.entries.contains_key(&paths[1]));
        assert!(inner.bytes <= 4000);
        drop(inner);

        // Too big to keep: played, not cached.
        let big = dir.join("big.wav");
        write_wav(&big, &[1; 4000]);
        assert_eq!(files.load(&big).unwrap().len(), 4000);
        assert!(!files.lock().entries.contains_key(&big));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_file_is_an_error_naming_it() {
        let files = PromptFiles::new(1 << 20);
        let err = files
            .load(Path::new("/nonexistent/voxbridge/prompt.wav"))
            .unwrap_err();
        assert!(err.to_string().contains("prompt.wav"), "{err}");
        assert!(files.is_empty());
    }
}
