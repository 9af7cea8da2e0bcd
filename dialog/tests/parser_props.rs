//! Property tests: nothing a script author (or a caller) can write makes
//! the parsers, the validator or the slot extraction panic.

use std::collections::BTreeMap;

use proptest::prelude::*;
use voxbridge_dialog::date::Date;
use voxbridge_dialog::expr::Expr;
use voxbridge_dialog::extract;
use voxbridge_dialog::load::load_str;
use voxbridge_dialog::template::Template;
use voxbridge_dialog::validate::validate;
use voxbridge_dialog::value::Value;

const BUNDLED: &str = include_str!("../../fixtures/scripts/customer-service.yaml");

/// The bundled script without its import (text has no folder to import
/// from), so damaged copies still reach the validator.
fn script() -> String {
    BUNDLED.replace("imports: [common/callback.yaml]", "")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn expressions_and_templates_never_panic(src in ".{0,40}", tpl in "[a-z{}|()\"' .=<>!0-9]{0,40}") {
        let scope: BTreeMap<String, Value> = BTreeMap::new();
        if let Ok(e) = Expr::parse(&src) {
            let _ = e.eval(&scope);
            let _ = e.variables();
        }
        if let Ok(t) = Template::parse(&tpl) {
            let _ = t.render(&scope);
        }
        if let Ok(t) = Template::parse(&src) {
            let _ = t.value(&scope);
        }
    }

    #[test]
    fn extraction_never_panics(text in ".{0,30}") {
        let _ = extract::digit_string(&text);
        let _ = extract::number(&text);
        let _ = extract::yes_no(&text, None);
        let _ = extract::date(&text, Date::new(2026, 2, 28));
    }

    /// Cut a piece out of a real script and paste something else in: the
    /// loader and validator report problems, never panic.
    #[test]
    fn damaged_scripts_never_panic(
        at in 0usize..BUNDLED.len(),
        cut in 0usize..200,
        paste in prop_oneof![
            Just(String::new()),
            Just("\n  x:\n".to_string()),
            Just("{{".to_string()),
            Just(": [".to_string()),
            Just("    next: nowhere\n".to_string()),
            ".{0,10}",
        ],
    ) {
        let script = script();
        let at = at.min(script.len());
        let start = (0..=at).rev().find(|i| script.is_char_boundary(*i)).unwrap_or(0);
        let end_raw = (start + cut).min(script.len());
        let end = (end_raw..=script.len()).find(|i| script.is_char_boundary(*i)).unwrap_or(script.len());
        let text = format!("{}{}{}", &script[..start], paste, &script[end..]);
        if let Ok(loaded) = load_str("t.yaml", None, &text, None) {
            let problems = validate(&loaded, None);
            // Every problem is located in the file.
            for p in &problems {
                prop_assert!(p.line > 0, "{}", p);
            }
        }
    }
}
