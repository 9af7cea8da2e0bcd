//! Who gets in: the call limit, the per-source call cap, the measured load,
//! the trunk allowlist and the drain switch, checked by the SIP dispatcher
//! before a dialog is created.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::acl::{Allowlist, Cidr};
use crate::load::LoadMonitor;

/// Why an INVITE is turned away, and with which status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Source not in `trunk.allow`: 403 Forbidden.
    NotAllowed,
    /// `calls.max_calls` reached: 503 with Retry-After.
    Busy,
    /// The runtime runs tasks later than `calls.max_scheduling_delay_ms`
    /// (see `load`): 503 with Retry-After, rather than answer and play late.
    Load,
    /// Shutting down: 503 with Retry-After.
    Draining,
    /// The source already has `sip.rate_limits.max_calls_per_source` calls
    /// up: 503 with Retry-After. A flood that the INVITE rate limit lets
    /// through at its permitted rate would otherwise fill `calls.max_calls`
    /// within seconds and lock out the trunk's callers.
    SourceBusy,
}

impl Refusal {
    pub fn label(self) -> &'static str {
        match self {
            Refusal::NotAllowed => "not_allowed",
            Refusal::Busy => "busy",
            Refusal::Load => "load",
            Refusal::Draining => "draining",
            Refusal::SourceBusy => "source_busy",
        }
    }

    /// The SIP status code that answers the INVITE.
    pub fn status(self) -> u16 {
        match self {
            Refusal::NotAllowed => 403,
            Refusal::Busy | Refusal::Load | Refusal::Draining | Refusal::SourceBusy => 503,
        }
    }
}

/// Shared admission state.
#[derive(Debug)]
pub struct Admission {
    max_calls: usize,
    allow: Allowlist,
    active: AtomicUsize,
    draining: AtomicBool,
    /// Fed by the load probe; off (limit 0) until `set_load_limit`.
    load: Mutex<LoadMonitor>,
    sources: Option<SourceCap>,
}

/// At most `max` calls at once from one source address, but for the
/// sources in `exempt` (the PBX or proxy, which carries every caller).
#[derive(Debug)]
pub struct SourceCap {
    max: usize,
    exempt: Vec<Cidr>,
    /// Calls up per capped source, and when a refusal of it was last
    /// logged; a source leaves the map with its last call, so the map is as
    /// large as the sources with calls up.
    up: Mutex<HashMap<IpAddr, Up>>,
}

#[derive(Debug, Default)]
struct Up {
    calls: usize,
    logged: Option<Instant>,
}

/// A source over its cap is logged at most this often (a flood is refused
/// many times a second; the metric counts each refusal).
const SOURCE_LOG_EVERY: Duration = Duration::from_secs(60);

impl SourceCap {
    /// `max` 0: no cap.
    pub fn new(max: usize, exempt: Vec<Cidr>) -> Option<SourceCap> {
        (max > 0).then(|| SourceCap {
            max,
            exempt,
            up: Mutex::new(HashMap::new()),
        })
    }

    fn up(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Up>> {
        // Plain counts: a panic elsewhere cannot leave them half-updated.
        self.up.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Count a call from `ip`, unless it has `max` up; `Ok(false)` when
    /// the source is exempt (nothing to give back later).
    fn take(&self, ip: IpAddr) -> Result<bool, Refusal> {
        if self.exempt.iter().any(|c| c.contains(ip)) {
            return Ok(false);
        }
        let mut up = self.up();
        let entry = up.entry(ip).or_default();
        if entry.calls >= self.max {
            return Err(Refusal::SourceBusy);
        }
        entry.calls += 1;
        Ok(true)
    }

    fn give_back(&self, ip: IpAddr) {
        let mut up = self.up();
        if let Some(entry) = up.get_mut(&ip) {
            entry.calls = entry.calls.saturating_sub(1);
            if entry.calls == 0 {
                up.remove(&ip);
            }
        }
    }

    /// Whether a refusal of `ip` at `now` is due a log line.
    fn log_due(&self, ip: IpAddr, now: Instant) -> bool {
        let mut up = self.up();
        let Some(entry) = up.get_mut(&ip) else {
            return true;
        };
        let due = entry
            .logged
            .is_none_or(|at| now.saturating_duration_since(at) >= SOURCE_LOG_EVERY);
        if due {
            entry.logged = Some(now);
        }
        due
    }
}

/// Holds one call slot; dropping it frees the slot.
#[derive(Debug)]
pub struct CallSlot {
    admission: Arc<Admission>,
    /// The capped source this call counts against.
    source: Option<IpAddr>,
}

impl Drop for CallSlot {
    fn drop(&mut self) {
        self.admission.active.fetch_sub(1, Ordering::AcqRel);
        if let (Some(ip), Some(cap)) = (self.source, &self.admission.sources) {
            cap.give_back(ip);
        }
    }
}

impl Admission {
    pub fn new(max_calls: usize, allow: Allowlist) -> Arc<Admission> {
        Admission::with_source_cap(max_calls, allow, None)
    }

    /// [`new`](Self::new) with a per-source cap on calls at once.
    pub fn with_source_cap(
        max_calls: usize,
        allow: Allowlist,
        sources: Option<SourceCap>,
    ) -> Arc<Admission> {
        Arc::new(Admission {
            max_calls,
            allow,
            active: AtomicUsize::new(0),
            draining: AtomicBool::new(false),
            load: Mutex::new(LoadMonitor::new(Duration::ZERO)),
            sources,
        })
    }

    fn monitor(&self) -> std::sync::MutexGuard<'_, LoadMonitor> {
        // The monitor holds plain numbers: a panic elsewhere cannot leave
        // it half-updated in a way that matters.
        self.load.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Refuse calls while the measured scheduling delay is over `limit`
    /// (zero: never).
    pub fn set_load_limit(&self, limit: Duration) {
        self.monitor().set_limit(limit);
    }

    /// One load-probe tick (due at `due`, ran at `now`); its lateness.
    pub fn observe_load(&self, due: Instant, now: Instant) -> Duration {
        self.monitor().tick(due, now)
    }

    /// The scheduling delay admission judges by at `now`.
    pub fn load_delay(&self, now: Instant) -> Duration {
        self.monitor().delay(now)
    }

    /// Admit a new call from `source`, or say why not.
    pub fn admit(self: &Arc<Self>, source: Option<IpAddr>) -> Result<CallSlot, Refusal> {
        self.admit_at(source, Instant::now())
    }

    /// [`admit`](Self::admit) at `now` (tests pass their own time).
    pub fn admit_at(
        self: &Arc<Self>,
        source: Option<IpAddr>,
        now: Instant,
    ) -> Result<CallSlot, Refusal> {
        if let Some(ip) = source {
            if !self.allow.allows(ip) {
                return Err(Refusal::NotAllowed);
            }
        } else if !self.allow.is_open() {
            return Err(Refusal::NotAllowed);
        }
        let mut slot = self.reserve(now)?;
        if let (Some(ip), Some(cap)) = (source, &self.sources) {
            // After the call limit: a refused INVITE takes no source count,
            // and dropping `slot` on refusal frees its call slot.
            if cap.take(ip)? {
                slot.source = Some(ip);
            }
        }
        Ok(slot)
    }

    /// Admit a call the engine places (a campaign's, `POST /calls`): the
    /// same limit, load and drain rules as an INVITE, without the trunk
    /// allowlist, so inbound and outbound calls share `calls.max_calls`.
    pub fn admit_outbound(self: &Arc<Self>, now: Instant) -> Result<CallSlot, Refusal> {
        self.reserve(now)
    }

    fn reserve(self: &Arc<Self>, now: Instant) -> Result<CallSlot, Refusal> {
        if self.draining.load(Ordering::Acquire) {
            return Err(Refusal::Draining);
        }
        if self.monitor().overloaded(now) {
            return Err(Refusal::Load);
        }
        // Reserve first, then check: two INVITEs racing for the last slot
        // cannot both win.
        let before = self.active.fetch_add(1, Ordering::AcqRel);
        if before >= self.max_calls {
            self.active.fetch_sub(1, Ordering::AcqRel);
            return Err(Refusal::Busy);
        }
        Ok(CallSlot {
            admission: self.clone(),
            source: None,
        })
    }

    /// Whether this refusal gets a log line: every refusal does but a
    /// source over its cap, which is logged once a minute.
    pub fn log_refusal(&self, refusal: Refusal, source: Option<IpAddr>, now: Instant) -> bool {
        match (refusal, source, &self.sources) {
            (Refusal::SourceBusy, Some(ip), Some(cap)) => cap.log_due(ip, now),
            _ => true,
        }
    }

    pub fn active(&self) -> usize {
        self.active.load(Ordering::Acquire)
    }

    /// Refuse new calls from now on.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_holds_and_slots_free_on_drop() {
        let a = Admission::new(2, Allowlist::default());
        let s1 = a.admit(None).unwrap();
        let _s2 = a.admit(None).unwrap();
        assert_eq!(a.admit(None).unwrap_err(), Refusal::Busy);
        drop(s1);
        assert!(a.admit(None).is_ok());
    }

    #[test]
    fn measured_load_refuses_then_admits_again() {
        let a = Admission::new(10, Allowlist::default());
        a.set_load_limit(Duration::from_millis(10));
        let ms = Duration::from_millis;
        let mut now = Instant::now();
        let tick = |late: Duration, now: &mut Instant| {
            let due = *now + crate::load::PROBE_INTERVAL;
            *now = due + late;
            a.observe_load(due, *now);
        };
        for _ in 0..100 {
            tick(ms(1), &mut now);
        }
        let slot = a.admit_at(None, now).unwrap();
        // A second of ticks 30 ms late: the box is full.
        for _ in 0..25 {
            tick(ms(30), &mut now);
        }
        assert_eq!(a.admit_at(None, now).unwrap_err(), Refusal::Load);
        assert_eq!(Refusal::Load.status(), 503);
        assert_eq!(a.active(), 1);
        // The runtime is punctual again: calls come in.
        for _ in 0..200 {
            tick(ms(1), &mut now);
        }
        assert!(a.admit_at(None, now).is_ok());
        drop(slot);
        // Off (limit 0): never refused for load.
        a.set_load_limit(Duration::ZERO);
        for _ in 0..50 {
            tick(ms(100), &mut now);
        }
        assert!(a.admit_at(None, now).is_ok());
    }

    #[test]
    fn one_source_is_capped_the_exempt_trunk_is_not() {
        let trunk: IpAddr = "192.0.2.10".parse().unwrap();
        let flood: IpAddr = "198.51.100.7".parse().unwrap();
        let other: IpAddr = "198.51.100.8".parse().unwrap();
        let cap = SourceCap::new(2, vec![Cidr::parse("192.0.2.0/24").unwrap()]);
        let a = Admission::with_source_cap(10, Allowlist::default(), cap);
        let f1 = a.admit(Some(flood)).unwrap();
        let _f2 = a.admit(Some(flood)).unwrap();
        assert_eq!(a.admit(Some(flood)).unwrap_err(), Refusal::SourceBusy);
        assert_eq!(Refusal::SourceBusy.status(), 503);
        // The refusal gave its call slot back; others still get in.
        assert_eq!(a.active(), 2);
        let _o = a.admit(Some(other)).unwrap();
        let trunk_calls: Vec<_> = (0..5).map(|_| a.admit(Some(trunk)).unwrap()).collect();
        assert_eq!(a.active(), 8);
        // A finished call frees its source's count.
        drop(f1);
        assert!(a.admit(Some(flood)).is_ok());
        drop(trunk_calls);
        assert!(SourceCap::new(0, vec![]).is_none());
        // Logged once a minute per source, not per refused INVITE.
        let now = Instant::now();
        assert!(a.log_refusal(Refusal::SourceBusy, Some(flood), now));
        assert!(!a.log_refusal(
            Refusal::SourceBusy,
            Some(flood),
            now + Duration::from_secs(5)
        ));
        assert!(a.log_refusal(
            Refusal::SourceBusy,
            Some(flood),
            now + Duration::from_secs(61)
        ));
        assert!(a.log_refusal(Refusal::Busy, Some(flood), now));
    }

    #[test]
    fn draining_refuses_and_allowlist_applies() {
        let a = Admission::new(10, Allowlist::parse(&["127.0.0.1".into()]).unwrap());
        assert_eq!(
            a.admit(Some("127.0.0.2".parse().unwrap())).unwrap_err(),
            Refusal::NotAllowed
        );
        assert_eq!(a.admit(None).unwrap_err(), Refusal::NotAllowed);
        let _ok = a.admit(Some("127.0.0.1".parse().unwrap())).unwrap();
        a.start_draining();
        assert_eq!(
            a.admit(Some("127.0.0.1".parse().unwrap())).unwrap_err(),
            Refusal::Draining
        );
        assert_eq!(a.active(), 1);
    }
}
