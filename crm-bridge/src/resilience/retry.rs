//! Retry delays for idempotent reads: exponential with jitter, so a crowd
//! of calls that failed together does not come back together.

use std::time::Duration;

use rand::Rng;
use serde::Deserialize;

/// How reads are retried inside their time budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryPolicy {
    /// Tries in total, the first included (1 = no retry).
    pub attempts: u32,
    /// Delay before the first retry, doubled each time.
    #[serde(with = "crate::resilience::millis")]
    pub base: Duration,
    /// Ceiling for one delay.
    #[serde(with = "crate::resilience::millis")]
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 3,
            base: Duration::from_millis(25),
            max: Duration::from_millis(250),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (1-based): a random point in the
    /// upper half of the exponential step ("equal jitter"), which keeps some
    /// spacing while spreading callers out.
    pub fn delay(&self, retry: u32) -> Duration {
        let step = exponential(self.base, self.max, retry.saturating_sub(1));
        jitter_upper_half(step)
    }
}

/// `base · 2^n`, capped at `max`.
pub fn exponential(base: Duration, max: Duration, n: u32) -> Duration {
    let factor = 1u32.checked_shl(n.min(31)).unwrap_or(u32::MAX);
    base.saturating_mul(factor).min(max)
}

/// A random duration in `[d/2, d]`.
pub fn jitter_upper_half(d: Duration) -> Duration {
    let half = d / 2;
    let span = u64::try_from((d - half).as_micros()).unwrap_or(u64::MAX);
    if span == 0 {
        return d;
    }
    half + Duration::from_micros(rand::rng().random_range(0..=span))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_stay_in_bounds() {
        let p = RetryPolicy {
            attempts: 5,
            base: Duration::from_millis(100),
            max: Duration::from_millis(500),
        };
        for _ in 0..200 {
            let d1 = p.delay(1);
            assert!(d1 >= Duration::from_millis(50) && d1 <= Duration::from_millis(100));
            let d3 = p.delay(3);
            assert!(d3 >= Duration::from_millis(200) && d3 <= Duration::from_millis(400));
            let d9 = p.delay(9);
            assert!(d9 >= Duration::from_millis(250) && d9 <= Duration::from_millis(500));
        }
        assert_eq!(
            exponential(Duration::from_secs(1), Duration::from_secs(60), 40),
            Duration::from_secs(60)
        );
    }
}
