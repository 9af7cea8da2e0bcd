//! The script flow driven without a call: keys, lookups, barge-in, no-match, dates and reprompts.

use super::*;
use std::collections::BTreeMap;
use voxbridge_dialog::interp::Heard;

fn program() -> Arc<Program> {
    // Tests run in parallel: each needs its own file.
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!(
        "voxbridge-script-flow-{}-{n}.yaml",
        std::process::id()
    ));
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/scripts/order-status-dtmf.yaml"),
    )
    .unwrap();
    std::fs::write(&path, text).unwrap();
    let program = Program::load(&path, None).unwrap();
    let _ = std::fs::remove_file(&path);
    Arc::new(program)
}

fn customer() -> Value {
    let mut m = BTreeMap::new();
    m.insert("name".to_string(), Value::String("Li Wei".into()));
    Value::Map(m)
}

fn said(actions: &[FlowAction]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            FlowAction::Say { text, .. } => Some(text.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn keys_lookup_answer_record_hangup() {
    let mut f = ScriptFlow::new(program(), "+8613800138000".into(), Some(customer()));
    assert_eq!(said(&f.on_event(FlowEvent::Answered)), ["Hello Li Wei."]);
    let a = f.on_event(FlowEvent::PlaybackDone);
    assert_eq!(
        said(&a),
        ["Please key your order number, then press the pound key."]
    );
    let a = f.on_event(FlowEvent::PlaybackDone);
    assert!(matches!(a.as_slice(), [FlowAction::AwaitInput(_)]), "{a:?}");
    for d in ['1', '0', '0', '1'] {
        let a = f.on_event(FlowEvent::Digit(d));
        assert!(matches!(a.as_slice(), [FlowAction::AwaitInput(_)]), "{a:?}");
    }
    let a = f.on_event(FlowEvent::Digit('#'));
    assert!(
        matches!(&a[0], FlowAction::DigitsCollected(d) if d == "1001"),
        "{a:?}"
    );
    let lookup = a.iter().find_map(|x| match x {
        FlowAction::Lookup(r) => Some(r.clone()),
        _ => None,
    });
    let lookup = lookup.expect("a lookup");
    assert_eq!(lookup.name, "order_status");
    assert_eq!(
        lookup.args.get("order_id").map(String::as_str),
        Some("SO-1001")
    );
    // Keys while the lookup runs are dropped.
    assert!(f.on_event(FlowEvent::Digit('9')).is_empty());
    let mut order = BTreeMap::new();
    order.insert("id".to_string(), Value::String("SO-1001".into()));
    order.insert("status".to_string(), Value::String("shipped".into()));
    let a = f.on_event(FlowEvent::LookupDone(Value::Map(order)));
    assert_eq!(said(&a), ["Order SO-1001 is shipped."]);
    let a = f.on_event(FlowEvent::PlaybackDone);
    assert!(
        matches!(a.as_slice(), [FlowAction::Record(r), FlowAction::Hangup] if r.disposition == "resolved"),
        "{a:?}"
    );
}

fn customer_service() -> Arc<Program> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/scripts/customer-service.yaml");
    Arc::new(Program::load(&path, None).unwrap())
}

fn listen_of(actions: &[FlowAction]) -> Option<&voxbridge_dialog::interp::Listen> {
    actions.iter().find_map(|a| match a {
        FlowAction::Listen(l) => Some(l.as_ref()),
        _ => None,
    })
}

#[test]
fn speech_over_the_menu_barges_in_and_is_heard() {
    let mut f = ScriptFlow::new(customer_service(), "+15550000".into(), None);
    assert_eq!(
        said(&f.on_event(FlowEvent::Answered)),
        ["Thank you for calling Acme Home."]
    );
    // Barge-in is allowed by the script's defaults.
    let a = f.on_event(FlowEvent::PlaybackDone);
    assert!(
        said(&a)[0].starts_with("You can ask about an order"),
        "{a:?}"
    );
    let a = f.on_event(FlowEvent::BargeIn);
    assert!(matches!(a.first(), Some(FlowAction::StopPlayback)), "{a:?}");
    let listen = listen_of(&a).expect("listening for speech");
    assert!(listen.intents.contains(&"agent".to_string()));
    assert!(listen
        .phrases
        .contains(&("agent".to_string(), "talk to an agent".to_string())));
    let a = f.on_event(FlowEvent::Heard(Heard {
        text: "talk to an agent".into(),
        intent: Some("agent".into()),
        confidence: 0.9,
        ..Heard::default()
    }));
    assert_eq!(said(&a), ["Connecting you to an agent."]);
    // Speech while the bot talks without a listen is dropped.
    assert!(f.on_event(FlowEvent::Heard(Heard::default())).is_empty());
}

#[test]
fn nothing_understood_is_a_no_match() {
    let mut f = ScriptFlow::new(customer_service(), "+15550000".into(), None);
    f.on_event(FlowEvent::Answered);
    f.on_event(FlowEvent::PlaybackDone);
    let a = f.on_event(FlowEvent::PlaybackDone);
    assert!(listen_of(&a).is_some(), "{a:?}");
    let a = f.on_event(FlowEvent::Heard(Heard::default()));
    assert_eq!(said(&a)[0], "Sorry, I didn't catch that.");
}

#[test]
fn tomorrow_is_the_day_after_the_calls_date() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/scripts/free-speech-booking.yaml");
    let program = Arc::new(Program::load(&path, None).unwrap());
    let mut f = ScriptFlow::new(program, "+1555".into(), None).with_today(Date::new(2026, 12, 31));
    f.on_event(FlowEvent::Answered);
    let a = f.on_event(FlowEvent::PlaybackDone);
    assert!(listen_of(&a).is_some(), "{a:?}");
    let heard = |text: &str| {
        FlowEvent::Heard(Heard {
            text: text.into(),
            ..Heard::default()
        })
    };
    assert_eq!(
        said(&f.on_event(heard("it broke"))),
        ["Which day should we deliver a new one?"]
    );
    f.on_event(FlowEvent::PlaybackDone);
    assert_eq!(
        said(&f.on_event(heard("Tomorrow, please."))),
        ["Booked for 2027-01-01."]
    );
}

#[test]
fn a_barge_in_is_ignored_where_the_prompt_forbids_it() {
    let mut f = ScriptFlow::new(program(), "+1555".into(), None);
    f.on_event(FlowEvent::Answered);
    // order-status-dtmf listens for keys only: no speech listening.
    let a = f.on_event(FlowEvent::PlaybackDone);
    let a2 = f.on_event(FlowEvent::PlaybackDone);
    assert!(listen_of(&a).is_none() && listen_of(&a2).is_none());
    assert!(f.on_event(FlowEvent::BargeIn).is_empty());
}

#[test]
fn a_key_during_the_prompt_barges_in_and_counts() {
    let mut f = ScriptFlow::new(program(), "+1555".into(), None);
    f.on_event(FlowEvent::Answered);
    // The greeting is playing; the caller already keys.
    let a = f.on_event(FlowEvent::Digit('1'));
    assert!(matches!(a.first(), Some(FlowAction::StopPlayback)), "{a:?}");
    assert!(matches!(a.last(), Some(FlowAction::AwaitInput(_))), "{a:?}");
    assert!(said(&a).is_empty(), "the queued prompt is skipped: {a:?}");
    for d in ['2', '3', '4'] {
        f.on_event(FlowEvent::Digit(d));
    }
    let a = f.on_event(FlowEvent::Digit('#'));
    assert!(
        matches!(&a[0], FlowAction::DigitsCollected(d) if d == "1234"),
        "{a:?}"
    );
}

#[test]
fn silence_reprompts_then_gives_up() {
    let mut f = ScriptFlow::new(program(), "+1555".into(), None);
    f.on_event(FlowEvent::Answered);
    f.on_event(FlowEvent::PlaybackDone);
    f.on_event(FlowEvent::PlaybackDone);
    let a = f.on_event(FlowEvent::InputTimeout);
    assert_eq!(said(&a)[0], "I did not get any keys.");
    assert!(
        f.on_event(FlowEvent::InputTimeout).is_empty(),
        "not listening while talking"
    );
}

#[test]
fn caller_hangup_yields_the_record() {
    let mut f = ScriptFlow::new(program(), "+1555".into(), None);
    f.on_event(FlowEvent::Answered);
    let a = f.on_event(FlowEvent::CallerHungUp);
    assert!(matches!(a.as_slice(), [FlowAction::Record(_)]), "{a:?}");
}
