//! Knowing when a response we gave has left.
//!
//! rsipstack sends the replies to in-dialog requests (202 to a REFER, 200
//! to a NOTIFY) from the transaction's own task; a request we send right
//! after (the NOTIFY that follows a 202, the BYE that follows the 200 to a
//! final NOTIFY) can overtake it on the wire, and strict peers (sipp) treat
//! that as an error. So the leg registers the response it expects, the
//! transport reports every response it wrote, and the leg sends its next
//! request only after its reply is out: a real order, not a sleep.
//!
//! The same watch tells a campaign when an INVITE it sent has left (see
//! `invite_pace`): the time the transport wrote it is what its pacing counts.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use tracing::debug;

/// The longest a leg waits for its reply to leave before going on anyway
/// (a reply the stack never sends must not stall the call).
pub const MAX_WAIT: Duration = Duration::from_millis(500);

/// One awaited response: Call-ID and CSeq number of the request it answers.
type Key = (String, u32);

/// Responses awaited by legs; fed by the transports. See the module doc.
#[derive(Default)]
pub struct SentWatch {
    waiting: Mutex<HashMap<Key, Vec<oneshot::Sender<()>>>>,
    /// How many are waiting, so the transport's hot path skips parsing
    /// when nobody is.
    count: AtomicUsize,
    /// INVITEs awaited by Call-ID: fired with the time the first one left.
    invites: Mutex<HashMap<String, oneshot::Sender<Instant>>>,
    invite_count: AtomicUsize,
}

impl SentWatch {
    /// Expect a final response to the request `cseq` of `call_id`; the
    /// receiver fires when it has been written to the transport.
    pub fn expect(&self, call_id: &str, cseq: u32) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        waiting
            .entry((call_id.to_string(), cseq))
            .or_default()
            .push(tx);
        self.count.fetch_add(1, Ordering::Relaxed);
        rx
    }

    /// Wait (bounded by [`MAX_WAIT`]) for an expected response to leave.
    pub async fn wait(&self, call_id: &str, cseq: u32, rx: oneshot::Receiver<()>) {
        if tokio::time::timeout(MAX_WAIT, rx).await.is_err() {
            debug!(cseq, "reply not seen leaving; going on");
            self.forget(call_id, cseq);
        }
    }

    fn forget(&self, call_id: &str, cseq: u32) {
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(v) = waiting.remove(&(call_id.to_string(), cseq)) {
            self.count.fetch_sub(v.len(), Ordering::Relaxed);
        }
    }

    /// Expect the INVITE with this Call-ID to be written; the receiver gets
    /// the time it was. Register before the INVITE is handed to the stack.
    pub fn expect_invite(&self, call_id: &str) -> oneshot::Receiver<Instant> {
        let (tx, rx) = oneshot::channel();
        let mut invites = self.invites.lock().unwrap_or_else(|p| p.into_inner());
        if invites.insert(call_id.to_string(), tx).is_none() {
            self.invite_count.fetch_add(1, Ordering::Relaxed);
        }
        rx
    }

    /// Stop waiting for an INVITE (it was not sent, or was given up on).
    pub fn forget_invite(&self, call_id: &str) {
        let mut invites = self.invites.lock().unwrap_or_else(|p| p.into_inner());
        if invites.remove(call_id).is_some() {
            self.invite_count.fetch_sub(1, Ordering::Relaxed);
        }
    }

    fn invite_written(&self, message: &[u8]) {
        let Some(call_id) = header_call_id(message) else {
            return;
        };
        let mut invites = self.invites.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = invites.remove(&call_id) {
            self.invite_count.fetch_sub(1, Ordering::Relaxed);
            let _ = tx.send(Instant::now());
        }
    }

    /// A datagram or stream message was written: fire who waits for it.
    pub fn written(&self, message: &[u8]) {
        if message.starts_with(b"INVITE ") {
            if self.invite_count.load(Ordering::Relaxed) > 0 {
                self.invite_written(message);
            }
            return;
        }
        if self.count.load(Ordering::Relaxed) == 0 || !message.starts_with(b"SIP/2.0 ") {
            return;
        }
        // Provisional responses do not end the transaction.
        if message.get(8) == Some(&b'1') {
            return;
        }
        let Some(key) = response_key(message) else {
            return;
        };
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(v) = waiting.remove(&key) {
            self.count.fetch_sub(v.len(), Ordering::Relaxed);
            for tx in v {
                let _ = tx.send(());
            }
        }
    }
}

/// The Call-ID of a message, from its header lines.
fn header_call_id(message: &[u8]) -> Option<String> {
    let head_end = message
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(message.len());
    let head = std::str::from_utf8(message.get(..head_end)?).ok()?;
    head.split("\r\n").skip(1).find_map(|line| {
        let (name, value) = line.split_once(':')?;
        let name = name.trim();
        (name.eq_ignore_ascii_case("call-id") || name.eq_ignore_ascii_case("i"))
            .then(|| value.trim().to_string())
    })
}

/// Call-ID and CSeq number of a response, from its header lines.
fn response_key(message: &[u8]) -> Option<Key> {
    let head_end = message
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(message.len());
    let head = std::str::from_utf8(message.get(..head_end)?).ok()?;
    let mut call_id = None;
    let mut cseq = None;
    for line in head.split("\r\n").skip(1) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name.eq_ignore_ascii_case("call-id") || name.eq_ignore_ascii_case("i") {
            call_id = Some(value.trim().to_string());
        } else if name.eq_ignore_ascii_case("cseq") {
            cseq = value.split_whitespace().next()?.parse().ok();
        }
    }
    Some((call_id?, cseq?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &[u8] = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\ni: abc@host\r\nCSeq: 7 NOTIFY\r\nContent-Length: 0\r\n\r\n";

    #[tokio::test]
    async fn a_written_reply_releases_its_waiter_only() {
        let watch = SentWatch::default();
        let rx = watch.expect("abc@host", 7);
        let mut other = watch.expect("abc@host", 8);
        watch.written(b"SIP/2.0 180 Ringing\r\ni: abc@host\r\nCSeq: 7 NOTIFY\r\n\r\n");
        watch.written(OK);
        watch.wait("abc@host", 7, rx).await;
        assert!(other.try_recv().is_err(), "CSeq 8 still waits");
        assert_eq!(watch.count.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn a_reply_never_seen_is_waited_for_boundedly() {
        let watch = SentWatch::default();
        let rx = watch.expect("x", 1);
        watch.wait("x", 1, rx).await;
        assert_eq!(watch.count.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn an_invite_leaving_is_reported_once_with_its_time() {
        let watch = SentWatch::default();
        let mut rx = watch.expect_invite("inv-1@vb");
        let other = watch.expect_invite("inv-2@vb");
        let before = Instant::now();
        watch.written(b"INVITE sip:+1@h SIP/2.0\r\nCall-ID: inv-1@vb\r\nCSeq: 1 INVITE\r\n\r\n");
        let at = rx.try_recv().expect("reported");
        assert!(at >= before);
        // The retry with credentials finds nobody waiting.
        watch.written(b"INVITE sip:+1@h SIP/2.0\r\ni: inv-1@vb\r\nCSeq: 2 INVITE\r\n\r\n");
        assert_eq!(watch.invite_count.load(Ordering::Relaxed), 1);
        watch.forget_invite("inv-2@vb");
        drop(other);
        assert_eq!(watch.invite_count.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn garbage_is_ignored() {
        let watch = SentWatch::default();
        let _rx = watch.expect("x", 1);
        for m in [
            &b"SIP/2.0 200"[..],
            b"SIP/2.0 200 OK\r\nCSeq: x\r\n\r\n",
            b"\xff\xfe",
        ] {
            watch.written(m);
        }
        assert_eq!(watch.count.load(Ordering::Relaxed), 1);
    }
}
