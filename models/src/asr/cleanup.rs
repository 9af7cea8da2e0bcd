//! What whisper says that the caller did not: non-speech annotations
//! (`[BLANK_AUDIO]`, `(music)`, `♪`), and the decoder's repetition loops
//! ("10 of clubs 10 of clubs 10 of clubs …" until the token cap), which real
//! tiny.en weights fall into on short phone utterances. Plain text in, plain
//! text out: applied to every whisper transcript, tested without a model.

/// A phrase repeated this many times in a row at the end of a transcript
/// is a decoder loop, not speech: one copy is kept.
pub const MIN_LOOP_COPIES: usize = 3;

/// The longest phrase (in words) looked for as a loop.
const MAX_LOOP_WORDS: usize = 12;

/// `text` without non-speech annotations and with a trailing repetition
/// loop cut to one copy; empty when nothing spoken is left.
pub fn clean_transcript(text: &str) -> String {
    let spoken = strip_annotations(text);
    let words: Vec<&str> = spoken.split_whitespace().collect();
    let kept = trim_loop(&words);
    let out = words[..kept].join(" ");
    let out = out.trim_end_matches([',', ';', ' ']).to_string();
    if out.chars().any(char::is_alphanumeric) {
        out
    } else {
        String::new()
    }
}

/// Drops `[…]`, `(…)` and `*…*` spans and music notes: whisper's markers
/// for what it heard that was not speech.
fn strip_annotations(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut depth = 0usize;
    let mut starred = false;
    for c in text.chars() {
        match c {
            '[' | '(' => depth += 1,
            ']' | ')' => depth = depth.saturating_sub(1),
            '*' => starred = !starred,
            '♪' | '♫' | '♬' => {}
            _ if depth > 0 || starred => {}
            c => out.push(c),
        }
    }
    out
}

/// A word as compared for repetition: lower case, letters and digits only.
fn key(word: &str) -> String {
    word.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Whether a word is a number: repeated digits ("five five five", "111")
/// are what callers say for phone and order numbers, never trimmed.
fn is_number(k: &str) -> bool {
    const NUMBER_WORDS: [&str; 13] = [
        "zero", "oh", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
        "double", "triple",
    ];
    !k.is_empty() && (k.chars().all(|c| c.is_ascii_digit()) || NUMBER_WORDS.contains(&k))
}

/// How many of `words` to keep: all, or up to the end of the first copy of
/// a phrase that repeats at least [`MIN_LOOP_COPIES`] times in a row to the
/// end (after the last copy may come the start of one more, its last word
/// cut short, as the token cap leaves it). Copies are counted back from the
/// end; the shortest such phrase wins, and loops of loops are trimmed until
/// none is left. Where a loop could be read in several phases ("broken. It
/// is broken, it is broken, it is…"), the one whose copies end on
/// punctuation wins (whisper's loops are sentences), then the one with more
/// copies.
fn trim_loop(words: &[&str]) -> usize {
    let keys: Vec<String> = words.iter().map(|w| key(w)).collect();
    let punctuated = |i: usize| words[i].ends_with(['.', ',', '?', '!', ';']);
    let mut len = keys.len();
    'again: loop {
        for n in 1..=MAX_LOOP_WORDS.min(len / MIN_LOOP_COPIES) {
            // (punctuated, copies, end) of the best phase so far.
            let mut best: Option<(bool, usize, usize)> = None;
            // `end`: where the last whole copy ends; the words after it
            // must be the phrase's beginning.
            for end in (len.saturating_sub(n)..=len).rev() {
                if end < n * MIN_LOOP_COPIES {
                    continue;
                }
                let phrase = &keys[end - n..end];
                if phrase.iter().all(|k| k.is_empty() || is_number(k)) {
                    continue;
                }
                let tail_fits = (end..len).all(|i| {
                    let want = &phrase[i - end];
                    if i + 1 == len {
                        !keys[i].is_empty() && want.starts_with(keys[i].as_str())
                    } else {
                        *want == keys[i]
                    }
                });
                if !tail_fits {
                    continue;
                }
                let copies = (1..=end / n)
                    .take_while(|k| keys[end - k * n..end - (k - 1) * n] == *phrase)
                    .count();
                let candidate = (punctuated(end - 1), copies, end);
                if copies >= MIN_LOOP_COPIES
                    && best.is_none_or(|b| (b.0, b.1) < (candidate.0, candidate.1))
                {
                    best = Some(candidate);
                }
            }
            if let Some((_, copies, end)) = best {
                len = end - (copies - 1) * n;
                continue 'again;
            }
        }
        return len;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loops_at_the_end_keep_one_copy() {
        assert_eq!(
            clean_transcript("10 of clubs 10 of clubs 10 of clubs 10 of clubs"),
            "10 of clubs"
        );
        // Punctuation and case differ between copies; the token cap cut the last.
        assert_eq!(
            clean_transcript(
                "My kettle arrived broken. It is broken, it is broken, it is broken, it is bro"
            ),
            "My kettle arrived broken. It is broken"
        );
        assert_eq!(
            clean_transcript("I want to complain. Thank you. Thank you. Thank you. Thank you."),
            "I want to complain. Thank you."
        );
        assert_eq!(clean_transcript("the the the the the"), "the");
    }

    #[test]
    fn speech_that_repeats_less_or_is_digits_stays() {
        for text in [
            "no thanks",
            "where is my order",
            "no, no, I said the toaster",
            "order 1 1 1 1",
            "five five five one two one two",
            "one one one",
            "it broke, it broke",
            "very very good service",
        ] {
            assert_eq!(clean_transcript(text), text, "{text:?}");
        }
    }

    #[test]
    fn non_speech_is_dropped_and_blank_is_empty() {
        assert_eq!(clean_transcript("[BLANK_AUDIO]"), "");
        assert_eq!(clean_transcript(" (music) ♪ "), "");
        assert_eq!(clean_transcript("*laughs*"), "");
        assert_eq!(clean_transcript("..."), "");
        assert_eq!(clean_transcript(""), "");
        assert_eq!(
            clean_transcript("[Music] talk to an agent (coughs)"),
            "talk to an agent"
        );
        // An unclosed bracket hides the rest, as whisper never opens one in speech.
        assert_eq!(clean_transcript("yes [inaudible"), "yes");
    }

    #[test]
    fn loops_are_found_after_annotations_go() {
        assert_eq!(clean_transcript("bye [BLANK_AUDIO] bye bye bye"), "bye");
        assert_eq!(
            clean_transcript("Is it in stock? (beep) In stock. In stock. In stock."),
            "Is it in stock?"
        );
    }
}
