//! Load through the whole pipeline: sipp places 200 calls, 50 at a time,
//! each streaming a caller who says "where is my order" (espeak-ng, G.711)
//! and keys the order number. Every call goes through endpointing, the
//! grammar recogniser, the script's intents, the dialog, a lookup in the
//! embedded CRM and cached TTS, and must end the way the script ends it:
//! the bot hangs up with the order's status, the call record says
//! `bot_hangup`, and the CRM has the call log with disposition `resolved`.
//!
//! 127.0.0.1 only; sipp and the bot are bounded in time.

use std::time::{Duration, Instant};

use voxbridge_e2e::load::{caller_pcap_timed, CallerTiming, LOAD_SCRIPT};
use voxbridge_e2e::{
    free_port, http_get, prom_value, run_sipp, scenario_dir, scratch_dir, tail, workspace_root,
    Bot, BotConfig,
};

const CALLS: usize = 200;
const AT_ONCE: usize = 50;
/// Li Wei (C001) in the demo CRM, who owns order SO-1001.
const CALLER: &str = "+8613800138000";

fn metric(text: &str, sample: &str) -> f64 {
    prom_value(text, sample).unwrap_or_else(|| panic!("no {sample} in /metrics"))
}

#[test]
fn two_hundred_spoken_and_keyed_calls_fifty_at_a_time_all_resolve() {
    let dir = scratch_dir("pipeline_load").unwrap();
    let pcap = dir.join("caller.pcap");
    // The caller keys after its speech; the menu takes a key too, so the
    // keys wait until the utterance is surely endpointed and recognised or
    // timed out (asr_timeout_ms below): on a loaded machine recognition
    // took longer than the default 1.5 s pause, the "1" answered the menu
    // first and the call went on without its spoken turn.
    let timing = CallerTiming {
        after_speech_ms: 6500,
        ..CallerTiming::default()
    };
    let caller = caller_pcap_timed("where is my order", "1001#", &timing)
        .expect("espeak-ng speaks (./scripts/install-deps.sh)");
    caller.write(&pcap).unwrap();

    let crm_config = voxbridge_e2e::embedded_crm(&dir).expect("writing the CRM config");
    let cdr = dir.join("cdr.sqlite");
    let script = workspace_root().join(LOAD_SCRIPT);
    // Two cores: one PocketSphinx decoder per core, and a queue long enough
    // that no caller of the 50 is ever refused for a busy recogniser (a
    // refusal would be the no-match prompt, and a different call).
    let cfg = BotConfig {
        more: format!(
            "crm:\n  config: {}\ndialog:\n  script: {}\ncdr:\n  path: {}\ncalls:\n  max_calls: {}\nspeech:\n  grammar_workers: 2\n  asr_queue: {}\n  asr_timeout_ms: 5000",
            crm_config.display(),
            script.display(),
            cdr.display(),
            AT_ONCE * 2,
            AT_ONCE,
        ),
        ..BotConfig::default()
    };
    let bot = Bot::start("pipeline_load_bot", &cfg).expect("bot starts");
    bot.wait_for_log("calls run the dialog script", Duration::from_secs(20))
        .expect("the script and the grammar recogniser load");

    let sipp_dir = scratch_dir("pipeline_load_sipp").unwrap();
    let port = free_port().unwrap().to_string();
    let target = bot.addr.to_string();
    let scenario = scenario_dir().join("uac_speech_keys.xml");
    let pcap_arg = pcap.display().to_string();
    let (calls, at_once) = (CALLS.to_string(), AT_ONCE.to_string());
    let started = Instant::now();
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
            "52000",
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
            &calls,
            "-l",
            &at_once,
            "-r",
            "10",
            "-timeout",
            "180s",
            "-timeout_error",
        ],
        Duration::from_secs(200),
    )
    .expect("sipp runs");
    let took = started.elapsed();
    let (_, metrics) = http_get(bot.admin, "/metrics").expect("metrics");
    let log = bot.stop().expect("bot stops on SIGTERM");

    let busy = metric(&metrics, "voxbridge_asr_busy_total");
    let recognised = metric(&metrics, "voxbridge_asr_recognised_total");
    let no_match = metric(&metrics, "voxbridge_asr_no_match_total");
    let failed = metric(&metrics, "voxbridge_asr_failures_total");
    let speech_turns = metric(
        &metrics,
        "voxbridge_turn_latency_seconds_count{input=\"speech\"}",
    );
    let dtmf_turns = metric(
        &metrics,
        "voxbridge_turn_latency_seconds_count{input=\"dtmf\"}",
    );
    println!(
        "{CALLS} calls ({AT_ONCE} at a time) in {:.1} s; recogniser: {recognised} recognised, \
         {no_match} no-match, {busy} busy, {failed} failed; turns: {speech_turns} speech, {dtmf_turns} dtmf",
        took.as_secs_f64()
    );

    assert_eq!(
        run.status,
        Some(0),
        "{}\n{}",
        run.describe(),
        tail(&log, 30)
    );
    let stats = run.stats.expect("sipp wrote its stats file");
    assert_eq!(stats.created as usize, CALLS, "{}", run.describe());
    assert_eq!(stats.successful as usize, CALLS, "{}", run.describe());
    assert_eq!(stats.failed, 0, "{}", run.describe());
    assert!(!log.contains("panicked"), "{}", tail(&log, 30));

    // Every utterance was recognised, none refused or lost, and every call
    // took one spoken and one keyed turn: the metric counts at least that
    // many, the call records (below) exactly that many per call, since a
    // misheard answer would have added a spoken turn closed by the no-match
    // prompt.
    assert_eq!(busy, 0.0, "recogniser busy under load:\n{}", tail(&log, 30));
    assert_eq!(
        failed,
        0.0,
        "recognition failed under load:\n{}",
        tail(&log, 30)
    );
    assert_eq!(
        no_match,
        0.0,
        "utterances not understood:\n{}",
        tail(&log, 30)
    );
    assert_eq!(recognised as usize, CALLS);
    assert!(speech_turns >= CALLS as f64, "{speech_turns} speech turns");
    assert!(dtmf_turns >= CALLS as f64, "{dtmf_turns} dtmf turns");

    // One call record per call, each ended by the bot, with the keys and
    // one speech and one keyed turn timed.
    let db = rusqlite::Connection::open(&cdr).unwrap();
    let rows: Vec<(String, String, String)> = db
        .prepare("SELECT end_reason, dtmf, COALESCE(turns_json, '') FROM calls")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(rows.len(), CALLS, "call records");
    for (reason, dtmf, turns) in &rows {
        assert_eq!(reason, "bot_hangup", "{dtmf} {turns}");
        assert_eq!(dtmf, "1001", "{reason} {turns}");
        assert_eq!(turns.matches("\"kind\":\"speech\"").count(), 1, "{turns}");
        assert_eq!(turns.matches("\"kind\":\"dtmf\"").count(), 1, "{turns}");
    }

    // The outbox took exactly one call log per call and delivered each.
    let outbox = rusqlite::Connection::open(dir.join("outbox.sqlite")).unwrap();
    let logs: Vec<(String, String)> = outbox
        .prepare("SELECT state, payload FROM outbox WHERE kind = 'call_log'")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(logs.len(), CALLS, "call logs in the outbox");
    for (state, payload) in &logs {
        assert_eq!(state, "delivered", "{payload}");
        assert!(
            payload.contains("\"disposition\":\"resolved\""),
            "{payload}"
        );
    }

    // …and the CRM has them: the caller said what they wanted (the words
    // are the transcript's, so speech, not the menu key, chose the path)
    // and heard the status read from the CRM.
    let crm = rusqlite::Connection::open(dir.join("crm.sqlite")).unwrap();
    let records: Vec<(Option<String>, String, String)> = crm
        .prepare("SELECT customer_id, disposition, record FROM call_logs")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(records.len(), CALLS, "call logs in the CRM");
    for (customer, disposition, record) in &records {
        assert_eq!(customer.as_deref(), Some("C001"), "{record}");
        assert_eq!(disposition, "resolved", "{record}");
        assert!(
            record.contains("\"speaker\":\"caller\",\"text\":\"where is my order\""),
            "{record}"
        );
        assert!(record.contains("Order SO-1001 is shipped."), "{record}");
    }
}
