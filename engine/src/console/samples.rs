//! The overview's memory: one sample per minute for the last
//! [`KEEP_MINUTES`], built from snapshots of the engine's counters taken
//! every few seconds. Sans-IO: snapshots and their times come in, so a
//! test drives hours of minutes without a clock. Nothing is stored on disk:
//! a restart starts an empty chart (Prometheus keeps the long history).

use std::collections::VecDeque;

/// Three hours of minutes.
pub const KEEP_MINUTES: usize = 180;

/// The engine's counters at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// Calls started since the process started.
    pub calls_started: u64,
    /// Calls in progress now.
    pub calls_active: u64,
    /// Turn-latency histogram: bounds in seconds and cumulative counts.
    pub turn_bounds: &'static [f64],
    pub turn_buckets: Vec<u64>,
    pub turns: u64,
    /// Utterances waiting for a recogniser now.
    pub asr_queued: u64,
    /// CRM lookups failed since the start.
    pub crm_errors: u64,
}

/// One minute of the overview.
#[derive(Debug, Clone, PartialEq)]
pub struct Minute {
    /// Minutes since the Unix epoch.
    pub minute: i64,
    /// Calls started in this minute.
    pub calls: u64,
    /// Most calls in progress at once (of the snapshots taken).
    pub active: u64,
    /// Turn-latency quantiles in ms of the turns that ended this minute;
    /// None when there were none.
    pub turn_p50_ms: Option<f64>,
    pub turn_p95_ms: Option<f64>,
    /// Longest ASR queue seen.
    pub asr_queue: u64,
    /// CRM lookups that failed in this minute.
    pub crm_errors: u64,
}

/// The ring of minutes.
#[derive(Debug, Default)]
pub struct Samples {
    minutes: VecDeque<Minute>,
    /// The snapshot that opened the current minute, and that minute.
    base: Option<(i64, Snapshot)>,
    /// Highs of the gauges in the current minute.
    active_high: u64,
    queue_high: u64,
}

impl Samples {
    /// Fold in a snapshot taken at `now_ms` (Unix ms). The first snapshot
    /// of a new minute closes the one before.
    pub fn observe(&mut self, now_ms: i64, snap: Snapshot) {
        let minute = now_ms.div_euclid(60_000);
        let Some((base_minute, base)) = &self.base else {
            self.active_high = snap.calls_active;
            self.queue_high = snap.asr_queued;
            self.base = Some((minute, snap));
            return;
        };
        if minute <= *base_minute {
            self.active_high = self.active_high.max(snap.calls_active);
            self.queue_high = self.queue_high.max(snap.asr_queued);
            return;
        }
        let closed = close(*base_minute, base, &snap, self.active_high, self.queue_high);
        self.minutes.push_back(closed);
        while self.minutes.len() > KEEP_MINUTES {
            self.minutes.pop_front();
        }
        self.active_high = snap.calls_active;
        self.queue_high = snap.asr_queued;
        self.base = Some((minute, snap));
    }

    /// The finished minutes, oldest first.
    pub fn minutes(&self) -> Vec<Minute> {
        self.minutes.iter().cloned().collect()
    }
}

/// The minute that `base` opened and `end` closes.
fn close(minute: i64, base: &Snapshot, end: &Snapshot, active: u64, queue: u64) -> Minute {
    // A counter that went down (cannot happen in one process) counts 0.
    let turns = end.turns.saturating_sub(base.turns);
    let buckets: Vec<u64> = end
        .turn_buckets
        .iter()
        .zip(base.turn_buckets.iter().chain(std::iter::repeat(&0)))
        .map(|(e, b)| e.saturating_sub(*b))
        .collect();
    let q = |p| quantile(end.turn_bounds, &buckets, turns, p).map(|s| s * 1000.0);
    Minute {
        minute,
        calls: end.calls_started.saturating_sub(base.calls_started),
        active,
        turn_p50_ms: q(0.5),
        turn_p95_ms: q(0.95),
        asr_queue: queue,
        crm_errors: end.crm_errors.saturating_sub(base.crm_errors),
    }
}

/// The `p` quantile of a histogram (cumulative counts per upper bound,
/// `count` values in all), interpolated within its bucket as Prometheus's
/// `histogram_quantile` does; values past the last bound read as it.
pub fn quantile(bounds: &[f64], cumulative: &[u64], count: u64, p: f64) -> Option<f64> {
    if count == 0 {
        return None;
    }
    let rank = p * count as f64;
    let mut lower = 0.0;
    let mut below = 0u64;
    for (bound, &n) in bounds.iter().zip(cumulative) {
        if n as f64 >= rank {
            let inside = n.saturating_sub(below);
            if inside == 0 {
                return Some(*bound);
            }
            let frac = (rank - below as f64) / inside as f64;
            return Some(lower + (bound - lower) * frac.clamp(0.0, 1.0));
        }
        lower = *bound;
        below = n;
    }
    bounds.last().copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNDS: &[f64] = &[0.1, 0.25, 0.5, 1.0];

    fn snap(calls: u64, active: u64, buckets: [u64; 4], turns: u64, crm: u64) -> Snapshot {
        Snapshot {
            calls_started: calls,
            calls_active: active,
            turn_bounds: BOUNDS,
            turn_buckets: buckets.to_vec(),
            turns,
            asr_queued: active / 2,
            crm_errors: crm,
        }
    }

    #[test]
    fn minutes_hold_the_differences_and_the_highs() {
        let mut s = Samples::default();
        // Minute 10: 0 → 5 calls, active up to 4; 10 turns, all ≤ 0.25 s.
        s.observe(600_000, snap(0, 1, [0, 0, 0, 0], 0, 0));
        s.observe(630_000, snap(3, 4, [5, 10, 10, 10], 10, 1));
        assert!(s.minutes().is_empty(), "the minute is not over");
        s.observe(660_000, snap(5, 2, [5, 10, 10, 10], 10, 3));
        let m = s.minutes();
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].minute, 10);
        assert_eq!(m[0].calls, 5);
        assert_eq!(m[0].active, 4);
        assert_eq!(m[0].asr_queue, 2);
        assert_eq!(m[0].crm_errors, 3);
        // Half the turns ≤ 100 ms: the median is 100 ms.
        assert!((m[0].turn_p50_ms.unwrap() - 100.0).abs() < 1e-6);
        // 95 % lies in (0.1, 0.25]: interpolated.
        let p95 = m[0].turn_p95_ms.unwrap();
        assert!(p95 > 100.0 && p95 <= 250.0, "{p95}");
        // Minute 11 had no turns: no quantile, not zero.
        s.observe(720_000, snap(5, 0, [5, 10, 10, 10], 10, 3));
        let m = s.minutes();
        assert_eq!(m[1].calls, 0);
        assert_eq!(m[1].turn_p50_ms, None);
    }

    #[test]
    fn the_ring_keeps_three_hours() {
        let mut s = Samples::default();
        for i in 0..(KEEP_MINUTES as i64 + 50) {
            s.observe(i * 60_000, snap(i as u64, 0, [0; 4], 0, 0));
        }
        let m = s.minutes();
        assert_eq!(m.len(), KEEP_MINUTES);
        assert_eq!(m.last().unwrap().minute, KEEP_MINUTES as i64 + 48);
        assert!(m.iter().all(|x| x.calls == 1));
    }

    #[test]
    fn quantiles_of_edge_cases() {
        assert_eq!(quantile(BOUNDS, &[0, 0, 0, 0], 0, 0.5), None);
        // Everything past the last bound.
        assert_eq!(quantile(BOUNDS, &[0, 0, 0, 0], 3, 0.5), Some(1.0));
        // All in the first bucket: between 0 and 0.1.
        let q = quantile(BOUNDS, &[4, 4, 4, 4], 4, 0.5).unwrap();
        assert!((q - 0.05).abs() < 1e-9, "{q}");
    }
}
