//! Checks of one state on its own: its action, its outcomes and way out,
//! its question's settings, lookups, and the syntax of its texts.

use crate::analysis::{self, slot_type, Action, Unit};
use crate::format::{
    Ask, Prompt, Say, SlotType, State, Target, BUILTIN_VARIABLES, KNOWN_LOOKUPS, OUTCOME_ERROR,
    OUTCOME_FAILED, REPEAT,
};
use crate::source::YamlPath;

use super::{is_dtmf_key, is_identifier, suggest, Checker, Text, TextKind};

pub(super) fn check(c: &mut Checker, unit: &Unit, name: &str, state: &State) {
    let p = unit.state_path(name);
    let src = unit.source;
    if name == REPEAT {
        c.key_err(
            src,
            &p,
            "`repeat` is reserved (it says the question again); rename the state",
        );
    }
    let acts = state.actions();
    if acts.len() > 1 {
        c.key_err(
            src,
            &p,
            format!(
                "state `{name}` has both `{}` and `{}`: a state takes one action, so split it in two",
                acts[0], acts[1]
            ),
        );
    }
    let action = Action::of(state);
    if let (Action::Return(_), None) = (action, unit.flow) {
        c.err(src, &p.at("return"), "`return` only works inside a flow");
    }
    for key in state.set.keys() {
        var_name(c, src, &p.at("set").at(key), key, true);
    }
    if let Some(say) = &state.say {
        c.say(src, &p.at("say"), say);
    }
    match action {
        Action::Ask(ask) => check_ask(c, unit, &p, state, ask),
        Action::Lookup(l) => {
            let lp = p.at("lookup");
            match KNOWN_LOOKUPS.iter().find(|(n, _, _)| *n == l.name) {
                None => {
                    let names: Vec<&str> = KNOWN_LOOKUPS.iter().map(|(n, _, _)| *n).collect();
                    c.err(
                        src,
                        &lp.at("name"),
                        format!(
                            "unknown lookup `{}` (known: {}){}",
                            l.name,
                            names.join(", "),
                            suggest(&l.name, &names)
                        ),
                    );
                }
                Some((_, args, _)) => {
                    for a in args.iter() {
                        if !l.args.contains_key(*a) {
                            c.err(
                                src,
                                &lp,
                                format!("lookup `{}` needs the argument `{a}`", l.name),
                            );
                        }
                    }
                    for k in l.args.keys() {
                        if !args.contains(&k.as_str()) {
                            c.key_err(
                                src,
                                &lp.at("args").at(k),
                                format!(
                                    "lookup `{}` takes no argument `{k}` (it takes: {})",
                                    l.name,
                                    args.join(", ")
                                ),
                            );
                        }
                    }
                }
            }
            var_name(c, src, &lp.at("into"), &l.into, false);
            if let Some(f) = &l.filler {
                c.say(src, &lp.at("filler"), f);
            }
            need_next(c, src, &p, name, state, "when the lookup succeeds");
            need_on(
                c,
                src,
                &p,
                state,
                OUTCOME_ERROR,
                "lookup",
                "when the CRM does not answer",
            );
        }
        Action::Ticket(t) => {
            if let Some(into) = &t.into {
                var_name(c, src, &p.at("ticket").at("into"), into, false);
            }
            need_next(c, src, &p, name, state, "once the ticket is created");
            need_on(
                c,
                src,
                &p,
                state,
                OUTCOME_ERROR,
                "ticket",
                "when the ticket cannot be created",
            );
        }
        Action::Transfer(_) => {
            need_on(
                c,
                src,
                &p,
                state,
                OUTCOME_FAILED,
                "transfer",
                "when nobody takes the call",
            );
            if state.next.is_some() {
                c.err(
                    src,
                    &p.at("next"),
                    "a transfer that works ends the script, so `next` is never used; use `on: {failed: …}`",
                );
            }
        }
        Action::Hangup(d) => {
            if d.trim().is_empty() {
                c.err(
                    src,
                    &p.at("hangup"),
                    "`hangup` needs a disposition, e.g. `resolved`",
                );
            }
            no_next(c, src, &p, "hangup", state);
        }
        Action::Return(_) => no_next(c, src, &p, "return", state),
        Action::Flow(f) => match c.s.flows.get(f) {
            None => {
                let names: Vec<&str> = c.s.flows.keys().map(String::as_str).collect();
                c.err(
                    src,
                    &p.at("flow"),
                    format!("unknown flow `{f}`{}", suggest(f, &names)),
                );
            }
            Some(flow) => {
                for r in analysis::flow_returns(&flow.states) {
                    if !state.on.contains_key(&r) && state.next.is_none() {
                        c.key_err(
                            src,
                            &p,
                            format!("flow `{f}` can return `{r}`, which nothing handles here: add it to `on`, or add `next`"),
                        );
                    }
                }
            }
        },
        Action::None => {
            if state.next.is_none() {
                c.key_err(
                    src,
                    &p,
                    format!(
                        "state `{name}` has no way out: add `next`, or an action such as `hangup`"
                    ),
                );
            }
        }
    }
    // Outcomes `on` may name.
    let outs = analysis::outcomes(c.s, state);
    for key in state.on.keys() {
        let global_intent = matches!(action, Action::Ask(a) if a.slot.is_none())
            && c.s.global.intents.contains_key(key);
        if outs.contains(key) || global_intent {
            continue;
        }
        let at = p.at("on").at(key);
        let msg = match action {
            Action::None => {
                "`on` has nothing to react to: this state takes no action (use `next`)".to_string()
            }
            _ if outs.is_empty() => format!(
                "`{key}` cannot happen here: `{}` has no outcomes to react to (use `next`)",
                action.name()
            ),
            _ => {
                let list: Vec<&str> = outs.iter().map(String::as_str).collect();
                format!(
                    "`{key}` cannot happen here: `{}` gives {}{}",
                    action.name(),
                    list.iter()
                        .map(|o| format!("`{o}`"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    suggest(key, &list)
                )
            }
        };
        c.key_err(src, &at, msg);
    }
    for (key, target) in &state.on {
        branches(c, src, &p.at("on").at(key), target);
    }
    if let Some(next) = &state.next {
        branches(c, src, &p.at("next"), next);
    }
    for t in texts(&p, state) {
        c.parse_text(src, &t);
    }
}

fn check_ask(c: &mut Checker, unit: &Unit, p: &YamlPath, state: &State, ask: &Ask) {
    let src = unit.source;
    let ap = p.at("ask");
    c.say(src, &ap.at("prompt"), &ask.prompt);
    match (&ask.slot, ask.intents.is_empty()) {
        (None, true) => c.err(
            src,
            &ap,
            "a question needs `intents` (what the caller may want) or `slot` (a value to fill)",
        ),
        (Some(_), false) => c.err(
            src,
            &ap.at("intents"),
            "a question takes `intents` or a `slot`, not both",
        ),
        _ => {}
    }
    if let Some(slot) = &ask.slot {
        var_name(c, src, &ap.at("slot"), slot, false);
        if ask.kind.is_none() {
            c.err(
                src,
                &ap.at("slot"),
                format!("slot `{slot}` needs a `type`: digits, number, yes_no, enum, order_id, date or text"),
            );
        }
    } else if ask.kind.is_some() {
        c.err(src, &ap.at("type"), "`type` needs a `slot` to fill");
    }
    let kind = slot_type(ask);
    if kind == Some(SlotType::Enum) && ask.values.is_empty() {
        c.err(src, &ap.at("type"), "an enum slot needs `values`");
    }
    if !ask.values.is_empty() && ask.slot.is_some() && kind != Some(SlotType::Enum) {
        c.err(src, &ap.at("values"), "`values` only apply to `type: enum`");
    }
    for (value, phrases) in &ask.values {
        for lang in c.langs.clone() {
            if phrases.get(lang).is_none() {
                c.key_err(
                    src,
                    &ap.at("values").at(value),
                    format!(
                        "value `{value}` has no `{lang}` phrases: {lang} callers could not say it"
                    ),
                );
            }
        }
    }
    for (i, intent) in ask.intents.iter().enumerate() {
        c.intent_known(src, &ap.at("intents").at(i), intent, false);
        if !state.on.contains_key(intent) && state.next.is_none() {
            c.err(
                src,
                &ap.at("intents").at(i),
                format!("intent `{intent}` is expected but nothing handles it: add it to `on`, or add `next`"),
            );
        }
    }
    if let Some(k @ (SlotType::YesNo | SlotType::Enum)) = kind {
        let outs: Vec<String> = match k {
            SlotType::YesNo => vec!["yes".into(), "no".into()],
            _ => ask.values.keys().cloned().collect(),
        };
        for o in outs {
            if !state.on.contains_key(&o) && state.next.is_none() {
                c.err(
                    src,
                    &ap,
                    format!("the answer `{o}` is not handled: add it to `on`, or add `next`"),
                );
            }
        }
    } else if kind.is_some() && state.next.is_none() {
        c.err(
            src,
            &ap.at("slot"),
            "no way out once the slot is filled: add `next`",
        );
    }
    // Keys.
    for (key, to) in &ask.keys {
        let kp = ap.at("keys").at(key);
        if key.is_empty() || !key.chars().all(is_dtmf_key) {
            c.key_err(
                src,
                &kp,
                format!("`{key}` is not a phone key (0-9, *, #, A-D)"),
            );
        }
        let ok: Vec<String> = match kind {
            None => {
                let mut v = ask.intents.clone();
                v.extend(c.s.global.intents.keys().cloned());
                v
            }
            Some(SlotType::YesNo) => vec!["yes".into(), "no".into()],
            Some(SlotType::Enum) => ask.values.keys().cloned().collect(),
            Some(other) => {
                c.err(
                    src,
                    &ap.at("keys"),
                    format!(
                        "`keys` only apply to intent, yes_no and enum questions, not `{}`",
                        other.name()
                    ),
                );
                break;
            }
        };
        if !ok.contains(to) {
            let what = if kind.is_none() { "intent" } else { "value" };
            c.err(
                src,
                &kp,
                format!("key `{key}` gives the {what} `{to}`, which this question does not expect"),
            );
        }
    }
    if let Some(input) = ask.input {
        if !input.speech() && ask.keys.is_empty() && matches!(kind, None | Some(SlotType::Enum)) {
            c.err(
                src,
                &ap.at("input"),
                "this question takes keys only, but maps no `keys`",
            );
        }
        if !input.speech() && kind == Some(SlotType::Text) {
            c.err(
                src,
                &ap.at("input"),
                "a text slot cannot be typed on the keypad",
            );
        }
        if !input.dtmf() && !ask.keys.is_empty() {
            c.err(
                src,
                &ap.at("keys"),
                "`keys` are never pressed with `input: speech`",
            );
        }
    }
    if (ask.min.is_some() || ask.max.is_some()) && kind != Some(SlotType::Number) {
        c.err(src, &ap, "`min`/`max` only apply to `type: number`");
    }
    if (ask.min_len.is_some() || ask.max_len.is_some())
        && !matches!(
            kind,
            Some(SlotType::Digits | SlotType::OrderId | SlotType::Text)
        )
    {
        c.err(
            src,
            &ap,
            "`min_len`/`max_len` only apply to digits, order_id and text slots",
        );
    }
    if let (Some(a), Some(b)) = (ask.min, ask.max) {
        if a > b {
            c.err(src, &ap.at("min"), "`min` is larger than `max`");
        }
    }
    if let (Some(a), Some(b)) = (ask.min_len, ask.max_len) {
        if a > b {
            c.err(src, &ap.at("min_len"), "`min_len` is larger than `max_len`");
        }
    }
    if let Some(conf) = ask.confidence {
        if !(0.0..=1.0).contains(&conf) {
            c.err(
                src,
                &ap.at("confidence"),
                "confidence must be between 0 and 1",
            );
        }
    }
    if ask.max_retries == Some(0) {
        c.err(src, &ap.at("max_retries"), "max_retries must be at least 1");
    }
    if let Some(d) = &ask.dtmf {
        if let Some(k) = d.finish_key {
            if !is_dtmf_key(k) {
                c.err(
                    src,
                    &ap.at("dtmf").at("finish_key"),
                    format!("`{k}` is not a phone key (0-9, *, #, A-D)"),
                );
            }
        }
        if d.max_digits == Some(0) {
            c.err(
                src,
                &ap.at("dtmf").at("max_digits"),
                "max_digits must be at least 1",
            );
        }
    }
    for (key, no_input) in [("no_input", true), ("no_match", false)] {
        match analysis::escalation(c.s, ask, no_input) {
            None => c.err(
                src,
                &ap,
                format!(
                    "missing {} handling: add `{key}` to this question or `defaults.{key}` to the script",
                    key.replace('_', "-")
                ),
            ),
            Some((steps, false)) => {
                c.steps(src, &ap.at(key), key, steps);
                for (i, step) in steps.iter().enumerate() {
                    if let Some(goto) = &step.goto {
                        branches(c, src, &ap.at(key).at(i).at("goto"), goto);
                    }
                }
            }
            Some((_, true)) => {}
        }
    }
}

/// Branch lists: a last branch without `if`, and none after it.
fn branches(c: &mut Checker, src: usize, at: &YamlPath, target: &Target) {
    let Target::Branches(list) = target else {
        return;
    };
    for (i, b) in list.iter().enumerate() {
        let last = i + 1 == list.len();
        match (&b.when, last) {
            (None, false) => c.err(
                src,
                &at.at(i),
                "the branches after one without `if` are never tried",
            ),
            (Some(_), true) => c.err(
                src,
                &at.at(i),
                "when no `if` holds there is nowhere to go: end the list with a `- goto:` that has no `if`",
            ),
            _ => {}
        }
        if let Some(cond) = &b.when {
            c.parse_text(
                src,
                &Text {
                    at: at.at(i).at("if"),
                    src: cond,
                    kind: TextKind::Condition,
                },
            );
        }
    }
}

fn need_next(c: &mut Checker, src: usize, p: &YamlPath, name: &str, state: &State, when: &str) {
    if state.next.is_none() {
        c.key_err(
            src,
            p,
            format!("state `{name}` has no way out {when}: add `next`"),
        );
    }
}

fn need_on(
    c: &mut Checker,
    src: usize,
    p: &YamlPath,
    state: &State,
    outcome: &str,
    what: &str,
    when: &str,
) {
    if !state.on.contains_key(outcome) {
        c.err(
            src,
            &p.at(what),
            format!("missing handler: this {what} has no `on: {{{outcome}: …}}` to say what happens {when}"),
        );
    }
}

fn no_next(c: &mut Checker, src: usize, p: &YamlPath, what: &str, state: &State) {
    if state.next.is_some() {
        c.err(
            src,
            &p.at("next"),
            format!("`next` is never used after `{what}`"),
        );
    }
}

/// A name a state assigns to.
fn var_name(c: &mut Checker, src: usize, at: &YamlPath, name: &str, key: bool) {
    let msg = if !is_identifier(name) {
        Some(format!(
            "`{name}` cannot be a variable name: use letters, digits and `_`, not starting with a digit"
        ))
    } else if name != "language" && BUILTIN_VARIABLES.iter().any(|(b, _)| *b == name) {
        Some(format!("`{name}` is built in and cannot be set"))
    } else {
        None
    };
    if let Some(m) = msg {
        if key {
            c.key_err(src, at, m);
        } else {
            c.err(src, at, m);
        }
    }
}

/// The templates and conditions a state evaluates on entry (branch
/// conditions are read from the edges).
pub(super) fn texts<'a>(p: &YamlPath, state: &'a State) -> Vec<Text<'a>> {
    let mut out = Vec::new();
    let tpl = |at: YamlPath, src: &'a str| Text {
        at,
        src,
        kind: TextKind::Template,
    };
    for (k, v) in &state.set {
        if let Some(s) = v.as_str() {
            out.push(tpl(p.at("set").at(k), s));
        }
    }
    if let Some(say) = &state.say {
        say_texts(&mut out, &p.at("say"), say);
    }
    if let Some(ask) = &state.ask {
        let ap = p.at("ask");
        say_texts(&mut out, &ap.at("prompt"), &ask.prompt);
        for (key, steps) in [("no_input", &ask.no_input), ("no_match", &ask.no_match)] {
            for (i, step) in steps.iter().flatten().enumerate() {
                if let Some(say) = &step.say {
                    say_texts(&mut out, &ap.at(key).at(i).at("say"), say);
                }
            }
        }
        if let Some(v) = &ask.valid {
            out.push(Text {
                at: ap.at("valid"),
                src: v,
                kind: TextKind::Valid,
            });
        }
    }
    if let Some(l) = &state.lookup {
        let lp = p.at("lookup");
        for (k, v) in &l.args {
            out.push(tpl(lp.at("args").at(k), v));
        }
        if let Some(f) = &l.filler {
            say_texts(&mut out, &lp.at("filler"), f);
        }
    }
    if let Some(t) = &state.ticket {
        let tp = p.at("ticket");
        out.push(tpl(tp.at("subject"), &t.subject));
        if let Some(b) = &t.body {
            out.push(tpl(tp.at("body"), b));
        }
        if let Some(crate::format::PrioritySpec::By(by)) = &t.priority {
            out.push(Text {
                at: tp.at("priority").at("by"),
                src: &by.by,
                kind: TextKind::Condition,
            });
        }
    }
    if let Some(t) = &state.transfer {
        let tp = p.at("transfer");
        out.push(tpl(tp.at("to"), &t.to));
        for (k, v) in &t.context {
            out.push(tpl(tp.at("context").at(k), v));
        }
    }
    out
}

/// The steps' says of the defaults handlers, used by every question.
pub(super) fn say_texts<'a>(out: &mut Vec<Text<'a>>, at: &YamlPath, say: &'a Say) {
    let single = say.prompts().len() == 1;
    for (i, prompt) in say.prompts().iter().enumerate() {
        let pp = if single { at.clone() } else { at.at(i) };
        prompt_texts(out, &pp, prompt);
    }
}

fn prompt_texts<'a>(out: &mut Vec<Text<'a>>, at: &YamlPath, prompt: &'a Prompt) {
    for (lang, text) in prompt.texts() {
        let tp = match lang {
            Some(l) => at.at(l.code()),
            None => at.clone(),
        };
        out.push(Text {
            at: tp,
            src: text,
            kind: TextKind::Template,
        });
    }
}
