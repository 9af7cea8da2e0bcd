//! A real Request Tracker 5 (Debian `request-tracker5`, installed by
//! scripts/install-crm-servers.sh) on 127.0.0.1: its own RT_SiteConfig.pm
//! and SQLite file (`rt-setup-database-5 --action init`), the queues,
//! custom fields, customers and auth token of
//! `crm-bridge/tests/rt/setup.pl`, then `rt-server --max-workers 2`; and a
//! REST2 client to check what the bot wrote.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::Value;

use crate::process::{run, stop_group};
use crate::{free_tcp_port, http, tail, workspace_root};

const RT_SERVER: &str = "/usr/share/request-tracker5/libexec/rt-server";
const RT_SETUP_DATABASE: &str = "/usr/sbin/rt-setup-database-5";

/// Why Request Tracker cannot run here, or `None` when it can.
pub fn rt_missing() -> Option<String> {
    (!Path::new(RT_SERVER).exists() || !Path::new(RT_SETUP_DATABASE).exists())
        .then(|| "Request Tracker 5 is not installed (scripts/install-crm-servers.sh)".to_string())
}

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
    /// customers of setup.pl) in `dir` (an empty folder the caller keeps)
    /// and start the server; answers REST2 when this returns (~30–90 s).
    pub fn start_in(dir: &Path) -> Result<RtServer> {
        if let Some(why) = rt_missing() {
            bail!(why);
        }
        let d = dir.to_path_buf();
        for sub in ["site-config.d", "mason", "sessions"] {
            std::fs::create_dir_all(d.join(sub))?;
        }
        let port = free_tcp_port()?;
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
        http::request(
            "GET",
            &format!("{}{path_and_query}", self.url()),
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
    let clean: String = c.chars().filter(|ch| !ch.is_ascii_whitespace()).collect();
    STANDARD
        .decode(clean)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .unwrap_or_else(|| c.to_string())
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
    fn attachment_content_and_queries_are_decoded_and_encoded() {
        assert_eq!(decode_content("YWRtaW46MTphYmM="), "admin:1:abc");
        assert_eq!(decode_content("YWI=\n"), "ab");
        assert_eq!(
            decode_content("plain text, not base64"),
            "plain text, not base64"
        );
        assert_eq!(percent_encode("Queue = 'X'"), "Queue%20%3D%20%27X%27");
    }
}
