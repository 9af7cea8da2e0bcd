//! Operations: the admin endpoint, the call limit, the trunk allowlist and
//! the drain on SIGTERM, each against the real binary.

use std::time::Duration;

use voxbridge_e2e::{
    free_port, http_get, prom_value, raw_invite, run_sipp, scratch_dir, tail, Bot, BotConfig,
};

fn uac(name: &str, bot: &Bot, extra: &[&str]) -> voxbridge_e2e::SippRun {
    let dir = scratch_dir(name).unwrap();
    let port = free_port().unwrap().to_string();
    let target = bot.addr.to_string();
    let mut args = vec![
        "-sn",
        "uac",
        &target,
        "-i",
        "127.0.0.1",
        "-p",
        &port,
        "-timeout",
        "40s",
    ];
    args.extend_from_slice(extra);
    run_sipp(&dir, &args, Duration::from_secs(60)).unwrap()
}

#[test]
fn health_ready_and_metrics_reflect_calls() {
    let bot = Bot::start("ops_metrics", &BotConfig::default()).unwrap();
    assert_eq!(http_get(bot.admin, "/health").unwrap().0, 200);
    assert_eq!(http_get(bot.admin, "/ready").unwrap().0, 200);
    let run = uac("ops_metrics_sipp", &bot, &["-m", "30", "-r", "30"]);
    assert_eq!(run.status, Some(0), "{}", run.describe());
    // The last call's task ends just after its BYE is answered.
    let text = bot.wait_metric(
        "voxbridge_calls_total{outcome=\"caller_hangup\"}",
        30.0,
        Duration::from_secs(10),
    );
    assert_eq!(http_get(bot.admin, "/metrics").unwrap().0, 200);
    assert_eq!(
        prom_value(&text, "voxbridge_calls_total{outcome=\"caller_hangup\"}"),
        Some(30.0),
        "{text}"
    );
    assert_eq!(prom_value(&text, "voxbridge_calls_active"), Some(0.0));
    // 30 answers to INVITE and 30 to BYE.
    assert_eq!(
        prom_value(&text, "voxbridge_sip_responses_total{code=\"200\"}"),
        Some(60.0),
        "{text}"
    );
    assert_eq!(
        prom_value(&text, "voxbridge_sip_responses_total{code=\"180\"}"),
        Some(30.0),
        "{text}"
    );
    assert_eq!(
        prom_value(&text, "voxbridge_call_setup_seconds_count"),
        Some(30.0)
    );
    assert!(prom_value(&text, "voxbridge_rtp_packets_sent_total").unwrap_or(0.0) >= 0.0);
    // Call records are readable from the CLI.
    let list = bot.wait_records(30, Duration::from_secs(10)).unwrap();
    assert_eq!(list.lines().count(), 31, "{list}");
    assert!(list.contains("caller_hangup"));
    let call_id = list
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string();
    let show = bot.cli(&["calls", "show", &call_id]).unwrap();
    assert!(
        show.contains(&format!("call_id:         {call_id}")),
        "{show}"
    );
    assert!(show.contains("end reason:      caller_hangup"), "{show}");
}

#[test]
fn ready_is_503_while_call_records_cannot_be_written() {
    let bot = Bot::start("ops_ready_cdr", &BotConfig::default()).unwrap();
    let (status, text) = http_get(bot.admin, "/metrics").unwrap();
    assert_eq!(status, 200);
    assert_eq!(
        prom_value(&text, "voxbridge_component_up{component=\"sip\"}"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        http_get(bot.admin, "/ready").unwrap(),
        (200, "ready\n".into())
    );
    // Another process (a backup, a long report) holds the database's write
    // lock past the writer's busy timeout: the next record cannot go in.
    let db = bot.dir.join("var/voxbridge.db");
    let other = rusqlite::Connection::open(&db).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let run = uac("ops_ready_cdr_sipp", &bot, &["-m", "1"]);
    assert_eq!(run.status, Some(0), "{}", run.describe());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut ready = http_get(bot.admin, "/ready").unwrap();
    while ready.0 == 200 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        ready = http_get(bot.admin, "/ready").unwrap();
    }
    assert_eq!(
        ready,
        (503, "down: cdr\n".into()),
        "{}",
        tail(&bot.log(), 20)
    );
    let text = http_get(bot.admin, "/metrics").unwrap().1;
    assert_eq!(
        prom_value(&text, "voxbridge_component_up{component=\"cdr\"}"),
        Some(0.0),
        "{text}"
    );
    // The lock goes: the kept record is written and the bot is ready again.
    other.execute_batch("COMMIT").unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while ready.0 != 200 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        ready = http_get(bot.admin, "/ready").unwrap();
    }
    assert_eq!(ready, (200, "ready\n".into()), "{}", tail(&bot.log(), 20));
    let list = bot.cli(&["calls", "list", "-n", "10"]).unwrap();
    assert_eq!(list.lines().count(), 2, "{list}");
}

#[test]
fn over_max_calls_gets_503_with_retry_after() {
    let cfg = BotConfig {
        more: "calls:\n  max_calls: 2\n  retry_after_secs: 7".into(),
        ..BotConfig::default()
    };
    let bot = Bot::start("ops_limit", &cfg).unwrap();
    // Two calls that stay up for 4 s.
    let holder = {
        let target = bot.addr.to_string();
        std::thread::spawn(move || {
            let dir = scratch_dir("ops_limit_sipp").unwrap();
            let port = free_port().unwrap().to_string();
            run_sipp(
                &dir,
                &[
                    "-sn",
                    "uac",
                    &target,
                    "-i",
                    "127.0.0.1",
                    "-p",
                    &port,
                    "-m",
                    "2",
                    "-r",
                    "10",
                    "-d",
                    "4000",
                    "-timeout",
                    "30s",
                ],
                Duration::from_secs(40),
            )
            .unwrap()
        })
    };
    assert!(bot.wait_until(Duration::from_secs(5), |log| log
        .matches("incoming call")
        .count()
        >= 2));
    let answers = raw_invite(
        "127.0.0.1",
        bot.addr,
        "third-call@test",
        Duration::from_secs(3),
    )
    .unwrap();
    let (code, text) = answers.last().cloned().expect("an answer");
    assert_eq!(code, 503, "{answers:?}");
    assert!(text.contains("Retry-After: 7"), "{text}");
    let run = holder.join().unwrap();
    assert_eq!(run.status, Some(0), "{}", run.describe());
    let (_, metrics) = http_get(bot.admin, "/metrics").unwrap();
    assert_eq!(
        prom_value(&metrics, "voxbridge_calls_refused_total{reason=\"busy\"}"),
        Some(1.0)
    );
}

#[test]
fn trunk_allowlist_refuses_strangers_with_403() {
    let cfg = BotConfig {
        more: "trunk:\n  allow: [127.0.0.1/32]".into(),
        ..BotConfig::default()
    };
    let bot = Bot::start("ops_acl", &cfg).unwrap();
    let answers = raw_invite(
        "127.0.0.2",
        bot.addr,
        "stranger@test",
        Duration::from_secs(3),
    )
    .unwrap();
    assert_eq!(answers.last().map(|a| a.0), Some(403), "{answers:?}");
    let run = uac("ops_acl_sipp", &bot, &["-m", "3", "-r", "3"]);
    assert_eq!(run.status, Some(0), "{}", run.describe());
    let log = bot.stop().unwrap();
    assert!(
        log.contains("INVITE refused") && log.contains("not_allowed"),
        "{}",
        tail(&log, 20)
    );
    assert!(log.contains("127.0.0.2"), "the log names the stranger");
}

#[test]
fn sigterm_drains_active_calls_and_refuses_new_ones() {
    let cfg = BotConfig {
        env: vec![("VOXBRIDGE_CALLS_DRAIN_TIMEOUT_SECS".into(), "30".into())],
        ..BotConfig::default()
    };
    let mut bot = Bot::start("ops_drain", &cfg).unwrap();
    let holder = {
        let target = bot.addr.to_string();
        std::thread::spawn(move || {
            let dir = scratch_dir("ops_drain_sipp").unwrap();
            let port = free_port().unwrap().to_string();
            run_sipp(
                &dir,
                &[
                    "-sn",
                    "uac",
                    &target,
                    "-i",
                    "127.0.0.1",
                    "-p",
                    &port,
                    "-m",
                    "20",
                    "-l",
                    "20",
                    "-r",
                    "40",
                    "-d",
                    "5000",
                    "-timeout",
                    "40s",
                ],
                Duration::from_secs(60),
            )
            .unwrap()
        })
    };
    assert!(
        bot.wait_until(Duration::from_secs(10), |log| log
            .matches("incoming call")
            .count()
            >= 20),
        "20 calls up"
    );
    bot.terminate();
    assert!(bot.wait_until(Duration::from_secs(5), |log| log.contains("draining")));
    assert_eq!(http_get(bot.admin, "/ready").unwrap().0, 503);
    let answers = raw_invite("127.0.0.1", bot.addr, "late@test", Duration::from_secs(3)).unwrap();
    assert_eq!(answers.last().map(|a| a.0), Some(503), "{answers:?}");
    let run = holder.join().unwrap();
    assert_eq!(run.status, Some(0), "{}", run.describe());
    assert_eq!(run.stats.map(|s| s.successful), Some(20));
    assert_eq!(
        bot.wait_exit(Duration::from_secs(20)),
        Some(0),
        "{}",
        tail(&bot.log(), 20)
    );
    let list = bot.cli(&["calls", "list", "-n", "100"]).unwrap();
    assert_eq!(
        list.lines().filter(|l| l.contains("caller_hangup")).count(),
        20,
        "{list}"
    );
}

#[test]
fn outbox_commands_list_retry_and_purge() {
    use voxbridge_crm::model::{NewTask, Write};
    use voxbridge_crm::outbox::{Outbox, OutboxConfig};
    let dir = scratch_dir("ops_outbox").unwrap();
    let db = dir.join("outbox.sqlite");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        let outbox = Outbox::open(OutboxConfig {
            path: db.clone(),
            ..OutboxConfig::default()
        })
        .unwrap();
        for i in 0..3 {
            let task = NewTask {
                subject: format!("call back {i}"),
                body: "test".into(),
                due: None,
                customer_id: Some(format!("C{i}")),
                phone: None,
                assignee: None,
                call_id: Some(format!("call-{i}")),
            };
            outbox.enqueue(Write::Task(task)).await.unwrap();
        }
    });
    let bin = voxbridge_e2e::voxbridge_bin().unwrap();
    let run = |args: &[&str]| -> (bool, String) {
        let out = std::process::Command::new(&bin)
            .arg("outbox")
            .arg("--db")
            .arg(&db)
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (ok, text) = run(&["list"]);
    assert!(ok, "{text}");
    assert!(text.contains("3 pending, 0 delivered, 0 dead"), "{text}");
    assert_eq!(text.lines().count(), 4, "{text}");
    let (ok, text) = run(&["list", "--state", "dead"]);
    assert!(ok && text.lines().count() == 1, "{text}");
    let (ok, text) = run(&["retry", "--ids", "1,2"]);
    assert!(ok && text.contains("2 records queued"), "{text}");
    // Pending records are never purged.
    let (ok, text) = run(&["purge", "--ids", "1"]);
    assert!(ok && text.contains("0 records deleted"), "{text}");
    let (ok, text) = run(&["purge"]);
    assert!(!ok && text.contains("say which records"), "{text}");
    let (ok, text) = run(&["list", "--state", "lost"]);
    assert!(
        !ok && text.contains("use pending, delivered or dead"),
        "{text}"
    );
}

#[test]
fn models_list_and_pull_from_a_local_server() {
    let bin = voxbridge_e2e::voxbridge_bin().unwrap();
    let root = voxbridge_e2e::workspace_root();
    let out = std::process::Command::new(&bin)
        .args(["models", "list"])
        .current_dir(&root)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("intent model") && l.contains(" ok ")),
        "{text}"
    );

    // A "model" served over HTTP from this machine, fetched and verified.
    let dir = scratch_dir("models_pull").unwrap();
    let served = dir.join("served");
    std::fs::create_dir_all(&served).unwrap();
    let bytes: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(served.join("ggml-test.bin"), &bytes).unwrap();
    let sum = std::process::Command::new("sha256sum")
        .arg(served.join("ggml-test.bin"))
        .output()
        .unwrap();
    let sha = String::from_utf8_lossy(&sum.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let port = free_port().unwrap();
    let mut server = std::process::Command::new("python3")
        .args([
            "-m",
            "http.server",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
        ])
        .current_dir(&served)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    let target = dir.join("models");
    let out = std::process::Command::new(&bin)
        .args([
            "models",
            "pull",
            "test",
            "--base-url",
            &format!("http://127.0.0.1:{port}"),
            "--sha256",
            &sha,
            "--dir",
        ])
        .arg(&target)
        .output()
        .unwrap();
    let bad = std::process::Command::new(&bin)
        .args([
            "models",
            "pull",
            "test",
            "--base-url",
            &format!("http://127.0.0.1:{port}"),
            "--sha256",
            &"0".repeat(64),
            "--dir",
        ])
        .arg(dir.join("bad"))
        .output()
        .unwrap();
    let _ = server.kill();
    let _ = server.wait();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert_eq!(std::fs::read(target.join("ggml-test.bin")).unwrap(), bytes);
    assert!(!bad.status.success(), "a wrong checksum fails");
}

/// A call task that panics is contained: the caller gets a BYE, the call's
/// record says `error`, the panic is counted and logged with the call id,
/// and the calls around it are untouched. The fault is injected with the
/// engine's hidden test switch (`VOXBRIDGE_INJECT_PANIC_ON_KEY`).
#[test]
fn a_panicking_call_is_recorded_counted_and_hung_up() {
    let cfg = BotConfig {
        env: vec![("VOXBRIDGE_INJECT_PANIC_ON_KEY".into(), "5".into())],
        ..BotConfig::default()
    };
    let bot = Bot::start("ops_panic", &cfg).unwrap();
    let dir = scratch_dir("ops_panic_sipp").unwrap();
    let port = free_port().unwrap().to_string();
    let target = bot.addr.to_string();
    // The caller keys 5: the task panics; the scenario then expects the
    // bot's BYE, which the dropped leg sends.
    let scenario = voxbridge_e2e::scenario_dir().join("uac_key_bye.xml");
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
            "46100",
            "-m",
            "3",
            "-l",
            "3",
            "-r",
            "3",
            "-timeout",
            "40s",
            "-timeout_error",
        ],
        Duration::from_secs(60),
    )
    .unwrap();
    assert_eq!(run.status, Some(0), "{}", run.describe());
    std::thread::sleep(Duration::from_millis(300));
    let (_, text) = http_get(bot.admin, "/metrics").unwrap();
    assert_eq!(
        prom_value(&text, "voxbridge_call_panics_total"),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        prom_value(&text, "voxbridge_calls_total{outcome=\"error\"}"),
        Some(3.0),
        "{text}"
    );
    assert_eq!(prom_value(&text, "voxbridge_calls_active"), Some(0.0));
    // Calls without the key are served as before.
    let run = uac("ops_panic_after", &bot, &["-m", "2", "-r", "2"]);
    assert_eq!(run.status, Some(0), "{}", run.describe());
    let list = bot.cli(&["calls", "list"]).unwrap();
    assert_eq!(
        list.lines().filter(|l| l.contains("error")).count(),
        3,
        "{list}"
    );
    let log = bot.stop().unwrap();
    let panics: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("call task panicked"))
        .collect();
    assert_eq!(panics.len(), 3, "{}", tail(&log, 30));
    assert!(panics.iter().all(|l| l.contains("call_id=")), "{panics:?}");
}
