//! The prompts a program can speak without knowing anything about the call:
//! text with no `{{ }}`, in each language the script runs in, with the
//! voice it would be spoken in. The engine synthesises them when a script
//! loads, so no caller waits for the first synthesis of a menu.

use std::collections::BTreeMap;

use crate::format::{Lang, Say, State, Step};
use crate::template::Template;

use super::Program;

/// One prompt the interpreter can emit as `Command::Say` with exactly this
/// text, language and voice.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StaticPrompt {
    pub text: String,
    pub language: Lang,
    /// The script's voice for the language; `None`: the engine's default.
    pub voice: Option<String>,
}

impl Program {
    /// Every static prompt of the script, its imports included, each once,
    /// in the order first written. Prompts a WAV file covers are left out,
    /// as are texts that only exist once a call fills their templates.
    pub fn static_prompts(&self) -> Vec<StaticPrompt> {
        let script = self.script();
        // States in the order written (the greeting and menu first: the
        // engine may still be warming up when the first call comes), then
        // the handlers every question shares.
        let mut says: Vec<&Say> = Vec::new();
        let states = script
            .states
            .values()
            .chain(script.flows.values().flat_map(|f| f.states.values()));
        for state in states {
            says.extend(state_says(state));
        }
        says.extend(steps(&script.defaults.no_input));
        says.extend(steps(&script.defaults.no_match));
        let mut seen = std::collections::BTreeSet::new();
        let mut out = Vec::new();
        let languages = self.languages();
        for say in says {
            for prompt in say.prompts() {
                for &lang in &languages {
                    if prompt.wav.as_ref().and_then(|w| w.get(lang)).is_some() {
                        continue;
                    }
                    // The same fallback the interpreter uses when speaking.
                    let Some(src) = prompt
                        .text_for(lang)
                        .or_else(|| prompt.texts().first().map(|(_, t)| *t))
                    else {
                        continue;
                    };
                    let Ok(template) = Template::parse(src) else {
                        continue;
                    };
                    if template.has_holes() {
                        continue;
                    }
                    let text = template.render(&BTreeMap::new());
                    if text.trim().is_empty() {
                        continue;
                    }
                    let p = StaticPrompt {
                        text,
                        language: lang,
                        voice: self.voice(lang),
                    };
                    if seen.insert(p.clone()) {
                        out.push(p);
                    }
                }
            }
        }
        out
    }
}

/// The prompts of a question's handler steps.
fn steps(steps: &Option<Vec<Step>>) -> Vec<&Say> {
    steps
        .iter()
        .flatten()
        .filter_map(|st| st.say.as_ref())
        .collect()
}

/// The prompts a state speaks: `say`, its question and the question's
/// handlers, and a lookup's filler.
fn state_says(state: &State) -> Vec<&Say> {
    let mut out: Vec<&Say> = state.say.iter().collect();
    if let Some(ask) = &state.ask {
        out.push(&ask.prompt);
        out.extend(steps(&ask.no_input));
        out.extend(steps(&ask.no_match));
    }
    if let Some(filler) = state.lookup.as_ref().and_then(|l| l.filler.as_ref()) {
        out.push(filler);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_texts_in_every_language_and_none_with_templates() {
        let program = Program::parse(
            "t",
            r#"
name: t
languages: [en, zh]
defaults:
  voice: { zh: cmn-latn-pinyin }
  no_match:
    - say: { en: "Sorry?", zh: "什么？" }
      goto: bye
start: menu
states:
  menu:
    ask:
      prompt: { en: "Press 1 for sales.", zh: "销售请按1。" }
      slot: choice
      type: digits
      no_input:
        - say: { en: "Hello, {{ caller }}?", zh: "喂？" }
          goto: bye
    next: bye
  bye:
    say:
      - { en: "Thanks.", zh: "谢谢。", wav: thanks.wav }
      - { en: "Goodbye.", zh: "再见。" }
    hangup: done
"#,
        )
        .unwrap();
        let got: Vec<(String, Lang, Option<String>)> = program
            .static_prompts()
            .into_iter()
            .map(|p| (p.text, p.language, p.voice))
            .collect();
        let zh = Some("cmn-latn-pinyin".to_string());
        assert_eq!(
            got,
            vec![
                ("Press 1 for sales.".into(), Lang::En, None),
                ("销售请按1。".into(), Lang::Zh, zh.clone()),
                ("喂？".into(), Lang::Zh, zh.clone()),
                ("Goodbye.".into(), Lang::En, None),
                ("再见。".into(), Lang::Zh, zh.clone()),
                ("Sorry?".into(), Lang::En, None),
                ("什么？".into(), Lang::Zh, zh),
            ]
        );
    }
}
