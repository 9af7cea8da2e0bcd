//! What a call does once answered. The call task asks a [`CallFlow`] "what
//! next?" after every event and carries out the actions it returns; the flow
//! holds no clock and does no I/O, so it is tested by feeding it events.
//!
//! [`DefaultFlow`] is the built-in flow: greet, collect DTMF digits until the
//! finish key or a timeout, say goodbye, hang up. The YAML dialog interpreter
//! plugs in behind the same trait.

use std::time::Duration;

use voxbridge_media::Prompt;

use crate::config::FlowConfig;

/// Something that happened on the call.
#[derive(Debug, Clone, PartialEq)]
pub enum FlowEvent {
    /// The call was answered and media runs.
    Answered,
    /// The prompt started by the last `Play` finished (or was stopped).
    PlaybackDone,
    /// The caller pressed a key.
    Digit(char),
    /// The input deadline set by `AwaitInput` passed.
    InputTimeout,
    /// The transfer asked for by `Transfer` did not happen; the caller is
    /// still on the line with the bot.
    TransferFailed(String),
    /// The caller hung up; only a `Record` is still wanted.
    CallerHungUp,
    /// The lookup asked for by `Lookup` answered (`Null`: nothing found).
    LookupDone(voxbridge_dialog::value::Value),
    /// The lookup failed or ran out of time.
    LookupFailed(String),
    /// The ticket asked for by `Ticket` exists, with this id.
    TicketCreated(String),
    TicketFailed(String),
    /// The caller spoke over a playing prompt (long enough to mean it).
    BargeIn,
    /// What the caller said during a `Listen`, recognised and classified
    /// (empty text: nothing understood, or no recogniser was free).
    Heard(voxbridge_dialog::interp::Heard),
}

/// Something the call task must do.
#[derive(Debug, Clone)]
pub enum FlowAction {
    /// Play a prompt; `PlaybackDone` follows.
    Play(Prompt),
    /// Stop the prompt now playing.
    StopPlayback,
    /// Wait for input; `InputTimeout` follows unless an event arrives first.
    /// A new `AwaitInput` replaces the previous deadline.
    AwaitInput(Duration),
    /// The caller entered these digits (for the log and the call record).
    DigitsCollected(String),
    /// Speak text (TTS), then `PlaybackDone`; `barge_in`: keys may stop it.
    Say {
        text: String,
        /// `en` or `zh`.
        language: String,
        voice: Option<String>,
        barge_in: bool,
        /// Voiced speech needed before speech stops it (`None`: the
        /// engine's `speech.barge_in_ms`).
        min_speech: Option<Duration>,
    },
    /// Play a WAV file, then `PlaybackDone`.
    PlayFile {
        path: std::path::PathBuf,
        barge_in: bool,
        min_speech: Option<Duration>,
    },
    /// Ask the CRM/ERP; `LookupDone` or `LookupFailed` follows.
    Lookup(voxbridge_dialog::interp::LookupRequest),
    /// Open a ticket; `TicketCreated` or `TicketFailed` follows.
    Ticket(voxbridge_dialog::interp::TicketRequest),
    /// What the script made of the call, for the CRM's call log.
    Record(Box<voxbridge_dialog::interp::CallRecord>),
    /// Hand the caller to a human by REFER, with context items attached.
    /// On success the call ends; on failure `TransferFailed` follows.
    Transfer {
        target: String,
        context: Vec<(String, String)>,
    },
    /// Listen for speech too, with what this prompt expects; ends with
    /// the next `Heard`, digits or timeout.
    Listen(Box<voxbridge_dialog::interp::Listen>),
    /// End the call with BYE.
    Hangup,
}

/// The call task's question: given this event, what next?
pub trait CallFlow: Send {
    fn on_event(&mut self, event: FlowEvent) -> Vec<FlowAction>;
}

/// Prompts the default flow plays, loaded once at start-up.
#[derive(Debug, Clone)]
pub struct DefaultPrompts {
    pub greeting: Prompt,
    pub goodbye: Prompt,
    pub transferring: Prompt,
    pub transfer_failed: Prompt,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Greeting,
    Collecting,
    /// Saying "please hold" before the REFER.
    Transferring,
    /// Waiting for the REFER's outcome.
    Referred,
    /// Saying the transfer failed.
    TransferFailed,
    Goodbye,
    Done,
}

/// Greet, collect digits, say goodbye, hang up.
pub struct DefaultFlow {
    prompts: DefaultPrompts,
    finish_key: char,
    max_digits: usize,
    first_timeout: Duration,
    inter_digit_timeout: Duration,
    transfer: Option<(char, String)>,
    stage: Stage,
    digits: String,
}

impl DefaultFlow {
    pub fn new(prompts: DefaultPrompts, config: &FlowConfig) -> Self {
        DefaultFlow {
            prompts,
            finish_key: config.finish_key,
            max_digits: config.max_digits,
            first_timeout: Duration::from_secs(config.first_digit_timeout_secs),
            inter_digit_timeout: Duration::from_secs(config.inter_digit_timeout_secs),
            transfer: config.transfer_key.zip(config.transfer_target.clone()),
            stage: Stage::Greeting,
            digits: String::new(),
        }
    }

    fn finish(&mut self) -> Vec<FlowAction> {
        self.stage = Stage::Goodbye;
        vec![
            FlowAction::DigitsCollected(std::mem::take(&mut self.digits)),
            FlowAction::Play(self.prompts.goodbye.clone()),
        ]
    }

    fn digit(&mut self, d: char) -> Vec<FlowAction> {
        if self.transfer.as_ref().is_some_and(|(key, _)| *key == d) {
            self.stage = Stage::Transferring;
            return vec![FlowAction::Play(self.prompts.transferring.clone())];
        }
        if d == self.finish_key {
            return self.finish();
        }
        self.digits.push(d);
        if self.digits.len() >= self.max_digits {
            return self.finish();
        }
        vec![FlowAction::AwaitInput(self.inter_digit_timeout)]
    }
}

impl CallFlow for DefaultFlow {
    fn on_event(&mut self, event: FlowEvent) -> Vec<FlowAction> {
        match (self.stage, event) {
            (Stage::Greeting, FlowEvent::Answered) => {
                vec![FlowAction::Play(self.prompts.greeting.clone())]
            }
            (Stage::Greeting, FlowEvent::PlaybackDone) => {
                self.stage = Stage::Collecting;
                vec![FlowAction::AwaitInput(self.first_timeout)]
            }
            // A key during the greeting barges in: stop talking, start listening.
            (Stage::Greeting, FlowEvent::Digit(d)) => {
                self.stage = Stage::Collecting;
                let mut actions = vec![FlowAction::StopPlayback];
                actions.extend(self.digit(d));
                actions
            }
            (Stage::Collecting, FlowEvent::Digit(d)) => self.digit(d),
            (Stage::Collecting, FlowEvent::InputTimeout) => self.finish(),
            (Stage::Transferring, FlowEvent::PlaybackDone) => {
                self.stage = Stage::Referred;
                let target = self
                    .transfer
                    .as_ref()
                    .map(|(_, t)| t.clone())
                    .unwrap_or_default();
                let mut context = vec![("intent".to_string(), "agent".to_string())];
                if !self.digits.is_empty() {
                    context.insert(0, ("account".to_string(), self.digits.clone()));
                }
                vec![FlowAction::Transfer { target, context }]
            }
            (Stage::Referred, FlowEvent::TransferFailed(_)) => {
                self.stage = Stage::TransferFailed;
                self.digits.clear();
                vec![FlowAction::Play(self.prompts.transfer_failed.clone())]
            }
            (Stage::TransferFailed, FlowEvent::PlaybackDone) => {
                self.stage = Stage::Collecting;
                vec![FlowAction::AwaitInput(self.first_timeout)]
            }
            // Keys during the apology barge in like during the greeting.
            (Stage::TransferFailed, FlowEvent::Digit(d)) => {
                self.stage = Stage::Collecting;
                let mut actions = vec![FlowAction::StopPlayback];
                actions.extend(self.digit(d));
                actions
            }
            (Stage::Goodbye, FlowEvent::PlaybackDone) => {
                self.stage = Stage::Done;
                vec![FlowAction::Hangup]
            }
            // Everything else (keys during goodbye, a PlaybackDone for the
            // greeting we stopped) changes nothing.
            _ => vec![],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prompts() -> DefaultPrompts {
        DefaultPrompts {
            greeting: Prompt::from_samples(vec![0i16; 800]),
            goodbye: Prompt::from_samples(vec![0i16; 160]),
            transferring: Prompt::from_samples(vec![0i16; 320]),
            transfer_failed: Prompt::from_samples(vec![0i16; 480]),
        }
    }

    fn flow() -> DefaultFlow {
        DefaultFlow::new(prompts(), &FlowConfig::default())
    }

    fn transfer_flow() -> DefaultFlow {
        DefaultFlow::new(
            prompts(),
            &FlowConfig {
                transfer_target: Some("sip:agent@pbx".into()),
                ..FlowConfig::default()
            },
        )
    }

    fn names(actions: &[FlowAction]) -> Vec<String> {
        actions
            .iter()
            .map(|a| match a {
                FlowAction::Play(p) => format!("play({})", p.len()),
                FlowAction::StopPlayback => "stop".into(),
                FlowAction::AwaitInput(d) => format!("await({})", d.as_secs()),
                FlowAction::DigitsCollected(d) => format!("digits({d})"),
                FlowAction::Transfer { target, context } => {
                    format!("transfer({target},{context:?})")
                }
                FlowAction::Hangup => "hangup".into(),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn greet_collect_finish_key_goodbye_hangup() {
        let mut f = flow();
        assert_eq!(names(&f.on_event(FlowEvent::Answered)), ["play(800)"]);
        assert_eq!(names(&f.on_event(FlowEvent::PlaybackDone)), ["await(10)"]);
        assert_eq!(names(&f.on_event(FlowEvent::Digit('4'))), ["await(5)"]);
        assert_eq!(names(&f.on_event(FlowEvent::Digit('2'))), ["await(5)"]);
        assert_eq!(
            names(&f.on_event(FlowEvent::Digit('#'))),
            ["digits(42)", "play(160)"]
        );
        assert!(f.on_event(FlowEvent::Digit('9')).is_empty());
        assert_eq!(names(&f.on_event(FlowEvent::PlaybackDone)), ["hangup"]);
    }

    #[test]
    fn timeout_ends_collection_with_what_was_entered() {
        let mut f = flow();
        f.on_event(FlowEvent::Answered);
        f.on_event(FlowEvent::PlaybackDone);
        f.on_event(FlowEvent::Digit('7'));
        assert_eq!(
            names(&f.on_event(FlowEvent::InputTimeout)),
            ["digits(7)", "play(160)"]
        );
    }

    #[test]
    fn no_input_at_all_still_says_goodbye() {
        let mut f = flow();
        f.on_event(FlowEvent::Answered);
        f.on_event(FlowEvent::PlaybackDone);
        assert_eq!(
            names(&f.on_event(FlowEvent::InputTimeout)),
            ["digits()", "play(160)"]
        );
    }

    #[test]
    fn key_during_greeting_barges_in_and_counts() {
        let mut f = flow();
        f.on_event(FlowEvent::Answered);
        assert_eq!(
            names(&f.on_event(FlowEvent::Digit('1'))),
            ["stop", "await(5)"]
        );
        // The stopped greeting reports done; that must not reset the timer.
        assert!(f.on_event(FlowEvent::PlaybackDone).is_empty());
        assert_eq!(
            names(&f.on_event(FlowEvent::Digit('#'))),
            ["digits(1)", "play(160)"]
        );
    }

    #[test]
    fn transfer_key_transfers_with_context_and_failure_returns_to_collecting() {
        let mut f = transfer_flow();
        f.on_event(FlowEvent::Answered);
        f.on_event(FlowEvent::PlaybackDone);
        f.on_event(FlowEvent::Digit('4'));
        assert_eq!(names(&f.on_event(FlowEvent::Digit('0'))), ["play(320)"]);
        assert_eq!(
            names(&f.on_event(FlowEvent::PlaybackDone)),
            [r#"transfer(sip:agent@pbx,[("account", "4"), ("intent", "agent")])"#]
        );
        assert_eq!(
            names(&f.on_event(FlowEvent::TransferFailed("486".into()))),
            ["play(480)"]
        );
        assert_eq!(names(&f.on_event(FlowEvent::PlaybackDone)), ["await(10)"]);
        f.on_event(FlowEvent::Digit('7'));
        assert_eq!(
            names(&f.on_event(FlowEvent::Digit('#'))),
            ["digits(7)", "play(160)"]
        );
    }

    #[test]
    fn without_a_target_zero_is_just_a_digit() {
        let mut f = flow();
        f.on_event(FlowEvent::Answered);
        f.on_event(FlowEvent::PlaybackDone);
        assert_eq!(names(&f.on_event(FlowEvent::Digit('0'))), ["await(5)"]);
    }

    #[test]
    fn max_digits_finishes_without_key() {
        let mut f = DefaultFlow::new(
            prompts(),
            &FlowConfig {
                max_digits: 3,
                ..FlowConfig::default()
            },
        );
        f.on_event(FlowEvent::Answered);
        f.on_event(FlowEvent::PlaybackDone);
        f.on_event(FlowEvent::Digit('1'));
        f.on_event(FlowEvent::Digit('2'));
        assert_eq!(
            names(&f.on_event(FlowEvent::Digit('3'))),
            ["digits(123)", "play(160)"]
        );
    }
}
