//! Matching a product name as a caller says it ("the blue kettle", a
//! misrecognised "kettel") against the names in a catalogue.
//!
//! Scores are per query word: each word finds its most similar word in the
//! product name (edit distance from `strsim`, with swapped letters one
//! edit, and a bonus for prefixes), and the product
//! scores the mean, so extra words in the catalogue name ("Electric",
//! "1.7 L") cost little while a missing or wrong word costs a lot. Chinese
//! and Japanese are compared character by character, since they are not
//! written with spaces.

/// Words that carry no product information in a spoken request.
const STOP_WORDS: &[&str] = &[
    "a", "an", "the", "of", "my", "some", "any", "please", "do", "you", "have", "is", "are",
    "there", "in", "stock", "for", "i", "want", "need", "to", "check", "about", "how", "many",
];

/// The lowest score worth reporting as a match.
pub const MIN_SCORE: f32 = 0.6;

/// Split a name into comparable tokens.
pub fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    for ch in text.chars().flat_map(char::to_lowercase) {
        if is_cjk(ch) {
            flush(&mut word, &mut out);
            out.push(ch.to_string());
        } else if ch.is_alphanumeric() {
            word.push(ch);
        } else {
            flush(&mut word, &mut out);
        }
    }
    flush(&mut word, &mut out);
    out.retain(|t| !STOP_WORDS.contains(&t.as_str()));
    out
}

fn flush(word: &mut String, out: &mut Vec<String>) {
    if !word.is_empty() {
        out.push(std::mem::take(word));
    }
}

fn is_cjk(ch: char) -> bool {
    matches!(ch as u32, 0x3040..=0x30ff | 0x3400..=0x4dbf | 0x4e00..=0x9fff | 0xf900..=0xfaff)
}

/// How well `query` names `candidate`, 0..=1.
pub fn score(query: &str, candidate: &str) -> f32 {
    let q = tokens(query);
    let c = tokens(candidate);
    if q.is_empty() || c.is_empty() {
        return 0.0;
    }
    let total: f32 = q
        .iter()
        .map(|qt| {
            c.iter()
                .map(|ct| word_similarity(qt, ct))
                .fold(0.0, f32::max)
        })
        .sum();
    total / q.len() as f32
}

/// Rank `candidates` against `query`: indexes and scores of those at or
/// above [`MIN_SCORE`], best first.
pub fn rank<'a>(query: &str, candidates: impl IntoIterator<Item = &'a str>) -> Vec<(usize, f32)> {
    let mut scored: Vec<(usize, f32)> = candidates
        .into_iter()
        .enumerate()
        .map(|(i, name)| (i, score(query, name)))
        .filter(|(_, s)| *s >= MIN_SCORE)
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    scored
}

fn word_similarity(a: &str, b: &str) -> f32 {
    if a == b {
        return 1.0;
    }
    let (la, lb) = (a.chars().count(), b.chars().count());
    // "kett" said while the line broke up still names the kettle.
    if la >= 3 && b.starts_with(a) {
        return 0.9;
    }
    // Optimal string alignment: two swapped letters ("lmap") are one edit,
    // as they are one slip of the tongue or the keyboard; plain Levenshtein
    // counted two and lost short words.
    1.0 - strsim::osa_distance(a, b) as f32 / la.max(lb) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    const CATALOGUE: &[&str] = &[
        "Blue Electric Kettle 1.7L",
        "Red Electric Kettle 1.7L",
        "Stainless Steel Toaster",
        "Espresso Machine Pro",
        "蓝色电水壶",
        "Desk Lamp",
    ];

    #[test]
    fn spoken_names_find_products() {
        let best = |q: &str| rank(q, CATALOGUE.iter().copied()).first().map(|r| r.0);
        assert_eq!(best("the blue kettle"), Some(0));
        assert_eq!(best("red kettel please"), Some(1));
        assert_eq!(best("do you have the toaster in stock"), Some(2));
        assert_eq!(best("espresso machine"), Some(3));
        assert_eq!(best("蓝色水壶"), Some(4));
        assert_eq!(best("bicycle"), None);
        assert_eq!(best(""), None);
    }

    #[test]
    fn scores_are_bounded() {
        assert_eq!(score("kettle", "kettle"), 1.0);
        assert!(score("kettle", "toaster") < MIN_SCORE);
        assert!((0.0..=1.0).contains(&score("blue kettle", "Blue Electric Kettle")));
    }

    // Levenshtein counted a swap as two edits: "lmap" scored 0.5 against
    // "lamp" and found nothing.
    #[test]
    fn swapped_letters_are_one_slip() {
        let best = |q: &str| rank(q, CATALOGUE.iter().copied()).first().map(|r| r.0);
        assert_eq!(best("the desk lmap"), Some(5));
        assert_eq!(best("lmap"), Some(5));
        assert_eq!(best("blue ketlte"), Some(0));
        assert!((word_similarity("lmap", "lamp") - 0.75).abs() < 1e-6);
        assert!((word_similarity("水壶", "水壸") - 0.5).abs() < 1e-6);
    }
}
