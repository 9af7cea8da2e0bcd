//! Who gets in: the call limit, the trunk allowlist and the drain switch,
//! checked by the SIP dispatcher before a dialog is created.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use crate::acl::Allowlist;

/// Why an INVITE is turned away, and with which status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Source not in `trunk.allow`: 403 Forbidden.
    NotAllowed,
    /// `calls.max_calls` reached: 503 with Retry-After.
    Busy,
    /// Shutting down: 503 with Retry-After.
    Draining,
}

impl Refusal {
    pub fn label(self) -> &'static str {
        match self {
            Refusal::NotAllowed => "not_allowed",
            Refusal::Busy => "busy",
            Refusal::Draining => "draining",
        }
    }

    /// The SIP status code that answers the INVITE.
    pub fn status(self) -> u16 {
        match self {
            Refusal::NotAllowed => 403,
            Refusal::Busy | Refusal::Draining => 503,
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
        })
    }

    /// Admit a new call from `source`, or say why not.
    pub fn admit(self: &Arc<Self>, source: Option<IpAddr>) -> Result<CallSlot, Refusal> {
        if let Some(ip) = source {
            if !self.allow.allows(ip) {
                return Err(Refusal::NotAllowed);
            }
        } else if !self.allow.is_open() {
            return Err(Refusal::NotAllowed);
        }
        if self.draining.load(Ordering::Acquire) {
            return Err(Refusal::Draining);
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
