//! Who gets in: the call limit, the measured load, the trunk allowlist and
//! the drain switch, checked by the SIP dispatcher before a dialog is
//! created.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::acl::Allowlist;
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
}

impl Refusal {
    pub fn label(self) -> &'static str {
        match self {
            Refusal::NotAllowed => "not_allowed",
            Refusal::Busy => "busy",
            Refusal::Load => "load",
            Refusal::Draining => "draining",
        }
    }

    /// The SIP status code that answers the INVITE.
    pub fn status(self) -> u16 {
        match self {
            Refusal::NotAllowed => 403,
            Refusal::Busy | Refusal::Load | Refusal::Draining => 503,
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
}

/// Holds one call slot; dropping it frees the slot.
#[derive(Debug)]
pub struct CallSlot {
    admission: Arc<Admission>,
}

impl Drop for CallSlot {
    fn drop(&mut self) {
        self.admission.active.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Admission {
    pub fn new(max_calls: usize, allow: Allowlist) -> Arc<Admission> {
        Arc::new(Admission {
            max_calls,
            allow,
            active: AtomicUsize::new(0),
            draining: AtomicBool::new(false),
            load: Mutex::new(LoadMonitor::new(Duration::ZERO)),
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
        self.reserve(now)
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
        })
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
