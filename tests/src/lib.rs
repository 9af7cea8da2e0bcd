//! Helpers shared by the end-to-end tests: start the real `voxbridge` binary
//! on free loopback ports, run sipp scenarios against it, read its log.
//!
//! Everything here talks to 127.0.0.1 only, and every process it starts is
//! bounded in time and killed when its guard drops.

pub mod baresip;
pub mod caller;
pub mod crm_servers;
pub mod load;
pub mod pcap;
pub mod proc_stat;
pub mod prompts;
pub mod rest_crm;
pub mod speech;

use std::fs;
use std::io::Read;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// The workspace root (where `fixtures/` and `target/` are).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(".."))
}

/// The binary under test: `$VOXBRIDGE_BIN`, else the release build, else debug.
pub fn voxbridge_bin() -> Result<PathBuf> {
    if let Ok(p) = std::env::var("VOXBRIDGE_BIN") {
        return Ok(PathBuf::from(p));
    }
    let root = workspace_root();
    let bin = root.join("target/release/voxbridge");
    fresh_binary(&bin)?;
    Ok(bin)
}

/// `bin` exists and is newer than every source it is built from, so a test
/// never runs a binary from before the change it is meant to test (`cargo
/// test` builds the test binaries, not the engine's).
pub fn fresh_binary(bin: &Path) -> Result<()> {
    let built = std::fs::metadata(bin)
        .and_then(|m| m.modified())
        .map_err(|e| {
            anyhow::anyhow!(
                "{} not built ({e}): run `cargo build --release -p voxbridge-engine` (or `make test`)",
                bin.display()
            )
        })?;
    let root = workspace_root();
    let mut newest: Option<(std::time::SystemTime, PathBuf)> = None;
    // Rust sources only: cargo rebuilds (and relinks) the binary whenever
    // one of them changed, but not for every manifest or lockfile edit, so
    // those would flag a binary that `cargo build` then leaves as it is.
    let mut dirs: Vec<PathBuf> = ["engine", "media", "dialog", "crm-bridge", "models"]
        .iter()
        .map(|c| root.join(c).join("src"))
        .collect();
    while let Some(path) = dirs.pop() {
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            if let Ok(entries) = std::fs::read_dir(&path) {
                dirs.extend(entries.flatten().map(|e| e.path()));
            }
        } else if let Ok(t) = meta.modified() {
            if newest.as_ref().is_none_or(|(n, _)| t > *n) {
                newest = Some((t, path));
            }
        }
    }
    match newest {
        Some((t, path)) if t > built => bail!(
            "{} is older than {}: rebuild it (`cargo build --release -p voxbridge-engine`, or `make test`)",
            bin.display(),
            path.display()
        ),
        _ => Ok(()),
    }
}

/// A scratch directory for one test, under `target/e2e/<name>`, emptied first.
pub fn scratch_dir(name: &str) -> Result<PathBuf> {
    let dir = workspace_root().join("target").join("e2e").join(name);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// A loopback port free for both UDP and TCP right now.
pub fn free_port() -> Result<u16> {
    for _ in 0..100 {
        let udp = UdpSocket::bind("127.0.0.1:0")?;
        let port = udp.local_addr()?.port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    bail!("no free loopback port")
}

/// Disjoint RTP port ranges so tests running in parallel never collide.
pub fn rtp_range() -> (u16, u16) {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let slot = NEXT.fetch_add(1, Ordering::Relaxed) % 20;
    let min = 30000 + slot * 1000;
    (min, min + 998)
}

/// A running voxbridge process; killed on drop.
pub struct Bot {
    child: Child,
    /// What started it, for [`Bot::restart`].
    bin: PathBuf,
    env: Vec<(String, String)>,
    pub addr: SocketAddr,
    /// The admin HTTP address (/health, /ready, /metrics).
    pub admin: SocketAddr,
    /// The generated config file.
    pub config_path: PathBuf,
    pub log_path: PathBuf,
    pub dir: PathBuf,
}

impl Bot {
    /// Start voxbridge with the bundled prompts and `extra` YAML merged into
    /// the generated config (sections `sip:`, `rtp:`, `flow:` are written by
    /// this helper; `extra_sip`, `extra_rtp`, `extra_flow` add keys to them).
    pub fn start(name: &str, extra: &BotConfig) -> Result<Bot> {
        let dir = scratch_dir(name)?;
        let port = free_port()?;
        let admin_port = free_port()?;
        let (rtp_min, rtp_max) = rtp_range();
        let root = workspace_root();
        let config = format!(
            "sip:\n  listen: {}:{port}\n{}\nrtp:\n  port_min: {rtp_min}\n  port_max: {rtp_max}\n{}\nflow:\n  greeting: {}\n  goodbye: {}\n  transferring: {}\n  transfer_failed: {}\n{}\nadmin:\n  listen: 127.0.0.1:{admin_port}\n{}\nlog:\n  level: {}\n",
            extra.listen_ip.as_deref().unwrap_or("127.0.0.1"),
            indent(&extra.sip),
            indent(&extra.rtp),
            root.join("fixtures/audio/greeting.wav").display(),
            root.join("fixtures/audio/goodbye.wav").display(),
            root.join("fixtures/audio/transferring.wav").display(),
            root.join("fixtures/audio/transfer-failed.wav").display(),
            indent(&extra.flow),
            extra.more,
            extra.log_level.as_deref().unwrap_or("info"),
        );
        let config_path = dir.join("voxbridge.yaml");
        fs::write(&config_path, config)?;
        let log_path = dir.join("voxbridge.log");
        fs::File::create(&log_path)?;
        let bin = match &extra.bin {
            Some(b) => b.clone(),
            None => voxbridge_bin()?,
        };
        let child = spawn_bot(&bin, &extra.env, &config_path, &dir, &log_path)?;
        let ip: std::net::IpAddr = extra.listen_ip.as_deref().unwrap_or("127.0.0.1").parse()?;
        let bot = Bot {
            child,
            bin,
            env: extra.env.clone(),
            addr: SocketAddr::new(ip, port),
            admin: SocketAddr::from(([127, 0, 0, 1], admin_port)),
            config_path,
            log_path,
            dir,
        };
        bot.wait_for_log("SIP listening", Duration::from_secs(10))?;
        Ok(bot)
    }

    /// The log so far.
    pub fn log(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = fs::File::open(&self.log_path) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    /// Wait until the log contains `needle`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> Result<()> {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if self.log().contains(needle) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!(
            "voxbridge log has no {needle:?} after {timeout:?}:\n{}",
            tail(&self.log(), 40)
        )
    }

    /// Wait until `pred` holds on the log.
    pub fn wait_until(&self, timeout: Duration, pred: impl Fn(&str) -> bool) -> bool {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if pred(&self.log()) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// Poll `/metrics` until `sample` reads `value` or `timeout` passes;
    /// the metrics text last read. A call's counters move when its task
    /// ends, a moment after the peer has its BYE answered, so a test reads
    /// them this way, not after a fixed sleep.
    pub fn wait_metric(&self, sample: &str, value: f64, timeout: Duration) -> String {
        let start = Instant::now();
        loop {
            let text = http_get(self.admin, "/metrics")
                .map(|(_, t)| t)
                .unwrap_or_default();
            if prom_value(&text, sample) == Some(value) || start.elapsed() > timeout {
                return text;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Poll `voxbridge calls list` until it lists `n` call records or
    /// `timeout` passes; the listing last read (a header line, then one
    /// line per call, newest first). The bot logs "call ended" and then
    /// queues the record, which its writer commits a moment later.
    pub fn wait_records(&self, n: usize, timeout: Duration) -> Result<String> {
        let start = Instant::now();
        let limit = n.max(1).to_string();
        loop {
            // Before the first commit the database may not exist yet.
            let list = self.cli(&["calls", "list", "-n", &limit]);
            let complete = list.as_ref().is_ok_and(|l| l.lines().count() > n);
            if complete || start.elapsed() > timeout {
                return list;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The process id (for `/proc/PID/…`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Send SIGTERM without waiting.
    pub fn terminate(&self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
    }

    /// SIGKILL (a node that dies), and wait for it to be gone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Start the process again after it exited (or kill it first), with
    /// the same config, ports and files; its log goes on in the same file.
    pub fn restart(&mut self) -> Result<()> {
        if self.is_running() {
            self.kill();
        }
        let mark = self.log().len();
        self.child = spawn_bot(
            &self.bin,
            &self.env,
            &self.config_path,
            &self.dir,
            &self.log_path,
        )?;
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if self
                .log()
                .get(mark..)
                .is_some_and(|l| l.contains("SIP listening"))
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("voxbridge did not start again:\n{}", tail(&self.log(), 30))
    }

    /// Wait for the process to exit; its exit code, or `None` on timeout.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Run `voxbridge <args…> --config <this bot's config>` and return stdout.
    pub fn cli(&self, args: &[&str]) -> Result<String> {
        let out = Command::new(voxbridge_bin()?)
            .args(args)
            .arg("--config")
            .arg(&self.config_path)
            .current_dir(&self.dir)
            .output()?;
        if !out.status.success() {
            bail!(
                "voxbridge {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// SIGTERM, wait for exit, return the full log (which ends with the
    /// metrics summary line).
    pub fn stop(mut self) -> Result<String> {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let start = Instant::now();
        // Drain (3 s in tests) plus BYEs to callers that may be gone.
        while start.elapsed() < Duration::from_secs(20) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return Ok(self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("voxbridge did not exit on SIGTERM")
    }
}

/// Start a voxbridge process on `config`, its output appended to `log_path`.
fn spawn_bot(
    bin: &Path,
    env: &[(String, String)],
    config: &Path,
    dir: &Path,
    log_path: &Path,
) -> Result<Child> {
    let log = fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(log_path)?;
    // Tests stop bots whose callers vanished: do not wait a minute.
    Command::new(bin)
        .env("VOXBRIDGE_CALLS_DRAIN_TIMEOUT_SECS", "3")
        // Admission by measured load is off: these bots share two cores
        // with builds and other tests, whose stalls would refuse calls a
        // test needs; tests of admission turn it on through `env`.
        .env("VOXBRIDGE_CALLS_MAX_SCHEDULING_DELAY_MS", "0")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .args(["run", "--config"])
        .arg(config)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("starting voxbridge")
}

impl Drop for Bot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Kamailio (Debian `kamailio`) on a loopback port: the registrar of
/// `tests/kamailio/registrar.cfg`, or a shipped config; killed on drop.
pub struct Kamailio {
    child: Child,
    pub port: u16,
    pub log_path: PathBuf,
}

impl Kamailio {
    pub fn start(name: &str, algorithm: &str, password: &str) -> Result<Kamailio> {
        let dir = scratch_dir(name)?;
        let port = free_port()?;
        let template = fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("kamailio/registrar.cfg"),
        )?;
        let cfg = template
            .replace("@PORT@", &port.to_string())
            .replace("@ALGORITHM@", algorithm)
            .replace("@PASSWORD@", password);
        let cfg_path = dir.join("kamailio.cfg");
        fs::write(&cfg_path, cfg)?;
        Kamailio::launch(&dir, &cfg_path, &[], port)
    }

    /// Kamailio on a config file of the repo (`deploy/kamailio/…`), with
    /// `-A NAME=value` defines, its log and run files in `dir`; `port` is
    /// the one its `listen` names.
    pub fn with_config(dir: &Path, cfg: &Path, defines: &[String], port: u16) -> Result<Kamailio> {
        Kamailio::launch(dir, cfg, defines, port)
    }

    fn launch(dir: &Path, cfg_path: &Path, defines: &[String], port: u16) -> Result<Kamailio> {
        let run_dir = dir.join("run");
        fs::create_dir_all(&run_dir)?;
        let log_path = dir.join("kamailio.log");
        let log = fs::File::create(&log_path)?;
        let mut cmd = Command::new("kamailio");
        // Its own process group, so that Drop ends the workers it forks too.
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        for d in defines {
            cmd.arg("-A").arg(d);
        }
        let child = cmd
            .arg("-f")
            .arg(cfg_path)
            .args(["-DD", "-E", "-Y"])
            .arg(&run_dir)
            .args(["-P"])
            .arg(run_dir.join("kamailio.pid"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting kamailio (package kamailio)")?;
        let k = Kamailio {
            child,
            port,
            log_path,
        };
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            // Ready once its UDP socket holds the port.
            if UdpSocket::bind(("127.0.0.1", port)).is_err() {
                return Ok(k);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!("kamailio did not start:\n{}", tail(&k.log(), 30))
    }

    pub fn log(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }
}

impl Drop for Kamailio {
    /// SIGTERM to the whole group (killing only the main process left its
    /// forked workers running, a dozen per test run), then SIGKILL if it
    /// has not gone within 5 s.
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
    }
}

/// Extra config lines for [`Bot::start`], YAML without the section header.
#[derive(Default, Clone)]
pub struct BotConfig {
    pub sip: String,
    pub rtp: String,
    pub flow: String,
    /// Whole extra top-level sections (`calls:`, `trunk:`, `recording:`…).
    pub more: String,
    /// Listen IP instead of 127.0.0.1.
    pub listen_ip: Option<String>,
    /// Environment variables for the process (passwords).
    pub env: Vec<(String, String)>,
    pub log_level: Option<String>,
    /// Another voxbridge binary than [`voxbridge_bin`] (another build).
    pub bin: Option<PathBuf>,
}

fn indent(block: &str) -> String {
    block
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A GET on loopback (/metrics, /ready, the admin API): (status, body).
pub fn http_get(addr: SocketAddr, path: &str) -> Result<(u16, String)> {
    voxbridge_test_support::http::get(&format!("http://{addr}{path}"))
}

/// Send one INVITE (G.711 offer) from a socket bound to `from_ip` and
/// return the status codes received within `wait`, in order.
pub fn raw_invite(
    from_ip: &str,
    target: SocketAddr,
    call_id: &str,
    wait: Duration,
) -> Result<Vec<(u16, String)>> {
    let sock = UdpSocket::bind((from_ip, 0))?;
    sock.set_read_timeout(Some(Duration::from_millis(100)))?;
    let local = sock.local_addr()?;
    let sdp = format!(
        "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n",
        ip = local.ip()
    );
    let msg = format!(
        "INVITE sip:bot@{target} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-{call_id};rport\r\nFrom: <sip:+15550123@{local}>;tag=t{call_id}\r\nTo: <sip:bot@{target}>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:caller@{local}>\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    );
    sock.send_to(msg.as_bytes(), target)?;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let end = Instant::now() + wait;
    while Instant::now() < end {
        if let Ok((n, _)) = sock.recv_from(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            if let Some(code) = text.get(8..11).and_then(|c| c.parse().ok()) {
                let done = code >= 200;
                out.push((code, text));
                if done {
                    break;
                }
            }
        }
    }
    Ok(out)
}

/// The value of an unlabelled or labelled sample in Prometheus text.
pub fn prom_value(text: &str, sample: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(sample) && l[sample.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// The last `n` lines of a text.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A metric value from the summary line the bot logs when it stops.
pub fn summary_metric(log: &str, name: &str) -> Option<u64> {
    let line = log
        .lines()
        .rev()
        .find(|l| l.contains("voxbridge stopped"))?;
    let key = format!("{name}=");
    let start = line.find(&key)? + key.len();
    line[start..]
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// Directory of the sipp scenarios shipped in `tests/sipp/`.
pub fn scenario_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("sipp")
}

/// Outcome of one sipp run.
pub struct SippRun {
    pub status: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub stats: Option<SippStats>,
    pub dir: PathBuf,
}

/// The counters of the last line of sipp's `-trace_stat` CSV.
#[derive(Debug, Clone, Copy)]
pub struct SippStats {
    pub successful: u64,
    pub failed: u64,
    pub created: u64,
}

/// Run sipp in `dir` (which gets a `pcap` link to sipp's bundled captures),
/// with `-trace_stat`, killing it after `timeout`.
pub fn run_sipp(dir: &Path, args: &[&str], timeout: Duration) -> Result<SippRun> {
    let pcap = dir.join("pcap");
    if !pcap.exists() {
        #[cfg(unix)]
        std::os::unix::fs::symlink("/usr/share/sip-tester", &pcap).ok();
    }
    // sipp looks for `pcap/…` next to the scenario first: run a copy that
    // sits beside the `pcap` link.
    let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    if let Some(i) = args.iter().position(|a| a == "-sf") {
        if let Some(src) = args.get(i + 1).map(PathBuf::from) {
            let copy = dir.join(src.file_name().unwrap_or_default());
            fs::copy(&src, &copy).with_context(|| format!("copying {}", src.display()))?;
            args[i + 1] = copy.display().to_string();
        }
    }
    let stats_path = dir.join("stats.csv");
    let _ = fs::remove_file(&stats_path);
    let mut child = Command::new("sipp")
        .args(&args)
        .args(["-trace_stat", "-stf"])
        .arg(&stats_path)
        .args(["-fd", "1", "-nostdin", "-trace_err", "-error_file"])
        .arg(dir.join("errors.log"))
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting sipp (package sip-tester)")?;
    let mut out = child.stdout.take();
    let mut err = child.stderr.take();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(o) = out.as_mut() {
            let _ = o.read_to_string(&mut s);
        }
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(e) = err.as_mut() {
            let _ = e.read_to_string(&mut s);
        }
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break st.code();
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = reader.join().unwrap_or_default();
    let stderr = err_reader.join().unwrap_or_default();
    let stats = fs::read_to_string(&stats_path)
        .ok()
        .and_then(|csv| parse_stats(&csv));
    Ok(SippRun {
        status,
        stdout,
        stderr,
        stats,
        dir: dir.to_path_buf(),
    })
}

impl SippRun {
    /// A description for assertion messages.
    pub fn describe(&self) -> String {
        let errors = fs::read_to_string(self.dir.join("errors.log")).unwrap_or_default();
        format!(
            "sipp exit {:?}, stats {:?}\nstderr:\n{}\nerrors:\n{}",
            self.status,
            self.stats,
            tail(&self.stderr, 20),
            tail(&errors, 20)
        )
    }
}

/// Parse sipp's `;`-separated stats file: the header names the columns.
pub fn parse_stats(csv: &str) -> Option<SippStats> {
    let mut lines = csv.lines().filter(|l| !l.trim().is_empty());
    let header_line = lines.next()?;
    let header: Vec<&str> = header_line.split(';').collect();
    let last: Vec<&str> = lines.next_back()?.split(';').collect();
    let col = |name: &str| -> Option<u64> {
        let i = header.iter().position(|h| *h == name)?;
        last.get(i)?.trim().parse().ok()
    };
    Some(SippStats {
        successful: col("SuccessfulCall(C)")?,
        failed: col("FailedCall(C)")?,
        created: col("TotalCallCreated")?,
    })
}

/// The per-message counters of a sipp run made with `-trace_counts` (the
/// last line of the `*_counts.csv` it writes in its directory), by column
/// name: `0_INVITE_Sent`, `3_503_Recv`, `1_200_Timeout`…
pub fn sipp_counts(dir: &Path) -> Option<std::collections::HashMap<String, u64>> {
    let csv = fs::read_dir(dir)
        .ok()?
        .flatten()
        .find(|e| e.file_name().to_string_lossy().ends_with("_counts.csv"))
        .and_then(|e| fs::read_to_string(e.path()).ok())?;
    let mut lines = csv.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines.next()?.split(';').collect();
    let last: Vec<&str> = lines.next_back()?.split(';').collect();
    Some(
        header
            .iter()
            .zip(&last)
            .filter_map(|(h, v)| Some((h.to_string(), v.trim().parse().ok()?)))
            .collect(),
    )
}

/// A one-call sipp UAS in the background (a transfer target): `uas` is
/// sipp's built-in scenario, anything else a file in `tests/sipp/`. Its
/// messages are traced to `dir/uas-messages.log`. Returns the process and
/// its SIP port; the caller kills or waits for it.
pub fn spawn_sipp_uas(dir: &Path, scenario: &str) -> Result<(Child, u16)> {
    let port = free_port()?;
    let mut cmd = Command::new("sipp");
    if scenario == "uas" {
        cmd.args(["-sn", "uas"]);
    } else {
        let copy = dir.join(scenario);
        fs::copy(scenario_dir().join(scenario), &copy)?;
        cmd.arg("-sf").arg(copy);
    }
    let child = cmd
        .args([
            "-i",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-m",
            "1",
            "-nostdin",
            "-trace_msg",
            "-message_file",
        ])
        .arg(dir.join("uas-messages.log"))
        .args(["-timeout", "40s"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting sipp")?;
    std::thread::sleep(Duration::from_millis(300));
    Ok((child, port))
}

/// Wait up to `timeout` for a child to exit; its exit code.
pub fn wait_child(child: &mut Child, timeout: Duration) -> Option<i32> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if let Ok(Some(status)) = child.try_wait() {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// Writes a crm-bridge config in `dir` for the embedded CRM seeded with the
/// demo data of `fixtures/crm` (database and outbox in `dir` too); its path.
pub fn embedded_crm(dir: &Path) -> Result<PathBuf> {
    let path = dir.join("crm.yaml");
    fs::write(
        &path,
        format!(
            "default_country: CN\nsystems:\n  crm:\n    kind: embedded\n    path: {}\n    seed: {}\noutbox:\n  path: {}\n",
            dir.join("crm.sqlite").display(),
            workspace_root().join("fixtures/crm").display(),
            dir.join("outbox.sqlite").display()
        ),
    )?;
    Ok(path)
}
