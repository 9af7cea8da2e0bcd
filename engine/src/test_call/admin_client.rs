//! Follows the bot's transcript on its admin endpoint while the call runs
//! (one GET per poll with `reqwest`, the client `voxbridge dial` uses too),
//! and the poller that prints the lines the bot adds.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::transcript::{label, CallView, Follower, Printer};

/// How often the transcript is fetched while the call runs.
pub const POLL_EVERY: Duration = Duration::from_millis(200);

/// One request may take this long before it counts as unreachable.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// The largest response we read: a long call's transcript is well under this.
const MAX_RESPONSE: usize = 4 << 20;

/// What one request returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Why a request got no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestError {
    /// Nothing accepted the connection (the engine is not running there, or
    /// its admin endpoint is off).
    pub unreachable: bool,
    pub text: String,
}

impl std::fmt::Display for RequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// `METHOD http://addr/path` with an optional JSON body, read whole up to
/// `max` bytes, within `timeout`. `addr` is `host:port`; the admin API is
/// plain HTTP on loopback or the LAN.
pub async fn exchange(
    client: &reqwest::Client,
    method: reqwest::Method,
    addr: &str,
    path: &str,
    body: Option<&str>,
    timeout: Duration,
) -> Result<Response, RequestError> {
    let url = format!("http://{addr}{path}");
    let mut request = client
        .request(method, &url)
        .timeout(timeout)
        .header(reqwest::header::ACCEPT, "application/json");
    if let Some(body) = body {
        request = request
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string());
    }
    let mut response = request.send().await.map_err(|e| describe(&e, timeout))?;
    let status = response.status().as_u16();
    let mut out = Vec::new();
    // Read chunk by chunk so an endless or huge body is cut off at `max`
    // instead of being held in memory whole.
    while let Some(chunk) = response.chunk().await.map_err(|e| describe(&e, timeout))? {
        if out.len() + chunk.len() > MAX_RESPONSE {
            return Err(RequestError {
                unreachable: false,
                text: format!("response over {MAX_RESPONSE} bytes"),
            });
        }
        out.extend_from_slice(&chunk);
    }
    Ok(Response { status, body: out })
}

/// The error of one request for a person: the timeout named as such, else
/// reqwest's own text with its cause (it keeps "connection refused" there).
fn describe(e: &reqwest::Error, timeout: Duration) -> RequestError {
    if e.is_timeout() {
        return RequestError {
            unreachable: false,
            text: format!("no answer within {timeout:?}"),
        };
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    RequestError {
        unreachable: e.is_connect(),
        text,
    }
}

/// `GET path` on `addr` (`host:port`).
pub async fn get(client: &reqwest::Client, addr: &str, path: &str) -> Result<Response, String> {
    exchange(
        client,
        reqwest::Method::GET,
        addr,
        path,
        None,
        REQUEST_TIMEOUT,
    )
    .await
    .map_err(|e| e.text)
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
    let client = reqwest::Client::new();
    let mut follower = Follower::default();
    let mut complained = false;
    loop {
        let stopping = *stop.borrow();
        if stopping {
            // Give the bot a moment to write down how the call ended.
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        match get(&client, &addr, &path).await {
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
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

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

    /// A server answering one connection with `response`, then closing.
    async fn answer_once(response: Vec<u8>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await;
            let _ = s.write_all(&response).await;
        });
        addr
    }

    #[tokio::test]
    async fn chunked_and_oversized_bodies_and_nobody_listening() {
        let client = reqwest::Client::new();
        let addr = answer_once(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\n\r\n"
                .to_vec(),
        )
        .await;
        let r = get(&client, &addr, "/x").await.unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"{\"a\":1}"[..]));

        let mut big = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
            MAX_RESPONSE + 1
        )
        .into_bytes();
        big.resize(big.len() + MAX_RESPONSE + 1, b'x');
        let addr = answer_once(big).await;
        let e = get(&client, &addr, "/x").await.unwrap_err();
        assert!(e.contains("over"), "{e}");

        // A port nothing listens on: told apart from a bad answer.
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = free.local_addr().unwrap().to_string();
        drop(free);
        let e = exchange(
            &client,
            reqwest::Method::GET,
            &addr,
            "/x",
            None,
            Duration::from_secs(2),
        )
        .await
        .unwrap_err();
        assert!(e.unreachable, "{e}");
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
