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
