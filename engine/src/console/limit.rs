//! The login rate limit: failed logins are counted per source address over
//! `console.login_window_secs`; past `console.login_attempts` of them the
//! address waits out the window, whatever it sends. Successful logins do
//! not count (a GCRA limiter such as `governor` counts requests, not
//! failures, which would lock out a busy office behind one NAT address).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Addresses remembered at most; an attacker spraying addresses must not
/// grow memory without end.
const MAX_TRACKED: usize = 10_000;

#[derive(Debug)]
pub struct LoginLimiter {
    attempts: u32,
    window: Duration,
    /// Failures in the current window and when it started.
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

impl LoginLimiter {
    pub fn new(attempts: u32, window: Duration) -> LoginLimiter {
        LoginLimiter {
            attempts,
            window,
            failures: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, (u32, Instant)>> {
        self.failures.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How long `ip` must still wait, if it is over the limit.
    pub fn blocked(&self, ip: IpAddr, now: Instant) -> Option<Duration> {
        let map = self.lock();
        let (count, since) = map.get(&ip)?;
        let end = *since + self.window;
        (*count >= self.attempts && now < end).then(|| end - now)
    }

    /// A wrong name or password from `ip`.
    pub fn failed(&self, ip: IpAddr, now: Instant) {
        let mut map = self.lock();
        if map.len() >= MAX_TRACKED {
            let window = self.window;
            map.retain(|_, (_, since)| now.duration_since(*since) < window);
        }
        let entry = map.entry(ip).or_insert((0, now));
        if now.duration_since(entry.1) >= self.window {
            *entry = (0, now);
        }
        entry.0 = entry.0.saturating_add(1);
    }

    /// A good login clears the address's count.
    pub fn succeeded(&self, ip: IpAddr) {
        self.lock().remove(&ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_past_the_limit_wait_out_the_window() {
        let l = LoginLimiter::new(3, Duration::from_secs(60));
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        let t = Instant::now();
        for i in 0..3 {
            assert!(l.blocked(ip, t).is_none(), "attempt {i} is allowed");
            l.failed(ip, t);
        }
        let wait = l.blocked(ip, t + Duration::from_secs(10)).unwrap();
        assert_eq!(wait, Duration::from_secs(50));
        assert!(l.blocked(other, t).is_none(), "another address is not held");
        assert!(l.blocked(ip, t + Duration::from_secs(60)).is_none());
        // A new window starts counting from one.
        l.failed(ip, t + Duration::from_secs(61));
        assert!(l.blocked(ip, t + Duration::from_secs(61)).is_none());
    }

    #[test]
    fn a_good_login_clears_the_count() {
        let l = LoginLimiter::new(2, Duration::from_secs(60));
        let ip: IpAddr = "::1".parse().unwrap();
        let t = Instant::now();
        l.failed(ip, t);
        l.succeeded(ip);
        l.failed(ip, t);
        assert!(l.blocked(ip, t).is_none());
    }
}
