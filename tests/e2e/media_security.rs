//! Media security in live calls: no RTP bleed.
//!
//! sipp calls the bot with `tests/scripts/media-security.yaml` (a menu
//! answered by voice or keys) and keys 1 for the order status. Meanwhile
//! strangers spray RTP at every port of the bot's (small) RTP range: one
//! from another IP for the whole call, one from the caller's own IP on
//! another port once the call has latched, each saying "talk to an agent"
//! (espeak-ng) and keying 0. Neither may receive a byte of the bot's audio,
//! and their audio must reach neither the recording (the caller's channel
//! stays silent) nor the recogniser (the call ends at the order, not at the
//! agent; no caller speech in the transcript); the foreign packets are
//! counted in `voxbridge_rtp_foreign_packets_total` and logged once.
//!
//! A caller behind NAT (its SDP names one port, its RTP comes from another
//! on the same IP) still completes a keyed call.
//!
//! 127.0.0.1/127.0.0.2 only; one call per test, bounded in time.

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use voxbridge_e2e::pcap::{ulaw_encode, PcapBuilder};
use voxbridge_e2e::speech::espeak_8k;
use voxbridge_e2e::{
    free_port, http_get, prom_value, run_sipp, scenario_dir, scratch_dir, tail, workspace_root,
    Bot, BotConfig, SippRun,
};

/// The bleed test's bot's RTP range: 16 even ports, so a stranger can
/// spray them all. Each test has its own range (they run in parallel), out
/// of the ranges `voxbridge_e2e::rtp_range` hands out.
const RTP_MIN: u16 = 50_000;
const RTP_MAX: u16 = 50_031;

fn bot_config(dir: &Path, latching: &str) -> BotConfig {
    let script = workspace_root().join("tests/scripts/media-security.yaml");
    BotConfig {
        rtp: format!("latching: {latching}\n"),
        more: format!(
            "dialog:\n  script: {}\ncdr:\n  path: {}\nrecording:\n  enabled: true\n  dir: {}\n",
            script.display(),
            dir.join("cdr.sqlite").display(),
            dir.join("recordings").display(),
        ),
        ..BotConfig::default()
    }
}

/// Start a bot whose RTP range is `ports` (the helper writes its own range
/// first and a second `port_min:` would be refused, so override through
/// the environment).
fn start_bot(name: &str, dir: &Path, latching: &str, ports: (u16, u16)) -> Bot {
    let mut cfg = bot_config(dir, latching);
    cfg.env = vec![
        ("VOXBRIDGE_RTP_PORT_MIN".into(), ports.0.to_string()),
        ("VOXBRIDGE_RTP_PORT_MAX".into(), ports.1.to_string()),
    ];
    let bot = Bot::start(name, &cfg).expect("bot starts");
    bot.wait_for_log("calls run the dialog script", Duration::from_secs(30))
        .expect("the script loads");
    bot
}

/// A stranger: sends `audio` (8 kHz PCM, μ-law) as RTP from `socket` to
/// every even port of the bot's range, 20 ms a packet, with a key press
/// among it, until `stop`; counts every datagram it receives.
struct Stranger {
    stop: Arc<AtomicBool>,
    handle: thread::JoinHandle<(u64, u64)>,
}

impl Stranger {
    fn start(bind: &str, bot_ip: &str, audio: Vec<i16>, delay: Duration) -> Stranger {
        let socket = UdpSocket::bind(bind).expect("stranger binds");
        socket
            .set_read_timeout(Some(Duration::from_millis(1)))
            .unwrap();
        let targets: Vec<SocketAddr> = (RTP_MIN..=RTP_MAX)
            .step_by(2)
            .map(|p| format!("{bot_ip}:{p}").parse().unwrap())
            .collect();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = thread::spawn(move || {
            thread::sleep(delay);
            let (mut sent, mut received) = (0u64, 0u64);
            let mut buf = [0u8; 2048];
            let start = Instant::now();
            let mut frame = 0u32;
            while !flag.load(Ordering::Relaxed) {
                let chunk = (frame as usize * 160) % audio.len().max(1);
                // A key press (0) every 50th frame, as RFC 4733 events.
                let (pt, payload): (u8, Vec<u8>) = if frame % 50 == 10 {
                    (101, vec![0, 0x80 | 10, 0x03, 0x20])
                } else {
                    let end = (chunk + 160).min(audio.len());
                    let mut p: Vec<u8> =
                        audio[chunk..end].iter().map(|&s| ulaw_encode(s)).collect();
                    p.resize(160, 0xFF);
                    (0, p)
                };
                let mut packet = vec![0x80, pt];
                packet.extend_from_slice(&(frame as u16).to_be_bytes());
                packet.extend_from_slice(&(frame * 160).to_be_bytes());
                packet.extend_from_slice(&0x0BAD_F00Du32.to_be_bytes());
                packet.extend_from_slice(&payload);
                for to in &targets {
                    if socket.send_to(&packet, to).is_ok() {
                        sent += 1;
                    }
                }
                while socket.recv_from(&mut buf).is_ok() {
                    received += 1;
                }
                frame += 1;
                let next = start + Duration::from_millis(20) * frame;
                if let Some(wait) = next.checked_duration_since(Instant::now()) {
                    thread::sleep(wait);
                }
            }
            (sent, received)
        });
        Stranger { stop, handle }
    }

    /// Stop; (packets sent, datagrams received).
    fn finish(self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().expect("stranger thread")
    }
}

/// The caller: three seconds of silence (the prompt plays), key 1, then
/// silence until the bot hangs up.
fn caller_pcap(dir: &Path) -> PathBuf {
    let pcap = dir.join("caller.pcap");
    PcapBuilder::new()
        .silence(3000)
        .digits("1", 100, 200)
        .silence(12_000)
        .write(&pcap)
        .unwrap();
    pcap
}

fn sipp_call(dir: &Path, bot: &Bot, scenario: &str, pcap: &Path, extra: &[&str]) -> SippRun {
    let port = free_port().unwrap().to_string();
    let media_port = free_port().unwrap().to_string();
    let target = bot.addr.to_string();
    let scenario = scenario_dir().join(scenario);
    let pcap_arg = pcap.display().to_string();
    let mut args = vec![
        "-sf",
        scenario.to_str().unwrap(),
        &target,
        "-i",
        "127.0.0.1",
        "-p",
        &port,
        "-mp",
        &media_port,
        "-set",
        "caller",
        "+15550001234",
        "-set",
        "wait_ms",
        "0",
        "-key",
        "pcap",
        &pcap_arg,
        "-m",
        "1",
        "-timeout",
        "40s",
        "-timeout_error",
    ];
    args.extend_from_slice(extra);
    run_sipp(dir, &args, Duration::from_secs(60)).expect("sipp runs")
}

/// The one call record: (call_id, end_reason, dtmf, recording path).
fn call_record(dir: &Path) -> (String, String, String, Option<String>) {
    let start = Instant::now();
    loop {
        let row = rusqlite::Connection::open(dir.join("cdr.sqlite")).and_then(|db| {
            db.query_row(
                "SELECT call_id, end_reason, dtmf, recording_path FROM calls",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
        });
        match row {
            Ok(row) => return row,
            Err(e) if start.elapsed() > Duration::from_secs(10) => panic!("no call record: {e}"),
            Err(_) => thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// The recording's two channels: (caller, bot).
fn channels(path: &Path) -> (Vec<i16>, Vec<i16>) {
    let mut reader = hound::WavReader::open(path).expect("recording opens");
    assert_eq!(reader.spec().channels, 2, "stereo recording");
    let all: Vec<i16> = reader.samples::<i16>().map(|s| s.unwrap()).collect();
    let left = all.iter().step_by(2).copied().collect();
    let right = all.iter().skip(1).step_by(2).copied().collect();
    (left, right)
}

fn rms(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let sum: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (sum / samples.len() as f64).sqrt()
}

/// The bot's transcript of `call_id`: (speaker, text).
fn transcript(bot: &Bot, call_id: &str) -> Vec<(String, String)> {
    let (status, body) = http_get(bot.admin, &format!("/calls/{call_id}")).expect("admin HTTP");
    assert_eq!(status, 200, "no transcript for {call_id}: {body}");
    let view: serde_json::Value = serde_json::from_str(&body).expect("transcript JSON");
    view["transcript"]
        .as_array()
        .expect("transcript lines")
        .iter()
        .map(|l| {
            (
                l["speaker"].as_str().unwrap_or("").to_string(),
                l["text"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn lines_of(transcript: &[(String, String)], speaker: &str) -> Vec<String> {
    transcript
        .iter()
        .filter(|(s, _)| s == speaker)
        .map(|(_, t)| t.clone())
        .collect()
}

#[test]
fn strangers_spraying_rtp_neither_hear_the_call_nor_get_into_it() {
    let dir = scratch_dir("media_security_bleed").unwrap();
    let bot = start_bot("media_security_bleed_bot", &dir, "nat", (RTP_MIN, RTP_MAX));
    let agent =
        espeak_8k("talk to an agent. talk to an agent.", "en-us").expect("espeak-ng speaks");
    assert!(rms(&agent) > 1000.0, "the stranger's audio is loud");
    let bot_ip = bot.addr.ip().to_string();
    // Another IP, from before the call starts: can never latch.
    let far = Stranger::start("127.0.0.2:0", &bot_ip, agent.clone(), Duration::ZERO);
    // The caller's own IP, once the caller's RTP has latched (its pcap
    // starts at the answer): must not take the call over.
    let near = Stranger::start("127.0.0.1:0", &bot_ip, agent, Duration::from_millis(1500));
    let pcap = caller_pcap(&dir);
    let sipp_dir = scratch_dir("media_security_bleed_sipp").unwrap();
    let run = sipp_call(&sipp_dir, &bot, "uac_speech_keys.xml", &pcap, &[]);
    let (far_sent, far_received) = far.finish();
    let (near_sent, near_received) = near.finish();
    let (call_id, end_reason, dtmf, recording) = call_record(&dir);
    let said = transcript(&bot, &call_id);
    let metrics = bot.wait_metric("voxbridge_rtp_foreign_packets_total", -1.0, Duration::ZERO);
    let log = bot.stop().expect("bot stops");
    assert_eq!(
        run.status,
        Some(0),
        "{}\n{}",
        run.describe(),
        tail(&log, 30)
    );
    assert!(
        far_sent > 500 && near_sent > 300,
        "{far_sent} / {near_sent} sent"
    );
    assert_eq!(far_received, 0, "the stranger on another IP heard the call");
    assert_eq!(
        near_received, 0,
        "the stranger on the caller's IP heard the call"
    );

    // The caller's key, not the strangers' 0 or their "agent".
    assert_eq!(dtmf, "1", "{}", tail(&log, 30));
    assert_eq!(end_reason, "bot_hangup", "{}", tail(&log, 30));
    let bot_lines = lines_of(&said, "bot");
    assert!(
        bot_lines
            .iter()
            .any(|l| l.contains("Your order is on its way")),
        "the call did not go to the order: {said:?}"
    );
    assert!(
        bot_lines.iter().all(|l| !l.contains("Transferring")),
        "{said:?}"
    );
    let caller_lines = lines_of(&said, "caller");
    assert!(
        caller_lines.iter().all(|l| !l.contains("agent")),
        "the stranger was recognised: {said:?}"
    );

    // The recording: the caller's channel holds the caller's silence.
    let (caller, bot_side) = channels(Path::new(&recording.expect("a recording")));
    assert!(caller.len() > 8000 * 3, "{} samples", caller.len());
    assert!(rms(&bot_side) > 300.0, "the bot's prompt is recorded");
    let loudest = caller.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0);
    assert!(
        rms(&caller) < 50.0 && loudest < 1000,
        "stranger audio in the recording: RMS {:.0}, peak {loudest}",
        rms(&caller)
    );

    // Counted, and logged once for the call, not per packet.
    let foreign = prom_value(&metrics, "voxbridge_rtp_foreign_packets_total").unwrap_or(0.0);
    assert!(foreign > 300.0, "foreign packets counted: {foreign}");
    let logged = log.matches("dropping RTP from a foreign source").count();
    assert_eq!(logged, 1, "{}", tail(&log, 30));
}

#[test]
fn a_caller_behind_nat_still_completes_a_keyed_call() {
    let dir = scratch_dir("media_security_nat").unwrap();
    let bot = start_bot("media_security_nat_bot", &dir, "nat", (50_100, 50_199));
    // The port the SDP names: a socket nobody sends from, as behind NAT.
    let advertised = UdpSocket::bind("127.0.0.1:0").unwrap();
    let sdp_port = advertised.local_addr().unwrap().port().to_string();
    let pcap = caller_pcap(&dir);
    let sipp_dir = scratch_dir("media_security_nat_sipp").unwrap();
    let run = sipp_call(
        &sipp_dir,
        &bot,
        "uac_nat.xml",
        &pcap,
        &["-set", "sdp_port", &sdp_port],
    );
    let (call_id, end_reason, dtmf, recording) = call_record(&dir);
    let said = transcript(&bot, &call_id);
    let log = bot.stop().expect("bot stops");
    assert_eq!(
        run.status,
        Some(0),
        "{}\n{}",
        run.describe(),
        tail(&log, 30)
    );
    assert_eq!(dtmf, "1", "{}", tail(&log, 30));
    assert_eq!(end_reason, "bot_hangup", "{}", tail(&log, 30));
    assert!(
        lines_of(&said, "bot")
            .iter()
            .any(|l| l.contains("Your order is on its way")),
        "{said:?}"
    );
    // The bot's prompts went to the NAT'd source once it latched: the
    // advertised port got at most the first packets before the caller's.
    advertised
        .set_read_timeout(Some(Duration::from_millis(1)))
        .unwrap();
    let mut buf = [0u8; 2048];
    let mut early = 0;
    while advertised.recv_from(&mut buf).is_ok() {
        early += 1;
    }
    assert!(
        early < 25,
        "{early} packets went to the SDP port after latching"
    );
    let (_, bot_side) = channels(Path::new(&recording.expect("a recording")));
    assert!(rms(&bot_side) > 300.0, "the bot's prompts are recorded");
}

#[test]
fn strict_latching_refuses_the_nat_port() {
    let dir = scratch_dir("media_security_strict").unwrap();
    let bot = start_bot(
        "media_security_strict_bot",
        &dir,
        "strict",
        (50_200, 50_299),
    );
    let advertised = UdpSocket::bind("127.0.0.1:0").unwrap();
    let sdp_port = advertised.local_addr().unwrap().port().to_string();
    let pcap = caller_pcap(&dir);
    let sipp_dir = scratch_dir("media_security_strict_sipp").unwrap();
    let run = sipp_call(
        &sipp_dir,
        &bot,
        "uac_nat.xml",
        &pcap,
        &["-set", "sdp_port", &sdp_port],
    );
    let (_, _, dtmf, _) = call_record(&dir);
    let log = bot.stop().expect("bot stops");
    // The key came from a port the SDP did not name: not heard, so the
    // menu times out and the bot says goodbye.
    assert_eq!(
        run.status,
        Some(0),
        "{}\n{}",
        run.describe(),
        tail(&log, 30)
    );
    assert_eq!(dtmf, "", "{}", tail(&log, 30));
    assert_eq!(log.matches("dropping RTP from a foreign source").count(), 1);
}
