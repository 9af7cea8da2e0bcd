//! Campaigns end to end: the release binary runs a campaign file
//! (`voxbridge campaign start`) whose contacts are sipp callees on
//! loopback, through an account whose outbound proxy is the sipp.
//!
//! - `one_contact_per_outcome`: a person (answers and speaks), busy, no
//!   answer (CANCEL at `ring_timeout`), 404, an answering machine (a long
//!   espeak-ng voicemail greeting then a sox beep; the bot waits for the
//!   beep, leaves its message and hangs up) and a number on the do-not-call
//!   file: each contact ends with its disposition, the do-not-call number
//!   never reaches sipp, and every attempt's result is in the CRM outbox.
//! - `pacing_holds_against_sipp`: 300 contacts, `max_concurrent: 20`,
//!   `calls_per_second: 5`, against a sipp that answers, speaks a little
//!   and hangs up: sipp's own message log shows at most 20 calls at once
//!   and at most 5 INVITEs in any one-second window (sliding, not only
//!   clock seconds), and every contact ends with exactly one disposition.
//!
//! - `through_kamailio_demanding_digest_auth`: the account's outbound
//!   proxy is a real Kamailio that answers every INVITE with 407 and
//!   relays the authenticated one to the sipp callees (a person, busy, no
//!   answer); the Request-URI's host is neither of them, so the CANCEL at
//!   `ring_timeout` only reaches sipp if it follows the INVITE's Route
//!   through the proxy.
//!
//! The campaign routes through `registration.accounts` (`via: trunk`)
//! whose `outbound_proxy` is the sipp (or Kamailio). Its registrar names an
//! address over TCP where nobody listens: the account's REGISTER is refused
//! and retried in the background, which the calls do not wait for. The
//! outbound proxy goes on the INVITE as a pre-loaded Route, and the CANCEL
//! (built by the stack from the INVITE) follows it.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use voxbridge_e2e::pcap::PcapBuilder;
use voxbridge_e2e::speech::{espeak_8k, wav_8k};
use voxbridge_e2e::{
    free_port, http_get, scratch_dir, tail, voxbridge_bin, wait_child, Bot, BotConfig, Kamailio,
};

fn script() -> PathBuf {
    voxbridge_e2e::workspace_root().join("fixtures/scripts/outbound-follow-up.yaml")
}

/// A sipp UAS for every call of a campaign, its messages traced; its port.
fn callee(dir: &Path, scenario: &str, calls: usize, keys: &[(&str, &Path)]) -> (Child, u16) {
    let port = free_port().unwrap();
    let media = free_port().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(scenario);
    let mut cmd = Command::new("sipp");
    cmd.arg("-sf")
        .arg(&src)
        .args(["-i", "127.0.0.1", "-p", &port.to_string()])
        .args([
            "-mp",
            &media.to_string(),
            "-m",
            &calls.to_string(),
            "-nostdin",
        ])
        .args(["-timeout", "150s", "-trace_msg", "-message_file"])
        .arg(dir.join("callee-messages.log"))
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in keys {
        cmd.arg("-key").arg(k).arg(v);
    }
    let mut child = cmd.spawn().expect("sipp (package sip-tester)");
    std::thread::sleep(Duration::from_millis(300));
    // sipp exits at once on a bad scenario or a missing `-key` (a
    // `[machine]` the scenario plays but the test did not supply): every
    // INVITE would then go unanswered and look like a no-answer.
    if let Ok(Some(status)) = child.try_wait() {
        panic!("sipp {scenario} exited at start ({status}): a scenario error or a missing -key");
    }
    (child, port)
}

/// A bot with the follow-up script, the embedded CRM and a campaign store
/// in `dir`, and the account `trunk` sending INVITEs to `proxy_port`.
fn bot(name: &str, dir: &Path, proxy_port: u16, max_calls: u32) -> Bot {
    bot_via(name, dir, proxy_port, proxy_port, "unused", max_calls)
}

/// [`bot`] with the account's registrar (the Request-URI's host, over TCP
/// where nobody listens) apart from its outbound proxy, and its password.
fn bot_via(
    name: &str,
    dir: &Path,
    registrar_port: u16,
    proxy_port: u16,
    password: &str,
    max_calls: u32,
) -> Bot {
    let crm = voxbridge_e2e::embedded_crm(dir).expect("writing the CRM config");
    let cfg = BotConfig {
        more: format!(
            "dialog:\n  script: {script}\ncdr:\n  path: {cdr}\nspeech:\n  grammar: true\n\
             crm:\n  config: {crm}\n  lookup_budget_ms: 2000\n\
             campaigns:\n  store: {store}\n\
             calls:\n  max_calls: {max_calls}\n\
             registration:\n  accounts:\n    - registrar: sip:127.0.0.1:{registrar_port};transport=tcp\n      username: bot\n      name: trunk\n      password_env: VB_E2E_TRUNK_PASSWORD\n      outbound_proxy: sip:127.0.0.1:{proxy_port}\n",
            script = script().display(),
            cdr = dir.join("cdr.sqlite").display(),
            crm = crm.display(),
            store = dir.join("campaigns.db").display(),
        ),
        env: vec![("VB_E2E_TRUNK_PASSWORD".into(), password.into())],
        ..BotConfig::default()
    };
    Bot::start(name, &cfg).unwrap()
}

/// `voxbridge campaign ARGS --admin …`: its stdout.
fn campaign_cli(bot: &Bot, args: &[&str]) -> String {
    let out = Command::new(voxbridge_bin().unwrap())
        .arg("campaign")
        .args(args)
        .args(["--admin", &bot.admin.to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "voxbridge campaign {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        tail(&bot.log(), 30)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Waits until the campaign is done; its last status (JSON).
fn wait_done(bot: &Bot, name: &str, within: Duration) -> serde_json::Value {
    let start = Instant::now();
    loop {
        let (code, body) = http_get(bot.admin, &format!("/campaigns/{name}")).unwrap();
        assert_eq!(code, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        if v["state"] == "done" {
            return v;
        }
        assert!(
            start.elapsed() < within,
            "campaign not done in {within:?}: {v}\n{}",
            tail(&bot.log(), 40)
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Each contact's final disposition and attempt count, from the store.
fn contacts(dir: &Path, name: &str) -> BTreeMap<String, (Option<String>, u32)> {
    let db = rusqlite::Connection::open(dir.join("campaigns.db")).unwrap();
    let mut stmt = db
        .prepare("SELECT id, disposition, attempts FROM contacts WHERE campaign = ?1")
        .unwrap();
    stmt.query_map([name], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// The outbox's payload of each key that starts with `prefix`.
fn outbox(dir: &Path, prefix: &str) -> BTreeMap<String, String> {
    let db = rusqlite::Connection::open(dir.join("outbox.sqlite")).unwrap();
    let mut stmt = db
        .prepare("SELECT key, payload FROM outbox WHERE key LIKE ?1 || '%'")
        .unwrap();
    stmt.query_map([prefix], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// One SIP message of sipp's `-trace_msg` log.
#[derive(Debug)]
struct Traced {
    /// Seconds since the epoch.
    at: f64,
    received: bool,
    first_line: String,
    call_id: String,
}

/// sipp's message log: blocks that start with a dashed line and a
/// timestamp (`----… 2026-12-02 13:00:00.123456`), then `UDP message
/// received|sent`, then the message.
fn traced(log: &str) -> Vec<Traced> {
    let mut out = Vec::new();
    for block in log.split("\n----------------------------------------------- ") {
        let mut lines = block.lines();
        let Some(stamp) = lines.next() else { continue };
        let stamp = stamp.trim_start_matches('-').trim();
        let Some(at) = epoch_seconds(stamp) else {
            continue;
        };
        let Some(dir_line) = lines.next() else {
            continue;
        };
        let received = dir_line.contains("received");
        let mut rest = lines.skip_while(|l| l.trim().is_empty());
        let first_line = rest.next().unwrap_or_default().trim().to_string();
        let call_id = rest
            .find_map(|l| {
                l.strip_prefix("Call-ID:")
                    .or_else(|| l.strip_prefix("i:"))
                    .map(|v| v.trim().to_string())
            })
            .unwrap_or_default();
        out.push(Traced {
            at,
            received,
            first_line,
            call_id,
        });
    }
    out
}

/// `2026-12-02 13:00:00.123456` (UTC or local: only differences matter)
/// to seconds.
fn epoch_seconds(stamp: &str) -> Option<f64> {
    let (date, time) = stamp.split_once(' ')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.trim().split(':');
    let (h, min) = (
        t.next()?.parse::<i64>().ok()?,
        t.next()?.parse::<i64>().ok()?,
    );
    let s: f64 = t.next()?.parse().ok()?;
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + h * 3600 + min * 60) as f64 + s)
}

#[test]
fn one_contact_per_outcome() {
    let dir = scratch_dir("campaign_outcomes").unwrap();
    // A person: "Hello?" and waits; later "No." to the script's question.
    let human = dir.join("human.pcap");
    PcapBuilder::new()
        .silence(400)
        .speech(&espeak_8k("Hello?", "en-us").expect("espeak-ng speaks"))
        .silence(9000)
        .speech(&espeak_8k("No.", "en-us").unwrap())
        .silence(8000)
        .write(&human)
        .unwrap();
    // A recorder: a long greeting, then a beep made with sox, then quiet.
    let beep_wav = dir.join("beep.wav");
    let sox = Command::new("sox")
        .args(["-n", "-r", "8000", "-c", "1", "-b", "16"])
        .arg(&beep_wav)
        .args(["synth", "0.5", "sine", "1000", "vol", "0.4"])
        .status()
        .expect("sox (scripts/install-deps.sh installs it)");
    assert!(sox.success(), "sox failed to make the beep");
    let machine = dir.join("machine.pcap");
    PcapBuilder::new()
        .silence(300)
        .speech(
            &espeak_8k(
                "Hi, you have reached the voicemail of Ann Lee. I am not able to take your call right now. \
                 Please leave your name, your number and a short message after the tone, and I will call you back.",
                "en-us",
            )
            .unwrap(),
        )
        .silence(500)
        .speech(&wav_8k(&beep_wav).unwrap())
        .silence(12_000)
        .write(&machine)
        .unwrap();
    std::fs::write(
        dir.join("list.csv"),
        "phone,id,name\n+12125550101,person,Ann Lee\n+12125550102,busy,Bo\n+12125550103,no_answer,Cy\n\
         +12125550104,not_found,Di\n+12125550105,machine,Ed\n+12125550106,on_dnc,Flo\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("dnc.txt"),
        "# asked not to be called\n+12125550106\n",
    )
    .unwrap();
    let file = dir.join("outcomes.yaml");
    std::fs::write(
        &file,
        format!(
            "name: e2e-outcomes\nscript: {}\ncaller_id: \"+15550100\"\nvia: trunk\nlist: {{ csv: list.csv }}\n\
             pacing: {{ max_concurrent: 6, calls_per_second: 5 }}\nring_timeout: 3s\n\
             machine: {{ detect: true, on_machine: leave_message, message: \"This is Acme calling about your order. Please call us back.\" }}\n\
             dnc: dnc.txt\n",
            script().display()
        ),
    )
    .unwrap();

    let (mut sipp, port) = callee(
        &dir,
        "callee-campaign.xml",
        5,
        &[("human", &human), ("machine", &machine)],
    );
    let bot = bot("campaign_outcomes_bot", &dir, port, 20);
    let started = campaign_cli(&bot, &["start", file.to_str().unwrap()]);
    assert!(started.contains("e2e-outcomes: started"), "{started}");
    let status = wait_done(&bot, "e2e-outcomes", Duration::from_secs(90));

    let got = contacts(&dir, "e2e-outcomes");
    let want = [
        ("person", "answered", 1),
        ("busy", "busy", 1),
        ("no_answer", "no_answer", 1),
        ("not_found", "not_found", 1),
        ("machine", "machine", 1),
        ("on_dnc", "do_not_call", 0),
    ];
    for (id, disposition, attempts) in want {
        assert_eq!(
            got.get(id),
            Some(&(Some(disposition.to_string()), attempts)),
            "{id}: {got:?}\n{status}\n{}",
            tail(&bot.log(), 60)
        );
    }
    assert_eq!(wait_child(&mut sipp, Duration::from_secs(30)), Some(0));
    let log = std::fs::read_to_string(dir.join("callee-messages.log")).unwrap();
    // The do-not-call number never reached sipp; the others each once.
    assert!(!log.contains("12125550106"), "a DNC number was dialled");
    for n in 1..=5 {
        assert_eq!(
            log.matches(&format!("INVITE sip:+1212555010{n}@")).count(),
            1,
            "+1212555010{n}"
        );
    }
    // The no-answer contact was cancelled.
    assert!(log.contains("CANCEL sip:+12125550103@"));

    // The bot waited for the beep and left its message.
    let bot_log = bot.log();
    assert!(
        bot_log.contains("message left after the beep"),
        "{}",
        tail(&bot_log, 60)
    );
    // Every attempt's result is in the CRM outbox: the call log with its
    // disposition (and for the machine, that the message was left).
    let start = Instant::now();
    let writes = loop {
        let w = outbox(&dir, "campaign:e2e-outcomes:");
        if w.len() >= 5 || start.elapsed() > Duration::from_secs(10) {
            break w;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    for (id, disposition, attempts) in want {
        if attempts == 0 {
            continue;
        }
        let key = format!("campaign:e2e-outcomes:{id}:1:0");
        let payload = writes
            .get(&key)
            .unwrap_or_else(|| panic!("{key} not in the outbox: {writes:?}"));
        let v: serde_json::Value = serde_json::from_str(payload).unwrap();
        let text = v.to_string();
        assert!(
            text.contains(&format!("\"disposition\":\"{disposition}\"")),
            "{key}: {text}"
        );
        if id == "machine" {
            assert!(text.contains("\"message_left\":\"yes\""), "{text}");
        }
        if id == "person" {
            assert!(text.contains("a person answered"), "{text}");
        }
    }
}

#[test]
fn through_kamailio_demanding_digest_auth() {
    let dir = scratch_dir("campaign_kamailio").unwrap();
    let human = dir.join("human.pcap");
    PcapBuilder::new()
        .silence(400)
        .speech(&espeak_8k("Hello?", "en-us").expect("espeak-ng speaks"))
        .silence(9000)
        .speech(&espeak_8k("No.", "en-us").unwrap())
        .silence(8000)
        .write(&human)
        .unwrap();
    std::fs::write(
        dir.join("list.csv"),
        "phone,id,name\n+12125550101,person,Ann Lee\n+12125550102,busy,Bo\n+12125550103,no_answer,Cy\n",
    )
    .unwrap();
    let file = dir.join("proxied.yaml");
    std::fs::write(
        &file,
        format!(
            "name: e2e-proxied\nscript: {}\ncaller_id: \"+15550100\"\nvia: trunk\nlist: {{ csv: list.csv }}\n\
             pacing: {{ max_concurrent: 3, calls_per_second: 5 }}\nring_timeout: 3s\n",
            script().display()
        ),
    )
    .unwrap();
    // The scenario plays `[machine]` too: sipp refuses to start without it
    // (no machine is called here, so the human pcap stands in).
    let (mut sipp, sipp_port) = callee(
        &dir,
        "callee-campaign.xml",
        3,
        &[("human", &human), ("machine", &human)],
    );
    let proxy_port = free_port().unwrap();
    let cfg = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("kamailio/outbound-proxy.cfg"),
    )
    .unwrap()
    .replace("@PORT@", &proxy_port.to_string())
    .replace("@PASSWORD@", "tr4nk-Secret")
    .replace("@CALLEE@", &format!("127.0.0.1:{sipp_port}"));
    let cfg_path = dir.join("kamailio.cfg");
    std::fs::write(&cfg_path, cfg).unwrap();
    let kamailio = Kamailio::with_config(&dir, &cfg_path, &[], proxy_port).unwrap();
    // The registrar (the Request-URI's host) is neither Kamailio nor sipp:
    // everything, the CANCEL included, must go through the proxy.
    let nowhere = free_port().unwrap();
    let bot = bot_via(
        "campaign_kamailio_bot",
        &dir,
        nowhere,
        proxy_port,
        "tr4nk-Secret",
        20,
    );
    campaign_cli(&bot, &["start", file.to_str().unwrap()]);
    let status = wait_done(&bot, "e2e-proxied", Duration::from_secs(60));

    let got = contacts(&dir, "e2e-proxied");
    let want = [
        ("person", "answered"),
        ("busy", "busy"),
        ("no_answer", "no_answer"),
    ];
    for (id, disposition) in want {
        assert_eq!(
            got.get(id),
            Some(&(Some(disposition.to_string()), 1)),
            "{id}: {got:?}\n{status}\n{}\nkamailio:\n{}",
            tail(&bot.log(), 40),
            tail(&kamailio.log(), 30)
        );
    }
    // sipp ends only when every call did: the cancelled one included.
    assert_eq!(
        wait_child(&mut sipp, Duration::from_secs(30)),
        Some(0),
        "sipp did not see every call end\nkamailio:\n{}",
        tail(&kamailio.log(), 30)
    );
    let k = kamailio.log();
    assert_eq!(
        k.matches("INVITE challenge for").count(),
        3,
        "{}",
        tail(&k, 30)
    );
    assert_eq!(
        k.matches("INVITE authenticated for").count(),
        3,
        "{}",
        tail(&k, 30)
    );
    assert!(
        k.contains("CANCEL for sip:+12125550103@"),
        "{}",
        tail(&k, 30)
    );
    let log = std::fs::read_to_string(dir.join("callee-messages.log")).unwrap();
    for n in 1..=3 {
        // Only the authenticated INVITE reaches the callee.
        assert_eq!(
            log.matches(&format!("INVITE sip:+1212555010{n}@")).count(),
            1,
            "+1212555010{n}"
        );
    }
    assert!(
        log.contains("CANCEL sip:+12125550103@"),
        "the CANCEL at ring_timeout did not reach the callee through the proxy"
    );
    assert!(
        !log.contains("Proxy-Authenticate"),
        "the callee saw a challenge"
    );
    // The INVITEs the callee saw came through Kamailio (its Record-Route:
    // it relays only after `INVITE authenticated`, counted above, so these
    // are the credentialed retries), with the credentials consumed.
    let record_route = format!("Record-Route: <sip:127.0.0.1:{proxy_port};lr");
    for n in 1..=3 {
        let at = log
            .find(&format!("INVITE sip:+1212555010{n}@"))
            .expect("the INVITE is in the callee's log");
        let head = &log[at..];
        let head = &head[..head
            .find("\n\n")
            .or(head.find("\r\n\r\n"))
            .unwrap_or(head.len())];
        assert!(
            head.contains(&record_route),
            "not through the proxy: {head}"
        );
        assert!(!head.contains("Proxy-Authorization"), "{head}");
    }
}

#[test]
fn pacing_holds_against_sipp() {
    const CONTACTS: usize = 300;
    let dir = scratch_dir("campaign_pacing").unwrap();
    let pcap = dir.join("hello.pcap");
    PcapBuilder::new()
        .silence(200)
        .speech(&espeak_8k("Hello?", "en-us").expect("espeak-ng speaks"))
        .silence(300)
        .write(&pcap)
        .unwrap();
    // A name: without one the follow-up script ends the call at once (and
    // the bot's BYE would cross the callee's).
    let mut csv = String::from("phone,id,name\n");
    for i in 0..CONTACTS {
        csv.push_str(&format!("+1212555{:04},c{i:03},Ann Lee\n", 2000 + i));
    }
    std::fs::write(dir.join("list.csv"), csv).unwrap();
    let file = dir.join("pacing.yaml");
    std::fs::write(
        &file,
        format!(
            "name: e2e-pacing\nscript: {}\ncaller_id: \"+15550100\"\nvia: trunk\nlist: {{ csv: list.csv }}\n\
             pacing: {{ max_concurrent: 20, calls_per_second: 5 }}\nring_timeout: 5s\n",
            script().display()
        ),
    )
    .unwrap();
    let (mut sipp, port) = callee(&dir, "callee-short.xml", CONTACTS, &[("pcap", &pcap)]);
    // Room for more than the campaign may take: the campaign's own limits
    // are what is tested.
    let bot = bot("campaign_pacing_bot", &dir, port, 60);
    let t0 = Instant::now();
    campaign_cli(&bot, &["start", file.to_str().unwrap()]);
    let status = wait_done(&bot, "e2e-pacing", Duration::from_secs(110));
    let took = t0.elapsed();

    // Every contact ended once.
    let got = contacts(&dir, "e2e-pacing");
    assert_eq!(got.len(), CONTACTS, "{status}");
    let mut by: HashMap<String, usize> = HashMap::new();
    for (id, (disposition, attempts)) in &got {
        let d = disposition
            .clone()
            .unwrap_or_else(|| panic!("{id} has no disposition"));
        assert_eq!(*attempts, 1, "{id}");
        *by.entry(d).or_default() += 1;
    }
    assert_eq!(by.get("answered"), Some(&CONTACTS), "{by:?}\n{status}");
    let db = rusqlite::Connection::open(dir.join("campaigns.db")).unwrap();
    let ended: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM attempts WHERE campaign = 'e2e-pacing' AND disposition IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(ended, CONTACTS as i64);
    assert_eq!(wait_child(&mut sipp, Duration::from_secs(30)), Some(0));

    // sipp's view: first INVITE and last message of each call.
    let log = std::fs::read_to_string(dir.join("callee-messages.log")).unwrap();
    let msgs = traced(&log);
    let mut calls: HashMap<&str, (f64, f64)> = HashMap::new();
    for m in &msgs {
        if m.call_id.is_empty() {
            continue;
        }
        let is_invite = m.received && m.first_line.starts_with("INVITE ");
        match calls.get_mut(m.call_id.as_str()) {
            Some(span) => span.1 = span.1.max(m.at),
            None if is_invite => {
                calls.insert(&m.call_id, (m.at, m.at));
            }
            None => {}
        }
    }
    assert_eq!(calls.len(), CONTACTS, "calls sipp saw");
    let mut edges: Vec<(f64, i32)> = calls
        .values()
        .flat_map(|&(a, b)| [(a, 1), (b, -1)])
        .collect();
    edges.sort_by(|x, y| x.partial_cmp(y).unwrap());
    let (mut now, mut most) = (0, 0);
    for (_, d) in &edges {
        now += d;
        most = most.max(now);
    }
    let mut invites: Vec<f64> = calls.values().map(|s| s.0).collect();
    invites.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let busiest_second = per_second(&invites);
    let tightest_six = tightest(&invites, 6);
    // The engine's own start times (the store's attempts, ms).
    let mut starts: Vec<f64> = {
        let mut stmt = db
            .prepare("SELECT started_ms FROM attempts WHERE campaign = 'e2e-pacing'")
            .unwrap();
        stmt.query_map([], |r| r.get::<_, i64>(0))
            .unwrap()
            .map(|v| v.unwrap() as f64 / 1000.0)
            .collect()
    };
    starts.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let engine_six = tightest(&starts, 6);
    println!(
        "300 contacts in {:.1} s; sipp saw at most {most} calls at once and at most {busiest_second} INVITEs in one clock second (the tightest 6 INVITEs within {tightest_six:.3} s); the engine started at most {} in one clock second (the tightest 6 starts within {engine_six:.3} s)",
        took.as_secs_f64(),
        per_second(&starts),
    );
    assert!(most <= 20, "{most} calls at once at sipp");
    // The engine never starts a sixth attempt within a second of the first
    // of five.
    assert!(engine_six >= 1.0, "six starts within {engine_six:.3} s");
    // At the callee: no six INVITEs within one second (a sliding window,
    // so no clock second either). The engine paces INVITEs by when they
    // leave its socket (`sip::invite_pace`), not only attempt starts.
    assert!(
        tightest_six >= 1.0,
        "six INVITEs within {tightest_six:.3} s at sipp"
    );
    assert!(
        busiest_second <= 5,
        "{busiest_second} INVITEs in one second"
    );
}

/// The most of `times` (seconds, sorted) in one clock second.
fn per_second(times: &[f64]) -> usize {
    let mut counts: HashMap<i64, usize> = HashMap::new();
    for t in times {
        *counts.entry(t.floor() as i64).or_default() += 1;
    }
    counts.values().copied().max().unwrap_or(0)
}

/// The shortest span of `n` consecutive `times` (seconds, sorted).
fn tightest(times: &[f64], n: usize) -> f64 {
    times
        .windows(n)
        .map(|w| w[n - 1] - w[0])
        .fold(f64::INFINITY, f64::min)
}
