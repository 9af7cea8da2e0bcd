//! What goes into and comes out of the interpreter: the events the engine
//! reports and the commands it must carry out, plus the post-call record.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::date::Date;
use crate::format::{Lang, Priority, SlotType};
use crate::value::Value;

/// Something that happened on the call.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The call was answered. Always the first event.
    CallStarted(CallStart),
    /// The caller said something (after ASR and intent classification).
    Heard(Heard),
    /// The caller keyed digits, collected as the last `Listen` asked
    /// (a trailing finish key may be included or not).
    Digits(String),
    /// The `Listen` timeout passed without input.
    NoInput,
    /// The lookup asked for finished. A null or empty result means "not found".
    LookupDone { result: Value },
    /// The lookup failed or timed out.
    LookupFailed { reason: String },
    /// The ticket was created.
    TicketCreated { id: String },
    /// The ticket could not be created.
    TicketFailed { reason: String },
    /// The transfer was refused or nobody answered; the caller is still here.
    TransferFailed { reason: String },
    /// The call is over: the caller hung up, or a transfer completed.
    Hangup,
}

/// What the engine knows when the call starts.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CallStart {
    /// The caller's number (the callee's on an outbound call).
    pub caller: String,
    /// The CRM profile, when the caller is known.
    pub customer: Option<Value>,
    /// A language to use, if the engine knows better (e.g. the dialled number).
    pub language: Option<Lang>,
    /// Today's date in the contact centre's time zone, for date slots.
    pub today: Option<Date>,
}

/// One recognised utterance.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Heard {
    pub text: String,
    /// The intent classifier's best label, if any.
    pub intent: Option<String>,
    /// The classifier's confidence in `intent`, 0..1.
    pub confidence: f32,
    /// Entities found in the text (e.g. `order_id`), by name.
    pub entities: BTreeMap<String, String>,
}

/// Something the engine must do. Commands from one event are carried out
/// in order: prompts queue up, and a `Listen` starts once the prompts
/// before it have played (or were barged into).
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Speak text with TTS.
    Say {
        text: String,
        language: Lang,
        voice: Option<String>,
        /// May the caller interrupt it?
        barge_in: bool,
        /// Voiced speech needed before it stops (`None`: the engine's).
        min_speech: Option<Duration>,
    },
    /// Play a WAV file; `text` labels it for logs.
    Play {
        file: PathBuf,
        text: String,
        barge_in: bool,
        min_speech: Option<Duration>,
    },
    /// Wait for the caller; answer with `Heard`, `Digits` or `NoInput`.
    Listen(Listen),
    /// Query the CRM/ERP; answer with `LookupDone` or `LookupFailed`.
    Lookup(LookupRequest),
    /// Create a ticket; answer with `TicketCreated` or `TicketFailed`.
    CreateTicket(TicketRequest),
    /// A trigger fired: a follow-up task for a human. Nothing to answer and
    /// the conversation goes on; the same task is in the record's
    /// `follow_ups`, from which the engine writes it with the call's
    /// record (through the CRM outbox).
    FollowUp(FollowUp),
    /// Hand the call over; answer with `TransferFailed`, or `Hangup` once it left.
    Transfer {
        to: String,
        context: BTreeMap<String, String>,
    },
    /// End the call (after the prompts before it have played).
    Hangup { disposition: String },
    /// What the call produced, for the CRM. Always the last command.
    Record(CallRecord),
}

/// How to listen.
#[derive(Debug, Clone, PartialEq)]
pub struct Listen {
    pub speech: bool,
    pub dtmf: bool,
    pub language: Lang,
    /// The recogniser the script asks for (`None`: the engine's default).
    pub asr: Option<String>,
    /// No input for this long → `NoInput`.
    pub timeout: Duration,
    /// Keypad entry ends after this many digits…
    pub max_digits: u32,
    /// …or at this key…
    pub finish_key: Option<char>,
    /// …or after this long without a key.
    pub inter_digit_timeout: Duration,
    /// Intents that mean something here (expected and global).
    pub intents: Vec<String>,
    /// The slot type being filled, if any.
    pub slot: Option<SlotType>,
    /// Phrases worth recognising (for grammar-based recognisers).
    pub hints: Vec<String>,
    /// The same phrases with what each means: `(intent, phrase)` for
    /// intents, `(value, phrase)` for enum slots, `(yes|no, word)` for
    /// yes/no; a grammar recogniser's match then needs no classifier.
    pub phrases: Vec<(String, String)>,
}

/// A CRM/ERP query.
#[derive(Debug, Clone, PartialEq)]
pub struct LookupRequest {
    /// One of `format::KNOWN_LOOKUPS`.
    pub name: String,
    pub args: BTreeMap<String, String>,
    pub timeout: Duration,
}

/// A ticket to create.
#[derive(Debug, Clone, PartialEq)]
pub struct TicketRequest {
    pub queue: String,
    pub priority: Priority,
    pub subject: String,
    pub body: String,
    pub customer_id: Option<String>,
    pub caller: String,
}

/// A follow-up task a trigger asked for.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FollowUp {
    /// The trigger's name in the script.
    pub trigger: String,
    pub subject: String,
    pub body: String,
    /// The state the call was in when it fired (`flow/state` inside a flow).
    pub state: String,
}

/// Who spoke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Speaker {
    Bot,
    Caller,
    /// Something that happened (a lookup, a failed attempt…).
    System,
}

/// One line of the transcript.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Turn {
    pub speaker: Speaker,
    pub text: String,
    /// The state it happened in (`flow/state` inside a flow).
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub intent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f32>,
}

/// How the call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EndedBy {
    Bot,
    Caller,
    Transfer,
}

/// What a call produced: the post-call record for the CRM.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallRecord {
    pub script: String,
    pub caller: String,
    pub customer_id: Option<String>,
    pub language: Lang,
    pub ended_by: EndedBy,
    /// The script's `hangup` disposition; `transferred`, `caller_hangup`
    /// or `error` otherwise.
    pub disposition: String,
    /// Slots filled and variables set, by name.
    pub facts: BTreeMap<String, Value>,
    /// Intents understood, in order.
    pub intents: Vec<String>,
    pub tickets: Vec<String>,
    /// The lead score (`score` variable) when the call ended, if set to a number.
    pub score: Option<f64>,
    /// Follow-up tasks the script's triggers asked for, at most one per trigger.
    pub follow_ups: Vec<FollowUp>,
    pub transferred_to: Option<String>,
    /// States entered, in order.
    pub path: Vec<String>,
    pub transcript: Vec<Turn>,
}
