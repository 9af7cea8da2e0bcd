//! The validator: everything that can be known to be wrong with a script
//! before a call, each problem with its file, line and column.
//!
//! Checks: unknown and unreachable states, states with no way out, loops
//! that never wait, unknown flows/lookups/intents (against the script's
//! `intents` and, when given, the intent model's label list), outcomes
//! that cannot happen, variables used before they can be set, template and
//! condition syntax, missing no-input/no-match handling, handlers that never
//! leave, prompts missing a language, missing WAV files, triggers that
//! nothing can fire, lead scores that are not numbers from 0 to 100.

mod state;
mod triggers;
mod vars;

use std::collections::BTreeSet;
use std::path::Path;

use crate::analysis::{self, units, Action, EdgeKind, Unit};
use crate::diag::{Problem, Severity};
use crate::expr::Expr;
use crate::format::{Lang, Say, Script, Step, Target, BUILTIN_VARIABLES, REPEAT};
use crate::load::Loaded;
use crate::source::YamlPath;
use crate::template::Template;

/// The intent model's label list (one label per line; `#` comments).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Labels {
    /// The file it came from, for messages.
    pub file: String,
    pub names: Vec<String>,
}

impl Labels {
    pub fn read(path: &Path) -> std::io::Result<Labels> {
        let text = std::fs::read_to_string(path)?;
        Ok(Labels::parse(&path.display().to_string(), &text))
    }

    pub fn parse(file: &str, text: &str) -> Labels {
        Labels {
            file: file.to_string(),
            names: text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(String::from)
                .collect(),
        }
    }
}

/// Every problem in a loaded script, sorted by place.
pub fn validate(loaded: &Loaded, labels: Option<&Labels>) -> Vec<Problem> {
    let mut c = Checker::new(loaded, labels);
    c.script_level();
    let units = units(loaded);
    for unit in &units {
        c.unit(unit);
    }
    vars::check(&mut c, &units);
    c.unused_flows();
    let mut out = c.out;
    out.sort_by(|a, b| {
        (&a.file, a.line, a.column, a.severity, &a.message)
            .cmp(&(&b.file, b.line, b.column, b.severity, &b.message))
    });
    out.dedup();
    out
}

/// The languages a script's prompts must cover.
pub fn languages(script: &Script) -> Vec<Lang> {
    if script.languages.is_empty() {
        vec![script.defaults.language.unwrap_or(Lang::En)]
    } else {
        script.languages.clone()
    }
}

pub(crate) struct Checker<'a> {
    pub l: &'a Loaded,
    pub s: &'a Script,
    labels: Option<&'a Labels>,
    pub langs: Vec<Lang>,
    pub out: Vec<Problem>,
    /// Every variable name the script can read: built-ins and everything
    /// some state sets.
    pub known_vars: BTreeSet<String>,
}

/// A piece of text in a state that is parsed: a template or a condition.
pub(crate) struct Text<'a> {
    pub at: YamlPath,
    pub src: &'a str,
    pub kind: TextKind,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum TextKind {
    Template,
    Condition,
    /// A slot validator: `value` is in scope.
    Valid,
}

impl<'a> Checker<'a> {
    fn new(l: &'a Loaded, labels: Option<&'a Labels>) -> Checker<'a> {
        let s = &l.script;
        let mut known_vars: BTreeSet<String> = BUILTIN_VARIABLES
            .iter()
            .map(|(n, _)| n.to_string())
            .collect();
        for unit in units(l) {
            known_vars.extend(unit.uses.iter().cloned());
            for state in unit.states.values() {
                known_vars.extend(state_sets(state));
            }
        }
        Checker {
            l,
            s,
            labels,
            langs: languages(s),
            out: Vec::new(),
            known_vars,
        }
    }

    pub fn err(&mut self, source: usize, at: &YamlPath, msg: impl Into<String>) {
        self.out.push(self.l.problem(source, at, msg));
    }

    pub fn key_err(&mut self, source: usize, at: &YamlPath, msg: impl Into<String>) {
        self.out.push(self.l.key_problem(source, at, msg));
    }

    pub fn warn(&mut self, source: usize, at: &YamlPath, msg: impl Into<String>) {
        self.out
            .push(self.l.problem_at(source, at, true, Severity::Warning, msg));
    }

    fn script_level(&mut self) {
        let s = self.s;
        let root = YamlPath::root();
        if let Some(lang) = s.defaults.language {
            if !s.languages.is_empty() && !s.languages.contains(&lang) {
                self.err(
                    0,
                    &root.at("defaults").at("language"),
                    format!("`defaults.language` is `{lang}`, which is not in `languages`"),
                );
            }
        }
        let mut seen = BTreeSet::new();
        for (i, l) in s.languages.iter().enumerate() {
            if !seen.insert(*l) {
                self.err(
                    0,
                    &root.at("languages").at(i),
                    format!("`{l}` is listed twice"),
                );
            }
        }
        let d = root.at("defaults");
        if let Some(c) = s.defaults.confidence {
            if !(0.0..=1.0).contains(&c) {
                self.err(0, &d.at("confidence"), "confidence must be between 0 and 1");
            }
        }
        if s.defaults.max_retries == Some(0) {
            self.err(0, &d.at("max_retries"), "max_retries must be at least 1");
        }
        for (key, steps) in [
            ("no_input", &s.defaults.no_input),
            ("no_match", &s.defaults.no_match),
        ] {
            if let Some(steps) = steps {
                self.steps(0, &d.at(key), key, steps);
            }
        }
        if let Some(dtmf) = &s.defaults.dtmf {
            if let Some(k) = dtmf.finish_key {
                if !is_dtmf_key(k) {
                    self.err(
                        0,
                        &d.at("dtmf").at("finish_key"),
                        format!("`{k}` is not a phone key (0-9, *, #, A-D)"),
                    );
                }
            }
        }
        let g = root.at("global");
        for intent in s.global.intents.keys() {
            self.intent_known(0, &g.at("intents").at(intent), intent, true);
        }
        for key in s.global.dtmf.keys() {
            if !key.chars().all(is_dtmf_key) || key.is_empty() {
                self.key_err(
                    0,
                    &g.at("dtmf").at(key),
                    format!("`{key}` is not a phone key (0-9, *, #, A-D)"),
                );
            }
        }
        for (intent, phrases) in &s.intents {
            for lang in self.langs.clone() {
                if phrases.get(lang).is_none_or(|p| p.is_empty()) {
                    self.warn(
                        0,
                        &root.at("intents").at(intent),
                        format!("intent `{intent}` has no `{lang}` examples: the simulator cannot match it in {lang}"),
                    );
                }
            }
        }
        triggers::check(self);
        if let Some(labels) = self.labels {
            for intent in s.intents.keys() {
                if !labels.names.contains(intent) {
                    self.key_err(
                        0,
                        &root.at("intents").at(intent),
                        format!(
                            "intent `{intent}` is not one of the intent model's labels ({})",
                            labels.file
                        ),
                    );
                }
            }
        }
    }

    /// Is `intent` known? Reports when it is not. `key` says whether the
    /// path ends at a map key (point at the key) or a value.
    pub fn intent_known(&mut self, source: usize, at: &YamlPath, intent: &str, key: bool) {
        let mut msg = None;
        if !self.s.intents.is_empty() && !self.s.intents.contains_key(intent) {
            let names: Vec<&str> = self.s.intents.keys().map(String::as_str).collect();
            msg = Some(format!(
                "unknown intent `{intent}`: not in the script's `intents`{}",
                suggest(intent, &names)
            ));
        } else if let Some(labels) = self.labels {
            if !labels.names.iter().any(|n| n == intent) {
                let names: Vec<&str> = labels.names.iter().map(String::as_str).collect();
                msg = Some(format!(
                    "unknown intent `{intent}`: not one of the intent model's labels ({}){}",
                    labels.file,
                    suggest(intent, &names)
                ));
            }
        }
        if let Some(m) = msg {
            if key {
                self.key_err(source, at, m);
            } else {
                self.err(source, at, m);
            }
        }
    }

    /// A no-input / no-match handler's steps.
    pub fn steps(&mut self, source: usize, at: &YamlPath, what: &str, steps: &[Step]) {
        if steps.is_empty() {
            self.err(source, at, format!("`{what}` has no steps"));
            return;
        }
        for (i, step) in steps.iter().enumerate() {
            if step.say.is_none() && !step.reprompt && step.goto.is_none() {
                self.err(
                    source,
                    &at.at(i),
                    "a step must `say` something, `reprompt`, or `goto` a state",
                );
            }
            if let Some(say) = &step.say {
                self.say(source, &at.at(i).at("say"), say);
            }
        }
        if steps.last().is_some_and(|s| s.goto.is_none()) {
            self.err(
                source,
                &at.at(steps.len() - 1),
                format!("the last `{what}` step must leave the question with `goto`, or a caller who never gets through is asked forever"),
            );
        }
    }

    /// Prompt checks that need no variables: languages, WAV files. (Template
    /// syntax is checked with the state's other texts.)
    pub fn say(&mut self, source: usize, at: &YamlPath, say: &Say) {
        let single = say.prompts().len() == 1;
        for (i, prompt) in say.prompts().iter().enumerate() {
            // A one-prompt `say` may be written without a list; its path then
            // stops at `say`, which locates it just as well.
            let p = if single { at.clone() } else { at.at(i) };
            if let Some(wav) = &prompt.wav {
                for (lang, file) in wav.values() {
                    let wp = match lang {
                        Some(l) => p.at("wav").at(l.code()),
                        None => p.at("wav"),
                    };
                    if let Some(dir) = &self.l.base_dir {
                        if !dir.join(file).is_file() {
                            self.err(source, &wp, format!("WAV file `{file}` not found"));
                        }
                    }
                }
                for lang in self.langs.clone() {
                    if wav.get(lang).is_none() {
                        self.err(source, &p.at("wav"), format!("no `{lang}` recording"));
                    }
                }
                continue;
            }
            if prompt.text.is_some() {
                if self.langs.len() > 1 {
                    let list: Vec<String> = self.langs.iter().map(|l| format!("{l}: …")).collect();
                    self.err(
                        source,
                        &p,
                        format!(
                            "this prompt is the same text in every language; the script speaks {}, so write it per language ({})",
                            self.langs.iter().map(|l| l.code()).collect::<Vec<_>>().join(" and "),
                            list.join(", ")
                        ),
                    );
                }
                continue;
            }
            if prompt.en.is_none() && prompt.zh.is_none() {
                self.err(source, &p, "prompt has no text (en, zh) and no `wav`");
                continue;
            }
            for lang in self.langs.clone() {
                if prompt.text_for(lang).is_none() {
                    self.err(source, &p, format!("prompt has no `{lang}` text"));
                }
            }
        }
    }

    /// Parse a template or condition; report syntax errors.
    pub fn parse_text(&mut self, source: usize, text: &Text) {
        let err = match text.kind {
            TextKind::Template => Template::parse(text.src)
                .err()
                .map(|e| format!("template error: {e}")),
            TextKind::Condition | TextKind::Valid => Expr::parse(text.src)
                .err()
                .map(|e| format!("condition error: {e}")),
        };
        if let Some(e) = err {
            self.err(source, &text.at, e);
        }
    }

    fn unit(&mut self, unit: &Unit<'a>) {
        let start_path = unit.base.at("start");
        if !unit.states.contains_key(unit.start) {
            let names: Vec<&str> = unit.states.keys().map(String::as_str).collect();
            self.err(
                unit.source,
                &start_path,
                format!(
                    "unknown start state `{}`{}",
                    unit.start,
                    suggest(unit.start, &names)
                ),
            );
        }
        for (name, state) in unit.states {
            state::check(self, unit, name, state);
            triggers::score(self, unit, name, state);
        }
        let edges = analysis::edges(self.s, unit);
        for e in &edges {
            if e.to == REPEAT {
                let allowed = match (&e.kind, e.from) {
                    (EdgeKind::On(_), Some(from)) => {
                        matches!(unit.states.get(from).map(Action::of), Some(Action::Ask(_)))
                    }
                    (EdgeKind::Global(k), None) => k != "no-input" && k != "no-match",
                    _ => false,
                };
                if !allowed {
                    self.err(
                        e.source,
                        &e.at,
                        "`repeat` only works in a question's `on` or in `global`: it says the question again",
                    );
                }
            } else if !unit.states.contains_key(e.to) {
                let names: Vec<&str> = unit.states.keys().map(String::as_str).collect();
                let where_ = match unit.flow {
                    Some(f) => format!(" in flow `{f}`"),
                    None => String::new(),
                };
                self.err(
                    e.source,
                    &e.at,
                    format!("unknown state `{}`{where_}{}", e.to, suggest(e.to, &names)),
                );
            }
        }
        self.reachability(unit, &edges);
        self.spin_loops(unit);
    }

    fn reachability(&mut self, unit: &Unit<'a>, edges: &[analysis::Edge<'a>]) {
        let mut reached: BTreeSet<&str> = BTreeSet::new();
        let mut todo: Vec<&str> = vec![unit.start];
        todo.extend(edges.iter().filter(|e| e.from.is_none()).map(|e| e.to));
        while let Some(s) = todo.pop() {
            if !unit.states.contains_key(s) || !reached.insert(s) {
                continue;
            }
            todo.extend(edges.iter().filter(|e| e.from == Some(s)).map(|e| e.to));
        }
        for name in unit.states.keys() {
            if !reached.contains(name.as_str()) {
                self.key_err(
                    unit.source,
                    &unit.state_path(name),
                    format!("state `{name}` can never be reached"),
                );
            }
        }
    }

    /// Cycles of states that neither wait for the caller nor the engine:
    /// the interpreter would go round them forever.
    fn spin_loops(&mut self, unit: &Unit<'a>) {
        let spins = |name: &str| {
            unit.states
                .get(name)
                .is_some_and(|s| matches!(Action::of(s), Action::None))
        };
        let next_of = |name: &str| -> Vec<&'a str> {
            unit.states
                .get(name)
                .and_then(|s| s.next.as_ref())
                .map(Target::states)
                .unwrap_or_default()
        };
        let mut reported: BTreeSet<&str> = BTreeSet::new();
        for start in unit.states.keys() {
            if !spins(start) || reported.contains(start.as_str()) {
                continue;
            }
            // Walk every path of non-waiting states from `start`, looking
            // for a way back to it.
            let mut stack: Vec<Vec<&str>> = vec![vec![start.as_str()]];
            let mut seen: BTreeSet<&str> = BTreeSet::new();
            while let Some(path) = stack.pop() {
                let Some(&last) = path.last() else { continue };
                for n in next_of(last) {
                    if n == start.as_str() {
                        let mut cycle: Vec<&str> = path.clone();
                        cycle.push(n);
                        reported.extend(path.iter().copied());
                        let shown: Vec<String> = cycle.iter().map(|s| format!("`{s}`")).collect();
                        self.key_err(
                            unit.source,
                            &unit.state_path(start),
                            format!(
                                "states {} loop without waiting for the caller: the call would spin forever",
                                shown.join(" → ")
                            ),
                        );
                        stack.clear();
                        break;
                    }
                    if spins(n) && seen.insert(n) {
                        let mut p = path.clone();
                        p.push(n);
                        stack.push(p);
                    }
                }
            }
        }
    }

    fn unused_flows(&mut self) {
        let used: BTreeSet<&str> = units(self.l)
            .iter()
            .flat_map(|u| u.states.values().filter_map(|s| s.flow.as_deref()))
            .collect();
        for name in self.s.flows.keys() {
            if !used.contains(name.as_str()) && self.l.flow_source.get(name) == Some(&0) {
                self.warn(
                    0,
                    &YamlPath::root().at("flows").at(name),
                    format!("flow `{name}` is never used"),
                );
            }
        }
    }
}

/// The variables a state sets in itself (set, slot, lookup/ticket results).
pub(crate) fn state_sets(state: &crate::format::State) -> Vec<String> {
    let mut out: Vec<String> = state.set.keys().cloned().collect();
    if let Some(slot) = state.ask.as_ref().and_then(|a| a.slot.clone()) {
        out.push(slot);
    }
    if let Some(l) = &state.lookup {
        out.push(l.into.clone());
    }
    if let Some(into) = state.ticket.as_ref().and_then(|t| t.into.clone()) {
        out.push(into);
    }
    out
}

pub(crate) fn is_dtmf_key(c: char) -> bool {
    c.is_ascii_digit() || matches!(c, '*' | '#' | 'A' | 'B' | 'C' | 'D')
}

pub(crate) fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// ` (did you mean `x`?)` when a known name is close to `name`.
pub(crate) fn suggest(name: &str, known: &[&str]) -> String {
    let best = known
        .iter()
        .map(|k| (distance(name, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.chars().count() / 4) && *d > 0)
        .min();
    match best {
        Some((_, k)) => format!(" (did you mean `{k}`?)"),
        None => String::new(),
    }
}

/// Levenshtein distance.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_are_close_names() {
        assert_eq!(
            suggest("menuu", &["menu", "agent"]),
            " (did you mean `menu`?)"
        );
        assert_eq!(suggest("xyz", &["menu", "agent"]), "");
        assert_eq!(distance("kitten", "sitting"), 3);
    }

    #[test]
    fn labels_skip_comments() {
        let l = Labels::parse("l.txt", "# labels\nagent\n\n order_status \n");
        assert_eq!(l.names, vec!["agent", "order_status"]);
    }
}
