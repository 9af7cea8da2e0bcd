//! The opening example of the dialog reference (docs/dialog-scripts.md, the
//! one copy; dialog/REFERENCE.md points there) is a complete script: it must
//! pass the validator and run, so the reference cannot drift from the code.

use std::sync::Arc;

use voxbridge_dialog::interp::{CallStart, Command, Event, Heard, Interpreter, Program};

#[test]
fn reference_example_is_a_valid_script() {
    let doc = include_str!("../../docs/dialog-scripts.md");
    let start = doc.find("```yaml\n").expect("a yaml block") + "```yaml\n".len();
    let end = start + doc[start..].find("```").expect("block end");
    let program = match Program::parse("docs/dialog-scripts.md", &doc[start..end]) {
        Ok(p) => Arc::new(p),
        Err(e) => panic!("{e}"),
    };
    assert!(program.warnings().is_empty(), "{:?}", program.warnings());
    let mut call = Interpreter::new(program);
    call.handle(Event::CallStarted(CallStart::default()));
    call.handle(Event::Digits("1".into()));
    call.handle(Event::Heard(Heard {
        text: "one two three four".into(),
        ..Heard::default()
    }));
    let out = call.handle(Event::LookupDone {
        result: voxbridge_dialog::value::Value::map([
            ("id", "1234".into()),
            ("status", "shipped".into()),
        ]),
    });
    assert!(out
        .iter()
        .any(|c| matches!(c, Command::Say { text, .. } if text == "Order 1 2 3 4 is shipped.")));
    assert!(call.is_finished());
}

/// The example of "Triggers and lead scores": a trigger word in an answer
/// asks for one task, the answer still moves the call on, and the score
/// reaches the record.
#[test]
fn reference_trigger_example_runs() {
    let doc = include_str!("../../docs/dialog-scripts.md");
    let section = doc
        .find("### Triggers and lead scores")
        .expect("the triggers section");
    let start =
        section + doc[section..].find("```yaml\n").expect("a yaml block") + "```yaml\n".len();
    let end = start + doc[start..].find("```").expect("block end");
    let program = match Program::parse("docs/dialog-scripts.md", &doc[start..end]) {
        Ok(p) => Arc::new(p),
        Err(e) => panic!("{e}"),
    };
    assert!(program.warnings().is_empty(), "{:?}", program.warnings());
    let mut call = Interpreter::new(program);
    call.handle(Event::CallStarted(CallStart {
        customer: Some(voxbridge_dialog::value::Value::map([(
            "name",
            "Ann Lee".into(),
        )])),
        ..CallStart::default()
    }));
    let out = call.handle(Event::Heard(Heard {
        text: "yes, and what's the price?".into(),
        ..Heard::default()
    }));
    let tasks: Vec<&str> = out
        .iter()
        .filter_map(|c| match c {
            Command::FollowUp(f) => Some(f.subject.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(tasks, vec!["Send Ann Lee a quote within 24 h"]);
    assert!(call.is_finished());
    let record = call.record().expect("a record");
    assert_eq!(record.disposition, "interested");
    assert_eq!(record.score, Some(80.0));
    assert_eq!(record.follow_ups.len(), 1);
    assert_eq!(
        record.follow_ups[0].body,
        "They said: yes, and what's the price?"
    );
}
