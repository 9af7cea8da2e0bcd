//! `voxbridge call` against the real bot: the test caller dials the built-in
//! flow, records the greeting, keys digits (RFC 4733 and SIP INFO), and the
//! bot's log and call record show what it collected. 127.0.0.1 only; every
//! process is bounded in time.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use voxbridge_e2e::{tail, voxbridge_bin, Bot, BotConfig};

/// What one `voxbridge call` run printed and returned.
struct CallRun {
    status: Option<i32>,
    stdout: String,
    stderr: String,
}

impl CallRun {
    fn describe(&self) -> String {
        format!(
            "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.status, self.stdout, self.stderr
        )
    }

    /// The Call-ID the caller announced before dialing.
    fn call_id(&self) -> String {
        self.stdout
            .split("Call-ID ")
            .nth(1)
            .and_then(|s| s.split(')').next())
            .unwrap_or_else(|| panic!("no Call-ID in the output:\n{}", self.describe()))
            .to_string()
    }
}

/// Run `voxbridge call …` in `dir`, killed after `limit`.
fn voxbridge_call(dir: &Path, args: &[&str], limit: Duration) -> CallRun {
    let out_path = dir.join("call.stdout");
    let err_path = dir.join("call.stderr");
    let mut child = Command::new(voxbridge_bin().expect("voxbridge built"))
        .arg("call")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .expect("voxbridge call starts");
    let start = Instant::now();
    let status = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break status.code();
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    CallRun {
        status,
        stdout: std::fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
    }
}

/// Root mean square of the loudest second of a recording.
fn loudest_second_rms(samples: &[i16]) -> f64 {
    samples
        .chunks(8000)
        .map(|c| (c.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / c.len() as f64).sqrt())
        .fold(0.0, f64::max)
}

#[test]
fn keys_reach_the_bot_and_its_greeting_is_recorded() {
    let bot = Bot::start("test_call_keys", &BotConfig::default()).expect("bot starts");
    let target = format!("sip:bot@{}", bot.addr);
    let admin = bot.admin.to_string();
    let record = bot.dir.join("heard.wav");
    let record_arg = record.display().to_string();
    let run = voxbridge_call(
        &bot.dir,
        &[
            &target,
            "--from",
            "+15551230001",
            "--rtp-ports",
            "47000-47099",
            "--record",
            &record_arg,
            "--admin",
            &admin,
            "--timeout",
            "60",
            "quiet",
            "keys:1234#",
        ],
        Duration::from_secs(90),
    );
    assert_eq!(run.status, Some(0), "{}", run.describe());
    assert!(
        run.stdout.contains("caller: [keys] 1234#"),
        "{}",
        run.describe()
    );
    // The bot's own account of the call, from its admin endpoint.
    assert!(
        run.stdout
            .lines()
            .any(|l| l.contains("] bot heard: ") && l.contains("1234")),
        "{}",
        run.describe()
    );
    assert!(
        run.stdout.contains("call ended by the bot after"),
        "{}",
        run.describe()
    );
    let call_id = run.call_id();

    // The greeting (5.6 s of speech) is in the recording, as 8 kHz mono.
    let mut wav = hound::WavReader::open(&record).expect("recording readable");
    let spec = wav.spec();
    assert_eq!(
        (spec.sample_rate, spec.channels, spec.bits_per_sample),
        (8000, 1, 16)
    );
    let samples: Vec<i16> = wav.samples::<i16>().map(|s| s.unwrap()).collect();
    assert!(samples.len() >= 4 * 8000, "{} samples", samples.len());
    assert!(
        loudest_second_rms(&samples) > 1000.0,
        "the recording is silent: {}",
        run.describe()
    );

    assert!(
        bot.wait_until(Duration::from_secs(5), |log| log
            .contains(&format!("digits collected call_id={call_id} digits=1234"))),
        "digits not logged:\n{}",
        tail(&bot.log(), 30)
    );
    // The call record has the keys, under the Call-ID the caller chose.
    let mut shown = String::new();
    for _ in 0..50 {
        if let Ok(text) = bot.cli(&["calls", "show", &call_id]) {
            shown = text;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(shown.contains("dtmf:            1234"), "{shown}");
    assert!(shown.contains("+15551230001"), "{shown}");
}

#[test]
fn info_keys_then_our_hangup() {
    let bot = Bot::start("test_call_info", &BotConfig::default()).expect("bot starts");
    let target = format!("sip:bot@{}", bot.addr);
    let wav = voxbridge_e2e::workspace_root().join("fixtures/audio/goodbye.wav");
    let wav_step = format!("wav:{}", wav.display());
    let run = voxbridge_call(
        &bot.dir,
        &[
            &target,
            "--dtmf",
            "info",
            "--codec",
            "pcma",
            "--rtp-ports",
            "47100-47199",
            "--timeout",
            "60",
            "wait:500ms",
            &wav_step,
            "keys:42#",
            "wait:300ms",
            "hangup",
        ],
        Duration::from_secs(90),
    );
    assert_eq!(run.status, Some(0), "{}", run.describe());
    assert!(run.stdout.contains("PCMA"), "{}", run.describe());
    assert!(run.stdout.contains("caller: [wav] "), "{}", run.describe());
    assert!(
        run.stdout.contains("call ended by us (BYE)"),
        "{}",
        run.describe()
    );
    let call_id = run.call_id();
    assert!(
        bot.wait_until(Duration::from_secs(5), |log| log
            .contains(&format!("digits collected call_id={call_id} digits=42"))),
        "digits not logged:\n{}",
        tail(&bot.log(), 30)
    );
}

#[test]
fn a_refused_call_and_a_timeout_exit_non_zero() {
    // Only a documentation address may call: our INVITE gets 403.
    let refusing = BotConfig {
        more: "trunk:\n  allow: [192.0.2.1]\n".into(),
        ..BotConfig::default()
    };
    let bot = Bot::start("test_call_refused", &refusing).expect("bot starts");
    let target = format!("sip:bot@{}", bot.addr);
    let record = bot.dir.join("never.wav");
    let record_arg = record.display().to_string();
    let run = voxbridge_call(
        &bot.dir,
        &[
            &target,
            "--rtp-ports",
            "47200-47299",
            "--record",
            &record_arg,
            "keys:1",
        ],
        Duration::from_secs(40),
    );
    assert_eq!(run.status, Some(1), "{}", run.describe());
    assert!(
        run.stderr
            .contains("the bot refused the call: 403 Forbidden"),
        "{}",
        run.describe()
    );
    // Finished even so: a valid, empty WAV.
    let wav = hound::WavReader::open(&record).expect("recording finished");
    assert_eq!(wav.len(), 0);
    drop(bot);

    // A bot that answers but never hangs up within the limit.
    let bot = Bot::start("test_call_timeout", &BotConfig::default()).expect("bot starts");
    let target = format!("sip:bot@{}", bot.addr);
    let run = voxbridge_call(
        &bot.dir,
        &[&target, "--rtp-ports", "47300-47399", "--timeout", "2"],
        Duration::from_secs(30),
    );
    assert_eq!(run.status, Some(1), "{}", run.describe());
    assert!(
        run.stderr
            .contains("the call was still up after 2s; sent BYE"),
        "{}",
        run.describe()
    );
    let call_id = run.call_id();
    assert!(
        bot.wait_until(Duration::from_secs(5), |log| log
            .lines()
            .any(|l| l.contains(&format!("call ended call_id={call_id}"))
                && l.contains("caller_hangup"))),
        "{}",
        tail(&bot.log(), 20)
    );

    // A step that does not parse is refused before any call is placed.
    let run = voxbridge_call(&bot.dir, &[&target, "keys:12x"], Duration::from_secs(10));
    assert_eq!(run.status, Some(2), "{}", run.describe());
    assert!(
        run.stderr.contains("step `keys:12x`: `X` is not a key"),
        "{}",
        run.describe()
    );
    assert!(run.stdout.is_empty(), "{}", run.describe());
}
