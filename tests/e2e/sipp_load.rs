//! sipp's built-in `uac` scenario against the real binary: 2,000 calls at
//! 200 calls/s, every one answered and released.

use std::time::Duration;

use voxbridge_e2e::{free_port, run_sipp, scratch_dir, summary_metric, tail, Bot, BotConfig};

#[test]
fn two_thousand_calls_at_200_per_second_all_succeed() {
    let bot = Bot::start("sipp_load", &BotConfig::default()).expect("bot starts");
    let dir = scratch_dir("sipp_load_sipp").unwrap();
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
            "-r",
            "200",
            "-m",
            "2000",
            "-l",
            "400",
            "-timeout",
            "60s",
            "-timeout_error",
        ],
        Duration::from_secs(90),
    )
    .expect("sipp runs");
    assert_eq!(run.status, Some(0), "{}", run.describe());
    let stats = run.stats.expect("sipp wrote its stats file");
    assert_eq!(stats.created, 2000, "{}", run.describe());
    assert_eq!(stats.successful, 2000, "{}", run.describe());
    assert_eq!(stats.failed, 0, "{}", run.describe());

    let log = bot.stop().expect("bot stops on SIGTERM");
    assert!(!log.contains("panicked"), "{}", tail(&log, 30));
    assert_eq!(
        summary_metric(&log, "calls_started"),
        Some(2000),
        "{}",
        tail(&log, 5)
    );
    assert_eq!(
        summary_metric(&log, "ended_caller_hangup"),
        Some(2000),
        "{}",
        tail(&log, 5)
    );
    assert_eq!(
        summary_metric(&log, "calls_active"),
        Some(0),
        "{}",
        tail(&log, 5)
    );
}
