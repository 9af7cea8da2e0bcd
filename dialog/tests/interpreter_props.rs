//! Property test: whatever events arrive, in whatever order, the
//! interpreter never panics, produces exactly one record when the call
//! ends (as its last command), and nothing after it.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use proptest::prelude::*;
use voxbridge_dialog::date::Date;
use voxbridge_dialog::format::Lang;
use voxbridge_dialog::interp::{CallStart, Command, Event, Heard, Interpreter, Program};
use voxbridge_dialog::value::Value;

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<f64>().prop_map(Value::Number),
        "[a-z0-9 ]{0,8}".prop_map(Value::String),
        prop_oneof![
            Just("gold"),
            Just("shipped"),
            Just("zh"),
            Just("0"),
            Just("12")
        ]
        .prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::List),
            prop::collection::btree_map(
                prop_oneof![
                    Just("id".to_string()),
                    Just("tier".to_string()),
                    Just("status".to_string()),
                    Just("available".to_string()),
                    Just("language".to_string()),
                    Just("name".to_string()),
                    "[a-z]{1,5}"
                ],
                inner,
                0..5
            )
            .prop_map(Value::Map),
        ]
    })
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,20}",
        "[0-9 #*]{0,14}",
        prop_oneof![
            Just("yes"),
            Just("no"),
            Just("tomorrow"),
            Just("the kettle"),
            Just("one two three four five"),
            Just("转人工"),
            Just("明天下午"),
            Just("where is my order"),
        ]
        .prop_map(String::from),
    ]
}

fn intent() -> impl Strategy<Value = Option<String>> {
    prop::option::of(
        prop_oneof![
            Just("order_status"),
            Just("stock_check"),
            Just("complaint"),
            Just("agent"),
            Just("repeat"),
            Just("goodbye"),
            Just("yes"),
            Just("nonsense"),
            Just(""),
        ]
        .prop_map(String::from),
    )
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        (
            text(),
            intent(),
            any::<f32>(),
            prop::collection::btree_map("[a-z_]{1,8}", text(), 0..3)
        )
            .prop_map(|(text, intent, confidence, entities)| Event::Heard(Heard {
                text,
                intent,
                confidence,
                entities,
            })),
        "[0-9#*A-D]{0,6}".prop_map(Event::Digits),
        Just(Event::NoInput),
        value().prop_map(|result| Event::LookupDone { result }),
        ".{0,8}".prop_map(|reason| Event::LookupFailed { reason }),
        "[A-Z0-9-]{0,6}".prop_map(|id| Event::TicketCreated { id }),
        ".{0,8}".prop_map(|reason| Event::TicketFailed { reason }),
        ".{0,8}".prop_map(|reason| Event::TransferFailed { reason }),
        Just(Event::Hangup),
        (
            ".{0,12}",
            prop::option::of(value()),
            prop::option::of(prop_oneof![Just(Lang::En), Just(Lang::Zh)]),
            prop::option::of((2000i32..2100, 1u32..13, 1u32..29))
        )
            .prop_map(
                |(caller, customer, language, day)| Event::CallStarted(CallStart {
                    caller,
                    customer,
                    language,
                    today: day.and_then(|(y, m, d)| Date::new(y, m, d)),
                })
            ),
    ]
}

/// The bundled scripts, loaded once for all cases.
fn programs() -> &'static [Arc<Program>] {
    static PROGRAMS: OnceLock<Vec<Arc<Program>>> = OnceLock::new();
    PROGRAMS.get_or_init(load_programs)
}

fn load_programs() -> Vec<Arc<Program>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/scripts");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) == Some("yaml") {
            out.push(Arc::new(Program::load(&path, None).unwrap()));
        }
    }
    assert!(!out.is_empty());
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn never_panics_and_records_once(
        which in 0usize..8,
        start_first in any::<bool>(),
        events in prop::collection::vec(event(), 0..40),
    ) {
        let programs = programs();
        let program = programs[which % programs.len()].clone();
        let mut call = Interpreter::new(program);
        let mut records = 0;
        if start_first {
            let out = call.handle(Event::CallStarted(CallStart {
                caller: "+15550001".into(),
                customer: None,
                language: None,
                today: Date::new(2026, 11, 21),
            }));
            records += out.iter().filter(|c| matches!(c, Command::Record(_))).count();
        }
        for e in events {
            let hangup = matches!(e, Event::Hangup);
            let was_finished = call.is_finished();
            let out = call.handle(e);
            if was_finished {
                prop_assert!(out.is_empty(), "commands after the end: {:?}", out);
            }
            for (i, c) in out.iter().enumerate() {
                if matches!(c, Command::Record(_)) {
                    records += 1;
                    prop_assert_eq!(i + 1, out.len(), "the record must come last");
                }
            }
            if hangup {
                prop_assert!(call.is_finished());
            }
        }
        prop_assert!(records <= 1);
        prop_assert_eq!(records == 1, call.is_finished());
    }
}
