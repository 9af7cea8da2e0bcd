//! Checks for the sales features: in-call `triggers` (what fires them,
//! their task texts) and the lead `score` states set.

use crate::analysis::Unit;
use crate::format::{State, SCORE_VARIABLE};
use crate::source::YamlPath;
use crate::template::Template;
use crate::value::Value;

use super::{is_identifier, Checker, Text, TextKind};

/// The script's `triggers`. Their templates can be rendered at any
/// question, so (like the defaults' handlers) they may read built-ins only;
/// that part is checked with the other variables (`trigger_texts`).
pub(super) fn check(c: &mut Checker) {
    let root = YamlPath::root().at("triggers");
    let script = c.s;
    for (name, t) in &script.triggers {
        let at = root.at(name);
        if !is_identifier(name) {
            c.key_err(
                0,
                &at,
                format!("`{name}` cannot be a trigger name: use letters, digits and `_`, not starting with a digit"),
            );
        }
        let no_words = t
            .words
            .as_ref()
            .is_none_or(|w| w.values().iter().all(|(_, list)| list.is_empty()));
        if no_words && t.intents.is_empty() {
            c.key_err(
                0,
                &at,
                format!("trigger `{name}` has no `words` and no `intents`: nothing can fire it"),
            );
        }
        if let Some(words) = &t.words {
            for (lang, list) in words.values() {
                let wp = match lang {
                    Some(l) => at.at("words").at(l.code()),
                    None => at.at("words"),
                };
                for (i, w) in list.iter().enumerate() {
                    if !w.chars().any(char::is_alphanumeric) {
                        c.err(
                            0,
                            &wp.at(i),
                            format!("trigger word `{w}` has no letters or digits: it can never be heard"),
                        );
                    }
                }
            }
            for lang in c.langs.clone() {
                if words.get(lang).is_none() && t.intents.is_empty() {
                    c.warn(
                        0,
                        &at.at("words"),
                        format!("trigger `{name}` has no `{lang}` words: it never fires on a call in {lang}"),
                    );
                }
            }
        }
        for (i, intent) in t.intents.iter().enumerate() {
            c.intent_known(0, &at.at("intents").at(i), intent, false);
        }
        if t.task.trim().is_empty() {
            c.err(
                0,
                &at.at("task"),
                format!("trigger `{name}` has an empty `task`: the follow-up needs a subject"),
            );
        }
    }
}

/// The templates of every trigger, for the syntax and variable checks.
pub(super) fn trigger_texts<'a>(c: &Checker<'a>) -> Vec<Text<'a>> {
    let root = YamlPath::root().at("triggers");
    let script: &'a crate::format::Script = c.s;
    let mut out = Vec::new();
    for (name, t) in &script.triggers {
        out.push(Text {
            at: root.at(name).at("task"),
            src: &t.task,
            kind: TextKind::Template,
        });
        if let Some(b) = &t.body {
            out.push(Text {
                at: root.at(name).at("body"),
                src: b,
                kind: TextKind::Template,
            });
        }
    }
    out
}

/// A state's `set: { score: … }`: a number from 0 to 100, or a template
/// (whose value is checked on the call: one that does not read as a
/// number leaves the call without a score).
pub(super) fn score(c: &mut Checker, unit: &Unit, name: &str, state: &State) {
    let Some(v) = state.set.get(SCORE_VARIABLE) else {
        return;
    };
    let at = unit.state_path(name).at("set").at(SCORE_VARIABLE);
    let msg = match v {
        Value::Number(n) if !(0.0..=100.0).contains(n) => {
            Some(format!("score {n} is out of range: a lead score is from 0 to 100"))
        }
        Value::Number(_) => None,
        Value::String(s) if s.trim().parse::<f64>().is_ok() => {
            Some(format!("score `{s}` is text: write the number without quotes"))
        }
        Value::String(s) if Template::parse(s).is_ok_and(|t| !t.variables().is_empty()) => None,
        // A template that does not parse is reported with the other texts.
        Value::String(s) if Template::parse(s).is_err() => None,
        other => Some(format!(
            "score must be a number from 0 to 100 or a template such as \"{{{{ customer.score }}}}\", not `{other}`"
        )),
    };
    if let Some(m) = msg {
        c.err(unit.source, &at, m);
    }
}
