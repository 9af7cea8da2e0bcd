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
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlowEvent {
    /// The call was answered and media runs.
    Answered,
    /// The prompt started by the last `Play` finished (or was stopped).
    PlaybackDone,
    /// The caller pressed a key.
    Digit(char),
    /// The input deadline set by `AwaitInput` passed.
    InputTimeout,
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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Greeting,
    Collecting,
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

    fn flow() -> DefaultFlow {
        let prompts = DefaultPrompts {
            greeting: Prompt::from_samples(vec![0i16; 800]),
            goodbye: Prompt::from_samples(vec![0i16; 160]),
        };
        DefaultFlow::new(prompts, &FlowConfig::default())
    }

    fn names(actions: &[FlowAction]) -> Vec<String> {
        actions
            .iter()
            .map(|a| match a {
                FlowAction::Play(p) => format!("play({})", p.len()),
                FlowAction::StopPlayback => "stop".into(),
                FlowAction::AwaitInput(d) => format!("await({})", d.as_secs()),
                FlowAction::DigitsCollected(d) => format!("digits({d})"),
                FlowAction::Hangup => "hangup".into(),
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
    fn max_digits_finishes_without_key() {
        let mut f = DefaultFlow::new(
            flow().prompts,
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
