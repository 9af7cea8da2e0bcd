//! Calls the engine places (`POST /calls` through `voxbridge dial`), each
//! against a sipp callee from `tests/scenarios/callee-*.xml` on loopback:
//! busy, not found, never answering (we CANCEL at the ring timeout, after
//! early media), and answering then hanging up mid-prompt. Each asserts the
//! disposition the engine reports and what sipp saw.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use voxbridge_e2e::{
    free_port, prom_value, scratch_dir, tail, voxbridge_bin, wait_child, workspace_root, Bot,
    BotConfig,
};

fn script() -> PathBuf {
    workspace_root().join("fixtures/scripts/outbound-follow-up.yaml")
}

/// A bot that runs the follow-up script (so its text to speech is up).
fn bot(name: &str) -> Bot {
    let dir = scratch_dir(&format!("{name}_cdr")).unwrap();
    let cfg = BotConfig {
        more: format!(
            "dialog:\n  script: {}\ncdr:\n  path: {}\nspeech:\n  grammar: true\n",
            script().display(),
            dir.join("cdr.sqlite").display()
        ),
        ..BotConfig::default()
    };
    Bot::start(name, &cfg).unwrap()
}

/// One sipp callee for one call, its messages traced; its SIP port.
fn callee(dir: &Path, scenario: &str) -> (Child, u16) {
    let port = free_port().unwrap();
    let media = free_port().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(scenario);
    let child = Command::new("sipp")
        .arg("-sf")
        .arg(&src)
        .args(["-i", "127.0.0.1", "-p", &port.to_string()])
        .args(["-mp", &media.to_string(), "-m", "1", "-nostdin"])
        .args(["-timeout", "40s", "-trace_msg", "-message_file"])
        .arg(dir.join("callee-messages.log"))
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sipp (package sip-tester)");
    std::thread::sleep(Duration::from_millis(300));
    (child, port)
}

/// `voxbridge dial` against the bot's admin endpoint: its JSON answer.
fn dial(bot: &Bot, number: &str, extra: &[&str]) -> serde_json::Value {
    let admin = bot.admin.to_string();
    let script = script();
    let out = Command::new(voxbridge_bin().unwrap())
        .args(["dial", number, "--admin", &admin, "--caller-id", "+15550100"])
        .arg("--script")
        .arg(&script)
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "voxbridge dial failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        tail(&bot.log(), 30)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn messages(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("callee-messages.log")).unwrap_or_default()
}

/// A refused call maps its status to the disposition, and the callee saw
/// one INVITE from our caller id, asserted too.
fn refused(name: &str, scenario: &str, code: u16, disposition: &str) {
    let bot = bot(name);
    let dir = scratch_dir(&format!("{name}_callee")).unwrap();
    let (mut sipp, port) = callee(&dir, scenario);
    let outcome = dial(&bot, &format!("sip:+15550199@127.0.0.1:{port}"), &[]);
    assert_eq!(outcome["disposition"], disposition, "{outcome}");
    assert_eq!(outcome["sip_status"], code, "{outcome}");
    assert!(outcome["script"].is_null(), "{outcome}");
    assert_eq!(wait_child(&mut sipp, Duration::from_secs(10)), Some(0));
    let log = messages(&dir);
    assert_eq!(log.matches("INVITE sip:+15550199@").count(), 1, "{log}");
    assert!(log.contains("From: <sip:+15550100@127.0.0.1:"), "{log}");
    assert!(log.contains("P-Asserted-Identity: <sip:+15550100@"), "{log}");
    let metrics = bot.wait_metric(
        &format!("voxbridge_outbound_dispositions_total{{disposition=\"{disposition}\"}}"),
        1.0,
        Duration::from_secs(5),
    );
    assert_eq!(prom_value(&metrics, "voxbridge_outbound_attempts_total"), Some(1.0));
}

#[test]
fn a_busy_callee_is_busy() {
    refused("out_busy", "callee-busy.xml", 486, "busy");
}

#[test]
fn an_unknown_number_is_not_found() {
    refused("out_404", "callee-not-found.xml", 404, "not_found");
}

#[test]
fn no_answer_is_cancelled_at_the_ring_timeout() {
    let bot = bot("out_noanswer");
    let dir = scratch_dir("out_noanswer_callee").unwrap();
    let (mut sipp, port) = callee(&dir, "callee-no-answer.xml");
    let started = Instant::now();
    let outcome = dial(
        &bot,
        &format!("sip:+15550199@127.0.0.1:{port}"),
        &["--ring-timeout", "2"],
    );
    let took = started.elapsed();
    assert_eq!(outcome["disposition"], "no_answer", "{outcome}");
    assert_eq!(outcome["sip_status"], 487, "{outcome}");
    // Not before the ring timeout, and not long after it.
    assert!(took >= Duration::from_secs(2) && took < Duration::from_secs(10), "{took:?}");
    assert_eq!(wait_child(&mut sipp, Duration::from_secs(10)), Some(0));
    let log = messages(&dir);
    assert!(log.contains("CANCEL sip:+15550199@"), "{log}");
    let metrics = bot.wait_metric(
        "voxbridge_outbound_cancelled_total",
        1.0,
        Duration::from_secs(5),
    );
    // The 183 carried SDP: early media was seen.
    assert_eq!(prom_value(&metrics, "voxbridge_outbound_early_media_total"), Some(1.0));
}

#[test]
fn a_callee_who_hangs_up_mid_prompt_ends_an_answered_call() {
    let bot = bot("out_bye");
    let dir = scratch_dir("out_bye_callee").unwrap();
    let (mut sipp, port) = callee(&dir, "callee-answer-bye.xml");
    let outcome = dial(
        &bot,
        &format!("sip:+15550199@127.0.0.1:{port}"),
        &[
            "--field",
            "first_name=Ann",
            "--field",
            "last_name=Lee",
            "--field",
            "interest=solar panels",
        ],
    );
    assert_eq!(outcome["disposition"], "answered", "{outcome}\n{}", tail(&bot.log(), 30));
    assert_eq!(outcome["sip_status"], 200);
    let result = &outcome["script"];
    let call_id = result["call_id"].as_str().unwrap().to_string();
    assert!(!call_id.is_empty(), "{outcome}");
    // Nobody answered a question: no intents, the callee said nothing.
    assert_eq!(result["intents"], serde_json::json!([]), "{outcome}");
    assert_eq!(wait_child(&mut sipp, Duration::from_secs(10)), Some(0));
    // The bot's first prompt was under way: it sent RTP, and the call
    // ended with the callee's BYE.
    let log = bot.log();
    assert!(log.contains("outgoing call answered"), "{}", tail(&log, 30));
    let list = bot.wait_records(1, Duration::from_secs(10)).unwrap();
    assert!(list.contains(&call_id), "{list}");
    assert!(list.contains("caller_hangup"), "{list}");
}
