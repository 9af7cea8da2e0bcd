//! A flood that does not starve real callers: sipp floods OPTIONS and
//! INVITEs from 127.0.0.2 (outside the default rate-limit allowlist) at
//! thousands a second while a normal sipp caller on 127.0.0.1 (allowlisted,
//! as a PBX would be) places 200 calls. Every real call succeeds, the flood
//! is answered 503 or dropped (as sipp saw it and as `/metrics` counts it),
//! the INVITEs it gets through meet the per-source call cap, and the bot's
//! CPU time over the run stays bounded.
//!
//! Bounded: each sipp sends a fixed number of messages (`-m`) and is killed
//! after a timeout; everything is on loopback.

use std::collections::HashMap;
use std::thread;
use std::time::{Duration, Instant};

use voxbridge_e2e::proc_stat::cpu_time;
use voxbridge_e2e::{
    free_port, http_get, prom_value, run_sipp, scenario_dir, scratch_dir, sipp_counts, tail, Bot,
    BotConfig, SippRun,
};

/// Flood rates (messages a second) and lengths (messages). Both floods
/// last about ten seconds, as long as the real caller's 200 calls at 20/s.
const OPTIONS_RATE: u32 = 2000;
const OPTIONS_COUNT: u32 = 20_000;
const INVITE_RATE: u32 = 1000;
const INVITE_COUNT: u32 = 10_000;

/// The bot may use at most this share of one core over the run. What it
/// must do is bounded by its limits, not by the flood: per second about
/// 2,700 datagrams read and classified (a table lookup each), at most the
/// hard limit's 400 of them screened and answered (503 or 200), at most 20
/// of them (the INVITE limit) becoming calls, and the 20 real calls.
/// Measured 2026-12-02 on the 2-core development machine at load average
/// 13–16: 1.2 s of CPU over 11 s (11 %). The bound leaves three times that.
/// With the limits off (`VOXBRIDGE_SIP_RATE_LIMITS_ENABLED=false`) the same
/// flood took 2.7 s (24 %) and starved the real caller (its calls failed,
/// which the first assertion catches); the CPU bound is there for a
/// limiter that decides cheaply but then works per datagram anyway (a log
/// line or a parse for every dropped packet).
const MAX_CPU_SHARE: f64 = 0.35;

/// `sip.rate_limits.max_calls_per_source` for the run (default 32).
const SOURCE_CAP: u32 = 8;

fn flood(name: &str, scenario: &str, target: &str, rate: u32, count: u32) -> SippRun {
    let dir = scratch_dir(name).expect("scratch dir");
    let port = free_port().expect("free port").to_string();
    let rate = rate.to_string();
    let count = count.to_string();
    let sf = scenario_dir().join(scenario).display().to_string();
    run_sipp(
        &dir,
        &[
            "-sf",
            &sf,
            target,
            "-i",
            "127.0.0.2",
            "-p",
            &port,
            // Media port too, so two sipps on 127.0.0.2 never share one.
            "-mp",
            &free_port().expect("free port").to_string(),
            "-r",
            &rate,
            "-m",
            &count,
            "-l",
            "5000",
            // A flood does not retransmit.
            "-nr",
            "-trace_counts",
            "-timeout",
            "40s",
        ],
        Duration::from_secs(60),
    )
    .expect("sipp runs")
}

/// The sum of a sipp counts file's columns ending in `suffix` (one per
/// scenario message of that kind).
fn sum(counts: &HashMap<String, u64>, suffix: &str) -> u64 {
    counts
        .iter()
        .filter(|(k, _)| k.ends_with(suffix))
        .map(|(_, v)| v)
        .sum()
}

/// One column of a sipp counts file.
fn count(counts: &HashMap<String, u64>, column: &str) -> u64 {
    *counts
        .get(column)
        .unwrap_or_else(|| panic!("no column {column} in sipp's counts: {counts:?}"))
}

#[test]
fn a_flood_from_one_source_does_not_starve_200_real_calls() {
    let bot = Bot::start(
        "flood",
        &BotConfig {
            // Low enough that the flood's INVITEs the rate limit lets
            // through (its 40 burst arrive within 40 ms, all in call set-up
            // at once) reach it, so the test sees the cap refuse.
            sip: format!("rate_limits:\n  max_calls_per_source: {SOURCE_CAP}"),
            ..BotConfig::default()
        },
    )
    .expect("bot starts");
    let pid = bot.pid();
    let target = bot.addr.to_string();
    let cpu_before = cpu_time(pid).expect("bot CPU time");
    let started = Instant::now();

    let options = {
        let target = target.clone();
        thread::spawn(move || {
            flood(
                "flood_options",
                "flood_options.xml",
                &target,
                OPTIONS_RATE,
                OPTIONS_COUNT,
            )
        })
    };
    let invites = {
        let target = target.clone();
        thread::spawn(move || {
            flood(
                "flood_invite",
                "flood_invite.xml",
                &target,
                INVITE_RATE,
                INVITE_COUNT,
            )
        })
    };
    // Let the flood empty 127.0.0.2's buckets before the real calls start.
    thread::sleep(Duration::from_secs(1));

    let dir = scratch_dir("flood_caller").expect("scratch dir");
    let port = free_port().expect("free port").to_string();
    let caller = run_sipp(
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
            "20",
            "-m",
            "200",
            "-l",
            "100",
            "-timeout",
            "60s",
            "-timeout_error",
        ],
        Duration::from_secs(90),
    )
    .expect("sipp runs");
    let options = options.join().expect("OPTIONS flood thread");
    let invites = invites.join().expect("INVITE flood thread");
    let wall = started.elapsed();
    let cpu = cpu_time(pid).expect("bot CPU time") - cpu_before;

    let metrics = http_get(bot.admin, "/metrics")
        .map(|(_, t)| t)
        .unwrap_or_default();
    let limited = |method: &str, action: &str| {
        prom_value(
            &metrics,
            &format!("voxbridge_sip_rate_limited_total{{method=\"{method}\",action=\"{action}\"}}"),
        )
        .unwrap_or(0.0) as u64
    };
    let source_busy = prom_value(
        &metrics,
        "voxbridge_calls_refused_total{reason=\"source_busy\"}",
    )
    .unwrap_or(0.0) as u64;
    let o = sipp_counts(&options.dir).expect("OPTIONS flood wrote its counts");
    let i = sipp_counts(&invites.dir).expect("INVITE flood wrote its counts");
    let (o_sent, o_503, o_200) = (
        sum(&o, "_OPTIONS_Sent"),
        sum(&o, "_503_Recv"),
        count(&o, "1_200_Recv"),
    );
    let (i_sent, i_503, i_200) = (
        sum(&i, "_INVITE_Sent"),
        sum(&i, "_503_Recv"),
        count(&i, "4_200_Recv"),
    );
    let share = cpu.as_secs_f64() / wall.as_secs_f64();
    println!(
        "flood: OPTIONS sent {o_sent} ({:.0}/s), answered 200 {o_200}, 503 {o_503}, unanswered {}",
        o_sent as f64 / wall.as_secs_f64(),
        o_sent.saturating_sub(o_200 + o_503)
    );
    println!(
        "flood: INVITE sent {i_sent} ({:.0}/s), answered 200 {i_200}, 503 {i_503}, unanswered {}",
        i_sent as f64 / wall.as_secs_f64(),
        i_sent.saturating_sub(i_200 + i_503)
    );
    println!(
        "bot metrics: options refused {} dropped {}, invite refused {} dropped {}",
        limited("options", "refused"),
        limited("options", "dropped"),
        limited("invite", "refused"),
        limited("invite", "dropped"),
    );
    println!("bot metrics: INVITEs over the per-source call cap ({SOURCE_CAP}) {source_busy}");
    println!(
        "bot CPU {:.2} s over {:.1} s = {:.0}% of one core (bound {:.0}%)",
        cpu.as_secs_f64(),
        wall.as_secs_f64(),
        share * 100.0,
        MAX_CPU_SHARE * 100.0
    );

    // Every real call succeeded.
    let stats = caller.stats.expect("the caller wrote its stats file");
    assert_eq!(caller.status, Some(0), "{}", caller.describe());
    assert_eq!(stats.successful, 200, "{}", caller.describe());
    assert_eq!(stats.failed, 0, "{}", caller.describe());

    // The flood ran at thousands a second and was mostly refused or dropped.
    assert!(options.status.is_some(), "{}", options.describe());
    assert!(invites.status.is_some(), "{}", invites.describe());
    assert_eq!(o_sent, u64::from(OPTIONS_COUNT), "{}", options.describe());
    assert_eq!(i_sent, u64::from(INVITE_COUNT), "{}", invites.describe());
    assert!(o_503 > 0 && i_503 > 0, "the flood got 503s");
    // The bot let through at most each limit's burst plus its rate over
    // the run (OPTIONS 20 + 10/s, INVITE 40 + 20/s, a second of slack) and
    // refused or dropped the rest; every 503 it counted reached sipp (on
    // loopback nothing is lost).
    let secs = wall.as_secs() + 1;
    let (o_pass, i_pass) = (20 + 10 * secs, 40 + 20 * secs);
    assert!(o_200 <= o_pass, "{o_200} OPTIONS answered 200");
    assert!(i_200 <= i_pass, "{i_200} INVITEs answered 200");
    for (method, sent, got_503, pass) in [
        ("options", o_sent, o_503, o_pass),
        ("invite", i_sent, i_503, i_pass),
    ] {
        let (refused, dropped) = (limited(method, "refused"), limited(method, "dropped"));
        // INVITEs through the limiter from a source at its call cap get
        // their 503 from admission instead.
        let capped = if method == "invite" { source_busy } else { 0 };
        assert_eq!(
            refused + capped,
            got_503,
            "{method}: the bot's 503s are sipp's"
        );
        assert!(
            dropped > 0,
            "{method}: the hard limit dropped some of the flood"
        );
        assert!(
            refused + dropped <= sent && refused + dropped + pass >= sent,
            "{method}: {sent} sent, {refused} refused, {dropped} dropped"
        );
    }

    // The per-source cap refused some of what the INVITE limit let in.
    assert!(source_busy > 0, "no INVITE met the per-source call cap");

    assert!(
        share < MAX_CPU_SHARE,
        "bot CPU {:.2} s over {:.1} s",
        cpu.as_secs_f64(),
        wall.as_secs_f64()
    );

    let log = bot.stop().expect("bot stops on SIGTERM");
    assert!(!log.contains("panicked"), "{}", tail(&log, 30));
    // One log line per limited source per minute, not one per datagram.
    let lines = log
        .lines()
        .filter(|l| l.contains("SIP source over its rate limit"))
        .count();
    assert!((1..=2).contains(&lines), "{lines} rate-limit log lines");
}
