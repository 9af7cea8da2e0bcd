//! A small fixed-depth jitter buffer for received audio frames, and the
//! concealment used when a frame is missing at playout time.
//!
//! Sans-IO: the session `push`es packets as they arrive and `pop`s once per
//! playout tick. Frames are keyed by RTP sequence number (with wrap-around);
//! playout starts once `depth` frames are buffered, out-of-order packets are
//! put back in order, duplicates and packets older than the playout point are
//! dropped, and a gap with later frames already buffered is reported as
//! `Concealed`. An SSRC change or a sequence jump beyond [`RESYNC_JUMP`]
//! (sipp switching pcaps mid-call) restarts the buffer on the new stream.
//!
//! Storage is a ring of reusable byte buffers, so steady-state operation does
//! not allocate.

/// A sequence jump larger than this (either way) is a new stream, not loss.
pub const RESYNC_JUMP: u16 = 100;

/// Default playout depth in frames (60 ms at 20 ms ptime).
pub const DEFAULT_DEPTH: usize = 3;

/// Counters, cumulative over resyncs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JitterStats {
    /// Packets pushed.
    pub received: u64,
    /// Packets that arrived after their playout time had passed.
    pub late: u64,
    /// Frames never received by their playout time (concealed or skipped).
    pub lost: u64,
    /// Packets received twice.
    pub duplicate: u64,
    /// Buffered frames discarded to bound latency (sender faster than us).
    pub dropped: u64,
    /// Restarts on a new SSRC or a sequence jump.
    pub resyncs: u64,
}

/// What to play at this tick.
#[derive(Debug, PartialEq, Eq)]
pub enum JitterOutput<'a> {
    /// The next frame, in order.
    Frame {
        /// Its sequence number.
        seq: u16,
        /// Its RTP timestamp.
        timestamp: u32,
        /// Its payload (still encoded).
        payload: &'a [u8],
    },
    /// The next frame is missing but later ones are here: play a
    /// concealment frame (see [`Concealer`]).
    Concealed,
    /// Nothing to play (not started yet, or ran dry and refilling).
    Empty,
}

#[derive(Debug, Default)]
struct Slot {
    filled: bool,
    /// A packet of the stream that carried no audio (an RFC 4733 event):
    /// its time is played as concealment without counting a loss.
    no_audio: bool,
    seq: u16,
    timestamp: u32,
    payload: Vec<u8>,
}

/// The jitter buffer. See the module documentation.
#[derive(Debug)]
pub struct JitterBuffer {
    depth: usize,
    /// More than this many frames between the playout point and the newest
    /// packet and the oldest are dropped.
    max_span: u16,
    slots: Vec<Slot>,
    mask: usize,
    ssrc: Option<u32>,
    /// Sequence number of the next frame to play.
    next_seq: u16,
    buffered: usize,
    playing: bool,
    /// Whether anything was played since the last resync: until then the
    /// playout point may still move back for an early packet that was
    /// overtaken by its successor.
    started: bool,
    /// Bit i set: `next_seq - 1 - i` was played from a real packet; tells a
    /// duplicate of a played frame from a late packet.
    played: u64,
    stats: JitterStats,
}

impl Default for JitterBuffer {
    fn default() -> Self {
        Self::new(DEFAULT_DEPTH)
    }
}

impl JitterBuffer {
    /// A buffer that starts playing once `depth` frames (at least 1) are in.
    pub fn new(depth: usize) -> Self {
        let depth = depth.clamp(1, 16);
        let max_span = 2 * depth + 1;
        let capacity = max_span.next_power_of_two();
        JitterBuffer {
            depth,
            max_span: max_span as u16,
            slots: (0..capacity).map(|_| Slot::default()).collect(),
            mask: capacity - 1,
            ssrc: None,
            next_seq: 0,
            buffered: 0,
            playing: false,
            started: false,
            played: 0,
            stats: JitterStats::default(),
        }
    }

    /// The configured depth in frames.
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// Counters so far.
    pub fn stats(&self) -> JitterStats {
        self.stats
    }

    /// Frames currently buffered.
    pub fn len(&self) -> usize {
        self.buffered
    }

    /// Whether no frame is buffered.
    pub fn is_empty(&self) -> bool {
        self.buffered == 0
    }

    /// Forget the stream (e.g. the codec changed); counters are kept.
    pub fn reset(&mut self) {
        for slot in &mut self.slots {
            slot.filled = false;
        }
        self.ssrc = None;
        self.buffered = 0;
        self.playing = false;
        self.started = false;
        self.played = 0;
    }

    fn resync(&mut self, ssrc: u32, seq: u16) {
        if self.ssrc.is_some() {
            self.stats.resyncs += 1;
        }
        self.reset();
        self.ssrc = Some(ssrc);
        self.next_seq = seq;
    }

    fn slot_index(&self, seq: u16) -> usize {
        usize::from(seq) & self.mask
    }

    /// Move the playout point one frame forward without playing; a frame
    /// still buffered there was never played and is counted as dropped.
    fn skip_oldest(&mut self) {
        let idx = self.slot_index(self.next_seq);
        let slot = &mut self.slots[idx];
        if slot.filled && slot.seq == self.next_seq {
            slot.filled = false;
            self.buffered -= 1;
            self.stats.dropped += 1;
        } else {
            self.stats.lost += 1;
        }
        self.advance(false);
    }

    fn advance(&mut self, played: bool) {
        self.next_seq = self.next_seq.wrapping_add(1);
        self.played = (self.played << 1) | u64::from(played);
    }

    /// Store a received audio packet.
    pub fn push(&mut self, ssrc: u32, seq: u16, timestamp: u32, payload: &[u8]) {
        self.stats.received += 1;
        if self.ssrc != Some(ssrc) {
            self.resync(ssrc, seq);
        }
        let mut delta = seq.wrapping_sub(self.next_seq) as i16;
        if delta.unsigned_abs() > RESYNC_JUMP {
            self.resync(ssrc, seq);
            delta = 0;
        }
        if delta < 0 && !self.started {
            let back = delta.unsigned_abs();
            let span = self
                .slots
                .iter()
                .filter(|slot| slot.filled)
                .map(|slot| slot.seq.wrapping_sub(self.next_seq) + 1)
                .max()
                .unwrap_or(0);
            if span + back <= self.max_span {
                self.next_seq = seq;
                delta = 0;
            }
        }
        if delta < 0 {
            let back = u32::from(delta.unsigned_abs()) - 1;
            if back < 64 && self.played & (1u64 << back) != 0 {
                self.stats.duplicate += 1;
            } else {
                self.stats.late += 1;
            }
            return;
        }
        let mut ahead = delta as u16;
        while ahead >= self.max_span {
            self.skip_oldest();
            ahead -= 1;
        }
        let idx = self.slot_index(seq);
        let slot = &mut self.slots[idx];
        if slot.filled {
            // Slots only ever hold frames in [next_seq, next_seq + max_span),
            // so a filled slot here holds this very sequence number.
            self.stats.duplicate += 1;
            return;
        }
        slot.filled = true;
        slot.no_audio = false;
        slot.seq = seq;
        slot.timestamp = timestamp;
        slot.payload.clear();
        slot.payload.extend_from_slice(payload);
        self.buffered += 1;
    }

    /// A packet of this stream that is not audio (an RFC 4733 event sent in
    /// the audio's sequence space): its sequence number is not a loss.
    /// Ignored outside the window being buffered (another SSRC, or a
    /// sequence space of its own, as some senders use for events).
    pub fn skip(&mut self, ssrc: u32, seq: u16) {
        if self.ssrc != Some(ssrc) {
            return;
        }
        let delta = seq.wrapping_sub(self.next_seq) as i16;
        if delta < 0 || delta as u16 >= self.max_span {
            return;
        }
        let idx = self.slot_index(seq);
        let slot = &mut self.slots[idx];
        if slot.filled {
            return;
        }
        slot.filled = true;
        slot.no_audio = true;
        slot.seq = seq;
        slot.payload.clear();
        self.buffered += 1;
    }

    /// What to play now; call once per playout tick.
    pub fn pop(&mut self) -> JitterOutput<'_> {
        if !self.playing {
            if self.buffered < self.depth {
                return JitterOutput::Empty;
            }
            self.playing = true;
        }
        self.started = true;
        let seq = self.next_seq;
        let idx = self.slot_index(seq);
        if self.slots[idx].filled && self.slots[idx].seq == seq && self.slots[idx].no_audio {
            self.slots[idx].filled = false;
            self.buffered -= 1;
            self.advance(false);
            return JitterOutput::Concealed;
        }
        if self.slots[idx].filled && self.slots[idx].seq == seq {
            self.slots[idx].filled = false;
            self.buffered -= 1;
            self.advance(true);
            let slot = &self.slots[idx];
            return JitterOutput::Frame {
                seq,
                timestamp: slot.timestamp,
                payload: &slot.payload,
            };
        }
        if self.buffered > 0 {
            self.stats.lost += 1;
            self.advance(false);
            return JitterOutput::Concealed;
        }
        // Ran dry: refill to `depth` before playing again, which re-absorbs
        // the jitter that caused the underrun.
        self.playing = false;
        JitterOutput::Empty
    }
}

/// Number of consecutive concealed frames after which we play silence.
const CONCEAL_FADE_FRAMES: u32 = 3;

/// Produces PCM for frames the jitter buffer reports as `Concealed`: the last
/// good frame repeated with a fading gain, then silence. Crude next to
/// G.711 Appendix I, but enough for VAD/ASR to not see a hard click or gap.
#[derive(Debug, Default, Clone)]
pub struct Concealer {
    last: Vec<i16>,
    run: u32,
}

impl Concealer {
    /// A concealer with no history (it will produce silence).
    pub fn new() -> Self {
        Self::default()
    }

    /// Remember a correctly received frame.
    pub fn good_frame(&mut self, pcm: &[i16]) {
        self.last.clear();
        self.last.extend_from_slice(pcm);
        self.run = 0;
    }

    /// Length of the last good frame (what a concealed frame should last).
    pub fn last_len(&self) -> Option<usize> {
        (!self.last.is_empty()).then_some(self.last.len())
    }

    /// Append `len` samples of concealment to `out`.
    pub fn conceal(&mut self, len: usize, out: &mut Vec<i16>) {
        self.run = self.run.saturating_add(1);
        if self.run > CONCEAL_FADE_FRAMES || self.last.is_empty() {
            out.resize(out.len() + len, 0);
            return;
        }
        // Gains 3/4, 2/4, 1/4 for the 1st, 2nd, 3rd missing frame in a row.
        let gain = (CONCEAL_FADE_FRAMES + 1 - self.run) as i32;
        let den = (CONCEAL_FADE_FRAMES + 1) as i32;
        out.extend(
            self.last
                .iter()
                .cycle()
                .take(len)
                .map(|&s| (i32::from(s) * gain / den) as i16),
        );
    }

    /// Forget the history.
    pub fn reset(&mut self) {
        self.last.clear();
        self.run = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SSRC: u32 = 42;

    fn pop_all(jb: &mut JitterBuffer, n: usize) -> Vec<Option<u16>> {
        (0..n)
            .map(|_| match jb.pop() {
                JitterOutput::Frame { seq, payload, .. } => {
                    assert_eq!(payload, seq.to_be_bytes());
                    Some(seq)
                }
                JitterOutput::Concealed => Some(u16::MAX),
                JitterOutput::Empty => None,
            })
            .collect()
    }

    fn push(jb: &mut JitterBuffer, seq: u16) {
        jb.push(SSRC, seq, u32::from(seq) * 160, &seq.to_be_bytes());
    }

    const C: Option<u16> = Some(u16::MAX);

    #[test]
    fn in_order_after_prefetch() {
        let mut jb = JitterBuffer::new(3);
        push(&mut jb, 10);
        assert_eq!(jb.pop(), JitterOutput::Empty);
        push(&mut jb, 11);
        push(&mut jb, 12);
        assert_eq!(pop_all(&mut jb, 1), [Some(10)]);
        for seq in 13..20 {
            push(&mut jb, seq);
            assert_eq!(pop_all(&mut jb, 1), [Some(seq - 2)]);
        }
        assert_eq!(pop_all(&mut jb, 3), [Some(18), Some(19), None]);
        let s = jb.stats();
        assert_eq!((s.received, s.lost, s.late, s.duplicate), (10, 0, 0, 0));
    }

    #[test]
    fn reorders() {
        let mut jb = JitterBuffer::new(3);
        for seq in [1, 3, 2, 5, 4, 6] {
            push(&mut jb, seq);
        }
        assert_eq!(
            pop_all(&mut jb, 7),
            [Some(1), Some(2), Some(3), Some(4), Some(5), Some(6), None]
        );
        assert_eq!(jb.stats().lost, 0);
    }

    #[test]
    fn an_overtaken_first_packet_is_still_played() {
        let mut jb = JitterBuffer::new(3);
        for seq in [11, 10, 12] {
            push(&mut jb, seq);
        }
        assert_eq!(pop_all(&mut jb, 4), [Some(10), Some(11), Some(12), None]);
        // Once playing, an older packet is late.
        for seq in [14, 15, 16] {
            push(&mut jb, seq);
        }
        push(&mut jb, 9);
        assert_eq!(jb.stats().late, 1);
    }

    #[test]
    fn conceals_a_lost_frame() {
        let mut jb = JitterBuffer::new(2);
        for seq in [1, 2, 4, 5] {
            push(&mut jb, seq);
        }
        assert_eq!(pop_all(&mut jb, 5), [Some(1), Some(2), C, Some(4), Some(5)]);
        assert_eq!(jb.stats().lost, 1);
        // The missing packet finally shows up: too late.
        push(&mut jb, 3);
        assert_eq!(jb.stats().late, 1);
    }

    #[test]
    fn drops_duplicates() {
        let mut jb = JitterBuffer::new(2);
        for seq in [1, 2, 2, 3] {
            push(&mut jb, seq);
        }
        assert_eq!(pop_all(&mut jb, 2), [Some(1), Some(2)]);
        push(&mut jb, 1); // already played
        assert_eq!(pop_all(&mut jb, 2), [Some(3), None]);
        let s = jb.stats();
        assert_eq!((s.duplicate, s.late), (2, 0));
    }

    #[test]
    fn event_packets_in_the_audio_sequence_are_not_losses() {
        let mut jb = JitterBuffer::new(3);
        for seq in 1..=3 {
            push(&mut jb, seq);
        }
        assert_eq!(pop_all(&mut jb, 1), [Some(1)]);
        // 4..=6 are RFC 4733 events; audio resumes at 7.
        for seq in 4..=6 {
            jb.skip(SSRC, seq);
        }
        jb.skip(SSRC + 1, 7); // another stream: ignored
        jb.skip(SSRC, 40_000); // another sequence space: ignored
        push(&mut jb, 7);
        push(&mut jb, 8);
        assert_eq!(
            pop_all(&mut jb, 7),
            [Some(2), Some(3), C, C, C, Some(7), Some(8)]
        );
        assert_eq!(jb.stats().lost, 0);
        // A real gap still counts.
        for seq in [10, 11, 12] {
            push(&mut jb, seq);
        }
        assert_eq!(pop_all(&mut jb, 2), [C, Some(10)]);
        assert_eq!(jb.stats().lost, 1);
    }

    #[test]
    fn wraps_around_65535() {
        let mut jb = JitterBuffer::new(2);
        for seq in [65534, 0, 65535, 1, 2] {
            push(&mut jb, seq);
        }
        assert_eq!(
            pop_all(&mut jb, 6),
            [Some(65534), Some(65535), Some(0), Some(1), Some(2), None]
        );
        push(&mut jb, 65535);
        assert_eq!(jb.stats().duplicate, 1);
    }

    #[test]
    fn resyncs_on_new_ssrc_and_big_jump() {
        let mut jb = JitterBuffer::new(2);
        for seq in 100..104 {
            push(&mut jb, seq);
        }
        assert_eq!(pop_all(&mut jb, 2), [Some(100), Some(101)]);
        // sipp switches pcap: new SSRC, sequence restarts.
        for seq in 1..4 {
            jb.push(7, seq, 0, &seq.to_be_bytes());
        }
        assert_eq!(pop_all(&mut jb, 3), [Some(1), Some(2), Some(3)]);
        // Same SSRC, sequence jumps far ahead.
        for seq in 5000..5003 {
            jb.push(7, seq, 0, &seq.to_be_bytes());
        }
        assert_eq!(pop_all(&mut jb, 3), [Some(5000), Some(5001), Some(5002)]);
        // And far back.
        for seq in 10..12 {
            jb.push(7, seq, 0, &seq.to_be_bytes());
        }
        assert_eq!(pop_all(&mut jb, 2), [Some(10), Some(11)]);
        let s = jb.stats();
        assert_eq!((s.resyncs, s.late, s.lost), (3, 0, 0));
    }

    #[test]
    fn bounds_latency_and_skips_small_gaps() {
        let mut jb = JitterBuffer::new(2);
        // A burst of 20 frames at once: only the newest 5 (2 * depth + 1) stay.
        for seq in 0..20 {
            push(&mut jb, seq);
        }
        assert_eq!(jb.len(), 5);
        assert_eq!(jb.stats().dropped, 15);
        assert_eq!(pop_all(&mut jb, 1), [Some(15)]);
        // A jump of 54 (burst loss) moves playout forward so 70 fits in the
        // window: the 4 buffered frames go, 46 never-received ones are lost.
        push(&mut jb, 70);
        assert_eq!(jb.len(), 1);
        assert_eq!(jb.stats().lost, 46);
        assert_eq!(jb.stats().dropped, 19);
        assert_eq!(pop_all(&mut jb, 5), [C, C, C, C, Some(70)]);
    }

    #[test]
    fn underrun_refills_before_playing_again() {
        let mut jb = JitterBuffer::new(2);
        push(&mut jb, 1);
        push(&mut jb, 2);
        assert_eq!(pop_all(&mut jb, 3), [Some(1), Some(2), None]);
        push(&mut jb, 3);
        assert_eq!(pop_all(&mut jb, 1), [None]);
        push(&mut jb, 4);
        assert_eq!(pop_all(&mut jb, 2), [Some(3), Some(4)]);
        assert_eq!(jb.stats().lost, 0);
    }

    #[test]
    fn concealer_fades_then_goes_silent() {
        let mut c = Concealer::new();
        let mut out = Vec::new();
        c.conceal(4, &mut out);
        assert_eq!(out, [0; 4]);
        c.good_frame(&[400, -400]);
        assert_eq!(c.last_len(), Some(2));
        out.clear();
        for _ in 0..4 {
            c.conceal(2, &mut out);
        }
        assert_eq!(out, [300, -300, 200, -200, 100, -100, 0, 0]);
    }
}
