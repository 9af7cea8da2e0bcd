//! Real CRM and ticket servers for end-to-end calls: Tryton 7.0 (the ERP
//! with customers and sales) and Request Tracker 5 (tickets), started on
//! 127.0.0.1 the way `crm-bridge/tests/tryton.rs` and `crm-bridge/tests/rt.rs`
//! start them, with the same seed data (`crm-bridge/tests/tryton/seed.py`,
//! `crm-bridge/tests/rt/setup.pl`), and a small JSON client to check what
//! the bot wrote into them. Both are installed by
//! `scripts/install-crm-servers.sh`; every process is killed on drop.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use serde_json::{json, Value};

use crate::{free_port, scratch_dir, tail, workspace_root};

/// Tryton's database name in the seeded file.
pub const TRYTON_DATABASE: &str = "voxbridge";
/// The Tryton `admin` user's password in the seeded file.
pub const TRYTON_ADMIN_PASSWORD: &str = "admin-for-tests";

const RT_SERVER: &str = "/usr/share/request-tracker5/libexec/rt-server";
const RT_SETUP_DATABASE: &str = "/usr/sbin/rt-setup-database-5";

/// The Tryton venv (`$VOXBRIDGE_TRYTON_VENV`, default
/// `~/.cache/voxbridge/tryton-7.0`).
pub fn tryton_venv() -> PathBuf {
    std::env::var_os("VOXBRIDGE_TRYTON_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/voxbridge/tryton-7.0")
        })
}

/// Why Tryton cannot run here, or `None` when it can.
pub fn tryton_missing() -> Option<String> {
    let venv = tryton_venv();
    (!venv.join("bin/trytond").exists() || !venv.join("bin/trytond-admin").exists()).then(|| {
        format!(
            "Tryton 7.0 is not installed at {} (scripts/install-crm-servers.sh, or set VOXBRIDGE_TRYTON_VENV)",
            venv.display()
        )
    })
}

/// Why Request Tracker cannot run here, or `None` when it can.
pub fn rt_missing() -> Option<String> {
    (!Path::new(RT_SERVER).exists() || !Path::new(RT_SETUP_DATABASE).exists())
        .then(|| "Request Tracker 5 is not installed (scripts/install-crm-servers.sh)".to_string())
}

fn run(cmd: &mut Command, what: &str) -> Result<String> {
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

/// Kill a process group's leader politely, then the whole group.
fn stop_group(child: &mut Child) {
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

// ---- HTTP ---------------------------------------------------------------

/// One HTTP/1.0 request on loopback (`Connection: close`, so the reply is
/// never chunked): the status and the body. Bounded by `timeout`.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
    timeout: Duration,
) -> Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .with_context(|| format!("connecting to {addr}"))?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    let mut req = format!("{method} {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(b) = body {
        req.push_str(&format!("Content-Length: {}\r\n", b.len()));
    }
    req.push_str("\r\n");
    if let Some(b) = body {
        req.push_str(b);
    }
    s.write_all(req.as_bytes())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)
        .with_context(|| format!("reading the reply to {method} {path}"))?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .with_context(|| format!("no HTTP status line from {addr}: {}", tail(&text, 5)))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

// ---- Tryton -------------------------------------------------------------

fn seed_script() -> PathBuf {
    workspace_root().join("crm-bridge/tests/tryton/seed.py")
}

/// FNV-1a of the seed script: a new script means a new template.
fn seed_hash() -> Result<String> {
    let text = std::fs::read(seed_script()).context("reading seed.py")?;
    let h = text.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    });
    Ok(format!("{h:016x}"))
}

fn tryton_config(dir: &Path, port: u16) -> Result<PathBuf> {
    let conf = dir.join("trytond.conf");
    std::fs::write(
        &conf,
        format!(
            "[database]\nuri = sqlite://\npath = {}\n[web]\nlisten = 127.0.0.1:{port}\n[session]\ntimeout = 3600\n",
            dir.join("db").display()
        ),
    )?;
    Ok(conf)
}

/// The seeded database file and the seed summary (JSON), made once per
/// seed script version under `target/e2e-cache/` (~1 min the first time).
fn tryton_template() -> Result<(PathBuf, Value)> {
    let venv = tryton_venv();
    let dir = workspace_root()
        .join("target")
        .join("e2e-cache")
        .join(format!("tryton-template-{}", seed_hash()?));
    let file = dir.join("db").join(format!("{TRYTON_DATABASE}.sqlite"));
    let summary = dir.join("seed.json");
    if !(file.exists() && summary.exists()) {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("db"))?;
        let conf = tryton_config(&dir, 1)?;
        // trytond-admin needs the SQLite file to exist.
        std::fs::write(&file, b"")?;
        let pass = dir.join("admin-password");
        std::fs::write(&pass, TRYTON_ADMIN_PASSWORD)?;
        run(
            Command::new(venv.join("bin/trytond-admin"))
                .arg("-c")
                .arg(&conf)
                .args([
                    "-d",
                    TRYTON_DATABASE,
                    "--all",
                    "--email",
                    "admin@example.com",
                    "-u",
                    "sale",
                    "--activate-dependencies",
                ])
                .env("TRYTONPASSFILE", &pass),
            "trytond-admin",
        )?;
        let out = run(
            Command::new(venv.join("bin/python"))
                .arg(seed_script())
                .arg(&conf)
                .arg(TRYTON_DATABASE),
            "seed.py",
        )?;
        // Written last: its presence says the template is complete.
        std::fs::write(&summary, out)?;
    }
    let seed: Value = serde_json::from_str(&std::fs::read_to_string(&summary)?)
        .context("seed.json is not JSON")?;
    Ok((file, seed))
}

/// A running trytond with a copy of the seeded database; killed on drop.
pub struct TrytonServer {
    child: Child,
    pub port: u16,
    pub dir: PathBuf,
    /// seed.py's summary: `customers` (code → party id), `sales`.
    pub seed: Value,
    session: std::sync::Mutex<Option<String>>,
}

impl TrytonServer {
    /// Start it in `target/e2e/<name>`; answers JSON-RPC when this returns.
    pub fn start(name: &str) -> Result<TrytonServer> {
        if let Some(why) = tryton_missing() {
            bail!(why);
        }
        let (template, seed) = tryton_template()?;
        let dir = scratch_dir(name)?;
        std::fs::create_dir_all(dir.join("db"))?;
        std::fs::copy(
            &template,
            dir.join("db").join(format!("{TRYTON_DATABASE}.sqlite")),
        )?;
        let port = free_port()?;
        let conf = tryton_config(&dir, port)?;
        let log = std::fs::File::create(dir.join("trytond.log"))?;
        let child = Command::new(tryton_venv().join("bin/trytond"))
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .process_group(0)
            .spawn()
            .context("starting trytond")?;
        let server = TrytonServer {
            child,
            port,
            dir,
            seed,
            session: std::sync::Mutex::new(None),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while server.login().is_err() {
            if Instant::now() > deadline {
                bail!(
                    "trytond did not answer on {port} within 60 s:\n{}",
                    server.log()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(server)
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// trytond's log tail.
    pub fn log(&self) -> String {
        tail(
            &std::fs::read_to_string(self.dir.join("trytond.log")).unwrap_or_default(),
            30,
        )
    }

    fn post(&self, method: &str, params: Value, auth: Option<&str>) -> Result<Value> {
        let body = json!({"id": 1, "method": method, "params": params}).to_string();
        let mut headers = vec![("Content-Type", "application/json")];
        if let Some(a) = auth {
            headers.push(("Authorization", a));
        }
        let path = format!("/{TRYTON_DATABASE}/");
        let (status, text) = http(
            self.addr(),
            "POST",
            &path,
            &headers,
            Some(&body),
            Duration::from_secs(20),
        )?;
        ensure!(status == 200, "Tryton {method}: HTTP {status}: {text}");
        let reply: Value = serde_json::from_str(&text)
            .with_context(|| format!("Tryton {method}: not JSON: {text}"))?;
        if let Some(err) = reply.get("error").filter(|e| !e.is_null()) {
            bail!("Tryton {method}: {err}");
        }
        reply
            .get("result")
            .cloned()
            .with_context(|| format!("Tryton {method}: no result: {text}"))
    }

    fn login(&self) -> Result<String> {
        let r = self.post(
            "common.db.login",
            json!(["admin", {"password": TRYTON_ADMIN_PASSWORD}, "en"]),
            None,
        )?;
        let (Some(uid), Some(token)) = (r.get(0).and_then(Value::as_i64), r.get(1)) else {
            bail!("Tryton login refused: {r}");
        };
        let token = token.as_str().unwrap_or_default();
        Ok(format!(
            "Session {}",
            base64(format!("admin:{uid}:{token}").as_bytes())
        ))
    }

    /// Call a model method as `admin` (`model.ir.note.search_read`, …).
    pub fn call(&self, method: &str, params: Value) -> Result<Value> {
        let session = {
            let mut slot = self.session.lock().unwrap_or_else(|e| e.into_inner());
            match slot.as_ref() {
                Some(s) => s.clone(),
                None => {
                    let s = self.login()?;
                    *slot = Some(s.clone());
                    s
                }
            }
        };
        self.post(method, params, Some(&session))
    }

    /// The party id seed.py gave the customer with `code` (`CUST-001`).
    pub fn party_id(&self, code: &str) -> Option<i64> {
        self.seed["customers"][code].as_i64()
    }

    /// The notes attached to a party (the bot's call logs), oldest first.
    pub fn party_notes(&self, party: i64) -> Result<Vec<String>> {
        let rows = self.call(
            "model.ir.note.search_read",
            json!([
                [["resource", "=", format!("party.party,{party}")]],
                0,
                null,
                [["id", "ASC"]],
                ["message"],
                {}
            ]),
        )?;
        Ok(rows
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|r| r["message"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default())
    }
}

impl Drop for TrytonServer {
    fn drop(&mut self) {
        stop_group(&mut self.child);
    }
}

// ---- Request Tracker ----------------------------------------------------

/// A running RT 5 (`rt-server --max-workers 2`) with its own SQLite
/// database; killed on drop.
pub struct RtServer {
    child: Child,
    pub port: u16,
    pub dir: PathBuf,
    /// An auth token of the `voxbridge` RT user (a superuser).
    pub token: String,
}

fn rt_env(cmd: &mut Command, dir: &Path) {
    cmd.env("RT_SITE_CONFIG", dir.join("RT_SiteConfig.pm"))
        .env("RT_SITE_CONFIG_DIR", dir.join("site-config.d"));
}

impl RtServer {
    /// Set up a fresh database (queues `Support` and `Calls`, user custom
    /// fields `Phone` and `Tier`, ticket custom field `Voxbridge Key`, the
    /// customers of setup.pl) in `target/e2e/<name>` and start the server;
    /// answers REST2 when this returns (~30–90 s).
    pub fn start(name: &str) -> Result<RtServer> {
        if let Some(why) = rt_missing() {
            bail!(why);
        }
        let d = scratch_dir(name)?;
        for sub in ["site-config.d", "mason", "sessions"] {
            std::fs::create_dir_all(d.join(sub))?;
        }
        let port = free_port()?;
        let sendmail = d.join("sendmail.sh");
        std::fs::write(
            &sendmail,
            format!("#!/bin/sh\ncat >> {}\n", d.join("mail.log").display()),
        )?;
        run(Command::new("chmod").arg("+x").arg(&sendmail), "chmod")?;
        std::fs::write(
            d.join("RT_SiteConfig.pm"),
            format!(
                r#"Set($rtname, 'voxbridge.test');
Set($Organization, 'voxbridge.test');
Set($Timezone, 'UTC');
Set($DatabaseType, 'SQLite');
Set($DatabaseName, '{db}');
Set($WebDomain, '127.0.0.1');
Set($WebPort, {port});
Set($WebPath, '');
Set($WebBaseURL, 'http://127.0.0.1:{port}');
Set($SendmailPath, '{sendmail}');
Set($MailCommand, 'sendmailpipe');
Set($LogToSyslog, undef);
Set($LogToFile, undef);
Set($LogToSTDERR, 'error');
Set($MasonDataDir, '{mason}');
Set($MasonSessionDir, '{sessions}');
Set(%GnuPG, Enable => 0);
Set(%SMIME, Enable => 0);
1;
"#,
                db = d.join("rt.sqlite").display(),
                sendmail = sendmail.display(),
                mason = d.join("mason").display(),
                sessions = d.join("sessions").display(),
            ),
        )?;
        let mut init = Command::new(RT_SETUP_DATABASE);
        init.args(["--action", "init", "--skip-create"]);
        rt_env(&mut init, &d);
        run(&mut init, "rt-setup-database-5")?;
        let mut setup = Command::new("perl");
        setup.arg(workspace_root().join("crm-bridge/tests/rt/setup.pl"));
        rt_env(&mut setup, &d);
        let token = run(&mut setup, "setup.pl")?.trim().to_string();
        ensure!(!token.is_empty(), "setup.pl printed no token");

        let log = std::fs::File::create(d.join("rt-server.log"))?;
        let mut server = Command::new(RT_SERVER);
        server
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--max-workers",
                "2",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .process_group(0);
        rt_env(&mut server, &d);
        let child = server.spawn().context("starting rt-server")?;
        let rt = RtServer {
            child,
            port,
            dir: d,
            token,
        };
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if rt
                .get("/REST/2.0/queues/all")
                .is_ok_and(|(status, _)| status == 200)
            {
                break;
            }
            if Instant::now() > deadline {
                bail!("rt-server did not answer within 90 s:\n{}", rt.log());
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        Ok(rt)
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// rt-server's log tail.
    pub fn log(&self) -> String {
        tail(
            &std::fs::read_to_string(self.dir.join("rt-server.log")).unwrap_or_default(),
            30,
        )
    }

    /// GET a REST2 path with the token: status and body.
    pub fn get(&self, path_and_query: &str) -> Result<(u16, String)> {
        let auth = format!("token {}", self.token);
        http(
            SocketAddr::from(([127, 0, 0, 1], self.port)),
            "GET",
            path_and_query,
            &[("Authorization", &auth), ("Accept", "application/json")],
            None,
            Duration::from_secs(20),
        )
    }

    /// GET a REST2 path as JSON; non-2xx is an error.
    pub fn get_json(&self, path_and_query: &str) -> Result<Value> {
        let (status, body) = self.get(path_and_query)?;
        ensure!(
            (200..300).contains(&status),
            "RT GET {path_and_query}: HTTP {status}: {body}"
        );
        serde_json::from_str(&body).with_context(|| format!("RT GET {path_and_query}: {body}"))
    }

    /// One ticket (`/REST/2.0/ticket/<id>`).
    pub fn ticket(&self, id: &str) -> Result<Value> {
        self.get_json(&format!("/REST/2.0/ticket/{id}"))
    }

    /// The ids of the tickets in `queue`, oldest first.
    pub fn ticket_ids_in(&self, queue: &str) -> Result<Vec<String>> {
        let query = percent_encode(&format!("Queue = '{queue}'"));
        let list = self.get_json(&format!(
            "/REST/2.0/tickets?query={query}&orderby=id&order=ASC&per_page=100"
        ))?;
        Ok(list["items"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|t| match &t["id"] {
                        Value::String(s) => Some(s.clone()),
                        Value::Number(n) => Some(n.to_string()),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    /// The text of a ticket's transactions' attachments (its Content).
    pub fn ticket_content(&self, id: &str) -> Result<String> {
        let list = self.get_json(&format!(
            "/REST/2.0/ticket/{id}/attachments?fields=Content,ContentType&per_page=50"
        ))?;
        let mut out = String::new();
        for a in list["items"].as_array().into_iter().flatten() {
            if let Some(c) = a["Content"].as_str() {
                out.push_str(&decode_content(c));
                out.push('\n');
            }
        }
        Ok(out)
    }
}

/// REST2 returns attachment content base64-encoded; fall back to the text.
fn decode_content(c: &str) -> String {
    fn val(b: u8) -> Option<u32> {
        match b {
            b'A'..=b'Z' => Some(u32::from(b - b'A')),
            b'a'..=b'z' => Some(u32::from(b - b'a') + 26),
            b'0'..=b'9' => Some(u32::from(b - b'0') + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    }
    let clean: Vec<u8> = c.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    let mut out = Vec::new();
    for chunk in clean.chunks(4) {
        let digits: Vec<u32> = chunk
            .iter()
            .take_while(|&&b| b != b'=')
            .map(|&b| val(b))
            .collect::<Option<Vec<u32>>>()
            .unwrap_or_default();
        if digits.len() < 2 {
            return c.to_string();
        }
        let n = digits
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, d)| n | (d << (18 - 6 * i)));
        out.push((n >> 16) as u8);
        if digits.len() > 2 {
            out.push((n >> 8) as u8);
        }
        if digits.len() > 3 {
            out.push(n as u8);
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| c.to_string())
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Drop for RtServer {
    fn drop(&mut self) {
        stop_group(&mut self.child);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips() {
        assert_eq!(base64(b"admin:1:abc"), "YWRtaW46MTphYmM=");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(decode_content("YWRtaW46MTphYmM="), "admin:1:abc");
        assert_eq!(decode_content("YWI="), "ab");
        assert_eq!(percent_encode("Queue = 'X'"), "Queue%20%3D%20%27X%27");
    }
}
