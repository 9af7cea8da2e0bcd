//! The caller's script: `wait:1.5s`, `quiet`, `wav:PATH`, `keys:1001#`,
//! `say:TEXT`, `hangup`, parsed from the command line before any call is
//! placed so a typo never costs a call.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use thiserror::Error;

/// How long `quiet` waits for the bot to speak and fall silent when no limit is given.
pub const DEFAULT_QUIET_MAX: Duration = Duration::from_secs(30);

/// One thing the caller does, in order, once the call is answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Do nothing for this long (the bot's audio is still received).
    Wait(Duration),
    /// Wait until the bot has spoken and then been silent for a while
    /// (its prompt finished), at most this long.
    Quiet(Duration),
    /// Stream a WAV file as the caller's speech.
    Wav(PathBuf),
    /// Send these keys (`0-9`, `*`, `#`, `A-D`).
    Keys(String),
    /// Speak this text (espeak-ng) as the caller's speech.
    Say(String),
    /// Send BYE.
    Hangup,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Wait(d) => write!(f, "wait:{}", format_duration(*d)),
            Step::Quiet(d) if *d == DEFAULT_QUIET_MAX => write!(f, "quiet"),
            Step::Quiet(d) => write!(f, "quiet:{}", format_duration(*d)),
            Step::Wav(p) => write!(f, "wav:{}", p.display()),
            Step::Keys(k) => write!(f, "keys:{k}"),
            Step::Say(t) => write!(f, "say:{t}"),
            Step::Hangup => write!(f, "hangup"),
        }
    }
}

/// A step that does not parse, with the step as written.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("step `{step}`: {reason}")]
pub struct StepError {
    pub step: String,
    pub reason: String,
}

/// Parse one step as written on the command line.
pub fn parse_step(text: &str) -> Result<Step, StepError> {
    let fail = |reason: &str| StepError {
        step: text.to_string(),
        reason: reason.to_string(),
    };
    let (kind, arg) = match text.split_once(':') {
        Some((kind, arg)) => (kind, Some(arg)),
        None => (text, None),
    };
    match (kind.trim().to_ascii_lowercase().as_str(), arg) {
        ("wait", Some(arg)) => parse_duration(arg).map(Step::Wait).map_err(|r| fail(&r)),
        ("wait", None) => Err(fail("give a duration, e.g. wait:1.5s or wait:500ms")),
        ("quiet", None) => Ok(Step::Quiet(DEFAULT_QUIET_MAX)),
        ("quiet", Some(arg)) => parse_duration(arg).map(Step::Quiet).map_err(|r| fail(&r)),
        ("wav", Some(path)) if !path.trim().is_empty() => Ok(Step::Wav(PathBuf::from(path))),
        ("wav", _) => Err(fail("give a WAV file, e.g. wav:fixtures/speech/yes.wav")),
        ("keys", Some(keys)) => parse_keys(keys).map(Step::Keys).map_err(|r| fail(&r)),
        ("keys", None) => Err(fail("give the keys, e.g. keys:1001#")),
        ("say", Some(t)) if !t.trim().is_empty() => Ok(Step::Say(t.trim().to_string())),
        ("say", _) => Err(fail("give the text, e.g. say:my order is late")),
        ("hangup", None) => Ok(Step::Hangup),
        ("hangup", Some(_)) => Err(fail("hangup takes no argument")),
        _ => Err(fail(
            "unknown step; use wait:DURATION, quiet, wav:PATH, keys:DIGITS, say:TEXT or hangup",
        )),
    }
}

/// Parse every step; the first bad one is the error.
pub fn parse_steps<S: AsRef<str>>(texts: &[S]) -> Result<Vec<Step>, StepError> {
    texts.iter().map(|t| parse_step(t.as_ref())).collect()
}

/// `1.5s`, `500ms`, `2m`: the scripts' duration syntax and limit (at most
/// an hour), so `wait:2` is refused with a hint rather than read as seconds
/// here and as milliseconds in the CRM configuration.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    voxbridge_dialog::format::Span::parse(text).map(|s| s.0)
}

/// DTMF keys, upper-cased; anything a keypad cannot send is refused.
fn parse_keys(text: &str) -> Result<String, String> {
    let keys: String = text.trim().to_ascii_uppercase();
    if keys.is_empty() {
        return Err("give the keys, e.g. keys:1001#".to_string());
    }
    if let Some(bad) = keys
        .chars()
        .find(|c| !matches!(c, '0'..='9' | '*' | '#' | 'A'..='D'))
    {
        return Err(format!("`{bad}` is not a key (0-9, *, #, A-D)"));
    }
    Ok(keys)
}

/// `1.5s`, `500ms`: the shortest way to write a duration back.
pub fn format_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 && d.as_secs() > 0 {
        format!("{}s", d.as_secs())
    } else if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_of_step_parses() {
        let steps = parse_steps(&[
            "wait:1.5s",
            "wait:500ms",
            "wait:2s",
            "quiet",
            "quiet:10s",
            "wav:fixtures/speech/yes.wav",
            "keys:1001#",
            "keys:*0a",
            "say:my order is late",
            "hangup",
        ])
        .unwrap();
        assert_eq!(
            steps,
            vec![
                Step::Wait(Duration::from_millis(1500)),
                Step::Wait(Duration::from_millis(500)),
                Step::Wait(Duration::from_secs(2)),
                Step::Quiet(DEFAULT_QUIET_MAX),
                Step::Quiet(Duration::from_secs(10)),
                Step::Wav(PathBuf::from("fixtures/speech/yes.wav")),
                Step::Keys("1001#".into()),
                Step::Keys("*0A".into()),
                Step::Say("my order is late".into()),
                Step::Hangup,
            ]
        );
    }

    #[test]
    fn steps_print_back_as_written() {
        for text in [
            "wait:1.5s",
            "wait:500ms",
            "wait:2s",
            "quiet",
            "quiet:10s",
            "keys:1#",
            "hangup",
        ] {
            assert_eq!(parse_step(text).unwrap().to_string(), text);
        }
    }

    #[test]
    fn a_bad_step_names_itself_and_the_problem() {
        let cases = [
            ("dial:5", "unknown step"),
            ("wait", "give a duration"),
            ("wait:soon", "not a duration"),
            ("wait:3h", "longer than an hour"),
            ("wait:-1s", "not a duration"),
            ("wait:5000", "needs a unit"),
            ("wait:5000s", "longer than an hour"),
            ("keys:12x", "`X` is not a key"),
            ("keys:", "give the keys"),
            ("wav:", "give a WAV file"),
            ("say: ", "give the text"),
            ("hangup:now", "no argument"),
        ];
        for (text, reason) in cases {
            let err = parse_step(text).unwrap_err();
            assert_eq!(err.step, text);
            let message = err.to_string();
            assert!(
                message.starts_with(&format!("step `{text}`: ")),
                "{message}"
            );
            assert!(message.contains(reason), "{text}: {message}");
        }
        let err = parse_steps(&["keys:1", "wat", "hangup"]).unwrap_err();
        assert_eq!(err.step, "wat");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("0.25s"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration(" 750ms "), Ok(Duration::from_millis(750)));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("1..2s").is_err());
        assert!(parse_duration("2h").is_err());
    }

    /// The three parsers used to read `250` as 250 s (here), 250 ms (CRM
    /// configuration) and an error (scripts); now they agree on every text.
    #[test]
    fn the_duration_parsers_agree() {
        use voxbridge_crm::resilience::millis;
        for text in [
            "250", "2", "1.5", "0", "250ms", "1.5s", "2m", "1m 30s", "1h", "-1s", "soon",
        ] {
            let here = parse_duration(text);
            let crm = millis::parse(text);
            assert_eq!(here.is_ok(), crm.is_ok(), "{text}: {here:?} / {crm:?}");
            if let (Ok(a), Ok(b)) = (here, crm) {
                assert_eq!(a, b, "{text}");
            }
        }
        let e = parse_duration("250").unwrap_err();
        assert!(e.contains("`250s`") && e.contains("`250ms`"), "{e}");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
    }
}
