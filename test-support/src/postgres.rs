//! A throwaway PostgreSQL (Debian's `postgresql` package, installed by
//! scripts/install-deps.sh) for the storage tests: `initdb` and `pg_ctl`
//! in a temp folder, listening on a free 127.0.0.1 port with password
//! (SCRAM) authentication, stopped when dropped.
//!
//! - PostgreSQL refuses to run as root, so when the tests run as root the
//!   cluster belongs to an unprivileged user (`$VOXBRIDGE_PG_USER`, default
//!   `nobody`) and every server tool runs through `runuser`.
//! - [`shared`] starts one cluster per test binary; each test takes its own
//!   database from it ([`PostgresServer::create_database`]), so tests run in
//!   parallel without seeing each other's rows.
//! - `pg_ctl` detaches the server from the test process, so a watchdog shell
//!   stops it (`pg_ctl stop -m immediate`) once the test process is gone:
//!   a shared server in a `static` is never dropped, and a test binary
//!   killed with SIGKILL leaves no cluster behind either.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use anyhow::{bail, Context, Result};

use crate::process::run;
use crate::{free_tcp_port, tail};

/// The superuser of a test cluster.
pub const PG_USER: &str = "voxbridge";
/// Its password (the cluster only listens on 127.0.0.1).
pub const PG_PASSWORD: &str = "voxbridge-test-password";

/// The folder of PostgreSQL's server programs: `$VOXBRIDGE_PG_BIN`, else the
/// newest `/usr/lib/postgresql/NN/bin` that has `initdb`.
pub fn postgres_bin() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("VOXBRIDGE_PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// Why PostgreSQL cannot run here, or `None` when it can.
pub fn postgres_missing() -> Option<String> {
    match postgres_bin() {
        None => Some(
            "PostgreSQL is not installed (/usr/lib/postgresql/NN/bin/initdb: Debian package \
             `postgresql`, scripts/install-deps.sh; or set VOXBRIDGE_PG_BIN)"
                .into(),
        ),
        Some(bin) if !bin.join("pg_ctl").exists() => {
            Some(format!("{} has no pg_ctl", bin.display()))
        }
        Some(_) => None,
    }
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// The user owning the cluster when the tests run as root.
fn cluster_user() -> String {
    std::env::var("VOXBRIDGE_PG_USER").unwrap_or_else(|_| "nobody".into())
}

/// A running throwaway cluster; stopped (and its folder removed) on drop.
pub struct PostgresServer {
    bin: PathBuf,
    dir: PathBuf,
    /// `Some(user)` when the server programs run as that user (we are root).
    run_as: Option<String>,
    pub port: u16,
    databases: AtomicUsize,
}

impl PostgresServer {
    /// `initdb` a cluster under a new temp folder and start it; accepts
    /// connections when this returns (~2 s).
    pub fn start() -> Result<PostgresServer> {
        if let Some(why) = postgres_missing() {
            bail!(why);
        }
        let bin = postgres_bin().context("no PostgreSQL")?;
        let run_as = running_as_root().then(cluster_user);
        let dir = std::env::temp_dir().join(format!(
            "voxbridge-pg-{}-{:x}",
            std::process::id(),
            rand_suffix()
        ));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        if let Some(user) = &run_as {
            // The cluster's user must own its folder (initdb checks) and be
            // able to reach it: the temp folder itself is world-searchable.
            run(
                Command::new("chown").arg(user).arg(&dir),
                "chown of the PostgreSQL folder",
            )?;
        }
        let mut server = PostgresServer {
            bin,
            dir,
            run_as,
            port: 0,
            databases: AtomicUsize::new(0),
        };
        let pwfile = server.dir.join("pwfile");
        std::fs::write(&pwfile, PG_PASSWORD)?;
        if let Some(user) = &server.run_as {
            run(Command::new("chown").arg(user).arg(&pwfile), "chown pwfile")?;
        }
        run(
            server
                .tool("initdb")
                .arg("-D")
                .arg(server.data())
                .args(["-U", PG_USER, "--auth=scram-sha-256", "--no-sync"])
                .arg(format!("--pwfile={}", pwfile.display()))
                .env("LC_ALL", "C"),
            "initdb",
        )?;
        // A port free a moment ago may be taken by the time the server binds
        // it: try a few.
        let mut last = None;
        for _ in 0..3 {
            server.port = free_tcp_port()?;
            match server.pg_ctl_start() {
                Ok(()) => {
                    server.watchdog()?;
                    return Ok(server);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("PostgreSQL did not start")))
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("postgres.log")
    }

    /// A server program, run as the cluster's user when we are root.
    fn tool(&self, name: &str) -> Command {
        let program = self.bin.join(name);
        let mut cmd = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(program);
                c
            }
            None => Command::new(program),
        };
        // runuser keeps the caller's working folder, which the cluster's
        // user may not be allowed to enter.
        cmd.current_dir(&self.dir);
        cmd
    }

    fn pg_ctl_start(&self) -> Result<()> {
        // No Unix socket (only TCP on loopback), no fsync: a test cluster.
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c fsync=off \
             -c synchronous_commit=off -c full_page_writes=off -c max_connections=200",
            self.port
        );
        let started = run(
            self.tool("pg_ctl")
                .arg("-D")
                .arg(self.data())
                .arg("-l")
                .arg(self.log_path())
                .args(["-o", &options, "-w", "-t", "60", "start"]),
            "pg_ctl start",
        );
        started
            .map(|_| ())
            .map_err(|e| anyhow::anyhow!("{e:#}\npostgres.log:\n{}", self.log()))
    }

    /// Stops the cluster once this process is gone, however it ends.
    fn watchdog(&self) -> Result<()> {
        let stop = format!(
            "{} -D '{}' -m immediate -w stop",
            self.bin.join("pg_ctl").display(),
            self.data().display()
        );
        let stop = match &self.run_as {
            Some(user) => format!("runuser -u {user} -- {stop}"),
            None => stop,
        };
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
             if [ -d '{data}' ]; then {stop}; rm -rf '{dir}'; fi",
            pid = std::process::id(),
            data = self.data().display(),
            dir = self.dir.display(),
        );
        Command::new("sh")
            .args(["-c", &script])
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting the PostgreSQL watchdog")?;
        Ok(())
    }

    /// The server log's tail.
    pub fn log(&self) -> String {
        tail(
            &std::fs::read_to_string(self.log_path()).unwrap_or_default(),
            30,
        )
    }

    /// A new empty database for one test, named after `prefix` (letters,
    /// digits and `_` kept) and a counter.
    pub fn create_database(&self, prefix: &str) -> Result<String> {
        let clean: String = prefix
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .take(40)
            .collect();
        let name = format!("t{}_{clean}", self.databases.fetch_add(1, Ordering::SeqCst));
        run(
            Command::new(self.bin.join("createdb"))
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
                .args(["-U", PG_USER, &name])
                .env("PGPASSWORD", PG_PASSWORD),
            "createdb",
        )?;
        Ok(name)
    }

    /// `postgres://voxbridge@127.0.0.1:PORT/DATABASE`, without the password
    /// (voxbridge reads that from the environment or a file).
    pub fn url(&self, database: &str) -> String {
        format!("postgres://{PG_USER}@127.0.0.1:{}/{database}", self.port)
    }

    /// Run SQL through `psql` (for checks from outside voxbridge); its
    /// unaligned output without headers.
    pub fn psql(&self, database: &str, sql: &str) -> Result<String> {
        run(
            Command::new(self.bin.join("psql"))
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
                .args([
                    "-U",
                    PG_USER,
                    "-d",
                    database,
                    "-XAtq",
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-c",
                    sql,
                ])
                .env("PGPASSWORD", PG_PASSWORD),
            "psql",
        )
    }

    /// A file holding the password (for `storage.password: { file: … }`).
    pub fn password_file(&self) -> PathBuf {
        self.dir.join("pwfile")
    }

    /// Where the cluster lives.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        let _ = self
            .tool("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "stop"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The cluster of this test binary, started by the first test that asks.
/// A failed start is reported to every test that asks.
pub fn shared() -> Result<&'static PostgresServer> {
    static SERVER: OnceLock<Result<PostgresServer, String>> = OnceLock::new();
    SERVER
        .get_or_init(|| PostgresServer::start().map_err(|e| format!("{e:#}")))
        .as_ref()
        .map_err(|e| anyhow::anyhow!("PostgreSQL for tests: {e}"))
}

fn rand_suffix() -> u64 {
    // Unique enough for a temp folder name: the clock's nanoseconds.
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::from(d.subsec_nanos()) ^ d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_starts_takes_databases_and_stops_on_drop() {
        let server = PostgresServer::start().expect("PostgreSQL starts");
        let a = server.create_database("first test").expect("createdb");
        let b = server.create_database("first test").expect("createdb");
        assert_ne!(a, b);
        assert_eq!(server.psql(&a, "SELECT 40 + 2").expect("psql").trim(), "42");
        let data = server.data();
        drop(server);
        assert!(!data.exists(), "the cluster's folder is removed");
    }
}
