//! Asking the caller something: the gather (speech and/or keys), what is
//! expected (intents or a typed slot), and the no-input / no-match handlers
//! that escalate by count, VoiceXML style.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::duration::Span;
use super::prompt::{Phrases, Say};
use super::target::Target;

/// ```yaml
/// ask:
///   prompt: { en: "What is your order number?", zh: "请说出您的订单号。" }
///   slot: order_id
///   type: order_id
///   dtmf: { max_digits: 10, finish_key: "#" }
///   no_input:
///     - say: { en: "Sorry, I didn't hear anything.", zh: "抱歉，我没有听到。" }
///       reprompt: true
///     - goto: agent
/// ```
#[derive(Debug, Clone, PartialEq, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Ask {
    /// The question. Said again by `reprompt: true` steps and `repeat`.
    pub prompt: Say,
    /// How the caller may answer. Default `both`.
    #[serde(default)]
    pub input: Option<InputMode>,
    /// Intents this question expects (an intent question). The state's `on`
    /// maps them to states; others count as no-match.
    #[serde(default)]
    pub intents: Vec<String>,
    /// The variable this question fills (a slot question). Needs `type`.
    #[serde(default)]
    pub slot: Option<String>,
    /// What kind of value the slot takes.
    #[serde(default, rename = "type")]
    pub kind: Option<SlotType>,
    /// For `type: enum`: each value with the phrases that mean it.
    #[serde(default)]
    pub values: IndexMap<String, Phrases>,
    /// Keypad shortcuts: key → intent (intent question) or value (enum,
    /// yes_no). `max_digits` then defaults to 1.
    #[serde(default)]
    pub keys: IndexMap<String, String>,
    /// Keypad entry options.
    #[serde(default)]
    pub dtmf: Option<Dtmf>,
    /// Smallest accepted number (`type: number`).
    #[serde(default)]
    pub min: Option<f64>,
    /// Largest accepted number (`type: number`).
    #[serde(default)]
    pub max: Option<f64>,
    /// Fewest characters/digits accepted (digits, order_id, text).
    #[serde(default)]
    pub min_len: Option<usize>,
    /// Most characters/digits accepted (digits, order_id, text).
    #[serde(default)]
    pub max_len: Option<usize>,
    /// A condition the value must meet, over `value`, e.g.
    /// `value >= 1 and value <= 31`. A value that fails it is a no-match.
    #[serde(default)]
    pub valid: Option<String>,
    /// Silence this long is a no-input. Defaults to `defaults.no_input_timeout`.
    #[serde(default)]
    pub timeout: Option<Span>,
    /// May the caller interrupt the prompt (`true`, `false` or
    /// `{min_speech: 300ms}`)? Defaults to `defaults.barge_in`.
    #[serde(default)]
    pub barge_in: Option<super::BargeIn>,
    /// Recognitions below this confidence are a no-match. Defaults to
    /// `defaults.confidence`.
    #[serde(default)]
    pub confidence: Option<f64>,
    /// Speech recogniser for this question (e.g. `grammar` for yes/no).
    /// Defaults to `defaults.asr`.
    #[serde(default)]
    pub asr: Option<String>,
    /// Whether the script's `global` handlers apply here. Default true.
    #[serde(default)]
    pub global: Option<bool>,
    /// Failed attempts (no-input and no-match together) before the last step
    /// of the handler runs. Defaults to `defaults.max_retries`.
    #[serde(default)]
    pub max_retries: Option<u32>,
    /// What to do on silence: step 1 on the first, step 2 on the second…;
    /// the last step repeats and must leave (`goto`). Defaults to
    /// `defaults.no_input`.
    #[serde(default)]
    pub no_input: Option<Vec<Step>>,
    /// What to do when the answer is not understood or not valid; like
    /// `no_input`. Defaults to `defaults.no_match`.
    #[serde(default)]
    pub no_match: Option<Vec<Step>>,
}

/// Speech, keys, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum InputMode {
    Speech,
    Dtmf,
    Both,
}

impl InputMode {
    pub fn speech(self) -> bool {
        matches!(self, InputMode::Speech | InputMode::Both)
    }
    pub fn dtmf(self) -> bool {
        matches!(self, InputMode::Dtmf | InputMode::Both)
    }
}

/// The types a slot can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SlotType {
    /// A string of digits ("one two three", "123", keys), e.g. a PIN.
    Digits,
    /// A number ("twenty three", "二十三", "23").
    Number,
    /// Yes or no; the outcome is `yes` or `no`. Keys 1 = yes, 2 = no.
    YesNo,
    /// One of `values`; the outcome is the value's name.
    Enum,
    /// An order number: 4 to 12 digits unless `min_len`/`max_len` say otherwise.
    OrderId,
    /// A date ("tomorrow", "Monday", "2026-12-01", "明天"), stored as YYYY-MM-DD.
    Date,
    /// Whatever the caller said (e.g. a complaint).
    Text,
}

impl SlotType {
    pub fn name(self) -> &'static str {
        match self {
            SlotType::Digits => "digits",
            SlotType::Number => "number",
            SlotType::YesNo => "yes_no",
            SlotType::Enum => "enum",
            SlotType::OrderId => "order_id",
            SlotType::Date => "date",
            SlotType::Text => "text",
        }
    }
}

/// Keypad entry options (jambonz `gather` style).
#[derive(Debug, Clone, PartialEq, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Dtmf {
    /// Entry ends after this many digits.
    #[serde(default)]
    pub max_digits: Option<u32>,
    /// Entry ends when this key is pressed (it is not part of the value).
    #[serde(default)]
    pub finish_key: Option<char>,
    /// Entry ends after this long without a key.
    #[serde(default)]
    pub inter_digit_timeout: Option<Span>,
}

/// One step of a no-input or no-match handler.
///
/// `say` alone speaks and listens again; `reprompt: true` then asks the
/// question again; `goto` leaves the question.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// What to say first.
    #[serde(default)]
    pub say: Option<Say>,
    /// Ask the question again after `say`.
    #[serde(default)]
    pub reprompt: bool,
    /// Leave the question for this state.
    #[serde(default)]
    pub goto: Option<Target>,
}
