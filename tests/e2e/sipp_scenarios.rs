//! One sipp scenario per signalling case in `tests/sipp/`, each with its own
//! assertions on both sides: CANCEL before answer, BYE from the bot, re-INVITE
//! hold/resume, OPTIONS and unknown methods.

use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use voxbridge_e2e::{
    free_port, run_sipp, scenario_dir, scratch_dir, summary_metric, tail, Bot, BotConfig, SippRun,
};

fn sipp(name: &str, bot: &Bot, scenario: &str, extra: &[&str]) -> SippRun {
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
        "-timeout",
        "40s",
        "-timeout_error",
    ];
    args.extend_from_slice(extra);
    run_sipp(&dir, &args, Duration::from_secs(60)).expect("sipp runs")
}

fn assert_all_ok(run: &SippRun, calls: u64) {
    assert_eq!(run.status, Some(0), "{}", run.describe());
    let stats = run.stats.expect("stats file");
    assert_eq!(stats.successful, calls, "{}", run.describe());
    assert_eq!(stats.failed, 0, "{}", run.describe());
}

#[test]
fn cancel_before_answer_gets_487() {
    let cfg = BotConfig {
        sip: "ring_ms: 3000".into(),
        ..BotConfig::default()
    };
    let bot = Bot::start("cancel", &cfg).unwrap();
    let run = sipp(
        "cancel",
        &bot,
        "cancel.xml",
        &["-m", "10", "-r", "10", "-mp", "47000"],
    );
    assert_all_ok(&run, 10);
    let log = bot.stop().unwrap();
    assert_eq!(
        summary_metric(&log, "ended_caller_cancel"),
        Some(10),
        "{}",
        tail(&log, 20)
    );
    assert_eq!(summary_metric(&log, "calls_active"), Some(0));
}

#[test]
fn bot_sends_bye_when_rtp_stops() {
    let cfg = BotConfig {
        rtp: "inactivity_timeout_secs: 2".into(),
        ..BotConfig::default()
    };
    let bot = Bot::start("rtp_timeout", &cfg).unwrap();
    let started = Instant::now();
    let run = sipp(
        "rtp_timeout",
        &bot,
        "rtp_timeout.xml",
        &["-m", "5", "-r", "5", "-l", "5", "-mp", "47200"],
    );
    assert_all_ok(&run, 5);
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "BYE came before the timeout"
    );
    let log = bot.stop().unwrap();
    assert_eq!(
        summary_metric(&log, "ended_rtp_timeout"),
        Some(5),
        "{}",
        tail(&log, 20)
    );
    assert!(log.contains("no RTP from the caller"), "{}", tail(&log, 20));
}

#[test]
fn options_gets_200_and_unknown_methods_get_501_and_405() {
    let bot = Bot::start("options", &BotConfig::default()).unwrap();
    let run = sipp("options", &bot, "options.xml", &["-m", "3", "-r", "3"]);
    assert_all_ok(&run, 3);
    let log = bot.stop().unwrap();
    assert_eq!(
        summary_metric(&log, "sip_unknown_method"),
        Some(3),
        "{}",
        tail(&log, 20)
    );
    assert_eq!(summary_metric(&log, "calls_started"), Some(0));
}

#[test]
fn sip_info_dtmf_is_collected() {
    let bot = Bot::start("info_dtmf", &BotConfig::default()).unwrap();
    let run = sipp(
        "info_dtmf",
        &bot,
        "info_dtmf.xml",
        &["-m", "5", "-r", "5", "-l", "5", "-mp", "47400"],
    );
    assert_all_ok(&run, 5);
    let log = bot.stop().unwrap();
    assert_eq!(log.matches("digits=31").count(), 5, "{}", tail(&log, 30));
    assert_eq!(summary_metric(&log, "dtmf_digits"), Some(15));
    assert_eq!(summary_metric(&log, "ended_bot_hangup"), Some(5));
}

#[test]
fn calls_over_tcp_succeed() {
    let bot = Bot::start("tcp", &BotConfig::default()).unwrap();
    let dir = scratch_dir("tcp_sipp").unwrap();
    let port = free_port().unwrap().to_string();
    let target = bot.addr.to_string();
    let run = run_sipp(
        &dir,
        &[
            "-sn",
            "uac",
            &target,
            "-t",
            "t1",
            "-i",
            "127.0.0.1",
            "-p",
            &port,
            "-m",
            "20",
            "-r",
            "20",
            "-timeout",
            "30s",
            "-timeout_error",
        ],
        Duration::from_secs(45),
    )
    .unwrap();
    assert_all_ok(&run, 20);
    let log = bot.stop().unwrap();
    assert_eq!(
        summary_metric(&log, "ended_caller_hangup"),
        Some(20),
        "{}",
        tail(&log, 20)
    );
}

/// RTP packets the bot sent to the test's sink: (arrival, seq, ssrc, payload).
type Received = Vec<(Duration, u16, u32, Vec<u8>)>;

#[test]
fn reinvite_hold_and_resume_keep_the_media_stream() {
    let bot = Bot::start("reinvite", &BotConfig::default()).unwrap();
    let sink = UdpSocket::bind("127.0.0.1:0").unwrap();
    sink.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let sink_port = sink.local_addr().unwrap().port().to_string();
    let done = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let reader = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut got: Received = Vec::new();
            let mut buf = [0u8; 2048];
            while !done.load(Ordering::Relaxed) {
                if let Ok((n, _)) = sink.recv_from(&mut buf) {
                    if n >= 12 {
                        let seq = u16::from_be_bytes([buf[2], buf[3]]);
                        let ssrc = u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]);
                        got.push((start.elapsed(), seq, ssrc, buf[12..n].to_vec()));
                    }
                }
            }
            got
        })
    };
    let run = sipp(
        "reinvite",
        &bot,
        "reinvite_hold.xml",
        &["-m", "1", "-set", "sink", &sink_port],
    );
    done.store(true, Ordering::Relaxed);
    let got = reader.join().unwrap();
    assert_all_ok(&run, 1);
    let log = bot.stop().unwrap();
    assert_eq!(
        log.matches("re-INVITE answered").count(),
        2,
        "{}",
        tail(&log, 20)
    );

    // The caller hears the greeting: the first second of μ-law audio is
    // speech, not the codec's silence.
    let mut pcm = Vec::new();
    for packet in got.iter().take(50) {
        voxbridge_media::g711::decode(voxbridge_media::Codec::Pcmu, &packet.3, &mut pcm);
    }
    let rms =
        (pcm.iter().map(|&s| (s as f64).powi(2)).sum::<f64>() / pcm.len().max(1) as f64).sqrt();
    assert!(rms > 300.0, "greeting audio is silent (rms {rms:.0})");

    // Three phases of ~1.5 s: talking, held (bot recvonly: silent), resumed.
    assert!(got.len() > 100, "bot sent RTP: {} packets", got.len());
    let ssrcs: std::collections::HashSet<u32> = got.iter().map(|g| g.2).collect();
    assert_eq!(ssrcs.len(), 1, "one RTP stream for the whole call");
    // The longest silence is the hold: at least a second, and the packet
    // after it continues the sequence exactly.
    let (gap_at, gap) = got
        .windows(2)
        .enumerate()
        .map(|(i, w)| (i, w[1].0 - w[0].0))
        .max_by_key(|(_, d)| *d)
        .unwrap();
    assert!(
        gap >= Duration::from_millis(1000),
        "bot kept sending while held (longest gap {gap:?})"
    );
    assert!(
        gap <= Duration::from_millis(2500),
        "hold lasted too long: {gap:?}"
    );
    let before = got[gap_at].1;
    let after = got[gap_at + 1].1;
    assert_eq!(
        after,
        before.wrapping_add(1),
        "sequence continues after resume"
    );
    assert!(
        got.len() - gap_at > 30,
        "bot resumed sending after the second re-INVITE"
    );
}
