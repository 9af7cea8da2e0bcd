//! Resilience on the request path: every call to a system goes through its
//! [`SystemGuard`], which enforces the operation's time budget, retries
//! idempotent reads with jittered backoff inside that budget, and keeps the
//! system's circuit breaker. Writes are never retried here: the outbox owns
//! their retries, with idempotency keys.

pub mod breaker;
pub mod cache;
pub mod retry;

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::error::CrmError;
use breaker::{Breaker, BreakerConfig, BreakerState, Permit};
use retry::RetryPolicy;

/// Counters of one system, for metrics.
#[derive(Debug, Default)]
pub struct SystemStats {
    pub requests: AtomicU64,
    pub failures: AtomicU64,
    pub timeouts: AtomicU64,
    pub retries: AtomicU64,
    pub short_circuited: AtomicU64,
}

/// A copy of [`SystemStats`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SystemStatsSnapshot {
    pub requests: u64,
    pub failures: u64,
    pub timeouts: u64,
    pub retries: u64,
    pub short_circuited: u64,
}

/// The breaker and counters of one system.
#[derive(Debug)]
pub struct SystemGuard {
    system: String,
    breaker: Breaker,
    stats: SystemStats,
}

/// Hands a half-open probe back if the request is dropped before it ends
/// (its caller's timeout fired), so the breaker does not wait forever.
struct PermitGuard<'a> {
    breaker: &'a Breaker,
    permit: Option<Permit>,
}

impl PermitGuard<'_> {
    fn finish(mut self, success: Option<bool>) {
        if let Some(permit) = self.permit.take() {
            match success {
                Some(ok) => self.breaker.record(permit, Instant::now(), ok),
                None => self.breaker.release(permit),
            }
        }
    }
}

impl Drop for PermitGuard<'_> {
    fn drop(&mut self) {
        if let Some(permit) = self.permit.take() {
            self.breaker.release(permit);
        }
    }
}

impl SystemGuard {
    pub fn new(system: &str, breaker: BreakerConfig) -> SystemGuard {
        SystemGuard {
            system: system.to_string(),
            breaker: Breaker::new(breaker),
            stats: SystemStats::default(),
        }
    }

    pub fn system(&self) -> &str {
        &self.system
    }

    pub fn breaker_state(&self) -> BreakerState {
        self.breaker.state(Instant::now())
    }

    pub fn stats(&self) -> SystemStatsSnapshot {
        let s = &self.stats;
        SystemStatsSnapshot {
            requests: s.requests.load(Ordering::Relaxed),
            failures: s.failures.load(Ordering::Relaxed),
            timeouts: s.timeouts.load(Ordering::Relaxed),
            retries: s.retries.load(Ordering::Relaxed),
            short_circuited: s.short_circuited.load(Ordering::Relaxed),
        }
    }

    /// An idempotent read: tried up to `retry.attempts` times while the
    /// budget lasts, never past it.
    pub async fn read<T, F, Fut>(
        &self,
        budget: Duration,
        retry: &RetryPolicy,
        mut attempt: F,
    ) -> Result<T, CrmError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, CrmError>>,
    {
        let deadline = Instant::now() + budget;
        let mut tries = 0;
        loop {
            tries += 1;
            match self.once(deadline, budget, attempt()).await {
                Err(e) if e.is_retryable_read() && tries < retry.attempts.max(1) => {
                    let delay = retry.delay(tries);
                    // A retry that cannot finish in time only delays the
                    // caller's fallback.
                    if Instant::now() + delay + Duration::from_millis(5) >= deadline {
                        return Err(e);
                    }
                    self.stats.retries.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(delay).await;
                }
                other => return other,
            }
        }
    }

    /// A write: one try within the budget.
    pub async fn write<T>(
        &self,
        budget: Duration,
        request: impl Future<Output = Result<T, CrmError>>,
    ) -> Result<T, CrmError> {
        self.once(Instant::now() + budget, budget, request).await
    }

    async fn once<T>(
        &self,
        deadline: Instant,
        budget: Duration,
        request: impl Future<Output = Result<T, CrmError>>,
    ) -> Result<T, CrmError> {
        let now = Instant::now();
        let permit = match self.breaker.try_acquire(now) {
            Ok(p) => p,
            Err(wait) => {
                self.stats.short_circuited.fetch_add(1, Ordering::Relaxed);
                return Err(CrmError::CircuitOpen {
                    system: self.system.clone(),
                    retry_in_ms: millis(wait),
                });
            }
        };
        let guard = PermitGuard {
            breaker: &self.breaker,
            permit: Some(permit),
        };
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let remaining = deadline.saturating_duration_since(now);
        match tokio::time::timeout(remaining, request).await {
            Ok(Ok(v)) => {
                guard.finish(Some(true));
                Ok(v)
            }
            Ok(Err(e)) => {
                let timed_out = matches!(e, CrmError::Timeout { .. });
                if e.is_system_failure() {
                    self.stats.failures.fetch_add(1, Ordering::Relaxed);
                    guard.finish(Some(false));
                } else if matches!(e, CrmError::Rejected { .. }) {
                    // The server answered, so it is up.
                    guard.finish(Some(true));
                } else {
                    guard.finish(None);
                }
                if timed_out {
                    self.stats.timeouts.fetch_add(1, Ordering::Relaxed);
                    return Err(CrmError::Timeout {
                        system: self.system.clone(),
                        after_ms: millis(budget),
                    });
                }
                Err(e)
            }
            Err(_) => {
                self.stats.failures.fetch_add(1, Ordering::Relaxed);
                self.stats.timeouts.fetch_add(1, Ordering::Relaxed);
                guard.finish(Some(false));
                Err(CrmError::Timeout {
                    system: self.system.clone(),
                    after_ms: millis(budget),
                })
            }
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Serde for durations in configuration: a string with its unit (`250ms`,
/// `2s`, `5m`, `1h`, `1m 30s`), parsed by jiff. A bare number is refused
/// (it meant milliseconds here, seconds in `voxbridge call` and nothing in
/// scripts); only `0`, the same in every unit, may go without one.
pub mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(n) => from_number(n),
            Raw::Text(t) => parse(&t),
        }
        .map_err(serde::de::Error::custom)
    }

    /// The longest duration accepted anywhere in the configuration: longer
    /// is a typo, and would overflow the clock arithmetic.
    pub const MAX: Duration = Duration::from_secs(366 * 86_400);

    /// `d` if it is at most [`MAX`].
    pub fn bounded(d: Duration) -> Result<Duration, String> {
        if d > MAX {
            Err(format!("{} s is longer than a year", d.as_secs()))
        } else {
            Ok(d)
        }
    }

    /// A YAML number where a duration goes: only `0` is one.
    pub fn from_number(n: u64) -> Result<Duration, String> {
        if n == 0 {
            Ok(Duration::ZERO)
        } else {
            Err(unit_missing(&n.to_string()))
        }
    }

    fn unit_missing(n: &str) -> String {
        format!("`{n}` needs a unit: write `{n}ms` or `{n}s`")
    }

    /// `250ms`, `2s`, `1.5s`, `5m`, `1h`, `1m 30s`, or `0`.
    pub fn parse(text: &str) -> Result<Duration, String> {
        let t = text.trim();
        if t == "0" {
            return Ok(Duration::ZERO);
        }
        if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            return Err(unit_missing(t));
        }
        let not_a_duration = || format!("`{text}` is not a duration (use e.g. 250ms, 2s, 5m, 1h)");
        let signed: jiff::SignedDuration = t.parse().map_err(|_| not_a_duration())?;
        // Negative durations ("-1s", "1s ago") do not convert.
        Duration::try_from(signed)
            .map_err(|_| not_a_duration())
            .and_then(bounded)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn units() {
            assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
            assert_eq!(parse("1.5s"), Ok(Duration::from_millis(1500)));
            assert_eq!(parse("5m"), Ok(Duration::from_secs(300)));
            assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
            assert!(parse("soon").is_err());
            assert!(parse("5 days").is_err());
            assert!(parse("400000h").is_err());
            assert_eq!(parse("1m 30s"), Ok(Duration::from_secs(90)));
            assert_eq!(parse(" 2min "), Ok(Duration::from_secs(120)));
        }

        /// A bare number was milliseconds here, seconds in `voxbridge call`
        /// and an error in scripts: now it is an error everywhere but 0.
        #[test]
        fn a_bare_number_needs_a_unit() {
            let e = parse("250").unwrap_err();
            assert!(e.contains("`250ms`") && e.contains("`250s`"), "{e}");
            assert!(parse("1.5").is_err());
            assert_eq!(parse("0"), Ok(Duration::ZERO));
            assert_eq!(from_number(0), Ok(Duration::ZERO));
            assert!(from_number(250).is_err());
        }

        #[test]
        fn negative_and_malformed_durations_are_refused() {
            for t in ["-1s", "1s ago", "", "ms", "1..2s", "5S", "1e3ms", "5 days"] {
                assert!(parse(t).is_err(), "{t}");
            }
        }

        #[test]
        fn yaml_numbers() {
            #[derive(serde::Deserialize)]
            struct T {
                #[serde(with = "super")]
                d: Duration,
            }
            let t: T = serde_saphyr::from_str("d: 0").unwrap();
            assert_eq!(t.d, Duration::ZERO);
            let t: T = serde_saphyr::from_str("d: 2s").unwrap();
            assert_eq!(t.d, Duration::from_secs(2));
            let e = serde_saphyr::from_str::<T>("d: 250")
                .err()
                .unwrap()
                .to_string();
            assert!(e.contains("needs a unit"), "{e}");
        }
    }
}
