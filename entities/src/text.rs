//! Tokens for entity extraction: lower-case words (ASCII digits and letters,
//! apostrophes inside words) and runs of CJK characters. Full-width forms
//! become ASCII, hyphens split ("fifty-two"), commas inside numbers vanish
//! ("1,000") and one decimal point inside a number stays ("2.5").

/// One token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    /// A lower-case word or number ("fifty", "5th", "that's", "12345").
    Word(String),
    /// A run of CJK characters ("我的订单号是").
    Cjk(String),
}

/// Is `c` written without spaces (Chinese, Japanese)?
pub fn is_cjk(c: char) -> bool {
    matches!(c as u32, 0x3040..=0x30FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x3007)
}

fn fold(c: char) -> char {
    let cp = c as u32;
    let c = if (0xFF01..=0xFF5E).contains(&cp) {
        char::from_u32(cp - 0xFEE0).unwrap_or(c)
    } else if c == '\u{2019}' {
        '\''
    } else {
        c
    };
    c.to_ascii_lowercase()
}

/// Splits `text` into tokens.
pub fn tokens(text: &str) -> Vec<Token> {
    let chars: Vec<char> = text.chars().map(fold).collect();
    let mut out = Vec::new();
    let mut word = String::new();
    let mut cjk = String::new();
    let end_word = |word: &mut String, out: &mut Vec<Token>| {
        let w = word.trim_matches('\'');
        if !w.is_empty() {
            out.push(Token::Word(w.to_string()));
        }
        word.clear();
    };
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_alphanumeric() || c == '\'' || (c.is_alphabetic() && !is_cjk(c)) {
            if !cjk.is_empty() {
                out.push(Token::Cjk(std::mem::take(&mut cjk)));
            }
            word.push(c);
        } else if is_cjk(c) {
            end_word(&mut word, &mut out);
            cjk.push(c);
        } else if c == ','
            && i > 0
            && chars[i - 1].is_ascii_digit()
            && chars.get(i + 1).is_some_and(char::is_ascii_digit)
        {
            // "1,000": keep the number whole.
        } else if c == '.'
            && !word.is_empty()
            && word.bytes().all(|b| b.is_ascii_digit())
            && chars.get(i + 1).is_some_and(char::is_ascii_digit)
        {
            // "2.5": a decimal is one number, not the digits 2 and 5.
            word.push('.');
        } else {
            end_word(&mut word, &mut out);
            if !cjk.is_empty() {
                out.push(Token::Cjk(std::mem::take(&mut cjk)));
            }
        }
    }
    end_word(&mut word, &mut out);
    if !cjk.is_empty() {
        out.push(Token::Cjk(cjk));
    }
    out
}

/// The words of `tokens` (CJK runs left out).
pub fn words(tokens: &[Token]) -> Vec<&str> {
    tokens
        .iter()
        .filter_map(|t| match t {
            Token::Word(w) => Some(w.as_str()),
            Token::Cjk(_) => None,
        })
        .collect()
}

/// The CJK text of `tokens`, runs joined.
pub fn cjk(tokens: &[Token]) -> String {
    tokens
        .iter()
        .filter_map(|t| match t {
            Token::Cjk(s) => Some(s.as_str()),
            Token::Word(_) => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits() {
        let t = tokens("Fifty-two, 1,000 订单号是45678！ That’s ＯＫ");
        let w = |s: &str| Token::Word(s.into());
        assert_eq!(
            t,
            [
                w("fifty"),
                w("two"),
                w("1000"),
                Token::Cjk("订单号是".into()),
                w("45678"),
                w("that's"),
                w("ok")
            ]
        );
        assert_eq!(
            tokens("2.5 kilos. 1.2.3, 7."),
            [w("2.5"), w("kilos"), w("1.2"), w("3"), w("7")]
        );
    }
}
