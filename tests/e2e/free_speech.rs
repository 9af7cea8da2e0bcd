//! Free speech in live calls on the real whisper tiny.en (installed by
//! `scripts/install-models-deps.sh`): sipp calls the bot with
//! `tests/scripts/free-speech-booking.yaml` and streams a caller (espeak-ng,
//! G.711 μ-law) who says what went wrong in their own words, then books a
//! delivery "tomorrow". The bot's call log (the embedded CRM) must hold the
//! complaint as heard, without a repetition loop, and tomorrow's date in
//! the configured `calls.time_zone`.
//!
//! 127.0.0.1 only; one call, bounded in time.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use voxbridge_e2e::pcap::PcapBuilder;
use voxbridge_e2e::speech::espeak_8k;
use voxbridge_e2e::{
    free_port, run_sipp, scenario_dir, scratch_dir, tail, workspace_root, Bot, BotConfig,
};

/// Li Wei (C001) in the demo CRM.
const CALLER: &str = "+8613800138000";
/// UTC+14 all year: its date is a day ahead of UTC's for 14 hours of each
/// day, so a bot that ignored the zone would book the wrong day then.
const ZONE: &str = "Pacific/Kiritimati";

const PROBLEM: &str = "my blender stopped working after two days";
const WHEN: &str = "tomorrow please";

/// Tomorrow in `zone`, by coreutils `date` (not by the bot's own code).
fn tomorrow_in(zone: &str) -> String {
    let out = Command::new("date")
        .env("TZ", zone)
        .args(["-d", "tomorrow", "+%F"])
        .output()
        .expect("running date");
    assert!(out.status.success(), "date failed");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The call log the bot delivered to the embedded CRM, as JSON.
fn call_log(dir: &Path) -> Option<serde_json::Value> {
    let db = rusqlite::Connection::open(dir.join("crm.sqlite")).ok()?;
    let record: String = db
        .query_row("SELECT record FROM call_logs LIMIT 1", [], |r| r.get(0))
        .ok()?;
    serde_json::from_str(&record).ok()
}

#[test]
fn caller_describes_a_problem_and_books_tomorrow_by_voice() {
    let model = voxbridge_models::manifest::installed_whisper_path();
    assert!(
        model.exists(),
        "{} is missing: install the real tiny.en with scripts/install-models-deps.sh",
        model.display()
    );
    let dir = scratch_dir("free_speech").unwrap();
    // Greeting prompt, the problem, silence while whisper hears it and the
    // bot asks for the day, the day, then silence until the bot hangs up.
    let pcap = dir.join("caller.pcap");
    PcapBuilder::new()
        .silence(3500)
        .speech(&espeak_8k(PROBLEM, "en-us").expect("espeak-ng speaks"))
        .silence(9000)
        .speech(&espeak_8k(WHEN, "en-us").expect("espeak-ng speaks"))
        .silence(12_000)
        .write(&pcap)
        .unwrap();

    let crm_config = voxbridge_e2e::embedded_crm(&dir).expect("writing the CRM config");
    let script = workspace_root().join("tests/scripts/free-speech-booking.yaml");
    let cfg = BotConfig {
        more: format!(
            "crm:\n  config: {}\ndialog:\n  script: {}\ncdr:\n  path: {}\ncalls:\n  time_zone: {ZONE}\nspeech:\n  whisper_model: {}\n  asr_timeout_ms: 8000\n",
            crm_config.display(),
            script.display(),
            dir.join("cdr.sqlite").display(),
            model.display(),
        ),
        ..BotConfig::default()
    };
    let bot = Bot::start("free_speech_bot", &cfg).expect("bot starts");
    bot.wait_for_log("calls run the dialog script", Duration::from_secs(30))
        .expect("the script and the whisper model load");
    let before = tomorrow_in(ZONE);

    let sipp_dir = scratch_dir("free_speech_sipp").unwrap();
    let port = free_port().unwrap().to_string();
    let target = bot.addr.to_string();
    let scenario = scenario_dir().join("uac_speech_keys.xml");
    let pcap_arg = pcap.display().to_string();
    let run = run_sipp(
        &sipp_dir,
        &[
            "-sf",
            scenario.to_str().unwrap(),
            &target,
            "-i",
            "127.0.0.1",
            "-p",
            &port,
            "-mp",
            "53000",
            "-set",
            "caller",
            CALLER,
            "-set",
            "wait_ms",
            "0",
            "-key",
            "pcap",
            &pcap_arg,
            "-m",
            "1",
            "-timeout",
            "60s",
            "-timeout_error",
        ],
        Duration::from_secs(80),
    )
    .expect("sipp runs");
    let after = tomorrow_in(ZONE);
    let mut logged = None;
    for _ in 0..100 {
        logged = call_log(&dir);
        if logged.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = bot.stop().expect("bot stops");
    assert_eq!(
        run.status,
        Some(0),
        "{}\n{}",
        run.describe(),
        tail(&log, 30)
    );
    assert!(!log.contains("panicked"), "{}", tail(&log, 30));
    let logged = logged.unwrap_or_else(|| panic!("no call log in the CRM\n{}", tail(&log, 30)));
    let transcript = logged["transcript"].as_array().cloned().unwrap_or_default();
    let caller_lines: Vec<String> = transcript
        .iter()
        .filter(|t| t["speaker"] == "caller")
        .filter_map(|t| t["text"].as_str().map(str::to_string))
        .collect();
    eprintln!(
        "caller heard as: {caller_lines:?}; slots {}",
        logged["slots"]
    );

    // The complaint, in the caller's words, once.
    let problem = logged["slots"]["problem"].as_str().unwrap_or_default();
    let lower = problem.to_lowercase();
    assert!(
        lower.contains("stopped working") && lower.contains("days"),
        "the complaint as heard: {problem:?}; caller lines {caller_lines:?}"
    );
    let words = problem.split_whitespace().count();
    assert!(
        words <= 2 * PROBLEM.split_whitespace().count(),
        "a repetition loop: {problem:?}"
    );
    // Tomorrow in the configured zone.
    let booked = logged["slots"]["delivery_date"]
        .as_str()
        .unwrap_or_default();
    assert!(
        booked == before || booked == after,
        "booked {booked:?}, tomorrow in {ZONE} is {after}; caller lines {caller_lines:?}"
    );
    assert_eq!(logged["disposition"], "resolved", "{logged}");
    let bot_lines: Vec<&str> = transcript
        .iter()
        .filter(|t| t["speaker"] == "bot")
        .filter_map(|t| t["text"].as_str())
        .collect();
    assert!(
        bot_lines.contains(&format!("Booked for {booked}.").as_str()),
        "{bot_lines:?}"
    );
}
