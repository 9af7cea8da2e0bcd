//! Callers that speak and key digits: sipp streams G.711 audio and RFC 4733
//! events recorded in pcaps; the bot must log exactly the digits sent, once
//! per call, for every call, and hang up itself.

use std::collections::HashSet;
use std::time::Duration;

use voxbridge_e2e::{
    free_port, run_sipp, scenario_dir, scratch_dir, summary_metric, tail, Bot, BotConfig,
};

const CALLS: usize = 50;

#[test]
fn fifty_calls_each_log_exactly_the_digits_sent() {
    let bot = Bot::start("sipp_dtmf", &BotConfig::default()).expect("bot starts");
    let dir = scratch_dir("sipp_dtmf_sipp").unwrap();
    let port = free_port().unwrap().to_string();
    let target = bot.addr.to_string();
    let scenario = scenario_dir().join("uac_dtmf.xml");
    let calls = CALLS.to_string();
    let run = run_sipp(
        &dir,
        &[
            "-sf",
            scenario.to_str().unwrap(),
            &target,
            "-i",
            "127.0.0.1",
            "-p",
            &port,
            "-mp",
            "46000",
            "-r",
            "10",
            "-m",
            &calls,
            "-l",
            &calls,
            "-timeout",
            "60s",
            "-timeout_error",
        ],
        Duration::from_secs(90),
    )
    .expect("sipp runs");
    assert_eq!(run.status, Some(0), "{}", run.describe());
    let stats = run.stats.expect("stats file");
    assert_eq!(stats.successful as usize, CALLS, "{}", run.describe());
    assert_eq!(stats.failed, 0, "{}", run.describe());

    let log = bot.stop().expect("bot stops");
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("digits collected"))
        .collect();
    assert_eq!(
        lines.len(),
        CALLS,
        "one digits line per call:\n{}",
        tail(&log, 40)
    );
    let mut call_ids = HashSet::new();
    for line in &lines {
        assert!(line.contains("digits=2558"), "wrong digits: {line}");
        let id = line
            .split("call_id=")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .expect("call_id on the line");
        call_ids.insert(id.to_string());
    }
    assert_eq!(
        call_ids.len(),
        CALLS,
        "digits logged for {CALLS} distinct calls"
    );
    assert_eq!(summary_metric(&log, "ended_bot_hangup"), Some(CALLS as u64));
    assert_eq!(summary_metric(&log, "dtmf_digits"), Some(CALLS as u64 * 5));
}
