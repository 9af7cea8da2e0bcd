//! The live transcript: timestamped lines as things happen, and the bot's
//! side of the conversation read from its admin endpoint
//! (`GET /calls/{call_id}`), of which only the lines not printed yet are shown.

use std::io::Write;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde::Deserialize;

/// Writes transcript lines, stamped with the time since the call was
/// answered; shared by the call and the admin poller.
pub struct Printer {
    out: Mutex<Box<dyn Write + Send>>,
    origin: OnceLock<Instant>,
}

impl Printer {
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        Printer {
            out: Mutex::new(out),
            origin: OnceLock::new(),
        }
    }

    /// Start the clock (the call was answered); later calls change nothing.
    pub fn start_clock(&self, at: Instant) {
        let _ = self.origin.set(at);
    }

    /// Time since the call was answered (zero before).
    pub fn elapsed(&self) -> Duration {
        self.origin.get().map(Instant::elapsed).unwrap_or_default()
    }

    /// `[  2.31s] who: text`, stamped now.
    pub fn line(&self, who: &str, text: &str) {
        self.line_at(self.elapsed(), who, text);
    }

    /// `[  2.31s] who: text`, stamped `at`.
    pub fn line_at(&self, at: Duration, who: &str, text: &str) {
        self.write(&stamped(at, who, text));
    }

    /// A line without a timestamp (before the answer, summaries).
    pub fn note(&self, text: &str) {
        self.write(text);
    }

    fn write(&self, text: &str) {
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        // A closed stdout (`| head`) must not fail the call.
        let _ = writeln!(out, "{text}");
        let _ = out.flush();
    }
}

/// One transcript line as printed.
pub fn stamped(at: Duration, who: &str, text: &str) -> String {
    format!("[{:>6.2}s] {who}: {text}", at.as_secs_f64())
}

/// The admin endpoint's view of one call.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct CallView {
    #[serde(default)]
    pub call_id: String,
    /// `active` or `ended`.
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub transcript: Vec<Utterance>,
}

/// One line of the bot's transcript.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Utterance {
    /// `bot`, `caller` or `system`.
    pub speaker: String,
    pub text: String,
}

impl CallView {
    pub fn parse(body: &[u8]) -> Result<CallView, String> {
        serde_json::from_slice(body)
            .map_err(|e| format!("unexpected JSON from the admin endpoint: {e}"))
    }

    pub fn ended(&self) -> bool {
        self.state == "ended"
    }
}

/// Remembers how much of the transcript was printed. The endpoint returns
/// the whole transcript so far each time, so the lines past those already
/// printed are the new ones.
#[derive(Debug, Default)]
pub struct Follower {
    printed: usize,
}

impl Follower {
    /// The lines of `view` not returned before.
    pub fn update<'a>(&mut self, view: &'a CallView) -> &'a [Utterance] {
        let all = &view.transcript[..];
        // A shorter transcript than before means the bot forgot the call and
        // started over (restart): nothing we can line up, so print no repeats.
        let new = all.get(self.printed..).unwrap_or(&[]);
        self.printed = self.printed.max(all.len());
        new
    }
}

/// How an utterance reads in our transcript: the caller's words as the bot
/// understood them are marked so they are not mistaken for what we sent.
pub fn label(u: &Utterance) -> (String, String) {
    let who = match u.speaker.as_str() {
        "caller" => "bot heard",
        other => other,
    };
    (who.to_string(), u.text.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn view(json: &str) -> CallView {
        CallView::parse(json.as_bytes()).unwrap()
    }

    #[test]
    fn parses_the_admin_view_and_prints_only_new_lines() {
        let mut f = Follower::default();
        let v1 = view(
            r#"{"call_id":"a@b","state":"active","transcript":[
                {"speaker":"bot","text":"Welcome."},
                {"speaker":"caller","text":"1001#","at_ms":2300}]}"#,
        );
        assert_eq!(v1.call_id, "a@b");
        assert!(!v1.ended());
        assert_eq!(f.update(&v1).len(), 2);
        assert!(f.update(&v1).is_empty());
        let v2 = view(
            r#"{"call_id":"a@b","state":"ended","transcript":[
                {"speaker":"bot","text":"Welcome."},
                {"speaker":"caller","text":"1001#"},
                {"speaker":"bot","text":"Goodbye."}]}"#,
        );
        assert!(v2.ended());
        let new = f.update(&v2);
        assert_eq!(new.len(), 1);
        assert_eq!(new[0].text, "Goodbye.");
        // A view that went back in time prints nothing again.
        assert!(f.update(&v1).is_empty());
        assert!(f.update(&v2).is_empty());
    }

    #[test]
    fn missing_fields_default_and_garbage_is_an_error() {
        let v = view(r#"{"state":"active"}"#);
        assert!(v.transcript.is_empty());
        assert!(CallView::parse(b"<html>").is_err());
        assert!(CallView::parse(br#"{"transcript":[{"speaker":"bot"}]}"#).is_err());
    }

    #[test]
    fn labels() {
        let u = |speaker: &str| Utterance {
            speaker: speaker.into(),
            text: "hi".into(),
        };
        assert_eq!(label(&u("bot")), ("bot".into(), "hi".into()));
        assert_eq!(label(&u("caller")), ("bot heard".into(), "hi".into()));
        assert_eq!(label(&u("system")), ("system".into(), "hi".into()));
    }

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_are_stamped_from_the_answer() {
        let buf = Shared::default();
        let p = Printer::new(Box::new(buf.clone()));
        p.note("calling");
        p.line_at(Duration::from_millis(2310), "caller", "[keys] 1001#");
        p.line_at(Duration::from_millis(123_456), "bot", "Goodbye.");
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert_eq!(
            text,
            "calling\n[  2.31s] caller: [keys] 1001#\n[123.46s] bot: Goodbye.\n"
        );
        assert_eq!(p.elapsed(), Duration::ZERO);
    }
}
