//! The RFC 4475 torture messages (`tests/corpus/sip/rfc4475/`) sent one by
//! one to a running voxbridge over UDP on 127.0.0.1: each gets exactly the
//! final response its `EXPECT` line names (status and header), or none
//! where it says `drop`; calls the valid INVITEs open are ACKed and hung up;
//! the bot stays up and takes a normal call afterwards.
//!
//! The bytes are the RFC's with one change: in SDP `c=` lines the
//! documentation address `192.0.2.d` becomes `127.0.0.d` (same length, so
//! every Content-Length still holds) so the answered calls' RTP stays on
//! loopback.

use std::net::UdpSocket;
use std::path::Path;
use std::time::{Duration, Instant};

use voxbridge_e2e::{free_port, run_sipp, scratch_dir, tail, Bot, BotConfig};

struct Case {
    file: String,
    outcome: String,
    header: Option<(String, String)>,
}

fn cases(dir: &Path) -> Vec<Case> {
    std::fs::read_to_string(dir.join("EXPECT"))
        .expect("corpus EXPECT file")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let mut parts = l.splitn(3, ' ');
            let file = parts.next().unwrap_or_default().to_string();
            let outcome = parts.next().unwrap_or_default().to_string();
            let header = parts.next().and_then(|h| {
                let (n, v) = h.split_once(':')?;
                Some((n.trim().to_string(), v.trim().to_string()))
            });
            Case {
                file,
                outcome,
                header,
            }
        })
        .collect()
}

/// The request's Call-ID (long or compact form), else its first branch:
/// what the bot's answers to it carry.
fn key(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let head = text.split("\r\n\r\n").next().unwrap_or_default();
    for line in head.lines() {
        if let Some((name, value)) = line.split_once(':') {
            let name = name.trim();
            if name.eq_ignore_ascii_case("call-id") || name.eq_ignore_ascii_case("i") {
                return value.trim().to_string();
            }
        }
    }
    let at = head.find("branch=").expect("a Call-ID or a branch");
    head[at + 7..]
        .split([';', ',', '\r', '\n', ' '])
        .next()
        .unwrap_or_default()
        .to_string()
}

/// SDP `c=IN IP4 192.0.2.d` → `127.0.0.d`, same length.
fn loopback_media(raw: &[u8]) -> Vec<u8> {
    let from = b"c=IN IP4 192.0.2.";
    let mut out = raw.to_vec();
    let mut i = 0;
    while i + from.len() + 1 < out.len() {
        if out[i..].starts_with(from)
            && out[i + from.len()].is_ascii_digit()
            && !out[i + from.len() + 1].is_ascii_digit()
        {
            out[i + 9..i + 17].copy_from_slice(b"127.0.0.");
        }
        i += 1;
    }
    out
}

/// Final responses (≥ 200) whose text contains `key`, within `wait`; stops
/// early once one came and a short grace passed with no second one.
fn finals(sock: &UdpSocket, key: &str, wait: Duration) -> Vec<String> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 65536];
    let end = Instant::now() + wait;
    let mut grace_end: Option<Instant> = None;
    while Instant::now() < grace_end.unwrap_or(end).min(end) {
        if let Ok((len, _)) = sock.recv_from(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..len]).into_owned();
            if !text.contains(key) {
                continue;
            }
            let code = text
                .strip_prefix("SIP/2.0 ")
                .and_then(|r| r.get(..3))
                .and_then(|c| c.parse::<u16>().ok());
            if code.is_some_and(|c| c >= 200) {
                out.push(text);
                grace_end.get_or_insert(Instant::now() + Duration::from_millis(300));
            }
        }
    }
    out
}

fn header<'a>(response: &'a str, name: &str) -> Option<&'a str> {
    response
        .split("\r\n\r\n")
        .next()?
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .find(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
}

/// ACK a 200 to an INVITE and hang the call up with a BYE.
fn ack_and_bye(sock: &UdpSocket, bot: &Bot, ok: &str, n: usize) {
    let local = sock.local_addr().expect("local address");
    let (Some(from), Some(to), Some(call_id), Some(cseq)) = (
        header(ok, "from"),
        header(ok, "to"),
        header(ok, "call-id"),
        header(ok, "cseq"),
    ) else {
        return;
    };
    let seq: u32 = cseq
        .split_whitespace()
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    for (method, seq, branch) in [("ACK", seq, "a"), ("BYE", seq + 1, "b")] {
        let msg = format!(
            "{method} sip:voxbridge@{target} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-rfc4475-{branch}{n};rport\r\nFrom: {from}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: {seq} {method}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
            target = bot.addr
        );
        sock.send_to(msg.as_bytes(), bot.addr).expect("send");
    }
}

#[test]
fn rfc4475_torture_messages_get_their_answers_and_calls_still_work() {
    let mut bot = Bot::start("conformance", &BotConfig::default()).unwrap();
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/sip/rfc4475");
    let cases = cases(&corpus);
    assert_eq!(cases.len(), 49, "RFC 4475 sections 3.1.1 to 3.4");

    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut failures = Vec::new();
    let mut answered_calls = 0;
    for (n, case) in cases.iter().enumerate() {
        let raw = std::fs::read(corpus.join(&case.file)).unwrap();
        let bytes = loopback_media(&raw);
        let key = key(&raw);
        sock.send_to(&bytes, bot.addr).unwrap();
        let wait = if case.outcome == "drop" {
            Duration::from_millis(600)
        } else {
            Duration::from_secs(3)
        };
        let got = finals(&sock, &key, wait);
        let codes: Vec<&str> = got.iter().filter_map(|r| r.get(8..11)).collect();
        let ok = match (case.outcome.as_str(), got.as_slice()) {
            ("drop", []) => true,
            (code, [one]) => {
                one.get(8..11) == Some(code)
                    && case.header.as_ref().is_none_or(|(name, value)| {
                        header(one, name).is_some_and(|v| v.starts_with(value.as_str()))
                    })
            }
            _ => false,
        };
        if !ok {
            failures.push(format!(
                "{}: expected {} {:?}, got {codes:?}\n{}",
                case.file,
                case.outcome,
                case.header,
                got.first().map(|r| tail(r, 12)).unwrap_or_default()
            ));
        }
        if let Some(first) = got.first() {
            if first.starts_with("SIP/2.0 200")
                && header(first, "cseq").is_some_and(|c| c.ends_with("INVITE"))
            {
                answered_calls += 1;
                ack_and_bye(&sock, &bot, first, n);
            }
        }
        assert!(
            bot.is_running(),
            "voxbridge died on {}:\n{}",
            case.file,
            tail(&bot.log(), 30)
        );
    }
    // dblreq: the INVITE after the REGISTER's Content-Length was discarded.
    let stray = finals(
        &sock,
        "dblreq.0ha0isnda977644900765",
        Duration::from_millis(300),
    );
    assert!(
        stray.is_empty(),
        "the trailing INVITE of dblreq was answered"
    );

    // A normal call right after.
    let dir = scratch_dir("conformance_sipp").unwrap();
    let port = free_port().unwrap().to_string();
    let target = bot.addr.to_string();
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
            "3",
            "-r",
            "3",
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
        "{} of {} messages got another outcome:\n{}\nlog:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n"),
        tail(&log, 40)
    );
    assert!(!log.contains("panicked"), "{}", tail(&log, 40));
    let invites_to_answer = cases
        .iter()
        .filter(|c| c.outcome == "200")
        .filter(|c| std::fs::read(corpus.join(&c.file)).is_ok_and(|b| b.starts_with(b"INVITE ")))
        .count();
    assert_eq!(answered_calls, invites_to_answer, "INVITEs answered 200");
}
