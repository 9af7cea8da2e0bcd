//! Running the servers' tools and stopping the servers.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};

use crate::tail;

/// Run a command to its end; its stdout, or an error with both outputs.
pub fn run(cmd: &mut Command, what: &str) -> Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("{what}: cannot run"))?;
    ensure!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        tail(&String::from_utf8_lossy(&out.stdout), 30),
        tail(&String::from_utf8_lossy(&out.stderr), 30)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// SIGTERM the leader of a process group (a preforking master takes its
/// workers down), then SIGKILL the whole group for anything left.
pub fn stop_group(child: &mut Child) {
    let pid = child.id().to_string();
    let quiet = |args: &[&str]| {
        let _ = Command::new("kill")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    };
    quiet(&["-TERM", &pid]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    quiet(&["-KILL", "--", &format!("-{pid}")]);
    let _ = child.wait();
}
