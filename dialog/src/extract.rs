//! Turning what the caller said (or keyed) into a slot value: digit strings,
//! numbers, yes/no, enum values, dates and free text, in English and
//! Chinese. Digits, numbers, yes/no and dates are read by
//! `voxbridge-entities`, the workspace's one entity reader (the engine's
//! entities come from it too, so a slot and an entity agree); enum values
//! and the text helpers of the intent matcher live here.

use voxbridge_entities::Answer;

use crate::date::Date;
use crate::format::{Lang, Phrases};

/// Lower-case, punctuation to spaces, spaces collapsed.
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() || c == '\'' {
            out.push(c);
        } else {
            out.push(' ');
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Is `c` written without spaces between words (Chinese, Japanese)?
pub fn is_cjk(c: char) -> bool {
    matches!(c as u32, 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x3040..=0x30FF)
}

/// Words: runs of letters/digits, but each CJK character on its own.
pub fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for c in normalize(text).chars() {
        if is_cjk(c) {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            out.push(c.to_string());
        } else if c == ' ' {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
        } else {
            cur.push(c);
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The longest run of digits the caller said or typed: "my order is one
/// oh oh two three four" → "100234"; "订单号幺零零二三四" → "100234".
pub fn digit_string(text: &str) -> Option<String> {
    voxbridge_entities::digits(text)
}

/// The first number said: "23", "2.5", "twenty three", "a hundred and
/// five", "five five" (55), "二十三", "一百零五", "三百五" (350), "两千".
pub fn number(text: &str) -> Option<f64> {
    voxbridge_entities::number(text)
}

/// Yes or no, from the words themselves or else a recognised intent. An
/// unsure answer ("not sure", "不知道") is neither, whatever the intent.
pub fn yes_no(text: &str, intent: Option<&str>) -> Option<bool> {
    // Words first: "not interested" must stay a no even if a classifier
    // matched it to an example like "interested".
    match voxbridge_entities::answer(text) {
        Some(Answer::Yes) => return Some(true),
        Some(Answer::No) => return Some(false),
        Some(Answer::Unsure) => return None,
        None => {}
    }
    match intent {
        Some("yes" | "affirm" | "confirm") => Some(true),
        Some("no" | "deny" | "reject") => Some(false),
        _ => None,
    }
}

/// The enum value whose phrase (or name) appears in the text; the longest
/// match wins so "electric kettle" beats "kettle".
pub fn enum_value<'a>(
    text: &str,
    values: impl IntoIterator<Item = (&'a String, &'a Phrases)>,
    lang: Lang,
) -> Option<String> {
    let norm = format!(" {} ", normalize(text));
    let mut best: Option<(usize, String)> = None;
    for (name, phrases) in values {
        let mut candidates: Vec<String> = vec![name.replace('_', " ")];
        if let Some(list) = phrases.get(lang) {
            candidates.extend(list.iter().cloned());
        }
        for c in candidates {
            let c = normalize(&c);
            if c.is_empty() {
                continue;
            }
            let hit = if c.chars().any(is_cjk) {
                norm.contains(&c)
            } else {
                norm.contains(&format!(" {c} "))
            };
            if hit && best.as_ref().is_none_or(|(len, _)| c.len() > *len) {
                best = Some((c.len(), name.clone()));
            }
        }
    }
    best.map(|(_, n)| n)
}

/// A date: ISO (`2026-12-01`) anywhere in the text, or relative to
/// `today` ("today", "tomorrow", "Monday", "next Friday", "December 3",
/// "明天", "后天", "周一", "下周三", "12月3日"). Relative forms need `today`.
pub fn date(text: &str, today: Option<Date>) -> Option<Date> {
    match today {
        Some(today) => voxbridge_entities::date(text, today),
        None => voxbridge_entities::iso_date(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use indexmap::IndexMap;

    use crate::format::ByLang;

    #[test]
    fn digit_strings_from_words_and_keys() {
        assert_eq!(
            digit_string("one oh oh two three four").as_deref(),
            Some("100234")
        );
        assert_eq!(digit_string("it's 100 234").as_deref(), Some("100234"));
        assert_eq!(digit_string("double five six").as_deref(), Some("556"));
        assert_eq!(
            digit_string("订单号是幺零零二三四").as_deref(),
            Some("100234")
        );
        assert_eq!(
            digit_string("I ordered two kettles, order 12345").as_deref(),
            Some("12345")
        );
        assert_eq!(digit_string("no idea"), None);
    }

    #[test]
    fn numbers_in_words() {
        assert_eq!(number("twenty three"), Some(23.0));
        assert_eq!(number("a hundred and five"), Some(105.0));
        assert_eq!(number("two thousand and twenty six"), Some(2026.0));
        assert_eq!(number("about 2.5 kilos"), Some(2.5));
        assert_eq!(number("二十三"), Some(23.0));
        assert_eq!(number("一百零五"), Some(105.0));
        assert_eq!(number("两千"), Some(2000.0));
        assert_eq!(number("三万五千"), Some(35000.0));
        assert_eq!(number("十二个"), Some(12.0));
        assert_eq!(number("nothing"), None);
        // Where this module's own reader (before voxbridge-entities) got
        // them wrong: 305, 10002, 10 and 99.
        assert_eq!(number("三百五"), Some(350.0));
        assert_eq!(number("一万二"), Some(12000.0));
        assert_eq!(number("five five"), Some(55.0));
        assert_eq!(number("nineteen eighty"), Some(1980.0));
    }

    #[test]
    fn yes_and_no() {
        assert_eq!(yes_no("Yes please", None), Some(true));
        assert_eq!(yes_no("no thanks", None), Some(false));
        assert_eq!(yes_no("that's not right", None), Some(false));
        assert_eq!(yes_no("sure", None), Some(true));
        assert_eq!(yes_no("是的", None), Some(true));
        assert_eq!(yes_no("不是", None), Some(false));
        assert_eq!(yes_no("不用了", None), Some(false));
        assert_eq!(yes_no("没问题", None), Some(true));
        assert_eq!(yes_no("whatever", Some("affirm")), Some(true));
        assert_eq!(yes_no("not interested", Some("yes")), Some(false));
        assert_eq!(yes_no("还感兴趣", None), Some(true));
        assert_eq!(yes_no("不感兴趣", None), Some(false));
        assert_eq!(yes_no("banana", None), None);
        // Unsure is not a no, and no intent makes it one.
        assert_eq!(yes_no("not sure", None), None);
        assert_eq!(yes_no("I'm not sure", Some("no")), None);
        assert_eq!(yes_no("不知道", Some("yes")), None);
    }

    #[test]
    fn enum_values_prefer_longer_phrases() {
        let mut values: IndexMap<String, Phrases> = IndexMap::new();
        values.insert("kettle".into(), ByLang::All(vec!["kettle".into()]));
        values.insert(
            "electric_kettle".into(),
            ByLang::All(vec!["electric kettle".into()]),
        );
        let mut zh = IndexMap::new();
        zh.insert(Lang::Zh, vec!["搅拌机".to_string()]);
        values.insert("blender".into(), ByLang::Each(zh));
        assert_eq!(
            enum_value("the electric kettle please", &values, Lang::En).as_deref(),
            Some("electric_kettle")
        );
        assert_eq!(
            enum_value("a kettle", &values, Lang::En).as_deref(),
            Some("kettle")
        );
        assert_eq!(
            enum_value("我想问搅拌机", &values, Lang::Zh).as_deref(),
            Some("blender")
        );
        assert_eq!(enum_value("kettles", &values, Lang::En), None);
    }

    #[test]
    fn dates_relative_to_today() {
        let today = Date::new(2026, 11, 21); // Saturday
        let d = |s: &str| date(s, today).map(|d| d.to_string());
        assert_eq!(d("tomorrow").as_deref(), Some("2026-11-22"));
        assert_eq!(d("the day after tomorrow").as_deref(), Some("2026-11-23"));
        assert_eq!(d("on Monday").as_deref(), Some("2026-11-23"));
        assert_eq!(d("Saturday").as_deref(), Some("2026-11-28"));
        assert_eq!(d("December 3rd").as_deref(), Some("2026-12-03"));
        assert_eq!(d("3 jan").as_deref(), Some("2027-01-03"));
        assert_eq!(d("2026-12-24 please").as_deref(), Some("2026-12-24"));
        assert_eq!(d("明天").as_deref(), Some("2026-11-22"));
        assert_eq!(d("后天下午").as_deref(), Some("2026-11-23"));
        assert_eq!(d("周一").as_deref(), Some("2026-11-23"));
        assert_eq!(d("下周三").as_deref(), Some("2026-11-25"));
        assert_eq!(d("12月3日").as_deref(), Some("2026-12-03"));
        assert_eq!(d("十二月三号").as_deref(), Some("2026-12-03"));
        assert_eq!(d("whenever"), None);
        assert_eq!(date("tomorrow", None), None);
        assert_eq!(
            date("2026-12-24", None).map(|d| d.to_string()).as_deref(),
            Some("2026-12-24")
        );
    }
}
