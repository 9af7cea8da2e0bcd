//! Calls the engine places (`POST /calls` through `voxbridge dial`), each
//! against a sipp callee from `tests/scenarios/callee-*.xml` on loopback:
//! busy, not found, never answering (we CANCEL at the ring timeout, after
//! early media), and answering then hanging up mid-prompt. Each asserts the
//! disposition the engine reports and what sipp saw.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use voxbridge_e2e::pcap::PcapBuilder;
use voxbridge_e2e::speech::espeak_8k;
use voxbridge_e2e::{
    free_port, prom_value, scratch_dir, tail, voxbridge_bin, wait_child, workspace_root, Bot,
    BotConfig,
};

fn script() -> PathBuf {
    workspace_root().join("fixtures/scripts/outbound-follow-up.yaml")
}

/// A bot that runs the follow-up script (so its text to speech is up).
fn bot(name: &str) -> Bot {
    bot_with(name, "")
}

fn bot_with(name: &str, more: &str) -> Bot {
    let dir = scratch_dir(&format!("{name}_cdr")).unwrap();
    let cfg = BotConfig {
        more: format!(
            "dialog:\n  script: {}\ncdr:\n  path: {}\nspeech:\n  grammar: true\n{more}",
            script().display(),
            dir.join("cdr.sqlite").display()
        ),
        ..BotConfig::default()
    };
    Bot::start(name, &cfg).unwrap()
}

/// One sipp callee for one call, its messages traced; its SIP port.
fn callee(dir: &Path, scenario: &str) -> (Child, u16) {
    callee_with(dir, scenario, &[])
}

fn callee_with(dir: &Path, scenario: &str, extra: &[&str]) -> (Child, u16) {
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
        .args(extra)
        .args(["-timeout", "60s", "-trace_msg", "-message_file"])
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
        .args([
            "dial",
            number,
            "--admin",
            &admin,
            "--caller-id",
            "+15550100",
        ])
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
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
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
    assert!(
        log.contains("P-Asserted-Identity: <sip:+15550100@"),
        "{log}"
    );
    let metrics = bot.wait_metric(
        &format!("voxbridge_outbound_dispositions_total{{disposition=\"{disposition}\"}}"),
        1.0,
        Duration::from_secs(5),
    );
    assert_eq!(
        prom_value(&metrics, "voxbridge_outbound_attempts_total"),
        Some(1.0)
    );
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
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(10),
        "{took:?}"
    );
    assert_eq!(wait_child(&mut sipp, Duration::from_secs(10)), Some(0));
    let log = messages(&dir);
    assert!(log.contains("CANCEL sip:+15550199@"), "{log}");
    let metrics = bot.wait_metric(
        "voxbridge_outbound_cancelled_total",
        1.0,
        Duration::from_secs(5),
    );
    // The 183 carried SDP: early media was seen.
    assert_eq!(
        prom_value(&metrics, "voxbridge_outbound_early_media_total"),
        Some(1.0)
    );
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
    assert_eq!(
        outcome["disposition"],
        "answered",
        "{outcome}\n{}",
        tail(&bot.log(), 30)
    );
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

/// The callee answers and speaks: the bot greets the CRM's customer (C005,
/// Alice Johnson, looked up by the request's customer id) by name, asks
/// whether it speaks with her, hears "no" (espeak-ng through the pcap) and
/// ends the call as the script says. The script's result comes back to the
/// dialler, and the CRM call log is written through the outbox.
#[test]
fn an_answered_call_runs_the_script_and_reports_its_result() {
    let dir = scratch_dir("out_speak_crm").unwrap();
    let crm_config = voxbridge_e2e::embedded_crm(&dir).expect("writing the CRM config");
    let bot = bot_with(
        "out_speak",
        &format!(
            "crm:\n  config: {}\n  lookup_budget_ms: 3000\n",
            crm_config.display()
        ),
    );
    // The bot's greeting and question take about five seconds.
    let pcap = dir.join("callee.pcap");
    PcapBuilder::new()
        .silence(6500)
        .speech(&espeak_8k("No.", "en-us").expect("espeak-ng speaks"))
        .silence(8000)
        .write(&pcap)
        .unwrap();
    let pcap_arg = pcap.display().to_string();
    let (mut sipp, port) = callee_with(
        &dir,
        "callee-answer-speak.xml",
        &["-key", "pcap", &pcap_arg],
    );
    let outcome = dial(
        &bot,
        &format!("sip:+15551234567@127.0.0.1:{port}"),
        &["--customer", "C005", "--field", "interest=solar panels"],
    );
    assert_eq!(
        outcome["disposition"],
        "answered",
        "{outcome}\n{}",
        tail(&bot.log(), 30)
    );
    let result = &outcome["script"];
    // A yes/no answer fills its slot; it is no intent.
    assert_eq!(
        result["transcript"],
        serde_json::json!(["no"]),
        "{outcome}\n{}",
        tail(&bot.log(), 40)
    );
    assert_eq!(result["slots"]["right_person"], "false", "{outcome}");
    assert_eq!(result["intents"], serde_json::json!([]), "{outcome}");
    assert_eq!(result["slots"]["result"], "wrong_person", "{outcome}");
    assert_eq!(result["stop_calling"], false);
    assert_eq!(wait_child(&mut sipp, Duration::from_secs(10)), Some(0));
    let log = bot.log();
    assert!(log.contains("customer=C005"), "{}", tail(&log, 30));
    assert!(
        log.contains("call log queued for the CRM"),
        "{}",
        tail(&log, 30)
    );
    let call_id = result["call_id"].as_str().unwrap().to_string();
    // Delivered by the outbox worker to the embedded CRM.
    let crm = rusqlite::Connection::open(dir.join("crm.sqlite")).unwrap();
    let start = Instant::now();
    let row = loop {
        let row: Option<(Option<String>, String)> = crm
            .query_row(
                "SELECT customer_id, disposition FROM call_logs WHERE call_id = ?1",
                [&call_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .ok();
        if row.is_some() || start.elapsed() > Duration::from_secs(15) {
            break row;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let (customer, disposition) = row.expect("the call log reached the CRM");
    assert_eq!(customer.as_deref(), Some("C005"));
    assert_eq!(disposition, "wrong_person");
}
