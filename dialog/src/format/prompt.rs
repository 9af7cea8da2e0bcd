//! What the bot says: languages, per-language text, prompts (text to speak
//! or a WAV to play) and the one-or-many `say` list.

use std::fmt;
use std::marker::PhantomData;

use indexmap::IndexMap;
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer, StrDeserializer};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Serialize;

/// A language prompts are written in and callers are understood in.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    serde::Deserialize,
    Serialize,
    JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    /// English.
    En,
    /// Chinese (Mandarin).
    Zh,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::En, Lang::Zh];

    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh",
        }
    }

    pub fn parse(s: &str) -> Option<Lang> {
        match s.trim().to_ascii_lowercase().as_str() {
            "en" => Some(Lang::En),
            "zh" => Some(Lang::Zh),
            _ => None,
        }
    }

    /// A language tag as CRMs store it (`zh-CN`, `zh_Hans`, `en-US`, `EN`):
    /// its primary subtag decides.
    pub fn from_tag(tag: &str) -> Option<Lang> {
        let primary = tag.trim().split(['-', '_']).next().unwrap_or_default();
        Lang::parse(primary)
    }
}

#[cfg(test)]
mod lang_tests {
    use super::Lang;

    #[test]
    fn crm_language_tags_pick_the_language() {
        assert_eq!(Lang::from_tag("zh-CN"), Some(Lang::Zh));
        assert_eq!(Lang::from_tag("zh_Hans"), Some(Lang::Zh));
        assert_eq!(Lang::from_tag(" en-US "), Some(Lang::En));
        assert_eq!(Lang::from_tag("es-US"), None);
        assert_eq!(Lang::from_tag(""), None);
        assert_eq!(Lang::parse("zh-CN"), None, "script keys stay exact");
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// One thing for every language (`voice: en-us`) or one per language
/// (`voice: {en: en-us, zh: cmn}`).
#[derive(Debug, Clone, PartialEq)]
pub enum ByLang<T> {
    All(T),
    Each(IndexMap<Lang, T>),
}

impl<T> ByLang<T> {
    /// The entry for `lang`; `None` when a per-language map lacks it.
    pub fn get(&self, lang: Lang) -> Option<&T> {
        match self {
            ByLang::All(t) => Some(t),
            ByLang::Each(m) => m.get(&lang),
        }
    }

    pub fn values(&self) -> Vec<(Option<Lang>, &T)> {
        match self {
            ByLang::All(t) => vec![(None, t)],
            ByLang::Each(m) => m.iter().map(|(l, t)| (Some(*l), t)).collect(),
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for ByLang<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = ByLang<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a value, or a map from language (en, zh) to value")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                T::deserialize(StrDeserializer::<E>::new(s)).map(ByLang::All)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                T::deserialize(SeqAccessDeserializer::new(seq)).map(ByLang::All)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = IndexMap::new();
                while let Some(lang) = map.next_key::<Lang>()? {
                    if out.contains_key(&lang) {
                        return Err(de::Error::custom(format!("`{lang}` given twice")));
                    }
                    out.insert(lang, map.next_value()?);
                }
                Ok(ByLang::Each(out))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

impl<T: JsonSchema> JsonSchema for ByLang<T> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        format!("ByLang_{}", T::schema_name()).into()
    }
    fn json_schema(g: &mut SchemaGenerator) -> Schema {
        let t = g.subschema_for::<T>();
        json_schema!({
            "description": "The same for every language, or one per language.",
            "anyOf": [
                t,
                {
                    "type": "object",
                    "properties": { "en": t, "zh": t },
                    "additionalProperties": false
                }
            ]
        })
    }
}

/// Phrases per language: intent examples, enum synonyms.
pub type Phrases = ByLang<Vec<String>>;

/// One prompt. Written as plain text (`"Hello {{ customer.first_name }}"`),
/// or as a map with the text per language and options:
///
/// ```yaml
/// say:
///   en: "This call may be recorded."
///   zh: "本次通话可能会被录音。"
///   barge_in: false
/// ```
/// or a recording: `{ wav: prompts/legal-en.wav, barge_in: false }`.
#[derive(Debug, Clone, PartialEq, Default, serde::Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("description" = "Text to speak (with {{ }} templates) or a WAV to play."))]
pub struct Prompt {
    /// Text for every language: the plain-string form of a prompt.
    #[serde(skip)]
    pub text: Option<String>,
    /// English text.
    #[serde(default)]
    pub en: Option<String>,
    /// Chinese text.
    #[serde(default)]
    pub zh: Option<String>,
    /// A WAV file to play instead of speaking (path relative to the script);
    /// `en`/`zh` then only label it in the transcript.
    #[serde(default)]
    pub wav: Option<ByLang<String>>,
    /// May the caller interrupt this prompt (`true`, `false` or
    /// `{min_speech: 300ms}`)? Defaults to the question's, then
    /// `defaults.barge_in`. Set `false` for text that must be heard in full
    /// (legal notices).
    #[serde(default)]
    pub barge_in: Option<super::BargeIn>,
}

impl Prompt {
    pub fn text(s: impl Into<String>) -> Prompt {
        Prompt {
            text: Some(s.into()),
            ..Prompt::default()
        }
    }

    /// The text to speak in `lang`, if the prompt has one.
    pub fn text_for(&self, lang: Lang) -> Option<&str> {
        let per_lang = match lang {
            Lang::En => self.en.as_deref(),
            Lang::Zh => self.zh.as_deref(),
        };
        per_lang.or(self.text.as_deref())
    }

    /// Every piece of text in the prompt, with the language it is for
    /// (`None`: all languages).
    pub fn texts(&self) -> Vec<(Option<Lang>, &str)> {
        let mut out = Vec::new();
        if let Some(t) = &self.text {
            out.push((None, t.as_str()));
        }
        if let Some(t) = &self.en {
            out.push((Some(Lang::En), t.as_str()));
        }
        if let Some(t) = &self.zh {
            out.push((Some(Lang::Zh), t.as_str()));
        }
        out
    }
}

impl<'de> Deserialize<'de> for PromptSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = PromptSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("prompt text, or a map with en/zh/wav/barge_in")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<PromptSpec, E> {
                Ok(PromptSpec(Prompt::text(s)))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<PromptSpec, A::Error> {
                Prompt::deserialize(MapAccessDeserializer::new(map)).map(PromptSpec)
            }
        }
        d.deserialize_any(V)
    }
}

/// A [`Prompt`] as written in YAML: text or a map. (A separate type so the
/// map form can derive its fields while the text form stays a string.)
#[derive(Debug, Clone, PartialEq)]
pub struct PromptSpec(pub Prompt);

impl JsonSchema for PromptSpec {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Prompt".into()
    }
    fn json_schema(g: &mut SchemaGenerator) -> Schema {
        let map = g.subschema_for::<Prompt>();
        json_schema!({
            "anyOf": [
                { "type": "string", "description": "Text for every language; may use {{ }} templates." },
                map
            ]
        })
    }
}

/// One prompt or a list of prompts, spoken in order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Say(pub Vec<Prompt>);

impl Say {
    pub fn prompts(&self) -> &[Prompt] {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Say {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Say;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a prompt (text or map) or a list of prompts")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Say, E> {
                Ok(Say(vec![Prompt::text(s)]))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Say, A::Error> {
                Prompt::deserialize(MapAccessDeserializer::new(map)).map(|p| Say(vec![p]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Say, A::Error> {
                let mut out = Vec::new();
                while let Some(PromptSpec(p)) = seq.next_element()? {
                    out.push(p);
                }
                Ok(Say(out))
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for Say {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Say".into()
    }
    fn json_schema(g: &mut SchemaGenerator) -> Schema {
        let one = g.subschema_for::<PromptSpec>();
        json_schema!({
            "description": "One prompt or a list of prompts, spoken in order.",
            "anyOf": [ one, { "type": "array", "items": one } ]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn say_takes_text_map_or_list() {
        let s: Say = serde_saphyr::from_str("hello").unwrap();
        assert_eq!(s.0[0].text_for(Lang::Zh), Some("hello"));
        let s: Say = serde_saphyr::from_str("{en: hi, zh: 你好, barge_in: false}").unwrap();
        assert_eq!(s.0[0].text_for(Lang::Zh), Some("你好"));
        assert_eq!(s.0[0].barge_in.map(|b| b.allowed), Some(false));
        let s: Say = serde_saphyr::from_str("- one\n- {wav: a.wav}\n").unwrap();
        assert_eq!(s.0.len(), 2);
        assert_eq!(s.0[1].wav, Some(ByLang::All("a.wav".into())));
    }

    #[test]
    fn prompt_rejects_unknown_language() {
        let e = serde_saphyr::from_str::<Say>("{en: hi, fr: salut}").unwrap_err();
        assert!(e.to_string().contains("fr"), "{e}");
    }

    #[test]
    fn by_lang_reads_both_forms() {
        let v: ByLang<String> = serde_saphyr::from_str("en-us").unwrap();
        assert_eq!(v.get(Lang::Zh).map(String::as_str), Some("en-us"));
        let v: ByLang<String> = serde_saphyr::from_str("{en: en-us, zh: cmn}").unwrap();
        assert_eq!(v.get(Lang::Zh).map(String::as_str), Some("cmn"));
        let p: Phrases = serde_saphyr::from_str("[a, b]").unwrap();
        assert_eq!(p.get(Lang::En).map(Vec::len), Some(2));
        let p: Phrases = serde_saphyr::from_str("{zh: [好]}").unwrap();
        assert_eq!(p.get(Lang::En), None);
    }
}
