//! The languages the models speak.

use std::fmt;
use std::str::FromStr;

/// A caller's language, as named in dialog scripts (`en`, `zh`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Language {
    /// English.
    En,
    /// Mandarin Chinese.
    Zh,
}

impl Language {
    /// The script code: `en` or `zh` (also whisper's language code).
    pub fn code(self) -> &'static str {
        match self {
            Language::En => "en",
            Language::Zh => "zh",
        }
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Language {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "en" | "en-us" | "en-gb" | "english" => Ok(Language::En),
            "zh" | "zh-cn" | "cmn" | "mandarin" | "chinese" => Ok(Language::Zh),
            other => Err(format!("unknown language `{other}` (en or zh)")),
        }
    }
}
