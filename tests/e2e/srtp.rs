//! SRTP with SDES keys (RFC 4568) in live calls, with a real phone.
//!
//! baresip (Debian `baresip-core`, its `srtp` module) calls the bot with
//! `tests/scripts/media-security.yaml` (a menu answered by voice or keys):
//!
//! - `mediaenc=srtp-mand` (RTP/SAVP) to a bot with `sip.srtp: required`:
//!   the caller says "where is my order" and the recogniser hears it, the
//!   bot's recording holds the caller's speech and baresip's own recording
//!   (`sndfile`) the bot's prompts, all through SRTP. Meanwhile dumpcap
//!   captures the call's RTP on the loopback: every packet both ways
//!   carries an authentication tag and decrypts with the keys the two SDPs
//!   exchanged, and none carries its audio in the clear.
//! - `mediaenc=srtp` (best effort: RTP/AVP with `a=crypto`) to a bot with
//!   `optional`: SRTP all the same, and a key press (RFC 4733 through SRTP)
//!   picks the menu entry.
//! - A plain-RTP INVITE to the `required` bot gets 488 with a Warning.
//!
//! 127.0.0.1 only; one call per test, bounded in time.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use voxbridge_e2e::baresip::{baresip_available, Baresip};
use voxbridge_e2e::speech::espeak_8k;
use voxbridge_e2e::{
    http_get, prom_value, raw_invite, scratch_dir, tail, workspace_root, Bot, BotConfig,
};
use voxbridge_engine::sdp::sdes::parse_crypto;
use voxbridge_media::{SrtpParams, SrtpSession};

/// Each test's RTP range, apart from the other media tests' ranges.
const RANGES: [(u16, u16); 3] = [(50_400, 50_499), (50_500, 50_599), (50_600, 50_699)];

fn start_bot(name: &str, dir: &Path, srtp: &str, ports: (u16, u16)) -> Bot {
    let script = workspace_root().join("tests/scripts/media-security.yaml");
    let cfg = BotConfig {
        sip: format!("srtp: {srtp}\n"),
        more: format!(
            "dialog:\n  script: {}\ncdr:\n  path: {}\nrecording:\n  enabled: true\n  dir: {}\n",
            script.display(),
            dir.join("cdr.sqlite").display(),
            dir.join("recordings").display(),
        ),
        // The helper writes its own range first; a second `port_min:`
        // would be refused, so override through the environment.
        env: vec![
            ("VOXBRIDGE_RTP_PORT_MIN".into(), ports.0.to_string()),
            ("VOXBRIDGE_RTP_PORT_MAX".into(), ports.1.to_string()),
        ],
        ..BotConfig::default()
    };
    let bot = Bot::start(name, &cfg).expect("bot starts");
    bot.wait_for_log("calls run the dialog script", Duration::from_secs(30))
        .expect("the script loads");
    bot
}

fn write_wav(path: &Path, samples: &[i16], lead_secs: f64, trail_secs: f64) -> PathBuf {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).expect("create WAV");
    let silence = |secs: f64| std::iter::repeat_n(0i16, (secs * 8000.0) as usize);
    for s in silence(lead_secs)
        .chain(samples.iter().copied())
        .chain(silence(trail_secs))
    {
        w.write_sample(s).expect("write WAV");
    }
    w.finalize().expect("finish WAV");
    path.to_path_buf()
}

fn rms(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let sum: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (sum / samples.len() as f64).sqrt()
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
            Err(e) if start.elapsed() > Duration::from_secs(20) => panic!("no call record: {e}"),
            Err(_) => thread::sleep(Duration::from_millis(100)),
        }
    }
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

/// A stereo recording's channels: (caller, bot).
fn channels(path: &Path) -> (Vec<i16>, Vec<i16>) {
    let mut reader = hound::WavReader::open(path).expect("recording opens");
    assert_eq!(reader.spec().channels, 2, "stereo recording");
    let all: Vec<i16> = reader.samples::<i16>().map(|s| s.unwrap()).collect();
    let left = all.iter().step_by(2).copied().collect();
    let right = all.iter().skip(1).step_by(2).copied().collect();
    (left, right)
}

/// A mono WAV's samples.
fn mono(path: &Path) -> Vec<i16> {
    let mut reader = hound::WavReader::open(path).expect("WAV opens");
    reader.samples::<i16>().map(|s| s.unwrap()).collect()
}

/// dumpcap (Wireshark's capture engine, Debian `tshark`) on the loopback,
/// UDP to or from the bot's RTP range, written as classic pcap.
struct Capture {
    child: Child,
    path: PathBuf,
}

impl Capture {
    fn start(dir: &Path, ports: (u16, u16)) -> Capture {
        let path = dir.join("wire.pcap");
        let child = Command::new("dumpcap")
            .args(["-q", "-i", "lo", "-P", "-f"])
            .arg(format!("udp portrange {}-{}", ports.0, ports.1))
            .arg("-w")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("dumpcap runs (Debian tshark; scripts/install-deps.sh)");
        // dumpcap creates the file once the capture is open.
        let start = Instant::now();
        while !path.exists() && start.elapsed() < Duration::from_secs(10) {
            thread::sleep(Duration::from_millis(50));
        }
        assert!(path.exists(), "dumpcap did not start capturing");
        thread::sleep(Duration::from_millis(300));
        Capture { child, path }
    }

    /// Stop and read the UDP datagrams: (source port, destination port, payload).
    fn finish(mut self) -> Vec<(u16, u16, Vec<u8>)> {
        thread::sleep(Duration::from_millis(500));
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        udp_datagrams(&std::fs::read(&self.path).expect("capture file"))
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The UDP datagrams of a classic pcap file of the Linux loopback
/// (Ethernet framing, IPv4).
fn udp_datagrams(file: &[u8]) -> Vec<(u16, u16, Vec<u8>)> {
    assert!(file.len() >= 24, "pcap file too short");
    assert_eq!(&file[..4], &[0xd4, 0xc3, 0xb2, 0xa1], "little-endian pcap");
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= file.len() {
        let caught = u32::from_le_bytes(file[at + 8..at + 12].try_into().unwrap()) as usize;
        let frame = &file[at + 16..(at + 16 + caught).min(file.len())];
        at += 16 + caught;
        // Ethernet (14), then IPv4 with its header length, then UDP (8).
        if frame.len() < 14 + 20 + 8 || frame[12..14] != [0x08, 0x00] || frame[23] != 17 {
            continue;
        }
        let ip = &frame[14..];
        let udp = &ip[usize::from(ip[0] & 0x0f) * 4..];
        let (src, dst) = (
            u16::from_be_bytes([udp[0], udp[1]]),
            u16::from_be_bytes([udp[2], udp[3]]),
        );
        out.push((src, dst, udp[8..].to_vec()));
    }
    out
}

/// The audio port and the `a=crypto` line (the one tagged `tag`, else
/// the first) of the first SDP after `from` in a SIP trace (baresip's
/// `-s` prints every message, both SDPs with them).
fn sdp_key_and_port(trace: &str, from: usize, tag: Option<u32>) -> (SrtpParams, u16, u32) {
    let sdp = &trace[from..];
    let port: u16 = sdp
        .lines()
        .find_map(|l| l.trim().strip_prefix("m=audio "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .expect("an m=audio port");
    let offer = sdp
        .lines()
        .filter_map(|l| l.trim().strip_prefix("a=crypto:"))
        .filter_map(|c| parse_crypto(c).ok())
        .find(|o| tag.is_none_or(|t| o.tag == t))
        .expect("an a=crypto line we can read");
    let params = SrtpParams {
        suite: offer.suite,
        send: offer.key.clone(),
        receive: offer.key,
    };
    (params, port, offer.tag)
}

#[test]
fn srtp_mandatory_call_is_heard_both_ways_and_encrypted_on_the_wire() {
    assert!(
        baresip_available(),
        "baresip (Debian baresip-core) is needed"
    );
    let srtp_module = Path::new("/usr/lib/baresip/modules/srtp.so");
    assert!(srtp_module.exists(), "baresip's srtp module is needed");
    let ports = RANGES[0];
    let dir = scratch_dir("srtp_mandatory").unwrap();
    let bot = start_bot("srtp_mandatory_bot", &dir, "required", ports);
    let say_order = write_wav(
        &dir.join("say-order.wav"),
        &espeak_8k("where is my order", "en-us").expect("espeak-ng"),
        0.3,
        30.0,
    );
    let silence = write_wav(&dir.join("silence.wav"), &[], 0.0, 60.0);
    let snd = dir.join("snd");
    std::fs::create_dir_all(&snd).unwrap();
    let capture = Capture::start(&dir, ports);
    let mut phone = Baresip::dial_with(
        &dir,
        "+15550001234",
        &silence,
        &format!("sip:bot@{}", bot.addr),
        Duration::from_secs(40),
        &["srtp.so", "sndfile.so"],
        ";mediaenc=srtp-mand",
        &format!("snd_path {}\n", snd.display()),
    )
    .expect("baresip starts");
    assert!(
        bot.wait_until(Duration::from_secs(15), |l| l
            .contains("media secured by SRTP")),
        "the call did not negotiate SRTP:\n{}\n{}",
        tail(&bot.log(), 30),
        tail(&phone.log(), 60)
    );
    // The menu prompt plays (about 2.5 s), then the caller speaks.
    thread::sleep(Duration::from_millis(3500));
    phone
        .play(&say_order)
        .expect("baresip switches its microphone");
    let exit = phone.wait_exit(Duration::from_secs(40));
    let datagrams = capture.finish();
    let (call_id, end_reason, _, recording) = call_record(&dir);
    let said = transcript(&bot, &call_id);
    let metrics = bot.wait_metric("voxbridge_srtp_calls_total", 1.0, Duration::from_secs(5));
    let trace = phone.log();
    let log = bot.stop().expect("bot stops");
    assert!(
        exit.is_some(),
        "baresip still running:\n{}",
        tail(&trace, 40)
    );

    // The call went where the caller's words send it.
    assert_eq!(end_reason, "bot_hangup", "{}", tail(&log, 30));
    let caller_said: Vec<&String> = said
        .iter()
        .filter(|(s, _)| s == "caller")
        .map(|(_, t)| t)
        .collect();
    assert!(
        caller_said.iter().any(|t| t.contains("order")),
        "the caller's speech was not recognised: {said:?}\n{}",
        tail(&log, 30)
    );
    assert!(
        said.iter()
            .any(|(s, t)| s == "bot" && t.contains("Your order is on its way")),
        "{said:?}"
    );
    assert_eq!(
        prom_value(&metrics, "voxbridge_srtp_calls_total"),
        Some(1.0)
    );
    assert_eq!(
        prom_value(&metrics, "voxbridge_srtp_auth_failures_total"),
        Some(0.0)
    );

    // The bot heard (decrypted) the caller's speech; the caller heard the bot.
    let (caller, bot_side) = channels(Path::new(&recording.expect("a recording")));
    assert!(
        rms(&caller) > 200.0,
        "caller channel RMS {:.0}",
        rms(&caller)
    );
    assert!(
        rms(&bot_side) > 300.0,
        "bot channel RMS {:.0}",
        rms(&bot_side)
    );
    let heard = std::fs::read_dir(&snd)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.to_string_lossy().ends_with("-dec.wav"))
        .unwrap_or_else(|| panic!("baresip's sndfile recording in {}", snd.display()));
    let heard = mono(&heard);
    assert!(
        heard.len() > 8000 * 3 && rms(&heard) > 300.0,
        "baresip heard {} samples at RMS {:.0}",
        heard.len(),
        rms(&heard)
    );

    // The wire: the keys of the INVITE's and the 200's SDP.
    let answer_at = trace
        .find("SIP/2.0 200 OK")
        .expect("the 200 OK in the trace");
    let (bot_key, bot_port, tag) = sdp_key_and_port(&trace, answer_at, None);
    let offer_at = trace.find("INVITE sip:").expect("the INVITE in the trace");
    let (caller_key, caller_port, _) = sdp_key_and_port(&trace, offer_at, Some(tag));
    assert_eq!(caller_key.suite, bot_key.suite);
    assert!(
        (ports.0..=ports.1).contains(&bot_port),
        "bot RTP port {bot_port}"
    );
    let mut from_bot = SrtpSession::new(&bot_key).unwrap();
    let mut from_caller = SrtpSession::new(&caller_key).unwrap();
    let tag = bot_key.suite.tag_len();
    let (mut bot_packets, mut caller_packets, mut loud) = (0, 0, 0);
    for (src, dst, payload) in &datagrams {
        let (session, count) = if *src == bot_port && *dst == caller_port {
            (&mut from_bot, &mut bot_packets)
        } else if *src == caller_port && *dst == bot_port {
            (&mut from_caller, &mut caller_packets)
        } else {
            continue; // RTCP
        };
        assert_eq!(
            payload.len(),
            12 + 160 + tag,
            "a G.711 20 ms packet plus its tag"
        );
        let mut plain = Vec::new();
        session
            .unprotect(payload, &mut plain)
            .unwrap_or_else(|e| panic!("a packet {src}->{dst} does not decrypt: {e}"));
        // Ciphertext agrees with the audio it hides in about 1 byte in 256
        // (0.6 of 160); audio in the clear agrees in all.
        let same = plain[12..]
            .iter()
            .zip(&payload[12..12 + 160])
            .filter(|(a, b)| a == b)
            .count();
        assert!(
            same < 20,
            "{same} of 160 payload bytes in the clear ({src}->{dst})"
        );
        // Speech or prompt audio, not μ-law silence (0xFF/0x7F).
        if plain[12..]
            .iter()
            .filter(|&&b| b != 0xFF && b != 0x7F)
            .count()
            > 80
        {
            loud += 1;
        }
        *count += 1;
    }
    assert!(
        bot_packets > 200 && caller_packets > 200 && loud > 50,
        "{bot_packets} packets from the bot, {caller_packets} from the caller, {loud} loud ({} datagrams)",
        datagrams.len()
    );
}

#[test]
fn best_effort_srtp_offer_is_secured_and_keys_are_heard() {
    assert!(
        baresip_available(),
        "baresip (Debian baresip-core) is needed"
    );
    let ports = RANGES[1];
    let dir = scratch_dir("srtp_best_effort").unwrap();
    let bot = start_bot("srtp_best_effort_bot", &dir, "optional", ports);
    let silence = write_wav(&dir.join("silence.wav"), &[], 0.0, 60.0);
    let mut phone = Baresip::dial_with(
        &dir,
        "+15550001234",
        &silence,
        &format!("sip:bot@{}", bot.addr),
        Duration::from_secs(30),
        &["srtp.so"],
        ";mediaenc=srtp",
        "",
    )
    .expect("baresip starts");
    assert!(
        bot.wait_until(Duration::from_secs(15), |l| l
            .contains("media secured by SRTP")),
        "the call did not negotiate SRTP:\n{}\n{}",
        tail(&bot.log(), 30),
        tail(&phone.log(), 60)
    );
    thread::sleep(Duration::from_millis(3000));
    // A key ends when the next arrives: 1 for the order, then a spare.
    phone
        .keys("1#", Duration::from_millis(300))
        .expect("baresip keys");
    let exit = phone.wait_exit(Duration::from_secs(30));
    let (_, end_reason, dtmf, _) = call_record(&dir);
    let trace = phone.log();
    let log = bot.stop().expect("bot stops");
    assert!(
        exit.is_some(),
        "baresip still running:\n{}",
        tail(&trace, 40)
    );
    let answer_at = trace
        .find("SIP/2.0 200 OK")
        .expect("the 200 OK in the trace");
    let answer = &trace[answer_at..];
    assert!(
        answer.contains("RTP/AVP") && answer.contains("a=crypto:"),
        "best effort is answered in RTP/AVP with our key:\n{}",
        tail(&trace, 60)
    );
    assert!(
        dtmf.starts_with('1'),
        "keys heard: {dtmf:?}\n{}",
        tail(&log, 30)
    );
    assert_eq!(end_reason, "bot_hangup", "{}", tail(&log, 30));
}

#[test]
fn plain_offer_to_a_listener_requiring_srtp_gets_488() {
    let dir = scratch_dir("srtp_required_plain").unwrap();
    let bot = start_bot("srtp_required_plain_bot", &dir, "required", RANGES[2]);
    let replies = raw_invite(
        "127.0.0.1",
        bot.addr,
        "srtp-plain-1",
        Duration::from_secs(5),
    )
    .expect("INVITE sent");
    let log = bot.stop().expect("bot stops");
    let (code, text) = replies.last().expect("a final response");
    assert_eq!(*code, 488, "{text}\n{}", tail(&log, 20));
    let warning = text
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("warning:"))
        .unwrap_or_else(|| panic!("no Warning in {text}"));
    assert!(
        warning.contains("302 voxbridge") && warning.contains("SRTP"),
        "{warning}"
    );
    assert!(
        !replies.iter().any(|(c, _)| *c == 180),
        "refused before ringing"
    );
}
