//! Turns that end as soon as the caller is understood: what a question
//! does with a recognition started at a pause in the caller's speech,
//! before the end-of-speech silence is complete.
//!
//! The endpointer hands over the speech so far after a short pause
//! (`speech.grammar_early_end_ms` for grammar questions,
//! `speech.whisper_speculate_ms` for whisper ones). The recognisers are
//! pooled (one decoder per worker, not per call), so "incremental" here
//! means decoding the utterance so far at each pause rather than keeping a
//! decoder per caller; [`Speculation`] decides what its result is worth:
//! - grammar: a complete answer (a phrase of the question that is no
//!   prefix of a longer one, yes/no, or exactly `max_digits` digits) ends
//!   the turn at once if the caller has not gone on; anything else is
//!   dropped and the full silence rule applies, so "one" of "one two
//!   three" never answers a digits question;
//! - whisper: a result that means one of the question's intents with
//!   `speech.whisper_early_end_confidence` ends the turn at once if the
//!   caller has not gone on ([`understood`]); any other result is kept,
//!   and used when the utterance ends with no more speech (the turn ends
//!   sooner by the decode time); speech after the pause discards it.
//!
//! At most one speculative recognition is in flight per question (a pause
//! while one runs starts nothing), and the shell runs none while the
//! recogniser's queue holds work. Plain state, no clock and no I/O: the
//! call core feeds it and the tests drive it directly.

use voxbridge_dialog::format::SlotType;
use voxbridge_dialog::interp::{Heard, Listen};
use voxbridge_models::asr::grammar::normalize_phrase;

use super::{SpeechError, Understood};

/// How the open question uses its speculative results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A complete grammar answer ends the turn when it arrives.
    EndOnComplete,
    /// The result waits for the end of the utterance, unless it is
    /// understood: then the turn ends when it arrives.
    KeepForEnd,
}

/// What became of a speculative result.
#[derive(Debug)]
pub enum OnResult {
    /// Not this question's, outdated by more speech, or not a complete
    /// answer: nothing to do.
    Dropped,
    /// A complete answer while the caller is silent: the turn ends now.
    EndTurn(Result<Understood, SpeechError>),
    /// Kept until the utterance ends.
    Kept,
    /// The utterance had already ended and was waiting for this: it is the
    /// turn's recognition.
    Recognised(Result<Understood, SpeechError>),
}

/// What to do when the whole utterance arrives.
#[derive(Debug)]
pub enum OnUtterance {
    /// Recognise it as usual.
    Recognise,
    /// The speculative result covers it exactly: use it.
    Use(Result<Understood, SpeechError>),
    /// The speculative recognition of exactly this audio still runs: wait
    /// for it instead of starting another.
    Wait,
}

/// One question's speculative recognition; see the module doc.
#[derive(Debug)]
pub struct Speculation {
    mode: Mode,
    /// The running one's id.
    in_flight: Option<u64>,
    /// The caller spoke after the audio the running one has.
    stale: bool,
    /// A whisper result waiting for the end of the utterance.
    kept: Option<Result<Understood, SpeechError>>,
    /// The utterance ended while the running one was still at work.
    waited_for: bool,
}

impl Speculation {
    pub fn new(mode: Mode) -> Speculation {
        Speculation {
            mode,
            in_flight: None,
            stale: false,
            kept: None,
            waited_for: false,
        }
    }

    /// A pause: whether to start a speculative recognition (none while one
    /// is in flight); [`Self::started`] then gives its id.
    pub fn on_pause(&mut self) -> bool {
        if self.in_flight.is_some() || self.waited_for {
            return false;
        }
        self.kept = None;
        true
    }

    /// The speculative recognition asked for after a pause.
    pub fn started(&mut self, id: u64) {
        self.in_flight = Some(id);
        self.stale = false;
    }

    /// The caller went on after the pause: what was decoded is not the
    /// whole utterance.
    pub fn on_resume(&mut self) {
        self.kept = None;
        if self.in_flight.is_some() {
            self.stale = true;
        }
    }

    /// The speculative recognition in flight.
    pub fn in_flight(&self) -> Option<u64> {
        self.in_flight
    }

    /// Whether `id` is the speculative recognition in flight.
    pub fn is_in_flight(&self, id: u64) -> bool {
        self.in_flight == Some(id)
    }

    /// A speculative result; `complete` says whether it is a complete
    /// answer to the question ([`complete_answer`]).
    pub fn on_result(
        &mut self,
        id: u64,
        result: Result<Understood, SpeechError>,
        complete: bool,
    ) -> OnResult {
        if self.in_flight != Some(id) {
            return OnResult::Dropped;
        }
        self.in_flight = None;
        if self.waited_for {
            self.waited_for = false;
            return OnResult::Recognised(result);
        }
        if std::mem::take(&mut self.stale) {
            return OnResult::Dropped;
        }
        match (self.mode, &result) {
            (Mode::EndOnComplete, Ok(_)) if complete => OnResult::EndTurn(result),
            (Mode::EndOnComplete, _) => OnResult::Dropped,
            // A busy or failed speculation is no reason to fail the turn:
            // the utterance is recognised as usual when it ends.
            (Mode::KeepForEnd, Err(_)) => OnResult::Dropped,
            (Mode::KeepForEnd, Ok(_)) if complete => OnResult::EndTurn(result),
            (Mode::KeepForEnd, Ok(_)) => {
                self.kept = Some(result);
                OnResult::Kept
            }
        }
    }

    /// The whole utterance arrived (the full silence rule passed).
    pub fn on_utterance(&mut self) -> OnUtterance {
        if let Some(result) = self.kept.take() {
            return OnUtterance::Use(result);
        }
        if self.in_flight.is_some() && !self.stale {
            self.waited_for = true;
            return OnUtterance::Wait;
        }
        OnUtterance::Recognise
    }
}

/// Whether a grammar transcript answers `listen` completely, so the turn
/// may end before the full silence: one of its phrases that no longer
/// phrase starts with, a yes/no answer, or exactly `max_digits` digits.
/// A digit string shorter than that, or a number, may still grow.
pub fn complete_answer(listen: &Listen, text: &str, tag: Option<&str>) -> bool {
    let said = normalize_phrase(text);
    if said.is_empty() || tag.is_none() {
        return false;
    }
    let phrases: Vec<String> = listen
        .phrases
        .iter()
        .map(|(_, p)| normalize_phrase(p))
        .collect();
    if phrases.contains(&said) {
        let prefix = format!("{said} ");
        return !phrases.iter().any(|p| p.starts_with(&prefix));
    }
    match listen.slot {
        Some(SlotType::YesNo) => matches!(tag, Some("yes" | "no")),
        Some(SlotType::Digits | SlotType::OrderId) => voxbridge_models::entities::digits(text)
            .is_some_and(|d| d.chars().count() >= (listen.max_digits as usize).clamp(1, 16)),
        _ => false,
    }
}

/// Whether a free-speech result understands `listen` well enough to end
/// the turn at a pause: the question expects intents, the result means one
/// of them with at least `min_confidence` (0: never), and no slot is open
/// that more words could change (digits, an order number, a number, a
/// date). Free text ("describe the problem") always waits for the full
/// silence: people pause in the middle of a complaint.
pub fn understood(listen: &Listen, heard: &Heard, min_confidence: f32) -> bool {
    let settled = matches!(listen.slot, None | Some(SlotType::YesNo | SlotType::Enum));
    min_confidence > 0.0
        && settled
        && !listen.intents.is_empty()
        && heard
            .intent
            .as_ref()
            .is_some_and(|i| listen.intents.contains(i))
        && heard.confidence >= min_confidence
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use voxbridge_dialog::format::Lang;

    fn understood(text: &str) -> Result<Understood, SpeechError> {
        Ok(Understood {
            heard: Heard {
                text: text.into(),
                ..Heard::default()
            },
            engine: "test",
            asr: Duration::from_millis(40),
            intent: Duration::ZERO,
        })
    }

    fn text(r: &Result<Understood, SpeechError>) -> &str {
        r.as_ref().map(|u| u.heard.text.as_str()).unwrap_or("<err>")
    }

    fn listen(slot: Option<SlotType>, max_digits: u32, phrases: &[(&str, &str)]) -> Listen {
        Listen {
            speech: true,
            dtmf: true,
            language: Lang::En,
            asr: None,
            timeout: Duration::from_secs(6),
            max_digits,
            finish_key: Some('#'),
            inter_digit_timeout: Duration::from_secs(3),
            intents: vec![],
            slot,
            hints: vec![],
            phrases: phrases
                .iter()
                .map(|(t, p)| (t.to_string(), p.to_string()))
                .collect(),
        }
    }

    #[test]
    fn a_complete_grammar_answer_at_a_pause_ends_the_turn() {
        let mut s = Speculation::new(Mode::EndOnComplete);
        assert!(s.on_pause());
        s.started(1);
        match s.on_result(1, understood("where is my order"), true) {
            OnResult::EndTurn(r) => assert_eq!(text(&r), "where is my order"),
            other => panic!("{other:?}"),
        }
        // An incomplete one is dropped: the silence rule decides.
        assert!(s.on_pause());
        s.started(2);
        assert!(matches!(
            s.on_result(2, understood("one"), false),
            OnResult::Dropped
        ));
        assert!(matches!(s.on_utterance(), OnUtterance::Recognise));
    }

    #[test]
    fn speech_after_the_pause_discards_the_result() {
        let mut s = Speculation::new(Mode::EndOnComplete);
        assert!(s.on_pause());
        s.started(1);
        s.on_resume();
        assert!(matches!(
            s.on_result(1, understood("yes"), true),
            OnResult::Dropped
        ));
        // The utterance that follows is recognised whole.
        assert!(matches!(s.on_utterance(), OnUtterance::Recognise));
    }

    #[test]
    fn one_speculation_in_flight_at_most() {
        let mut s = Speculation::new(Mode::KeepForEnd);
        assert!(s.on_pause());
        s.started(1);
        s.on_resume();
        // The caller pauses again while the first still runs: nothing new.
        assert!(!s.on_pause());
        assert!(matches!(
            s.on_result(1, understood("my kettle"), true),
            OnResult::Dropped
        ));
        assert!(s.on_pause());
        s.started(2);
        assert!(s.is_in_flight(2) && !s.is_in_flight(1));
        // Results of other ids are not this one's.
        assert!(matches!(
            s.on_result(1, understood("x"), true),
            OnResult::Dropped
        ));
    }

    #[test]
    fn whisper_keeps_the_result_for_the_end_of_the_utterance() {
        let mut s = Speculation::new(Mode::KeepForEnd);
        assert!(s.on_pause());
        s.started(1);
        assert!(matches!(
            s.on_result(1, understood("my kettle arrived broken"), false),
            OnResult::Kept
        ));
        match s.on_utterance() {
            OnUtterance::Use(r) => assert_eq!(text(&r), "my kettle arrived broken"),
            other => panic!("{other:?}"),
        }
        // The caller went on after a kept result: it is gone.
        let mut s = Speculation::new(Mode::KeepForEnd);
        s.on_pause();
        s.started(1);
        s.on_result(1, understood("my kettle"), false);
        s.on_resume();
        assert!(matches!(s.on_utterance(), OnUtterance::Recognise));
    }

    #[test]
    fn understood_free_speech_at_a_pause_ends_the_turn() {
        let mut s = Speculation::new(Mode::KeepForEnd);
        assert!(s.on_pause());
        s.started(1);
        match s.on_result(1, understood("where is my order"), true) {
            OnResult::EndTurn(r) => assert_eq!(text(&r), "where is my order"),
            other => panic!("{other:?}"),
        }
        // Understood, but the caller went on meanwhile: the silence rule.
        let mut s = Speculation::new(Mode::KeepForEnd);
        s.on_pause();
        s.started(2);
        s.on_resume();
        assert!(matches!(
            s.on_result(2, understood("where is my order"), true),
            OnResult::Dropped
        ));
    }

    #[test]
    fn only_a_confident_expected_intent_is_understood() {
        let mut menu = listen(None, 0, &[]);
        menu.intents = vec!["order_status".into(), "agent".into()];
        let heard = |intent: Option<&str>, confidence: f32| Heard {
            text: "where is my order".into(),
            intent: intent.map(str::to_string),
            confidence,
            ..Heard::default()
        };
        assert!(super::understood(
            &menu,
            &heard(Some("order_status"), 0.95),
            0.9
        ));
        assert!(!super::understood(
            &menu,
            &heard(Some("order_status"), 0.6),
            0.9
        ));
        assert!(!super::understood(&menu, &heard(Some("cancel"), 0.99), 0.9));
        assert!(!super::understood(&menu, &heard(None, 0.0), 0.9));
        // 0 turns it off.
        assert!(!super::understood(
            &menu,
            &heard(Some("order_status"), 1.0),
            0.0
        ));
        // Free text, or a slot more words could change, waits.
        let free = listen(Some(SlotType::Text), 0, &[]);
        assert!(!super::understood(
            &free,
            &heard(Some("order_status"), 1.0),
            0.9
        ));
        let mut order = listen(Some(SlotType::OrderId), 0, &[]);
        order.intents = menu.intents.clone();
        assert!(!super::understood(
            &order,
            &heard(Some("order_status"), 1.0),
            0.9
        ));
    }

    #[test]
    fn an_utterance_waits_for_the_speculation_of_the_same_audio() {
        let mut s = Speculation::new(Mode::KeepForEnd);
        s.on_pause();
        s.started(7);
        assert!(matches!(s.on_utterance(), OnUtterance::Wait));
        match s.on_result(7, understood("cancel my order"), true) {
            OnResult::Recognised(r) => assert_eq!(text(&r), "cancel my order"),
            other => panic!("{other:?}"),
        }
        // A failed speculation while waiting is the turn's failure too
        // (the core turns it into the no-match prompt).
        let mut s = Speculation::new(Mode::KeepForEnd);
        s.on_pause();
        s.started(8);
        s.on_utterance();
        assert!(matches!(
            s.on_result(8, Err(SpeechError::Failed("x".into())), false),
            OnResult::Recognised(Err(_))
        ));
    }

    #[test]
    fn complete_answers_never_end_a_digit_string_early() {
        let digits = listen(Some(SlotType::Digits), 4, &[]);
        assert!(!complete_answer(&digits, "one", Some("digits")));
        assert!(!complete_answer(&digits, "one two three", Some("digits")));
        assert!(complete_answer(
            &digits,
            "one zero zero one",
            Some("digits")
        ));
        let yes_no = listen(Some(SlotType::YesNo), 0, &[]);
        assert!(complete_answer(&yes_no, "yes please", Some("yes")));
        assert!(!complete_answer(&yes_no, "", None));
        let number = listen(Some(SlotType::Number), 0, &[]);
        assert!(!complete_answer(&number, "one hundred", Some("number")));
        let menu = listen(
            None,
            0,
            &[
                ("status", "order"),
                ("status", "order status"),
                ("agent", "talk to an agent"),
            ],
        );
        assert!(complete_answer(&menu, "Talk to an agent", Some("agent")));
        // "order" may be the start of "order status".
        assert!(!complete_answer(&menu, "order", Some("status")));
        assert!(complete_answer(&menu, "order status", Some("status")));
        // Not a phrase at all (no tag).
        assert!(!complete_answer(&menu, "talk to", None));
    }
}
