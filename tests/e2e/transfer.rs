//! Transfer to a human by REFER. sipp plays the caller so every header of the
//! REFER can be checked and every NOTIFY outcome produced on demand; the
//! baresip test further down does the same with a real phone and a real
//! target.

use std::time::Duration;

use voxbridge_e2e::{
    free_port, prom_value, run_sipp, scenario_dir, scratch_dir, spawn_sipp_uas, tail, wait_child,
    Bot, BotConfig, SippRun,
};

fn transfer_bot(name: &str) -> Bot {
    let cfg = BotConfig {
        flow: "transfer_target: sip:agent@127.0.0.1:5999".into(),
        ..BotConfig::default()
    };
    Bot::start(name, &cfg).unwrap()
}

fn caller(name: &str, bot: &Bot, scenario: &str, calls: &str) -> SippRun {
    caller_with(name, bot, scenario, calls, &[])
}

fn caller_with(name: &str, bot: &Bot, scenario: &str, calls: &str, extra: &[&str]) -> SippRun {
    let dir = scratch_dir(&format!("{name}_sipp")).unwrap();
    let port = free_port().unwrap().to_string();
    let target = bot.addr.to_string();
    let scenario = scenario_dir().join(scenario);
    let mut args = vec![
        "-sf",
        scenario.to_str().unwrap(),
        &target,
        "-i",
        "127.0.0.1",
        "-p",
        &port,
        "-m",
        calls,
        "-r",
        calls,
        "-l",
        calls,
        "-timeout",
        "40s",
        "-timeout_error",
    ];
    args.extend_from_slice(extra);
    run_sipp(&dir, &args, Duration::from_secs(60)).unwrap()
}

#[test]
fn accepted_transfer_carries_context_and_ends_the_bots_leg() {
    let bot = transfer_bot("refer_ok");
    let run = caller("refer_ok", &bot, "refer_accepted.xml", "3");
    assert_eq!(
        run.status,
        Some(0),
        "{}\n{}",
        run.describe(),
        tail(&bot.log(), 20)
    );
    assert_eq!(run.stats.map(|s| s.successful), Some(3));
    // The calls' tasks end just after the caller sees its last answer.
    let metrics = bot.wait_metric(
        "voxbridge_calls_total{outcome=\"transferred\"}",
        3.0,
        Duration::from_secs(10),
    );
    assert_eq!(prom_value(&metrics, "voxbridge_transfers_total"), Some(3.0));
    assert_eq!(
        prom_value(&metrics, "voxbridge_calls_total{outcome=\"transferred\"}"),
        Some(3.0)
    );
    let list = bot.wait_records(3, Duration::from_secs(10)).unwrap();
    let id = list
        .lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap()
        .to_string();
    let show = bot.cli(&["calls", "show", &id]).unwrap();
    assert!(show.contains("end reason:      transferred"), "{show}");
    assert!(
        show.contains("transfer target: sip:agent@127.0.0.1:5999"),
        "{show}"
    );
}

#[test]
fn busy_target_is_reported_to_the_flow_and_the_bot_keeps_the_call() {
    let bot = transfer_bot("refer_busy");
    let run = caller("refer_busy", &bot, "refer_busy.xml", "2");
    assert_eq!(
        run.status,
        Some(0),
        "{}\n{}",
        run.describe(),
        tail(&bot.log(), 20)
    );
    let log = bot.stop().unwrap();
    assert_eq!(
        log.matches("transfer failed; the bot keeps the call")
            .count(),
        2,
        "{}",
        tail(&log, 20)
    );
    assert!(log.contains("target answered 486"));
    assert!(
        log.contains("reason=\"transfer_failed\""),
        "{}",
        tail(&log, 10)
    );
}

#[test]
fn declined_refer_is_reported_and_the_bot_keeps_the_call() {
    let bot = transfer_bot("refer_603");
    let run = caller("refer_603", &bot, "refer_declined.xml", "1");
    assert_eq!(
        run.status,
        Some(0),
        "{}\n{}",
        run.describe(),
        tail(&bot.log(), 20)
    );
    let log = bot.stop().unwrap();
    assert!(log.contains("REFER answered 603"), "{}", tail(&log, 20));
}

fn refer_in_bot(name: &str, accept: bool) -> Bot {
    let cfg = BotConfig {
        flow: "first_digit_timeout_secs: 1".into(),
        more: format!("transfer:\n  accept_incoming_refer: {accept}"),
        ..BotConfig::default()
    };
    Bot::start(name, &cfg).unwrap()
}

#[test]
fn incoming_refer_moves_the_call_to_the_target_despite_a_late_180() {
    let bot = refer_in_bot("refer_in_ok", true);
    let dir = scratch_dir("refer_in_ok_target").unwrap();
    let (mut target, port) = spawn_sipp_uas(&dir, "uas_late180.xml").unwrap();
    let port = port.to_string();
    let run = caller_with(
        "refer_in_ok",
        &bot,
        "refer_in_accepted.xml",
        "1",
        &["-set", "target", &port],
    );
    assert_eq!(
        run.status,
        Some(0),
        "{}\n{}",
        run.describe(),
        tail(&bot.log(), 20)
    );
    // The target got the bot's INVITE, answered (then a stray 180), and the
    // bot ran its flow there and hung up.
    let target_exit = wait_child(&mut target, Duration::from_secs(25));
    let log = bot.stop().unwrap();
    assert_eq!(
        target_exit,
        Some(0),
        "target call completed:\n{}",
        tail(&log, 20)
    );
    assert!(
        log.contains("call moved to the REFER target"),
        "{}",
        tail(&log, 20)
    );
    let messages = std::fs::read_to_string(dir.join("uas-messages.log")).unwrap_or_default();
    assert!(
        messages.contains("INVITE sip:target@127.0.0.1"),
        "{}",
        tail(&messages, 30)
    );
}

#[test]
fn incoming_refer_to_a_busy_target_keeps_the_call() {
    let bot = refer_in_bot("refer_in_busy", true);
    let dir = scratch_dir("refer_in_busy_target").unwrap();
    let (mut target, port) = spawn_sipp_uas(&dir, "uas_busy.xml").unwrap();
    let port = port.to_string();
    let run = caller_with(
        "refer_in_busy",
        &bot,
        "refer_in_busy.xml",
        "1",
        &["-set", "target", &port],
    );
    let _ = wait_child(&mut target, Duration::from_secs(5));
    assert_eq!(
        run.status,
        Some(0),
        "{}\n{}",
        run.describe(),
        tail(&bot.log(), 20)
    );
    let log = bot.stop().unwrap();
    assert!(
        log.contains("REFER target not reached; keeping the call"),
        "{}",
        tail(&log, 20)
    );
}

#[test]
fn incoming_refer_is_declined_unless_configured() {
    let bot = refer_in_bot("refer_in_off", false);
    let run = caller_with(
        "refer_in_off",
        &bot,
        "refer_in_declined.xml",
        "1",
        &["-set", "target", "9"],
    );
    assert_eq!(
        run.status,
        Some(0),
        "{}\n{}",
        run.describe(),
        tail(&bot.log(), 20)
    );
    let log = bot.stop().unwrap();
    assert!(
        log.contains("incoming REFER declined"),
        "{}",
        tail(&log, 20)
    );
}
