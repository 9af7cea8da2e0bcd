//! A call without a phone: drives an [`Interpreter`] the way the engine
//! would, answering its lookups from demo data, creating numbered tickets,
//! completing (or failing) transfers, and classifying typed text. Used by
//! the text simulator (`chat`) and the conversation tests.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::date::Date;
use crate::demo::DemoCrm;
use crate::format::Lang;
use crate::interp::{CallStart, Command, Event, Heard, Interpreter, Program};
use crate::nlu::{Classifier, ExampleMatcher};
use crate::value::Value;

/// What the caller does.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// Speech. Without an intent, the classifier labels it.
    Speech {
        text: String,
        intent: Option<String>,
        confidence: Option<f32>,
        entities: BTreeMap<String, String>,
    },
    Digits(String),
    Silence,
    Hangup,
}

impl Input {
    pub fn say(text: &str) -> Input {
        Input::Speech {
            text: text.to_string(),
            intent: None,
            confidence: None,
            entities: BTreeMap::new(),
        }
    }
}

/// Where a simulated call's customers and lookups come from: the demo data
/// ([`DemoCrm`]), or anything else that can answer (the embedded CRM).
pub trait Backend {
    /// A customer profile by id or phone number.
    fn customer(&self, id_or_phone: &str) -> Option<Value>;
    /// Answer a script lookup: `Ok(Null)` is "not found", `Err` a failure.
    fn lookup(&mut self, name: &str, args: &BTreeMap<String, String>) -> Result<Value, String>;
}

impl Backend for DemoCrm {
    fn customer(&self, id_or_phone: &str) -> Option<Value> {
        DemoCrm::customer(self, id_or_phone).cloned()
    }
    fn lookup(&mut self, name: &str, args: &BTreeMap<String, String>) -> Result<Value, String> {
        DemoCrm::lookup(self, name, args)
    }
}

/// What should go wrong, to test the unhappy paths.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Failures {
    /// Lookups (by name, or `*` for all) that fail.
    pub lookups: BTreeSet<String>,
    pub tickets: bool,
    pub transfers: bool,
}

/// One simulated call.
pub struct Simulator {
    call: Interpreter,
    backend: Option<Box<dyn Backend>>,
    classifier: Box<dyn Classifier>,
    failures: Failures,
    next_ticket: u32,
    /// What the simulator answered, in order, for display.
    answers: Vec<String>,
}

impl Simulator {
    /// A call on `program`; `classifier` defaults to the script's examples.
    /// Without a backend every lookup fails.
    pub fn new(
        program: Arc<Program>,
        backend: Option<Box<dyn Backend>>,
        classifier: Option<Box<dyn Classifier>>,
        failures: Failures,
    ) -> Simulator {
        let classifier =
            classifier.unwrap_or_else(|| Box::new(ExampleMatcher::from_script(program.script())));
        Simulator {
            call: Interpreter::new(program),
            backend,
            classifier,
            failures,
            next_ticket: 1001,
            answers: Vec::new(),
        }
    }

    pub fn call(&self) -> &Interpreter {
        &self.call
    }

    /// Start the call.
    pub fn start(
        &mut self,
        caller: &str,
        customer: Option<Value>,
        language: Option<Lang>,
        today: Option<Date>,
    ) -> Vec<Command> {
        self.feed(Event::CallStarted(CallStart {
            caller: caller.to_string(),
            customer,
            language,
            today,
        }))
    }

    /// The caller does something; returns every command that follows,
    /// including those after the lookups, tickets and transfers this
    /// simulator answered on the engine's behalf.
    pub fn input(&mut self, input: Input) -> Vec<Command> {
        let event = match input {
            Input::Speech {
                text,
                intent,
                confidence,
                entities,
            } => {
                let (intent, confidence) = match intent {
                    Some(i) => (Some(i), confidence.unwrap_or(1.0)),
                    None => match self.classifier.classify(&text, self.call.language()) {
                        Some((i, c)) => (Some(i), confidence.unwrap_or(c)),
                        None => (None, confidence.unwrap_or(0.0)),
                    },
                };
                Event::Heard(Heard {
                    text,
                    intent,
                    confidence,
                    entities,
                })
            }
            Input::Digits(d) => Event::Digits(d),
            Input::Silence => Event::NoInput,
            Input::Hangup => Event::Hangup,
        };
        self.feed(event)
    }

    fn feed(&mut self, event: Event) -> Vec<Command> {
        let mut all = Vec::new();
        let mut next = Some(event);
        // Each answer can lead to another request; a script cannot make
        // more than a few in a row, but never loop forever on a bad one.
        for _ in 0..64 {
            let Some(event) = next.take() else { break };
            let out = self.call.handle(event);
            next = out.last().and_then(|c| self.answer(c));
            if let Some(e) = &next {
                self.answers.push(describe_answer(e));
            }
            all.extend(out);
        }
        all
    }

    /// Descriptions of the answers given on the engine's behalf since the
    /// last call, one per lookup/ticket/transfer command, in order.
    pub fn take_answers(&mut self) -> Vec<String> {
        std::mem::take(&mut self.answers)
    }

    /// What the engine would report after carrying out `command`.
    fn answer(&mut self, command: &Command) -> Option<Event> {
        match command {
            Command::Lookup(l) => {
                let fail =
                    self.failures.lookups.contains(&l.name) || self.failures.lookups.contains("*");
                Some(match (&mut self.backend, fail) {
                    (_, true) => Event::LookupFailed {
                        reason: "simulated failure".into(),
                    },
                    (None, false) => Event::LookupFailed {
                        reason: "no CRM or demo data loaded".into(),
                    },
                    (Some(crm), false) => match crm.lookup(&l.name, &l.args) {
                        Ok(result) => Event::LookupDone { result },
                        Err(reason) => Event::LookupFailed { reason },
                    },
                })
            }
            Command::CreateTicket(_) if self.failures.tickets => Some(Event::TicketFailed {
                reason: "simulated failure".into(),
            }),
            Command::CreateTicket(_) => {
                let id = self.next_ticket.to_string();
                self.next_ticket += 1;
                Some(Event::TicketCreated { id })
            }
            Command::Transfer { .. } if self.failures.transfers => Some(Event::TransferFailed {
                reason: "simulated: nobody answered".into(),
            }),
            // A completed transfer: the call leaves us.
            Command::Transfer { .. } => Some(Event::Hangup),
            _ => None,
        }
    }
}

fn describe_answer(e: &Event) -> String {
    match e {
        Event::LookupDone { result } if result.is_empty_result() => "not found".into(),
        Event::LookupDone { result } => {
            let mut s = result.to_string();
            if s.chars().count() > 100 {
                s = s.chars().take(100).collect::<String>() + "…";
            }
            format!("found {s}")
        }
        Event::LookupFailed { reason } => format!("failed: {reason}"),
        Event::TicketCreated { id } => format!("created ticket {id}"),
        Event::TicketFailed { reason } => format!("failed: {reason}"),
        Event::TransferFailed { reason } => format!("failed: {reason}"),
        Event::Hangup => "connected; the call left the bot".into(),
        other => format!("{other:?}"),
    }
}
