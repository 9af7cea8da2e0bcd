//! The per-call send clock: which frames are due at a given instant, and the
//! RTP timestamp of each.
//!
//! Deadlines are `start + n * ptime`, never `last + ptime`: late wake-ups of
//! the task then cost nothing over a long call, where accumulating them would
//! make us send slower than real time and starve the peer's jitter buffer.
//! After a long stall (the process was descheduled, or media was on hold) the
//! clock skips ahead instead of bursting out every missed frame at once.

use std::ops::Range;
use std::time::{Duration, Instant};

use crate::Codec;

/// More frames than this due at once means we stalled: skip, don't burst.
pub const MAX_BURST: u64 = 5;

/// Sans-IO pacing clock. Time is passed in; nothing here reads the clock.
#[derive(Debug, Clone)]
pub struct PacingClock {
    start: Instant,
    ptime: Duration,
    /// Index (since `start`) of the next frame not yet handed out.
    next: u64,
    /// RTP timestamp of frame 0 since `start`.
    ts_origin: u32,
    samples_per_frame: u32,
    skipped: u64,
}

impl PacingClock {
    /// A clock whose frame 0 is due at `start`. `ptime` below 1 ms is taken
    /// as 1 ms.
    pub fn new(start: Instant, ptime: Duration) -> Self {
        let ptime = ptime.max(Duration::from_millis(1));
        PacingClock {
            start,
            ptime,
            next: 0,
            ts_origin: 0,
            samples_per_frame: samples_for(ptime),
            skipped: 0,
        }
    }

    /// Start the RTP timestamps at `ts` (RFC 3550 wants a random origin).
    pub fn with_rtp_origin(mut self, ts: u32) -> Self {
        self.ts_origin = ts;
        self
    }

    /// The packet interval.
    pub fn ptime(&self) -> Duration {
        self.ptime
    }

    /// 8 kHz samples per frame.
    pub fn samples_per_frame(&self) -> u32 {
        self.samples_per_frame
    }

    /// Frames skipped after stalls so far.
    pub fn frames_skipped(&self) -> u64 {
        self.skipped
    }

    /// When frame `n` is due.
    pub fn deadline(&self, n: u64) -> Instant {
        let nanos = self.ptime.as_nanos().saturating_mul(u128::from(n));
        let offset = Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX));
        // Only reachable after centuries of call time; stay far in the future.
        self.start
            .checked_add(offset)
            .unwrap_or(self.start + Duration::from_secs(100 * 365 * 86_400))
    }

    /// When the next frame is due.
    pub fn next_deadline(&self) -> Instant {
        self.deadline(self.next)
    }

    /// Index of the next frame to be handed out.
    pub fn next_frame(&self) -> u64 {
        self.next
    }

    /// Hand out the frames due at `now` (possibly none). More than
    /// [`MAX_BURST`] due means a stall: only the latest is handed out and
    /// the others are counted as skipped, so the timestamps still follow
    /// real time.
    pub fn due_frames(&mut self, now: Instant) -> Range<u64> {
        let Some(elapsed) = now.checked_duration_since(self.start) else {
            return self.next..self.next;
        };
        let last_due = elapsed.as_nanos() / self.ptime.as_nanos();
        let last_due = u64::try_from(last_due).unwrap_or(u64::MAX - 1);
        if last_due < self.next {
            return self.next..self.next;
        }
        let due = last_due - self.next + 1;
        if due > MAX_BURST {
            self.skipped += due - 1;
            self.next = last_due;
        }
        let frames = self.next..last_due + 1;
        self.next = last_due + 1;
        frames
    }

    /// How many frames are due at `now` (see [`due_frames`](Self::due_frames)).
    pub fn tick(&mut self, now: Instant) -> u32 {
        let frames = self.due_frames(now);
        u32::try_from(frames.end - frames.start).unwrap_or(u32::MAX)
    }

    /// RTP timestamp of frame `n` (wrapping, as RTP timestamps do).
    pub fn rtp_timestamp(&self, n: u64) -> u32 {
        // Truncating n is fine: (n mod 2^32) * spf ≡ n * spf (mod 2^32).
        self.ts_origin
            .wrapping_add((n as u32).wrapping_mul(self.samples_per_frame))
    }

    /// Change the packet interval from the next frame on, keeping its
    /// deadline and timestamp (a re-INVITE must not disturb the stream).
    pub fn set_ptime(&mut self, ptime: Duration) {
        let ptime = ptime.max(Duration::from_millis(1));
        if ptime == self.ptime {
            return;
        }
        self.start = self.next_deadline();
        self.ts_origin = self.rtp_timestamp(self.next);
        self.next = 0;
        self.ptime = ptime;
        self.samples_per_frame = samples_for(ptime);
    }
}

fn samples_for(ptime: Duration) -> u32 {
    let samples = ptime.as_micros() * u128::from(Codec::CLOCK_RATE) / 1_000_000;
    u32::try_from(samples).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PTIME: Duration = Duration::from_millis(20);

    /// Deterministic pseudo-random numbers (xorshift), no dependency needed.
    struct XorShift(u64);
    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    #[test]
    fn ten_minutes_of_jittery_wakeups_do_not_drift() {
        let start = Instant::now();
        let end = start + Duration::from_secs(600);
        let mut clock = PacingClock::new(start, PTIME);
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        let mut frames = 0u64;
        while clock.next_deadline() < end {
            let late = Duration::from_micros(rng.next() % 3001);
            frames += u64::from(clock.tick(clock.next_deadline() + late));
        }
        assert_eq!(frames, 30_000);
        assert_eq!(clock.next_deadline(), end);
        assert_eq!(clock.frames_skipped(), 0);
        assert_eq!(clock.rtp_timestamp(clock.next_frame()), 30_000 * 160);
    }

    #[test]
    fn coarse_wakeups_get_several_frames_without_losing_any() {
        let start = Instant::now();
        let mut clock = PacingClock::new(start, PTIME);
        let mut rng = XorShift(12345);
        let mut now = start;
        let mut frames = 0u64;
        while now < start + Duration::from_secs(60) {
            // Wake every 0..=90 ms: up to 5 frames due, never a skip.
            now += Duration::from_millis(rng.next() % 91);
            frames += u64::from(clock.tick(now));
        }
        let expected = (now - start).as_millis() as u64 / 20 + 1;
        assert_eq!(frames, expected);
        assert_eq!(clock.frames_skipped(), 0);
    }

    #[test]
    fn nothing_due_before_the_deadline() {
        let start = Instant::now();
        let mut clock = PacingClock::new(start, PTIME);
        assert_eq!(clock.tick(start), 1);
        assert_eq!(clock.tick(start + Duration::from_millis(19)), 0);
        assert_eq!(clock.next_deadline(), start + PTIME);
        assert_eq!(clock.tick(start + PTIME), 1);
    }

    #[test]
    fn a_stall_skips_ahead_instead_of_bursting() {
        let start = Instant::now();
        let mut clock = PacingClock::new(start, PTIME).with_rtp_origin(u32::MAX - 100);
        assert_eq!(clock.tick(start), 1);
        // Descheduled for a second.
        let now = start + Duration::from_millis(1005);
        assert_eq!(clock.due_frames(now), 50..51);
        assert_eq!(clock.frames_skipped(), 49);
        assert_eq!(clock.next_deadline(), start + Duration::from_millis(1020));
        // Timestamps follow real time and wrap.
        assert_eq!(clock.rtp_timestamp(50), (u32::MAX - 100).wrapping_add(8000));
        // Exactly MAX_BURST behind still bursts.
        let now = start + Duration::from_millis(1000 + 20 * 5);
        assert_eq!(clock.tick(now), 5);
    }

    #[test]
    fn ptime_change_keeps_deadline_and_timestamp() {
        let start = Instant::now();
        let mut clock = PacingClock::new(start, PTIME).with_rtp_origin(1000);
        assert_eq!(clock.tick(start + Duration::from_millis(45)), 3);
        let deadline = clock.next_deadline();
        let ts = clock.rtp_timestamp(clock.next_frame());
        clock.set_ptime(Duration::from_millis(30));
        assert_eq!(clock.next_deadline(), deadline);
        assert_eq!(clock.rtp_timestamp(clock.next_frame()), ts);
        assert_eq!(clock.samples_per_frame(), 240);
        let frames = clock.due_frames(deadline + Duration::from_millis(30));
        assert_eq!(frames.end - frames.start, 2);
        assert_eq!(clock.rtp_timestamp(frames.start + 1), ts + 240);
    }
}
