//! A scripted caller: `voxbridge call` run as a child process, in the
//! foreground ([`Caller::run`]) or in the background while the test does
//! something else to the world ([`Caller::spawn`], then [`Caller::wait`]).
//! Its output (the live transcript) goes to files in the test's directory;
//! the process is killed after its time limit or when the guard drops.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::voxbridge_bin;

/// A `voxbridge call` process.
pub struct Caller {
    child: Child,
    started: Instant,
    limit: Duration,
    stdout: PathBuf,
    stderr: PathBuf,
}

/// How a finished call went, as `voxbridge call` told it.
#[derive(Debug, Clone)]
pub struct CallOutput {
    /// Exit code; `None` when killed at the time limit.
    pub status: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Caller {
    /// Start `voxbridge call <args…>` in `dir`; killed after `limit`.
    pub fn spawn(dir: &Path, args: &[String], limit: Duration) -> Result<Caller> {
        let stdout = dir.join("call.stdout");
        let stderr = dir.join("call.stderr");
        let child = Command::new(voxbridge_bin()?)
            .arg("call")
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout)?)
            .stderr(std::fs::File::create(&stderr)?)
            .spawn()
            .context("starting voxbridge call")?;
        Ok(Caller {
            child,
            started: Instant::now(),
            limit,
            stdout,
            stderr,
        })
    }

    /// Run to the end (or the limit).
    pub fn run(dir: &Path, args: &[String], limit: Duration) -> Result<CallOutput> {
        Caller::spawn(dir, args, limit)?.wait()
    }

    /// What it printed so far.
    pub fn stdout_so_far(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    /// The Call-ID it announced, once it has (it does so before dialing).
    pub fn call_id(&self, timeout: Duration) -> Option<String> {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Some(id) = call_id_in(&self.stdout_so_far()) {
                return Some(id);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Wait for the end, killing the process at the time limit.
    pub fn wait(mut self) -> Result<CallOutput> {
        let status = loop {
            if let Some(status) = self.child.try_wait()? {
                break status.code();
            }
            if self.started.elapsed() > self.limit {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        Ok(CallOutput {
            status,
            stdout: std::fs::read_to_string(&self.stdout).unwrap_or_default(),
            stderr: std::fs::read_to_string(&self.stderr).unwrap_or_default(),
        })
    }
}

impl Drop for Caller {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl CallOutput {
    /// A description for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "voxbridge call exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.status, self.stdout, self.stderr
        )
    }

    /// The Call-ID the caller chose (the key of the bot's transcript and
    /// call record).
    pub fn call_id(&self) -> Option<String> {
        call_id_in(&self.stdout)
    }

    /// When (seconds since the answer) the transcript line whose text
    /// starts with `prefix` was printed, e.g. `caller: [say]`.
    pub fn stamp_of(&self, prefix: &str) -> Option<f64> {
        self.stdout.lines().find_map(|line| {
            let rest = line.strip_prefix('[')?;
            let (stamp, text) = rest.split_once("s] ")?;
            text.starts_with(prefix)
                .then(|| stamp.trim().parse().ok())
                .flatten()
        })
    }
}

/// `… Call-ID vbcall-…@127.0.0.1)` in the caller's first line.
fn call_id_in(stdout: &str) -> Option<String> {
    let rest = stdout.split("Call-ID ").nth(1)?;
    let id = rest.split(')').next()?.trim();
    (!id.is_empty()).then(|| id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_ids_and_stamps_are_read_from_the_transcript() {
        let out = CallOutput {
            status: Some(0),
            stdout: "calling sip:bot@127.0.0.1:5060 from x (SIP 127.0.0.1:1, RTP 127.0.0.1:2, Call-ID vbcall-ab@127.0.0.1)\n\
                     [  0.00s] call: answered after 0.00 s\n\
                     [  4.02s] caller: [say] talk to an agent (1.1 s)\n"
                .into(),
            stderr: String::new(),
        };
        assert_eq!(out.call_id().as_deref(), Some("vbcall-ab@127.0.0.1"));
        assert_eq!(out.stamp_of("caller: [say]"), Some(4.02));
        assert_eq!(out.stamp_of("call: answered"), Some(0.0));
        assert_eq!(out.stamp_of("bot:"), None);
        assert_eq!(call_id_in("no id here"), None);
    }
}
