//! Registration against a real Kamailio registrar with digest auth (MD5 and
//! SHA-256, qop=auth): voxbridge registers, refreshes, receives a call sent
//! to its AOR through Kamailio, and un-registers on shutdown; a wrong
//! password fails visibly. Kamailio runs two workers, which can relay the
//! bot's 180 after its 200, so the caller is `uac_tolerant.xml`, not sipp's
//! built-in `uac` (which aborts on that).

use std::time::Duration;

use voxbridge_e2e::{
    free_port, http_get, prom_value, run_sipp, scenario_dir, scratch_dir, spawn_sipp_uas, tail,
    wait_child, Bot, BotConfig, Kamailio,
};

fn account(kamailio: &Kamailio, expires: u32) -> String {
    format!(
        "registration:\n  accounts:\n    - registrar: sip:127.0.0.1:{}\n      username: bot\n      password_env: VB_TEST_SIP_PASSWORD\n      expires_secs: {expires}",
        kamailio.port
    )
}

fn bot_with_password(name: &str, kamailio: &Kamailio, password: &str, expires: u32) -> Bot {
    let cfg = BotConfig {
        more: account(kamailio, expires),
        env: vec![("VB_TEST_SIP_PASSWORD".into(), password.into())],
        ..BotConfig::default()
    };
    Bot::start(name, &cfg).unwrap()
}

fn registers_refreshes_and_takes_calls(algorithm: &str) {
    let name = format!("kamailio_{}", algorithm.to_lowercase().replace('-', ""));
    let kamailio = Kamailio::start(&name, algorithm, "s3cret-Pa55").unwrap();
    let bot = bot_with_password(&format!("{name}_bot"), &kamailio, "s3cret-Pa55", 10);
    // First registration, then a refresh at 75 % of 10 s.
    assert!(
        bot.wait_until(Duration::from_secs(15), |l| l
            .lines()
            .filter(|x| x.contains(": registered "))
            .count()
            >= 2),
        "registered and refreshed:\n{}\nkamailio:\n{}",
        tail(&bot.log(), 20),
        tail(&kamailio.log(), 20)
    );
    assert!(
        kamailio
            .log()
            .contains("REGISTER accepted for sip:bot@127.0.0.1"),
        "{}",
        tail(&kamailio.log(), 20)
    );
    let challenge = kamailio.log().contains("REGISTER challenge for");
    assert!(challenge, "Kamailio challenged the first REGISTER");

    // A call for the bot's AOR, sent to Kamailio, reaches the bot.
    let dir = scratch_dir(&format!("{name}_sipp")).unwrap();
    let port = free_port().unwrap().to_string();
    let target = kamailio.addr().to_string();
    let scenario = scenario_dir().join("uac_tolerant.xml");
    let run = run_sipp(
        &dir,
        &[
            "-sf",
            scenario.to_str().unwrap(),
            &target,
            "-s",
            "bot",
            "-i",
            "127.0.0.1",
            "-p",
            &port,
            "-m",
            "5",
            "-r",
            "5",
            "-timeout",
            "20s",
            "-timeout_error",
        ],
        Duration::from_secs(30),
    )
    .unwrap();
    assert_eq!(
        run.status,
        Some(0),
        "{}\nkamailio:\n{}",
        run.describe(),
        tail(&kamailio.log(), 30)
    );
    assert_eq!(run.stats.map(|s| s.successful), Some(5));
    let (_, metrics) = http_get(bot.admin, "/metrics").unwrap();
    assert!(prom_value(&metrics, "voxbridge_registrations_total").unwrap_or(0.0) >= 2.0);
    assert_eq!(
        prom_value(&metrics, "voxbridge_registration_failures_total"),
        Some(0.0)
    );

    let log = bot.stop().unwrap();
    assert_eq!(
        log.matches("incoming call").count(),
        5,
        "{}",
        tail(&log, 20)
    );
    assert!(
        log.contains("unregistered"),
        "un-REGISTER on shutdown:\n{}",
        tail(&log, 10)
    );
    assert!(
        !log.contains("s3cret-Pa55"),
        "the password never reaches the log"
    );
}

#[test]
fn md5_digest_registration() {
    registers_refreshes_and_takes_calls("MD5");
}

#[test]
fn sha256_digest_registration() {
    registers_refreshes_and_takes_calls("SHA-256");
}

/// The caller the registrar tests send through Kamailio carries on when the
/// callee's 180 arrives after its 200 (a sipp callee that always does
/// that), where sipp's built-in `uac` aborts the call.
#[test]
fn the_caller_through_kamailio_tolerates_a_180_after_the_200() {
    let call = |name: &str, scenario: &[&str]| {
        let dir = scratch_dir(name).unwrap();
        let (mut callee, callee_port) = spawn_sipp_uas(&dir, "uas_late180.xml").unwrap();
        let target = format!("127.0.0.1:{callee_port}");
        let port = free_port().unwrap().to_string();
        // The pause after the ACK makes sure the 180 arrives during it,
        // where the built-in scenario has no step that takes it.
        let mut args = scenario.to_vec();
        args.extend([
            target.as_str(),
            "-i",
            "127.0.0.1",
            "-p",
            &port,
            "-m",
            "1",
            "-d",
            "500",
            "-timeout",
            "20s",
            "-timeout_error",
        ]);
        let run = run_sipp(&dir, &args, Duration::from_secs(30)).unwrap();
        let callee_exit = wait_child(&mut callee, Duration::from_secs(10));
        (run, callee_exit)
    };
    let (builtin, _) = call("late180_builtin_uac", &["-sn", "uac"]);
    let errors = std::fs::read_to_string(builtin.dir.join("errors.log")).unwrap_or_default();
    assert!(
        builtin.status != Some(0) && errors.contains("180 Ringing"),
        "the callee's late 180 trips sipp's built-in uac (else this test shows nothing):\n{}",
        builtin.describe()
    );
    let scenario = scenario_dir().join("uac_tolerant.xml");
    let (run, callee_exit) = call("late180_tolerant_uac", &["-sf", scenario.to_str().unwrap()]);
    assert_eq!(run.status, Some(0), "{}", run.describe());
    assert_eq!(run.stats.map(|s| s.successful), Some(1));
    assert_eq!(callee_exit, Some(0), "the callee saw ACK, BYE and sent 200");
}

#[test]
fn wrong_password_fails_visibly() {
    let kamailio = Kamailio::start("kamailio_wrongpw", "MD5", "right-one").unwrap();
    let bot = bot_with_password("kamailio_wrongpw_bot", &kamailio, "wrong-one", 60);
    assert!(
        bot.wait_until(Duration::from_secs(10), |l| l
            .contains("registration rejected")),
        "{}",
        tail(&bot.log(), 20)
    );
    let (_, metrics) = http_get(bot.admin, "/metrics").unwrap();
    assert!(
        prom_value(&metrics, "voxbridge_registration_failures_total").unwrap_or(0.0) >= 1.0,
        "{metrics}"
    );
    assert_eq!(
        prom_value(&metrics, "voxbridge_registrations_total"),
        Some(0.0)
    );
    let log = bot.stop().unwrap();
    assert!(
        log.contains("status=401") || log.contains("status=403"),
        "{}",
        tail(&log, 20)
    );
    assert!(!log.contains("wrong-one"));
}
