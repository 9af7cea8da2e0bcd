//! Measured load: how late the async runtime runs a task that asked to wake
//! at a given instant. Every call's media task paces its RTP by timers on
//! the same runtime, so when a probe that wakes every 10 ms runs late, the
//! calls' packets leave late too, and a new call would only make it worse.
//! Admission refuses INVITEs while this delay is over
//! `calls.max_scheduling_delay_ms`.
//!
//! [`LoadMonitor`] is the sans-IO decision (ticks and instants in, a delay
//! and a verdict out); [`spawn_probe`] is the task that feeds it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::admission::Admission;
use crate::metrics::Metrics;

/// How often the probe asks to wake.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(10);

/// Time constant of the smoothing: a burst shorter than this moves the
/// verdict little, a sustained delay moves it within about this long.
const SMOOTHING: Duration = Duration::from_millis(300);

/// Once overloaded, the delay must fall below this share of the limit
/// before calls are taken again, so the verdict does not flap from one
/// INVITE to the next at the edge.
const RECOVER_SHARE: f64 = 0.5;

/// Smoothed probe lateness and the admission verdict. Time is passed in.
#[derive(Debug, Clone)]
pub struct LoadMonitor {
    limit: Duration,
    /// Exponentially weighted lateness, in seconds.
    smoothed: f64,
    /// When the probe last ran.
    last_run: Option<Instant>,
    overloaded: bool,
}

impl LoadMonitor {
    /// A monitor that judges overloaded above `limit` (zero: never).
    pub fn new(limit: Duration) -> Self {
        LoadMonitor {
            limit,
            smoothed: 0.0,
            last_run: None,
            overloaded: false,
        }
    }

    /// The limit this monitor judges by.
    pub fn limit(&self) -> Duration {
        self.limit
    }

    /// Judge by a new limit from now on.
    pub fn set_limit(&mut self, limit: Duration) {
        self.limit = limit;
        self.overloaded = false;
    }

    /// One probe tick: it asked to run at `due` and ran at `now`. Returns
    /// its lateness.
    pub fn tick(&mut self, due: Instant, now: Instant) -> Duration {
        let late = now.saturating_duration_since(due);
        // Weight by the time the tick covers, so one tick after a long stall
        // counts as much as the many regular ticks it replaced.
        let covered = match self.last_run {
            Some(last) => now.saturating_duration_since(last),
            None => PROBE_INTERVAL,
        };
        let weight = 1.0 - (-covered.as_secs_f64() / SMOOTHING.as_secs_f64()).exp();
        self.smoothed += weight * (late.as_secs_f64() - self.smoothed);
        self.last_run = Some(now);
        late
    }

    /// The delay to judge by at `now`: the smoothed lateness, or how far
    /// past its time the probe's next tick already is (a runtime so busy
    /// that the probe does not run must not look idle).
    pub fn delay(&self, now: Instant) -> Duration {
        let overdue = self
            .last_run
            .map(|last| {
                now.saturating_duration_since(last)
                    .saturating_sub(PROBE_INTERVAL)
            })
            .unwrap_or(Duration::ZERO);
        Duration::from_secs_f64(self.smoothed.max(0.0)).max(overdue)
    }

    /// Whether a new call should be refused at `now`.
    pub fn overloaded(&mut self, now: Instant) -> bool {
        if self.limit.is_zero() {
            return false;
        }
        let delay = self.delay(now);
        self.overloaded = if self.overloaded {
            delay.as_secs_f64() > self.limit.as_secs_f64() * RECOVER_SHARE
        } else {
            delay > self.limit
        };
        self.overloaded
    }
}

/// Run the probe on the current runtime until `stop`: every
/// [`PROBE_INTERVAL`] it sleeps, measures how late it woke, and tells
/// `admission` and `metrics`.
pub fn spawn_probe(admission: Arc<Admission>, metrics: Arc<Metrics>, stop: CancellationToken) {
    tokio::spawn(async move {
        let mut due = Instant::now() + PROBE_INTERVAL;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep_until(due.into()) => {}
            }
            let now = Instant::now();
            let late = admission.observe_load(due, now);
            metrics.scheduling_delay(late, admission.load_delay(now));
            // From now, not from `due`: after a stall, one tick, not a burst.
            due = now + PROBE_INTERVAL;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// Ticks every 10 ms for `secs`, each `late` behind; returns the end.
    fn run(m: &mut LoadMonitor, from: Instant, secs: f64, late: Duration) -> Instant {
        let mut due = from + PROBE_INTERVAL;
        let end = from + Duration::from_secs_f64(secs);
        while due <= end {
            let now = due + late;
            m.tick(due, now);
            due = now + PROBE_INTERVAL;
        }
        due - PROBE_INTERVAL
    }

    #[test]
    fn a_punctual_runtime_admits_and_a_late_one_refuses() {
        let t0 = Instant::now();
        let mut m = LoadMonitor::new(10 * MS);
        let t = run(&mut m, t0, 2.0, MS);
        assert!(m.delay(t) <= 2 * MS, "{:?}", m.delay(t));
        assert!(!m.overloaded(t));
        // Sustained 25 ms lateness: refused within about a second.
        let t = run(&mut m, t, 1.0, 25 * MS);
        assert!(m.delay(t) > 15 * MS, "{:?}", m.delay(t));
        assert!(m.overloaded(t));
    }

    #[test]
    fn one_spike_does_not_refuse_calls() {
        let t0 = Instant::now();
        let mut m = LoadMonitor::new(10 * MS);
        let t = run(&mut m, t0, 1.0, MS);
        // One tick 40 ms late (a page fault, a log rotation), then normal.
        let due = t + PROBE_INTERVAL;
        m.tick(due, due + 40 * MS);
        let t = run(&mut m, due + 40 * MS, 0.05, MS);
        assert!(!m.overloaded(t), "{:?}", m.delay(t));
    }

    #[test]
    fn a_probe_that_does_not_run_counts_as_late() {
        let t0 = Instant::now();
        let mut m = LoadMonitor::new(10 * MS);
        let t = run(&mut m, t0, 1.0, Duration::ZERO);
        assert!(!m.overloaded(t + 15 * MS));
        // Nothing ran for 200 ms: whoever asks now sees the stall.
        assert!(m.delay(t + 200 * MS) >= 190 * MS);
        assert!(m.overloaded(t + 200 * MS));
    }

    #[test]
    fn recovery_needs_the_delay_well_under_the_limit() {
        let t0 = Instant::now();
        let mut m = LoadMonitor::new(10 * MS);
        let t = run(&mut m, t0, 2.0, 20 * MS);
        assert!(m.overloaded(t));
        // Just under the limit: still full.
        let t = run(&mut m, t, 2.0, 8 * MS);
        assert!(m.overloaded(t), "{:?}", m.delay(t));
        // Well under it: calls come in again.
        let t = run(&mut m, t, 2.0, MS);
        assert!(!m.overloaded(t), "{:?}", m.delay(t));
    }

    #[test]
    fn a_zero_limit_never_refuses() {
        let t0 = Instant::now();
        let mut m = LoadMonitor::new(Duration::ZERO);
        let t = run(&mut m, t0, 1.0, 100 * MS);
        assert!(m.delay(t) > 50 * MS);
        assert!(!m.overloaded(t));
    }
}
