//! The CLI's side of the campaign admin API (plain HTTP on loopback or the
//! LAN, through the same client as the transcript poller), answers printed
//! for a person.

use std::path::Path;
use std::time::Duration;

use crate::test_call::admin_client::{exchange, Response};

/// One request may take this long (a start imports the list first).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// `METHOD path` with an optional JSON body on `addr` (`host:port`).
pub async fn request(
    addr: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Result<Response, String> {
    let method = reqwest::Method::from_bytes(method.as_bytes())
        .map_err(|_| format!("not an HTTP method: {method:?}"))?;
    exchange(
        &reqwest::Client::new(),
        method,
        addr,
        path,
        body,
        REQUEST_TIMEOUT,
    )
    .await
    .map_err(|e| {
        if e.unreachable {
            format!("admin API at {addr}: {e} (is the engine running with admin.listen?)")
        } else {
            e.text
        }
    })
}

/// A campaign named by its file (read for its `name`) or by name.
pub fn campaign_name(arg: &str) -> Result<String, String> {
    let path = Path::new(arg);
    if path.is_file() {
        super::format::Campaign::load(path)
            .map(|c| c.name)
            .map_err(|e| e.to_string())
    } else {
        Ok(arg.to_string())
    }
}

/// The JSON of a 2xx answer, or the error it carries.
pub fn json(r: Response) -> Result<serde_json::Value, String> {
    let value: serde_json::Value =
        serde_json::from_slice(&r.body).map_err(|e| format!("HTTP {}: not JSON: {e}", r.status))?;
    if (200..300).contains(&r.status) {
        Ok(value)
    } else {
        Err(value
            .get("error")
            .and_then(|v| v.as_str())
            .map(str::to_string)
            .unwrap_or_else(|| format!("HTTP {}", r.status)))
    }
}

/// `status` for a person: totals by disposition and what is due when.
pub fn render_status(v: &serde_json::Value) -> String {
    let s = |k: &str| {
        v.get(k)
            .map(|x| x.to_string().trim_matches('"').to_string())
            .unwrap_or_default()
    };
    let mut out = format!(
        "{}  {}  contacts {}  in flight {}  waiting {}  attempts {}\n",
        s("name"),
        s("state"),
        s("contacts"),
        s("in_flight"),
        s("waiting"),
        s("attempts")
    );
    let pairs = |k: &str| -> String {
        v.get(k)
            .and_then(|m| m.as_object())
            .map(|m| {
                m.iter()
                    .map(|(k, n)| format!("{k} {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| "-".into())
    };
    out.push_str(&format!("  finished: {}\n", pairs("finished")));
    out.push_str(&format!("  attempt outcomes: {}\n", pairs("outcomes")));
    if let Some(b) = v.get("blocked").and_then(|b| b.as_str()) {
        out.push_str(&format!("  waiting on: {b}\n"));
    }
    if let Some(due) = v.get("due").and_then(|d| d.as_array()) {
        for d in due {
            if let (Some(at), Some(n)) = (d.get(0).and_then(|x| x.as_str()), d.get(1)) {
                out.push_str(&format!("  due {at}: {n} contacts\n"));
            }
        }
    }
    out
}
