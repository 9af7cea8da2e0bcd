//! The engine with the embedded CRM: the caller is looked up while the
//! phone rings, and the post-call record reaches the CRM through the
//! durable outbox.

use std::time::Duration;

use voxbridge_e2e::{
    free_port, run_sipp, scenario_dir, scratch_dir, tail, workspace_root, Bot, BotConfig,
};

#[test]
fn known_caller_is_identified_and_the_call_is_logged_in_the_crm() {
    let dir = scratch_dir("crm_embedded").unwrap();
    let crm_config = voxbridge_e2e::embedded_crm(&dir).expect("writing the CRM config");
    let cfg = BotConfig {
        more: format!("crm:\n  config: {}", crm_config.display()),
        ..BotConfig::default()
    };
    let bot = Bot::start("crm_embedded_bot", &cfg).unwrap();
    let call = |number: &str, name: &str| {
        let sipp_dir = scratch_dir(name).unwrap();
        let port = free_port().unwrap().to_string();
        let target = bot.addr.to_string();
        let scenario = scenario_dir().join("uac_from.xml");
        let run = run_sipp(
            &sipp_dir,
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
                "-set",
                "caller",
                number,
                "-timeout",
                "20s",
                "-timeout_error",
            ],
            Duration::from_secs(30),
        )
        .unwrap();
        assert_eq!(run.status, Some(0), "{}", run.describe());
    };
    // Li Wei, gold, stored as "+86 138 0013 8000"; and a number nobody has.
    call("+8613800138000", "crm_embedded_known");
    call("+8613999999999", "crm_embedded_unknown");
    let log = bot.stop().unwrap();
    assert!(
        log.contains("caller identified")
            && log.contains("customer=C001")
            && log.contains("tier=gold"),
        "{}",
        tail(&log, 20)
    );
    assert!(log.contains("caller not in the CRM"), "{}", tail(&log, 20));
    assert_eq!(
        log.matches("call log queued for the CRM").count(),
        2,
        "{}",
        tail(&log, 20)
    );

    // Delivered by the outbox worker before the process stopped.
    let crm = rusqlite::Connection::open(dir.join("crm.sqlite")).unwrap();
    let rows: Vec<(Option<String>, String, String)> = crm
        .prepare("SELECT customer_id, disposition, record FROM call_logs ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(rows.len(), 2, "two call logs in the CRM");
    assert_eq!(rows[0].0.as_deref(), Some("C001"));
    assert_eq!(rows[0].1, "abandoned", "the caller hung up");
    assert_eq!(rows[1].0, None);
}

/// A dialog script runs the call: the bot greets the caller by the name the
/// CRM gave, takes an order number by keys, reads its status from the CRM,
/// says it (espeak-ng TTS) and hangs up; the call log in the CRM carries the
/// script's transcript and disposition.
#[test]
fn dialog_script_runs_a_live_call_against_the_crm() {
    let dir = scratch_dir("crm_script").unwrap();
    let crm_config = voxbridge_e2e::embedded_crm(&dir).expect("writing the CRM config");
    let script = workspace_root().join("tests/scripts/order-status-dtmf.yaml");
    let cfg = BotConfig {
        more: format!(
            "crm:\n  config: {}\ndialog:\n  script: {}",
            crm_config.display(),
            script.display()
        ),
        ..BotConfig::default()
    };
    let bot = Bot::start("crm_script_bot", &cfg).unwrap();
    let sipp_dir = scratch_dir("crm_script_sipp").unwrap();
    let port = free_port().unwrap().to_string();
    let target = bot.addr.to_string();
    let scenario = scenario_dir().join("uac_keys_order.xml");
    let run = run_sipp(
        &sipp_dir,
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
            "-set",
            "caller",
            "+8613800138000",
            "-timeout",
            "30s",
            "-timeout_error",
        ],
        Duration::from_secs(40),
    )
    .unwrap();
    let log = bot.stop().unwrap();
    assert_eq!(
        run.status,
        Some(0),
        "{}\n{}",
        run.describe(),
        tail(&log, 30)
    );
    assert!(
        log.contains("calls run the dialog script"),
        "{}",
        tail(&log, 30)
    );
    assert!(log.contains("digits=1001"), "{}", tail(&log, 30));

    let crm = rusqlite::Connection::open(dir.join("crm.sqlite")).unwrap();
    let (customer, disposition, record): (Option<String>, String, String) = crm
        .query_row(
            "SELECT customer_id, disposition, record FROM call_logs",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(customer.as_deref(), Some("C001"));
    assert_eq!(disposition, "resolved");
    assert!(
        record.contains("Hello Li Wei."),
        "greeted by the CRM's name: {record}"
    );
    assert!(
        record.contains("Order SO-1001 is shipped."),
        "status read from the CRM: {record}"
    );
}
