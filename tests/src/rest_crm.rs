//! A CRM that can go down: a small HTTP server on loopback that speaks the
//! API described by [`RestCrm::config_yaml`] for the generic REST connector
//! (`kind: rest`), with one customer, two orders and a `POST /api/calls`
//! that keeps every call log it is sent. [`RestCrm::stop`] closes the
//! listening socket (connections are then refused, as for a CRM that is
//! down) and [`RestCrm::restart`] opens it again on the same port, keeping
//! what it was sent.
//!
//! std only, one request per connection (`Connection: close`), so stopping
//! leaves no kept-alive connection behind that could still be served.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// The customer the server knows, by this number (E.164, as the bridge
/// sends it after normalising).
pub const CUSTOMER_PHONE: &str = "+8613912345678";
pub const CUSTOMER_ID: &str = "R-7";

/// One request the server answered.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    pub body: String,
    /// The `Idempotency-Key` header, when sent (the outbox sends one per
    /// record; a redelivery repeats it).
    pub idempotency_key: Option<String>,
}

#[derive(Default)]
struct State {
    seen: Vec<Seen>,
}

/// The server; stopped on drop.
pub struct RestCrm {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl RestCrm {
    /// Listen on a free loopback port.
    pub fn start() -> Result<RestCrm> {
        let listener = TcpListener::bind("127.0.0.1:0").context("binding the REST CRM")?;
        let addr = listener.local_addr()?;
        let mut crm = RestCrm {
            addr,
            state: Arc::new(Mutex::new(State::default())),
            stop: Arc::new(AtomicBool::new(false)),
            thread: None,
        };
        crm.serve(listener)?;
        Ok(crm)
    }

    fn serve(&mut self, listener: TcpListener) -> Result<()> {
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        self.stop = stop.clone();
        let state = self.state.clone();
        self.thread = Some(std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let _ = answer(stream, &state);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
            // The listener drops here: new connections are refused.
        }));
        Ok(())
    }

    /// Close the listening socket and wait until it is closed.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }

    /// Listen again on the same port (after [`stop`](Self::stop)).
    pub fn restart(&mut self) -> Result<()> {
        self.stop();
        // The port was ours a moment ago; TIME_WAIT sockets of earlier
        // connections do not block a listener (std sets SO_REUSEADDR).
        let start = Instant::now();
        let listener = loop {
            match TcpListener::bind(self.addr) {
                Ok(l) => break l,
                Err(e) if start.elapsed() < Duration::from_secs(5) => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => bail!("cannot listen on {} again: {e}", self.addr),
            }
        };
        self.serve(listener)
    }

    /// Whether the port accepts connections right now.
    pub fn is_up(&self) -> bool {
        TcpStream::connect_timeout(&self.addr, Duration::from_millis(500)).is_ok()
    }

    /// Every request answered so far.
    pub fn seen(&self) -> Vec<Seen> {
        lock(&self.state).seen.clone()
    }

    /// The bodies of the call logs received.
    pub fn call_logs(&self) -> Vec<String> {
        self.seen()
            .into_iter()
            .filter(|s| s.method == "POST" && s.target.starts_with("/api/calls"))
            .map(|s| s.body)
            .collect()
    }

    /// How many call logs arrived per idempotency key (`None`: sent
    /// without one).
    pub fn call_logs_by_key(&self) -> std::collections::HashMap<Option<String>, usize> {
        let mut counts = std::collections::HashMap::new();
        for s in self.seen() {
            if s.method == "POST" && s.target.starts_with("/api/calls") {
                *counts.entry(s.idempotency_key).or_insert(0) += 1;
            }
        }
        counts
    }

    /// The CRM configuration (the content of a `crm.config` file) for this
    /// server, its outbox in `outbox`. Retries, breaker and outbox backoff
    /// are short so a test sees delivery soon after the CRM returns.
    pub fn config_yaml(&self, outbox: &Path) -> String {
        format!(
            r#"default_country: CN
systems:
  site:
    kind: rest
    base_url: http://{addr}/api
    idempotency_header: Idempotency-Key
    operations:
      find_customer:
        path: /customers
        query: {{ phone: "{{{{phone}}}}" }}
        result: $.data
        fields: {{ id: $.id, name: $.name, tier: $.tier, language: $.language }}
      list_orders:
        path: /customers/{{{{customer_id}}}}/orders
        result: $.data
        fields: {{ id: $.id, status: $.status, placed_at: $.placed }}
      order_status:
        path: /orders/{{{{order_id}}}}
        result: $.data
        fields: {{ id: $.id, status: $.status, placed_at: $.placed }}
      log_call:
        path: /calls
        id: $.id
        body:
          call_id: "{{{{call.call_id}}}}"
          customer: "{{{{call.customer_id}}}}"
          disposition: "{{{{call.disposition}}}}"
          transcript: "{{{{call.transcript_text}}}}"
retry: {{ attempts: 2, base: 20ms, max: 50ms }}
breaker: {{ failure_threshold: 5, open_for: 500ms }}
outbox:
  path: {outbox}
  backoff_base: 200ms
  backoff_max: 1s
  poll_interval: 100ms
"#,
            addr = self.addr,
            outbox = outbox.display()
        )
    }
}

impl Drop for RestCrm {
    fn drop(&mut self) {
        self.stop();
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// Read one request, answer it, close.
fn answer(mut stream: TcpStream, state: &Mutex<State>) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 64 * 1024 {
            return Ok(());
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&buf[head_end..]).into_owned();
    let mut words = head.split_whitespace();
    let method = words.next().unwrap_or("").to_string();
    let target = words.next().unwrap_or("").to_string();
    let idempotency_key = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("idempotency-key"))
        .map(|(_, v)| v.trim().to_string());
    let (status, reply) = route(&method, &target, state);
    lock(state).seen.push(Seen {
        method,
        target,
        body,
        idempotency_key,
    });
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
        reply.len()
    )?;
    stream.flush()
}

/// The API: JSON replies by method and path.
fn route(method: &str, target: &str, state: &Mutex<State>) -> (&'static str, String) {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let order = |id: &str, status: &str, placed: &str| {
        format!(r#"{{"id":"{id}","status":"{status}","placed":"{placed}"}}"#)
    };
    match (method, path) {
        ("GET", "/api/customers") => {
            // `+` arrives percent-encoded; compare digits only.
            let digits = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
            let asked = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("phone="))
                .map(|p| digits(&p.replace("%2B", "+").replace("%2b", "+")))
                .unwrap_or_default();
            let data = if asked == digits(CUSTOMER_PHONE) {
                format!(
                    r#"[{{"id":"{CUSTOMER_ID}","name":"Robin Reyes","tier":"silver","language":"en-US"}}]"#
                )
            } else {
                "[]".to_string()
            };
            ("200 OK", format!(r#"{{"data":{data}}}"#))
        }
        ("GET", p) if p == format!("/api/customers/{CUSTOMER_ID}/orders") => (
            "200 OK",
            format!(
                r#"{{"data":[{},{}]}}"#,
                order("RO-11", "shipped", "2026-11-02"),
                order("RO-12", "processing", "2026-11-19")
            ),
        ),
        ("GET", "/api/orders/RO-11") => (
            "200 OK",
            format!(r#"{{"data":{}}}"#, order("RO-11", "shipped", "2026-11-02")),
        ),
        ("GET", p) if p.starts_with("/api/orders/") => {
            ("404 Not Found", r#"{"error":"not found"}"#.to_string())
        }
        ("POST", "/api/calls") => {
            let n = lock(state)
                .seen
                .iter()
                .filter(|s| s.method == "POST")
                .count();
            ("201 Created", format!(r#"{{"id":"CALL-{}"}}"#, n + 1))
        }
        _ => (
            "404 Not Found",
            r#"{"error":"no such endpoint"}"#.to_string(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(addr: SocketAddr, text: &str) -> std::io::Result<String> {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        s.write_all(text.as_bytes())?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        Ok(out)
    }

    #[test]
    fn answers_goes_down_and_comes_back_on_the_same_port() {
        let mut crm = RestCrm::start().unwrap();
        let addr = crm.addr;
        let found = request(
            addr,
            "GET /api/customers?phone=%2B8613912345678 HTTP/1.1\r\nHost: x\r\n\r\n",
        )
        .unwrap();
        assert!(found.starts_with("HTTP/1.1 200"), "{found}");
        assert!(found.contains(r#""id":"R-7""#), "{found}");
        let none = request(addr, "GET /api/customers?phone=1 HTTP/1.1\r\n\r\n").unwrap();
        assert!(none.ends_with(r#"{"data":[]}"#), "{none}");

        crm.stop();
        assert!(!crm.is_up());
        assert!(request(addr, "GET /api/orders/RO-11 HTTP/1.1\r\n\r\n").is_err());

        crm.restart().unwrap();
        assert_eq!(crm.addr, addr);
        assert!(crm.is_up());
        let body = r#"{"call_id":"c-1"}"#;
        let posted = request(
            addr,
            &format!(
                "POST /api/calls HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ),
        )
        .unwrap();
        assert!(posted.starts_with("HTTP/1.1 201"), "{posted}");
        assert_eq!(crm.call_logs(), vec![body.to_string()]);
        // Probes without a request are not requests; what came before the
        // restart is kept.
        assert_eq!(crm.seen().len(), 3);
    }
}
