//! Turning what the caller said (or keyed) into a slot value: digit strings,
//! numbers, yes/no, enum values, dates and free text, in English and
//! Chinese. Speech recognisers write numbers as words ("one two three",
//! "二十三") as often as digits, so both are read.

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

const EN_DIGITS: [(&str, char); 12] = [
    ("zero", '0'),
    ("oh", '0'),
    ("o", '0'),
    ("one", '1'),
    ("two", '2'),
    ("three", '3'),
    ("four", '4'),
    ("five", '5'),
    ("six", '6'),
    ("seven", '7'),
    ("eight", '8'),
    ("nine", '9'),
];

fn zh_digit(c: char) -> Option<u32> {
    Some(match c {
        '零' | '〇' | '洞' => 0,
        '一' | '幺' | '壹' => 1,
        '二' | '两' | '贰' => 2,
        '三' | '叁' => 3,
        '四' | '肆' => 4,
        '五' | '伍' => 5,
        '六' | '陆' => 6,
        '七' | '柒' => 7,
        '八' | '捌' => 8,
        '九' | '玖' => 9,
        _ => return None,
    })
}

/// The longest run of digits the caller said or typed: "my order is one
/// oh oh two three four" → "100234"; "订单号幺零零二三四" → "100234".
pub fn digit_string(text: &str) -> Option<String> {
    let mut best = String::new();
    let mut cur = String::new();
    let mut repeat = 1;
    let flush = |cur: &mut String, best: &mut String| {
        if cur.len() > best.len() {
            *best = cur.clone();
        }
        cur.clear();
    };
    for tok in tokens(text) {
        let digits: Option<String> = if tok.chars().all(|c| c.is_ascii_digit()) {
            Some(tok.clone())
        } else if let Some((_, d)) = EN_DIGITS.iter().find(|(w, _)| *w == tok) {
            Some(d.to_string())
        } else {
            let mut chars = tok.chars();
            match (chars.next().and_then(zh_digit), chars.next()) {
                (Some(d), None) => Some(d.to_string()),
                _ => None,
            }
        };
        match (digits, tok.as_str()) {
            (Some(d), _) => {
                for _ in 0..repeat {
                    cur.push_str(&d);
                }
                repeat = 1;
            }
            (None, "double") => repeat = 2,
            (None, "triple") => repeat = 3,
            // "and" / "dash" / "是" between digit groups does not end the run.
            (None, "dash" | "hyphen") => {}
            (None, _) => {
                repeat = 1;
                flush(&mut cur, &mut best);
            }
        }
    }
    flush(&mut cur, &mut best);
    (!best.is_empty()).then_some(best)
}

const EN_UNITS: [&str; 20] = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
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
const EN_TENS: [&str; 10] = [
    "", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
];

/// The first number said: "23", "2.5", "twenty three", "a hundred and
/// five", "二十三", "一百零五", "两千".
pub fn number(text: &str) -> Option<f64> {
    // Digits as written ("2.5" would be split by `tokens`, so read the raw text).
    if let Some(n) = raw_decimal(text) {
        return Some(n);
    }
    let toks = tokens(text);
    if let Some(n) = english_number(&toks) {
        return Some(n);
    }
    chinese_number(text)
}

fn raw_decimal(text: &str) -> Option<f64> {
    let mut start = None;
    let chars: Vec<char> = text.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        if c.is_ascii_digit() || (*c == '.' && start.is_some()) {
            start.get_or_insert(i);
        } else if let Some(s) = start {
            let w: String = chars[s..i].iter().collect();
            if let Ok(n) = w.trim_end_matches('.').parse() {
                return Some(n);
            }
            start = None;
        }
    }
    let w: String = chars[start?..].iter().collect();
    w.trim_end_matches('.').parse().ok()
}

fn english_number(toks: &[String]) -> Option<f64> {
    let mut total = 0u64;
    let mut current = 0u64;
    let mut seen = false;
    for t in toks {
        let t = t.as_str();
        if let Some(u) = EN_UNITS.iter().position(|w| *w == t) {
            current += u as u64;
            seen = true;
        } else if let Some(d) = EN_TENS.iter().position(|w| !w.is_empty() && *w == t) {
            current += 10 * d as u64;
            seen = true;
        } else if t == "hundred" && seen {
            current = current.max(1) * 100;
        } else if t == "hundred" {
            current = 100;
            seen = true;
        } else if t == "thousand" {
            total += current.max(1) * 1000;
            current = 0;
            seen = true;
        } else if t == "and" || (t == "a" && !seen) {
            continue;
        } else if seen {
            break;
        }
    }
    seen.then_some((total + current) as f64)
}

fn chinese_number(text: &str) -> Option<f64> {
    let is_num = |c: char| {
        zh_digit(c).is_some() || matches!(c, '十' | '百' | '千' | '万' | '拾' | '佰' | '仟')
    };
    let chars: Vec<char> = text.chars().collect();
    let start = chars.iter().position(|c| is_num(*c))?;
    let mut total = 0u64;
    let mut section = 0u64;
    let mut num = 0u64;
    for &c in chars[start..].iter().take_while(|c| is_num(**c)) {
        if let Some(d) = zh_digit(c) {
            num = u64::from(d);
            continue;
        }
        match c {
            '十' | '拾' => section += num.max(1) * 10,
            '百' | '佰' => section += num * 100,
            '千' | '仟' => section += num * 1000,
            '万' => {
                total += (section + num) * 10_000;
                section = 0;
            }
            _ => {}
        }
        num = 0;
    }
    Some((total + section + num) as f64)
}

/// Yes or no, from a recognised intent or the words themselves.
pub fn yes_no(text: &str, intent: Option<&str>) -> Option<bool> {
    // Words first: "not interested" must stay a no even if a classifier
    // matched it to an example like "interested".
    if let Some(b) = yes_no_words(text) {
        return Some(b);
    }
    match intent {
        Some("yes" | "affirm" | "confirm") => Some(true),
        Some("no" | "deny" | "reject") => Some(false),
        _ => None,
    }
}

fn yes_no_words(text: &str) -> Option<bool> {
    let norm = normalize(text);
    // Chinese: "没问题" (no problem) is a yes, though it starts with 没.
    for p in ["没问题", "当然"] {
        if norm.contains(p) {
            return Some(true);
        }
    }
    for p in ["不", "没", "别", "否"] {
        if norm.contains(p) {
            return Some(false);
        }
    }
    for p in [
        "是",
        "对",
        "好",
        "要",
        "可以",
        "嗯",
        "行",
        "需要",
        "愿意",
        "感兴趣",
        "有兴趣",
    ] {
        if norm.contains(p) {
            return Some(true);
        }
    }
    let words: Vec<&str> = norm.split(' ').collect();
    if norm.contains("no problem") || norm.contains("of course") {
        return Some(true);
    }
    const NO: [&str; 11] = [
        "no",
        "nope",
        "nah",
        "not",
        "don't",
        "dont",
        "negative",
        "never",
        "wrong",
        "incorrect",
        "no thanks",
    ];
    const YES: [&str; 17] = [
        "yes",
        "yeah",
        "yep",
        "yup",
        "sure",
        "correct",
        "right",
        "ok",
        "okay",
        "absolutely",
        "definitely",
        "please",
        "affirmative",
        "certainly",
        "yea",
        "interested",
        "speaking",
    ];
    if words.iter().any(|w| NO.contains(w)) {
        return Some(false);
    }
    if words.iter().any(|w| YES.contains(w)) {
        return Some(true);
    }
    None
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

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];
const WEEKDAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// A date: ISO (`2026-12-01`), or relative to `today` ("today", "tomorrow",
/// "Monday", "next Friday", "December 3", "明天", "后天", "周一", "下周三",
/// "12月3日"). Relative forms need `today`.
pub fn date(text: &str, today: Option<Date>) -> Option<Date> {
    if let Some(d) = iso_in(text) {
        return Some(d);
    }
    let today = today?;
    let norm = normalize(text);
    let words: Vec<&str> = norm.split(' ').collect();
    let has = |w: &str| words.contains(&w);
    if norm.contains("day after tomorrow") || norm.contains("大后天") {
        if norm.contains("大后天") {
            return today.add_days(3);
        }
        return today.add_days(2);
    }
    if norm.contains("后天") {
        return today.add_days(2);
    }
    if has("tomorrow") || norm.contains("明天") || norm.contains("明日") {
        return today.add_days(1);
    }
    if has("today") || norm.contains("今天") || norm.contains("今日") {
        return Some(today);
    }
    // Weekdays: the next such day after today; "next"/"下" means next week's.
    let wd = today.weekday() as i64;
    let zh_days = ['一', '二', '三', '四', '五', '六', '日', '天'];
    for p in ["下周", "下星期", "下礼拜", "周", "星期", "礼拜"] {
        if let Some(i) = norm.find(p) {
            let after = norm[i + p.len()..].chars().next();
            if let Some(idx) = after.and_then(|c| zh_days.iter().position(|d| *d == c)) {
                let target = idx.min(6) as i64;
                if p.starts_with('下') {
                    return today.add_days(7 - wd + target);
                }
                let ahead = (target - wd).rem_euclid(7);
                return today.add_days(if ahead == 0 { 7 } else { ahead });
            }
        }
    }
    for (i, name) in WEEKDAYS.iter().enumerate() {
        if has(name) {
            let ahead = (i as i64 - wd).rem_euclid(7);
            let ahead = if ahead == 0 { 7 } else { ahead };
            let next_week = words.windows(2).any(|w| w[0] == "next" && w[1] == *name);
            // "next Friday" said on a Monday means the Friday of next week.
            let extra = if next_week && ahead < 7 - wd { 7 } else { 0 };
            return today.add_days(ahead + extra);
        }
    }
    // Month and day.
    let (month, day) = month_day(&norm, &words)?;
    let this_year = Date::new(today.year(), month, day);
    match this_year {
        Some(d) if d >= today => Some(d),
        _ => Date::new(today.year() + 1, month, day),
    }
}

fn month_day(norm: &str, words: &[&str]) -> Option<(u32, u32)> {
    // 12月3日 / 十二月三号
    if let Some(i) = norm.find('月') {
        let before: String = norm[..i]
            .chars()
            .rev()
            .take_while(|c| c.is_ascii_digit() || zh_number_char(*c))
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let after: String = norm[i + '月'.len_utf8()..]
            .chars()
            .take_while(|c| c.is_ascii_digit() || zh_number_char(*c))
            .collect();
        let m = small_number(&before)?;
        let d = small_number(&after)?;
        return Some((m, d));
    }
    for (i, w) in words.iter().enumerate() {
        let Some(m) = MONTHS
            .iter()
            .position(|name| *w == *name || (w.len() >= 3 && name.starts_with(*w)))
        else {
            continue;
        };
        let near = [i.checked_sub(1), Some(i + 1), i.checked_sub(2), Some(i + 2)];
        for j in near.into_iter().flatten() {
            if let Some(d) = words.get(j).and_then(|w| ordinal(w)) {
                return Some((m as u32 + 1, d));
            }
        }
    }
    None
}

fn zh_number_char(c: char) -> bool {
    zh_digit(c).is_some() || c == '十'
}

fn small_number(s: &str) -> Option<u32> {
    if s.is_empty() {
        return None;
    }
    if let Ok(n) = s.parse() {
        return Some(n);
    }
    chinese_number(s).map(|n| n as u32)
}

fn ordinal(w: &str) -> Option<u32> {
    let digits: String = w.chars().take_while(|c| c.is_ascii_digit()).collect();
    if !digits.is_empty() {
        let rest = &w[digits.len()..];
        if matches!(rest, "" | "st" | "nd" | "rd" | "th") {
            return digits.parse().ok().filter(|d| (1..=31).contains(d));
        }
        return None;
    }
    const ORD: [&str; 31] = [
        "first",
        "second",
        "third",
        "fourth",
        "fifth",
        "sixth",
        "seventh",
        "eighth",
        "ninth",
        "tenth",
        "eleventh",
        "twelfth",
        "thirteenth",
        "fourteenth",
        "fifteenth",
        "sixteenth",
        "seventeenth",
        "eighteenth",
        "nineteenth",
        "twentieth",
        "twenty-first",
        "twenty-second",
        "twenty-third",
        "twenty-fourth",
        "twenty-fifth",
        "twenty-sixth",
        "twenty-seventh",
        "twenty-eighth",
        "twenty-ninth",
        "thirtieth",
        "thirty-first",
    ];
    ORD.iter().position(|o| *o == w).map(|i| i as u32 + 1)
}

fn iso_in(text: &str) -> Option<Date> {
    let chars: Vec<char> = text.chars().collect();
    for i in 0..chars.len() {
        if i > 0 && chars[i - 1].is_ascii_digit() {
            continue;
        }
        let rest: String = chars[i..chars.len().min(i + 10)].iter().collect();
        if rest.len() >= 8 && rest.chars().next().is_some_and(|c| c.is_ascii_digit()) {
            let candidate: String = rest
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '-')
                .collect();
            if let Some(d) = Date::parse(&candidate) {
                return Some(d);
            }
        }
    }
    None
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
