//! Follows the bot's transcript on its admin endpoint while the call runs:
//! a minimal HTTP/1.1 GET (one request per connection, loopback or LAN, no
//! TLS) so the CLI needs no HTTP client crate, and the poller that prints
//! the lines the bot adds.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::transcript::{label, CallView, Follower, Printer};

/// How often the transcript is fetched while the call runs.
pub const POLL_EVERY: Duration = Duration::from_millis(200);

/// One request may take this long before it counts as unreachable.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// The largest response we read: a long call's transcript is well under this.
const MAX_RESPONSE: usize = 4 << 20;

/// What one GET returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

/// `GET path` on `addr` (`host:port`).
pub async fn get(addr: &str, path: &str) -> Result<Response, String> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
        );
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut raw = Vec::new();
        (&mut stream)
            .take(MAX_RESPONSE as u64 + 1)
            .read_to_end(&mut raw)
            .await
            .map_err(|e| e.to_string())?;
        if raw.len() > MAX_RESPONSE {
            return Err(format!("response over {MAX_RESPONSE} bytes"));
        }
        parse_response(&raw)
    };
    tokio::time::timeout(REQUEST_TIMEOUT, exchange)
        .await
        .map_err(|_| format!("no answer within {REQUEST_TIMEOUT:?}"))?
}

/// Status and body of a whole HTTP/1.x response (read until close).
pub fn parse_response(raw: &[u8]) -> Result<Response, String> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("response without a header end")?;
    let head = std::str::from_utf8(&raw[..split]).map_err(|_| "response head is not text")?;
    let body = &raw[split + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .filter(|_| status_line.starts_with("HTTP/1."))
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let mut chunked = false;
    let mut length = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("transfer-encoding")
            && value.to_ascii_lowercase().contains("chunked")
        {
            chunked = true;
        } else if name.eq_ignore_ascii_case("content-length") {
            length = value.parse::<usize>().ok();
        }
    }
    let body = if chunked {
        dechunk(body)?
    } else {
        match length {
            Some(n) if n <= body.len() => body[..n].to_vec(),
            Some(_) => return Err("response body shorter than its Content-Length".into()),
            None => body.to_vec(),
        }
    };
    Ok(Response { status, body })
}

fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("truncated chunked body")?;
        let size_text = std::str::from_utf8(&rest[..end]).map_err(|_| "bad chunk size")?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| "bad chunk size")?;
        rest = &rest[end + 2..];
        if size == 0 {
            return Ok(out);
        }
        let chunk = rest.get(..size).ok_or("truncated chunked body")?;
        out.extend_from_slice(chunk);
        rest = rest.get(size + 2..).ok_or("truncated chunked body")?;
    }
}

/// The admin path of one call: the Call-ID percent-encoded as one segment.
pub fn call_path(call_id: &str) -> String {
    let mut path = String::from("/calls/");
    for b in call_id.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~@".contains(&b) {
            path.push(b as char);
        } else {
            path.push_str(&format!("%{b:02X}"));
        }
    }
    path
}

/// When the transcript last showed the bot saying something, in time since
/// the answer. A bot writes its line when it starts a prompt, which may be
/// a second before the audio (speech synthesis), so this tells `quiet` that
/// another prompt is on its way.
#[derive(Debug, Default)]
pub struct BotLines {
    /// Milliseconds since the answer, plus one; 0: none yet.
    last: AtomicU64,
}

impl BotLines {
    pub fn mark(&self, at: Duration) {
        let ms = u64::try_from(at.as_millis()).unwrap_or(u64::MAX - 1) + 1;
        self.last.store(ms, Ordering::Relaxed);
    }

    pub fn last(&self) -> Option<Duration> {
        match self.last.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(Duration::from_millis(ms - 1)),
        }
    }
}

/// Polls the transcript and prints new lines until `stop` turns true, then
/// fetches once more (the bot's last words and the end) and returns.
/// `bot_lines` notes when the bot said something; once it has, the caller
/// stops printing speech detected from the audio (a bot playing recorded
/// prompts reports no words for them, so until then the audio is all we have).
pub async fn follow(
    addr: String,
    call_id: String,
    printer: Arc<Printer>,
    bot_lines: Arc<BotLines>,
    mut stop: watch::Receiver<bool>,
) {
    let path = call_path(&call_id);
    let mut follower = Follower::default();
    let mut complained = false;
    loop {
        let stopping = *stop.borrow();
        if stopping {
            // Give the bot a moment to write down how the call ended.
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        match get(&addr, &path).await {
            Ok(Response { status: 200, body }) => match CallView::parse(&body) {
                Ok(view) => {
                    for u in follower.update(&view) {
                        if u.speaker == "bot" {
                            bot_lines.mark(printer.elapsed());
                        }
                        let (who, text) = label(u);
                        printer.line(&who, &text);
                    }
                }
                Err(e) => complain_once(&printer, &addr, &mut complained, &e),
            },
            Ok(Response { status, .. }) => {
                let why = format!("GET {path} answered {}", super::status_text(status));
                complain_once(&printer, &addr, &mut complained, &why);
            }
            Err(e) => complain_once(&printer, &addr, &mut complained, &e),
        }
        if stopping {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL_EVERY) => {}
            _ = stop.changed() => {}
        }
    }
}

fn complain_once(printer: &Printer, addr: &str, complained: &mut bool, why: &str) {
    if !*complained {
        *complained = true;
        printer.note(&format!(
            "note: no transcript from {addr} ({why}); showing the bot's speech detected in its audio"
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    #[test]
    fn responses_plain_sized_and_chunked() {
        let r = parse_response(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}").unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"{}"[..]));
        let r = parse_response(b"HTTP/1.1 404 Not Found\r\n\r\n").unwrap();
        assert_eq!((r.status, r.body.len()), (404, 0));
        let r = parse_response(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(r.body, b"{\"a\":1}");
        assert!(parse_response(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n").is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{}").is_err());
        assert!(
            parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n").is_err()
        );
    }

    #[test]
    fn bot_lines_remember_the_latest() {
        let lines = BotLines::default();
        assert_eq!(lines.last(), None);
        lines.mark(Duration::ZERO);
        assert_eq!(lines.last(), Some(Duration::ZERO));
        lines.mark(Duration::from_millis(2500));
        assert_eq!(lines.last(), Some(Duration::from_millis(2500)));
    }

    #[test]
    fn call_ids_are_one_path_segment() {
        assert_eq!(call_path("abc-1@127.0.0.1"), "/calls/abc-1@127.0.0.1");
        assert_eq!(call_path("a/b c?d"), "/calls/a%2Fb%20c%3Fd");
    }

    /// A one-shot server answering each connection with the next canned response.
    async fn serve(responses: Vec<&'static str>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            for response in responses {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = [0u8; 1024];
                let n = s.read(&mut buf).await.unwrap();
                assert!(buf[..n].starts_with(b"GET /calls/c1@h HTTP/1.1\r\n"));
                s.write_all(response.as_bytes()).await.unwrap();
            }
        });
        addr
    }

    #[tokio::test]
    async fn the_poller_prints_each_line_once_and_stops() {
        let addr = serve(vec![
            "HTTP/1.1 404 Not Found\r\n\r\n",
            "HTTP/1.1 200 OK\r\n\r\n{\"state\":\"active\",\"transcript\":[{\"speaker\":\"bot\",\"text\":\"Hello.\"}]}",
            "HTTP/1.1 200 OK\r\n\r\n{\"state\":\"ended\",\"transcript\":[{\"speaker\":\"bot\",\"text\":\"Hello.\"},{\"speaker\":\"bot\",\"text\":\"Bye.\"}]}",
        ])
        .await;
        let buf = Arc::new(std::sync::Mutex::new(Vec::new()));
        struct W(Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for W {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let printer = Arc::new(Printer::new(Box::new(W(buf.clone()))));
        let bot_lines = Arc::new(BotLines::default());
        let (stop_tx, stop_rx) = watch::channel(false);
        let task = tokio::spawn(follow(
            addr,
            "c1@h".into(),
            printer,
            bot_lines.clone(),
            stop_rx,
        ));
        // Two polls: the 404 and the first transcript.
        for _ in 0..100 {
            if bot_lines.last().is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        stop_tx.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap();
        assert!(bot_lines.last().is_some());
        let text = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].starts_with("note: no transcript"), "{text}");
        assert!(
            lines[0].contains("(GET /calls/c1@h answered 404 Not Found)"),
            "{text}"
        );
        assert!(lines[1].ends_with("] bot: Hello."), "{text}");
        assert!(lines[2].ends_with("] bot: Bye."), "{text}");
    }
}
