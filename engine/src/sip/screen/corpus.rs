//! The screening verdict for every file of the SIP corpora
//! (`tests/corpus/sip/` and its RFC 4475 torture messages), without
//! sockets: where `EXPECT` names an answer screening gives, the verdict is
//! that reply with that header; where it names one the stack gives (200,
//! 405, 481, 488), the datagram passes; `drop` is a drop, or a response
//! passed on for the stack to match against nothing.

use std::path::{Path, PathBuf};

use super::{screen, split_outside, too_large, Verdict};

/// Statuses screening itself sends.
const SCREEN_CODES: &[u16] = &[400, 406, 415, 416, 420, 501, 505, 513];

/// The stack's receive buffer (rsipstack `MAX_UDP_BUF_SIZE`): what the
/// socket hands on whole.
const STACK_BUFFER: usize = 8192;

struct Case {
    file: String,
    outcome: String,
    header: Option<(String, String)>,
}

pub(super) fn corpus(dir: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/corpus/sip")
        .join(dir)
}

fn cases(dir: &Path) -> Vec<Case> {
    std::fs::read_to_string(dir.join("EXPECT"))
        .expect("EXPECT file")
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

/// The corpus placeholders filled with fixed addresses.
pub(super) fn fill(raw: &[u8]) -> Vec<u8> {
    let mut out = raw.to_vec();
    for (from, to) in [
        ("{{local}}", "127.0.0.1:5999"),
        ("{{target}}", "127.0.0.1:5070"),
        ("{{n}}", "7"),
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

/// A request screening passed: the stack's answer `code` fits it. For an
/// INVITE with an offer, the offer check the dispatcher runs decides 200
/// against 400/488 and the Warning.
fn passed_as_expected(message: &[u8], code: &str, header: Option<&(String, String)>) -> bool {
    let Ok(code) = code.parse::<u16>() else {
        return false;
    };
    if SCREEN_CODES.contains(&code) && code != 400 {
        return false;
    }
    let head = super::head::read(message);
    let body = head.body_at.map(|at| &message[at..]).unwrap_or_default();
    let in_dialog = head.first("to").is_some_and(|f| {
        split_outside(&f.value, b';')
            .iter()
            .skip(1)
            .any(|p| p.len() > 4 && p[..4].eq_ignore_ascii_case(b"tag="))
    });
    if in_dialog {
        // No dialog exists in a fresh bot (RFC 3261 §12.2.2).
        return code == 481;
    }
    if !head.start.starts_with(b"INVITE ") || body.is_empty() {
        return code != 400;
    }
    let prefs = [voxbridge_media::Codec::Pcmu, voxbridge_media::Codec::Pcma];
    match crate::sdp::parse(body).and_then(|o| crate::sdp::negotiate(&o, &prefs)) {
        Ok(_) => code == 200,
        Err(e) => {
            let warning_ok = header.is_none_or(|(name, value)| {
                name.eq_ignore_ascii_case("warning")
                    && e.warning("voxbridge")
                        .is_some_and(|w| w.starts_with(value.as_str()))
            });
            e.refusal().0 == code && warning_ok
        }
    }
}

/// What the screening socket does with these bytes.
fn verdict(bytes: &[u8]) -> Verdict {
    if bytes.len() > STACK_BUFFER {
        too_large(&bytes[..STACK_BUFFER], "vb")
    } else {
        screen(bytes, "vb")
    }
}

fn check(dir: &Path, minimum: usize) {
    let cases = cases(dir);
    assert!(
        cases.len() >= minimum,
        "{} cases in {}",
        cases.len(),
        dir.display()
    );
    let mut failures = Vec::new();
    for case in &cases {
        let raw = std::fs::read(dir.join(&case.file)).expect("corpus file");
        let bytes = fill(&raw);
        let v = verdict(&bytes);
        let is_response = bytes.starts_with(b"SIP/");
        let ok = match (case.outcome.as_str(), &v) {
            ("drop", Verdict::Drop(_)) => true,
            ("drop", Verdict::Pass) => is_response,
            (code, Verdict::Reply(reply, _)) => {
                let text = String::from_utf8_lossy(reply);
                let status_ok = text.starts_with(&format!("SIP/2.0 {code} "));
                let header_ok = case.header.as_ref().is_none_or(|(name, value)| {
                    text.lines().any(|l| {
                        l.split_once(':').is_some_and(|(n, v)| {
                            n.eq_ignore_ascii_case(name) && v.trim().starts_with(value.as_str())
                        })
                    })
                });
                status_ok && header_ok
            }
            (code, Verdict::Pass | Verdict::Trim(_) | Verdict::Rewrite(_)) => {
                let handed_on = match &v {
                    Verdict::Trim(n) => bytes[..*n].to_vec(),
                    Verdict::Rewrite(b) => b.clone(),
                    _ => bytes.clone(),
                };
                passed_as_expected(&handed_on, code, case.header.as_ref())
            }
            _ => false,
        };
        if !ok {
            let shown = match &v {
                Verdict::Reply(r, _) => String::from_utf8_lossy(r)
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_string(),
                other => format!("{other:?}"),
            };
            failures.push(format!(
                "{}: expected {} got {shown}",
                case.file, case.outcome
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn rfc4475_torture_messages_get_their_verdicts() {
    let dir = corpus("rfc4475");
    // Every file is listed, every listed file exists.
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .expect("corpus dir")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".dat"))
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = cases(&dir).into_iter().map(|c| c.file).collect();
    listed.sort();
    assert_eq!(on_disk, listed);
    assert_eq!(
        listed.len(),
        49,
        "RFC 4475 sections 3.1.1 to 3.4 hold 49 messages"
    );
    check(&dir, 49);
}

#[test]
fn dblreq_hands_on_only_the_register() {
    let raw = std::fs::read(corpus("rfc4475").join("dblreq.dat")).expect("dblreq");
    let Verdict::Trim(n) = screen(&raw, "vb") else {
        panic!("dblreq not trimmed")
    };
    let kept = String::from_utf8_lossy(&raw[..n]);
    assert!(kept.starts_with("REGISTER "));
    assert!(!kept.contains("INVITE"));
}

#[test]
fn local_corpus_gets_its_verdicts() {
    check(&corpus(""), 30);
}

#[test]
fn wsinv_is_handed_on_so_the_stack_reads_its_tags() {
    use rsipstack::sip::{HeadersExt, SipMessage};
    let raw = std::fs::read(corpus("rfc4475").join("wsinv.dat")).expect("wsinv");
    let Verdict::Rewrite(bytes) = screen(&raw, "vb") else {
        panic!("wsinv not rewritten")
    };
    let Ok(SipMessage::Request(req)) = SipMessage::try_from(&bytes[..]) else {
        panic!("rewritten wsinv does not parse")
    };
    let to_tag = req.to_header().ok().and_then(|t| t.tag().ok().flatten());
    assert_eq!(
        to_tag.map(|t| t.to_string()).as_deref(),
        Some("1918181833n")
    );
    let from_tag = req.from_header().ok().and_then(|t| t.tag().ok().flatten());
    assert_eq!(from_tag.map(|t| t.to_string()).as_deref(), Some("98asjd8"));
    assert_eq!(req.body.len(), 150);
}
