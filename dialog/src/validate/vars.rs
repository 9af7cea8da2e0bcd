//! "Used before it can be set": a forward must-analysis over each unit's
//! state graph. A variable is available in a state when every way into the
//! state sets it (a `set`, a filled slot, a lookup or ticket result, a
//! flow's results); templates and conditions may only read available
//! variables, built-ins and, in a flow, its `uses`.

use std::collections::{BTreeMap, BTreeSet};

use crate::analysis::{self, Action, Edge, EdgeKind, Unit};
use crate::expr::Expr;
use crate::format::{State, BUILTIN_VARIABLES};
use crate::source::YamlPath;
use crate::template::Template;

use super::state::{say_texts, texts};
use super::{suggest, Checker, Text, TextKind};

type Vars = BTreeSet<String>;
/// flow → outcome (`""`: any) → variables surely set on return.
type FlowOut = BTreeMap<String, BTreeMap<String, Vars>>;

pub(super) fn check(c: &mut Checker, units: &[Unit]) {
    let flow_out = flow_results(c, units);
    for unit in units {
        let avail = analyse(c, unit, &flow_out);
        report(c, unit, &avail, &flow_out);
    }
    // The defaults' handler steps speak from any question: only built-ins
    // are surely there.
    let mut out = Vec::new();
    let d = YamlPath::root().at("defaults");
    for (key, steps) in [
        ("no_input", &c.s.defaults.no_input),
        ("no_match", &c.s.defaults.no_match),
    ] {
        for (i, step) in steps.iter().flatten().enumerate() {
            if let Some(say) = &step.say {
                say_texts(&mut out, &d.at(key).at(i).at("say"), say);
            }
        }
    }
    for t in &out {
        c.parse_text(0, t);
        use_vars(c, 0, t, &Vars::new(), "any question", false);
    }
    // Triggers fire at any question too.
    for t in &super::triggers::trigger_texts(c) {
        c.parse_text(0, t);
        use_vars(c, 0, t, &Vars::new(), "any question", false);
    }
}

/// What each flow surely sets by the time it returns, per returned
/// outcome (and under `""` for any outcome). Flows can call flows (even
/// themselves), so iterate from "nothing" up to a fixed point.
fn flow_results<'a>(c: &Checker<'a>, units: &[Unit<'a>]) -> FlowOut {
    let mut out: FlowOut = BTreeMap::new();
    for _ in 0..=units.len() {
        let mut changed = false;
        for unit in units.iter().filter(|u| u.flow.is_some()) {
            let avail = analyse(c, unit, &out);
            let mut result: BTreeMap<String, Vars> = BTreeMap::new();
            for (name, state) in unit.states {
                let Action::Return(outcome) = Action::of(state) else {
                    continue;
                };
                let Some(Some(inn)) = avail.get(name.as_str()) else {
                    continue;
                };
                let entry = entry_vars(inn, state);
                for key in [outcome, ""] {
                    let merged = match result.get(key) {
                        None => entry.clone(),
                        Some(r) => r.intersection(&entry).cloned().collect(),
                    };
                    result.insert(key.to_string(), merged);
                }
            }
            let key = unit.flow.unwrap_or_default().to_string();
            if out.get(&key) != Some(&result) {
                out.insert(key, result);
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    out
}

/// Variables available on entry to each state (`None`: not reached).
fn analyse<'a>(
    c: &Checker<'a>,
    unit: &Unit<'a>,
    flow_out: &FlowOut,
) -> BTreeMap<&'a str, Option<Vars>> {
    let base: Vars = unit.uses.iter().cloned().collect();
    let edges = analysis::edges(c.s, unit);
    let mut inn: BTreeMap<&str, Option<Vars>> =
        unit.states.keys().map(|k| (k.as_str(), None)).collect();
    let mut todo: Vec<&str> = Vec::new();
    let meet = |inn: &mut BTreeMap<&'a str, Option<Vars>>, to: &'a str, contrib: Vars| -> bool {
        let Some(slot) = inn.get_mut(to) else {
            return false;
        };
        let new = match slot {
            None => contrib,
            Some(cur) => cur.intersection(&contrib).cloned().collect(),
        };
        if slot.as_ref() != Some(&new) {
            *slot = Some(new);
            true
        } else {
            false
        }
    };
    if meet(&mut inn, unit.start, base.clone()) {
        todo.push(unit.start);
    }
    for e in edges.iter().filter(|e| e.from.is_none()) {
        if meet(&mut inn, e.to, base.clone()) {
            todo.push(e.to);
        }
    }
    while let Some(s) = todo.pop() {
        let (Some(state), Some(Some(cur))) = (unit.states.get(s), inn.get(s).cloned()) else {
            continue;
        };
        let entry = entry_vars(&cur, state);
        for e in edges.iter().filter(|e| e.from == Some(s)) {
            let mut contrib = entry.clone();
            contrib.extend(gen(state, e, flow_out));
            if meet(&mut inn, e.to, contrib) {
                todo.push(e.to);
            }
        }
    }
    inn
}

fn entry_vars(inn: &Vars, state: &State) -> Vars {
    let mut v = inn.clone();
    v.extend(state.set.keys().cloned());
    v
}

/// What taking an edge sets on top of the state's entry variables.
fn gen(state: &State, e: &Edge, flow_out: &FlowOut) -> Vars {
    let success = matches!(e.kind, EdgeKind::Next | EdgeKind::On(_));
    let mut out = Vars::new();
    match Action::of(state) {
        Action::Ask(a) if success => out.extend(a.slot.clone()),
        Action::Lookup(l) if e.kind == EdgeKind::Next => {
            out.insert(l.into.clone());
        }
        Action::Ticket(t) if e.kind == EdgeKind::Next => out.extend(t.into.clone()),
        Action::Flow(f) if success => {
            let outcome = match &e.kind {
                EdgeKind::On(o) => o.as_str(),
                _ => "",
            };
            if let Some(v) = flow_out.get(f).and_then(|m| m.get(outcome)) {
                out.extend(v.iter().cloned());
            }
        }
        _ => {}
    }
    out
}

fn report(c: &mut Checker, unit: &Unit, avail: &BTreeMap<&str, Option<Vars>>, flow_out: &FlowOut) {
    let edges = analysis::edges(c.s, unit);
    for (name, state) in unit.states {
        // A state never reached is reported as such; its texts are still
        // checked for unknown names.
        let entry = match avail.get(name.as_str()) {
            Some(Some(inn)) => entry_vars(inn, state),
            _ => c.known_vars.clone(),
        };
        let p = unit.state_path(name);
        for t in texts(&p, state) {
            use_vars(c, unit.source, &t, &entry, name, unit.flow.is_some());
        }
        for e in edges.iter().filter(|e| e.from == Some(name.as_str())) {
            if let Some(cond) = e.cond {
                let mut v = entry.clone();
                v.extend(gen(state, e, flow_out));
                let t = Text {
                    at: cond_path(&e.at),
                    src: cond,
                    kind: TextKind::Condition,
                };
                use_vars(c, e.source, &t, &v, name, unit.flow.is_some());
            }
        }
    }
    for e in edges.iter().filter(|e| e.from.is_none()) {
        if let Some(cond) = e.cond {
            let t = Text {
                at: cond_path(&e.at),
                src: cond,
                kind: TextKind::Condition,
            };
            use_vars(c, e.source, &t, &Vars::new(), "any question", false);
        }
    }
}

/// `….next[1].goto` → `….next[1].if`
fn cond_path(goto: &YamlPath) -> YamlPath {
    let mut p = goto.clone();
    p.0.pop();
    p.at("if")
}

fn use_vars(c: &mut Checker, source: usize, t: &Text, avail: &Vars, state: &str, in_flow: bool) {
    let vars = match t.kind {
        TextKind::Template => match Template::parse(t.src) {
            Ok(tpl) => tpl.variables(),
            Err(_) => return,
        },
        TextKind::Condition | TextKind::Valid => match Expr::parse(t.src) {
            Ok(e) => e.variables(),
            Err(_) => return,
        },
    };
    for v in vars {
        if t.kind == TextKind::Valid && v == "value" {
            continue;
        }
        if BUILTIN_VARIABLES.iter().any(|(b, _)| *b == v) {
            continue;
        }
        if !c.known_vars.contains(&v) {
            let mut known: Vec<&str> = c.known_vars.iter().map(String::as_str).collect();
            if t.kind == TextKind::Valid {
                known.push("value");
            }
            let hint = suggest(&v, &known);
            let hint = if hint.is_empty() && t.kind != TextKind::Valid && v == "value" {
                " (`value` only exists in a question's `valid`)".to_string()
            } else {
                hint
            };
            c.err(source, &t.at, format!("unknown variable `{v}`{hint}"));
        } else if !avail.contains(&v) {
            let flow_note = if in_flow {
                " (a flow starts with only its `uses`)"
            } else {
                ""
            };
            c.err(
                source,
                &t.at,
                format!("`{v}` is used before it can be set: not every way into `{state}` sets it{flow_note}"),
            );
        }
    }
}
