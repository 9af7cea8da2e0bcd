//! From a script's `Listen` and what a recogniser returned to the dialog's
//! `Heard`: which engine a prompt uses, the grammar it gets, how the intent
//! model's labels map onto the script's intents, and which entities go
//! along. Plain functions, no engines: tested with made-up transcripts.

use std::collections::BTreeMap;

use voxbridge_dialog::format::{Lang, SlotType};
use voxbridge_dialog::interp::{Heard, Listen};
use voxbridge_models::asr::grammar::{normalize_phrase, Dictionary};
use voxbridge_models::asr::{GrammarSpec, SlotGrammar};
use voxbridge_models::entities;

/// Which recogniser a prompt runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineChoice {
    Whisper,
    Grammar,
    /// Nothing here can recognise this prompt (e.g. Mandarin speech with no
    /// whisper model): speech is not listened for, keys still work.
    None,
}

/// What the engine has loaded.
#[derive(Debug, Clone, Copy, Default)]
pub struct Available {
    pub whisper: bool,
    /// The whisper model is multilingual (also Mandarin); tiny.en is not.
    pub whisper_zh: bool,
    pub grammar: bool,
}

/// The script names an engine (`asr: whisper` or `asr: grammar`); honour it
/// when loaded, else fall back to what can do the prompt's language and
/// shape. The grammar engine is English only and needs something to match.
pub fn choose_engine(listen: &Listen, have: Available) -> EngineChoice {
    if !listen.speech {
        return EngineChoice::None;
    }
    let grammar_fits = have.grammar
        && listen.language == Lang::En
        && (!listen.phrases.is_empty()
            || matches!(
                listen.slot,
                Some(SlotType::YesNo | SlotType::Digits | SlotType::OrderId | SlotType::Number)
            ));
    // An English-only model cannot take a Mandarin prompt: keys only then.
    let whisper = have.whisper && (listen.language == Lang::En || have.whisper_zh);
    let wants = listen.asr.as_deref().unwrap_or("grammar");
    match (wants, whisper, grammar_fits) {
        ("whisper", true, _) => EngineChoice::Whisper,
        (_, _, true) => EngineChoice::Grammar,
        (_, true, false) => EngineChoice::Whisper,
        _ => EngineChoice::None,
    }
}

/// The grammar for a prompt: its phrases (those the dictionary can say; the
/// first tag of a phrase wins) and the slot type's grammar.
pub fn grammar_spec(listen: &Listen, dict: &Dictionary) -> GrammarSpec {
    let mut spec = GrammarSpec::default();
    let mut seen = std::collections::HashSet::new();
    for (tag, phrase) in &listen.phrases {
        let norm = normalize_phrase(phrase);
        if norm.is_empty() || !norm.split(' ').all(|w| dict.contains(w)) {
            continue;
        }
        if seen.insert(norm.clone()) {
            spec = spec.phrase(tag, &norm);
        }
    }
    match listen.slot {
        Some(SlotType::YesNo) => spec = spec.slot(SlotGrammar::YesNo),
        Some(SlotType::Digits | SlotType::OrderId) => {
            let max = (listen.max_digits as usize).clamp(1, 16);
            spec = spec.slot(SlotGrammar::Digits { min: 1, max });
        }
        Some(SlotType::Number) => spec = spec.slot(SlotGrammar::Number),
        _ => {}
    }
    spec
}

/// Time a spoken word may take at the slowest (espeak-ng at 140 words a
/// minute is 430 ms; callers hesitate), and what an answer may add around
/// its words (pre-roll, trailing silence, a breath).
const MS_PER_WORD: u32 = 600;
const ANSWER_MARGIN_MS: u32 = 1_500;

/// The longest utterance that can still be an answer to a grammar
/// question: its longest alternative in words, at [`MS_PER_WORD`], plus
/// [`ANSWER_MARGIN_MS`]. Longer speech is clearly out of the grammar (which
/// matches whole utterances only): not worth decoding.
pub fn grammar_max_ms(listen: &Listen) -> u32 {
    let phrase_words = listen
        .phrases
        .iter()
        .map(|(_, p)| normalize_phrase(p).split(' ').count())
        .max()
        .unwrap_or(0);
    let slot_words = match listen.slot {
        // "no it isn't", "that's wrong".
        Some(SlotType::YesNo) => 3,
        Some(SlotType::Digits | SlotType::OrderId) => (listen.max_digits as usize).clamp(1, 16),
        // "nine hundred and ninety nine".
        Some(SlotType::Number) => 5,
        _ => 0,
    };
    let words = phrase_words.max(slot_words).max(1) as u32;
    words * MS_PER_WORD + ANSWER_MARGIN_MS
}

/// Intent-model labels that mean a script intent of another name.
const LABEL_ALIASES: &[(&str, &str)] = &[
    ("talk_to_human", "agent"),
    ("talk_to_human", "human"),
    ("talk_to_human", "operator"),
];

/// The script intent a model label stands for, among those the prompt
/// expects.
pub fn script_intent<'a>(label: &str, expected: &'a [String]) -> Option<&'a str> {
    expected
        .iter()
        .find(|i| {
            i.as_str() == label
                || LABEL_ALIASES
                    .iter()
                    .any(|(l, s)| *l == label && *s == i.as_str())
        })
        .map(String::as_str)
}

/// The model labels that can stand for the prompt's expected intents.
pub fn model_labels(expected: &[String], labels: &[String]) -> Vec<String> {
    labels
        .iter()
        .filter(|l| script_intent(l, expected).is_some())
        .cloned()
        .collect()
}

/// Confidence reported for a grammar match: the grammar accepts only its
/// alternatives, so a match is strong but PocketSphinx gives no score.
pub const GRAMMAR_MATCH_CONFIDENCE: f32 = 0.9;

/// Entities for the slot being filled, read from the text.
pub fn entities_for(listen: &Listen, text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    match listen.slot {
        Some(SlotType::Digits | SlotType::OrderId) => {
            if let Some(d) = entities::digits(text) {
                out.insert("digits".to_string(), d.clone());
                if listen.slot == Some(SlotType::OrderId) {
                    out.insert("order_id".to_string(), d);
                }
            }
        }
        Some(SlotType::Number) => {
            if let Some(n) = entities::number(text) {
                out.insert("number".to_string(), n.to_string());
            }
        }
        _ => {}
    }
    out
}

/// What a grammar match means: a tag that is one of the prompt's intents
/// is that intent; other tags (yes/no, an enum value, digits) are left to
/// the dialog to read from the text.
pub fn heard_from_grammar(listen: &Listen, text: &str, tag: Option<&str>) -> Heard {
    let intent = tag
        .and_then(|t| script_intent(t, &listen.intents))
        .map(str::to_string);
    Heard {
        text: text.to_string(),
        confidence: if intent.is_some() {
            GRAMMAR_MATCH_CONFIDENCE
        } else {
            0.0
        },
        intent,
        entities: entities_for(listen, text),
    }
}

/// A free-speech transcript that is one of the prompt's own phrases (a
/// script example said word for word, punctuation and case aside) means
/// that phrase's intent, whatever the model makes of it: "No thanks." is
/// the script's `goodbye` where the intent model hears a plain `no`.
pub fn heard_phrase(listen: &Listen, text: &str) -> Option<Heard> {
    let said = normalize_phrase(text);
    if said.is_empty() {
        return None;
    }
    let intent = listen
        .phrases
        .iter()
        .filter(|(_, p)| normalize_phrase(p) == said)
        .find_map(|(tag, _)| script_intent(tag, &listen.intents))?;
    Some(Heard {
        text: text.to_string(),
        intent: Some(intent.to_string()),
        confidence: GRAMMAR_MATCH_CONFIDENCE,
        entities: entities_for(listen, text),
    })
}

/// Free speech classified by the model: the best expected intent, with
/// its probability renormalised over the expected ones when the model's
/// overall best was not one of them.
pub fn heard_from_classifier(listen: &Listen, text: &str, best: Option<(&str, f32)>) -> Heard {
    let (intent, confidence) =
        match best.and_then(|(l, p)| Some((script_intent(l, &listen.intents)?, p))) {
            Some((i, p)) => (Some(i.to_string()), p),
            None => (None, 0.0),
        };
    Heard {
        text: text.to_string(),
        intent,
        confidence,
        entities: entities_for(listen, text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn listen(slot: Option<SlotType>, phrases: &[(&str, &str)]) -> Listen {
        Listen {
            speech: true,
            dtmf: true,
            language: Lang::En,
            asr: Some("whisper".into()),
            timeout: Duration::from_secs(6),
            max_digits: 12,
            finish_key: Some('#'),
            inter_digit_timeout: Duration::from_secs(3),
            intents: vec!["order_status".into(), "agent".into(), "goodbye".into()],
            slot,
            hints: phrases.iter().map(|(_, p)| p.to_string()).collect(),
            phrases: phrases
                .iter()
                .map(|(t, p)| (t.to_string(), p.to_string()))
                .collect(),
        }
    }

    #[test]
    fn engine_follows_the_script_then_what_is_loaded() {
        let menu = listen(None, &[("agent", "talk to an agent")]);
        let both = Available {
            whisper: true,
            whisper_zh: true,
            grammar: true,
        };
        let grammar_only = Available {
            whisper: false,
            whisper_zh: false,
            grammar: true,
        };
        let english_whisper = Available {
            whisper_zh: false,
            ..both
        };
        assert_eq!(choose_engine(&menu, both), EngineChoice::Whisper);
        assert_eq!(choose_engine(&menu, grammar_only), EngineChoice::Grammar);
        let mut zh = menu.clone();
        zh.language = Lang::Zh;
        assert_eq!(choose_engine(&zh, grammar_only), EngineChoice::None);
        assert_eq!(choose_engine(&zh, both), EngineChoice::Whisper);
        assert_eq!(choose_engine(&zh, english_whisper), EngineChoice::None);
        assert_eq!(choose_engine(&menu, english_whisper), EngineChoice::Whisper);
        let free_text = listen(Some(SlotType::Text), &[]);
        assert_eq!(choose_engine(&free_text, grammar_only), EngineChoice::None);
        let mut keys_only = menu.clone();
        keys_only.speech = false;
        assert_eq!(choose_engine(&keys_only, both), EngineChoice::None);
        let mut wants_grammar = menu;
        wants_grammar.asr = Some("grammar".into());
        assert_eq!(choose_engine(&wants_grammar, both), EngineChoice::Grammar);
    }

    #[test]
    fn grammar_keeps_sayable_phrases_once_and_the_slot() {
        let dict = Dictionary::from_words([
            "talk", "to", "an", "agent", "bye", "where", "is", "my", "order",
        ]);
        let l = listen(
            Some(SlotType::OrderId),
            &[
                ("agent", "Talk to an agent!"),
                ("goodbye", "bye"),
                ("goodbye", "that's all"), // "that's" is not in the dictionary
                ("order_status", "where is my order"),
                ("agent", "bye"), // already goodbye's
            ],
        );
        let spec = grammar_spec(&l, &dict);
        assert_eq!(
            spec.phrases,
            vec![
                ("agent".to_string(), "talk to an agent".to_string()),
                ("goodbye".to_string(), "bye".to_string()),
                ("order_status".to_string(), "where is my order".to_string()),
            ]
        );
        assert_eq!(spec.slots, vec![SlotGrammar::Digits { min: 1, max: 12 }]);
    }

    #[test]
    fn grammar_answers_have_a_longest_length() {
        let menu = listen(None, &[("agent", "talk to an agent"), ("goodbye", "bye")]);
        assert_eq!(grammar_max_ms(&menu), 4 * MS_PER_WORD + ANSWER_MARGIN_MS);
        let mut digits = listen(Some(SlotType::OrderId), &[("agent", "agent")]);
        digits.max_digits = 8;
        assert_eq!(grammar_max_ms(&digits), 8 * MS_PER_WORD + ANSWER_MARGIN_MS);
        let yes_no = listen(Some(SlotType::YesNo), &[]);
        assert_eq!(grammar_max_ms(&yes_no), 3 * MS_PER_WORD + ANSWER_MARGIN_MS);
    }

    #[test]
    fn model_labels_map_onto_script_intents() {
        let expected = vec!["order_status".to_string(), "agent".to_string()];
        assert_eq!(script_intent("talk_to_human", &expected), Some("agent"));
        assert_eq!(
            script_intent("order_status", &expected),
            Some("order_status")
        );
        assert_eq!(script_intent("billing", &expected), None);
        let labels: Vec<String> = ["billing", "order_status", "talk_to_human", "yes"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            model_labels(&expected, &labels),
            vec!["order_status".to_string(), "talk_to_human".to_string()]
        );
    }

    #[test]
    fn grammar_tags_become_intents_or_slot_text() {
        let l = listen(None, &[]);
        let h = heard_from_grammar(&l, "talk to an agent", Some("talk_to_human"));
        assert_eq!(h.intent.as_deref(), Some("agent"));
        assert_eq!(h.confidence, GRAMMAR_MATCH_CONFIDENCE);
        let h = heard_from_grammar(&listen(Some(SlotType::YesNo), &[]), "yes", Some("yes"));
        assert_eq!(h.intent, None);
        assert_eq!(h.text, "yes");
        let h = heard_from_grammar(
            &listen(Some(SlotType::OrderId), &[]),
            "one zero zero one",
            Some("digits"),
        );
        assert_eq!(h.entities.get("order_id").map(String::as_str), Some("1001"));
        let nothing = heard_from_grammar(&l, "", None);
        assert_eq!((nothing.intent, nothing.confidence), (None, 0.0));
    }

    #[test]
    fn a_transcript_that_is_a_script_phrase_means_its_intent() {
        let l = listen(
            None,
            &[("goodbye", "no thanks"), ("agent", "talk to an agent")],
        );
        let h = heard_phrase(&l, "No thanks.").expect("the script's phrase");
        assert_eq!(h.intent.as_deref(), Some("goodbye"));
        assert_eq!(h.text, "No thanks.");
        assert_eq!(h.confidence, GRAMMAR_MATCH_CONFIDENCE);
        assert!(heard_phrase(&l, "no thanks I want an agent").is_none());
        assert!(heard_phrase(&l, "").is_none());
        // A phrase whose tag is no intent of the prompt (an enum value).
        let product = listen(Some(SlotType::Enum), &[("kettle", "kettle")]);
        assert!(heard_phrase(&product, "Kettle.").is_none());
    }

    #[test]
    fn classifier_result_outside_the_prompt_is_no_intent() {
        let l = listen(None, &[]);
        let h = heard_from_classifier(&l, "i want a human", Some(("talk_to_human", 0.8)));
        assert_eq!((h.intent.as_deref(), h.confidence), (Some("agent"), 0.8));
        let h = heard_from_classifier(&l, "my bill", Some(("billing", 0.9)));
        assert_eq!(h.intent, None);
        assert_eq!(heard_from_classifier(&l, "hm", None).intent, None);
    }
}
