//! In-call triggers: words or intents that, whenever the caller says them,
//! ask for a follow-up task for a human without changing the conversation
//! (e.g. "price", "contract" → "send a quote within 24 h").

use schemars::JsonSchema;
use serde::Deserialize;

use super::prompt::Phrases;
use crate::extract::{is_cjk, normalize};

/// ```yaml
/// triggers:
///   quote:
///     words: { en: [price, contract], zh: [价格, 合同] }
///     intents: [pricing]
///     task: "Send {{ customer.name }} a quote within 24 h"
///     body: "They said: {{ last.text }}"
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Trigger {
    /// Words or phrases that fire it, for all languages or per language.
    /// A Latin-script word matches whole words, case ignored ("price" does
    /// not match "priceless"); a Chinese word matches anywhere in the text.
    #[serde(default)]
    pub words: Option<Phrases>,
    /// Intents that fire it (when understood with enough confidence).
    #[serde(default)]
    pub intents: Vec<String>,
    /// The task's subject (template), for the human who follows up.
    pub task: String,
    /// The task's body (template). Default: what the caller said.
    #[serde(default)]
    pub body: Option<String>,
}

impl Trigger {
    /// Does this utterance (its text and confident intent) fire it, in `lang`?
    pub fn fires(&self, lang: super::Lang, text: &str, intent: Option<&str>) -> bool {
        if intent.is_some_and(|i| self.intents.iter().any(|t| t == i)) {
            return true;
        }
        let Some(words) = self.words.as_ref().and_then(|w| w.get(lang)) else {
            return false;
        };
        let said = format!(" {} ", normalize(text));
        words.iter().any(|w| contains_word(&said, w))
    }
}

/// A word or phrase in what was said: whole words for Latin script (the
/// same matching as enum synonyms), anywhere for Chinese.
fn contains_word(said: &str, word: &str) -> bool {
    let w = normalize(word);
    if w.is_empty() {
        return false;
    }
    if w.chars().any(is_cjk) {
        return said.contains(&w);
    }
    said.contains(&format!(" {w} "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::Lang;

    fn trigger(yaml: &str) -> Trigger {
        serde_saphyr::from_str(yaml).unwrap()
    }

    #[test]
    fn whole_words_case_ignored() {
        let t = trigger("words: [price, sign the contract]\ntask: quote\n");
        assert!(t.fires(Lang::En, "What's the PRICE?", None));
        assert!(t.fires(Lang::En, "ok, I'll sign   the contract.", None));
        assert!(!t.fires(Lang::En, "that is priceless", None));
        assert!(!t.fires(Lang::En, "the contract", None));
    }

    #[test]
    fn chinese_words_match_inside_text_and_languages_apart() {
        let t = trigger("words: { en: [price], zh: [价格] }\ntask: quote\n");
        assert!(t.fires(Lang::Zh, "请问价格是多少", None));
        assert!(!t.fires(Lang::Zh, "price", None));
        assert!(!t.fires(Lang::En, "价格", None));
    }

    #[test]
    fn intents_fire_it() {
        let t = trigger("intents: [pricing]\ntask: quote\n");
        assert!(t.fires(Lang::En, "how much", Some("pricing")));
        assert!(!t.fires(Lang::En, "how much", Some("other")));
        assert!(!t.fires(Lang::En, "how much", None));
    }
}
