//! Dates said by a caller, resolved against today: ISO ("2026-12-03"),
//! "today", "tomorrow", "the day after tomorrow", "in three days",
//! "Monday" (the next one after today), "this Friday" (this week's),
//! "next Monday" (next week's), "March 5th", "the 5th of March", "the 5th";
//! "今天", "明天", "后天", "大后天", "三天后", "周五", "下周一", "这周五",
//! "3月5日", "三月五号", "五号".

use crate::date::Date;
use crate::numbers;
use crate::text;

const WEEKDAYS: [(&str, u32); 17] = [
    ("monday", 0),
    ("mon", 0),
    ("tuesday", 1),
    ("tue", 1),
    ("tues", 1),
    ("wednesday", 2),
    ("wed", 2),
    ("thursday", 3),
    ("thu", 3),
    ("thur", 3),
    ("thurs", 3),
    ("friday", 4),
    ("fri", 4),
    ("saturday", 5),
    ("sat", 5),
    ("sunday", 6),
    ("sun", 6),
];

const MONTHS: [(&str, u32); 21] = [
    ("january", 1),
    ("jan", 1),
    ("february", 2),
    ("feb", 2),
    ("march", 3),
    ("april", 4),
    ("apr", 4),
    ("may", 5),
    ("june", 6),
    ("july", 7),
    ("august", 8),
    ("aug", 8),
    ("september", 9),
    ("sep", 9),
    ("sept", 9),
    ("october", 10),
    ("oct", 10),
    ("november", 11),
    ("nov", 11),
    ("december", 12),
    ("dec", 12),
];

const ORDINALS: [(&str, u32); 20] = [
    ("first", 1),
    ("second", 2),
    ("third", 3),
    ("fourth", 4),
    ("fifth", 5),
    ("sixth", 6),
    ("seventh", 7),
    ("eighth", 8),
    ("ninth", 9),
    ("tenth", 10),
    ("eleventh", 11),
    ("twelfth", 12),
    ("thirteenth", 13),
    ("fourteenth", 14),
    ("fifteenth", 15),
    ("sixteenth", 16),
    ("seventeenth", 17),
    ("eighteenth", 18),
    ("nineteenth", 19),
    ("twentieth", 20),
];

fn weekday(w: &str) -> Option<u32> {
    WEEKDAYS.iter().find(|(n, _)| *n == w).map(|(_, d)| *d)
}

fn month(w: &str) -> Option<u32> {
    MONTHS.iter().find(|(n, _)| *n == w).map(|(_, m)| *m)
}

/// A day of the month at `words[i..]`: "5", "5th", "fifth", "twenty first",
/// "thirtieth", "thirty first". Returns the day and the words used.
fn day_at(words: &[&str], i: usize) -> Option<(u32, usize)> {
    let w = *words.get(i)?;
    let digits: String = w.chars().take_while(char::is_ascii_digit).collect();
    if !digits.is_empty() {
        let suffix = &w[digits.len()..];
        if matches!(suffix, "" | "st" | "nd" | "rd" | "th") {
            let d: u32 = digits.parse().ok()?;
            return (1..=31).contains(&d).then_some((d, 1));
        }
        return None;
    }
    if let Some((_, d)) = ORDINALS.iter().find(|(n, _)| *n == w) {
        return Some((*d, 1));
    }
    let tens = match w {
        "twenty" => 20,
        "thirty" => 30,
        "twentieth" => return Some((20, 1)),
        "thirtieth" => return Some((30, 1)),
        _ => return None,
    };
    let next = words.get(i + 1).copied().unwrap_or("");
    if let Some((_, d)) = ORDINALS.iter().find(|(n, _)| *n == next) {
        if *d <= 9 && tens + d <= 31 {
            return Some((tens + d, 2));
        }
    }
    None
}

/// This year's `month`/`day`, or next year's when it has passed.
fn upcoming(today: Date, month: u32, day: u32, year: Option<i32>) -> Option<Date> {
    if let Some(y) = year {
        return Date::new(y, month, day);
    }
    match Date::new(today.year(), month, day) {
        Some(d) if d >= today => Some(d),
        _ => Date::new(today.year() + 1, month, day),
    }
}

/// This month's `day`, or next month's when it has passed.
fn upcoming_day(today: Date, day: u32) -> Option<Date> {
    match Date::new(today.year(), today.month(), day) {
        Some(d) if d >= today => Some(d),
        _ => {
            let (y, m) = if today.month() == 12 {
                (today.year() + 1, 1)
            } else {
                (today.year(), today.month() + 1)
            };
            Date::new(y, m, day)
        }
    }
}

fn year_at(words: &[&str], i: usize) -> Option<i32> {
    let w = *words.get(i)?;
    (w.len() == 4 && w.bytes().all(|b| b.is_ascii_digit()))
        .then(|| w.parse().ok())
        .flatten()
}

/// Days from `today` to weekday `wd`: `next_week` = in the week after this
/// one (weeks start on Monday), `this_week` = in this week, else the next
/// such day after today.
fn to_weekday(today: Date, wd: u32, next_week: bool, this_week: bool) -> Option<Date> {
    let t = i64::from(today.weekday());
    let wd = i64::from(wd);
    let days = if next_week {
        7 - t + wd
    } else if this_week {
        wd - t
    } else {
        match (wd - t).rem_euclid(7) {
            0 => 7,
            a => a,
        }
    };
    today.add_days(days)
}

fn english(words: &[&str], today: Date) -> Option<Date> {
    let has = |w: &str| words.contains(&w);
    let has_seq = |seq: &[&str]| words.windows(seq.len()).any(|w| w == seq);
    if has_seq(&["day", "after", "tomorrow"]) {
        return today.add_days(2);
    }
    if has_seq(&["day", "before", "yesterday"]) {
        return today.add_days(-2);
    }
    if has("tomorrow") {
        return today.add_days(1);
    }
    if has("yesterday") {
        return today.add_days(-1);
    }
    if has("today") || has("tonight") {
        return Some(today);
    }
    // "in three days", "3 days from now", "in a week", "two weeks later".
    for (i, w) in words.iter().enumerate() {
        let unit = match *w {
            "day" | "days" => 1,
            "week" | "weeks" => 7,
            _ => continue,
        };
        let mut start = i;
        while start > 0 && (numbers::number(words[start - 1]).is_some() || words[start - 1] == "a")
        {
            start -= 1;
        }
        if start == i {
            continue;
        }
        let n = match words[start..i].join(" ").as_str() {
            "a" => Some(1.0),
            phrase => numbers::number(phrase),
        };
        // Whole days or weeks only ("in 2.5 days" is no date).
        let n = n.filter(|n| n.fract() == 0.0 && (0.0..=1000.0).contains(n));
        let later = (start > 0 && words[start - 1] == "in")
            || matches!(words.get(i + 1), Some(&"from" | &"later"));
        if let (Some(n), true) = (n, later) {
            return today.add_days(n as i64 * unit);
        }
    }
    for (i, w) in words.iter().enumerate() {
        if let Some(wd) = weekday(w) {
            let prev = if i > 0 { words[i - 1] } else { "" };
            let next_week = prev == "next" || (prev == "week" && i >= 2 && words[i - 2] == "next");
            let this_week = prev == "this";
            return to_weekday(today, wd, next_week, this_week);
        }
    }
    if has_seq(&["next", "week"]) {
        return today.add_days(7);
    }
    // "march 5th [2027]", "5th of march", "twenty first march".
    for (i, w) in words.iter().enumerate() {
        let Some(m) = month(w) else { continue };
        // "may" is also a verb: a month counts only next to a day.
        if let Some((d, used)) = day_at(words, i + 1) {
            return upcoming(today, m, d, year_at(words, i + 1 + used));
        }
        let end = if i >= 1 && words[i - 1] == "of" {
            i - 1
        } else {
            i
        };
        for used in [2, 1] {
            if end >= used {
                if let Some((d, u)) = day_at(words, end - used) {
                    if u == used {
                        return upcoming(today, m, d, year_at(words, i + 1));
                    }
                }
            }
        }
    }
    // "the 5th", "on the twenty first".
    for (i, w) in words.iter().enumerate() {
        if *w == "the" {
            if let Some((d, _)) = day_at(words, i + 1) {
                let ordinal_form = !words[i + 1].bytes().all(|b| b.is_ascii_digit());
                if ordinal_form {
                    return upcoming_day(today, d);
                }
            }
        }
    }
    None
}

fn zh_weekday(c: char) -> Option<u32> {
    Some(match c {
        '一' | '1' => 0,
        '二' | '2' => 1,
        '三' | '3' => 2,
        '四' | '4' => 3,
        '五' | '5' => 4,
        '六' | '6' => 5,
        '日' | '天' | '七' | '7' => 6,
        _ => return None,
    })
}

/// A number at the start of `s` (Chinese numerals or ASCII digits) and the
/// bytes it used.
fn leading_number(s: &str) -> Option<(u64, usize)> {
    let end = s
        .char_indices()
        .find(|(_, c)| !(numbers::is_zh_numeral(*c) || c.is_ascii_digit()))
        .map_or(s.len(), |(i, _)| i);
    if end == 0 {
        return None;
    }
    let part = &s[..end];
    let v = if part.bytes().all(|b| b.is_ascii_digit()) {
        part.parse().ok()?
    } else {
        numbers::zh_value(part)?
    };
    Some((v, end))
}

/// A number ending just before byte `end` of `s`.
fn trailing_number(s: &str, end: usize) -> Option<u64> {
    let head = &s[..end];
    let start = head
        .char_indices()
        .rev()
        .take_while(|(_, c)| numbers::is_zh_numeral(*c) || c.is_ascii_digit())
        .last()
        .map(|(i, _)| i)?;
    leading_number(&head[start..]).map(|(v, _)| v)
}

fn chinese(s: &str, today: Date) -> Option<Date> {
    // Longest words first: 大后天 before 后天.
    for (w, d) in [
        ("大后天", 3),
        ("后天", 2),
        ("明天", 1),
        ("明日", 1),
        ("今天", 0),
        ("今日", 0),
        ("今晚", 0),
        ("前天", -2),
        ("昨天", -1),
    ] {
        if s.contains(w) {
            return today.add_days(d);
        }
    }
    // "三天后", "3天以后", "两周后", "一个星期后".
    for (unit, days) in [
        ("天", 1i64),
        ("周", 7),
        ("个星期", 7),
        ("星期", 7),
        ("个礼拜", 7),
        ("礼拜", 7),
    ] {
        let mut from = 0;
        while let Some(p) = s[from..].find(unit) {
            let at = from + p;
            let after = &s[at + unit.len()..];
            if after.starts_with('后') || after.starts_with("以后") || after.starts_with("之后")
            {
                if let Some(n @ 0..=1000) = trailing_number(s, at) {
                    return today.add_days(n as i64 * days);
                }
            }
            from = at + unit.len();
        }
    }
    // Weekdays: 下周一, 下个星期三, 下礼拜五, 这周五, 本周日, 周五, 星期天.
    for prefix in ["周", "星期", "礼拜"] {
        let mut from = 0;
        while let Some(p) = s[from..].find(prefix) {
            let at = from + p;
            let after = &s[at + prefix.len()..];
            if let Some(wd) = after.chars().next().and_then(zh_weekday) {
                let head = &s[..at];
                let next_week = head.ends_with('下') || head.ends_with("下个");
                let this_week =
                    head.ends_with('这') || head.ends_with('本') || head.ends_with("这个");
                let two_weeks = head.ends_with("下下") || head.ends_with("下下个");
                let d = to_weekday(today, wd, next_week || two_weeks, this_week)?;
                return if two_weeks { d.add_days(7) } else { Some(d) };
            }
            from = at + prefix.len();
        }
    }
    if s.contains("下周") || s.contains("下个星期") || s.contains("下星期") {
        return today.add_days(7);
    }
    // "2027年3月5日", "3月5号", "三月五日".
    if let Some(p) = s.find('月') {
        let day = leading_number(&s[p + '月'.len_utf8()..]);
        if let (Some(m), Some((d, _))) = (trailing_number(s, p), day) {
            let year = s[..p]
                .find('年')
                .and_then(|y| trailing_number(s, y))
                .and_then(|y| i32::try_from(y).ok());
            return upcoming(today, u32::try_from(m).ok()?, u32::try_from(d).ok()?, year);
        }
    }
    // "五号", "15日": this month's (or next month's) day.
    for mark in ['号', '日'] {
        if let Some(p) = s.find(mark) {
            if let Some(d) = trailing_number(s, p) {
                return upcoming_day(today, u32::try_from(d).ok()?);
            }
        }
    }
    None
}

/// An ISO date (`2026-12-24`) anywhere in `text` ("2026-12-24 please",
/// "日期2026-12-24。"): the one form that needs no "today".
pub fn iso_date(text: &str) -> Option<Date> {
    let chars: Vec<char> = text.chars().collect();
    for i in 0..chars.len() {
        // Not in the middle of a longer number.
        if i > 0 && chars[i - 1].is_ascii_digit() {
            continue;
        }
        if !chars[i].is_ascii_digit() {
            continue;
        }
        let candidate: String = chars[i..]
            .iter()
            .take(11)
            .take_while(|c| c.is_ascii_digit() || **c == '-')
            .collect();
        if let Some(d) = Date::parse(&candidate) {
            return Some(d);
        }
    }
    None
}

/// The date in `text`, resolved against `today`.
pub fn date(text: &str, today: Date) -> Option<Date> {
    if let Some(d) = iso_date(text) {
        return Some(d);
    }
    let tokens = text::tokens(text);
    let words = text::words(&tokens);
    if let Some(d) = english(&words, today) {
        return Some(d);
    }
    // Digits inside Chinese text ("3月5日") are separate tokens: rebuild the
    // Chinese side with them.
    let mut zh = String::new();
    for t in &tokens {
        match t {
            text::Token::Cjk(s) => zh.push_str(s),
            text::Token::Word(w) if w.bytes().all(|b| b.is_ascii_digit()) => zh.push_str(w),
            text::Token::Word(_) => zh.push(' '),
        }
    }
    chinese(&zh, today)
}
