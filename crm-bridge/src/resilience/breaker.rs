//! A circuit breaker per system: after repeated failures the system is not
//! called for a while, so a dead CRM costs a call nothing instead of a
//! timeout, and the CRM gets room to recover.
//!
//! Closed → (N consecutive failures) → Open for `open_for` → Half-open, where
//! one probe request goes through: success closes, failure opens again.
//! Time is passed in, so tests step through it without sleeping.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Deserialize;

/// Breaker tuning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BreakerConfig {
    /// Consecutive failures that open the circuit.
    pub failure_threshold: u32,
    /// How long it stays open before a probe.
    #[serde(with = "crate::resilience::millis")]
    pub open_for: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failure_threshold: 5,
            open_for: Duration::from_secs(10),
        }
    }
}

/// The state, as reported in metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

#[derive(Debug)]
enum State {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { probing: bool },
}

/// One system's breaker.
#[derive(Debug)]
pub struct Breaker {
    config: BreakerConfig,
    state: Mutex<State>,
}

/// Permission to make one request; report how it went with
/// [`Breaker::record`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct Permit {
    probe: bool,
}

impl Breaker {
    pub fn new(config: BreakerConfig) -> Breaker {
        Breaker {
            config,
            state: Mutex::new(State::Closed { failures: 0 }),
        }
    }

    /// May a request go out at `now`? `Err` carries how long until it may.
    pub fn try_acquire(&self, now: Instant) -> Result<Permit, Duration> {
        let mut state = self.lock();
        match *state {
            State::Closed { .. } => Ok(Permit { probe: false }),
            State::Open { until } if now < until => Err(until - now),
            State::Open { .. } | State::HalfOpen { probing: false } => {
                *state = State::HalfOpen { probing: true };
                Ok(Permit { probe: true })
            }
            // One probe at a time; the others wait for its verdict.
            State::HalfOpen { probing: true } => Err(Duration::from_millis(100)),
        }
    }

    /// Report the outcome of a request made under `permit`.
    pub fn record(&self, permit: Permit, now: Instant, success: bool) {
        let mut state = self.lock();
        match (&mut *state, success) {
            (_, true) => *state = State::Closed { failures: 0 },
            (State::Closed { failures }, false) => {
                *failures += 1;
                if *failures >= self.config.failure_threshold.max(1) {
                    *state = State::Open {
                        until: self.reopen_at(now),
                    };
                }
            }
            (State::HalfOpen { .. }, false) if permit.probe => {
                *state = State::Open {
                    until: self.reopen_at(now),
                };
            }
            // A late failure from before the circuit opened changes nothing.
            (_, false) => {}
        }
    }

    /// A request made under `permit` ended without a verdict on the system
    /// (cancelled by its caller, or refused for a reason of its own): a probe
    /// must hand its turn back.
    pub fn release(&self, permit: Permit) {
        if permit.probe {
            let mut state = self.lock();
            if let State::HalfOpen { probing } = &mut *state {
                *probing = false;
            }
        }
    }

    /// When an opened circuit half-opens; an absurd `open_for` saturates
    /// instead of overflowing the clock.
    fn reopen_at(&self, now: Instant) -> Instant {
        now.checked_add(self.config.open_for)
            .unwrap_or_else(|| now + Duration::from_secs(86_400 * 365))
    }

    pub fn state(&self, now: Instant) -> BreakerState {
        match *self.lock() {
            State::Closed { .. } => BreakerState::Closed,
            State::Open { until } if now < until => BreakerState::Open,
            State::Open { .. } | State::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is always valid between statements; a panic elsewhere
        // while holding the lock cannot corrupt it.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> Breaker {
        Breaker::new(BreakerConfig {
            failure_threshold: 3,
            open_for: Duration::from_secs(10),
        })
    }

    #[test]
    fn opens_after_consecutive_failures_and_probes() {
        let b = breaker();
        let t0 = Instant::now();
        for _ in 0..2 {
            let p = b.try_acquire(t0).expect("closed");
            b.record(p, t0, false);
        }
        assert_eq!(b.state(t0), BreakerState::Closed);
        let p = b.try_acquire(t0).expect("closed");
        b.record(p, t0, false);
        assert_eq!(b.state(t0), BreakerState::Open);
        assert_eq!(
            b.try_acquire(t0 + Duration::from_secs(4)),
            Err(Duration::from_secs(6))
        );

        let t1 = t0 + Duration::from_secs(10);
        let probe = b.try_acquire(t1).expect("probe");
        assert!(b.try_acquire(t1).is_err(), "only one probe");
        b.record(probe, t1, false);
        assert_eq!(b.state(t1), BreakerState::Open);

        let t2 = t1 + Duration::from_secs(10);
        let probe = b.try_acquire(t2).expect("probe");
        b.record(probe, t2, true);
        assert_eq!(b.state(t2), BreakerState::Closed);
    }

    #[test]
    fn success_resets_the_count_and_cancelled_probes_hand_back() {
        let b = breaker();
        let t = Instant::now();
        for ok in [false, false, true, false, false] {
            let p = b.try_acquire(t).expect("closed");
            b.record(p, t, ok);
        }
        assert_eq!(b.state(t), BreakerState::Closed);
        let p = b.try_acquire(t).expect("closed");
        b.record(p, t, false);
        let later = t + Duration::from_secs(11);
        let probe = b.try_acquire(later).expect("probe");
        b.release(probe);
        assert!(
            b.try_acquire(later).is_ok(),
            "released probe lets another try"
        );
    }
}
