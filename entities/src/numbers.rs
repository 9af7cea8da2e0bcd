//! Numbers, digit strings and order ids, spoken or typed, in English and
//! Chinese: "five five two one", "double five", "fifty-two",
//! "one hundred and five", "nineteen eighty", "2.5", "五五二一", "二十三",
//! "一万二", "三百五", "A B 1 2 3 4", "ORD-12345".
//!
//! Where readings could differ, the colloquial one wins: "三百五" is 350 and
//! "一万二" 12000 (a digit after the last unit is one place lower, unless
//! 零 says otherwise: "一万零二" is 10002); "five five" is the digit string
//! 55, not 5 + 5; "nineteen eighty" is 1980; "2.5" is two and a half.

use crate::text::{self, Token};

/// English number words: value and kind.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Word {
    /// 0–9 ("oh"/"o" only count next to other digits).
    Unit(u32, bool),
    /// 10–19.
    Teen(u32),
    /// 20, 30 … 90.
    Tens(u32),
    /// hundred, thousand, million, billion.
    Scale(u64),
    /// "double" / "triple": repeat the next digit.
    Repeat(usize),
    /// "and", "a" between number words ("one hundred and five", "a hundred").
    Glue,
}

fn word(w: &str) -> Option<Word> {
    Some(match w {
        "zero" | "nought" => Word::Unit(0, false),
        "oh" | "o" => Word::Unit(0, true),
        "one" => Word::Unit(1, false),
        "two" => Word::Unit(2, false),
        "three" => Word::Unit(3, false),
        "four" => Word::Unit(4, false),
        "five" => Word::Unit(5, false),
        "six" => Word::Unit(6, false),
        "seven" => Word::Unit(7, false),
        "eight" => Word::Unit(8, false),
        "nine" => Word::Unit(9, false),
        "ten" => Word::Teen(10),
        "eleven" => Word::Teen(11),
        "twelve" => Word::Teen(12),
        "thirteen" => Word::Teen(13),
        "fourteen" => Word::Teen(14),
        "fifteen" => Word::Teen(15),
        "sixteen" => Word::Teen(16),
        "seventeen" => Word::Teen(17),
        "eighteen" => Word::Teen(18),
        "nineteen" => Word::Teen(19),
        "twenty" => Word::Tens(20),
        "thirty" => Word::Tens(30),
        "forty" | "fourty" => Word::Tens(40),
        "fifty" => Word::Tens(50),
        "sixty" => Word::Tens(60),
        "seventy" => Word::Tens(70),
        "eighty" => Word::Tens(80),
        "ninety" => Word::Tens(90),
        "hundred" => Word::Scale(100),
        "thousand" => Word::Scale(1_000),
        "million" => Word::Scale(1_000_000),
        "billion" => Word::Scale(1_000_000_000),
        "double" => Word::Repeat(2),
        "triple" => Word::Repeat(3),
        "and" | "a" => Word::Glue,
        _ => return None,
    })
}

/// One element of a spoken or typed number run.
#[derive(Debug, Clone, PartialEq)]
enum Item {
    Word(Word),
    /// Typed digits ("55", "2026").
    Digits(String),
    /// A typed decimal ("2.5"): a number of its own, never part of a run.
    Decimal(String),
}

/// Is `w` a decimal the tokenizer kept whole ("2.5")?
fn is_decimal(w: &str) -> bool {
    w.contains('.') && w.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

/// Maximal runs of number items in English tokens (CJK tokens break runs).
fn english_runs(tokens: &[Token]) -> Vec<Vec<Item>> {
    let mut runs = Vec::new();
    let mut cur: Vec<Item> = Vec::new();
    for t in tokens {
        let item = match t {
            Token::Word(w) if w.bytes().all(|b| b.is_ascii_digit()) => {
                Some(Item::Digits(w.clone()))
            }
            Token::Word(w) if is_decimal(w) => {
                flush_run(&mut cur, &mut runs);
                runs.push(vec![Item::Decimal(w.clone())]);
                continue;
            }
            Token::Word(w) => word(w).map(Item::Word),
            Token::Cjk(_) => None,
        };
        match item {
            Some(i) => cur.push(i),
            None => {
                flush_run(&mut cur, &mut runs);
            }
        }
    }
    flush_run(&mut cur, &mut runs);
    runs
}

fn flush_run(cur: &mut Vec<Item>, runs: &mut Vec<Vec<Item>>) {
    // Glue words and "double" only count inside a run.
    while matches!(cur.last(), Some(Item::Word(Word::Glue | Word::Repeat(_)))) {
        cur.pop();
    }
    while matches!(cur.first(), Some(Item::Word(Word::Glue))) {
        cur.remove(0);
    }
    // A run of nothing but "oh"s is an exclamation, not a zero.
    let real = cur.iter().any(|i| match i {
        Item::Word(Word::Unit(_, oh)) => !oh,
        Item::Word(Word::Glue) => false,
        _ => true,
    });
    if real {
        runs.push(std::mem::take(cur));
    } else {
        cur.clear();
    }
}

/// Value of a run read as one number ("one hundred and five" → 105,
/// "fifty two" → 52). `None` when it is a digit sequence instead
/// ("five five") or empty.
fn run_value(run: &[Item]) -> Option<u64> {
    let mut total: u64 = 0;
    let mut current: u64 = 0;
    let mut last: Option<Word> = None;
    let mut any = false;
    for item in run {
        match item {
            Item::Digits(d) => {
                if last.is_some() || run.len() > 1 {
                    return None;
                }
                return d.parse().ok();
            }
            Item::Decimal(_) => return None,
            Item::Word(w) => {
                match *w {
                    Word::Unit(n, _) => {
                        // A unit right after a unit or teen: a digit string.
                        if matches!(last, Some(Word::Unit(..) | Word::Teen(_))) {
                            return None;
                        }
                        current = current.checked_add(u64::from(n))?;
                    }
                    Word::Teen(n) => {
                        if matches!(last, Some(Word::Unit(..) | Word::Teen(_) | Word::Tens(_))) {
                            return None;
                        }
                        current = current.checked_add(u64::from(n))?;
                    }
                    Word::Tens(n) => {
                        if matches!(last, Some(Word::Unit(..) | Word::Teen(_) | Word::Tens(_))) {
                            return None;
                        }
                        current = current.checked_add(u64::from(n))?;
                    }
                    Word::Scale(s) => {
                        if current == 0 {
                            current = 1;
                        }
                        if s == 100 {
                            current = current.checked_mul(100)?;
                        } else {
                            total = total.checked_add(current.checked_mul(s)?)?;
                            current = 0;
                        }
                    }
                    Word::Repeat(_) => return None,
                    Word::Glue => continue,
                }
                any = true;
                last = Some(*w);
            }
        }
    }
    if any {
        total.checked_add(current)
    } else {
        None
    }
}

/// A run read as a digit string: groups concatenated ("five five two one" →
/// "5521", "fifty two eleven" → "5211", "double five" → "55"); runs with
/// scale words are read as one number.
fn run_digits(run: &[Item]) -> Option<String> {
    if run.iter().any(|i| matches!(i, Item::Word(Word::Scale(_)))) {
        return run_value(run).map(|v| v.to_string());
    }
    let mut out = String::new();
    let mut i = 0;
    while i < run.len() {
        match &run[i] {
            Item::Digits(d) => out.push_str(d),
            // Said as a digit string, "2.5" is the digits 2 and 5.
            Item::Decimal(d) => out.extend(d.chars().filter(char::is_ascii_digit)),
            Item::Word(Word::Unit(n, _)) => out.push(char::from(b'0' + *n as u8)),
            Item::Word(Word::Teen(n)) => out.push_str(&n.to_string()),
            Item::Word(Word::Tens(n)) => {
                if let Some(Item::Word(Word::Unit(u, false))) = run.get(i + 1) {
                    if *u > 0 {
                        out.push_str(&(n + u).to_string());
                        i += 2;
                        continue;
                    }
                }
                out.push_str(&n.to_string());
            }
            Item::Word(Word::Repeat(k)) => {
                let next = match run.get(i + 1) {
                    Some(Item::Word(Word::Unit(n, _))) => char::from(b'0' + *n as u8).to_string(),
                    Some(Item::Digits(d)) if d.len() == 1 => d.clone(),
                    _ => return None,
                };
                out.push_str(&next.repeat(*k));
                i += 2;
                continue;
            }
            Item::Word(Word::Glue) => {}
            Item::Word(Word::Scale(_)) => unreachable!("handled above"),
        }
        i += 1;
    }
    (!out.is_empty()).then_some(out)
}

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

fn zh_unit(c: char) -> Option<u64> {
    Some(match c {
        '十' | '拾' => 10,
        '百' | '佰' => 100,
        '千' | '仟' => 1_000,
        '万' | '萬' => 10_000,
        '亿' | '億' => 100_000_000,
        _ => return None,
    })
}

/// Is `c` part of a Chinese number?
pub(crate) fn is_zh_numeral(c: char) -> bool {
    zh_digit(c).is_some() || zh_unit(c).is_some()
}

/// Maximal runs of Chinese numerals in a CJK token. A lone "一" inside a
/// word ("一下", "一个") is kept: callers decide what a run means.
fn zh_runs(s: &str) -> Vec<String> {
    let mut runs = Vec::new();
    let mut cur = String::new();
    for c in s.chars() {
        if is_zh_numeral(c) {
            cur.push(c);
        } else if !cur.is_empty() {
            runs.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        runs.push(cur);
    }
    runs
}

/// Value of a Chinese numeral ("二十三" 23, "一百零五" 105, "一万二" 12000,
/// "三百五" 350, "五五二一" 5521).
pub(crate) fn zh_value(s: &str) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    if !s.chars().any(|c| zh_unit(c).is_some()) {
        return zh_digits(s)?.parse().ok();
    }
    let mut total: u64 = 0; // 亿 and above
    let mut wan: u64 = 0; // 万 .. 亿
    let mut section: u64 = 0; // below 万
    let mut number: u64 = 0; // the pending digit
    let mut have_number = false;
    let mut last_unit: u64 = 0; // for "三百五" = 350
    let mut zero_seen = false;
    for c in s.chars() {
        if let Some(d) = zh_digit(c) {
            if d == 0 {
                zero_seen = true;
                continue;
            }
            if have_number {
                return None; // "二三十": not a number
            }
            number = u64::from(d);
            have_number = true;
        } else if let Some(u) = zh_unit(c) {
            match u {
                10 | 100 | 1_000 => {
                    let n = if have_number {
                        number
                    } else if u == 10 {
                        1 // "十五" = 15
                    } else {
                        return None;
                    };
                    section = section.checked_add(n.checked_mul(u)?)?;
                    last_unit = u;
                }
                10_000 => {
                    let n = section + if have_number { number } else { 0 };
                    if n == 0 {
                        return None;
                    }
                    wan = wan.checked_add(n.checked_mul(u)?)?;
                    section = 0;
                    last_unit = u;
                }
                _ => {
                    let n = wan.checked_add(section)?.checked_add(if have_number {
                        number
                    } else {
                        0
                    })?;
                    if n == 0 && total == 0 {
                        return None;
                    }
                    total = total.checked_add(n)?.checked_mul(u)?;
                    wan = 0;
                    section = 0;
                    last_unit = u;
                }
            }
            number = 0;
            have_number = false;
            zero_seen = false;
        }
    }
    if have_number {
        // A digit after a unit without 零: one place lower ("一万二" 12000).
        number *= if zero_seen || last_unit < 100 {
            1
        } else {
            last_unit / 10
        };
    }
    total
        .checked_add(wan)?
        .checked_add(section)?
        .checked_add(number)
}

/// A Chinese numeral read digit by digit ("五五二一" → "5521"); `None` if it
/// has unit characters.
fn zh_digits(s: &str) -> Option<String> {
    s.chars()
        .map(|c| zh_digit(c).map(|d| char::from(b'0' + d as u8)))
        .collect()
}

/// A Chinese numeral as a digit string: digit by digit, or by value when it
/// has units ("五十二" → "52").
fn zh_as_digits(s: &str) -> Option<String> {
    zh_digits(s).or_else(|| zh_value(s).map(|v| v.to_string()))
}

/// Every candidate digit string in `text`, in order.
fn digit_candidates(text: &str) -> Vec<String> {
    let tokens = text::tokens(text);
    let mut out = Vec::new();
    // Interleave English runs and Chinese runs in token order.
    let mut pending: Vec<Token> = Vec::new();
    let flush = |pending: &mut Vec<Token>, out: &mut Vec<String>| {
        for run in english_runs(pending) {
            if let Some(d) = run_digits(&run) {
                out.push(d);
            }
        }
        pending.clear();
    };
    for t in tokens {
        match &t {
            Token::Cjk(s) => {
                flush(&mut pending, &mut out);
                for run in zh_runs(s) {
                    // A lone 一 in running text is usually "a"/"one" as a word.
                    if run == "一" && s.chars().count() > 1 {
                        continue;
                    }
                    if let Some(d) = zh_as_digits(&run) {
                        out.push(d);
                    }
                }
            }
            Token::Word(_) => pending.push(t),
        }
    }
    flush(&mut pending, &mut out);
    out
}

/// The digit string the caller said or typed: the longest run of digits in
/// `text` ("my number is five five two one" → "5521", "五五二一" →
/// "5521", "55 21" → "5521" as one run).
pub fn digits(text: &str) -> Option<String> {
    // Typed or recognised digits separated by spaces/dashes belong together,
    // so join adjacent candidates that come from one run of tokens.
    let candidates = digit_candidates(text);
    candidates
        .into_iter()
        .fold(None, |best: Option<String>, d| match best {
            Some(b) if b.len() >= d.len() => Some(b),
            _ => Some(d),
        })
}

/// The first number in `text`: words ("fifty-two", "one hundred and five",
/// "a thousand"), digits ("52", "1,000", "2.5") or Chinese ("二十三",
/// "两千"). Number words that do not combine into one value are a digit
/// string said aloud ("five five" → 55, "nineteen eighty" → 1980).
pub fn number(text: &str) -> Option<f64> {
    let tokens = text::tokens(text);
    let mut pending: Vec<Token> = Vec::new();
    let from_english = |pending: &[Token]| -> Option<f64> {
        english_runs(pending)
            .into_iter()
            .find_map(|run| match run.as_slice() {
                [Item::Decimal(d)] => d.parse().ok(),
                _ => run_value(&run)
                    .or_else(|| run_digits(&run).and_then(|d| d.parse().ok()))
                    .map(|v| v as f64),
            })
    };
    for t in tokens {
        match &t {
            Token::Cjk(s) => {
                if let Some(v) = from_english(&pending) {
                    return Some(v);
                }
                pending.clear();
                for run in zh_runs(s) {
                    if run == "一" && s.chars().count() > 1 && !s.contains("一个") {
                        continue;
                    }
                    if let Some(v) = zh_value(&run) {
                        return Some(v as f64);
                    }
                }
            }
            Token::Word(_) => pending.push(t),
        }
    }
    from_english(&pending)
}

const NATO: [(&str, char); 26] = [
    ("alpha", 'A'),
    ("bravo", 'B'),
    ("charlie", 'C'),
    ("delta", 'D'),
    ("echo", 'E'),
    ("foxtrot", 'F'),
    ("golf", 'G'),
    ("hotel", 'H'),
    ("india", 'I'),
    ("juliet", 'J'),
    ("kilo", 'K'),
    ("lima", 'L'),
    ("mike", 'M'),
    ("november", 'N'),
    ("oscar", 'O'),
    ("papa", 'P'),
    ("quebec", 'Q'),
    ("romeo", 'R'),
    ("sierra", 'S'),
    ("tango", 'T'),
    ("uniform", 'U'),
    ("victor", 'V'),
    ("whiskey", 'W'),
    ("xray", 'X'),
    ("yankee", 'Y'),
    ("zulu", 'Z'),
];

/// An order id: letters and digits, at least `min_digits` digits ("ORD-12345"
/// → "ORD12345", "a b one two three four" → "AB1234", "alpha bravo 5 5 2 1"
/// → "AB5521", "订单号五五二一" → "5521"). The longest such run wins.
pub fn order_id(text: &str, min_digits: usize) -> Option<String> {
    // Typed ids first: a token with letters and enough digits.
    for raw in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_')) {
        let id: String = raw
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect::<String>()
            .to_ascii_uppercase();
        let nd = id.chars().filter(char::is_ascii_digit).count();
        if nd >= min_digits.max(1) && id.chars().any(|c| c.is_ascii_alphabetic()) {
            return Some(id);
        }
    }
    // Spoken: runs of single letters, NATO words and digit groups.
    let mut tokens = text::tokens(text);
    // Recognisers write X-ray as two words.
    let mut i = 0;
    while i + 1 < tokens.len() {
        if tokens[i] == Token::Word("x".into()) && tokens[i + 1] == Token::Word("ray".into()) {
            tokens[i] = Token::Word("xray".into());
            tokens.remove(i + 1);
        }
        i += 1;
    }
    let mut best: Option<String> = None;
    let mut cur = String::new();
    let mut digits_run: Vec<Token> = Vec::new();
    let consider = |cur: &mut String, best: &mut Option<String>| {
        let nd = cur.chars().filter(char::is_ascii_digit).count();
        if nd >= min_digits.max(1) && best.as_ref().is_none_or(|b| cur.len() > b.len()) {
            *best = Some(cur.clone());
        }
        cur.clear();
    };
    let push_digits = |digits_run: &mut Vec<Token>, cur: &mut String| {
        for run in english_runs(digits_run) {
            if let Some(d) = run_digits(&run) {
                cur.push_str(&d);
            }
        }
        digits_run.clear();
    };
    let letter_of = |w: &str| -> Option<char> {
        if w.len() == 1 && w.as_bytes()[0].is_ascii_alphabetic() && w != "o" {
            Some(w.as_bytes()[0].to_ascii_uppercase() as char)
        } else {
            NATO.iter().find(|(n, _)| *n == w).map(|(_, c)| *c)
        }
    };
    for (i, t) in tokens.iter().enumerate() {
        match t {
            Token::Word(w) => {
                // "a" is an article unless another letter follows ("a b 1 2 3 4").
                let article = w == "a"
                    && cur.is_empty()
                    && digits_run.is_empty()
                    && !matches!(tokens.get(i + 1), Some(Token::Word(n)) if letter_of(n).is_some());
                if let (Some(l), false) = (letter_of(w), article) {
                    push_digits(&mut digits_run, &mut cur);
                    cur.push(l);
                } else if w.bytes().all(|b| b.is_ascii_digit())
                    || matches!(
                        word(w),
                        Some(Word::Unit(..) | Word::Teen(_) | Word::Tens(_) | Word::Repeat(_))
                    )
                {
                    digits_run.push(t.clone());
                } else {
                    push_digits(&mut digits_run, &mut cur);
                    consider(&mut cur, &mut best);
                }
            }
            Token::Cjk(s) => {
                push_digits(&mut digits_run, &mut cur);
                let runs = zh_runs(s);
                let mut rest = s.as_str();
                for run in runs {
                    if let Some(d) = zh_as_digits(&run) {
                        // Text between numerals ends the id.
                        let at = rest.find(run.as_str()).unwrap_or(0);
                        if at > 0 {
                            consider(&mut cur, &mut best);
                        }
                        cur.push_str(&d);
                        rest = &rest[at + run.len()..];
                    }
                }
                if !rest.is_empty() {
                    consider(&mut cur, &mut best);
                }
            }
        }
    }
    push_digits(&mut digits_run, &mut cur);
    consider(&mut cur, &mut best);
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_values() {
        for (s, v) in [
            ("二十三", 23),
            ("十五", 15),
            ("一百零五", 105),
            ("一百一十", 110),
            ("三百五", 350),
            ("两千", 2000),
            ("两千五", 2500),
            ("一万二", 12000),
            ("一万零二", 10002),
            ("十万", 100_000),
            ("三亿五千万", 350_000_000),
            ("五五二一", 5521),
            ("零", 0),
        ] {
            assert_eq!(zh_value(s), Some(v), "{s}");
        }
        assert_eq!(zh_value("百"), None);
        assert_eq!(zh_value("二三十"), None);
    }
}
