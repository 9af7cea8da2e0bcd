//! A baresip softphone (Debian `baresip-core`) as a test caller: no
//! registration, dials one URI, plays WAV files as its microphone (the
//! `aufile` module; `/ausrc aufile,FILE` switches the file mid-call) and
//! presses keys (RFC 4733), both through its `cons` UDP console. With SIP
//! tracing on, its log shows every request it got (the REFER) and sent
//! (the INVITE to the transfer target). Killed on drop.

use std::io::Write;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::free_port;

/// Whether the `baresip` program can be run.
pub fn baresip_available() -> bool {
    Path::new("/usr/lib/baresip/modules/aufile.so").exists()
        && Command::new("baresip")
            .arg("-h")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
}

/// A running baresip with one call placed.
pub struct Baresip {
    child: Child,
    cons: u16,
    /// One console socket for the whole call: baresip answers commands
    /// on it (kept in `cons.log`).
    console: UdpSocket,
    pub log_path: PathBuf,
    console_log: PathBuf,
}

impl Baresip {
    /// Start baresip in `dir` as `sip:<user>@127.0.0.1` (the From the bot
    /// sees), its microphone reading `source` (8 kHz mono 16-bit WAV; the
    /// call drops when a source file ends, so make it long), and dial
    /// `target`. It quits by itself after `limit`.
    pub fn dial(
        dir: &Path,
        user: &str,
        source: &Path,
        target: &str,
        limit: Duration,
    ) -> Result<Baresip> {
        Self::dial_with(dir, user, source, target, limit, &[], "", "")
    }

    /// [`dial`](Self::dial) with more `modules` loaded (`srtp.so`),
    /// `account_params` after the account's address (`;mediaenc=srtp-mand`)
    /// and `config_lines` added to its config (`snd_path DIR` for `sndfile.so`).
    #[allow(clippy::too_many_arguments)]
    pub fn dial_with(
        dir: &Path,
        user: &str,
        source: &Path,
        target: &str,
        limit: Duration,
        modules: &[&str],
        account_params: &str,
        config_lines: &str,
    ) -> Result<Baresip> {
        let extra_modules: String = modules.iter().map(|m| format!("module {m}\n")).collect();
        let sip_port = free_port()?;
        let cons = free_port()?;
        let conf = dir.join("baresip-conf");
        std::fs::create_dir_all(&conf)?;
        std::fs::write(
            conf.join("config"),
            format!(
                "poll_method epoll\nsip_listen 127.0.0.1:{sip_port}\naudio_player aubridge,nil\naudio_source aufile,{}\naudio_alert aubridge,nil\nmodule_path /usr/lib/baresip/modules\nmodule g711.so\nmodule aufile.so\nmodule aubridge.so\nmodule cons.so\n{extra_modules}module_app account.so\nmodule_app menu.so\ncons_listen 127.0.0.1:{cons}\n{config_lines}",
                source.display()
            ),
        )?;
        std::fs::write(
            conf.join("accounts"),
            format!("<sip:{user}@127.0.0.1>;regint=0{account_params}\n"),
        )?;
        let log_path = dir.join("baresip.log");
        let log = std::fs::File::create(&log_path)?;
        let child = Command::new("baresip")
            .arg("-f")
            .arg(&conf)
            // SIP trace: the REFER it gets and the INVITE it sends.
            .arg("-s")
            .arg("-e")
            .arg(format!("/dial {target}"))
            .arg("-t")
            .arg(limit.as_secs().max(1).to_string())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting baresip (package baresip-core)")?;
        let console = UdpSocket::bind("127.0.0.1:0")?;
        console.set_read_timeout(Some(Duration::from_millis(300)))?;
        Ok(Baresip {
            child,
            cons,
            console,
            log_path,
            console_log: dir.join("baresip-cons.log"),
        })
    }

    fn send(&self, text: &str) -> Result<()> {
        self.console
            .send_to(text.as_bytes(), ("127.0.0.1", self.cons))?;
        Ok(())
    }

    /// Run a long command (`ausrc aufile,/x.wav`, `hangup`); what baresip
    /// answered within a moment (also appended to `baresip-cons.log`).
    pub fn command(&self, command: &str) -> Result<String> {
        self.send(&format!("/{command}\n"))?;
        let mut reply = String::new();
        let mut buf = [0u8; 4096];
        while let Ok((n, _)) = self.console.recv_from(&mut buf) {
            reply.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.console_log)?;
        writeln!(log, "> /{command}\n{reply}")?;
        Ok(reply)
    }

    /// Make `wav` the microphone from now on.
    pub fn play(&self, wav: &Path) -> Result<()> {
        let reply = self.command(&format!("ausrc aufile,{}", wav.display()))?;
        anyhow::ensure!(
            reply.contains("switch audio"),
            "baresip did not switch its audio source to {}: {reply:?}",
            wav.display()
        );
        Ok(())
    }

    /// Press keys, `gap` apart (RFC 4733 events from the call's audio).
    pub fn keys(&self, keys: &str, gap: Duration) -> Result<()> {
        for k in keys.chars() {
            self.send(&k.to_string())?;
            std::thread::sleep(gap);
        }
        Ok(())
    }

    /// The log so far (console output and, with `-s`, the SIP trace).
    pub fn log(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log_path).unwrap_or_default()).into_owned()
    }

    /// Wait for the process to exit by itself; its exit code, or `None`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
