//! The sans-IO interpreter: one per call. Feed it [`Event`]s, carry out the
//! [`Command`]s it returns. It holds no clock and does no I/O: timeouts are
//! the engine's (it reports `NoInput`), lookups are the engine's (it reports
//! `LookupDone`). So a whole call runs in a test in microseconds.
//!
//! ```
//! use std::sync::Arc;
//! use voxbridge_dialog::interp::{Command, Event, Interpreter, CallStart, Program};
//!
//! let program = Program::parse("demo.yaml", "
//! name: demo
//! start: hello
//! states:
//!   hello:
//!     say: Hello!
//!     hangup: greeted
//! ").unwrap();
//! let mut call = Interpreter::new(Arc::new(program));
//! let commands = call.handle(Event::CallStarted(CallStart::default()));
//! assert!(matches!(&commands[0], Command::Say { text, .. } if text == "Hello!"));
//! assert!(matches!(&commands[1], Command::Hangup { disposition } if disposition == "greeted"));
//! assert!(call.is_finished());
//! ```

mod program;
mod prompts;
mod protocol;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

pub use program::Program;
pub use prompts::StaticPrompt;
pub use protocol::{
    CallRecord, CallStart, Command, EndedBy, Event, FollowUp, Heard, Listen, LookupRequest,
    Speaker, TicketRequest, Turn,
};

use crate::analysis::{escalation, slot_type, Action};
use crate::expr::{Expr, With};
use crate::extract;
use crate::format::{
    Ask, BargeIn, InputMode, Lang, Priority, PrioritySpec, Say, SlotType, State, Target,
    OUTCOME_ERROR, OUTCOME_FAILED, OUTCOME_NOT_FOUND, REPEAT, SCORE_VARIABLE,
};
use crate::template::Template;
use crate::value::Value;

/// States entered for one event at most; more means a loop (the validator
/// rejects loops it can see, this catches the rest).
const MAX_STEPS: usize = 200;
/// Nested flows at most.
const MAX_FLOW_DEPTH: usize = 16;

/// Where the call is: a state of the main script or of a flow.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Pos {
    flow: Option<String>,
    state: String,
}

impl Pos {
    fn qualified(&self) -> String {
        match &self.flow {
            Some(f) => format!("{f}/{}", self.state),
            None => self.state.clone(),
        }
    }
}

/// What the interpreter waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    Start,
    Input,
    Lookup,
    Ticket,
    Transfer,
    Done,
}

/// Where to go next.
#[derive(Debug)]
enum Dest {
    State(Option<String>, String),
    Repeat,
    Stuck(String),
}

/// One call running one script.
pub struct Interpreter {
    program: Arc<Program>,
    vars: BTreeMap<String, Value>,
    /// Names that go into the record's facts, in the order first set.
    facts: Vec<String>,
    lang: Lang,
    pos: Pos,
    /// Callers of the flows we are in.
    frames: Vec<Pos>,
    wait: Wait,
    no_input: u32,
    no_match: u32,
    transcript: Vec<Turn>,
    path: Vec<String>,
    intents: Vec<String>,
    tickets: Vec<String>,
    follow_ups: Vec<FollowUp>,
    caller: String,
    customer_id: Option<String>,
    pending_transfer: Option<String>,
    record: Option<CallRecord>,
}

impl Interpreter {
    pub fn new(program: Arc<Program>) -> Interpreter {
        let lang = program.default_language();
        Interpreter {
            program,
            vars: BTreeMap::new(),
            facts: Vec::new(),
            lang,
            pos: Pos::default(),
            frames: Vec::new(),
            wait: Wait::Start,
            no_input: 0,
            no_match: 0,
            transcript: Vec::new(),
            path: Vec::new(),
            intents: Vec::new(),
            tickets: Vec::new(),
            follow_ups: Vec::new(),
            caller: String::new(),
            customer_id: None,
            pending_transfer: None,
            record: None,
        }
    }

    /// Feed one event; returns the commands to carry out, in order. Events
    /// that make no sense now (a digit while a lookup runs, anything after
    /// the end) are ignored.
    pub fn handle(&mut self, event: Event) -> Vec<Command> {
        let mut out = Vec::new();
        match (self.wait, event) {
            (Wait::Done, _) => {}
            (Wait::Transfer, Event::Hangup) => {
                let to = self.pending_transfer.take();
                self.note(format!("transferred to {}", to.as_deref().unwrap_or("?")));
                self.finish("transferred", EndedBy::Transfer, to, false, &mut out);
            }
            (_, Event::Hangup) => {
                self.note("caller hung up".to_string());
                self.finish("caller_hangup", EndedBy::Caller, None, false, &mut out);
            }
            (Wait::Start, Event::CallStarted(start)) => self.start(start, &mut out),
            (Wait::Input, Event::Heard(h)) => self.heard(h, &mut out),
            (Wait::Input, Event::Digits(d)) => self.digits(&d, &mut out),
            (Wait::Input, Event::NoInput) => self.failed(true, &mut out),
            (Wait::Lookup, Event::LookupDone { result }) => self.lookup_done(result, &mut out),
            (Wait::Lookup, Event::LookupFailed { reason }) => {
                self.note(format!("lookup failed: {reason}"));
                let d = self.outcome_at(&[OUTCOME_ERROR]);
                self.run(d, &mut out);
            }
            (Wait::Ticket, Event::TicketCreated { id }) => {
                self.note(format!("ticket {id} created"));
                self.tickets.push(id.clone());
                let program = self.program.clone();
                if let Some(into) = self
                    .current_state(&program)
                    .and_then(|s| s.ticket.as_ref())
                    .and_then(|t| t.into.clone())
                {
                    self.assign(&into, Value::String(id), true);
                }
                let d = self.next_at();
                self.run(d, &mut out);
            }
            (Wait::Ticket, Event::TicketFailed { reason }) => {
                self.note(format!("ticket failed: {reason}"));
                let d = self.outcome_at(&[OUTCOME_ERROR]);
                self.run(d, &mut out);
            }
            (Wait::Transfer, Event::TransferFailed { reason }) => {
                self.note(format!("transfer failed: {reason}"));
                self.pending_transfer = None;
                let d = self.outcome_at(&[OUTCOME_FAILED]);
                self.run(d, &mut out);
            }
            _ => {}
        }
        out
    }

    /// Has the call ended (a `Record` was produced)?
    pub fn is_finished(&self) -> bool {
        self.wait == Wait::Done
    }

    /// The record, once the call ended.
    pub fn record(&self) -> Option<&CallRecord> {
        self.record.as_ref()
    }

    pub fn transcript(&self) -> &[Turn] {
        &self.transcript
    }

    /// The current state (`flow/state` inside a flow).
    pub fn state(&self) -> String {
        self.pos.qualified()
    }

    pub fn language(&self) -> Lang {
        self.lang
    }

    /// The call's variables (slots, `set`, lookup results, built-ins).
    pub fn vars(&self) -> &BTreeMap<String, Value> {
        &self.vars
    }

    pub fn program(&self) -> &Arc<Program> {
        &self.program
    }

    // ---- start and end ----

    fn start(&mut self, start: CallStart, out: &mut Vec<Command>) {
        let langs = self.program.languages();
        let customer = start.customer.unwrap_or(Value::Null);
        self.customer_id = match customer.field("id") {
            Value::Null => None,
            v => Some(v.to_string()),
        };
        let from_customer = customer.field("language").as_str().and_then(Lang::from_tag);
        self.lang = start
            .language
            .filter(|l| langs.contains(l))
            .or(from_customer.filter(|l| langs.contains(l)))
            .unwrap_or_else(|| self.program.default_language());
        self.caller = start.caller.clone();
        self.vars
            .insert("caller".into(), Value::String(start.caller));
        self.vars.insert("customer".into(), customer);
        self.vars.insert(
            "today".into(),
            start
                .today
                .map(|d| Value::String(d.to_string()))
                .unwrap_or(Value::Null),
        );
        self.vars
            .insert("language".into(), Value::from(self.lang.code()));
        self.vars.insert("last".into(), Value::Null);
        self.wait = Wait::Input;
        let start = self.program.script().start.clone();
        self.run(Dest::State(None, start), out);
    }

    fn finish(
        &mut self,
        disposition: &str,
        ended_by: EndedBy,
        transferred_to: Option<String>,
        hangup: bool,
        out: &mut Vec<Command>,
    ) {
        if hangup {
            out.push(Command::Hangup {
                disposition: disposition.to_string(),
            });
        }
        let facts = self
            .facts
            .iter()
            .map(|k| (k.clone(), self.vars.get(k).cloned().unwrap_or(Value::Null)))
            .collect();
        let record = CallRecord {
            script: self.program.script().name.clone(),
            caller: self.caller.clone(),
            customer_id: self.customer_id.clone(),
            language: self.lang,
            ended_by,
            disposition: disposition.to_string(),
            facts,
            intents: self.intents.clone(),
            tickets: self.tickets.clone(),
            score: score_of(self.vars.get(SCORE_VARIABLE)),
            follow_ups: self.follow_ups.clone(),
            transferred_to,
            path: self.path.clone(),
            transcript: self.transcript.clone(),
        };
        self.record = Some(record.clone());
        out.push(Command::Record(record));
        self.wait = Wait::Done;
    }

    /// Something is wrong with the script at run time: say nothing more,
    /// hang up, and say why in the transcript.
    fn stuck(&mut self, why: String, out: &mut Vec<Command>) {
        self.note(format!("script error: {why}"));
        self.finish("error", EndedBy::Bot, None, true, out);
    }

    // ---- moving between states ----

    fn run(&mut self, mut dest: Dest, out: &mut Vec<Command>) {
        for _ in 0..MAX_STEPS {
            dest = match dest {
                Dest::Repeat => {
                    self.reprompt(out);
                    return;
                }
                Dest::Stuck(why) => {
                    self.stuck(why, out);
                    return;
                }
                Dest::State(flow, name) => match self.enter(flow, name, out) {
                    Some(d) => d,
                    None => return,
                },
            };
        }
        self.stuck(
            "too many states in a row without waiting for the caller".into(),
            out,
        );
    }

    /// Enter a state; returns where to go next for states that do not wait.
    fn enter(
        &mut self,
        flow: Option<String>,
        name: String,
        out: &mut Vec<Command>,
    ) -> Option<Dest> {
        let program = self.program.clone();
        let Some(state) = program.state(flow.as_deref(), &name) else {
            return Some(Dest::Stuck(format!("no state `{name}`")));
        };
        if flow.is_none() {
            // Back in the main script (e.g. a global handler): leave any flows.
            self.frames.clear();
        }
        self.pos = Pos { flow, state: name };
        self.path.push(self.pos.qualified());
        self.no_input = 0;
        self.no_match = 0;
        for (k, v) in &state.set {
            let value = match v {
                Value::String(s) => template(s).value(&self.vars),
                other => other.clone(),
            };
            self.assign(k, value, true);
        }
        if let Some(say) = &state.say {
            self.say(say, None, out);
        }
        match Action::of(state) {
            Action::None => Some(self.next_of(state)),
            Action::Ask(ask) => {
                self.wait = Wait::Input;
                self.ask(ask, out);
                None
            }
            Action::Lookup(l) => {
                if let Some(f) = &l.filler {
                    self.say(f, None, out);
                }
                let args = l
                    .args
                    .iter()
                    .map(|(k, v)| (k.clone(), template(v).render(&self.vars)))
                    .collect();
                self.note(format!("lookup {}", l.name));
                out.push(Command::Lookup(LookupRequest {
                    name: l.name.clone(),
                    args,
                    timeout: l.timeout.map(|t| t.0).unwrap_or(program.lookup_timeout()),
                }));
                self.wait = Wait::Lookup;
                None
            }
            Action::Ticket(t) => {
                let priority = match &t.priority {
                    None => Priority::Normal,
                    Some(PrioritySpec::Fixed(p)) => *p,
                    Some(PrioritySpec::By(by)) => {
                        let key = Expr::parse(&by.by)
                            .map(|e| e.eval(&self.vars).to_string())
                            .unwrap_or_default();
                        by.map
                            .get(&key)
                            .copied()
                            .or(by.default)
                            .unwrap_or(Priority::Normal)
                    }
                };
                self.note(format!("ticket for {} ({})", t.queue, priority.name()));
                out.push(Command::CreateTicket(TicketRequest {
                    queue: t.queue.clone(),
                    priority,
                    subject: template(&t.subject).render(&self.vars),
                    body: t
                        .body
                        .as_deref()
                        .map(|b| template(b).render(&self.vars))
                        .unwrap_or_default(),
                    customer_id: self.customer_id.clone(),
                    caller: self.caller.clone(),
                }));
                self.wait = Wait::Ticket;
                None
            }
            Action::Transfer(t) => {
                let to = template(&t.to).render(&self.vars);
                let context = t
                    .context
                    .iter()
                    .map(|(k, v)| (k.clone(), template(v).render(&self.vars)))
                    .collect();
                self.note(format!("transfer to {to}"));
                self.pending_transfer = Some(to.clone());
                out.push(Command::Transfer { to, context });
                self.wait = Wait::Transfer;
                None
            }
            Action::Hangup(d) => {
                self.finish(d, EndedBy::Bot, None, true, out);
                None
            }
            Action::Flow(f) => {
                if self.frames.len() >= MAX_FLOW_DEPTH {
                    return Some(Dest::Stuck(format!(
                        "flows nested deeper than {MAX_FLOW_DEPTH}"
                    )));
                }
                let Some(start) = program.flow_start(f) else {
                    return Some(Dest::Stuck(format!("no flow `{f}`")));
                };
                self.frames.push(self.pos.clone());
                Some(Dest::State(Some(f.to_string()), start.to_string()))
            }
            Action::Return(value) => {
                let Some(caller) = self.frames.pop() else {
                    return Some(Dest::Stuck("`return` outside a flow".into()));
                };
                self.pos = caller;
                let Some(caller_state) = self.current_state(&program) else {
                    return Some(Dest::Stuck("the flow's caller is gone".into()));
                };
                Some(self.outcome(caller_state, Some(value)))
            }
        }
    }

    fn current_state<'p>(&self, program: &'p Program) -> Option<&'p State> {
        program.state(self.pos.flow.as_deref(), &self.pos.state)
    }

    /// Resolve a target written in the current unit (`flow`: None for the
    /// main script and for global handlers).
    fn follow(&self, target: &Target, flow: Option<&str>) -> Dest {
        let name = match target {
            Target::State(s) => Some(s.as_str()),
            Target::Branches(branches) => branches
                .iter()
                .find(|b| b.when.as_deref().is_none_or(|c| self.holds(c)))
                .map(|b| b.goto.as_str()),
        };
        match name {
            None => Dest::Stuck("no branch matched".into()),
            Some(REPEAT) => Dest::Repeat,
            Some(n) => Dest::State(flow.map(String::from), n.to_string()),
        }
    }

    fn holds(&self, cond: &str) -> bool {
        Expr::parse(cond).is_ok_and(|e| e.holds(&self.vars))
    }

    fn next_of(&self, state: &State) -> Dest {
        match &state.next {
            Some(t) => self.follow(t, self.pos.flow.as_deref()),
            None => Dest::Stuck(format!("state `{}` has no `next`", self.pos.state)),
        }
    }

    /// The target for an outcome: `on[outcome]`, else `next`.
    fn outcome(&self, state: &State, outcome: Option<&str>) -> Dest {
        if let Some(t) = outcome.and_then(|o| state.on.get(o)) {
            return self.follow(t, self.pos.flow.as_deref());
        }
        self.next_of(state)
    }

    /// The first of these outcomes the current state handles; no `next`
    /// fallback (these are failures, `next` is for success).
    fn outcome_at(&self, outcomes: &[&str]) -> Dest {
        let program = self.program.clone();
        let Some(state) = self.current_state(&program) else {
            return Dest::Stuck("no current state".into());
        };
        for o in outcomes {
            if let Some(t) = state.on.get(*o) {
                return self.follow(t, self.pos.flow.as_deref());
            }
        }
        Dest::Stuck(format!("nothing handles `{}`", outcomes.join("`/`")))
    }

    fn next_at(&self) -> Dest {
        let program = self.program.clone();
        match self.current_state(&program) {
            Some(s) => self.next_of(s),
            None => Dest::Stuck("no current state".into()),
        }
    }

    fn lookup_done(&mut self, result: Value, out: &mut Vec<Command>) {
        let program = self.program.clone();
        let Some(lookup) = self.current_state(&program).and_then(|s| s.lookup.as_ref()) else {
            return;
        };
        if result.is_empty_result() {
            self.note(format!("{}: not found", lookup.name));
            self.assign(&lookup.into, Value::Null, false);
            let d = self.outcome_at(&[OUTCOME_NOT_FOUND, OUTCOME_ERROR]);
            self.run(d, out);
        } else {
            self.assign(&lookup.into, result, false);
            let d = self.next_at();
            self.run(d, out);
        }
    }

    fn assign(&mut self, name: &str, value: Value, fact: bool) {
        if name == "language" {
            if let Some(l) = value.as_str().and_then(Lang::parse) {
                if self.program.languages().contains(&l) {
                    self.lang = l;
                }
            }
            self.vars
                .insert("language".into(), Value::from(self.lang.code()));
            return;
        }
        if fact && !self.facts.iter().any(|f| f == name) {
            self.facts.push(name.to_string());
        }
        self.vars.insert(name.to_string(), value);
    }

    // ---- speaking ----

    fn say(&mut self, say: &Say, barge_in: Option<BargeIn>, out: &mut Vec<Command>) {
        let program = self.program.clone();
        for prompt in say.prompts() {
            // Each level fills in what the one inside it left out.
            let script = program.barge_in();
            let question = barge_in.map_or(script, |b| b.or(script));
            let rule = prompt.barge_in.map_or(question, |b| b.or(question));
            let (barge_in, min_speech) = (rule.allowed, rule.min_speech);
            // A prompt missing the call's language (only possible in an
            // unvalidated script) falls back to any text it has.
            let text = prompt
                .text_for(self.lang)
                .or_else(|| prompt.texts().first().map(|(_, t)| *t))
                .map(|t| template(t).render(&self.vars))
                .unwrap_or_default();
            if let Some(file) = prompt.wav.as_ref().and_then(|w| w.get(self.lang)) {
                let path = match program.base_dir() {
                    Some(dir) => dir.join(file),
                    None => PathBuf::from(file),
                };
                let label = if text.is_empty() {
                    format!("[{file}]")
                } else {
                    text
                };
                self.turn(Speaker::Bot, label.clone(), None, None);
                out.push(Command::Play {
                    file: path,
                    text: label,
                    barge_in,
                    min_speech,
                });
                continue;
            }
            if text.trim().is_empty() {
                continue;
            }
            self.turn(Speaker::Bot, text.clone(), None, None);
            out.push(Command::Say {
                text,
                language: self.lang,
                voice: program.voice(self.lang),
                barge_in,
                min_speech,
            });
        }
    }

    fn turn(
        &mut self,
        speaker: Speaker,
        text: String,
        intent: Option<String>,
        confidence: Option<f32>,
    ) {
        self.transcript.push(Turn {
            speaker,
            text,
            state: self.pos.qualified(),
            intent,
            confidence,
        });
    }

    fn note(&mut self, text: String) {
        self.turn(Speaker::System, text, None, None);
    }

    // ---- asking ----

    fn ask(&mut self, ask: &Ask, out: &mut Vec<Command>) {
        self.say(&ask.prompt, ask.barge_in, out);
        out.push(Command::Listen(self.listen(ask)));
    }

    fn reprompt(&mut self, out: &mut Vec<Command>) {
        let program = self.program.clone();
        match self.current_state(&program).and_then(|s| s.ask.as_ref()) {
            Some(ask) => {
                self.wait = Wait::Input;
                self.ask(ask, out);
            }
            None => self.stuck("`repeat` outside a question".into(), out),
        }
    }

    fn globals_on(ask: &Ask) -> bool {
        ask.global != Some(false)
    }

    fn listen(&self, ask: &Ask) -> Listen {
        let program = &self.program;
        let script = program.script();
        let kind = slot_type(ask);
        let input = ask.input.unwrap_or(InputMode::Both);
        let globals = Self::globals_on(ask);
        let menu = !ask.keys.is_empty() || kind == Some(SlotType::YesNo);
        let key_len = ask
            .keys
            .keys()
            .chain(script.global.dtmf.keys().filter(|_| globals))
            .map(|k| k.chars().count() as u32)
            .max()
            .unwrap_or(1);
        let dtmf = ask.dtmf.as_ref();
        let max_digits = dtmf.and_then(|d| d.max_digits).unwrap_or(if menu {
            key_len
        } else {
            program.max_digits()
        });
        let finish_key = match dtmf.and_then(|d| d.finish_key) {
            Some(k) => Some(k),
            None if menu => None,
            None => Some(program.finish_key()),
        };
        let mut intents = ask.intents.clone();
        if globals {
            intents.extend(script.global.intents.keys().cloned());
        }
        let mut phrases: Vec<(String, String)> = Vec::new();
        match kind {
            None => {
                for i in &intents {
                    if let Some(p) = script.intents.get(i).and_then(|p| p.get(self.lang)) {
                        phrases.extend(p.iter().map(|p| (i.clone(), p.clone())));
                    }
                }
            }
            Some(SlotType::Enum) => {
                for (name, said) in &ask.values {
                    phrases.push((name.clone(), name.replace('_', " ")));
                    if let Some(p) = said.get(self.lang) {
                        phrases.extend(p.iter().map(|p| (name.clone(), p.clone())));
                    }
                }
            }
            Some(SlotType::YesNo) => {
                let words: &[(&str, &str)] = match self.lang {
                    Lang::En => &[("yes", "yes"), ("no", "no")],
                    Lang::Zh => &[("yes", "是"), ("no", "不是"), ("yes", "好"), ("no", "不用")],
                };
                phrases.extend(words.iter().map(|(t, w)| (t.to_string(), w.to_string())));
            }
            _ => {}
        }
        let hints = phrases.iter().map(|(_, p)| p.clone()).collect();
        Listen {
            speech: input.speech(),
            dtmf: input.dtmf(),
            language: self.lang,
            asr: ask.asr.clone().or_else(|| script.defaults.asr.clone()),
            timeout: ask
                .timeout
                .map(|t| t.0)
                .unwrap_or(program.no_input_timeout()),
            max_digits,
            finish_key,
            inter_digit_timeout: dtmf
                .and_then(|d| d.inter_digit_timeout)
                .map(|t| t.0)
                .unwrap_or(program.inter_digit_timeout()),
            intents,
            slot: kind,
            hints,
            phrases,
        }
    }

    fn heard(&mut self, h: Heard, out: &mut Vec<Command>) {
        let program = self.program.clone();
        let Some(state) = self.current_state(&program) else {
            return;
        };
        let Some(ask) = &state.ask else {
            return;
        };
        let threshold = ask.confidence.unwrap_or(program.confidence());
        let intent = h
            .intent
            .clone()
            .filter(|i| !i.is_empty() && f64::from(h.confidence) >= threshold);
        self.turn(
            Speaker::Caller,
            h.text.clone(),
            h.intent.clone(),
            Some(h.confidence),
        );
        self.set_last(&h.text, intent.as_deref(), Some(h.confidence), &h.entities);
        if let Some(i) = &intent {
            self.intents.push(i.clone());
        }
        self.triggers(&h.text, intent.as_deref(), out);
        let local = |i: &str| ask.intents.iter().any(|x| x == i) || state.on.contains_key(i);
        let global = intent
            .as_deref()
            .filter(|i| Self::globals_on(ask) && !local(i))
            .and_then(|i| program.script().global.intents.get(i))
            .map(|t| self.follow(t, None));
        match slot_type(ask) {
            None => {
                if let Some(i) = intent.as_deref().filter(|i| local(i)) {
                    let d = self.outcome(state, Some(i));
                    return self.run(d, out);
                }
                match global {
                    Some(d) => self.run(d, out),
                    None => self.failed(false, out),
                }
            }
            Some(kind) => {
                // A confident global intent wins over the slot: "please stop
                // calling me" holds a "please" that reads as a yes, and free
                // text would swallow "agent please".
                if let Some(d) = global {
                    return self.run(d, out);
                }
                match self.extract(ask, kind, &h, intent.as_deref()) {
                    Some(v) => self.fill(state, ask, kind, v, out),
                    None => self.failed(false, out),
                }
            }
        }
    }

    /// Fire the triggers this utterance matches that have not fired yet
    /// on this call: one task per trigger and call however often the
    /// caller repeats the word. Runs before the answer is acted on, so the
    /// task is asked for even when the answer ends the call.
    fn triggers(&mut self, text: &str, intent: Option<&str>, out: &mut Vec<Command>) {
        let program = self.program.clone();
        for (name, trigger) in &program.script().triggers {
            if self.follow_ups.iter().any(|f| &f.trigger == name)
                || !trigger.fires(self.lang, text, intent)
            {
                continue;
            }
            let subject = template(&trigger.task).render(&self.vars);
            let body = match &trigger.body {
                Some(b) => template(b).render(&self.vars),
                None => format!("The caller said: \"{text}\""),
            };
            let task = FollowUp {
                trigger: name.clone(),
                subject,
                body,
                state: self.pos.qualified(),
            };
            self.note(format!("trigger {name}: task \"{}\"", task.subject));
            self.follow_ups.push(task.clone());
            out.push(Command::FollowUp(task));
        }
    }

    fn set_last(
        &mut self,
        text: &str,
        intent: Option<&str>,
        confidence: Option<f32>,
        entities: &BTreeMap<String, String>,
    ) {
        let last = Value::map([
            ("text", Value::from(text)),
            ("intent", intent.map(Value::from).unwrap_or(Value::Null)),
            (
                "confidence",
                confidence
                    .map(|c| Value::Number(f64::from(c)))
                    .unwrap_or(Value::Null),
            ),
            (
                "entities",
                Value::Map(
                    entities
                        .iter()
                        .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
                        .collect(),
                ),
            ),
        ]);
        self.vars.insert("last".into(), last);
    }

    /// The slot value in what was heard: an entity named after the slot or
    /// its type first, else the text.
    fn extract(&self, ask: &Ask, kind: SlotType, h: &Heard, intent: Option<&str>) -> Option<Value> {
        let from_entity = ask
            .slot
            .as_ref()
            .and_then(|s| h.entities.get(s))
            .or_else(|| h.entities.get(kind.name()));
        let text = from_entity.map(String::as_str).unwrap_or(&h.text);
        self.parse_value(ask, kind, text, intent)
    }

    fn parse_value(
        &self,
        ask: &Ask,
        kind: SlotType,
        text: &str,
        intent: Option<&str>,
    ) -> Option<Value> {
        match kind {
            SlotType::Digits | SlotType::OrderId => extract::digit_string(text).map(Value::String),
            SlotType::Number => extract::number(text).map(Value::Number),
            SlotType::YesNo => extract::yes_no(text, intent).map(Value::Bool),
            SlotType::Enum => extract::enum_value(text, &ask.values, self.lang).map(Value::String),
            SlotType::Date => {
                let today = self
                    .vars
                    .get("today")
                    .and_then(Value::as_str)
                    .and_then(crate::date::Date::parse);
                extract::date(text, today).map(|d| Value::String(d.to_string()))
            }
            SlotType::Text => {
                let t = text.trim();
                (!t.is_empty()).then(|| Value::from(t))
            }
        }
    }

    /// Does the value pass the question's checks?
    fn valid(&self, ask: &Ask, kind: SlotType, value: &Value) -> bool {
        if let Some(n) = value.as_number().filter(|_| kind == SlotType::Number) {
            if ask.min.is_some_and(|m| n < m) || ask.max.is_some_and(|m| n > m) {
                return false;
            }
        }
        if matches!(kind, SlotType::Digits | SlotType::OrderId | SlotType::Text) {
            let len = value.to_string().chars().count();
            let (min, max) = match kind {
                SlotType::OrderId => (ask.min_len.unwrap_or(4), ask.max_len.unwrap_or(12)),
                _ => (ask.min_len.unwrap_or(0), ask.max_len.unwrap_or(usize::MAX)),
            };
            if len < min || len > max {
                return false;
            }
        }
        match &ask.valid {
            None => true,
            Some(cond) => Expr::parse(cond).is_ok_and(|e| {
                e.holds(&With {
                    base: &self.vars,
                    name: "value",
                    value,
                })
            }),
        }
    }

    fn fill(
        &mut self,
        state: &State,
        ask: &Ask,
        kind: SlotType,
        value: Value,
        out: &mut Vec<Command>,
    ) {
        if !self.valid(ask, kind, &value) {
            self.note(format!("`{value}` is not a valid answer"));
            return self.failed(false, out);
        }
        let outcome = match (&value, kind) {
            (Value::Bool(true), SlotType::YesNo) => Some("yes".to_string()),
            (Value::Bool(false), SlotType::YesNo) => Some("no".to_string()),
            (Value::String(s), SlotType::Enum) => Some(s.clone()),
            _ => None,
        };
        if let Some(slot) = &ask.slot {
            self.assign(slot, value, true);
        }
        let d = self.outcome(state, outcome.as_deref());
        self.run(d, out);
    }

    fn digits(&mut self, digits: &str, out: &mut Vec<Command>) {
        let program = self.program.clone();
        let Some(state) = self.current_state(&program) else {
            return;
        };
        let Some(ask) = &state.ask else {
            return;
        };
        self.turn(Speaker::Caller, format!("[keys] {digits}"), None, None);
        let listen = self.listen(ask);
        let keys = match listen.finish_key {
            Some(f) => digits.strip_suffix(f).unwrap_or(digits),
            None => digits,
        };
        let keys = keys.trim();
        if keys.is_empty() {
            return self.failed(false, out);
        }
        let kind = slot_type(ask);
        let globals = Self::globals_on(ask);
        if let Some(to) = ask.keys.get(keys) {
            self.set_last(
                &format!("[keys] {keys}"),
                kind.is_none().then_some(to.as_str()),
                None,
                &BTreeMap::new(),
            );
            match kind {
                None => {
                    self.intents.push(to.clone());
                    if ask.intents.contains(to) || state.on.contains_key(to) {
                        let d = self.outcome(state, Some(to));
                        return self.run(d, out);
                    }
                    if let Some(t) = program.script().global.intents.get(to).filter(|_| globals) {
                        let d = self.follow(t, None);
                        return self.run(d, out);
                    }
                    return self.failed(false, out);
                }
                Some(SlotType::YesNo) => {
                    return self.fill(state, ask, SlotType::YesNo, Value::Bool(to == "yes"), out)
                }
                Some(k) => return self.fill(state, ask, k, Value::from(to.as_str()), out),
            }
        }
        self.set_last(&format!("[keys] {keys}"), None, None, &BTreeMap::new());
        // Keys are data in digit questions; elsewhere the global keys apply.
        let data = matches!(
            kind,
            Some(SlotType::Digits | SlotType::OrderId | SlotType::Number)
        );
        if globals && !data {
            if let Some(t) = program.script().global.dtmf.get(keys) {
                let d = self.follow(t, None);
                return self.run(d, out);
            }
        }
        let value = match kind {
            Some(SlotType::Digits | SlotType::OrderId)
                if keys.chars().all(|c| c.is_ascii_digit()) =>
            {
                Some(Value::from(keys))
            }
            Some(SlotType::Number) => keys.parse::<f64>().ok().map(Value::Number),
            Some(SlotType::YesNo) => match keys {
                "1" => Some(Value::Bool(true)),
                "2" => Some(Value::Bool(false)),
                _ => None,
            },
            _ => None,
        };
        match (value, kind) {
            (Some(v), Some(k)) => self.fill(state, ask, k, v, out),
            _ => self.failed(false, out),
        }
    }

    /// A no-input (`no_input`) or a no-match: run the handler step for
    /// this count, or its last step once `max_retries` is reached.
    fn failed(&mut self, no_input: bool, out: &mut Vec<Command>) {
        let program = self.program.clone();
        let Some(ask) = self.current_state(&program).and_then(|s| s.ask.as_ref()) else {
            return;
        };
        let count = if no_input {
            self.no_input += 1;
            self.no_input
        } else {
            self.no_match += 1;
            self.no_match
        };
        let total = self.no_input + self.no_match;
        let what = if no_input { "no input" } else { "no match" };
        self.note(format!("{what} ({count})"));
        let max = ask.max_retries.unwrap_or(program.max_retries());
        let Some((steps, from_defaults)) = escalation(program.script(), ask, no_input) else {
            if total >= max {
                let d = if no_input { "no_input" } else { "no_match" };
                return self.finish(d, EndedBy::Bot, None, true, out);
            }
            return self.ask(ask, out);
        };
        let idx = if total >= max {
            steps.len().saturating_sub(1)
        } else {
            (count as usize).clamp(1, steps.len().max(1)) - 1
        };
        let Some(step) = steps.get(idx) else {
            return self.ask(ask, out);
        };
        if let Some(say) = &step.say {
            self.say(say, ask.barge_in, out);
        }
        if let Some(goto) = &step.goto {
            let flow = if from_defaults {
                None
            } else {
                self.pos.flow.clone()
            };
            let d = self.follow(goto, flow.as_deref());
            return self.run(d, out);
        }
        if total >= max {
            let d = if no_input { "no_input" } else { "no_match" };
            return self.finish(d, EndedBy::Bot, None, true, out);
        }
        if step.reprompt {
            self.ask(ask, out);
        } else {
            out.push(Command::Listen(self.listen(ask)));
        }
    }
}

#[cfg(test)]
mod tests;

/// The lead score a `score` variable holds: a number, or text that reads
/// as one (a template renders to text); anything else is no score.
fn score_of(value: Option<&Value>) -> Option<f64> {
    match value? {
        Value::Number(n) if n.is_finite() => Some(*n),
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|n| n.is_finite()),
        _ => None,
    }
}

/// Parse a template; text that does not parse (only in an unvalidated
/// script) is spoken as written rather than stopping the call.
fn template(src: &str) -> Template {
    Template::parse(src).unwrap_or_else(|_| Template::literal(src))
}
