//! Real SIP phones calling the real binary: baresip streams espeak-ng speech
//! and presses keys; the bot collects them, hangs up, and records the call.

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use voxbridge_e2e::{free_port, scratch_dir, tail, Bot, BotConfig};

/// espeak-ng speech at 8 kHz mono, padded with silence to `seconds`.
fn speech_wav(dir: &Path, text: &str, seconds: u32) -> PathBuf {
    let raw = dir.join("speech-raw.wav");
    let out = dir.join("speech.wav");
    let ok = Command::new("espeak-ng")
        .arg("-w")
        .arg(&raw)
        .arg(text)
        .status()
        .unwrap()
        .success();
    assert!(ok, "espeak-ng");
    let ok = Command::new("sox")
        .arg(&raw)
        .args(["-r", "8000", "-c", "1", "-b", "16"])
        .arg(&out)
        .args(["pad", "0", &seconds.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "sox");
    out
}

fn key(cons: u16, k: &str) {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.send_to(k.as_bytes(), ("127.0.0.1", cons)).unwrap();
}

/// RMS of one channel of a 16-bit WAV.
fn channel_rms(path: &Path, channel: usize) -> (f64, f64) {
    let r = hound::WavReader::open(path).unwrap();
    let spec = r.spec();
    let samples: Vec<i16> = r.into_samples::<i16>().map(|s| s.unwrap()).collect();
    let ch: Vec<f64> = samples
        .chunks(spec.channels as usize)
        .filter_map(|f| f.get(channel).map(|&s| s as f64))
        .collect();
    let rms = (ch.iter().map(|s| s * s).sum::<f64>() / ch.len().max(1) as f64).sqrt();
    (rms, ch.len() as f64 / spec.sample_rate as f64)
}

/// A baresip phone that dials `target` and streams `wav`; keys go to its
/// `cons` UDP port. Killed on drop.
struct Phone {
    child: std::process::Child,
    cons: u16,
}

impl Phone {
    fn dial(dir: &Path, wav: &Path, target: &str) -> Phone {
        let sip_port = free_port().unwrap();
        let cons = free_port().unwrap();
        let conf = dir.join("conf");
        std::fs::create_dir_all(&conf).unwrap();
        std::fs::write(
            conf.join("config"),
            format!(
                "poll_method epoll\nsip_listen 127.0.0.1:{sip_port}\naudio_player aubridge,nil\naudio_source aufile,{}\naudio_alert aubridge,nil\nmodule_path /usr/lib/baresip/modules\nmodule g711.so\nmodule aufile.so\nmodule aubridge.so\nmodule cons.so\nmodule_app account.so\nmodule_app menu.so\ncons_listen 127.0.0.1:{cons}\n",
                wav.display()
            ),
        )
        .unwrap();
        std::fs::write(
            conf.join("accounts"),
            "<sip:+15550142@127.0.0.1>;regint=0\n",
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("baresip.log")).unwrap();
        let child = Command::new("baresip")
            .arg("-f")
            .arg(&conf)
            .arg("-e")
            .arg(format!("/dial {target}"))
            .args(["-t", "30"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("baresip (package baresip-core)");
        Phone { child, cons }
    }

    /// Press keys; a baresip key ends when the next arrives, so callers
    /// add a trailing one.
    fn keys(&self, keys: &[&str]) {
        for k in keys {
            key(self.cons, k);
            std::thread::sleep(Duration::from_millis(400));
        }
    }
}

impl Drop for Phone {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn baresip_caller_is_transferred_to_an_agent_by_refer() {
    let dir = scratch_dir("baresip_transfer").unwrap();
    let (mut uas, agent_port) = voxbridge_e2e::spawn_sipp_uas(&dir, "uas").unwrap();
    let cfg = BotConfig {
        flow: format!("transfer_target: sip:agent@127.0.0.1:{agent_port}"),
        ..BotConfig::default()
    };
    let bot = Bot::start("baresip_transfer_bot", &cfg).unwrap();
    let wav = speech_wav(&dir, "I want to talk to a person.", 14);
    let phone = Phone::dial(&dir, &wav, &format!("sip:bot@{}", bot.addr));
    assert!(
        bot.wait_until(Duration::from_secs(10), |l| l.contains("incoming call")),
        "baresip called"
    );
    std::thread::sleep(Duration::from_secs(2));
    phone.keys(&["1", "2", "0", "9"]);
    let transferred = bot.wait_until(Duration::from_secs(20), |l| {
        l.contains("reason=\"transferred\"")
    });
    // The agent saw the transferred call arrive from the phone.
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(20) && !matches!(uas.try_wait(), Ok(Some(_))) {
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = uas.kill();
    let agent_log = std::fs::read_to_string(dir.join("uas-messages.log")).unwrap_or_default();
    drop(phone);
    let log = bot.stop().unwrap();
    assert!(
        transferred,
        "bot leg ended as transferred:\n{}",
        tail(&log, 20)
    );
    assert!(
        log.contains("transfer answered; leaving the call"),
        "{}",
        tail(&log, 20)
    );
    assert!(
        agent_log.contains("INVITE sip:agent@127.0.0.1"),
        "agent got the INVITE:\n{}",
        tail(&agent_log, 40)
    );
    assert!(
        agent_log.contains("+15550142"),
        "the INVITE came from the caller's phone"
    );
    // baresip carries the Refer-To URI headers into the new INVITE's URI:
    // the agent sees the context.
    assert!(
        agent_log.contains("X-VB-intent=agent"),
        "{}",
        tail(&agent_log, 40)
    );
    assert!(
        agent_log.contains("X-VB-account=12"),
        "{}",
        tail(&agent_log, 40)
    );
}

#[test]
fn busy_agent_is_reported_and_the_bot_keeps_the_baresip_call() {
    let dir = scratch_dir("baresip_transfer_busy").unwrap();
    let (mut uas, agent_port) = voxbridge_e2e::spawn_sipp_uas(&dir, "uas_busy.xml").unwrap();
    let cfg = BotConfig {
        flow: format!("transfer_target: sip:agent@127.0.0.1:{agent_port}"),
        ..BotConfig::default()
    };
    let bot = Bot::start("baresip_transfer_busy_bot", &cfg).unwrap();
    let wav = speech_wav(&dir, "Agent please.", 20);
    let phone = Phone::dial(&dir, &wav, &format!("sip:bot@{}", bot.addr));
    assert!(
        bot.wait_until(Duration::from_secs(10), |l| l.contains("incoming call")),
        "baresip called"
    );
    std::thread::sleep(Duration::from_secs(2));
    phone.keys(&["0", "9"]);
    let failed = bot.wait_until(Duration::from_secs(20), |l| {
        l.contains("transfer failed; the bot keeps the call")
    });
    // Still on the line with the bot a few seconds later, hearing the apology.
    std::thread::sleep(Duration::from_secs(2));
    let still_up = !bot.log().contains("call ended");
    let _ = uas.kill();
    drop(phone);
    let log = bot.stop().unwrap();
    assert!(failed, "{}", tail(&log, 20));
    assert!(log.contains("486"), "{}", tail(&log, 20));
    assert!(
        still_up,
        "the bot kept the call after the failed transfer:\n{}",
        tail(&log, 20)
    );
}

#[test]
fn baresip_speaks_and_keys_digits_and_the_call_is_recorded() {
    let cfg = BotConfig {
        more: "recording:\n  enabled: true\n  dir: recordings\n  mode: stereo".into(),
        ..BotConfig::default()
    };
    let bot = Bot::start("baresip", &cfg).unwrap();
    let dir = scratch_dir("baresip_phone").unwrap();
    let wav = speech_wav(
        &dir,
        "Hello. I would like to check the status of my order, please.",
        14,
    );
    let phone = Phone::dial(&dir, &wav, &format!("sip:bot@{}", bot.addr));

    assert!(
        bot.wait_until(Duration::from_secs(10), |l| l.contains("incoming call")),
        "baresip called"
    );
    // Speak over the greeting for a while, then key 4 7 #; a baresip key
    // ends when the next one arrives, hence the trailing 9.
    std::thread::sleep(Duration::from_secs(7));
    phone.keys(&["4", "7", "#", "9"]);
    let ended = bot.wait_until(Duration::from_secs(15), |l| l.contains("call ended"));
    drop(phone);
    let records = bot.wait_records(1, Duration::from_secs(10)).unwrap();
    let call_id = records
        .lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or_default()
        .to_string();
    let record = bot.cli(&["calls", "show", &call_id]).unwrap();
    let log = bot.stop().unwrap();
    assert!(record.contains("dtmf:            47"), "{record}");
    assert!(
        record.contains("recordings/"),
        "the record names the recording: {record}"
    );
    assert!(ended, "call ended:\n{}", tail(&log, 20));
    assert!(log.contains("digits=47"), "{}", tail(&log, 20));
    assert!(log.contains("reason=\"bot_hangup\""), "{}", tail(&log, 20));

    let rec_dir = dir.parent().unwrap().join("baresip").join("recordings");
    let files: Vec<PathBuf> = std::fs::read_dir(&rec_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "one recording in {}", rec_dir.display());
    let (caller_rms, seconds) = channel_rms(&files[0], 0);
    let (bot_rms, _) = channel_rms(&files[0], 1);
    assert!(
        seconds > 8.0 && seconds < 20.0,
        "recording lasts {seconds:.1} s"
    );
    assert!(
        caller_rms > 200.0,
        "caller channel is speech, not silence (rms {caller_rms:.0})"
    );
    assert!(
        bot_rms > 200.0,
        "bot channel holds the prompts (rms {bot_rms:.0})"
    );
}

/// linphone (`linphonec`, package linphone-cli) calls the bot: its
/// `+sip.instance` Contact and its SDP are handled, it keys 4 2 #, the
/// call completes with the bot's BYE.
#[test]
fn linphone_calls_keys_digits_and_is_hung_up_on() {
    use std::io::Write;
    let cfg = BotConfig {
        // The stack's own log shows the raw INVITE, to check its Contact.
        log_level: Some("info,rsipstack=info".into()),
        ..BotConfig::default()
    };
    let bot = Bot::start("linphone", &cfg).unwrap();
    let dir = scratch_dir("linphone_phone").unwrap();
    let wav = speech_wav(&dir, "Hello, I am calling about my account.", 14);
    // linphonec refuses to start its SIP stack without its database folder.
    let home = dir.join("home");
    std::fs::create_dir_all(home.join(".local/share/linphone")).unwrap();
    let rc = dir.join("linphonerc");
    std::fs::write(
        &rc,
        format!(
            "[sip]\nsip_port={}\nsip_tcp_port=-1\nuse_ipv6=0\nipv6_migration_done=1\n[rtp]\naudio_rtp_port={}\n[sound]\nechocancellation=0\n[video]\nautomatically_initiate=0\ncapture=0\ndisplay=0\n",
            free_port().unwrap(),
            free_port().unwrap()
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.join("linphonec.log")).unwrap();
    let mut phone = Command::new("linphonec")
        .arg("-c")
        .arg(&rc)
        .env("HOME", &home)
        .stdin(Stdio::piped())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("linphonec (package linphone-cli)");
    let mut input = phone.stdin.take().unwrap();
    let mut say = |line: &str| {
        let _ = writeln!(input, "{line}");
        let _ = input.flush();
    };
    std::thread::sleep(Duration::from_secs(2));
    say("soundcard use files");
    say(&format!("play {}", wav.display()));
    say(&format!("call sip:bot@{}", bot.addr));
    let answered = bot.wait_until(Duration::from_secs(10), |l| l.contains("incoming call"));
    std::thread::sleep(Duration::from_secs(6));
    for k in ["4", "2", "#"] {
        say(k);
        std::thread::sleep(Duration::from_millis(500));
    }
    let ended = bot.wait_until(Duration::from_secs(15), |l| l.contains("call ended"));
    say("quit");
    std::thread::sleep(Duration::from_millis(500));
    let _ = phone.kill();
    let _ = phone.wait();
    let log = bot.stop().unwrap();
    let phone_log = std::fs::read_to_string(dir.join("linphonec.log")).unwrap_or_default();
    assert!(answered, "linphone called:\n{}", tail(&phone_log, 30));
    assert!(
        log.contains("+sip.instance"),
        "linphone's Contact carries +sip.instance"
    );
    assert!(ended, "{}", tail(&log, 20));
    assert!(log.contains("digits=42"), "{}", tail(&log, 20));
    assert!(log.contains("reason=\"bot_hangup\""), "{}", tail(&log, 20));
    assert!(phone_log.contains("connected"), "{}", tail(&phone_log, 30));
}
