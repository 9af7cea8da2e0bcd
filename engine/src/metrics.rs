//! Process-wide counters. They are plain atomics so the hot path pays one
//! relaxed add; the admin HTTP endpoint that exports them in Prometheus text
//! format reads the same struct.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::call::EndReason;
use crate::sip::screen::Rejection;

/// Counters for one voxbridge process.
#[derive(Debug, Default)]
pub struct Metrics {
    pub calls_started: AtomicU64,
    pub calls_active: AtomicU64,
    pub calls_rejected_sdp: AtomicU64,
    pub calls_rejected_busy: AtomicU64,
    ended: [AtomicU64; EndReason::COUNT],
    screened: [AtomicU64; 3],
    pub dtmf_digits: AtomicU64,
}

impl Metrics {
    pub fn call_ended(&self, reason: EndReason) {
        self.ended[reason as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn ended(&self, reason: EndReason) -> u64 {
        self.ended[reason as usize].load(Ordering::Relaxed)
    }

    pub fn screened(&self, why: Rejection) {
        self.screened[why as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn screened_count(&self, why: Rejection) -> u64 {
        self.screened[why as usize].load(Ordering::Relaxed)
    }

    /// A one-line summary for logs and the end of a run.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "calls_started={} calls_active={} rejected_sdp={} rejected_busy={} dtmf_digits={}",
            self.calls_started.load(Ordering::Relaxed),
            self.calls_active.load(Ordering::Relaxed),
            self.calls_rejected_sdp.load(Ordering::Relaxed),
            self.calls_rejected_busy.load(Ordering::Relaxed),
            self.dtmf_digits.load(Ordering::Relaxed),
        );
        for reason in EndReason::ALL {
            s.push_str(&format!(" ended_{}={}", reason.label(), self.ended(reason)));
        }
        for why in [
            Rejection::UnknownMethod,
            Rejection::BadRequest,
            Rejection::Garbage,
        ] {
            s.push_str(&format!(
                " sip_{}={}",
                why.label(),
                self.screened_count(why)
            ));
        }
        s
    }
}
