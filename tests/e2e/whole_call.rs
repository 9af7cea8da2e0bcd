//! The whole call, end to end, with real peers only: a baresip softphone
//! whose number belongs to a Tryton customer calls the bot (dialog script
//! `tests/scripts/whole-call.yaml`), says "where is my order" (espeak-ng
//! audio, PocketSphinx grammar), keys the order number (RFC 4733), hears
//! its status read from Tryton, says "I want to talk to an agent", and is
//! transferred by REFER to a second SIP endpoint (a sipp UAS) with the
//! customer id and the intent attached. Afterwards Tryton has the call log
//! (a note on the party with the transcript), Request Tracker has the
//! ticket the script opened, and the call record says `transferred`.
//!
//! Tryton 7.0 and RT 5 run on 127.0.0.1 with the seed data of crm-bridge's
//! own tests (scripts/install-crm-servers.sh installs them); without them
//! the test says why and skips. Every wait is bounded.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use voxbridge_e2e::baresip::Baresip;
use voxbridge_e2e::crm_servers::{
    rt_missing, start_rt, start_tryton, tryton_missing, RtServer, TrytonServer,
    TRYTON_ADMIN_PASSWORD, TRYTON_DATABASE,
};
use voxbridge_e2e::speech::espeak_8k;
use voxbridge_e2e::{
    http_get, scratch_dir, spawn_sipp_uas, tail, voxbridge_bin, wait_child, workspace_root, Bot,
    BotConfig,
};

/// Li Wei in seed.py: gold tier, mobile "+86 138 0013 8000".
const CALLER: &str = "+8613800138000";
const CUSTOMER_CODE: &str = "CUST-001";
const CUSTOMER_NAME: &str = "Li Wei";
/// Li Wei's quoted sale has the reference WEB-1001: the script looks up
/// "WEB-" + the keys.
const ORDER_KEYS: &str = "1001";

const GREETING: &str = "Hello Li Wei, thank you for calling Acme Home.";
const MENU: &str = "How can I help you today?";
const ASK_ORDER: &str = "Please key in your order number, followed by the hash key.";
const STATUS: &str = "Your order 1001 has the status quoted.";
const ANYTHING_ELSE: &str = "Is there anything else I can help you with?";
const CONNECTING: &str = "Connecting you to an agent.";

const SAY_ORDER: &str = "where is my order";
const SAY_AGENT: &str = "i want to talk to an agent";

/// `samples` (8 kHz mono) as a 16-bit WAV, `lead` seconds of silence
/// before and `trail` after: baresip drops the call when its source file
/// ends, so the trail outlasts the rest of the call.
fn write_wav(path: &Path, samples: &[i16], lead: f64, trail: f64) -> PathBuf {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).expect("create WAV");
    let silence = |secs: f64| std::iter::repeat_n(0i16, (secs * 8000.0) as usize);
    for s in silence(lead)
        .chain(samples.iter().copied())
        .chain(silence(trail))
    {
        w.write_sample(s).expect("write WAV");
    }
    w.finalize().expect("finish WAV");
    path.to_path_buf()
}

/// How long the bot takes to say `text` (same espeak-ng voice and rate).
fn spoken(text: &str) -> Duration {
    let samples = espeak_8k(text, "en-us").expect("espeak-ng");
    Duration::from_millis(samples.len() as u64 / 8)
}

/// The bot's live transcript of one call, as `speaker: text` lines.
fn live_transcript(bot: &Bot, call_id: &str) -> Vec<String> {
    let Ok((200, body)) = http_get(bot.admin, &format!("/calls/{call_id}")) else {
        return Vec::new();
    };
    let view: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    view["transcript"]
        .as_array()
        .map(|lines| {
            lines
                .iter()
                .map(|l| {
                    format!(
                        "{}: {}",
                        l["speaker"].as_str().unwrap_or("?"),
                        l["text"].as_str().unwrap_or("")
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A helper process (the sipp agent) that must not outlive a failed test.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Everything a failed step should show.
struct Evidence<'a> {
    bot: &'a Bot,
    call_id: String,
    phone: &'a Baresip,
    agent_log: PathBuf,
}

impl Evidence<'_> {
    fn show(&self) -> String {
        format!(
            "--- live transcript\n{}\n--- bot log (tail)\n{}\n--- baresip log (tail)\n{}\n--- agent (sipp) messages (tail)\n{}",
            live_transcript(self.bot, &self.call_id).join("\n"),
            tail(&self.bot.log(), 40),
            tail(&self.phone.log(), 40),
            tail(
                &std::fs::read_to_string(&self.agent_log).unwrap_or_default(),
                30
            )
        )
    }

    /// Wait until the live transcript has a line equal to `line` (or
    /// starting with it, when `line` ends with `…`); the moment it appeared
    /// (the bot starts saying a prompt then).
    fn wait_line(&self, line: &str, timeout: Duration, step: &str) -> Instant {
        let matches = |l: &String| match line.strip_suffix('…') {
            Some(prefix) => l.starts_with(prefix),
            None => l == line,
        };
        let start = Instant::now();
        loop {
            if live_transcript(self.bot, &self.call_id).iter().any(matches) {
                return Instant::now();
            }
            if start.elapsed() > timeout {
                panic!(
                    "step `{step}`: no {line:?} in the live transcript after {timeout:?}\n{}",
                    self.show()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_log(&self, needle: &str, timeout: Duration, step: &str) {
        if !self.bot.wait_until(timeout, |log| log.contains(needle)) {
            panic!(
                "step `{step}`: no {needle:?} in the bot log after {timeout:?}\n{}",
                self.show()
            );
        }
    }
}

/// The crm-bridge configuration: customers and orders from Tryton, the
/// call log as a note on the Tryton party, tickets to Request Tracker.
fn crm_config(dir: &Path, tryton: &TrytonServer, rt: &RtServer) -> PathBuf {
    let path = dir.join("crm.yaml");
    std::fs::write(
        &path,
        format!(
            r#"default_country: CN
systems:
  erp:
    kind: tryton
    url: {tryton_url}
    database: {TRYTON_DATABASE}
    user: admin
    password: {{ env: VB_E2E_TRYTON_PASSWORD }}
    tier_map: tier
    value_maps:
      tier: {{ Gold: gold, Silver: silver, "*": standard }}
  helpdesk:
    kind: rt
    url: {rt_url}
    token: {{ env: VB_E2E_RT_TOKEN }}
    phone_field: Phone
    ticket_queue: Support
    call_log_queue: Calls
routes:
  find_customer: erp
  get_customer: erp
  list_orders: erp
  order_status: erp
  stock: erp
  log_call: erp
  create_ticket: helpdesk
  create_task: helpdesk
timeouts:
  find_customer: 5s
  get_customer: 5s
  list_orders: 5s
  order_status: 5s
  create_ticket: 10s
  log_call: 10s
outbox:
  path: {outbox}
  backoff_base: 200ms
  backoff_max: 2s
  poll_interval: 200ms
"#,
            tryton_url = tryton.url(),
            rt_url = rt.url(),
            outbox = dir.join("outbox.sqlite").display(),
        ),
    )
    .expect("write crm.yaml");
    path
}

#[test]
fn tryton_customer_asks_for_order_status_and_is_transferred_to_an_agent() {
    if let Some(why) = tryton_missing().or_else(rt_missing) {
        panic!("the whole-call test needs Tryton and RT ({why}): ./scripts/install-deps.sh");
    }
    let began = Instant::now();
    let dir = scratch_dir("whole_call").unwrap();

    // ---- the CRM/ERP and the ticket system, seeded as crm-bridge's tests
    let rt_thread = std::thread::spawn(|| start_rt("whole_call_rt"));
    let tryton = start_tryton("whole_call_tryton").expect("Tryton starts");
    let rt = rt_thread
        .join()
        .expect("RT start-up thread")
        .expect("Request Tracker starts");
    let party = tryton
        .party_id(CUSTOMER_CODE)
        .unwrap_or_else(|| panic!("seed.py has no {CUSTOMER_CODE}: {}", tryton.seed));
    assert!(
        tryton.party_notes(party).expect("notes").is_empty(),
        "a fresh Tryton has no call notes for {CUSTOMER_NAME}"
    );
    let tickets_before = rt.ticket_ids_in("Support").expect("RT search");
    assert!(tickets_before.is_empty(), "{tickets_before:?}");

    // ---- the agents' phone: a sipp UAS that answers one call
    let (agent, agent_port) = spawn_sipp_uas(&dir, "uas").expect("sipp UAS");
    let mut agent = KillOnDrop(agent);
    let agent_log = dir.join("uas-messages.log");
    let agent_uri = format!("sip:agent@127.0.0.1:{agent_port}");

    // ---- the bot
    let crm = crm_config(&dir, &tryton, &rt);
    let root = workspace_root();
    let cdr = dir.join("cdr.sqlite");
    let cfg = BotConfig {
        more: format!(
            "crm:\n  config: {crm}\n  lookup_budget_ms: 5000\ndialog:\n  script: {script}\nspeech:\n  intent_model: {model}\ntransfer:\n  timeout_secs: 20\n  targets:\n    agents: {agent_uri}\ncdr:\n  path: {cdr}",
            crm = crm.display(),
            script = root.join("tests/scripts/whole-call.yaml").display(),
            model = root.join("fixtures/models/intent.onnx").display(),
            cdr = cdr.display(),
        ),
        env: vec![
            (
                "VB_E2E_TRYTON_PASSWORD".into(),
                TRYTON_ADMIN_PASSWORD.into(),
            ),
            ("VB_E2E_RT_TOKEN".into(), rt.token.clone()),
        ],
        ..BotConfig::default()
    };
    let bot = Bot::start("whole_call_bot", &cfg).expect("voxbridge starts");
    bot.wait_for_log("calls run the dialog script", Duration::from_secs(10))
        .expect("the script is loaded");

    // ---- the caller's audio: silence, then each utterance when its turn comes
    let silence = write_wav(&dir.join("silence.wav"), &[], 0.0, 180.0);
    let say_order = write_wav(
        &dir.join("say-order.wav"),
        &espeak_8k(SAY_ORDER, "en-us").expect("espeak-ng"),
        0.3,
        150.0,
    );
    let say_agent = write_wav(
        &dir.join("say-agent.wav"),
        &espeak_8k(SAY_AGENT, "en-us").expect("espeak-ng"),
        0.3,
        150.0,
    );

    let mut phone = Baresip::dial(
        &dir,
        CALLER,
        &silence,
        &format!("sip:bot@{}", bot.addr),
        Duration::from_secs(150),
    )
    .expect("baresip starts");

    // Step 1: the bot identifies the caller in Tryton while it rings.
    assert!(
        bot.wait_until(Duration::from_secs(15), |l| l.contains("incoming call")),
        "baresip's INVITE reached the bot:\n{}\n{}",
        tail(&bot.log(), 20),
        tail(&phone.log(), 30)
    );
    let call_id = bot
        .log()
        .split("incoming call call_id=")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .expect("the call id in the log")
        .to_string();
    let ev = Evidence {
        bot: &bot,
        call_id: call_id.clone(),
        phone: &phone,
        agent_log: agent_log.clone(),
    };
    ev.wait_log(
        &format!("caller identified call_id={call_id} customer={party} tier=gold"),
        Duration::from_secs(10),
        "caller looked up in Tryton by the From number",
    );

    // Step 2: greeted by the name Tryton has, then asked what they want.
    ev.wait_line(
        &format!("bot: {GREETING}"),
        Duration::from_secs(10),
        "greeting by name",
    );
    let asked = ev.wait_line(
        &format!("bot: {MENU}"),
        Duration::from_secs(15),
        "menu question",
    );
    std::thread::sleep(
        (asked + spoken(MENU) + Duration::from_millis(600))
            .saturating_duration_since(Instant::now()),
    );

    // Step 3: "where is my order" → intent order_status.
    phone.play(&say_order).expect("baresip ausrc");
    ev.wait_log(
        "intent=\"order_status\"",
        Duration::from_secs(15),
        "speech recognised as order_status",
    );
    ev.wait_line(
        &format!("caller: {SAY_ORDER}"),
        Duration::from_secs(2),
        "the caller's words in the transcript",
    );
    phone.play(&silence).expect("baresip ausrc");

    // Step 4: the order number by keys, ended by #.
    let asked = ev.wait_line(
        &format!("bot: {ASK_ORDER}"),
        Duration::from_secs(10),
        "order number question",
    );
    std::thread::sleep(
        (asked + spoken(ASK_ORDER) + Duration::from_millis(400))
            .saturating_duration_since(Instant::now()),
    );
    phone
        .keys(&format!("{ORDER_KEYS}#"), Duration::from_millis(300))
        .expect("baresip keys");
    ev.wait_log(
        &format!("digits collected call_id={call_id} digits={ORDER_KEYS}"),
        Duration::from_secs(10),
        "order number keyed",
    );

    // Step 5: the status, read from Tryton, and the next question.
    ev.wait_line(
        "system: lookup order_status: found…",
        Duration::from_secs(10),
        "order looked up in Tryton",
    );
    ev.wait_line(
        &format!("bot: {STATUS}"),
        Duration::from_secs(5),
        "order status read out",
    );
    let asked = ev.wait_line(
        &format!("bot: {ANYTHING_ELSE}"),
        Duration::from_secs(15),
        "anything-else question",
    );
    std::thread::sleep(
        (asked + spoken(ANYTHING_ELSE) + Duration::from_millis(600))
            .saturating_duration_since(Instant::now()),
    );

    // Step 6: "I want to talk to an agent" → a ticket in RT, then REFER.
    phone.play(&say_agent).expect("baresip ausrc");
    ev.wait_log(
        "intent=\"agent\"",
        Duration::from_secs(15),
        "speech recognised as agent",
    );
    ev.wait_line(
        &format!("caller: {SAY_AGENT}"),
        Duration::from_secs(2),
        "the caller's words in the transcript",
    );
    phone.play(&silence).expect("baresip ausrc");
    ev.wait_line(
        "system: ticket …",
        Duration::from_secs(15),
        "ticket opened in Request Tracker",
    );
    let ticket_id = live_transcript(&bot, &call_id)
        .iter()
        .find_map(|l| {
            l.strip_prefix("system: ticket ")
                .and_then(|r| r.strip_suffix(" created"))
                .map(str::to_string)
        })
        .expect("the ticket id in the transcript");
    ev.wait_line(
        &format!("bot: {CONNECTING}"),
        Duration::from_secs(5),
        "transfer announced",
    );
    ev.wait_line(
        "system: transfer to agents",
        Duration::from_secs(10),
        "transfer to the agents target",
    );
    ev.wait_log(
        "transferring by REFER",
        Duration::from_secs(5),
        "REFER sent",
    );

    // Step 7: baresip follows the REFER; the agent answers; the bot leaves.
    ev.wait_log(
        "transfer answered; leaving the call",
        Duration::from_secs(25),
        "the agent answered the transferred call",
    );
    ev.wait_log(
        &format!("call ended call_id={call_id} reason=\"transferred\""),
        Duration::from_secs(10),
        "the bot's leg ended as transferred",
    );
    let phone_log = phone.log();
    let refer = phone_log
        .split("REFER sip:")
        .nth(1)
        .unwrap_or_else(|| panic!("baresip's SIP trace has no REFER\n{}", ev.show()));
    let refer = &refer[..refer
        .find("\r\n\r\n")
        .or_else(|| refer.find("\n\n"))
        .unwrap_or(refer.len())];
    for expected in [
        format!("X-VB-customer={party}"),
        "X-VB-reason=agent".to_string(),
        "X-VB-tier=gold".to_string(),
        format!("X-VB-call-id={call_id}"),
        agent_uri.clone(),
    ] {
        assert!(
            refer.contains(&expected),
            "the REFER's Refer-To carries {expected:?}:\n{refer}"
        );
    }
    assert!(
        refer.contains("User-to-User:"),
        "the REFER carries the context in User-to-User too:\n{refer}"
    );

    // The agent got the caller's INVITE with the context, and the call.
    let start = Instant::now();
    let mut agent_invite = String::new();
    while start.elapsed() < Duration::from_secs(10) {
        let text = std::fs::read_to_string(&agent_log).unwrap_or_default();
        if let Some(i) = text.find("INVITE sip:agent@") {
            agent_invite = text[i..].split("\n\n").next().unwrap_or("").to_string();
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        !agent_invite.is_empty(),
        "the agent received an INVITE\n{}",
        ev.show()
    );
    let request_line = agent_invite.lines().next().unwrap_or("");
    // baresip copies the Refer-To URI, headers and all, into the new
    // INVITE's Request-URI (and To): that is where the agent's PBX or
    // phone finds the context.
    for expected in [
        format!("X-VB-customer={party}"),
        "X-VB-reason=agent".to_string(),
    ] {
        assert!(
            request_line.contains(&expected),
            "the agent's INVITE carries {expected:?}: {request_line}\n{agent_invite}"
        );
    }
    assert!(
        agent_invite
            .lines()
            .any(|l| l.starts_with("From:") && l.contains(CALLER)),
        "the transferred call comes from the caller's phone:\n{agent_invite}"
    );
    // The caller and the agent talk, then the caller hangs up; the UAS's
    // one call is complete.
    std::thread::sleep(Duration::from_secs(1));
    phone.command("hangup").expect("baresip hangup");
    let agent_exit = wait_child(&mut agent.0, Duration::from_secs(15));
    assert_eq!(
        agent_exit,
        Some(0),
        "the agent's call was answered and ended cleanly\n{}",
        ev.show()
    );
    let _ = phone.wait_exit(Duration::from_millis(100));

    // ---- the ticket in Request Tracker
    let support = rt.ticket_ids_in("Support").expect("RT search");
    assert_eq!(
        support,
        vec![ticket_id.clone()],
        "one ticket in Support, the one the bot announced"
    );
    let ticket = rt.ticket(&ticket_id).expect("RT ticket");
    assert_eq!(
        ticket["Subject"].as_str(),
        Some(format!("Phone call from {CUSTOMER_NAME}: asked for an agent").as_str()),
        "{ticket}"
    );
    let content = rt.ticket_content(&ticket_id).expect("RT attachments");
    // The caller's number, masked as in the logs: a ticket's text goes to
    // everyone watching the queue (and RT mails it out).
    let masked = format!(
        "+{}{}",
        "*".repeat(CALLER.len() - 5),
        &CALLER[CALLER.len() - 4..]
    );
    assert!(
        content.contains("asked for an agent") && content.contains(&format!("Caller: {masked}")),
        "the ticket's text has the request and the caller's masked number:\n{content}"
    );
    assert!(
        !content.contains(CALLER),
        "the caller's full number is in the ticket's text:\n{content}"
    );

    // ---- the call record
    let db = rusqlite::Connection::open(&cdr).expect("CDR database");
    let (end_reason, dtmf, target, turns): (String, String, Option<String>, Option<String>) = db
        .query_row(
            "SELECT end_reason, dtmf, transfer_target, turns_json FROM calls WHERE call_id = ?1",
            [&call_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .expect("the call's CDR row");
    assert_eq!(end_reason, "transferred");
    assert!(dtmf.starts_with(ORDER_KEYS), "CDR dtmf {dtmf:?}");
    assert_eq!(target.as_deref(), Some(agent_uri.as_str()));
    let turns = turns.unwrap_or_default();
    let turns: Value = serde_json::from_str(&turns)
        .unwrap_or_else(|e| panic!("turns_json is JSON ({e}): {turns}"));
    let kinds: Vec<&str> = turns
        .as_array()
        .map(|t| t.iter().filter_map(|t| t["kind"].as_str()).collect())
        .unwrap_or_default();
    // Two spoken answers and one keyed, each with the bot's reply timed.
    assert_eq!(
        kinds,
        ["speech", "dtmf", "speech"],
        "turn latencies recorded per turn: {turns}"
    );

    // ---- afterwards: the call log in Tryton, delivered by the outbox
    let start = Instant::now();
    let mut notes = Vec::new();
    while start.elapsed() < Duration::from_secs(30) {
        notes = tryton.party_notes(party).expect("Tryton notes");
        if !notes.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_eq!(
        notes.len(),
        1,
        "one call note on {CUSTOMER_NAME}'s party in Tryton: {notes:?}\n{}\n{}",
        tail(&bot.log(), 30),
        tryton.log()
    );
    let outbox = Command::new(voxbridge_bin().unwrap())
        .args(["outbox", "--db"])
        .arg(dir.join("outbox.sqlite"))
        .arg("list")
        .output()
        .expect("voxbridge outbox list");
    let outbox = String::from_utf8_lossy(&outbox.stdout).into_owned();
    assert!(
        outbox.contains("0 pending, 1 delivered, 0 dead"),
        "the outbox delivered the one call log: {outbox}"
    );

    let note = &notes[0];
    for expected in [
        &format!(
            "Call from +{}{}, ",
            "*".repeat(CALLER.len() - 5),
            &CALLER[CALLER.len() - 4..]
        ),
        "transferred",
        &format!("Bot: {GREETING}"),
        &format!("Caller: {SAY_ORDER}"),
        &format!("Caller: [keys] {ORDER_KEYS}"),
        &format!("Bot: {STATUS}"),
        &format!("Caller: {SAY_AGENT}"),
        "Intents: order_status, agent",
        &format!("Transferred to: {agent_uri}"),
        "voxbridge-key: ",
    ] {
        // A note with the keys but none of the words means the script's
        // own record was not taken when the transfer ended the call.
        assert!(
            note.contains(expected),
            "the Tryton call note has {expected:?}:\n{note}"
        );
    }
    drop(phone);
    let log = bot.stop().expect("voxbridge stops");
    assert!(
        voxbridge_e2e::summary_metric(&log, "transfers_ok") == Some(1),
        "{}",
        tail(&log, 5)
    );
    eprintln!("whole call test: {:.1} s", began.elapsed().as_secs_f64());
}
