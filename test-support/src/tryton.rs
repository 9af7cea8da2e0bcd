//! A real Tryton 7.0 (from PyPI, installed by scripts/install-crm-servers.sh)
//! on 127.0.0.1 with its own configuration and a copy of a seeded SQLite
//! database, and a JSON-RPC client to check what the bot wrote.
//!
//! Creating the database (`trytond-admin -u sale`, ~20 s) and seeding it
//! (`crm-bridge/tests/tryton/seed.py`: company, customers with phone
//! numbers, products with stock, sales) happens once per seed script
//! version under `target/e2e-cache/`; each server gets a copy.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};

use crate::process::{run, stop_group};
use crate::{free_tcp_port, http, tail, workspace_root};

/// Tryton's database name in the seeded file.
pub const TRYTON_DATABASE: &str = "voxbridge";
/// The Tryton `admin` user's password in the seeded file.
pub const TRYTON_ADMIN_PASSWORD: &str = "admin-for-tests";

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
    /// Start it in `dir` (an empty folder the caller keeps); answers
    /// JSON-RPC when this returns.
    pub fn start_in(dir: &Path) -> Result<TrytonServer> {
        if let Some(why) = tryton_missing() {
            bail!(why);
        }
        let (template, seed) = tryton_template()?;
        let dir = dir.to_path_buf();
        std::fs::create_dir_all(dir.join("db"))?;
        std::fs::copy(
            &template,
            dir.join("db").join(format!("{TRYTON_DATABASE}.sqlite")),
        )?;
        let port = free_tcp_port()?;
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
        let url = format!("{}/{TRYTON_DATABASE}/", self.url());
        let (status, text) =
            http::request("POST", &url, &headers, Some(&body), Duration::from_secs(20))?;
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
            STANDARD.encode(format!("admin:{uid}:{token}"))
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
