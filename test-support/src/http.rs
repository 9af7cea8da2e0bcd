//! A blocking HTTP client for tests (reqwest): one request, its status and
//! body, bounded by a timeout. Not for use inside an async runtime's
//! thread: async tests call it through `spawn_blocking`.

use std::time::Duration;

use anyhow::{Context, Result};

/// One request to `url`: the status and the body text.
pub fn request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
    timeout: Duration,
) -> Result<(u16, String)> {
    let client = reqwest::blocking::Client::builder()
        .timeout(timeout)
        .build()
        .context("building the HTTP client")?;
    let method = reqwest::Method::from_bytes(method.as_bytes())
        .with_context(|| format!("bad HTTP method {method}"))?;
    let mut req = client.request(method.clone(), url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some(b) = body {
        req = req.body(b.to_string());
    }
    let reply = req.send().with_context(|| format!("{method} {url}"))?;
    let status = reply.status().as_u16();
    let text = reply
        .text()
        .with_context(|| format!("reading the reply to {method} {url}"))?;
    Ok((status, text))
}

/// GET `url`: status and body.
pub fn get(url: &str) -> Result<(u16, String)> {
    request("GET", url, &[], None, Duration::from_secs(5))
}
