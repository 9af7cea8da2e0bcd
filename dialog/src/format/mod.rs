//! The dialog script format: the Rust types a script's YAML deserializes
//! into, and from which the JSON Schema is generated. Field doc comments are
//! the schema's descriptions, so they are written for script authors.
//!
//! A script is a set of named states. Each state may `say` something, `set`
//! variables, then take at most one action (`ask`, `lookup`, `ticket`,
//! `transfer`, `hangup`, `flow`, `return`). The action's outcome picks where
//! to go through `on` (outcome → target); anything else goes to `next`.

mod action;
mod ask;
mod barge_in;
mod duration;
mod prompt;
mod target;
mod trigger;

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::Deserialize;

pub use action::{Lookup, Priority, PriorityBy, PrioritySpec, Ticket, Transfer, KNOWN_LOOKUPS};
pub use ask::{Ask, Dtmf, InputMode, SlotType, Step};
pub use barge_in::BargeIn;
pub use duration::Span;
pub use prompt::{ByLang, Lang, Phrases, Prompt, PromptSpec, Say};
pub use target::{Branch, Target, REPEAT};
pub use trigger::Trigger;

use crate::value::Value;

/// A voxbridge dialog script.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "voxbridge dialog script")]
pub struct Script {
    /// The script's name (used in call records).
    pub name: String,
    /// What the script is for.
    #[serde(default)]
    pub description: Option<String>,
    /// Languages every prompt must be written in. Default: `defaults.language` only.
    #[serde(default)]
    pub languages: Vec<Lang>,
    /// Script-wide settings.
    #[serde(default)]
    pub defaults: Defaults,
    /// Handlers that apply at every question (e.g. "agent" → transfer).
    #[serde(default)]
    pub global: Global,
    /// The intents this script knows, with example phrases per language. The
    /// text simulator and conversation tests match caller text against them
    /// when no intent model is loaded; when present, every intent the script
    /// uses must be listed here.
    #[serde(default)]
    pub intents: IndexMap<String, Phrases>,
    /// In-call triggers, by name: words or intents that, the first time the
    /// caller says them, ask for a follow-up task for a human without
    /// changing the conversation.
    #[serde(default)]
    pub triggers: IndexMap<String, Trigger>,
    /// Files with reusable `flows` (paths relative to this script).
    #[serde(default)]
    pub imports: Vec<String>,
    /// Sub-flows: reusable groups of states, entered from a state with
    /// `flow: name`, left with `return: outcome`.
    #[serde(default)]
    pub flows: IndexMap<String, Flow>,
    /// The first state.
    pub start: String,
    /// The states, by name.
    pub states: IndexMap<String, State>,
}

/// A file of reusable flows, named in a script's `imports`.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Library {
    /// What the library is for.
    #[serde(default)]
    pub description: Option<String>,
    /// Intents (with examples) the flows use.
    #[serde(default)]
    pub intents: IndexMap<String, Phrases>,
    /// The flows.
    pub flows: IndexMap<String, Flow>,
}

/// Script-wide settings; every one can be left out.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    /// Language a call starts in unless the call or the customer says
    /// otherwise. Default `en`.
    #[serde(default)]
    pub language: Option<Lang>,
    /// Text-to-speech voice, for all languages or per language.
    #[serde(default)]
    pub voice: Option<ByLang<String>>,
    /// May callers interrupt prompts, and what it takes: `true` (the
    /// default), `false`, or `{min_speech: 300ms}`.
    #[serde(default)]
    pub barge_in: Option<BargeIn>,
    /// Silence this long after a question is a no-input. Default `5s`.
    #[serde(default)]
    pub no_input_timeout: Option<Span>,
    /// Failed attempts per question before its handler's last step. Default 3.
    #[serde(default)]
    pub max_retries: Option<u32>,
    /// Speech recogniser, e.g. `whisper` or `grammar`. Default: the engine's.
    #[serde(default)]
    pub asr: Option<String>,
    /// Recognitions below this confidence are a no-match. Default 0.5.
    #[serde(default)]
    pub confidence: Option<f64>,
    /// Lookup timeout. Default `3s`.
    #[serde(default)]
    pub lookup_timeout: Option<Span>,
    /// Keypad defaults: `finish_key` (default `#`), `inter_digit_timeout`
    /// (default `3s`), `max_digits` (default 20).
    #[serde(default)]
    pub dtmf: Option<Dtmf>,
    /// No-input handler for questions without their own.
    #[serde(default)]
    pub no_input: Option<Vec<Step>>,
    /// No-match handler for questions without their own.
    #[serde(default)]
    pub no_match: Option<Vec<Step>>,
}

/// Handlers active at every question (unless it says `global: false`). A
/// question's own `on` entries win over these.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Global {
    /// Intent → target, e.g. `agent: transfer_agent`, `repeat: repeat`.
    #[serde(default)]
    pub intents: IndexMap<String, Target>,
    /// Key → target, e.g. `"0": transfer_agent`, `"*": repeat`.
    #[serde(default)]
    pub dtmf: IndexMap<String, Target>,
}

/// A reusable group of states.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Flow {
    /// What the flow does.
    #[serde(default)]
    pub description: Option<String>,
    /// Variables the flow reads that the calling script must have set.
    #[serde(default)]
    pub uses: Vec<String>,
    /// The flow's first state.
    pub start: String,
    /// The flow's states; their names are local to the flow.
    pub states: IndexMap<String, State>,
}

/// One state of the conversation.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct State {
    /// A note for readers and the graph.
    #[serde(default)]
    pub note: Option<String>,
    /// Variables set on entry: literals, or templates (`"{{ order.id }}"`
    /// keeps the value's type when the whole string is one `{{ }}`).
    #[serde(default)]
    pub set: IndexMap<String, Value>,
    /// Said on entry, before the action.
    #[serde(default)]
    pub say: Option<Say>,
    /// Ask the caller; outcomes are the intents (intent question), the value
    /// (`yes_no`, `enum`) or none (other slots: `next`).
    #[serde(default)]
    pub ask: Option<Ask>,
    /// Look something up in the CRM/ERP; outcomes `not_found` (falls back to
    /// `error` when not handled) and `error`; success goes to `next`.
    #[serde(default)]
    pub lookup: Option<Lookup>,
    /// Create a ticket; outcome `error`; success goes to `next`.
    #[serde(default)]
    pub ticket: Option<Ticket>,
    /// Transfer the call; outcome `failed`. A transfer that works ends the script.
    #[serde(default)]
    pub transfer: Option<Transfer>,
    /// Hang up, recording this disposition (e.g. `resolved`).
    #[serde(default)]
    pub hangup: Option<String>,
    /// Run a sub-flow; its `return` value is the outcome.
    #[serde(default)]
    pub flow: Option<String>,
    /// Leave the sub-flow this state is in, with this outcome.
    #[serde(default, rename = "return")]
    pub return_: Option<String>,
    /// Outcome → target.
    #[serde(default)]
    pub on: IndexMap<String, Target>,
    /// Where to go after the action when `on` does not say.
    #[serde(default)]
    pub next: Option<Target>,
}

impl State {
    /// The actions present (a valid state has at most one).
    pub fn actions(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.ask.is_some() {
            out.push("ask");
        }
        if self.lookup.is_some() {
            out.push("lookup");
        }
        if self.ticket.is_some() {
            out.push("ticket");
        }
        if self.transfer.is_some() {
            out.push("transfer");
        }
        if self.hangup.is_some() {
            out.push("hangup");
        }
        if self.flow.is_some() {
            out.push("flow");
        }
        if self.return_.is_some() {
            out.push("return");
        }
        out
    }
}

/// Names every script can read without setting them.
pub const BUILTIN_VARIABLES: &[(&str, &str)] = &[
    ("customer", "the caller's CRM profile (null when unknown)"),
    ("caller", "the caller's number"),
    (
        "today",
        "the call's date, YYYY-MM-DD (when the engine gives it)",
    ),
    ("language", "the call's language: en or zh"),
    (
        "last",
        "the last thing understood: last.text, last.intent, last.confidence, last.entities",
    ),
];

/// The variable that holds a sales lead's intent score (0–100): set it
/// with `set: { score: 60 }` or a template; the call record and a
/// campaign's result carry its last value.
pub const SCORE_VARIABLE: &str = "score";

/// Outcome names lookups, tickets and transfers produce.
pub const OUTCOME_ERROR: &str = "error";
pub const OUTCOME_NOT_FOUND: &str = "not_found";
pub const OUTCOME_FAILED: &str = "failed";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_script_parses() {
        let s: Script = serde_saphyr::from_str(
            "name: t\nstart: a\nstates:\n  a:\n    say: hi\n    hangup: done\n",
        )
        .unwrap();
        assert_eq!(s.start, "a");
        assert_eq!(s.states["a"].actions(), vec!["hangup"]);
    }

    #[test]
    fn yes_and_no_keys_stay_strings() {
        let s: State = serde_saphyr::from_str(
            "ask:\n  prompt: ok?\n  slot: ok\n  type: yes_no\non:\n  yes: a\n  no: b\n  on: c\n",
        )
        .unwrap();
        assert_eq!(s.on.keys().collect::<Vec<_>>(), vec!["yes", "no", "on"]);
    }

    #[test]
    fn unknown_keys_are_errors() {
        let e = serde_saphyr::from_str::<State>("sai: hello\n").unwrap_err();
        assert!(e.to_string().contains("sai"), "{e}");
    }
}
