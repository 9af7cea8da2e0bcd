//! Bad replies on the request path: HTTP 500s, timeouts, malformed JSON, a
//! 200 with an HTML login page, huge bodies, dropped connections and
//! garbage. Each must give a clear error within the lookup budget, trip the
//! breaker when repeated, and never panic. Also checks retries of reads,
//! the profile cache and coalescing of concurrent identical lookups.
//!
//! The server is a hand-written HTTP/1.1 responder on 127.0.0.1 so it can
//! misbehave in ways a framework would not let it (no response, non-HTTP
//! bytes, a body longer than any sane limit).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use voxbridge_crm::bridge::{Bridge, LookupFailed};
use voxbridge_crm::http::HttpClient;
use voxbridge_crm::model::Customer;
use voxbridge_crm::resilience::breaker::{BreakerConfig, BreakerState};
use voxbridge_crm::resilience::cache::CacheConfig;
use voxbridge_crm::resilience::retry::RetryPolicy;
use voxbridge_crm::{Connector, Country, CrmError, Operation, E164};

/// Requests seen per mode.
#[derive(Default)]
struct Seen(Mutex<HashMap<String, usize>>);

impl Seen {
    fn count(&self, mode: &str) -> usize {
        self.0.lock().expect("lock").get(mode).copied().unwrap_or(0)
    }
    fn bump(&self, mode: &str) -> usize {
        let mut m = self.0.lock().expect("lock");
        let n = m.entry(mode.to_string()).or_insert(0);
        *n += 1;
        *n
    }
}

struct BadServer {
    addr: SocketAddr,
    seen: Arc<Seen>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for BadServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

const LOGIN_PAGE: &str = "<!DOCTYPE html><html><head><title>Sign in to Acme SSO</title></head>\
<body><form action=\"/login\"><input name=\"user\"><input type=\"password\"></form></body></html>";

async fn start_server() -> BadServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen = Arc::new(Seen::default());
    let seen_in = Arc::clone(&seen);
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let seen = Arc::clone(&seen_in);
            tokio::spawn(async move {
                let _ = serve(stream, &seen).await;
            });
        }
    });
    BadServer { addr, seen, task }
}

async fn serve(mut stream: TcpStream, seen: &Seen) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 || head.len() > 65_536 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    let path = text.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mode = path
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or("")
        .to_string();
    let n = seen.bump(&mode);
    let json = |status: &str, body: &str| {
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    let customer = r#"{"id":"C1","system":"probe","name":"Li Wei","phone":"+8613800138000"}"#;
    let reply = match mode.as_str() {
        "ok" => json("200 OK", customer),
        "missing" => json("404 Not Found", r#"{"error":"no such customer"}"#),
        "slow-ok" => {
            tokio::time::sleep(Duration::from_millis(100)).await;
            json("200 OK", customer)
        }
        "500" => json(
            "500 Internal Server Error",
            r#"{"error":"database is down, caller 13800138000"}"#,
        ),
        "flaky" if n <= 2 => json("503 Service Unavailable", r#"{"error":"busy"}"#),
        "flaky" => json("200 OK", customer),
        "slow" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            json("200 OK", customer)
        }
        "malformed" => json("200 OK", r#"{"id":"C1","name":"Li"#),
        "wrong-shape" => json("200 OK", r#"{"id":42,"name":["not","a","name"]}"#),
        "html" => format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{LOGIN_PAGE}",
            LOGIN_PAGE.len()
        ),
        "html-as-json" => json("200 OK", LOGIN_PAGE),
        "401" => json("401 Unauthorized", r#"{"error":"token expired"}"#),
        "400" => json("400 Bad Request", r#"{"error":"phone must be E.164"}"#),
        "huge" => {
            // Announces 64 MB and starts sending it.
            let header = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 67108864\r\nConnection: close\r\n\r\n";
            stream.write_all(header.as_bytes()).await?;
            let chunk = vec![b' '; 1 << 20];
            for _ in 0..64 {
                stream.write_all(&chunk).await?;
            }
            return Ok(());
        }
        "huge-chunked" => {
            let header = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
            stream.write_all(header.as_bytes()).await?;
            let chunk = format!("{:x}\r\n{}\r\n", 1 << 20, "[".repeat(1 << 20));
            for _ in 0..64 {
                stream.write_all(chunk.as_bytes()).await?;
            }
            stream.write_all(b"0\r\n\r\n").await?;
            return Ok(());
        }
        "reset" => return Ok(()),
        "garbage" => "\u{1}\u{2}NOT HTTP AT ALL\r\n\r\n".to_string(),
        "random" => {
            let body: Vec<u8> = (0..200).map(|_| rand::random::<u8>()).collect();
            let header = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            stream.write_all(header.as_bytes()).await?;
            stream.write_all(&body).await?;
            return Ok(());
        }
        _ => json("404 Not Found", "{}"),
    };
    stream.write_all(reply.as_bytes()).await?;
    stream.shutdown().await
}

/// A minimal connector whose lookups GET `/{mode}/customer`, using the
/// crate's real HTTP reply handling.
struct Probe {
    http: HttpClient,
    base: String,
    mode: Mutex<String>,
}

#[async_trait]
impl Connector for Probe {
    fn system(&self) -> &str {
        "probe"
    }

    async fn find_customer_by_phone(&self, phone: &E164) -> Result<Option<Customer>, CrmError> {
        let mode = self.mode.lock().expect("lock").clone();
        let url = format!("{}/{mode}/customer", self.base);
        let reply = self
            .http
            .send(
                self.http
                    .request(reqwest::Method::GET, &url)
                    .query(&[("phone", phone.as_str())]),
                &[404],
            )
            .await?;
        if reply.status == 404 {
            return Ok(None);
        }
        serde_json::from_value(reply.body)
            .map(Some)
            .map_err(|e| CrmError::Protocol {
                system: "probe".into(),
                message: format!("customer record: {e}"),
            })
    }
}

/// The caller-lookup budget [`setup`] gives the bridge.
const BUDGET: Duration = Duration::from_millis(400);

/// What a loaded two-core machine may add to a budget before a reply is
/// late: still far below the "slow" server's 5 s and the client's 10 s, so
/// a lookup that waited for either fails the test.
const SLACK: Duration = Duration::from_secs(2);

struct Setup {
    server: BadServer,
    probe: Arc<Probe>,
    bridge: Bridge,
}

async fn setup(mode: &str, threshold: u32, cache: CacheConfig, retry: RetryPolicy) -> Setup {
    let server = start_server().await;
    let base = format!("http://{}", server.addr);
    let http = HttpClient::new("probe", &base, Duration::from_secs(10))
        .expect("client")
        .with_max_body(1 << 20);
    let probe = Arc::new(Probe {
        http,
        base,
        mode: Mutex::new(mode.to_string()),
    });
    let bridge = Bridge::builder(Country::by_iso("CN").expect("CN"))
        .system(
            Arc::clone(&probe) as Arc<dyn Connector>,
            BreakerConfig {
                failure_threshold: threshold,
                open_for: Duration::from_millis(300),
            },
        )
        .timeout(Operation::FindCustomer, BUDGET)
        .retry(retry)
        .cache(cache)
        .build()
        .expect("bridge");
    Setup {
        server,
        probe,
        bridge,
    }
}

fn no_cache() -> CacheConfig {
    CacheConfig {
        ttl: Duration::ZERO,
        negative_ttl: Duration::ZERO,
        max_entries: 10,
        ..CacheConfig::default()
    }
}

fn no_retry() -> RetryPolicy {
    RetryPolicy {
        attempts: 1,
        ..RetryPolicy::default()
    }
}

/// Every bad reply gives its own clear error within the budget, and three
/// of them in a row open the circuit so the fourth does not reach the
/// server.
#[tokio::test]
async fn each_bad_reply_is_a_clear_error_and_trips_the_breaker() {
    let cases: &[(&str, &str, &str)] = &[
        ("500", "unavailable", "HTTP 500"),
        ("slow", "timeout", "timed out after 400 ms"),
        ("malformed", "malformed_json", "malformed JSON"),
        ("wrong-shape", "protocol", "unexpected reply"),
        ("html", "html", "HTML page instead of JSON"),
        ("html-as-json", "html", "login page?"),
        ("huge", "too_large", "larger than the 1048576-byte limit"),
        (
            "huge-chunked",
            "too_large",
            "larger than the 1048576-byte limit",
        ),
        ("reset", "connect", "cannot reach the server"),
        ("garbage", "connect", "cannot reach the server"),
        ("401", "auth", "authentication failed"),
    ];
    for (mode, kind, text) in cases {
        let s = setup(mode, 3, no_cache(), no_retry()).await;
        for attempt in 1..=3 {
            let started = Instant::now();
            let err = s
                .bridge
                .lookup_caller("+86 138 0013 8000")
                .await
                .expect_err("bad reply must fail");
            let elapsed = started.elapsed();
            assert!(
                elapsed < BUDGET + SLACK,
                "{mode}: took {elapsed:?}, far past the 400 ms budget"
            );
            let LookupFailed::Crm(e) = err else {
                panic!("{mode}: unexpected {err:?}");
            };
            assert_eq!(e.kind(), *kind, "{mode} attempt {attempt}: {e}");
            assert!(e.to_string().contains(text), "{mode}: message {e}");
            assert!(
                !e.to_string().contains("13800138000"),
                "{mode}: phone leaked into {e}"
            );
        }
        let before = s.server.seen.count(mode);
        let err = s
            .bridge
            .lookup_caller("13800138000")
            .await
            .expect_err("open");
        assert!(
            matches!(err, LookupFailed::Crm(CrmError::CircuitOpen { .. })),
            "{mode}: {err:?}"
        );
        assert_eq!(
            s.server.seen.count(mode),
            before,
            "{mode}: open circuit sent a request"
        );
        let stats = s.bridge.stats();
        assert_eq!(stats.systems[0].1, BreakerState::Open, "{mode}");
        assert_eq!(stats.systems[0].2.short_circuited, 1, "{mode}");
    }
}

#[tokio::test]
async fn html_error_message_quotes_the_page_title() {
    let s = setup("html", 5, no_cache(), no_retry()).await;
    let err = s
        .bridge
        .lookup_caller("13800138000")
        .await
        .expect_err("html");
    let text = err.to_string();
    assert!(text.contains("Sign in to Acme SSO"), "{text}");
    assert!(!text.contains('<'), "{text}");
}

/// A rejected request (400) says the server is up: it neither trips the
/// breaker nor is retried.
#[tokio::test]
async fn rejections_do_not_trip_the_breaker() {
    let s = setup("400", 2, no_cache(), RetryPolicy::default()).await;
    for _ in 0..5 {
        let err = s
            .bridge
            .lookup_caller("13800138000")
            .await
            .expect_err("400");
        assert!(matches!(
            err,
            LookupFailed::Crm(CrmError::Rejected { status: 400, .. })
        ));
    }
    assert_eq!(s.server.seen.count("400"), 5, "no retries of a rejection");
    assert_eq!(s.bridge.stats().systems[0].1, BreakerState::Closed);
}

/// The circuit half-opens after `open_for`, one probe goes through, and a
/// healthy server closes it again.
#[tokio::test]
async fn breaker_recovers_when_the_server_does() {
    let s = setup("500", 3, no_cache(), no_retry()).await;
    for _ in 0..3 {
        let _ = s.bridge.lookup_caller("13800138000").await;
    }
    assert_eq!(s.bridge.stats().systems[0].1, BreakerState::Open);
    *s.probe.mode.lock().expect("lock") = "ok".into();
    assert!(matches!(
        s.bridge.lookup_caller("13800138000").await,
        Err(LookupFailed::Crm(CrmError::CircuitOpen { .. }))
    ));
    tokio::time::sleep(Duration::from_millis(350)).await;
    let found = s.bridge.lookup_caller("13800138000").await.expect("probe");
    assert_eq!(found.map(|c| c.id).as_deref(), Some("C1"));
    assert_eq!(s.bridge.stats().systems[0].1, BreakerState::Closed);
}

/// Reads are retried with backoff: two 503s then success is a success.
#[tokio::test]
async fn idempotent_reads_are_retried() {
    let retry = RetryPolicy {
        attempts: 3,
        base: Duration::from_millis(10),
        max: Duration::from_millis(50),
    };
    let s = setup("flaky", 5, no_cache(), retry).await;
    let found = s
        .bridge
        .lookup_caller("13800138000")
        .await
        .expect("third try");
    assert_eq!(found.map(|c| c.name).as_deref(), Some("Li Wei"));
    assert_eq!(s.server.seen.count("flaky"), 3);
    assert_eq!(s.bridge.stats().systems[0].2.retries, 2);
}

/// A retry never pushes the lookup past its budget: the bridge stops
/// retrying when the next backoff would not fit (20 attempts would take
/// at least 2.8 s of backoff without the budget).
#[tokio::test]
async fn retries_stay_inside_the_budget() {
    let retry = RetryPolicy {
        attempts: 20,
        base: Duration::from_millis(150),
        max: Duration::from_millis(300),
    };
    let s = setup("500", 100, no_cache(), retry).await;
    let started = Instant::now();
    let err = s
        .bridge
        .lookup_caller("13800138000")
        .await
        .expect_err("500");
    assert!(
        started.elapsed() < BUDGET + Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(
        err,
        LookupFailed::Crm(CrmError::Unavailable { status: 500, .. })
    ));
    assert!(s.server.seen.count("500") < 5);
}

#[tokio::test]
async fn found_and_not_found_are_cached() {
    let s = setup("ok", 3, CacheConfig::default(), no_retry()).await;
    for format in ["+86 138 0013 8000", "013800138000", "13800138000"] {
        let c = s.bridge.lookup_caller(format).await.expect("lookup");
        assert_eq!(c.map(|c| c.id).as_deref(), Some("C1"));
    }
    assert_eq!(
        s.server.seen.count("ok"),
        1,
        "one E.164 key for all formats"
    );
    *s.probe.mode.lock().expect("lock") = "missing".into();
    for _ in 0..3 {
        assert_eq!(
            s.bridge.lookup_caller("13900000000").await.expect("lookup"),
            None
        );
    }
    assert_eq!(s.server.seen.count("missing"), 1);
    let stats = s.bridge.stats();
    assert_eq!((stats.lookups, stats.cache_hits), (6, 4));
}

#[tokio::test]
async fn concurrent_identical_lookups_are_coalesced() {
    let s = Arc::new(setup("slow-ok", 3, no_cache(), no_retry()).await);
    let mut tasks = Vec::new();
    for _ in 0..40 {
        let s = Arc::clone(&s);
        tasks.push(tokio::spawn(async move {
            s.bridge.lookup_caller("+8613800138000").await
        }));
    }
    for t in tasks {
        let c = t.await.expect("task").expect("lookup");
        assert_eq!(c.map(|c| c.id).as_deref(), Some("C1"));
    }
    assert_eq!(s.server.seen.count("slow-ok"), 1);
    assert_eq!(s.bridge.stats().coalesced, 39);
}

#[tokio::test]
async fn unusable_caller_ids_fail_without_a_request() {
    let s = setup("ok", 3, no_cache(), no_retry()).await;
    for id in ["anonymous", "", "sip:anonymous@anonymous.invalid", "12"] {
        let err = s.bridge.lookup_caller(id).await.expect_err("bad id");
        assert!(
            matches!(err, LookupFailed::BadNumber { .. }),
            "{id}: {err:?}"
        );
    }
    assert_eq!(s.server.seen.count("ok"), 0);
}

/// Random bytes labelled JSON: always an error, never a panic, never a
/// customer.
#[tokio::test]
async fn random_bodies_never_panic() {
    let s = setup("random", 1000, no_cache(), no_retry()).await;
    for _ in 0..200 {
        match s.bridge.lookup_caller("13800138000").await {
            Err(LookupFailed::Crm(e)) => assert!(
                matches!(e.kind(), "malformed_json" | "html" | "protocol"),
                "{e}"
            ),
            other => panic!("random body gave {other:?}"),
        }
    }
}
