//! The shape of a script as a graph: its units (the main states and each
//! flow), each state's action and possible outcomes, and every edge from a
//! state to the next. The validator, the graph export and the interpreter
//! all read scripts through these so they agree on what a script means.

use indexmap::IndexMap;

use crate::format::{
    Ask, Lookup, Script, SlotType, State, Step, Target, Ticket, Transfer, OUTCOME_ERROR,
    OUTCOME_FAILED, OUTCOME_NOT_FOUND,
};
use crate::load::Loaded;
use crate::source::YamlPath;

/// A set of states with its own start: the script's main states, or a flow.
#[derive(Debug, Clone)]
pub struct Unit<'a> {
    /// `None` for the main states.
    pub flow: Option<&'a str>,
    /// Which source file it is written in.
    pub source: usize,
    /// Path of the unit in its file (root, or `flows.<name>`).
    pub base: YamlPath,
    pub start: &'a str,
    pub states: &'a IndexMap<String, State>,
    /// Variables the unit may read on entry (a flow's `uses`).
    pub uses: &'a [String],
}

impl Unit<'_> {
    pub fn state_path(&self, name: &str) -> YamlPath {
        self.base.at("states").at(name)
    }

    /// `menu`, or `verify/ask_pin` for a flow's state.
    pub fn qualified(&self, state: &str) -> String {
        match self.flow {
            Some(f) => format!("{f}/{state}"),
            None => state.to_string(),
        }
    }
}

/// The main states first, then each flow.
pub fn units(loaded: &Loaded) -> Vec<Unit<'_>> {
    let script = &loaded.script;
    let mut out = vec![Unit {
        flow: None,
        source: 0,
        base: YamlPath::root(),
        start: &script.start,
        states: &script.states,
        uses: &[],
    }];
    for (name, flow) in &script.flows {
        out.push(Unit {
            flow: Some(name),
            source: loaded.flow_source.get(name).copied().unwrap_or(0),
            base: YamlPath::root().at("flows").at(name),
            start: &flow.start,
            states: &flow.states,
            uses: &flow.uses,
        });
    }
    out
}

/// What a state does (the first action when, invalidly, it has several).
#[derive(Debug, Clone, Copy)]
pub enum Action<'a> {
    None,
    Ask(&'a Ask),
    Lookup(&'a Lookup),
    Ticket(&'a Ticket),
    Transfer(&'a Transfer),
    Hangup(&'a str),
    Flow(&'a str),
    Return(&'a str),
}

impl Action<'_> {
    pub fn of(state: &State) -> Action<'_> {
        if let Some(a) = &state.ask {
            Action::Ask(a)
        } else if let Some(l) = &state.lookup {
            Action::Lookup(l)
        } else if let Some(t) = &state.ticket {
            Action::Ticket(t)
        } else if let Some(t) = &state.transfer {
            Action::Transfer(t)
        } else if let Some(h) = &state.hangup {
            Action::Hangup(h)
        } else if let Some(f) = &state.flow {
            Action::Flow(f)
        } else if let Some(r) = &state.return_ {
            Action::Return(r)
        } else {
            Action::None
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Action::None => "no action",
            Action::Ask(_) => "ask",
            Action::Lookup(_) => "lookup",
            Action::Ticket(_) => "ticket",
            Action::Transfer(_) => "transfer",
            Action::Hangup(_) => "hangup",
            Action::Flow(_) => "flow",
            Action::Return(_) => "return",
        }
    }

    /// Does the state wait for the engine or the caller before moving on?
    pub fn waits(&self) -> bool {
        !matches!(self, Action::None | Action::Flow(_) | Action::Return(_))
    }

    /// Does the state end the call or the flow (no `next`)?
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            Action::Hangup(_) | Action::Transfer(_) | Action::Return(_)
        )
    }
}

/// The slot type an ask fills, if it is a slot question.
pub fn slot_type(ask: &Ask) -> Option<SlotType> {
    ask.slot
        .as_ref()
        .map(|_| ask.kind.unwrap_or(SlotType::Text))
}

/// The outcomes `on` can react to in this state.
pub fn outcomes(script: &Script, state: &State) -> Vec<String> {
    match Action::of(state) {
        Action::Ask(ask) => match slot_type(ask) {
            None => ask.intents.clone(),
            Some(SlotType::YesNo) => vec!["yes".into(), "no".into()],
            Some(SlotType::Enum) => ask.values.keys().cloned().collect(),
            Some(_) => Vec::new(),
        },
        Action::Lookup(_) => vec![OUTCOME_NOT_FOUND.into(), OUTCOME_ERROR.into()],
        Action::Ticket(_) => vec![OUTCOME_ERROR.into()],
        Action::Transfer(_) => vec![OUTCOME_FAILED.into()],
        Action::Flow(f) => script
            .flows
            .get(f)
            .map(|flow| flow_returns(&flow.states))
            .unwrap_or_default(),
        Action::None | Action::Hangup(_) | Action::Return(_) => Vec::new(),
    }
}

/// Every value a flow's states `return`, in order, once each.
pub fn flow_returns(states: &IndexMap<String, State>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in states.values() {
        if let Some(r) = &s.return_ {
            if !out.contains(r) {
                out.push(r.clone());
            }
        }
    }
    out
}

/// Why an edge is taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EdgeKind {
    /// `next`: the action succeeded / no `on` entry matched.
    Next,
    /// `on: {outcome: …}`.
    On(String),
    /// A step of the state's own no-input handler.
    NoInput,
    /// A step of the state's own no-match handler.
    NoMatch,
    /// A global handler or a `defaults` no-input/no-match step: from any question.
    Global(String),
}

/// One possible move.
#[derive(Debug, Clone)]
pub struct Edge<'a> {
    /// `None` for global edges (from any question in any unit).
    pub from: Option<&'a str>,
    /// A state name in the unit, or `repeat`.
    pub to: &'a str,
    pub kind: EdgeKind,
    /// The branch condition, if any.
    pub cond: Option<&'a str>,
    /// Where the target is written.
    pub at: YamlPath,
    /// Which source that path is in.
    pub source: usize,
}

/// Every edge of a unit. For the main unit this includes the global edges
/// (global handlers and `defaults` escalation steps).
pub fn edges<'a>(script: &'a Script, unit: &Unit<'a>) -> Vec<Edge<'a>> {
    let mut out = Vec::new();
    for (name, state) in unit.states {
        let base = unit.state_path(name);
        for (outcome, target) in &state.on {
            push_target(
                &mut out,
                Some(name),
                target,
                EdgeKind::On(outcome.clone()),
                base.at("on").at(outcome),
                unit.source,
            );
        }
        if let Some(next) = &state.next {
            push_target(
                &mut out,
                Some(name),
                next,
                EdgeKind::Next,
                base.at("next"),
                unit.source,
            );
        }
        if let Some(ask) = &state.ask {
            let ask_path = base.at("ask");
            for (key, steps, kind) in [
                ("no_input", &ask.no_input, EdgeKind::NoInput),
                ("no_match", &ask.no_match, EdgeKind::NoMatch),
            ] {
                for (i, step) in steps.iter().flatten().enumerate() {
                    if let Some(goto) = &step.goto {
                        push_target(
                            &mut out,
                            Some(name),
                            goto,
                            kind.clone(),
                            ask_path.at(key).at(i).at("goto"),
                            unit.source,
                        );
                    }
                }
            }
        }
    }
    if unit.flow.is_none() {
        out.extend(global_edges(script));
    }
    out
}

/// Edges that can be taken from any question.
pub fn global_edges(script: &Script) -> Vec<Edge<'_>> {
    let mut out = Vec::new();
    let g = YamlPath::root().at("global");
    for (intent, target) in &script.global.intents {
        push_target(
            &mut out,
            None,
            target,
            EdgeKind::Global(intent.clone()),
            g.at("intents").at(intent),
            0,
        );
    }
    for (key, target) in &script.global.dtmf {
        push_target(
            &mut out,
            None,
            target,
            EdgeKind::Global(format!("key {key}")),
            g.at("dtmf").at(key),
            0,
        );
    }
    let d = YamlPath::root().at("defaults");
    for (key, steps) in [
        ("no_input", &script.defaults.no_input),
        ("no_match", &script.defaults.no_match),
    ] {
        for (i, step) in steps.iter().flatten().enumerate() {
            if let Some(goto) = &step.goto {
                push_target(
                    &mut out,
                    None,
                    goto,
                    EdgeKind::Global(key.replace('_', "-")),
                    d.at(key).at(i).at("goto"),
                    0,
                );
            }
        }
    }
    out
}

fn push_target<'a>(
    out: &mut Vec<Edge<'a>>,
    from: Option<&'a str>,
    target: &'a Target,
    kind: EdgeKind,
    at: YamlPath,
    source: usize,
) {
    match target {
        Target::State(s) => out.push(Edge {
            from,
            to: s,
            kind,
            cond: None,
            at,
            source,
        }),
        Target::Branches(branches) => {
            for (i, b) in branches.iter().enumerate() {
                out.push(Edge {
                    from,
                    to: &b.goto,
                    kind: kind.clone(),
                    cond: b.when.as_deref(),
                    at: at.at(i).at("goto"),
                    source,
                });
            }
        }
    }
}

/// The no-input (or no-match) steps that apply to an ask: its own, else the
/// script's defaults. The flag says whether they are the defaults.
pub fn escalation<'a>(
    script: &'a Script,
    ask: &'a Ask,
    no_input: bool,
) -> Option<(&'a [Step], bool)> {
    let (own, default) = if no_input {
        (&ask.no_input, &script.defaults.no_input)
    } else {
        (&ask.no_match, &script.defaults.no_match)
    };
    match (own, default) {
        (Some(s), _) => Some((s.as_slice(), false)),
        (None, Some(s)) => Some((s.as_slice(), true)),
        (None, None) => None,
    }
}
