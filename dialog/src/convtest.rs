//! Conversation tests: YAML files of scripted calls (who the caller is,
//! what they say or key, what the bot must say and do, how the call ends),
//! run against a script with the demo CRM answering lookups.
//!
//! ```yaml
//! script: ../customer-service.yaml
//! data: ../../dialog/demo-crm.yaml
//! today: 2026-11-21
//! tests:
//!   - name: order status by order number
//!     given: { customer: C1002 }
//!     steps:
//!       - bot: "Hello Bob"
//!       - caller: where is my order
//!       - caller: no
//!       - keys: "100234#"
//!       - expect: { lookup: order_status }
//!       - bot: "was shipped"
//!       - hangup
//!     end: { ended_by: caller, facts: { order_id: "100234" } }
//! ```

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use indexmap::IndexMap;
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use crate::date::Date;
use crate::demo::DemoCrm;
use crate::diag::Problem;
use crate::expr::equal;
use crate::format::{Lang, Priority};
use crate::interp::{Command, EndedBy, Program};
use crate::sim::{Failures, Input, Simulator};
use crate::value::Value;

/// A file of conversation tests.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "voxbridge conversation tests")]
pub struct TestFile {
    /// The script under test, relative to this file.
    pub script: String,
    /// Demo CRM data answering lookups, relative to this file.
    #[serde(default)]
    pub data: Option<String>,
    /// Language for every test unless its `given` says otherwise.
    #[serde(default)]
    pub language: Option<Lang>,
    /// Today's date (YYYY-MM-DD) for every test unless its `given` says otherwise.
    #[serde(default)]
    pub today: Option<String>,
    /// The conversations.
    pub tests: Vec<Conversation>,
}

/// One scripted call.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Conversation {
    pub name: String,
    #[serde(default)]
    pub given: Given,
    /// What happens, in order.
    pub steps: Vec<TestStep>,
    /// How the call must have ended (checked against the call record).
    #[serde(default)]
    pub end: Option<End>,
}

/// Who calls and what goes wrong.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Given {
    /// The caller's number. Default `+15550000000`.
    #[serde(default)]
    pub caller: Option<String>,
    /// A customer id or phone number from the demo data, or a profile
    /// written out as a map. Without it the caller is unknown.
    #[serde(default)]
    pub customer: Option<Value>,
    /// The call's language (else the customer's, else the script's).
    #[serde(default)]
    pub language: Option<Lang>,
    /// Today's date, YYYY-MM-DD.
    #[serde(default)]
    pub today: Option<String>,
    /// What fails.
    #[serde(default)]
    pub fail: Fail,
}

/// Simulated failures.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Fail {
    /// Lookups that fail, by name; `"*"` for all.
    #[serde(default)]
    pub lookups: Vec<String>,
    /// Ticket creation fails.
    #[serde(default)]
    pub ticket: bool,
    /// Transfers fail (nobody answers).
    #[serde(default)]
    pub transfer: bool,
}

/// One step: something the caller does, or something the bot must have
/// done since the caller last did something.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum TestStep {
    /// The caller speaks: text (the script's intent examples label it), or
    /// `{text, intent, confidence, entities}`.
    Caller(CallerLineSpec),
    /// The caller keys digits, e.g. `"100234#"`.
    Keys(String),
    /// The caller says nothing (no-input).
    Silence,
    /// The caller hangs up.
    Hangup,
    /// The bot's next prompt contains this text.
    Bot(String),
    /// The bot did this next.
    Expect(Expectation),
}

/// What the caller says.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CallerLine {
    pub text: String,
    /// The intent, as the intent model would label it.
    #[serde(default)]
    pub intent: Option<String>,
    /// The model's confidence. Default 1 with `intent`, else the match score.
    #[serde(default)]
    pub confidence: Option<f32>,
    /// Entities the model found.
    #[serde(default)]
    pub entities: std::collections::BTreeMap<String, String>,
}

impl<'de> Deserialize<'de> for CallerLineSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = CallerLineSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("what the caller says, or {text, intent, confidence, entities}")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<CallerLineSpec, E> {
                Ok(CallerLineSpec(CallerLine {
                    text: s.to_string(),
                    ..CallerLine::default()
                }))
            }
            fn visit_bool<E: de::Error>(self, b: bool) -> Result<CallerLineSpec, E> {
                self.visit_str(if b { "yes" } else { "no" })
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<CallerLineSpec, E> {
                self.visit_str(&n.to_string())
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<CallerLineSpec, A::Error> {
                CallerLine::deserialize(MapAccessDeserializer::new(map)).map(CallerLineSpec)
            }
        }
        d.deserialize_any(V)
    }
}

/// [`CallerLine`] as written: text or a map.
#[derive(Debug, Clone, PartialEq)]
pub struct CallerLineSpec(pub CallerLine);

impl JsonSchema for CallerLineSpec {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "CallerSays".into()
    }
    fn json_schema(g: &mut SchemaGenerator) -> Schema {
        let map = g.subschema_for::<CallerLine>();
        json_schema!({ "anyOf": [ { "type": "string" }, map ] })
    }
}

/// Something the bot must have done (since the caller's last input, after
/// anything matched by earlier steps).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    /// A lookup by this name.
    #[serde(default)]
    pub lookup: Option<String>,
    /// A transfer to this target.
    #[serde(default)]
    pub transfer: Option<String>,
    /// A ticket (queue and/or priority).
    #[serde(default)]
    pub ticket: Option<TicketExpect>,
    /// A hangup with this disposition.
    #[serde(default)]
    pub hangup: Option<String>,
    /// The call is now in this state (`flow/state` inside a flow).
    #[serde(default)]
    pub state: Option<String>,
    /// The call's variables have these values.
    #[serde(default)]
    pub vars: IndexMap<String, Value>,
    /// The call now speaks this language.
    #[serde(default)]
    pub language: Option<Lang>,
}

/// A ticket's expected fields.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketExpect {
    #[serde(default)]
    pub queue: Option<String>,
    #[serde(default)]
    pub priority: Option<Priority>,
}

/// How the call ended.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct End {
    /// The record's disposition.
    #[serde(default)]
    pub disposition: Option<String>,
    /// `bot`, `caller` or `transfer`.
    #[serde(default)]
    pub ended_by: Option<String>,
    #[serde(default)]
    pub transferred_to: Option<String>,
    /// Facts the record must hold (others may be there too).
    #[serde(default)]
    pub facts: IndexMap<String, Value>,
    /// How many tickets were created.
    #[serde(default)]
    pub tickets: Option<usize>,
    /// The follow-up tasks the triggers asked for: exactly these subjects, in order.
    #[serde(default)]
    pub tasks: Option<Vec<String>>,
    /// The lead score the record carries (`null`: none).
    #[serde(default)]
    pub score: Option<Value>,
    /// Whether the call must have ended. Default true.
    #[serde(default)]
    pub finished: Option<bool>,
}

/// The result of one conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestResult {
    pub file: String,
    pub name: String,
    /// `None`: passed.
    pub failure: Option<String>,
}

/// Run every conversation in a test file. `Err` when the file, its script
/// or its data cannot be loaded.
pub fn run_file(path: &Path) -> Result<Vec<TestResult>, Vec<Problem>> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![Problem {
            file: name.clone(),
            line: 0,
            column: 0,
            severity: crate::diag::Severity::Error,
            message: format!("cannot read: {e}"),
        }]
    })?;
    let file: TestFile = crate::load::parse_yaml(&name, &text).map_err(|p| vec![p])?;
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let program = Arc::new(Program::load(&dir.join(&file.script), None).map_err(|p| p.0)?);
    let crm = match &file.data {
        Some(d) => Some(DemoCrm::load(&dir.join(d)).map_err(|p| vec![p])?),
        None => None,
    };
    Ok(file
        .tests
        .iter()
        .map(|conv| TestResult {
            file: name.clone(),
            name: conv.name.clone(),
            failure: run_conversation(&program, crm.as_ref(), &file, conv).err(),
        })
        .collect())
}

/// The test files under `paths` (files as given, folders searched for `*.yaml`).
pub fn collect(paths: &[PathBuf]) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(p)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .collect();
            entries.sort();
            for e in entries {
                if e.is_dir() {
                    out.extend(collect(&[e])?);
                } else if e.extension().and_then(|x| x.to_str()) == Some("yaml") {
                    out.push(e);
                }
            }
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

fn parse_date(s: &Option<String>) -> Result<Option<Date>, String> {
    match s {
        None => Ok(None),
        Some(s) => Date::parse(s)
            .map(Some)
            .ok_or_else(|| format!("`{s}` is not a date (YYYY-MM-DD)")),
    }
}

fn run_conversation(
    program: &Arc<Program>,
    crm: Option<&DemoCrm>,
    file: &TestFile,
    conv: &Conversation,
) -> Result<(), String> {
    let g = &conv.given;
    let customer = match &g.customer {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) => Some(
            crm.and_then(|c| c.customer(id))
                .cloned()
                .ok_or_else(|| format!("no customer `{id}` in the demo data"))?,
        ),
        Some(v) => Some(v.clone()),
    };
    let caller = g
        .caller
        .clone()
        .or_else(|| {
            customer
                .as_ref()
                .map(|c| c.field("phone").to_string())
                .filter(|p| !p.is_empty())
        })
        .unwrap_or_else(|| "+15550000000".to_string());
    let today = parse_date(&g.today)?.or(parse_date(&file.today)?);
    let failures = Failures {
        lookups: g.fail.lookups.iter().cloned().collect(),
        tickets: g.fail.ticket,
        transfers: g.fail.transfer,
    };
    let backend = crm
        .cloned()
        .map(|c| Box::new(c) as Box<dyn crate::sim::Backend>);
    let mut sim = Simulator::new(program.clone(), backend, None, failures);
    let mut pending: Vec<Command> =
        sim.start(&caller, customer, g.language.or(file.language), today);
    let mut last_input = "the call started".to_string();
    for (i, step) in conv.steps.iter().enumerate() {
        let n = i + 1;
        let input = match step {
            TestStep::Caller(CallerLineSpec(line)) => {
                last_input = format!("the caller said {:?}", line.text);
                Some(Input::Speech {
                    text: line.text.clone(),
                    intent: line.intent.clone(),
                    confidence: line.confidence,
                    entities: line.entities.clone(),
                })
            }
            TestStep::Keys(k) => {
                last_input = format!("the caller keyed {k}");
                Some(Input::Digits(k.clone()))
            }
            TestStep::Silence => {
                last_input = "the caller said nothing".into();
                Some(Input::Silence)
            }
            TestStep::Hangup => {
                last_input = "the caller hung up".into();
                Some(Input::Hangup)
            }
            TestStep::Bot(_) | TestStep::Expect(_) => None,
        };
        if let Some(input) = input {
            if sim.call().is_finished() {
                return Err(format!(
                    "step {n}: the call already ended, after {last_input}"
                ));
            }
            pending = sim.input(input);
            continue;
        }
        match step {
            TestStep::Bot(want) => {
                let found = take_until(&mut pending, |c| {
                    prompt_text(c).is_some_and(|t| contains(t, want))
                });
                if !found {
                    return Err(format!(
                        "step {n}: expected the bot to say \"{want}\" after {last_input}; it said {}",
                        said_so_far(&sim, &last_input)
                    ));
                }
            }
            TestStep::Expect(e) => expect(&sim, &mut pending, e)
                .map_err(|m| format!("step {n}: {m} after {last_input}"))?,
            _ => {}
        }
    }
    if let Some(end) = &conv.end {
        check_end(&sim, end)?;
    }
    Ok(())
}

fn contains(text: &str, want: &str) -> bool {
    let norm = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    norm(text).contains(&norm(want))
}

fn prompt_text(c: &Command) -> Option<&str> {
    match c {
        Command::Say { text, .. } | Command::Play { text, .. } => Some(text),
        _ => None,
    }
}

/// Drop commands up to and including the first that matches.
fn take_until(pending: &mut Vec<Command>, f: impl Fn(&Command) -> bool) -> bool {
    match pending.iter().position(f) {
        Some(i) => {
            pending.drain(..=i);
            true
        }
        None => false,
    }
}

/// The bot's lines since the last input, for failure messages.
fn said_so_far(sim: &Simulator, _last: &str) -> String {
    let t = sim.call().transcript();
    let start = t
        .iter()
        .rposition(|t| t.speaker == crate::interp::Speaker::Caller)
        .map(|i| i + 1)
        .unwrap_or(0);
    let lines: Vec<String> = t[start..]
        .iter()
        .map(|t| match t.speaker {
            crate::interp::Speaker::Bot => format!("\"{}\"", t.text),
            _ => format!("[{}]", t.text),
        })
        .collect();
    if lines.is_empty() {
        "nothing".into()
    } else {
        lines.join(", ")
    }
}

fn expect(sim: &Simulator, pending: &mut Vec<Command>, e: &Expectation) -> Result<(), String> {
    let kinds = |p: &[Command]| {
        let v: Vec<String> = p.iter().map(describe).collect();
        if v.is_empty() {
            "nothing".to_string()
        } else {
            v.join(", ")
        }
    };
    if let Some(name) = &e.lookup {
        let what = kinds(pending);
        if !take_until(
            pending,
            |c| matches!(c, Command::Lookup(l) if &l.name == name),
        ) {
            return Err(format!("expected a `{name}` lookup; the bot did: {what}"));
        }
    }
    if let Some(t) = &e.ticket {
        let what = kinds(pending);
        let ok = |c: &Command| match c {
            Command::CreateTicket(r) => {
                t.queue.as_ref().is_none_or(|q| *q == r.queue)
                    && t.priority.is_none_or(|p| p == r.priority)
            }
            _ => false,
        };
        if !take_until(pending, ok) {
            return Err(format!("expected a ticket {t:?}; the bot did: {what}"));
        }
    }
    if let Some(to) = &e.transfer {
        let what = kinds(pending);
        if !take_until(
            pending,
            |c| matches!(c, Command::Transfer { to: t, .. } if t == to),
        ) {
            return Err(format!(
                "expected a transfer to `{to}`; the bot did: {what}"
            ));
        }
    }
    if let Some(d) = &e.hangup {
        let what = kinds(pending);
        if !take_until(
            pending,
            |c| matches!(c, Command::Hangup { disposition } if disposition == d),
        ) {
            return Err(format!("expected a hangup ({d}); the bot did: {what}"));
        }
    }
    if let Some(s) = &e.state {
        if sim.call().state() != *s {
            return Err(format!(
                "expected to be in `{s}`, but in `{}`",
                sim.call().state()
            ));
        }
    }
    if let Some(l) = e.language {
        if sim.call().language() != l {
            return Err(format!(
                "expected language {l}, got {}",
                sim.call().language()
            ));
        }
    }
    for (k, want) in &e.vars {
        let got = sim.call().vars().get(k).cloned().unwrap_or(Value::Null);
        if !equal(&got, want) {
            return Err(format!("expected `{k}` = {want:?}, got {got:?}"));
        }
    }
    Ok(())
}

fn describe(c: &Command) -> String {
    match c {
        Command::Say { text, .. } => format!("say \"{text}\""),
        Command::Play { file, .. } => format!("play {}", file.display()),
        Command::Listen(_) => "listen".into(),
        Command::Lookup(l) => format!("lookup {}", l.name),
        Command::CreateTicket(t) => format!("ticket {} ({})", t.queue, t.priority.name()),
        Command::FollowUp(f) => format!("follow-up \"{}\"", f.subject),
        Command::Transfer { to, .. } => format!("transfer {to}"),
        Command::Hangup { disposition } => format!("hangup {disposition}"),
        Command::Record(_) => "record".into(),
    }
}

fn check_end(sim: &Simulator, end: &End) -> Result<(), String> {
    let must_end = end.finished.unwrap_or(true);
    let record = match (sim.call().record(), must_end) {
        (None, true) => {
            return Err(format!(
                "expected the call to have ended; it is waiting in `{}`",
                sim.call().state()
            ))
        }
        (Some(_), false) => return Err("expected the call to still be going; it ended".into()),
        (None, false) => return Ok(()),
        (Some(r), true) => r,
    };
    let mut errors = Vec::new();
    if let Some(d) = &end.disposition {
        if &record.disposition != d {
            errors.push(format!(
                "disposition `{}`, expected `{d}`",
                record.disposition
            ));
        }
    }
    if let Some(by) = &end.ended_by {
        let got = match record.ended_by {
            EndedBy::Bot => "bot",
            EndedBy::Caller => "caller",
            EndedBy::Transfer => "transfer",
        };
        if got != by {
            errors.push(format!("ended by {got}, expected {by}"));
        }
    }
    if let Some(to) = &end.transferred_to {
        if record.transferred_to.as_deref() != Some(to) {
            errors.push(format!(
                "transferred to {:?}, expected `{to}`",
                record.transferred_to
            ));
        }
    }
    if let Some(n) = end.tickets {
        if record.tickets.len() != n {
            errors.push(format!("{} tickets, expected {n}", record.tickets.len()));
        }
    }
    if let Some(want) = &end.tasks {
        let got: Vec<&str> = record
            .follow_ups
            .iter()
            .map(|f| f.subject.as_str())
            .collect();
        if got != want.iter().map(String::as_str).collect::<Vec<_>>() {
            errors.push(format!("follow-up tasks {got:?}, expected {want:?}"));
        }
    }
    if let Some(want) = &end.score {
        let got = record.score.map(Value::Number).unwrap_or(Value::Null);
        if !equal(&got, want) {
            errors.push(format!("score {got}, expected {want}"));
        }
    }
    for (k, want) in &end.facts {
        match record.facts.get(k) {
            Some(got) if equal(got, want) => {}
            got => errors.push(format!("fact `{k}` = {got:?}, expected {want:?}")),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(format!("at the end: {}", errors.join("; ")))
    }
}
