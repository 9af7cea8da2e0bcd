//! Broken SIP and SDP thrown at a running voxbridge (the corpus in
//! `tests/corpus/sip/`): each datagram gets exactly the answer its `EXPECT`
//! line names (status and header) or none where it says `drop`, the
//! process never panics, and a normal call right after works.

use std::collections::HashMap;
use std::io::Write;
use std::net::{TcpStream, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use voxbridge_e2e::{free_port, run_sipp, scratch_dir, summary_metric, tail, Bot, BotConfig};

/// Final responses (≥ 200) to case `n` received within `wait`: those
/// naming its Call-ID `malformed-<n>@test`, or its Via branch for requests
/// that have no Call-ID (provisional 1xx ignored; answers to earlier cases,
/// such as retransmitted 488s we never ACK, are not this case's).
fn finals(sock: &UdpSocket, n: usize, wait: Duration) -> Vec<String> {
    let call_id = format!("malformed-{n}@test");
    let branch = format!("branch=z9hG4bK-{n};");
    let mut out = Vec::new();
    let mut buf = [0u8; 9000];
    let end = Instant::now() + wait;
    while Instant::now() < end {
        if let Ok((len, _)) = sock.recv_from(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..len]);
            if !text.contains(&call_id) && !text.contains(&branch) {
                continue;
            }
            if let Some(code) = text
                .strip_prefix("SIP/2.0 ")
                .and_then(|r| r.get(..3))
                .and_then(|c| c.parse::<u16>().ok())
            {
                if code >= 200 {
                    out.push(text.into_owned());
                }
            }
        }
    }
    out
}

/// One exact outcome per file: `drop`, or a status with an optional
/// `Name: value-prefix` header the answer must carry.
struct Expected {
    outcome: String,
    header: Option<(String, String)>,
}

fn expectations(dir: &Path) -> HashMap<String, Expected> {
    std::fs::read_to_string(dir.join("EXPECT"))
        .expect("corpus EXPECT file")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let mut parts = l.splitn(3, ' ');
            let file = parts.next()?.to_string();
            let outcome = parts.next()?.trim().to_string();
            let header = parts.next().and_then(|h| {
                let (n, v) = h.split_once(':')?;
                Some((n.trim().to_string(), v.trim().to_string()))
            });
            Some((file, Expected { outcome, header }))
        })
        .collect()
}

fn has_header(response: &str, name: &str, prefix: &str) -> bool {
    response
        .split("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .any(|(n, v)| n.trim().eq_ignore_ascii_case(name) && v.trim().starts_with(prefix))
}

#[test]
fn corpus_gets_its_exact_answers_and_calls_still_work() {
    let mut bot = Bot::start("malformed", &BotConfig::default()).unwrap();
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/sip");
    let expect = expectations(&corpus);
    assert!(expect.len() >= 25, "corpus has {} cases", expect.len());

    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let local = sock.local_addr().unwrap().to_string();
    let target = bot.addr.to_string();
    let mut failures = Vec::new();
    let mut names: Vec<&String> = expect.keys().collect();
    names.sort();
    for (n, name) in names.into_iter().enumerate() {
        let raw = std::fs::read(corpus.join(name)).unwrap();
        // Placeholders are ASCII; replace them bytewise so binary files survive.
        let bytes = substitute(&raw, &local, &target, n);
        sock.send_to(&bytes, bot.addr).unwrap();
        let got = finals(&sock, n, Duration::from_millis(400));
        let want = &expect[name];
        let codes: Vec<&str> = got.iter().filter_map(|r| r.get(8..11)).collect();
        let ok = match (want.outcome.as_str(), got.first()) {
            ("drop", None) => true,
            (code, Some(first)) => {
                // One answer, retransmissions of it aside.
                codes.iter().all(|c| *c == code)
                    && first.get(8..11) == Some(code)
                    && want
                        .header
                        .as_ref()
                        .is_none_or(|(h, v)| has_header(first, h, v))
            }
            _ => false,
        };
        if !ok {
            failures.push(format!(
                "{name}: got {codes:?}, expected {} {:?}",
                want.outcome, want.header
            ));
        }
        assert!(
            bot.is_running(),
            "voxbridge died on {name}:\n{}",
            tail(&bot.log(), 30)
        );
    }

    // Garbage over TCP must not take the listener down either.
    if let Ok(mut tcp) = TcpStream::connect(bot.addr) {
        let _ = tcp.write_all(b"\x16\x03\x01\x02\x00garbage\r\n\r\nFROB sip:x SIP/2.0\r\nContent-Length: 99999999\r\n\r\n");
    }
    std::thread::sleep(Duration::from_millis(200));
    assert!(bot.is_running(), "voxbridge died on TCP garbage");

    // A normal call right after.
    let dir = scratch_dir("malformed_sipp").unwrap();
    let port = free_port().unwrap().to_string();
    let run = run_sipp(
        &dir,
        &[
            "-sn",
            "uac",
            &target,
            "-i",
            "127.0.0.1",
            "-p",
            &port,
            "-m",
            "5",
            "-r",
            "5",
            "-timeout",
            "20s",
            "-timeout_error",
        ],
        Duration::from_secs(30),
    )
    .unwrap();
    assert_eq!(run.status, Some(0), "{}", run.describe());

    let log = bot.stop().unwrap();
    assert!(
        failures.is_empty(),
        "unexpected outcomes:\n{}\nlog:\n{}",
        failures.join("\n"),
        tail(&log, 40)
    );
    assert!(!log.contains("panicked"), "{}", tail(&log, 40));
    assert!(
        summary_metric(&log, "sip_garbage").unwrap_or(0) >= 2,
        "{}",
        tail(&log, 3)
    );
    assert!(
        summary_metric(&log, "sip_bad_request").unwrap_or(0) >= 3,
        "{}",
        tail(&log, 3)
    );
    assert!(
        summary_metric(&log, "rejected_sdp").unwrap_or(0) >= 4,
        "{}",
        tail(&log, 3)
    );
    assert_eq!(
        summary_metric(&log, "ended_caller_hangup"),
        Some(5),
        "{}",
        tail(&log, 3)
    );
}

/// Replace the corpus placeholders in raw bytes.
fn substitute(raw: &[u8], local: &str, target: &str, n: usize) -> Vec<u8> {
    let mut out = raw.to_vec();
    for (from, to) in [
        ("{{local}}", local.to_string()),
        ("{{target}}", target.to_string()),
        ("{{n}}", n.to_string()),
    ] {
        let mut next = Vec::with_capacity(out.len());
        let mut i = 0;
        while i < out.len() {
            if out[i..].starts_with(from.as_bytes()) {
                next.extend_from_slice(to.as_bytes());
                i += from.len();
            } else {
                next.push(out[i]);
                i += 1;
            }
        }
        out = next;
    }
    out
}
