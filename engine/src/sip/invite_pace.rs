//! Pacing INVITEs by when they leave: at most `n` first INVITEs of
//! attempts on the wire in any `window`, measured at the socket.
//!
//! Pacing attempt *starts* is not enough: between an attempt's start and
//! its INVITE leaving there is work (the script, an RTP port, the stack's
//! transaction task) whose delay varies on a loaded box, so INVITEs the
//! scheduler started a second apart can leave bunched, and the callee sees
//! more than `calls_per_second` in one second. So the INVITE itself waits
//! for its turn here, and the turn is computed from the times INVITEs were
//! *seen leaving* (the transport reports them, see `SentWatch`).
//!
//! The rule ([`Window`], sans-IO): an INVITE is released at `t` only when
//! the one released before it has left and fewer than `n` left in
//! `(t - window - guard, t]`. Then no span of `window` holds more than `n`
//! departures: the new one leaves at `d ≥ t`, nothing else leaves between
//! `t` and `d`, and the others in `(d - window, d]` all left in
//! `(t - window, t]`. `guard` absorbs what the callee adds (its own
//! scheduling before it stamps the message).
//!
//! An authentication retry (the same INVITE sent again with credentials
//! after a 401/407, same Call-ID) is not a new attempt: it is neither held
//! nor counted. A callee behind the challenging proxy sees one INVITE per
//! attempt; the proxy itself sees up to twice the rate.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Margin added to the window; see the module doc.
pub const GUARD: Duration = Duration::from_millis(40);

/// The longest an INVITE waits to be seen leaving before it is taken as
/// gone (a transport that does not report must not stall the campaign).
pub const DEPARTURE_WAIT: Duration = Duration::from_millis(500);

/// The sans-IO pacing rule: departures in, release times out.
#[derive(Debug)]
pub struct Window {
    n: usize,
    span: Duration,
    departures: VecDeque<Instant>,
    in_flight: bool,
}

impl Window {
    /// At most `n` (at least 1) INVITEs leaving in any `window`.
    pub fn new(n: usize, window: Duration) -> Window {
        Window {
            n: n.max(1),
            span: window + GUARD,
            departures: VecDeque::new(),
            in_flight: false,
        }
    }

    /// When the next INVITE may go: `now` or later; `None` while the one
    /// released before it has not been seen leaving.
    pub fn next_release(&mut self, now: Instant) -> Option<Instant> {
        if self.in_flight {
            return None;
        }
        while self
            .departures
            .front()
            .is_some_and(|d| now.saturating_duration_since(*d) >= self.span)
        {
            self.departures.pop_front();
        }
        if self.departures.len() < self.n {
            return Some(now);
        }
        // The oldest of the last `n` must have aged out of the window.
        let oldest = self.departures[self.departures.len() - self.n];
        Some((oldest + self.span).max(now))
    }

    /// An INVITE was released (it is being sent).
    pub fn released(&mut self) {
        self.in_flight = true;
    }

    /// The released INVITE left at `at` (or was given up on at `at`: later
    /// than it really left, which only holds the next ones longer).
    pub fn departed(&mut self, at: Instant) {
        self.in_flight = false;
        self.departures.push_back(at);
        // Only the last `n` matter.
        while self.departures.len() > self.n {
            self.departures.pop_front();
        }
    }
}

/// One campaign's pace, shared by its attempts: the async shell around
/// [`Window`]. Attempts take turns through the lock.
#[derive(Debug)]
pub struct InvitePace {
    limits: (usize, Duration),
    window: tokio::sync::Mutex<Window>,
}

/// An attempt's turn: held until its INVITE was seen leaving.
pub struct Turn<'a> {
    window: tokio::sync::MutexGuard<'a, Window>,
}

impl InvitePace {
    pub fn new(n: usize, window: Duration) -> InvitePace {
        InvitePace {
            limits: (n.max(1), window),
            window: tokio::sync::Mutex::new(Window::new(n, window)),
        }
    }

    /// `(n, window)`, to tell whether a campaign's pacing changed.
    pub fn limits(&self) -> (usize, Duration) {
        self.limits
    }

    /// Wait for this attempt's turn to send its INVITE.
    pub async fn turn(&self) -> Turn<'_> {
        let mut window = self.window.lock().await;
        loop {
            let now = Instant::now();
            match window.next_release(now) {
                Some(at) if at <= now => break,
                Some(at) => tokio::time::sleep_until(at.into()).await,
                // Cannot happen while we hold the lock (a turn ends with
                // `departed` or its drop); be safe rather than wait forever.
                None => window.in_flight = false,
            }
        }
        window.released();
        Turn { window }
    }
}

impl Turn<'_> {
    /// The INVITE left at `at`: the next attempt may take its turn.
    pub fn departed(mut self, at: Instant) {
        self.window.departed(at);
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        // A turn dropped without `departed` (the INVITE was never sent)
        // frees the next one without counting.
        if self.window.in_flight {
            self.window.in_flight = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drive the rule with a simulated clock: release whenever allowed,
    /// each INVITE leaving `delay(i)` after its release.
    fn run(n: usize, count: usize, delay: impl Fn(usize) -> Duration) -> Vec<Instant> {
        let t0 = Instant::now();
        let mut w = Window::new(n, Duration::from_secs(1));
        let mut now = t0;
        let mut out = Vec::new();
        for i in 0..count {
            let at = w.next_release(now).expect("nothing in flight");
            now = now.max(at);
            w.released();
            assert!(w.next_release(now).is_none(), "one at a time");
            now += delay(i);
            w.departed(now);
            out.push(now);
        }
        out
    }

    fn most_in_a_second(times: &[Instant]) -> usize {
        (0..times.len())
            .map(|i| {
                times[i..]
                    .iter()
                    .take_while(|t| t.duration_since(times[i]) < Duration::from_secs(1))
                    .count()
            })
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn never_more_than_n_leave_in_any_second_whatever_the_send_delay() {
        // Delays that vary from 0 to 300 ms, the kind that bunched INVITEs.
        let jitter = |i: usize| Duration::from_millis(((i * 7919) % 300) as u64);
        for n in [1, 2, 5, 20] {
            let times = run(n, 200, jitter);
            assert!(most_in_a_second(&times) <= n, "n = {n}");
        }
    }

    #[test]
    fn the_rate_is_kept_not_undercut() {
        let times = run(5, 51, |_| Duration::ZERO);
        // 50 intervals of 5 per 1.04 s: about 10.4 s, not much more.
        let took = times[50].duration_since(times[0]);
        assert!(took >= Duration::from_secs(10), "{took:?}");
        assert!(took < Duration::from_millis(10_500), "{took:?}");
        assert_eq!(most_in_a_second(&times), 5);
    }

    #[test]
    fn a_late_departure_holds_the_next_ones_later() {
        let t0 = Instant::now();
        let mut w = Window::new(1, Duration::from_secs(1));
        assert_eq!(w.next_release(t0), Some(t0));
        w.released();
        w.departed(t0 + Duration::from_millis(300));
        assert_eq!(
            w.next_release(t0 + Duration::from_millis(400)),
            Some(t0 + Duration::from_millis(300) + Duration::from_secs(1) + GUARD)
        );
    }

    #[tokio::test]
    async fn a_dropped_turn_frees_the_next_without_counting() {
        let pace = InvitePace::new(1, Duration::from_secs(60));
        drop(pace.turn().await);
        // Not counted: the next turn is immediate.
        let started = Instant::now();
        let turn = tokio::time::timeout(Duration::from_secs(1), pace.turn())
            .await
            .expect("immediate");
        turn.departed(Instant::now());
        assert!(started.elapsed() < Duration::from_millis(500));
        // Counted: the one after waits for the window.
        assert!(
            tokio::time::timeout(Duration::from_millis(200), pace.turn())
                .await
                .is_err()
        );
    }
}
