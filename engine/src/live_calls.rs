//! What each call has said and heard so far, for the admin endpoint
//! `GET /calls/{call_id}` (what `voxbridge call` prints live). Ended calls
//! stay readable for a while: the last [`KEEP_ENDED`] of them.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use serde::Serialize;

/// Ended calls kept for reading after their end.
pub const KEEP_ENDED: usize = 200;

/// Lines kept per call: a runaway script must not grow memory without end.
const MAX_LINES: usize = 500;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Line {
    /// `bot`, `caller` or `system`.
    pub speaker: &'static str,
    pub text: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CallView {
    pub call_id: String,
    /// `active` or `ended`.
    pub state: &'static str,
    pub transcript: Vec<Line>,
}

#[derive(Debug, Default)]
struct Inner {
    calls: HashMap<String, CallView>,
    ended: VecDeque<String>,
}

/// The registry; one per process.
#[derive(Debug, Default)]
pub struct LiveCalls {
    inner: Mutex<Inner>,
}

impl LiveCalls {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn start(&self, call_id: &str) {
        self.lock().calls.insert(
            call_id.to_string(),
            CallView {
                call_id: call_id.to_string(),
                state: "active",
                transcript: Vec::new(),
            },
        );
    }

    pub fn line(&self, call_id: &str, speaker: &'static str, text: impl Into<String>) {
        if let Some(c) = self.lock().calls.get_mut(call_id) {
            if c.transcript.len() < MAX_LINES {
                c.transcript.push(Line {
                    speaker,
                    text: text.into(),
                });
            }
        }
    }

    pub fn end(&self, call_id: &str) {
        let mut inner = self.lock();
        let Some(c) = inner.calls.get_mut(call_id) else {
            return;
        };
        c.state = "ended";
        inner.ended.push_back(call_id.to_string());
        while inner.ended.len() > KEEP_ENDED {
            if let Some(old) = inner.ended.pop_front() {
                inner.calls.remove(&old);
            }
        }
    }

    pub fn get(&self, call_id: &str) -> Option<CallView> {
        self.lock().calls.get(call_id).cloned()
    }

    pub fn active(&self) -> usize {
        self.lock()
            .calls
            .values()
            .filter(|c| c.state == "active")
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_follow_the_call_and_old_calls_go() {
        let live = LiveCalls::default();
        live.start("a");
        live.line("a", "bot", "Hello");
        live.line("a", "caller", "[keys] 1001#");
        live.line("nobody", "bot", "ignored");
        let v = live.get("a").unwrap();
        assert_eq!(v.state, "active");
        assert_eq!(v.transcript.len(), 2);
        assert_eq!(v.transcript[1].text, "[keys] 1001#");
        live.end("a");
        assert_eq!(live.get("a").unwrap().state, "ended");
        for i in 0..KEEP_ENDED {
            let id = format!("c{i}");
            live.start(&id);
            live.end(&id);
        }
        assert!(live.get("a").is_none(), "the oldest ended call is dropped");
        assert!(live.get("c1").is_some());
        assert_eq!(live.active(), 0);
    }
}
