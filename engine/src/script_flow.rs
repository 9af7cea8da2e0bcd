//! A YAML dialog script driving a live call: the dialog interpreter behind
//! the [`CallFlow`] trait.
//!
//! The interpreter hands out commands in batches (say this, then listen);
//! this adapter carries them out one at a time, waiting for the prompt to
//! end, for keys, for a lookup, and turns what happens into the
//! interpreter's events. It gathers DTMF itself (max digits, finish key,
//! timeouts) on the `AwaitInput` deadlines the call task keeps. No clock, no
//! I/O: tested by feeding events.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use voxbridge_dialog::date::Date;
use voxbridge_dialog::interp::{CallStart, Command, Event, Interpreter, Listen, Program};
use voxbridge_dialog::value::Value;

use crate::flow::{CallFlow, FlowAction, FlowEvent};

/// What the adapter waits for before the next command.
#[derive(Debug)]
enum Waiting {
    /// Nothing: take the next command.
    Nothing,
    /// A prompt to finish; keys stop it when `barge_in`.
    Playback { barge_in: bool },
    /// Keys for a `Listen`.
    Input(Gather),
    /// A lookup, ticket or transfer outcome.
    Outcome,
    /// The script ended the call.
    Done,
}

/// DTMF being gathered for one `Listen`.
#[derive(Debug)]
struct Gather {
    max_digits: usize,
    finish_key: Option<char>,
    inter_digit: Duration,
    digits: String,
}

impl Gather {
    fn from(listen: &Listen) -> Gather {
        Gather {
            max_digits: (listen.max_digits as usize).max(1),
            finish_key: listen.finish_key,
            inter_digit: listen.inter_digit_timeout,
            digits: String::new(),
        }
    }
}

/// A lookup or ticket started while its filler prompt plays.
#[derive(Debug)]
enum Early {
    /// Asked for; no answer yet.
    Pending,
    /// Answered before the filler ended; fed when it does.
    Arrived(Event),
}

/// The dialog interpreter as a call flow.
pub struct ScriptFlow {
    interpreter: Interpreter,
    start: Option<CallStart>,
    queue: VecDeque<Command>,
    waiting: Waiting,
    early: Option<Early>,
}

impl ScriptFlow {
    pub fn new(program: Arc<Program>, caller: String, customer: Option<Value>) -> ScriptFlow {
        ScriptFlow {
            interpreter: Interpreter::new(program),
            start: Some(CallStart {
                caller,
                customer,
                language: None,
                today: None,
            }),
            queue: VecDeque::new(),
            waiting: Waiting::Nothing,
            early: None,
        }
    }

    /// The date "today" is in this call (live calls: `calls.time_zone`'s,
    /// see `calendar`); without it relative dates find nothing.
    pub fn with_today(mut self, today: Option<Date>) -> ScriptFlow {
        if let Some(start) = &mut self.start {
            start.today = today;
        }
        self
    }

    /// A prompt is about to play: a lookup or ticket right behind it (the
    /// filler's work) starts now, so the caller does not wait for it twice.
    fn start_early(&mut self, actions: &mut Vec<FlowAction>) {
        match self.queue.front() {
            Some(Command::Lookup(_)) | Some(Command::CreateTicket(_)) => {}
            _ => return,
        }
        match self.queue.pop_front() {
            Some(Command::Lookup(request)) => actions.push(FlowAction::Lookup(request)),
            Some(Command::CreateTicket(request)) => actions.push(FlowAction::Ticket(request)),
            _ => return,
        }
        self.early = Some(Early::Pending);
    }

    /// The filler ended (or was barged into): its work's answer decides.
    fn filler_done(&mut self) -> Vec<FlowAction> {
        match self.early.take() {
            Some(Early::Arrived(event)) => self.feed(event),
            Some(Early::Pending) => {
                self.waiting = Waiting::Outcome;
                vec![]
            }
            None => {
                self.waiting = Waiting::Nothing;
                self.pump()
            }
        }
    }

    /// An outcome: held while its filler still plays.
    fn outcome(&mut self, event: Event) -> Vec<FlowAction> {
        if matches!(self.early, Some(Early::Pending))
            && matches!(self.waiting, Waiting::Playback { .. })
        {
            self.early = Some(Early::Arrived(event));
            return vec![];
        }
        self.feed(event)
    }

    /// Hand an event to the interpreter and run what it asks.
    fn feed(&mut self, event: Event) -> Vec<FlowAction> {
        self.waiting = Waiting::Nothing;
        self.queue.extend(self.interpreter.handle(event));
        self.pump()
    }

    /// Carry out queued commands until one must be waited for.
    fn pump(&mut self) -> Vec<FlowAction> {
        let mut actions = Vec::new();
        while matches!(self.waiting, Waiting::Nothing) {
            let Some(command) = self.queue.pop_front() else {
                break;
            };
            match command {
                Command::Say {
                    text,
                    language,
                    voice,
                    barge_in,
                    min_speech,
                } => {
                    actions.push(FlowAction::Say {
                        text,
                        language: language.code().to_string(),
                        voice,
                        barge_in,
                        min_speech,
                    });
                    self.waiting = Waiting::Playback { barge_in };
                    self.start_early(&mut actions);
                }
                Command::Play {
                    file,
                    barge_in,
                    min_speech,
                    ..
                } => {
                    actions.push(FlowAction::PlayFile {
                        path: file,
                        barge_in,
                        min_speech,
                    });
                    self.waiting = Waiting::Playback { barge_in };
                    self.start_early(&mut actions);
                }
                Command::Listen(listen) => {
                    actions.push(FlowAction::AwaitInput(listen.timeout));
                    self.waiting = Waiting::Input(Gather::from(&listen));
                    if listen.speech {
                        actions.push(FlowAction::Listen(Box::new(listen)));
                    }
                }
                Command::Lookup(request) => {
                    actions.push(FlowAction::Lookup(request));
                    self.waiting = Waiting::Outcome;
                }
                Command::CreateTicket(request) => {
                    actions.push(FlowAction::Ticket(request));
                    self.waiting = Waiting::Outcome;
                }
                Command::Transfer { to, context } => {
                    actions.push(FlowAction::Transfer {
                        target: to,
                        context: context.into_iter().collect(),
                    });
                    self.waiting = Waiting::Outcome;
                }
                Command::Hangup { .. } => {
                    // The record follows the hangup in the batch, but the
                    // call task stops at the hangup: hand the record over first.
                    let rest: Vec<Command> = self.queue.drain(..).collect();
                    for c in rest {
                        if let Command::Record(record) = c {
                            actions.push(FlowAction::Record(Box::new(record)));
                        }
                    }
                    actions.push(FlowAction::Hangup);
                    self.waiting = Waiting::Done;
                }
                Command::Record(record) => actions.push(FlowAction::Record(Box::new(record))),
                // Nothing to do mid-call: the task is in the record's
                // `follow_ups` and is written with it, through the outbox,
                // when the call ends.
                Command::FollowUp(_) => {}
            }
        }
        actions
    }

    /// A key while gathering; the finished entry, if this key ends it.
    fn key(&mut self, d: char) -> Vec<FlowAction> {
        let Waiting::Input(gather) = &mut self.waiting else {
            return vec![];
        };
        if gather.finish_key == Some(d) {
            let digits = std::mem::take(&mut gather.digits);
            return self.entered(digits);
        }
        gather.digits.push(d);
        if gather.digits.len() >= gather.max_digits {
            let digits = std::mem::take(&mut gather.digits);
            return self.entered(digits);
        }
        vec![FlowAction::AwaitInput(gather.inter_digit)]
    }

    fn entered(&mut self, digits: String) -> Vec<FlowAction> {
        let mut actions = vec![FlowAction::DigitsCollected(digits.clone())];
        actions.extend(self.feed(Event::Digits(digits)));
        actions
    }

    /// Skip what was queued to be said before the next `Listen`: the
    /// caller barged in and already answers.
    fn skip_to_listen(&mut self) -> Vec<FlowAction> {
        while let Some(c) = self.queue.front() {
            if matches!(c, Command::Say { .. } | Command::Play { .. }) {
                self.queue.pop_front();
            } else {
                break;
            }
        }
        self.waiting = Waiting::Nothing;
        self.pump()
    }
}

impl CallFlow for ScriptFlow {
    fn on_event(&mut self, event: FlowEvent) -> Vec<FlowAction> {
        match event {
            FlowEvent::Answered => match self.start.take() {
                Some(start) => self.feed(Event::CallStarted(start)),
                None => vec![],
            },
            FlowEvent::PlaybackDone => match self.waiting {
                Waiting::Playback { .. } => self.filler_done(),
                _ => vec![],
            },
            // Over a filler whose work runs, a key or speech only stops it.
            FlowEvent::Digit(_) | FlowEvent::BargeIn
                if self.early.is_some()
                    && matches!(self.waiting, Waiting::Playback { barge_in: true }) =>
            {
                let mut actions = vec![FlowAction::StopPlayback];
                actions.extend(self.filler_done());
                actions
            }
            FlowEvent::Digit(d) => match self.waiting {
                Waiting::Playback { barge_in: true } => {
                    let mut actions = vec![FlowAction::StopPlayback];
                    actions.extend(self.skip_to_listen());
                    actions.extend(self.key(d));
                    actions
                }
                Waiting::Input(_) => self.key(d),
                // Keys during legal text or while a lookup runs are dropped.
                _ => vec![],
            },
            FlowEvent::BargeIn => match self.waiting {
                Waiting::Playback { barge_in: true } => {
                    let mut actions = vec![FlowAction::StopPlayback];
                    actions.extend(self.skip_to_listen());
                    actions
                }
                _ => vec![],
            },
            FlowEvent::Heard(heard) => match &self.waiting {
                // Keys already typed win over speech that ends after them.
                Waiting::Input(g) if g.digits.is_empty() => self.feed(Event::Heard(heard)),
                _ => vec![],
            },
            FlowEvent::InputTimeout => {
                let Waiting::Input(gather) = &mut self.waiting else {
                    return vec![];
                };
                let digits = std::mem::take(&mut gather.digits);
                if digits.is_empty() {
                    self.feed(Event::NoInput)
                } else {
                    self.entered(digits)
                }
            }
            FlowEvent::LookupDone(result) => self.outcome(Event::LookupDone { result }),
            FlowEvent::LookupFailed(reason) => self.outcome(Event::LookupFailed { reason }),
            FlowEvent::TicketCreated(id) => self.outcome(Event::TicketCreated { id }),
            FlowEvent::TicketFailed(reason) => self.outcome(Event::TicketFailed { reason }),
            FlowEvent::TransferFailed(reason) => self.feed(Event::TransferFailed { reason }),
            FlowEvent::CallerHungUp => {
                self.queue.clear();
                self.early = None;
                self.interpreter
                    .handle(Event::Hangup)
                    .into_iter()
                    .filter_map(|c| match c {
                        Command::Record(r) => Some(FlowAction::Record(Box::new(r))),
                        _ => None,
                    })
                    .collect()
            }
        }
    }
}

#[cfg(test)]
mod tests;
