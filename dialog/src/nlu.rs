//! Intent classification for the text simulator and conversation tests
//! when no intent model is loaded: caller text is matched against the
//! script's example phrases. The engine uses the real model (models
//! crate); anything that implements [`Classifier`] can stand in.

use std::collections::BTreeSet;

use crate::extract::{is_cjk, normalize, tokens};
use crate::format::{Lang, Script};

/// Something that labels text with an intent and a confidence (0..1).
pub trait Classifier {
    fn classify(&mut self, text: &str, lang: Lang) -> Option<(String, f32)>;
}

/// Matches text against a script's `intents` examples.
#[derive(Debug, Clone, Default)]
pub struct ExampleMatcher {
    /// (intent, language the examples are for (None: all), examples' features)
    examples: Vec<(String, Option<Lang>, String, BTreeSet<String>)>,
}

const EN_STOP: [&str; 30] = [
    "a", "an", "the", "to", "my", "i", "is", "it", "me", "please", "want", "would", "like", "can",
    "you", "for", "of", "do", "on", "in", "and", "i'd", "i'm", "this", "that", "with", "some",
    "about", "just", "could",
];
const ZH_STOP: [&str; 12] = [
    "我", "的", "了", "吗", "呢", "吧", "想", "请", "你", "一", "下", "啊",
];

/// Words (minus filler words), and for Chinese each character and each
/// pair of neighbouring characters.
fn features(text: &str) -> BTreeSet<String> {
    let toks = tokens(text);
    let mut out = BTreeSet::new();
    let mut prev_cjk: Option<String> = None;
    for t in &toks {
        let cjk = t.chars().all(is_cjk);
        if cjk {
            if let Some(p) = &prev_cjk {
                out.insert(format!("{p}{t}"));
            }
            if !ZH_STOP.contains(&t.as_str()) {
                out.insert(t.clone());
            }
            prev_cjk = Some(t.clone());
        } else {
            prev_cjk = None;
            if !EN_STOP.contains(&t.as_str()) {
                out.insert(t.clone());
            }
        }
    }
    if out.is_empty() {
        // All filler ("yes please" minus "please" still leaves "yes", but
        // "to me" leaves nothing): keep the words rather than nothing.
        out.extend(toks);
    }
    out
}

/// How well `text` matches `example`: how much of the example is in the
/// text, weighted a little by how much of the text the example explains.
fn similarity(text: &str, tf: &BTreeSet<String>, example: &str, ef: &BTreeSet<String>) -> f32 {
    if text == example {
        return 1.0;
    }
    if ef.is_empty() || tf.is_empty() {
        return 0.0;
    }
    let inter = tf.intersection(ef).count() as f32;
    let mut recall = inter / ef.len() as f32;
    let precision = inter / tf.len() as f32;
    let padded = format!(" {text} ");
    if padded.contains(&format!(" {example} "))
        || (example.chars().any(is_cjk) && text.contains(example))
    {
        recall = 1.0;
    }
    recall * (0.75 + 0.25 * precision.min(1.0))
}

impl ExampleMatcher {
    pub fn from_script(script: &Script) -> ExampleMatcher {
        let mut examples = Vec::new();
        for (intent, phrases) in &script.intents {
            for (lang, list) in phrases.values() {
                for e in list {
                    let norm = normalize(e);
                    let f = features(&norm);
                    examples.push((intent.clone(), lang, norm, f));
                }
            }
        }
        ExampleMatcher { examples }
    }
}

impl Classifier for ExampleMatcher {
    fn classify(&mut self, text: &str, lang: Lang) -> Option<(String, f32)> {
        let norm = normalize(text);
        if norm.is_empty() {
            return None;
        }
        let tf = features(&norm);
        let mut best: Option<(f32, &str)> = None;
        for (intent, l, example, ef) in &self.examples {
            if l.is_some_and(|l| l != lang) {
                continue;
            }
            let s = similarity(&norm, &tf, example, ef);
            if best.is_none_or(|(b, _)| s > b) {
                best = Some((s, intent));
            }
        }
        best.filter(|(s, _)| *s > 0.0)
            .map(|(s, i)| (i.to_string(), (s * 100.0).round() / 100.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher() -> ExampleMatcher {
        let script: Script = serde_saphyr::from_str(
            r#"
name: t
start: a
states: { a: { hangup: x } }
intents:
  order_status: { en: ["where is my order", "track my order"], zh: ["查订单", "我的订单到哪了"] }
  agent: { en: ["talk to an agent", "a human please"], zh: ["转人工", "人工客服"] }
  goodbye: { en: ["no thanks", "goodbye"], zh: ["不用了", "再见"] }
"#,
        )
        .unwrap();
        ExampleMatcher::from_script(&script)
    }

    fn top(text: &str, lang: Lang) -> (String, f32) {
        matcher().classify(text, lang).unwrap()
    }

    #[test]
    fn exact_and_contained_phrases_score_high() {
        assert_eq!(
            top("Where is my order?", Lang::En),
            ("order_status".into(), 1.0)
        );
        let (i, s) = top("hi, I'd like to track my order please", Lang::En);
        assert_eq!(i, "order_status");
        assert!(s >= 0.75, "{s}");
        let (i, s) = top("can I talk to someone, an agent", Lang::En);
        assert_eq!(i, "agent");
        assert!(s >= 0.5, "{s}");
    }

    #[test]
    fn chinese_matches_by_characters() {
        let (i, s) = top("帮我转人工", Lang::Zh);
        assert_eq!(i, "agent");
        assert!(s >= 0.75, "{s}");
        let (i, s) = top("我想查一下我的订单", Lang::Zh);
        assert_eq!(i, "order_status");
        assert!(s >= 0.5, "{s}");
        // English examples are not used for Chinese.
        assert!(matcher()
            .classify("goodbye", Lang::Zh)
            .is_none_or(|(_, s)| s < 0.5));
    }

    #[test]
    fn unrelated_text_scores_low() {
        let r = matcher().classify("the weather is nice", Lang::En);
        assert!(r.as_ref().is_none_or(|(_, s)| *s < 0.5), "{r:?}");
        assert!(matcher().classify("  ", Lang::En).is_none());
    }
}
