//! The engine built without its speech features (`--no-default-features`;
//! `make test` builds it in `target/minimal/`): a keypad script with WAV
//! prompts answers, plays its prompts, takes the keys and hangs up, and a
//! configuration asking for an engine it lacks stops at start saying which
//! feature is missing.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use voxbridge_e2e::{
    free_port, http_get, prom_value, run_sipp, scenario_dir, scratch_dir, summary_metric, tail,
    workspace_root, Bot, BotConfig,
};

fn minimal_bin() -> PathBuf {
    let bin = workspace_root().join("target/minimal/release/voxbridge");
    if let Err(e) = voxbridge_e2e::fresh_binary(&bin) {
        panic!("{e}; build it as `make test` does: `cargo build --release -p voxbridge-engine --no-default-features` and copy target/release/voxbridge to target/minimal/release/");
    }
    bin
}

#[test]
fn keypad_script_with_wav_prompts_runs_without_speech_features() {
    let script = workspace_root().join("tests/scripts/keypad-wav.yaml");
    let cfg = BotConfig {
        more: format!("dialog:\n  script: {}\n", script.display()),
        bin: Some(minimal_bin()),
        ..BotConfig::default()
    };
    let bot = Bot::start("minimal_build_bot", &cfg).expect("bot starts");
    bot.wait_for_log("calls run the dialog script", Duration::from_secs(10))
        .expect("the script loads without TTS or recognisers");

    let dir = scratch_dir("minimal_build_sipp").unwrap();
    let port = free_port().unwrap().to_string();
    let target = bot.addr.to_string();
    // Keys 3, 1, # by SIP INFO; the caller waits for the bot's BYE.
    let scenario = scenario_dir().join("info_dtmf.xml");
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
            "-m",
            "1",
            "-timeout",
            "30s",
            "-timeout_error",
        ],
        Duration::from_secs(45),
    )
    .expect("sipp runs");
    assert_eq!(run.status, Some(0), "{}", run.describe());

    // The call's counters are added when it ends, which may be just after
    // sipp has answered the BYE.
    let deadline = Instant::now() + Duration::from_secs(10);
    let metrics = loop {
        let (_, m) = http_get(bot.admin, "/metrics").expect("metrics");
        let ended = prom_value(&m, "voxbridge_calls_total{outcome=\"bot_hangup\"}");
        if ended == Some(1.0) || Instant::now() > deadline {
            break m;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let sent = prom_value(&metrics, "voxbridge_rtp_packets_sent_total").unwrap_or(0.0);
    let log = bot.stop().expect("bot stops");
    assert!(
        log.contains("this build has no `espeak` feature"),
        "the start-up says text prompts cannot be spoken:\n{}",
        tail(&log, 20)
    );
    assert!(
        log.contains("digits collected") && log.contains("digits=31"),
        "the script took the keys:\n{}",
        tail(&log, 20)
    );
    assert_eq!(summary_metric(&log, "ended_bot_hangup"), Some(1));
    // Part of the greeting (until the keys) and the whole 1.9 s goodbye:
    // at least the goodbye's 95 packets of 20 ms.
    assert!(sent >= 95.0, "WAV prompts played: {sent} RTP packets sent");
}

#[test]
fn a_configured_engine_the_build_lacks_stops_the_start() {
    let dir = scratch_dir("minimal_build_refuses").unwrap();
    let script = workspace_root().join("tests/scripts/keypad-wav.yaml");
    let port = free_port().unwrap();
    let config = dir.join("voxbridge.yaml");
    std::fs::write(
        &config,
        format!(
            "sip:\n  listen: 127.0.0.1:{port}\nadmin:\n  listen: null\ncdr:\n  path: {}\ndialog:\n  script: {}\nspeech:\n  grammar: true\n",
            dir.join("voxbridge.db").display(),
            script.display()
        ),
    )
    .unwrap();
    let out = Command::new(minimal_bin())
        .args(["run", "--config"])
        .arg(&config)
        // The built-in flow's prompts (the defaults) are relative to it.
        .current_dir(workspace_root())
        .output()
        .expect("voxbridge runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "start must fail:\n{stderr}");
    assert!(
        stderr.contains("pocketsphinx: this build has no `sphinx` feature"),
        "the error names the feature:\n{stderr}"
    );
}
