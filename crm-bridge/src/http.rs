//! The HTTP side every REST and JSON-RPC connector shares: one client per
//! system, replies read with a size limit, and every way a server can
//! answer badly turned into a [`CrmError`] that says what happened.
//!
//! CRMs fail in ways that look like success: a 200 with the single-sign-on
//! login page, a proxy's HTML error page, a JSON body cut short, a report
//! endpoint that streams 200 MB. None of these may reach the dialog as a
//! customer record or hold a call's memory, so the body is read in chunks up
//! to a limit and checked before it is parsed.

use std::time::Duration;

use reqwest::header::{HeaderMap, CONTENT_TYPE};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::Value;

use crate::error::CrmError;
use crate::mask::mask_text;

/// Default cap on a reply body.
pub const DEFAULT_MAX_BODY: usize = 4 * 1024 * 1024;

/// How much of a bad body to quote in an error.
const SNIPPET_CHARS: usize = 160;

/// A parsed reply: status and JSON body (`Null` when empty).
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

/// One system's HTTP client.
#[derive(Debug, Clone)]
pub struct HttpClient {
    system: String,
    client: reqwest::Client,
    max_body: usize,
}

impl HttpClient {
    /// A client for `system`. `timeout` is a backstop for a whole request;
    /// the bridge enforces the per-operation budget itself.
    pub fn new(system: &str, base_url: &str, timeout: Duration) -> Result<HttpClient, CrmError> {
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .pool_max_idle_per_host(32)
            .tcp_nodelay(true)
            .user_agent(concat!("voxbridge-crm/", env!("CARGO_PKG_VERSION")));
        // A system proxy must never see traffic meant for this machine.
        if is_loopback_url(base_url) {
            builder = builder.no_proxy();
        }
        let client = builder.build().map_err(|e| CrmError::Invalid {
            system: system.to_string(),
            message: format!("cannot build the HTTP client: {e}"),
        })?;
        Ok(HttpClient {
            system: system.to_string(),
            client,
            max_body: DEFAULT_MAX_BODY,
        })
    }

    /// Change the body size limit.
    pub fn with_max_body(mut self, bytes: usize) -> HttpClient {
        self.max_body = bytes;
        self
    }

    pub fn system(&self) -> &str {
        &self.system
    }

    /// Start a request.
    pub fn request(&self, method: Method, url: &str) -> RequestBuilder {
        self.client.request(method, url)
    }

    /// Send a request and read its JSON reply. 2xx replies are returned;
    /// so are the statuses in `pass`, which the connector handles itself
    /// (404 for "no such customer", 409 for "already exists"). Everything
    /// else becomes an error.
    pub async fn send(&self, request: RequestBuilder, pass: &[u16]) -> Result<Reply, CrmError> {
        let (client, request) = request.build_split();
        let request = request.map_err(|e| CrmError::Invalid {
            system: self.system.clone(),
            message: format!("cannot build request: {e}"),
        })?;
        let endpoint = endpoint_label(request.method(), request.url());
        let response = client
            .execute(request)
            .await
            .map_err(|e| self.transport_error(&e))?;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = self.read_limited(response).await?;

        if !status.is_success() && !pass.contains(&status.as_u16()) {
            return Err(self.status_error(status, &endpoint, &headers, &bytes));
        }
        if looks_like_html(&headers, &bytes) {
            return Err(CrmError::Html {
                system: self.system.clone(),
                snippet: snippet(&bytes),
            });
        }
        let body = parse_json(&self.system, &bytes)?;
        Ok(Reply {
            status: status.as_u16(),
            headers,
            body,
        })
    }

    async fn read_limited(&self, mut response: reqwest::Response) -> Result<Vec<u8>, CrmError> {
        let too_large = || CrmError::TooLarge {
            system: self.system.clone(),
            limit: self.max_body,
        };
        if response
            .content_length()
            .is_some_and(|n| n > self.max_body as u64)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.transport_error(&e))?
        {
            if body.len() + chunk.len() > self.max_body {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    fn transport_error(&self, e: &reqwest::Error) -> CrmError {
        if e.is_timeout() {
            CrmError::Timeout {
                system: self.system.clone(),
                after_ms: 0,
            }
        } else {
            CrmError::Connect {
                system: self.system.clone(),
                message: error_chain(e),
            }
        }
    }

    fn status_error(
        &self,
        status: StatusCode,
        endpoint: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> CrmError {
        let system = self.system.clone();
        let text = if looks_like_html(headers, body) {
            format!("(HTML page) {}", snippet(body))
        } else {
            snippet(body)
        };
        match status.as_u16() {
            401 | 403 => CrmError::Auth {
                system,
                message: format!("HTTP {} from {endpoint}: {text}", status.as_u16()),
            },
            429 | 500..=599 => CrmError::Unavailable {
                system,
                status: status.as_u16(),
                endpoint: endpoint.to_string(),
                snippet: text,
            },
            code => CrmError::Rejected {
                system,
                status: code,
                endpoint: endpoint.to_string(),
                snippet: text,
            },
        }
    }
}

/// Parse a body as JSON; an empty body is `Null`.
pub fn parse_json(system: &str, bytes: &[u8]) -> Result<Value, CrmError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(bytes).map_err(|e| CrmError::MalformedJson {
        system: system.to_string(),
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })
}

fn looks_like_html(headers: &HeaderMap, body: &[u8]) -> bool {
    let declared_html = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.to_ascii_lowercase().contains("html"));
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    declared_html || first == Some(&b'<')
}

/// The start of a body for an error message: tags stripped, whitespace
/// collapsed, personal data masked.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(8 * 1024)]);
    let mut out = String::new();
    let mut in_tag = false;
    let mut last_space = true;
    for ch in text.chars() {
        match ch {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                if !last_space {
                    out.push(' ');
                    last_space = true;
                }
            }
            _ if in_tag => {}
            c if c.is_whitespace() => {
                if !last_space {
                    out.push(' ');
                    last_space = true;
                }
            }
            c => {
                out.push(c);
                last_space = false;
            }
        }
        if out.chars().count() >= SNIPPET_CHARS {
            out.push('…');
            break;
        }
    }
    mask_text(out.trim())
}

/// `GET /api/customers` without the query string, which carries phone
/// numbers and tokens.
fn endpoint_label(method: &Method, url: &reqwest::Url) -> String {
    format!("{method} {}", url.path())
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    mask_text(&text)
}

fn is_loopback_url(url: &str) -> bool {
    let Ok(parsed) = reqwest::Url::parse(url) else {
        return false;
    };
    match parsed.host_str() {
        Some(h) if h.eq_ignore_ascii_case("localhost") => true,
        Some(h) => h
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippets_strip_tags_and_mask() {
        let page = b"<html><head><title>Sign in</title></head>\n<body><form>Phone 13800138000</form></body></html>";
        assert_eq!(snippet(page), "Sign in Phone *******8000");
        assert!(snippet(&vec![b'a'; 1000]).chars().count() <= SNIPPET_CHARS + 1);
    }

    #[test]
    fn html_detection() {
        let mut h = HeaderMap::new();
        assert!(looks_like_html(&h, b"  <!DOCTYPE html>"));
        assert!(!looks_like_html(&h, b"{\"a\":1}"));
        h.insert(
            CONTENT_TYPE,
            "text/html; charset=utf-8".parse().expect("header"),
        );
        assert!(looks_like_html(&h, b"{}"));
    }

    #[test]
    fn json_errors_have_positions() {
        assert_eq!(parse_json("s", b" \n"), Ok(Value::Null));
        match parse_json("s", b"{\"a\":\n  tru") {
            Err(CrmError::MalformedJson { line, .. }) => assert_eq!(line, 2),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn loopback() {
        assert!(is_loopback_url("http://127.0.0.1:8080/x"));
        assert!(is_loopback_url("http://localhost/x"));
        assert!(is_loopback_url("http://[::1]:80/"));
        assert!(!is_loopback_url("https://example.my.salesforce.com"));
        assert!(!is_loopback_url("not a url"));
    }
}
