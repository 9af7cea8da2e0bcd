//! Whole conversations with the real bot, driven by `voxbridge call`: the
//! customer-service script in Mandarin by keypad, a CRM that goes down in
//! the middle of a call, and a caller who talks over a long prompt.
//!
//! What the caller heard is checked against what the script should have
//! said. The bot's transcript (`GET /calls/{call_id}`) must hold exactly
//! the script's texts with the call's data filled in; those texts are then
//! synthesised with the bot's own TTS (`voxbridge_models::tts`, the same
//! voices and rate) and found, in order, in the caller's recording by
//! cross-correlation (`voxbridge_e2e::prompts`).
//!
//! espeak-ng does not say the same text the same way twice: its voice
//! generator carries its state from one utterance to the next, so the
//! samples depend on everything the process synthesised before (two
//! syntheses of one sentence correlate at 0.2–0.7). The bot's prompts are
//! therefore re-synthesised in a fresh process that first prewarms the same
//! script as the bot does at start (every static prompt, in the same order)
//! and then says the call's lines in the order the bot first said them,
//! which reproduces the bot's audio sample for sample (see
//! [`as_the_bot_said`]). Each test waits for the bot's prewarm to finish
//! before it calls, so no call's synthesis interleaves with it.
//!
//! The calls run one at a time: each is real time, and the barge-in timing
//! means something only on a quiet machine.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use voxbridge_dialog::interp::Program;
use voxbridge_e2e::caller::Caller;
use voxbridge_e2e::prompts::{find_in, find_in_order};
use voxbridge_e2e::rest_crm::{self, RestCrm};
use voxbridge_e2e::{http_get, prom_value, scratch_dir, tail, workspace_root, Bot, BotConfig};
use voxbridge_models::tts::{Tts, TtsConfig};

/// The calls of this file, one at a time.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The bot's TTS settings (`speech.tts_rate_wpm` 160, voices en-us and cmn).
fn tts() -> &'static Tts {
    static TTS: OnceLock<Tts> = OnceLock::new();
    TTS.get_or_init(|| Tts::start(TtsConfig::default()).expect("espeak-ng (libespeak-ng1)"))
}

/// About how long `text` takes to say (for the caller's waits; the exact
/// samples depend on what this process said before).
fn duration_of(text: &str, voice: &str) -> f64 {
    seconds(
        &tts()
            .speak_with_voice(text, voice)
            .unwrap_or_else(|e| panic!("TTS of {text:?}: {e}")),
    )
}

/// The environment variable that makes [`tts_child`] synthesise a job.
const TTS_JOB: &str = "VOXBRIDGE_CONVERSATION_TTS_JOB";

/// The bot's audio for `lines` (what it said, in order, all in `voice`):
/// synthesised by a fresh process (this test binary running [`tts_child`])
/// that starts its TTS as the bot does, prewarms `script` as the bot did at
/// start, and then says the lines in the same order, repeats answered from
/// the cache as in the bot. Valid for a bot process that had made no other
/// call and had finished its prewarm ([`prewarmed`]) before this one.
fn as_the_bot_said(dir: &Path, script: &Path, voice: &str, lines: &[String]) -> Vec<Vec<i16>> {
    let job = dir.join("tts-job.txt");
    let script = script.to_str().expect("a UTF-8 script path");
    assert!(!script.contains('\n'), "{script:?}");
    let mut text = format!("{voice}\n{script}\n");
    for line in lines {
        assert!(!line.contains('\n'), "{line:?}");
        text.push_str(line);
        text.push('\n');
    }
    std::fs::write(&job, text).expect("writing the TTS job");
    let output = dir.join("tts-job.out");
    let mut child = Command::new(std::env::current_exe().expect("this test binary"))
        .args(["tts_child", "--exact", "--ignored", "--test-threads=1"])
        .env(TTS_JOB, &job)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&output).expect("child output"))
        .stderr(Stdio::inherit())
        .spawn()
        .expect("running the TTS child");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("the TTS child") {
            break Some(status);
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        status.is_some_and(|s| s.success()),
        "the TTS child failed ({status:?}): {}",
        std::fs::read_to_string(&output).unwrap_or_default()
    );
    (0..lines.len())
        .map(|i| read_mono(&job.with_extension(format!("{i}.wav"))))
        .collect()
}

/// Not a test: the child process of [`as_the_bot_said`]. Reads the job
/// (a voice, the script the bot prewarmed, then one text per line) and
/// writes `job.N.wav` per text.
#[test]
#[ignore = "run by as_the_bot_said() in a child process"]
fn tts_child() {
    let Some(job) = std::env::var_os(TTS_JOB).map(PathBuf::from) else {
        return;
    };
    let text = std::fs::read_to_string(&job).expect("the job");
    let mut lines = text.lines();
    let voice = lines.next().expect("a voice");
    let script = lines.next().expect("a script");
    let tts = Tts::start(TtsConfig::default()).expect("espeak-ng");
    let program = Program::load(Path::new(script), None).expect("the bot's script");
    let done = voxbridge_engine::prewarm::prewarm(&program, &tts);
    assert_eq!(done.failed, 0, "{done:?}");
    for (i, line) in lines.enumerate() {
        let audio = tts.speak_with_voice(line, voice).expect("TTS");
        write_wav(&job.with_extension(format!("{i}.wav")), &audio).expect("writing a WAV");
    }
}

/// Wait until `bot` has put its script's static prompts in its TTS cache:
/// its later syntheses then follow the prewarm's, as in [`tts_child`].
fn prewarmed(bot: &Bot) {
    bot.wait_for_log("script prompts prewarmed", Duration::from_secs(120))
        .expect("the bot's prewarm");
}

fn seconds(samples: &[i16]) -> f64 {
    samples.len() as f64 / 8000.0
}

/// A `wait:` step lasting `secs`.
fn wait(secs: f64) -> String {
    format!("wait:{}ms", (secs * 1000.0).round() as u64)
}

/// A mono 16-bit WAV's samples.
fn read_mono(path: &Path) -> Vec<i16> {
    let mut wav =
        hound::WavReader::open(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let spec = wav.spec();
    assert_eq!((spec.sample_rate, spec.channels), (8000, 1), "{spec:?}");
    wav.samples::<i16>().map(|s| s.expect("sample")).collect()
}

fn write_wav(path: &Path, samples: &[i16]) -> hound::Result<()> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec)?;
    for &s in samples {
        w.write_sample(s)?;
    }
    w.finalize()
}

/// A stereo 16-bit WAV as (left, right).
fn read_stereo(path: &Path) -> (Vec<i16>, Vec<i16>) {
    let mut wav =
        hound::WavReader::open(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let spec = wav.spec();
    assert_eq!((spec.sample_rate, spec.channels), (8000, 2), "{spec:?}");
    let all: Vec<i16> = wav.samples::<i16>().map(|s| s.expect("sample")).collect();
    let left = all.iter().step_by(2).copied().collect();
    let right = all.iter().skip(1).step_by(2).copied().collect();
    (left, right)
}

/// The bot's transcript of a call (`GET /calls/{call_id}`): (speaker, text).
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

/// The call record (CDR) of `call_id`: (end_reason, dtmf, transfer
/// target, recording), once the bot has written it.
fn cdr_row(path: &Path, call_id: &str) -> Option<(String, String, Option<String>, Option<String>)> {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if let Ok(db) = rusqlite::Connection::open(path) {
            let row = db.query_row(
                "SELECT end_reason, dtmf, transfer_target, recording_path FROM calls WHERE call_id = ?1",
                [call_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            );
            if let Ok(row) = row {
                return Some(row);
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

/// The outbox row of `call_id`'s call log: (state, attempts, last error).
fn outbox_row(path: &Path, call_id: &str) -> Option<(String, i64, Option<String>)> {
    let db = rusqlite::Connection::open(path).ok()?;
    db.query_row(
        "SELECT state, attempts, last_error FROM outbox WHERE kind = 'call_log' AND payload LIKE '%' || ?1 || '%'",
        [call_id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .ok()
}

/// Check that the caller heard `prompts` in order, each scoring at least
/// 0.8; print and return where and how well. On failure the expected
/// prompts are left in `dir` as WAVs to listen to.
fn heard_in_order(dir: &Path, heard: &[i16], prompts: &[(&str, Vec<i16>)]) -> Vec<(usize, f32)> {
    let refs: Vec<(&str, &[i16])> = prompts.iter().map(|(n, a)| (*n, a.as_slice())).collect();
    let found = find_in_order(heard, &refs, 0.8).unwrap_or_else(|e| {
        for (name, audio) in prompts {
            let _ = write_wav(&dir.join(format!("expected-{name}.wav")), audio);
        }
        panic!(
            "the caller did not hear the script's prompts: {e} (expected audio in {})",
            dir.display()
        )
    });
    for ((name, _), (at, score)) in prompts.iter().zip(&found) {
        eprintln!(
            "heard {name:<16} at {:>6.2} s, score {score:.3}",
            *at as f64 / 8000.0
        );
    }
    found
}

/// The bundled customer-service script in `dir`, with one line changed so
/// the prompts checked below are the bundled script's own: the Mandarin
/// greeting names the caller by `customer.name`. The bundled line wants
/// `last_name` and `title_zh` (先生/女士), which the demo CRM of `voxbridge
/// chat` has and the embedded CRM does not. The language is not changed:
/// the caller's CRM language (`zh-CN`) picks Mandarin.
///
/// `common/callback.yaml` goes alongside, as the script imports it.
fn mandarin_script(dir: &Path) -> PathBuf {
    let bundled = workspace_root().join("fixtures/scripts");
    let mut text =
        std::fs::read_to_string(bundled.join("customer-service.yaml")).expect("bundled script");
    let from = "zh: \"{{ customer.last_name }}{{ customer.title_zh }}您好，感谢致电Acme家居。\"";
    let to = "zh: \"{{ customer.name }}您好，感谢致电Acme家居。\"";
    assert_eq!(
        text.matches(from).count(),
        1,
        "customer-service.yaml changed: update mandarin_script() ({from:?})"
    );
    text = text.replace(from, to);
    let path = dir.join("customer-service-zh.yaml");
    std::fs::write(&path, text).expect("writing the script");
    std::fs::create_dir_all(dir.join("common")).expect("script dir");
    std::fs::copy(
        bundled.join("common/callback.yaml"),
        dir.join("common/callback.yaml"),
    )
    .expect("copying common/callback.yaml");
    path
}

/// A known Chinese customer (C002 Wang Fang, silver: the menu, not the gold
/// transfer) calls the Mandarin script and uses only keys: 1 for orders, 2
/// for "not my latest order", her order number 1003 and #, then 0 for an
/// agent. The transfer is declined (the caller refuses the REFER), the bot
/// offers a callback, hears nothing and says goodbye. Every prompt is
/// checked three ways: the bot's own transcript says exactly the script's
/// texts with the CRM's data filled in, the caller's recording contains
/// each of them in order, and the CRM's call log carries them.
#[test]
fn mandarin_script_by_keys_every_prompt_heard_in_order() {
    let _one = serial();
    let dir = scratch_dir("conversation_zh").unwrap();
    let crm = voxbridge_e2e::embedded_crm(&dir).expect("writing the CRM config");
    let script = mandarin_script(&dir);
    let cdr = dir.join("cdr.sqlite");
    let cfg = BotConfig {
        more: format!(
            "crm:\n  config: {}\ndialog:\n  script: {}\ncdr:\n  path: {}\ntransfer:\n  targets:\n    agents: sip:agents@127.0.0.1:5999\n",
            crm.display(),
            script.display(),
            cdr.display()
        ),
        ..BotConfig::default()
    };
    let bot = Bot::start("conversation_zh_bot", &cfg).unwrap();
    bot.wait_for_log("calls run the dialog script", Duration::from_secs(30))
        .expect("the script and the recognisers load");
    prewarmed(&bot);

    // What the script says to Wang Fang (fixtures/crm: C002, phone
    // 139 1234 5678; her order SO-1003 is `done`, which the script reads
    // out as complete, the id spelt by `digits`).
    let expected: Vec<(&str, &str)> = vec![
        ("welcome_back", "Wang Fang您好，感谢致电Acme家居。"),
        ("menu", "您可以查询订单、查询库存、投诉，或者转人工客服。请问有什么可以帮您？您也可以按1查订单，按2查库存，按3投诉，按0转人工。"),
        ("ask_latest", "请问是查询您最近的一笔订单吗？"),
        ("ask_order_id", "请说出或者按键输入您的订单号，以井号键结束。"),
        ("filler", "请稍等。"),
        ("status_done", "您的订单S O - 1 0 0 3已完成。"),
        ("anything_else", "还有什么可以帮您的吗？"),
        ("agent", "正在为您转接人工客服。"),
        ("agents_busy", "人工客服都在忙。需要我们给您回电吗？"),
        ("goodbye", "感谢您的来电，再见！"),
    ];
    let len = |name: &str| {
        let text = expected
            .iter()
            .find(|(n, _)| *n == name)
            .expect("a prompt")
            .1;
        duration_of(text, "cmn")
    };

    // Each key once the prompts before it have played out (plus room for
    // synthesis and the lookup), well inside the script's 6 s no-input.
    let record = dir.join("heard.wav");
    let args: Vec<String> = vec![
        format!("sip:bot@{}", bot.addr),
        "--from".into(),
        "+8613912345678".into(),
        "--rtp-ports".into(),
        "47400-47499".into(),
        "--record".into(),
        record.display().to_string(),
        "--admin".into(),
        bot.admin.to_string(),
        "--timeout".into(),
        "150".into(),
        wait(len("welcome_back") + len("menu") + 2.0),
        "keys:1".into(),
        wait(len("ask_latest") + 1.5),
        "keys:2".into(),
        wait(len("ask_order_id") + 1.5),
        "keys:1003#".into(),
        wait(len("filler") + len("status_done") + len("anything_else") + 2.0),
        "keys:0".into(),
    ];
    let run = Caller::run(&dir, &args, Duration::from_secs(170)).unwrap();
    let log = bot.log();
    assert_eq!(
        run.status,
        Some(0),
        "{}\n{}",
        run.describe(),
        tail(&log, 30)
    );
    assert!(
        run.stdout.contains("call ended by the bot"),
        "{}",
        run.describe()
    );
    let call_id = run.call_id().expect("a Call-ID");
    assert!(
        log.contains(&format!(
            "caller identified call_id={call_id} customer=C002"
        )),
        "{}",
        tail(&log, 30)
    );

    // 1. The bot said exactly the script's prompts, in Mandarin, in order.
    let said = transcript(&bot, &call_id);
    let expected_texts: Vec<String> = expected.iter().map(|(_, t)| t.to_string()).collect();
    assert_eq!(
        lines_of(&said, "bot"),
        expected_texts,
        "the bot's prompts\n{}",
        run.describe()
    );
    assert_eq!(
        lines_of(&said, "caller"),
        ["[keys] 1", "[keys] 2", "[keys] 1003", "[keys] 0"]
    );
    let system = lines_of(&said, "system");
    assert!(
        system
            .iter()
            .any(|l| l.starts_with("lookup order_status: found")),
        "{system:?}"
    );
    assert!(
        system.contains(&"transfer failed: REFER answered 603".to_string()),
        "{system:?}"
    );
    assert!(
        run.stdout.contains("(REFER): declined (603)"),
        "{}",
        run.describe()
    );

    // 2. The caller heard each of them, whole and in order.
    let audio: Vec<(&str, Vec<i16>)> = expected
        .iter()
        .map(|(name, _)| *name)
        .zip(as_the_bot_said(&dir, &script, "cmn", &expected_texts))
        .collect();
    let heard = read_mono(&record);
    let found = heard_in_order(&dir, &heard, &audio);
    assert_eq!(found.len(), expected.len());

    // 3. The call record and the CRM's call log.
    let (end_reason, dtmf, target, _) = cdr_row(&cdr, &call_id).expect("a call record");
    assert_eq!(
        end_reason, "transfer_failed",
        "the bot hung up after the declined transfer"
    );
    assert_eq!(dtmf, "1210030");
    assert_eq!(target.as_deref(), Some("sip:agents@127.0.0.1:5999"));
    let stopped = bot.stop().unwrap();
    assert!(!stopped.contains("panicked"), "{}", tail(&stopped, 30));
    let db = rusqlite::Connection::open(dir.join("crm.sqlite")).unwrap();
    let (customer, disposition, record_json): (Option<String>, String, String) = db
        .query_row(
            "SELECT customer_id, disposition, record FROM call_logs WHERE call_id = ?1",
            [&call_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .expect("the call log reached the embedded CRM");
    assert_eq!(customer.as_deref(), Some("C002"));
    assert_eq!(disposition, "resolved", "the script's goodbye");
    let logged: serde_json::Value = serde_json::from_str(&record_json).unwrap();
    let logged_bot: Vec<&str> = logged["transcript"]
        .as_array()
        .expect("a transcript")
        .iter()
        .filter(|t| t["speaker"] == "bot")
        .filter_map(|t| t["text"].as_str())
        .collect();
    for text in &expected_texts {
        assert!(
            logged_bot.contains(&text.as_str()),
            "{text:?} missing from the CRM's transcript: {logged_bot:?}"
        );
    }
    assert_eq!(logged["slots"]["digits"], "1210030");
    assert!(
        logged["slots"]["lookups"]
            .as_str()
            .is_some_and(|l| l.starts_with("order_status: found")),
        "{}",
        logged["slots"]
    );
}

/// The CRM answers while the phone rings, then goes down before the
/// caller's order is looked up: the bot says the script's fallback, carries
/// on, and ends the call itself when the caller says goodbye. The call log
/// waits in the outbox, undelivered, and arrives once the CRM is back on
/// the same port.
#[test]
fn crm_down_mid_call_fallback_then_call_log_delivered_on_return() {
    let _one = serial();
    let dir = scratch_dir("conversation_crm_down").unwrap();
    let mut crm = RestCrm::start().unwrap();
    let outbox = dir.join("outbox.sqlite");
    let crm_config = dir.join("crm.yaml");
    std::fs::write(&crm_config, crm.config_yaml(&outbox)).unwrap();
    let cdr = dir.join("cdr.sqlite");
    let script = workspace_root().join("fixtures/scripts/customer-service.yaml");
    let cfg = BotConfig {
        more: format!(
            "crm:\n  config: {}\ndialog:\n  script: {}\ncdr:\n  path: {}\n",
            crm_config.display(),
            script.display(),
            cdr.display()
        ),
        ..BotConfig::default()
    };
    let bot = Bot::start("conversation_crm_down_bot", &cfg).unwrap();
    // SIP listens before the script and the recognisers are loaded (1.5 s
    // and more on a busy machine): a call placed earlier waits that long
    // and its caller lookup runs out of budget before it starts.
    bot.wait_for_log("calls run the dialog script", Duration::from_secs(30))
        .expect("the script and the recognisers load");
    prewarmed(&bot);

    // What the script says after its greeting and menu.
    let expected = [
        "Is this about your most recent order?",
        "One moment while I look that up.",
        "Sorry, I can't reach our order system right now.",
        "Is there anything else I can help you with?",
        "Thank you for calling Acme Home. Goodbye!",
    ];
    let len = |i: usize| duration_of(expected[i], "en-us");

    // 1 during the menu (keys barge in), 1 for "yes, my latest order",
    // then "no thanks" once the bot asks whether there is anything else.
    let record = dir.join("heard.wav");
    let args: Vec<String> = vec![
        format!("sip:bot@{}", bot.addr),
        "--from".into(),
        rest_crm::CUSTOMER_PHONE.into(),
        "--rtp-ports".into(),
        "47500-47599".into(),
        "--record".into(),
        record.display().to_string(),
        "--admin".into(),
        bot.admin.to_string(),
        "--timeout".into(),
        "90".into(),
        "wait:4s".into(),
        "keys:1".into(),
        wait(len(0) + 1.5),
        "keys:1".into(),
        wait(len(1) + len(2) + len(3) + 2.0),
        "say:no thanks".into(),
    ];
    let caller = Caller::spawn(&dir, &args, Duration::from_secs(110)).unwrap();
    let call_id = caller
        .call_id(Duration::from_secs(10))
        .expect("the caller announces its Call-ID");
    // The caller was looked up while the phone rang; now the CRM goes down.
    assert!(
        bot.wait_until(Duration::from_secs(10), |log| log.contains(&format!(
            "caller identified call_id={call_id} customer={}",
            rest_crm::CUSTOMER_ID
        ))),
        "{}",
        tail(&bot.log(), 30)
    );
    crm.stop();
    assert!(!crm.is_up());
    let run = caller.wait().unwrap();
    let log = bot.log();
    assert_eq!(
        run.status,
        Some(0),
        "{}\n{}",
        run.describe(),
        tail(&log, 30)
    );
    assert!(
        run.stdout.contains("call ended by the bot"),
        "{}",
        run.describe()
    );

    // The fallback was said and heard, and the call went on to its end.
    let said = transcript(&bot, &call_id);
    let system = lines_of(&said, "system");
    assert!(
        system
            .iter()
            .any(|l| l.starts_with("lookup latest_order: failed")),
        "{system:?}\n{}",
        run.describe()
    );
    let bot_lines = lines_of(&said, "bot");
    assert_eq!(bot_lines.len(), 2 + expected.len(), "{bot_lines:?}");
    assert!(
        bot_lines[0].starts_with("Hello ")
            && bot_lines[0].ends_with("thank you for calling Acme Home."),
        "a known caller's greeting: {:?}",
        bot_lines[0]
    );
    assert!(
        bot_lines[1].starts_with("You can ask about an order"),
        "{bot_lines:?}"
    );
    assert_eq!(bot_lines[2..], expected, "{}", run.describe());
    assert!(
        lines_of(&said, "caller").contains(&"no thanks".to_string()),
        "{said:?}"
    );
    // Heard whole, all but the menu the caller keyed into.
    let mut audio = as_the_bot_said(&dir, &script, "en-us", &bot_lines);
    audio.remove(1);
    let names = [
        "greeting",
        "latest?",
        "filler",
        "fallback",
        "anything else?",
        "goodbye",
    ];
    let prompts: Vec<(&str, Vec<i16>)> = names.into_iter().zip(audio).collect();
    heard_in_order(&dir, &read_mono(&record), &prompts);
    let (end_reason, _, _, _) = cdr_row(&cdr, &call_id).expect("a call record");
    assert_eq!(end_reason, "bot_hangup");

    // The call log is in the outbox, tried and not delivered.
    let start = Instant::now();
    let mut row = None;
    while start.elapsed() < Duration::from_secs(10) {
        row = outbox_row(&outbox, &call_id);
        if row.as_ref().is_some_and(|(_, attempts, _)| *attempts >= 1) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let (state, attempts, error) = row.expect("the call log is in the outbox");
    assert_eq!(state, "pending", "not delivered while the CRM is down");
    assert!(attempts >= 1, "the worker tried: {attempts} attempts");
    assert!(error.is_some_and(|e| !e.is_empty()));
    assert!(crm.call_logs().is_empty(), "nothing reached the CRM");

    // The CRM comes back on the same port: the log arrives, once.
    crm.restart().unwrap();
    let back = Instant::now();
    let mut delivered = Vec::new();
    while back.elapsed() < Duration::from_secs(20) {
        delivered = crm.call_logs();
        if !delivered.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!(
        "call log delivered {:.1} s after the CRM returned",
        back.elapsed().as_secs_f64()
    );
    assert_eq!(
        delivered.len(),
        1,
        "{delivered:?}\n{}",
        tail(&bot.log(), 30)
    );
    let body: serde_json::Value = serde_json::from_str(&delivered[0]).unwrap();
    assert_eq!(body["call_id"], call_id.as_str());
    assert_eq!(body["customer"], rest_crm::CUSTOMER_ID);
    assert_eq!(body["disposition"], "resolved");
    assert!(
        body["transcript"]
            .as_str()
            .is_some_and(|t| t.contains("Bot: Sorry, I can't reach our order system right now.")),
        "{body}"
    );
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5)
        && outbox_row(&outbox, &call_id).is_some_and(|r| r.0 != "delivered")
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        outbox_row(&outbox, &call_id).map(|r| r.0).as_deref(),
        Some("delivered")
    );
    let log = bot.stop().unwrap();
    assert_eq!(crm.call_logs().len(), 1, "delivered once");
    assert!(!log.contains("panicked"), "{}", tail(&log, 30));
    assert!(
        log.contains(&format!("call log queued for the CRM call_id={call_id}")),
        "{}",
        tail(&log, 30)
    );
}

/// RMS of `samples`.
fn rms(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    (samples.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / samples.len() as f64).sqrt()
}

/// The caller says "talk to an agent" about two seconds into the 15 s menu
/// prompt. On the bot's own recording (stereo: the caller as the bot's
/// endpointer received it on the left, what the bot sent on the right, one
/// media clock) the menu stops soon after the caller's first sound (printed;
/// within a second, far less than the 2 s or more of menu left, even on a
/// loaded machine; 507 ms on a loaded one with the 200 ms voiced-speech
/// rule); the caller then hears the answer to what they said ("Connecting you to
/// an agent."), and the bot counts the barge-in and the recognition.
#[test]
fn speech_over_the_menu_stops_it_and_is_heard() {
    let _one = serial();
    let dir = scratch_dir("conversation_barge_in").unwrap();
    let script = workspace_root().join("fixtures/scripts/customer-service.yaml");
    let rec_dir = dir.join("recordings");
    let cfg = BotConfig {
        more: format!(
            "dialog:\n  script: {}\nrecording:\n  enabled: true\n  dir: {}\n  mode: stereo\ncdr:\n  path: {}\n",
            script.display(),
            rec_dir.display(),
            dir.join("cdr.sqlite").display()
        ),
        ..BotConfig::default()
    };
    let bot = Bot::start("conversation_barge_in_bot", &cfg).unwrap();
    bot.wait_for_log("calls run the dialog script", Duration::from_secs(30))
        .expect("the script and the recognisers load");
    prewarmed(&bot);

    let greeting_text = "Thank you for calling Acme Home.";
    let menu_text = "You can ask about an order, check whether a product is in stock, make a complaint, or ask for an agent. How can I help? You can also press 1 for orders, 2 for stock, 3 for complaints, or 0 for an agent.";
    let agent_text = "Connecting you to an agent.";
    let menu_seconds = duration_of(menu_text, "en-us");
    assert!(menu_seconds > 10.0, "a long prompt: {menu_seconds:.1} s");

    let record = dir.join("heard.wav");
    let args: Vec<String> = vec![
        format!("sip:bot@{}", bot.addr),
        "--rtp-ports".into(),
        "47600-47699".into(),
        "--record".into(),
        record.display().to_string(),
        "--admin".into(),
        bot.admin.to_string(),
        "--timeout".into(),
        "60".into(),
        // About two seconds into the menu.
        wait(duration_of(greeting_text, "en-us") + 2.5),
        "say:talk to an agent".into(),
        "wait:4s".into(),
        "hangup".into(),
    ];
    let run = Caller::run(&dir, &args, Duration::from_secs(80)).unwrap();
    assert_eq!(
        run.status,
        Some(0),
        "{}\n{}",
        run.describe(),
        tail(&bot.log(), 30)
    );
    let call_id = run.call_id().expect("a Call-ID");

    // Heard: the recogniser's words, then the agent prompt.
    let said = transcript(&bot, &call_id);
    let heard_at = said
        .iter()
        .position(|(s, t)| s == "caller" && t == "talk to an agent")
        .unwrap_or_else(|| panic!("the bot did not hear the caller: {said:?}"));
    assert_eq!(
        said.get(heard_at + 1)
            .map(|(s, t)| (s.as_str(), t.as_str())),
        Some(("bot", "Connecting you to an agent.")),
        "{said:?}"
    );
    let (_, metrics) = http_get(bot.admin, "/metrics").unwrap();
    let barge_ins = prom_value(&metrics, "voxbridge_barge_ins_total").unwrap_or(0.0);
    let recognised = prom_value(&metrics, "voxbridge_asr_recognised_total").unwrap_or(0.0);
    assert!(barge_ins >= 1.0, "voxbridge_barge_ins_total {barge_ins}");
    assert!(
        recognised >= 1.0,
        "voxbridge_asr_recognised_total {recognised}"
    );

    // The caller heard the greeting, the start of the menu, then the agent
    // prompt (and the bot said these first).
    let bot_lines = lines_of(&said, "bot");
    assert_eq!(
        bot_lines.get(..3),
        Some(&[greeting_text, menu_text, agent_text].map(String::from)[..]),
        "{said:?}"
    );
    let audio = as_the_bot_said(&dir, &script, "en-us", &bot_lines);
    let (greeting, menu, agent) = (&audio[0], &audio[1], &audio[2]);
    let heard = read_mono(&record);
    let menu_head = &menu[..8_000];
    let caller_found = heard_in_order(
        &dir,
        &heard,
        &[
            ("greeting", greeting.clone()),
            ("menu (start)", menu_head.to_vec()),
            ("agent", agent.clone()),
        ],
    );

    // The bot's recording of the call: the stop delay on its media clock.
    let call_log_line = format!("call ended call_id={call_id}");
    assert!(
        bot.wait_until(Duration::from_secs(10), |log| log.contains(&call_log_line)),
        "{}",
        tail(&bot.log(), 20)
    );
    let recording = std::fs::read_dir(&rec_dir)
        .expect("recordings")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "wav"))
        .expect("the bot recorded the call");
    let (caller_side, bot_side) = read_stereo(&recording);
    let (menu_at, score) = find_in(&bot_side, menu_head).expect("the menu in the bot's audio");
    assert!(score > 0.95, "the bot's menu audio scored {score}");
    // The caller's first sound after the menu began.
    let onset = (menu_at..caller_side.len())
        .find(|&i| caller_side[i].unsigned_abs() >= 200)
        .expect("the caller's speech in the bot's recording");
    let into_menu = (onset - menu_at) as f64 / 8000.0;
    assert!(
        (1.0..seconds(menu) - 2.0).contains(&into_menu),
        "the caller spoke {into_menu:.2} s into the menu: not over the prompt"
    );
    // Frames of 20 ms, aligned on the menu's start (the player sends the
    // prompt frame by frame from there). The prompt stopped by the first
    // frame where the menu has sound and the bot sent silence; if that
    // frame follows a pause in the menu, the stop may be earlier, by the
    // end of the last frame the bot sent with sound.
    const FRAME: usize = 160;
    let frame_of = |i: usize| (i - menu_at) / FRAME;
    let bot_frame = |j: usize| {
        let from = menu_at + j * FRAME;
        &bot_side[from.min(bot_side.len())..(from + FRAME).min(bot_side.len())]
    };
    let menu_frame =
        |j: usize| &menu[(j * FRAME).min(menu.len())..((j + 1) * FRAME).min(menu.len())];
    let cut = (frame_of(onset)..menu.len() / FRAME)
        .find(|&j| rms(menu_frame(j)) > 100.0 && rms(bot_frame(j)) < 1.0)
        .expect("the menu was not stopped");
    let last_sound = (frame_of(onset)..cut)
        .rev()
        .find(|&j| rms(bot_frame(j)) >= 1.0)
        .map_or(frame_of(onset), |j| j + 1);
    let at = |j: usize| menu_at + j * FRAME;
    let delay_ms = (at(cut) - onset) as f64 / 8.0;
    let earliest_ms = (at(last_sound).saturating_sub(onset)) as f64 / 8.0;
    // The rest of the menu never came.
    let after_cut = &bot_side[at(cut)..(at(cut) + 8000).min(bot_side.len())];
    assert!(
        rms(&after_cut[..after_cut.len().min(4000)]) < 1.0,
        "the bot kept sending after the cut"
    );
    // For the record, the caller's view on `voxbridge call`'s timeline:
    // from the stamp of the `say` step (seconds since the answer) to the
    // menu's stop in its recording (which starts with the first audio it
    // played out). This adds the bot's jitter buffer to the figure above.
    let sent_at = run.stamp_of("caller: [say]").expect("the say step");
    let heard_menu_at = caller_found[1].0;
    let heard_cut = (0..menu.len().saturating_sub(FRAME))
        .step_by(FRAME)
        .find(|&k| {
            let i = heard_menu_at + k;
            i < heard.len()
                && rms(&menu[k..k + FRAME]) > 100.0
                && rms(&heard[i..(i + FRAME).min(heard.len())]) < 20.0
        })
        .map(|k| heard_menu_at + k)
        .expect("the caller heard the menu stop");
    eprintln!(
        "barge-in: the caller spoke {into_menu:.2} s into the menu; the bot stopped it {delay_ms:.0} ms \
         after the caller's first sound reached its endpointer (no earlier than {earliest_ms:.0} ms); \
         caller's view: speech sent at {sent_at:.2} s, menu heard stopping at {:.2} s ({:.0} ms)",
        heard_cut as f64 / 8000.0,
        (heard_cut as f64 / 8000.0 - sent_at) * 1000.0
    );
    // The barge-in needs `speech.barge_in_ms` of speech; the rest is the
    // bot's reaction, which a busy machine stretches. A menu that ran on
    // for a second would be a prompt that did not stop for the caller.
    assert!(
        delay_ms <= 1000.0,
        "the menu stopped {delay_ms:.0} ms after the caller began speaking (limit 1 s)"
    );
    let log = bot.stop().unwrap();
    assert!(!log.contains("panicked"), "{}", tail(&log, 30));
}

/// The Mandarin script differs from the bundled one in the one line
/// [`mandarin_script`] names, and imports what the bundled one imports.
#[test]
fn mandarin_script_changes_only_what_it_says() {
    let dir = scratch_dir("conversation_zh_script").unwrap();
    let path = mandarin_script(&dir);
    let text = std::fs::read_to_string(&path).unwrap();
    let bundled =
        std::fs::read_to_string(workspace_root().join("fixtures/scripts/customer-service.yaml"))
            .unwrap();
    let changed: Vec<(&str, &str)> = bundled
        .lines()
        .zip(text.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(changed.len(), 1, "{changed:?}");
    assert_eq!(bundled.lines().count(), text.lines().count());
    assert!(dir.join("common/callback.yaml").exists());
}

/// Line sounds from the barge-in corpus (fixtures/audio/barge-in/): two
/// coughs, two breaths, clicks and pops, and in-band DTMF, one after the
/// other (about 9 s), as the caller's WAV.
fn line_sounds(dir: &Path) -> PathBuf {
    let corpus = dir.join("corpus");
    let out = Command::new("bash")
        .arg(workspace_root().join("fixtures/audio/barge-in/make-corpus.sh"))
        .arg(&corpus)
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "the corpus script needs sox and espeak-ng: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut sounds = Vec::new();
    // (item, from s, to s): the stretches of each item that hold its sounds.
    for (item, from, to) in [
        ("cough", 1.0, 3.8),
        ("breathing", 0.4, 2.2),
        ("clicks", 0.3, 2.4),
        ("dtmf", 0.9, 3.5),
    ] {
        let codes = std::fs::read(corpus.join(format!("{item}.ul"))).unwrap();
        let mut pcm = Vec::new();
        voxbridge_media::g711::decode(voxbridge_media::Codec::Pcmu, &codes, &mut pcm);
        let (a, b) = ((from * 8000.0) as usize, (to * 8000.0) as usize);
        sounds.extend_from_slice(&pcm[a.min(pcm.len())..b.min(pcm.len())]);
    }
    let path = dir.join("line-sounds.wav");
    write_wav(&path, &sounds).unwrap();
    path
}

/// Coughs, breaths, clicks and in-band keys over the menu do not stop it
/// and are not taken as answers; the caller's words after them still stop
/// the menu and are heard. Checked on the caller's own timeline: the menu
/// is heard playing until the words are sent, and stopping within 1.5 s
/// of them.
#[test]
fn line_sounds_over_the_menu_do_not_stop_it_but_words_do() {
    let _one = serial();
    let dir = scratch_dir("conversation_line_sounds").unwrap();
    let script = workspace_root().join("fixtures/scripts/customer-service.yaml");
    let cfg = BotConfig {
        more: format!(
            "dialog:\n  script: {}\ncdr:\n  path: {}\n",
            script.display(),
            dir.join("cdr.sqlite").display()
        ),
        ..BotConfig::default()
    };
    let bot = Bot::start("conversation_line_sounds_bot", &cfg).unwrap();
    prewarmed(&bot);
    bot.wait_for_log("calls run the dialog script", Duration::from_secs(30))
        .expect("the script and the recognisers load");
    let greeting_text = "Thank you for calling Acme Home.";
    let menu_text = "You can ask about an order, check whether a product is in stock, make a complaint, or ask for an agent. How can I help? You can also press 1 for orders, 2 for stock, 3 for complaints, or 0 for an agent.";
    let sounds = line_sounds(&dir);
    let sounds_s = seconds(&read_mono(&sounds));
    assert!(
        duration_of(menu_text, "en-us") > sounds_s + 3.0,
        "the menu outlasts the sounds"
    );
    let record = dir.join("heard.wav");
    let args: Vec<String> = vec![
        format!("sip:bot@{}", bot.addr),
        "--rtp-ports".into(),
        "47700-47799".into(),
        "--record".into(),
        record.display().to_string(),
        "--admin".into(),
        bot.admin.to_string(),
        "--timeout".into(),
        "60".into(),
        // Half a second into the menu.
        wait(duration_of(greeting_text, "en-us") + 1.0),
        format!("wav:{}", sounds.display()),
        "say:talk to an agent".into(),
        "wait:4s".into(),
        "hangup".into(),
    ];
    let run = Caller::run(&dir, &args, Duration::from_secs(80)).unwrap();
    assert_eq!(
        run.status,
        Some(0),
        "{}\n{}",
        run.describe(),
        tail(&bot.log(), 30)
    );
    let call_id = run.call_id().expect("a Call-ID");
    // The only thing the bot heard from the caller is the words.
    let said = transcript(&bot, &call_id);
    let callers: Vec<&str> = said
        .iter()
        .filter(|(s, _)| s == "caller")
        .map(|(_, t)| t.as_str())
        .collect();
    assert_eq!(callers, ["talk to an agent"], "{said:?}");
    let bot_lines = lines_of(&said, "bot");
    assert_eq!(
        bot_lines.get(..3),
        Some(&[greeting_text, menu_text, "Connecting you to an agent."].map(String::from)[..]),
        "{said:?}"
    );
    // On the caller's timeline: the menu plays on through the sounds.
    let audio = as_the_bot_said(&dir, &script, "en-us", &bot_lines);
    let menu = &audio[1];
    let heard = read_mono(&record);
    let found = heard_in_order(
        &dir,
        &heard,
        &[
            ("greeting", audio[0].clone()),
            ("menu (start)", menu[..8_000].to_vec()),
        ],
    );
    let menu_at = found[1].0;
    const FRAME: usize = 160;
    let cut = (0..menu.len().saturating_sub(FRAME))
        .step_by(FRAME)
        .find(|&k| {
            let i = menu_at + k;
            i < heard.len()
                && rms(&menu[k..k + FRAME]) > 100.0
                && rms(&heard[i..(i + FRAME).min(heard.len())]) < 20.0
        })
        .map(|k| (menu_at + k) as f64 / 8000.0)
        .expect("the caller heard the menu stop");
    let sounds_at = run.stamp_of("caller: [wav]").expect("the wav step");
    let words_at = run.stamp_of("caller: [say]").expect("the say step");
    eprintln!(
        "line sounds from {sounds_at:.2} s to {words_at:.2} s; menu heard from {:.2} s, stopping at {cut:.2} s \
         ({:.0} ms after the words were sent)",
        menu_at as f64 / 8000.0,
        (cut - words_at) * 1000.0
    );
    assert!(
        cut > words_at,
        "the menu stopped at {cut:.2} s, before the words at {words_at:.2} s: a line sound barged in"
    );
    assert!(
        cut - words_at < 1.5,
        "the words at {words_at:.2} s stopped the menu only at {cut:.2} s"
    );
    let (_, metrics) = http_get(bot.admin, "/metrics").unwrap();
    let barge_ins = prom_value(&metrics, "voxbridge_barge_ins_total").unwrap_or(0.0);
    assert_eq!(barge_ins, 1.0, "voxbridge_barge_ins_total");
    let log = bot.stop().unwrap();
    assert!(!log.contains("panicked"), "{}", tail(&log, 30));
}
