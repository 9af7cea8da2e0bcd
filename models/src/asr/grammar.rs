//! JSGF grammars for the grammar engine, generated per prompt from what
//! the prompt expects: phrases (menu choices, intent examples) and slot
//! types (yes/no, short digit strings, numbers). No free word loops: a
//! grammar accepts exactly its alternatives, so an utterance either matches
//! one of them or is a no-match.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;
use std::path::Path;

use crate::ModelError;

/// A slot type the grammar can take.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SlotGrammar {
    /// Yes or no in a few distinct forms ("yes", "no thanks"…); tags `yes`/`no`.
    YesNo,
    /// `min..=max` spoken digits ("zero"/"oh" … "nine"); tag `digits`.
    Digits { min: usize, max: usize },
    /// A number from 0 to 999 in words; tag `number`.
    Number,
}

/// What a prompt expects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GrammarSpec {
    /// `(tag, phrase)`: the phrase's words must be in the dictionary.
    pub phrases: Vec<(String, String)>,
    /// Slot types accepted besides the phrases.
    pub slots: Vec<SlotGrammar>,
}

impl GrammarSpec {
    /// Adds one phrase with its tag.
    pub fn phrase(mut self, tag: &str, phrase: &str) -> Self {
        self.phrases.push((tag.to_string(), phrase.to_string()));
        self
    }

    /// Adds a slot type.
    pub fn slot(mut self, slot: SlotGrammar) -> Self {
        self.slots.push(slot);
        self
    }
}

/// The pronouncing dictionary's word list (to refuse words the recogniser
/// cannot say).
#[derive(Debug, Clone, Default)]
pub struct Dictionary {
    words: HashSet<String>,
}

impl Dictionary {
    /// Reads a CMU-style dictionary (`word[(n)] PH ON ES` per line).
    pub fn load(path: &Path) -> Result<Self, ModelError> {
        let text = std::fs::read_to_string(path).map_err(|e| ModelError::io(path, e))?;
        let words: HashSet<String> = text
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .map(|w| w.split('(').next().unwrap_or(w).to_string())
            .collect();
        if words.is_empty() {
            return Err(ModelError::corrupt(path, "empty dictionary"));
        }
        Ok(Dictionary { words })
    }

    /// A dictionary of the given words (tests).
    pub fn from_words<'a>(words: impl IntoIterator<Item = &'a str>) -> Self {
        Dictionary {
            words: words.into_iter().map(str::to_string).collect(),
        }
    }

    pub fn contains(&self, word: &str) -> bool {
        self.words.contains(word)
    }
}

/// PocketSphinx's default word insertion penalty.
pub const DEFAULT_WIP: f64 = 0.65;
/// Word insertion penalty for digit and number grammars (measured, see
/// [`Grammar::word_insertion_penalty`]).
pub const DIGIT_WIP: f64 = 1e-3;

/// A grammar ready for the decoder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grammar {
    id: u64,
    jsgf: String,
    phrase_tags: HashMap<String, String>,
    slots: Vec<SlotGrammar>,
}

const DIGITS: [&str; 11] = [
    "zero", "oh", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
];
/// Yes and no forms. Deliberately few and far apart: on 8 kHz audio "yes"
/// loses its /s/ and would decode as "yeah" if both were alternatives, so a
/// caller saying "yeah" is matched to "yes" (same tag) instead.
const YES: [&str; 6] = [
    "yes",
    "yes please",
    "yes it is",
    "correct",
    "that's right",
    "sure",
];
const NO: [&str; 5] = [
    "no",
    "no thanks",
    "no it isn't",
    "incorrect",
    "that's wrong",
];
const UNITS: [&str; 9] = [
    "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
];
const TEENS: [&str; 10] = [
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
];
const TENS: [&str; 8] = [
    "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
];

/// Lower case, digits spelled out one by one, punctuation (but the
/// apostrophe) removed, spaces collapsed.
pub fn normalize_phrase(phrase: &str) -> String {
    let mut words = Vec::new();
    for raw in phrase.split(|c: char| c.is_whitespace() || (c.is_ascii_punctuation() && c != '\''))
    {
        let w = raw.trim_matches('\'').to_lowercase();
        if w.is_empty() {
            continue;
        }
        if w.bytes().all(|b| b.is_ascii_digit()) {
            for b in w.bytes() {
                words.push(DIGITS[usize::from(b - b'0') + usize::from(b != b'0')].to_string());
            }
        } else {
            words.push(w);
        }
    }
    words.join(" ")
}

fn fnv64(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl Grammar {
    /// Builds the grammar; every word must be in `dict` (the error lists
    /// those that are not, so a dialog with an unsayable phrase fails at
    /// start).
    pub fn build(spec: &GrammarSpec, dict: &Dictionary) -> Result<Grammar, ModelError> {
        let mut phrase_tags = HashMap::new();
        let mut alternatives = BTreeSet::new();
        let mut missing = BTreeSet::new();
        for (tag, phrase) in &spec.phrases {
            let norm = normalize_phrase(phrase);
            if norm.is_empty() {
                continue;
            }
            for w in norm.split(' ') {
                if !dict.contains(w) {
                    missing.insert(w.to_string());
                }
            }
            if let Some(other) = phrase_tags.insert(norm.clone(), tag.clone()) {
                if &other != tag {
                    return Err(ModelError::Config(format!(
                        "grammar: phrase \"{norm}\" is both {other} and {tag}"
                    )));
                }
            }
            alternatives.insert(norm);
        }
        for slot in &spec.slots {
            let words: Vec<&str> = match slot {
                SlotGrammar::YesNo => YES
                    .iter()
                    .chain(NO.iter())
                    .flat_map(|p| p.split(' '))
                    .collect(),
                SlotGrammar::Digits { .. } => DIGITS.to_vec(),
                SlotGrammar::Number => UNITS
                    .iter()
                    .chain(&TEENS)
                    .chain(&TENS)
                    .copied()
                    .chain(["hundred", "and", "zero"])
                    .collect(),
            };
            for w in words {
                if !dict.contains(w) {
                    missing.insert(w.to_string());
                }
            }
            if let SlotGrammar::Digits { min, max } = slot {
                if *min == 0 || min > max || *max > 16 {
                    return Err(ModelError::Config(format!(
                        "grammar: digit strings of {min}..={max} digits (1 ≤ min ≤ max ≤ 16)"
                    )));
                }
            }
        }
        if !missing.is_empty() {
            return Err(ModelError::Config(format!(
                "grammar: not in the pronouncing dictionary: {}",
                missing.into_iter().collect::<Vec<_>>().join(", ")
            )));
        }
        if alternatives.is_empty() && spec.slots.is_empty() {
            return Err(ModelError::Config("grammar: nothing to recognise".into()));
        }

        let mut rules = String::new();
        let mut top = Vec::new();
        if !alternatives.is_empty() {
            top.push("<phrase>".to_string());
            let alts: Vec<&str> = alternatives.iter().map(String::as_str).collect();
            let _ = writeln!(rules, "<phrase> = {};", alts.join(" | "));
        }
        let mut slots = spec.slots.clone();
        slots.dedup();
        for (i, slot) in slots.iter().enumerate() {
            match slot {
                SlotGrammar::YesNo => {
                    top.push("<yes> | <no>".into());
                    let _ = writeln!(rules, "<yes> = {};", YES.join(" | "));
                    let _ = writeln!(rules, "<no> = {};", NO.join(" | "));
                }
                SlotGrammar::Digits { min, max } => {
                    top.push(format!("<digits{i}>"));
                    let mut body = vec!["<digit>"; *min].join(" ");
                    let optional = max - min;
                    body.push_str(&" [<digit>".repeat(optional));
                    body.push_str(&"]".repeat(optional));
                    let _ = writeln!(rules, "<digits{i}> = {};", body.trim());
                    if !rules.contains("<digit> =") {
                        let _ = writeln!(rules, "<digit> = {};", DIGITS.join(" | "));
                    }
                }
                SlotGrammar::Number => {
                    top.push("<number>".into());
                    let _ = writeln!(rules, "<unit> = {};", UNITS.join(" | "));
                    let _ = writeln!(rules, "<teen> = {};", TEENS.join(" | "));
                    let _ = writeln!(rules, "<tens> = {};", TENS.join(" | "));
                    let _ = writeln!(rules, "<below100> = <unit> | <teen> | <tens> [<unit>];");
                    let _ = writeln!(
                        rules,
                        "<number> = zero | <below100> | <unit> hundred [[and] <below100>];"
                    );
                }
            }
        }
        let jsgf = format!(
            "#JSGF V1.0;\ngrammar voxbridge;\npublic <utterance> = {};\n{rules}",
            top.join(" | ")
        );
        Ok(Grammar {
            id: fnv64(&jsgf),
            jsgf,
            phrase_tags,
            slots,
        })
    }

    /// A stable id (hash of the JSGF text): decoders cache grammars by it.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The word insertion penalty to decode this grammar with. Digit
    /// strings are many short words, and at PocketSphinx's default (0.65)
    /// the decoder inserts and drops digits; 1e-3 took espeak-ng digit
    /// strings through μ-law from 0.51 to 0.82 word accuracy here, but costs
    /// multi-word phrases, so phrase and yes/no grammars keep the default.
    pub fn word_insertion_penalty(&self) -> f64 {
        let numeric =
            |s: &SlotGrammar| matches!(s, SlotGrammar::Digits { .. } | SlotGrammar::Number);
        if self.phrase_tags.is_empty() && !self.slots.is_empty() && self.slots.iter().all(numeric) {
            DIGIT_WIP
        } else {
            DEFAULT_WIP
        }
    }

    /// The JSGF source.
    pub fn jsgf(&self) -> &str {
        &self.jsgf
    }

    /// The tag of a hypothesis: the phrase's tag, or `yes`/`no`/`digits`/
    /// `number` for slot alternatives; `None` for an empty hypothesis.
    pub fn tag_of(&self, hypothesis: &str) -> Option<String> {
        let h = normalize_phrase(hypothesis);
        if h.is_empty() {
            return None;
        }
        if let Some(t) = self.phrase_tags.get(&h) {
            return Some(t.clone());
        }
        for slot in &self.slots {
            match slot {
                SlotGrammar::YesNo if YES.contains(&h.as_str()) => return Some("yes".into()),
                SlotGrammar::YesNo if NO.contains(&h.as_str()) => return Some("no".into()),
                SlotGrammar::Digits { .. } if h.split(' ').all(|w| DIGITS.contains(&w)) => {
                    return Some("digits".into())
                }
                SlotGrammar::Number => return Some("number".into()),
                _ => {}
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dict() -> Dictionary {
        Dictionary::from_words(
            "where is my order talk to an agent yes please it correct that's right sure no thanks isn't incorrect wrong zero oh one two three four five six seven eight nine press"
                .split(' '),
        )
    }

    #[test]
    fn phrases_and_slots_become_jsgf() {
        let spec = GrammarSpec::default()
            .phrase("order_status", "Where is my order?")
            .phrase("agent", "talk to an agent")
            .phrase("order_status", "press 1")
            .slot(SlotGrammar::YesNo)
            .slot(SlotGrammar::Digits { min: 2, max: 4 });
        let g = Grammar::build(&spec, &dict()).unwrap();
        let j = g.jsgf();
        assert!(j.starts_with("#JSGF V1.0;\ngrammar voxbridge;\npublic <utterance> = <phrase> | <yes> | <no> | <digits1>;"), "{j}");
        assert!(
            j.contains("<phrase> = press one | talk to an agent | where is my order;"),
            "{j}"
        );
        assert!(
            j.contains("<digits1> = <digit> <digit> [<digit> [<digit>]];"),
            "{j}"
        );
        assert!(!j.contains('*') && !j.contains('+'), "no loops: {j}");
        assert_eq!(
            g.tag_of("WHERE IS MY ORDER").as_deref(),
            Some("order_status")
        );
        assert_eq!(g.tag_of("press one").as_deref(), Some("order_status"));
        assert_eq!(g.tag_of("yes please").as_deref(), Some("yes"));
        assert_eq!(g.tag_of("no thanks").as_deref(), Some("no"));
        assert_eq!(g.tag_of("five five two").as_deref(), Some("digits"));
        assert_eq!(g.tag_of(""), None);
        let again = Grammar::build(&spec, &dict()).unwrap();
        assert_eq!(g.id(), again.id());
    }

    #[test]
    fn unknown_words_and_conflicts_are_errors() {
        let e = Grammar::build(
            &GrammarSpec::default().phrase("x", "where is my zorblax"),
            &dict(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("zorblax"), "{e}");
        let e = Grammar::build(
            &GrammarSpec::default().phrase("a", "yes").phrase("b", "yes"),
            &dict(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("both"), "{e}");
        assert!(Grammar::build(&GrammarSpec::default(), &dict()).is_err());
        assert!(Grammar::build(
            &GrammarSpec::default().slot(SlotGrammar::Digits { min: 3, max: 2 }),
            &dict()
        )
        .is_err());
    }

    #[test]
    fn digits_in_phrases_are_spelled() {
        assert_eq!(normalize_phrase("Press 1, or 20!"), "press one or two zero");
    }
}
