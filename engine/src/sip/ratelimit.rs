//! Per-source SIP rate limits, so a flood from one address (a scanner, a
//! looping proxy, a spoofed-source INVITE storm) cannot starve real callers.
//!
//! A token bucket per source IP and kind of request: INVITE, REGISTER and
//! OPTIONS each have their own, every request but ACK also draws from the
//! `unauthenticated` one (voxbridge challenges no inbound request, so no
//! request from a source outside the allowlist is authenticated), and every
//! datagram draws from the `hard_limit` one. A request over a soft limit is
//! answered 503 with Retry-After; a datagram over the hard limit is dropped
//! unanswered, so answering a flood cannot cost more than the hard rate.
//!
//! Sans-IO: the caller passes the time in and gets a [`Decision`] back, and
//! tests drive hours in microseconds. Memory is bounded: a source whose
//! buckets have refilled is the same as a new one and is evicted, and once
//! `max_sources` are tracked, further sources share one overflow bucket, so
//! a flood from spoofed addresses cannot grow the table.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::acl::Cidr;
use crate::config::{BucketConfig, RateLimitsConfig};

/// What kind of datagram, as far as the limits care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Invite,
    Register,
    Options,
    /// Any other request except ACK.
    Other,
    /// ACK: never answered, so only the hard limit applies.
    Ack,
    /// A response (or something that is not a request line).
    Response,
    /// Only whitespace: a keepalive (RFC 5626 §4.4.1), hard limit only.
    Keepalive,
}

impl Class {
    /// Every class, in metric order.
    pub const ALL: [Class; 7] = [
        Class::Invite,
        Class::Register,
        Class::Options,
        Class::Other,
        Class::Ack,
        Class::Response,
        Class::Keepalive,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Class::Invite => "invite",
            Class::Register => "register",
            Class::Options => "options",
            Class::Other => "other",
            Class::Ack => "ack",
            Class::Response => "response",
            Class::Keepalive => "keepalive",
        }
    }

    /// The class of a datagram from its first word: cheap, since it runs
    /// before screening on every datagram, the dropped ones included.
    pub fn of(datagram: &[u8]) -> Class {
        if datagram.iter().all(u8::is_ascii_whitespace) {
            return Class::Keepalive;
        }
        let word = datagram
            .iter()
            .position(|&b| b == b' ')
            .map_or(datagram, |end| &datagram[..end]);
        match word {
            b"INVITE" => Class::Invite,
            b"REGISTER" => Class::Register,
            b"OPTIONS" => Class::Options,
            b"ACK" => Class::Ack,
            w if w.starts_with(b"SIP/") => Class::Response,
            _ => Class::Other,
        }
    }
}

/// What to do with one datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Within the limits: screen it and hand it on.
    Pass,
    /// Over a soft limit: answer 503 with this Retry-After (seconds).
    Refuse { retry_after: u32 },
    /// Over the hard limit: drop it unanswered.
    Drop,
}

/// A decision, and the log line owed for it, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub decision: Decision,
    pub log: Option<LogLine>,
}

/// One log line for a limited source: at most one per source per minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogLine {
    /// The source; `None` for the overflow bucket (many sources).
    pub source: Option<IpAddr>,
    /// Datagrams refused or dropped since the previous line, this one included.
    pub limited: u64,
}

/// How often a limited source is named in the log.
pub const LOG_EVERY: Duration = Duration::from_secs(60);

/// How often a full table is swept for idle sources (a sweep walks it all).
const SWEEP_WHEN_FULL: Duration = Duration::from_secs(1);
/// How often the table is swept anyway, to give memory back after a flood.
const SWEEP_ANYWAY: Duration = Duration::from_secs(30);

/// Longest Retry-After we send.
const MAX_RETRY_AFTER: u32 = 3600;

// Bucket indexes.
const INVITE: usize = 0;
const REGISTER: usize = 1;
const OPTIONS: usize = 2;
const UNAUTH: usize = 3;
const HARD: usize = 4;
const BUCKETS: usize = 5;

/// A bucket's refill rate and size, in tokens per second and tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Rate {
    per_sec: f64,
    burst: f64,
}

impl<const R: u32, const B: u32> From<BucketConfig<R, B>> for Rate {
    fn from(b: BucketConfig<R, B>) -> Self {
        // Validation refuses zeros; a hand-built config with one still
        // limits (to one token) rather than divide by zero.
        Rate {
            per_sec: f64::from(b.rate.max(1)),
            burst: f64::from(b.burst.max(1)),
        }
    }
}

/// One source's buckets.
#[derive(Debug, Clone)]
struct Source {
    tokens: [f64; BUCKETS],
    updated: Instant,
    logged: Option<Instant>,
    limited_since_log: u64,
}

impl Source {
    fn new(rates: &[Rate; BUCKETS], now: Instant) -> Self {
        Source {
            tokens: rates.map(|r| r.burst),
            updated: now,
            logged: None,
            limited_since_log: 0,
        }
    }

    fn refill(&mut self, rates: &[Rate; BUCKETS], now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        if elapsed > 0.0 {
            for (t, r) in self.tokens.iter_mut().zip(rates) {
                *t = (*t + elapsed * r.per_sec).min(r.burst);
            }
            self.updated = now;
        }
    }

    /// Full buckets and no log line within the minute: forgetting this
    /// source changes nothing, once any count not yet logged is logged.
    fn idle(&self, rates: &[Rate; BUCKETS], now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        let refilled = self
            .tokens
            .iter()
            .zip(rates)
            .all(|(t, r)| t + elapsed * r.per_sec >= r.burst);
        let log_done = self
            .logged
            .is_none_or(|at| now.saturating_duration_since(at) >= LOG_EVERY);
        refilled && log_done
    }

    fn judge(&mut self, rates: &[Rate; BUCKETS], class: Class) -> Decision {
        if self.tokens[HARD] < 1.0 {
            return Decision::Drop;
        }
        self.tokens[HARD] -= 1.0;
        let soft: &[usize] = match class {
            Class::Invite => &[INVITE, UNAUTH],
            Class::Register => &[REGISTER, UNAUTH],
            Class::Options => &[OPTIONS, UNAUTH],
            Class::Other => &[UNAUTH],
            Class::Ack | Class::Response | Class::Keepalive => &[],
        };
        let wait = soft
            .iter()
            .filter(|&&b| self.tokens[b] < 1.0)
            .map(|&b| (1.0 - self.tokens[b]) / rates[b].per_sec)
            .fold(None, |most: Option<f64>, w| {
                Some(most.map_or(w, |m| m.max(w)))
            });
        match wait {
            None => {
                for &b in soft {
                    self.tokens[b] -= 1.0;
                }
                Decision::Pass
            }
            Some(secs) => Decision::Refuse {
                retry_after: (secs.ceil() as u32).clamp(1, MAX_RETRY_AFTER),
            },
        }
    }

    /// Count a limited datagram; the log line when one is due.
    fn note_limited(&mut self, source: Option<IpAddr>, now: Instant) -> Option<LogLine> {
        self.limited_since_log += 1;
        let due = self
            .logged
            .is_none_or(|at| now.saturating_duration_since(at) >= LOG_EVERY);
        due.then(|| {
            self.logged = Some(now);
            LogLine {
                source,
                limited: std::mem::take(&mut self.limited_since_log),
            }
        })
    }
}

/// The limiter: the per-source table and the limits.
#[derive(Debug)]
pub struct RateLimiter {
    enabled: bool,
    rates: [Rate; BUCKETS],
    allow: Vec<Cidr>,
    max_sources: usize,
    sources: HashMap<IpAddr, Source>,
    /// Shared by every source that arrives while the table is full.
    overflow: Source,
    swept: Instant,
    /// Closing log lines of sources that went quiet, for [`Self::poll_log`].
    pending: VecDeque<LogLine>,
}

impl RateLimiter {
    /// A limiter for these limits; `Err` names an allowlist entry that is
    /// not an address or CIDR.
    pub fn new(config: &RateLimitsConfig, now: Instant) -> Result<RateLimiter, String> {
        let allow = config
            .allow
            .iter()
            .map(|e| Cidr::parse(e).map_err(|why| format!("`{e}`: {why}")))
            .collect::<Result<_, _>>()?;
        let rates = [
            config.invite.into(),
            config.register.into(),
            config.options.into(),
            config.unauthenticated.into(),
            config.hard_limit.into(),
        ];
        Ok(RateLimiter {
            enabled: config.enabled,
            rates,
            allow,
            max_sources: config.max_sources.max(1),
            sources: HashMap::new(),
            overflow: Source::new(&rates, now),
            swept: now,
            pending: VecDeque::new(),
        })
    }

    /// Judge one datagram of this class from `source`, arriving at `now`.
    pub fn check(&mut self, now: Instant, source: IpAddr, class: Class) -> Outcome {
        let pass = Outcome {
            decision: Decision::Pass,
            log: None,
        };
        if !self.enabled || self.allow.iter().any(|c| c.contains(source)) {
            return pass;
        }
        let source = canonical(source);
        self.sweep(now);
        let rates = self.rates;
        let tracked = self.sources.len();
        let (entry, name) = match self.sources.entry(source) {
            Entry::Occupied(o) => (o.into_mut(), Some(source)),
            Entry::Vacant(v) if tracked < self.max_sources => {
                (v.insert(Source::new(&rates, now)), Some(source))
            }
            Entry::Vacant(_) => (&mut self.overflow, None),
        };
        entry.refill(&rates, now);
        let decision = entry.judge(&rates, class);
        let log = match decision {
            Decision::Pass => None,
            _ => entry.note_limited(name, now),
        };
        Outcome { decision, log }
    }

    /// Sources tracked now (not counting the overflow bucket).
    pub fn tracked(&self) -> usize {
        self.sources.len()
    }

    /// A log line owed for a source that stopped being limited: what it
    /// sent since its last line. Drain after each [`Self::check`].
    pub fn poll_log(&mut self) -> Option<LogLine> {
        self.pending.pop_front()
    }

    /// Forget idle sources. One limited since its last log line is kept
    /// one more minute with that count logged now, so no source gets two
    /// lines within a minute and no count goes unlogged.
    fn sweep(&mut self, now: Instant) {
        let since = now.saturating_duration_since(self.swept);
        let full = self.sources.len() >= self.max_sources;
        if (full && since >= SWEEP_WHEN_FULL) || since >= SWEEP_ANYWAY {
            let rates = self.rates;
            let pending = &mut self.pending;
            let mut close = |source: Option<IpAddr>, s: &mut Source| {
                let idle = s.idle(&rates, now);
                if idle && s.limited_since_log > 0 {
                    s.logged = Some(now);
                    pending.push_back(LogLine {
                        source,
                        limited: std::mem::take(&mut s.limited_since_log),
                    });
                    return false;
                }
                idle
            };
            self.sources.retain(|ip, s| !close(Some(*ip), s));
            close(None, &mut self.overflow);
            if self.sources.len() * 4 < self.sources.capacity() {
                self.sources.shrink_to(self.sources.len() * 2);
            }
            self.swept = now;
        }
    }
}

/// An IPv4 peer on a dual-stack socket is one source whichever way it
/// arrives (`::ffff:a.b.c.d` or `a.b.c.d`).
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// `voxbridge_sip_rate_limited_total{method,action}`.
#[derive(Debug, Default)]
pub struct RateLimitMetrics {
    refused: [AtomicU64; Class::ALL.len()],
    dropped: [AtomicU64; Class::ALL.len()],
}

impl RateLimitMetrics {
    /// Count a decision that was not `Pass`.
    pub fn count(&self, class: Class, decision: Decision) {
        let i = class as usize;
        match decision {
            Decision::Pass => {}
            Decision::Refuse { .. } => {
                self.refused[i].fetch_add(1, Ordering::Relaxed);
            }
            Decision::Drop => {
                self.dropped[i].fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    pub fn refused(&self, class: Class) -> u64 {
        self.refused[class as usize].load(Ordering::Relaxed)
    }

    pub fn dropped(&self, class: Class) -> u64 {
        self.dropped[class as usize].load(Ordering::Relaxed)
    }
}

/// `voxbridge_sip_rate_limited_total` by method and action.
impl crate::exposition::Exposed for RateLimitMetrics {
    fn expose(&self, f: &mut crate::exposition::Families<'_, '_>) -> std::fmt::Result {
        let mut samples = Vec::new();
        for class in Class::ALL {
            // ACKs, responses and keepalives are never answered, so never refused.
            if !matches!(class, Class::Ack | Class::Response | Class::Keepalive) {
                samples.push((
                    [("method", class.label()), ("action", "refused")],
                    self.refused(class),
                ));
            }
            samples.push((
                [("method", class.label()), ("action", "dropped")],
                self.dropped(class),
            ));
        }
        f.counters(
            "voxbridge_sip_rate_limited_total",
            "SIP datagrams over a per-source rate limit: refused (503) or dropped.",
            samples,
        )
    }
}

#[cfg(test)]
mod tests;
