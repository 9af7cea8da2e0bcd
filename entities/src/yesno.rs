//! Yes, no or unsure, in English and Chinese: "yeah sure", "that's not
//! right", "no problem" (yes), "not sure" (unsure), "是的", "不对",
//! "没问题" (yes), "不错" (yes), "不知道" (unsure). Mixed answers ("yes
//! no", "好不好") are `None`: ask again. "Not sure" is not a no: a caller
//! who does not know has not declined.

use crate::text;

/// English phrases checked before single words (their words would
/// mislead), longer ones first. `None`: the caller is unsure.
const EN_PHRASES: [(&str, Option<bool>); 27] = [
    ("not interested", Some(false)),
    ("no thanks", Some(false)),
    ("no thank you", Some(false)),
    ("no idea", None),
    ("i'm not certain", None),
    ("of course not", Some(false)),
    ("absolutely not", Some(false)),
    ("definitely not", Some(false)),
    ("certainly not", Some(false)),
    ("not a problem", Some(true)),
    ("don't think so", Some(false)),
    ("don't know", None),
    ("not sure", None),
    ("no problem", Some(true)),
    ("no worries", Some(true)),
    ("why not", Some(true)),
    ("of course", Some(true)),
    ("go ahead", Some(true)),
    ("sounds good", Some(true)),
    ("please do", Some(true)),
    ("that's it", Some(true)),
    ("uh huh", Some(true)),
    ("mm hmm", Some(true)),
    ("not at all", Some(false)),
    ("no way", Some(false)),
    ("i disagree", Some(false)),
    ("rather not", Some(false)),
];

const EN_YES: [&str; 26] = [
    "interested",
    "speaking",
    "yes",
    "yeah",
    "yea",
    "yep",
    "yup",
    "ya",
    "sure",
    "correct",
    "right",
    "ok",
    "okay",
    "absolutely",
    "definitely",
    "affirmative",
    "certainly",
    "indeed",
    "confirm",
    "confirmed",
    "exactly",
    "alright",
    "true",
    "agree",
    "fine",
    "perfect",
];

const EN_NO: [&str; 9] = [
    "no",
    "nope",
    "nah",
    "negative",
    "incorrect",
    "wrong",
    "never",
    "false",
    "nay",
];

/// Words that flip the next positive word ("not correct", "isn't right").
const EN_NEGATORS: [&str; 8] = [
    "not", "isn't", "don't", "doesn't", "wasn't", "ain't", "didn't", "aren't",
];

/// Chinese words, longest first at each position.
const ZH: [(&str, Option<bool>); 51] = [
    ("不感兴趣", Some(false)),
    ("没兴趣", Some(false)),
    ("不愿意", Some(false)),
    ("不清楚", None),
    ("感兴趣", Some(true)),
    ("有兴趣", Some(true)),
    ("愿意", Some(true)),
    ("说不准", None),
    ("不知道", None),
    ("当然不", Some(false)),
    ("不一定", None),
    ("没问题", Some(true)),
    ("没错", Some(true)),
    ("不错", Some(true)),
    ("当然", Some(true)),
    ("可以", Some(true)),
    ("确定", Some(true)),
    ("确认", Some(true)),
    ("同意", Some(true)),
    ("正确", Some(true)),
    ("需要", Some(true)),
    ("是的", Some(true)),
    ("对的", Some(true)),
    ("好的", Some(true)),
    ("行啊", Some(true)),
    ("嗯嗯", Some(true)),
    ("不是", Some(false)),
    ("不对", Some(false)),
    ("不要", Some(false)),
    ("不用", Some(false)),
    ("不行", Some(false)),
    ("不好", Some(false)),
    ("不可以", Some(false)),
    ("不需要", Some(false)),
    ("不同意", Some(false)),
    ("不确定", None),
    ("不正确", Some(false)),
    ("没有", Some(false)),
    ("算了", Some(false)),
    ("错了", Some(false)),
    ("是", Some(true)),
    ("对", Some(true)),
    ("好", Some(true)),
    ("行", Some(true)),
    ("嗯", Some(true)),
    ("要", Some(true)),
    ("不", Some(false)),
    ("别", Some(false)),
    ("错", Some(false)),
    ("否", Some(false)),
    ("没", Some(false)),
];

fn english(words: &[&str]) -> Vec<Option<bool>> {
    let mut out = Vec::new();
    let mut i = 0;
    'outer: while i < words.len() {
        for (phrase, v) in EN_PHRASES {
            let p: Vec<&str> = phrase.split(' ').collect();
            if words[i..].starts_with(&p) {
                out.push(v);
                i += p.len();
                continue 'outer;
            }
        }
        let w = words[i];
        if EN_NEGATORS.contains(&w) {
            // "not correct", "isn't right", "not really", "not now": no.
            out.push(Some(false));
            // Swallow the positive word it negates.
            if words.get(i + 1).is_some_and(|n| EN_YES.contains(n)) {
                i += 1;
            }
        } else if EN_YES.contains(&w) {
            out.push(Some(true));
        } else if EN_NO.contains(&w) {
            out.push(Some(false));
        }
        i += 1;
    }
    out
}

fn chinese(s: &str) -> Vec<Option<bool>> {
    let mut out = Vec::new();
    let mut rest = s;
    'outer: while let Some(c) = rest.chars().next() {
        let mut best: Option<(&str, Option<bool>)> = None;
        for (w, v) in ZH {
            if rest.starts_with(w) && best.is_none_or(|(b, _)| w.len() > b.len()) {
                best = Some((w, v));
            }
        }
        if let Some((w, v)) = best {
            out.push(v);
            rest = &rest[w.len()..];
            continue 'outer;
        }
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// What the caller answered to a yes/no question.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Answer {
    Yes,
    No,
    /// "not sure", "I don't know", "不知道", "不确定": neither; ask again
    /// or offer help, but do not take it as a no.
    Unsure,
}

/// The caller's answer: any unsure phrase makes it [`Answer::Unsure`];
/// otherwise yes or no when every yes/no word agrees; `None` when there is
/// none ("hello") or they disagree ("yes no", "好不好").
pub fn answer(text: &str) -> Option<Answer> {
    let tokens = text::tokens(text);
    let words = text::words(&tokens);
    let mut votes = english(&words);
    votes.extend(chinese(&text::cjk(&tokens)));
    if votes.is_empty() && words.contains(&"please") {
        // "please" alone ("please!") agrees; next to a no it is politeness.
        return Some(Answer::Yes);
    }
    if votes.contains(&None) {
        return Some(Answer::Unsure);
    }
    let first = (*votes.first()?)?;
    votes
        .iter()
        .all(|&v| v == Some(first))
        .then_some(if first { Answer::Yes } else { Answer::No })
}

/// `Some(true)` for yes, `Some(false)` for no, `None` when unsure, neither
/// or both.
pub fn yes_no(text: &str) -> Option<bool> {
    match answer(text)? {
        Answer::Yes => Some(true),
        Answer::No => Some(false),
        Answer::Unsure => None,
    }
}
