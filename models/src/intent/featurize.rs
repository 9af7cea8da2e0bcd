//! The intent featurizer, version [`VERSION`] (Rust half).
//!
//! Identical to `models/train/featurize.py` (which documents the scheme);
//! `fixtures/models/intent.golden.jsonl` holds texts with the features Python
//! computed, and a test checks this code against it. ONNX Runtime's own text
//! operators fail on some locales, so featurizing is done here, not in the
//! graph. Change both halves together and bump the version.

/// Featurizer version, stored in the model metadata as `voxbridge.featurizer`.
pub const VERSION: &str = "vbhash-1";
/// Number of hash buckets: the model's input width.
pub const BUCKETS: usize = 1 << 14;

const FNV_OFFSET: u32 = 0x811C_9DC5;
const FNV_PRIME: u32 = 0x0100_0193;

/// 32-bit FNV-1a.
pub fn fnv1a32(data: &[u8]) -> u32 {
    data.iter().fold(FNV_OFFSET, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(FNV_PRIME)
    })
}

fn fold(c: char) -> char {
    let mut cp = c as u32;
    if (0xFF01..=0xFF5E).contains(&cp) {
        cp -= 0xFEE0;
    } else if cp == 0x3000 {
        cp = 0x20;
    } else if cp == 0x2019 {
        cp = 0x27;
    }
    if (0x41..=0x5A).contains(&cp) || ((0xC0..=0xDE).contains(&cp) && cp != 0xD7) {
        cp += 0x20;
    }
    char::from_u32(cp).unwrap_or(c)
}

fn is_word(cp: u32) -> bool {
    (0x61..=0x7A).contains(&cp)
        || (0x30..=0x39).contains(&cp)
        || cp == 0x27
        || ((0xDF..=0x24F).contains(&cp) && cp != 0xF7)
}

fn is_cjk(cp: u32) -> bool {
    matches!(cp, 0x3040..=0x30FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF)
}

/// Tokens (words, and each CJK character) and chunks (words, and runs of CJK
/// characters) of `text`.
pub fn tokens_and_chunks(text: &str) -> (Vec<String>, Vec<String>) {
    let mut tokens = Vec::new();
    let mut chunks = Vec::new();
    let mut word = String::new();
    let mut cjk = String::new();
    fn end_word(word: &mut String, tokens: &mut Vec<String>, chunks: &mut Vec<String>) {
        if !word.is_empty() {
            let w = word.trim_matches('\'');
            if !w.is_empty() {
                tokens.push(w.to_string());
                chunks.push(w.to_string());
            }
            word.clear();
        }
    }
    fn end_cjk(cjk: &mut String, chunks: &mut Vec<String>) {
        if !cjk.is_empty() {
            chunks.push(std::mem::take(cjk));
        }
    }
    for raw in text.chars() {
        let c = fold(raw);
        let cp = c as u32;
        if is_word(cp) {
            end_cjk(&mut cjk, &mut chunks);
            word.push(c);
        } else if is_cjk(cp) {
            end_word(&mut word, &mut tokens, &mut chunks);
            cjk.push(c);
            tokens.push(c.to_string());
        } else {
            end_word(&mut word, &mut tokens, &mut chunks);
            end_cjk(&mut cjk, &mut chunks);
        }
    }
    end_word(&mut word, &mut tokens, &mut chunks);
    end_cjk(&mut cjk, &mut chunks);
    (tokens, chunks)
}

/// Calls `f` with every feature string of `text`, in the reference order.
pub fn for_each_feature(text: &str, mut f: impl FnMut(&str)) {
    let (tokens, chunks) = tokens_and_chunks(text);
    let mut buf = String::new();
    for t in &tokens {
        buf.clear();
        buf.push_str("w|");
        buf.push_str(t);
        f(&buf);
    }
    for pair in tokens.windows(2) {
        buf.clear();
        buf.push_str("b|");
        buf.push_str(&pair[0]);
        buf.push('|');
        buf.push_str(&pair[1]);
        f(&buf);
    }
    let mut chars: Vec<char> = Vec::new();
    for chunk in &chunks {
        for c in chunk.chars() {
            buf.clear();
            buf.push_str("c|");
            buf.push(c);
            f(&buf);
        }
        chars.clear();
        chars.push('<');
        chars.extend(chunk.chars());
        chars.push('>');
        for n in [2, 3] {
            for gram in chars.windows(n) {
                buf.clear();
                buf.push_str("c|");
                buf.extend(gram.iter());
                f(&buf);
            }
        }
    }
}

/// Bucket of one feature string.
pub fn bucket(feature: &str) -> usize {
    fnv1a32(feature.as_bytes()) as usize & (BUCKETS - 1)
}

/// Sparse counts of `text`: `(bucket, count)` sorted by bucket.
pub fn featurize(text: &str) -> Vec<(usize, f32)> {
    let mut buckets = Vec::new();
    for_each_feature(text, |f| buckets.push(bucket(f)));
    buckets.sort_unstable();
    let mut out: Vec<(usize, f32)> = Vec::with_capacity(buckets.len());
    for b in buckets {
        match out.last_mut() {
            Some((last, n)) if *last == b => *n += 1.0,
            _ => out.push((b, 1.0)),
        }
    }
    out
}

/// Adds the counts of `text` into a dense vector of [`BUCKETS`] values and
/// returns the buckets it touched (so the caller can zero them again).
pub fn featurize_into(text: &str, dense: &mut [f32], touched: &mut Vec<usize>) {
    touched.clear();
    for_each_feature(text, |f| {
        let b = bucket(f);
        if dense[b] == 0.0 {
            touched.push(b);
        }
        dense[b] += 1.0;
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_matches_the_reference_vectors() {
        assert_eq!(fnv1a32(b""), 0x811c9dc5);
        assert_eq!(fnv1a32(b"a"), 0xe40c292c);
        assert_eq!(fnv1a32(b"foobar"), 0xbf9cf968);
    }

    #[test]
    fn tokens_split_words_and_cjk() {
        let (t, c) = tokens_and_chunks("Where's MY order? 订单123");
        assert_eq!(t, ["where's", "my", "order", "订", "单", "123"]);
        assert_eq!(c, ["where's", "my", "order", "订单", "123"]);
        let (t, _) = tokens_and_chunks("ＨＥＬＬＯ　'quoted'");
        assert_eq!(t, ["hello", "quoted"]);
    }

    #[test]
    fn featurize_counts_repeats() {
        let f = featurize("no no");
        let total: f32 = f.iter().map(|(_, v)| v).sum();
        // w|no ×2, b|no|no, and per chunk: c|n c|o, <n no o> , <no no>  (×2)
        assert_eq!(total, 2.0 + 1.0 + 2.0 * (2.0 + 3.0 + 2.0));
        assert!(featurize("").is_empty());
        assert!(featurize("?! ,").is_empty());
    }

    #[test]
    fn dense_and_sparse_agree() {
        let mut dense = vec![0.0; BUCKETS];
        let mut touched = Vec::new();
        featurize_into("cancel my order 取消订单", &mut dense, &mut touched);
        let sparse = featurize("cancel my order 取消订单");
        assert_eq!(touched.len(), sparse.len());
        for (b, v) in sparse {
            assert_eq!(dense[b], v);
        }
    }
}
