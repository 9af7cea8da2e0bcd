//! RFC 4733 telephone-events (DTMF over RTP): the 4-byte payload, a receiver
//! that turns the redundant packet stream into one digit per key press, and a
//! sender that produces the packet sequence for one digit.
//!
//! Both sides are sans-IO: the media session feeds packets in and drains
//! packets out at its own pacing.

use std::collections::VecDeque;
use std::time::Duration;

use thiserror::Error;

/// How long a digit we send lasts unless told otherwise.
pub const DEFAULT_DIGIT_DURATION: Duration = Duration::from_millis(100);

/// Volume we announce for our digits (-10 dBm0, a typical phone level).
const SEND_VOLUME: u8 = 10;

/// How many times the final (E bit) packet is repeated, per RFC 4733 §2.5.1.4.
const END_REPEATS: u8 = 3;

/// Problems with telephone-event payloads or digits.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DtmfError {
    /// A telephone-event payload must be at least 4 bytes.
    #[error("telephone-event payload of {0} bytes, need 4")]
    TooShort(usize),
    /// The character is not one of 0-9, *, #, A-D.
    #[error("{0:?} is not a DTMF digit (0-9, *, #, A-D)")]
    InvalidDigit(char),
    /// The peer did not negotiate telephone-event, so digits cannot be sent.
    #[error("no telephone-event payload type was negotiated")]
    NotNegotiated,
}

/// The digit for an RFC 4733 event code (0-15), `None` for other events.
pub fn digit_for_event(event: u8) -> Option<char> {
    const DIGITS: &[u8; 16] = b"0123456789*#ABCD";
    DIGITS.get(usize::from(event)).map(|&b| char::from(b))
}

/// The RFC 4733 event code for a digit (`a`-`d` accepted in lower case).
pub fn event_for_digit(digit: char) -> Option<u8> {
    match digit {
        '0'..='9' => Some(digit as u8 - b'0'),
        '*' => Some(10),
        '#' => Some(11),
        'A'..='D' => Some(digit as u8 - b'A' + 12),
        'a'..='d' => Some(digit as u8 - b'a' + 12),
        _ => None,
    }
}

/// One decoded telephone-event payload (RFC 4733 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// Event code; 0-15 are the DTMF digits.
    pub event: u8,
    /// The E bit: this packet ends the event.
    pub end: bool,
    /// Power level in -dBm0 (0-63).
    pub volume: u8,
    /// Duration so far, in timestamp units (8 kHz samples).
    pub duration: u16,
}

impl TelephoneEvent {
    /// Decode the first event of a payload (extra bytes, as in packed or
    /// redundant payloads, are ignored).
    pub fn parse(payload: &[u8]) -> Result<Self, DtmfError> {
        let [event, flags, d0, d1, ..] = *payload else {
            return Err(DtmfError::TooShort(payload.len()));
        };
        Ok(TelephoneEvent {
            event,
            end: flags & 0x80 != 0,
            volume: flags & 0x3F,
            duration: u16::from_be_bytes([d0, d1]),
        })
    }

    /// Encode as the 4-byte payload.
    pub fn to_bytes(&self) -> [u8; 4] {
        let [d0, d1] = self.duration.to_be_bytes();
        let flags = (u8::from(self.end) << 7) | (self.volume & 0x3F);
        [self.event, flags, d0, d1]
    }

    /// The DTMF digit, if this is one.
    pub fn digit(&self) -> Option<char> {
        digit_for_event(self.event)
    }
}

/// How many past events the receiver remembers to recognise their late,
/// repeated or replayed packets.
const HISTORY: usize = 16;

/// Sequence numbers around the first packet of an event that we track, to
/// tell a replayed packet (seen before) from a reordered one (never seen).
const SEEN_WINDOW: u16 = 128;
const SEEN_BEFORE_FIRST: u16 = 32;

#[derive(Debug, Clone)]
struct EventRecord {
    ssrc: u32,
    timestamp: u32,
    event: u8,
    /// Seq of bit 0 of `seen`.
    window_start: u16,
    seen: u128,
    /// Seq and duration of the first end packet, once one arrived.
    end: Option<(u16, u16)>,
}

impl EventRecord {
    fn new(ssrc: u32, timestamp: u32, event: u8, seq: u16) -> Self {
        let mut record = EventRecord {
            ssrc,
            timestamp,
            event,
            window_start: 0,
            seen: 0,
            end: None,
        };
        record.restart(seq);
        record
    }

    fn restart(&mut self, seq: u16) {
        self.window_start = seq.wrapping_sub(SEEN_BEFORE_FIRST);
        self.seen = 0;
        self.end = None;
        self.mark_seen(seq);
    }

    fn offset(&self, seq: u16) -> Option<u16> {
        let offset = seq.wrapping_sub(self.window_start);
        (offset < SEEN_WINDOW).then_some(offset)
    }

    fn mark_seen(&mut self, seq: u16) {
        if let Some(offset) = self.offset(seq) {
            self.seen |= 1u128 << offset;
        }
    }

    fn was_seen(&self, seq: u16) -> bool {
        self.offset(seq)
            .is_some_and(|offset| self.seen & (1u128 << offset) != 0)
    }
}

/// `a` is after `b` in RTP sequence space (RFC 3550 wrap-around).
fn seq_after(a: u16, b: u16) -> bool {
    let delta = a.wrapping_sub(b);
    delta != 0 && delta < 0x8000
}

/// Turns received telephone-event packets into one digit per key press.
///
/// An event is identified by (SSRC, RTP timestamp, event code). The digit is
/// reported at the first packet of an event that arrives, whether that is a
/// start, a continuation or (start packets lost) an end packet; the rest of
/// the event's packets, including the three repeated end packets, are
/// swallowed.
///
/// One wrinkle: sipp replays recorded pcaps, so pressing the same key twice
/// in a sipp scenario sends the very same (SSRC, timestamp, event) with the
/// same sequence numbers again. A non-end packet for an event that already
/// ended is therefore a new press when its sequence number was already seen
/// in that event, or (sequence after the end) when its duration is below the
/// final duration. A non-end packet with an unseen sequence number before the
/// end is a late, reordered packet of the same press and is ignored.
#[derive(Debug, Default)]
pub struct DtmfReceiver {
    recent: VecDeque<EventRecord>,
}

impl DtmfReceiver {
    /// A receiver with no history.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feed one telephone-event packet; returns the digit when this packet
    /// starts a new key press. Events other than digits are ignored.
    pub fn receive(
        &mut self,
        seq: u16,
        timestamp: u32,
        ssrc: u32,
        payload: &[u8],
    ) -> Result<Option<char>, DtmfError> {
        let ev = TelephoneEvent::parse(payload)?;
        let Some(digit) = ev.digit() else {
            return Ok(None);
        };
        let found = self
            .recent
            .iter_mut()
            .find(|r| r.ssrc == ssrc && r.timestamp == timestamp && r.event == ev.event);
        let Some(record) = found else {
            if self.recent.len() == HISTORY {
                self.recent.pop_front();
            }
            let mut record = EventRecord::new(ssrc, timestamp, ev.event, seq);
            if ev.end {
                record.end = Some((seq, ev.duration));
            }
            self.recent.push_back(record);
            return Ok(Some(digit));
        };
        match record.end {
            None => {
                record.mark_seen(seq);
                if ev.end {
                    record.end = Some((seq, ev.duration));
                }
                Ok(None)
            }
            Some(_) if ev.end => {
                // One of the repeated end packets.
                record.mark_seen(seq);
                Ok(None)
            }
            Some((end_seq, final_duration)) => {
                let new_press = if seq_after(seq, end_seq) {
                    ev.duration < final_duration
                } else {
                    record.was_seen(seq)
                };
                if new_press {
                    record.restart(seq);
                    Ok(Some(digit))
                } else {
                    Ok(None)
                }
            }
        }
    }
}

/// One telephone-event packet to send. All packets of a digit share the RTP
/// timestamp of its first packet, which the caller keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfPacket {
    /// The negotiated telephone-event payload type.
    pub payload_type: u8,
    /// Set on the first packet of the event.
    pub marker: bool,
    /// The 4-byte telephone-event payload.
    pub payload: [u8; 4],
}

/// The RFC 4733 packet sequence for one digit: a start packet with the
/// marker bit, one packet per ptime with a growing duration, then three end
/// packets carrying the final duration. Drain one item per pacing tick.
#[derive(Debug, Clone)]
pub struct DtmfSender {
    payload_type: u8,
    event: u8,
    step: u16,
    total: u16,
    sent: u16,
    started: bool,
    ends_left: u8,
}

impl DtmfSender {
    /// Packets for `digit` lasting `duration` (at least one ptime, at most
    /// the 16-bit duration field, ~8 s), sent every `ptime`.
    pub fn new(
        digit: char,
        payload_type: u8,
        duration: Duration,
        ptime: Duration,
    ) -> Result<Self, DtmfError> {
        let event = event_for_digit(digit).ok_or(DtmfError::InvalidDigit(digit))?;
        let to_samples = |d: Duration| {
            let samples = d.as_micros() * 8 / 1000;
            u16::try_from(samples).unwrap_or(u16::MAX)
        };
        let step = to_samples(ptime).max(1);
        let total = to_samples(duration).max(step);
        Ok(DtmfSender {
            payload_type,
            event,
            step,
            total,
            sent: 0,
            started: false,
            ends_left: END_REPEATS,
        })
    }

    /// Whether every packet has been produced.
    pub fn is_finished(&self) -> bool {
        self.ends_left == 0
    }

    fn packet(&self, marker: bool, end: bool, duration: u16) -> DtmfPacket {
        let payload = TelephoneEvent {
            event: self.event,
            end,
            volume: SEND_VOLUME,
            duration,
        }
        .to_bytes();
        DtmfPacket {
            payload_type: self.payload_type,
            marker,
            payload,
        }
    }
}

impl Iterator for DtmfSender {
    type Item = DtmfPacket;

    fn next(&mut self) -> Option<DtmfPacket> {
        if self.ends_left == 0 {
            return None;
        }
        let marker = !self.started;
        self.started = true;
        let next = self.sent.saturating_add(self.step);
        if next < self.total {
            self.sent = next;
            return Some(self.packet(marker, false, next));
        }
        self.sent = self.total;
        self.ends_left -= 1;
        Some(self.packet(marker, true, self.total))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SSRC: u32 = 0x1122_3344;

    fn payload(event: u8, end: bool, duration: u16) -> [u8; 4] {
        TelephoneEvent {
            event,
            end,
            volume: 10,
            duration,
        }
        .to_bytes()
    }

    /// A full event as a phone sends it: `starts` packets then 3 end packets.
    fn event_packets(first_seq: u16, event: u8, starts: u16) -> Vec<(u16, [u8; 4])> {
        let mut packets: Vec<_> = (0..starts)
            .map(|i| {
                (
                    first_seq.wrapping_add(i),
                    payload(event, false, (i + 1) * 160),
                )
            })
            .collect();
        for i in 0..3 {
            packets.push((
                first_seq.wrapping_add(starts + i),
                payload(event, true, (starts + 1) * 160),
            ));
        }
        packets
    }

    fn feed(rx: &mut DtmfReceiver, ts: u32, packets: &[(u16, [u8; 4])]) -> String {
        packets
            .iter()
            .filter_map(|(seq, p)| rx.receive(*seq, ts, SSRC, p).unwrap())
            .collect()
    }

    #[test]
    fn payload_codec() {
        let ev = TelephoneEvent::parse(&[11, 0x8A, 0x03, 0x20]).unwrap();
        assert_eq!(
            ev,
            TelephoneEvent {
                event: 11,
                end: true,
                volume: 10,
                duration: 800
            }
        );
        assert_eq!(ev.digit(), Some('#'));
        assert_eq!(ev.to_bytes(), [11, 0x8A, 0x03, 0x20]);
        assert_eq!(
            TelephoneEvent::parse(&[1, 2, 3]),
            Err(DtmfError::TooShort(3))
        );
        let all: String = (0..16).filter_map(digit_for_event).collect();
        assert_eq!(all, "0123456789*#ABCD");
        assert_eq!(digit_for_event(16), None);
        for (i, c) in all.chars().enumerate() {
            assert_eq!(event_for_digit(c), Some(i as u8));
        }
        assert_eq!(event_for_digit('d'), Some(15));
        assert_eq!(event_for_digit('x'), None);
    }

    #[test]
    fn normal_event_gives_one_digit() {
        let mut rx = DtmfReceiver::new();
        let packets = event_packets(100, 5, 7);
        // The digit comes out at the very first packet.
        assert_eq!(
            rx.receive(packets[0].0, 8000, SSRC, &packets[0].1),
            Ok(Some('5'))
        );
        assert_eq!(feed(&mut rx, 8000, &packets[1..]), "");
    }

    #[test]
    fn lost_start_packets_still_give_the_digit() {
        let mut rx = DtmfReceiver::new();
        let packets = event_packets(100, 9, 7);
        assert_eq!(feed(&mut rx, 8000, &packets[7..]), "9");
    }

    #[test]
    fn reordered_packets_give_one_digit() {
        let mut rx = DtmfReceiver::new();
        let mut packets = event_packets(100, 3, 7);
        // The first end packet overtakes the last three continuation packets.
        let end = packets.remove(7);
        packets.insert(4, end);
        packets.swap(0, 1);
        assert_eq!(feed(&mut rx, 8000, &packets), "3");
    }

    #[test]
    fn late_packet_after_the_end_is_not_a_new_press() {
        let mut rx = DtmfReceiver::new();
        let mut packets = event_packets(100, 3, 7);
        let late = packets.remove(5);
        packets.push(late);
        assert_eq!(feed(&mut rx, 8000, &packets), "3");
    }

    #[test]
    fn duplicate_end_packets_give_one_digit() {
        let mut rx = DtmfReceiver::new();
        let packets = event_packets(100, 0, 7);
        let mut doubled = packets.clone();
        doubled.extend_from_slice(&packets[7..]);
        doubled.extend_from_slice(&packets[7..]);
        assert_eq!(feed(&mut rx, 8000, &doubled), "0");
    }

    #[test]
    fn two_different_digits() {
        let mut rx = DtmfReceiver::new();
        let mut out = feed(&mut rx, 13280, &event_packets(10, 1, 7));
        out += &feed(&mut rx, 23200, &event_packets(20, 2, 7));
        assert_eq!(out, "12");
    }

    #[test]
    fn same_digit_twice_via_sipp_replay() {
        // sipp replays dtmf_2833_1.pcap: same SSRC, timestamp and sequence numbers.
        let mut rx = DtmfReceiver::new();
        let press = event_packets(1000, 1, 7);
        let mut out = feed(&mut rx, 13280, &press);
        out += &feed(&mut rx, 13280, &press);
        // Another key in between, then the first again.
        out += &feed(&mut rx, 23200, &event_packets(1000, 2, 7));
        out += &feed(&mut rx, 13280, &press);
        assert_eq!(out, "1121");
    }

    #[test]
    fn sipp_replay_with_lost_first_packet() {
        let mut rx = DtmfReceiver::new();
        let press = event_packets(1000, 4, 7);
        let mut out = feed(&mut rx, 13280, &press);
        out += &feed(&mut rx, 13280, &press[1..]);
        assert_eq!(out, "44");
    }

    #[test]
    fn replay_with_later_sequence_numbers_and_short_duration() {
        // A non-end packet after the end with a smaller duration starts anew.
        let mut rx = DtmfReceiver::new();
        let mut out = feed(&mut rx, 13280, &event_packets(1000, 6, 7));
        out += &feed(&mut rx, 13280, &event_packets(2000, 6, 7));
        assert_eq!(out, "66");
    }

    #[test]
    fn same_digit_twice_from_a_real_phone() {
        let mut rx = DtmfReceiver::new();
        let mut out = feed(&mut rx, 8000, &event_packets(100, 7, 7));
        out += &feed(&mut rx, 16000, &event_packets(110, 7, 7));
        assert_eq!(out, "77");
    }

    #[test]
    fn non_digit_events_and_errors() {
        let mut rx = DtmfReceiver::new();
        assert_eq!(rx.receive(1, 1, SSRC, &payload(16, false, 160)), Ok(None));
        assert_eq!(rx.receive(2, 1, SSRC, &[1]), Err(DtmfError::TooShort(1)));
    }

    #[test]
    fn sender_sequence_for_100ms_at_20ms() {
        let packets: Vec<_> =
            DtmfSender::new('#', 101, DEFAULT_DIGIT_DURATION, Duration::from_millis(20))
                .unwrap()
                .collect();
        let decoded: Vec<_> = packets
            .iter()
            .map(|p| {
                let ev = TelephoneEvent::parse(&p.payload).unwrap();
                assert_eq!(ev.event, 11);
                assert_eq!(p.payload_type, 101);
                (p.marker, ev.end, ev.duration)
            })
            .collect();
        assert_eq!(
            decoded,
            [
                (true, false, 160),
                (false, false, 320),
                (false, false, 480),
                (false, false, 640),
                (false, true, 800),
                (false, true, 800),
                (false, true, 800),
            ]
        );
    }

    #[test]
    fn sender_with_30ms_ptime_and_uneven_duration() {
        let mut s =
            DtmfSender::new('1', 96, DEFAULT_DIGIT_DURATION, Duration::from_millis(30)).unwrap();
        let durations: Vec<_> = s
            .by_ref()
            .map(|p| TelephoneEvent::parse(&p.payload).unwrap().duration)
            .collect();
        assert_eq!(durations, [240, 480, 720, 800, 800, 800]);
        assert!(s.is_finished());
        assert_eq!(
            DtmfSender::new('x', 96, DEFAULT_DIGIT_DURATION, Duration::from_millis(20))
                .unwrap_err(),
            DtmfError::InvalidDigit('x')
        );
    }

    #[test]
    fn sent_digits_are_received_once() {
        let mut rx = DtmfReceiver::new();
        let mut out = String::new();
        let mut seq = 500u16;
        for (i, digit) in "1*9#".chars().enumerate() {
            let sender = DtmfSender::new(
                digit,
                101,
                DEFAULT_DIGIT_DURATION,
                Duration::from_millis(20),
            )
            .unwrap();
            for p in sender {
                seq = seq.wrapping_add(1);
                if let Some(d) = rx.receive(seq, i as u32 * 4000, SSRC, &p.payload).unwrap() {
                    out.push(d);
                }
            }
        }
        assert_eq!(out, "1*9#");
    }

    proptest! {
        #[test]
        fn random_payloads_never_panic(
            packets in proptest::collection::vec(
                (any::<u16>(), 0u32..4, proptest::collection::vec(any::<u8>(), 0..8)),
                0..64,
            )
        ) {
            let mut rx = DtmfReceiver::new();
            for (seq, ts, payload) in packets {
                let _ = rx.receive(seq, ts, SSRC, &payload);
            }
        }
    }

    /// The fuzz harness for RFC 4733: real key-press streams (a start
    /// packet, updates, the end packet three times, as §2.5.1.4 asks), then
    /// damaged the ways networks do. Properties: packets lost, repeated or
    /// reordered within a key press (at least one kept) give exactly the
    /// keys pressed, in order; damaged payloads (bytes flipped, cut,
    /// extended) among in-order packets and their network duplicates never
    /// panic and cost at most one extra key each. (A replayed copy of an
    /// earlier press's packet after its end is a new press by design: it is
    /// what sipp sends for the same key pressed twice.)
    mod fuzz {
        use proptest::collection::vec;
        use proptest::prelude::*;
        use voxbridge_mutations::apply;

        use super::super::{DtmfReceiver, TelephoneEvent};
        use super::SSRC;

        const KEYS: &[u8] = b"0123456789*#ABCD";

        /// (seq, timestamp, payload) of every packet of pressing `keys`.
        fn presses(keys: &[u8]) -> Vec<Vec<(u16, u32, Vec<u8>)>> {
            let mut seq: u16 = 65530;
            keys.iter()
                .enumerate()
                .map(|(i, &k)| {
                    let event = KEYS.iter().position(|&c| c == k).unwrap_or(0) as u8;
                    let ts = 1000 + 1600 * i as u32;
                    let mut packets = Vec::new();
                    for (n, end) in [
                        (1u16, false),
                        (2, false),
                        (3, false),
                        (4, true),
                        (4, true),
                        (4, true),
                    ] {
                        let ev = TelephoneEvent {
                            event,
                            end,
                            volume: 10,
                            duration: 160 * n,
                        };
                        packets.push((seq, ts, ev.to_bytes().to_vec()));
                        seq = seq.wrapping_add(1);
                    }
                    packets
                })
                .collect()
        }

        /// Per packet: kept or lost, repeated, and a sort key for reordering.
        fn fates() -> impl Strategy<Value = Vec<(bool, u8, u8)>> {
            vec((prop::bool::weighted(0.7), 1u8..3, any::<u8>()), 6)
        }

        proptest! {
            #[test]
            fn fuzz_rfc4733_lost_repeated_reordered(
                keys in vec(proptest::sample::select(KEYS), 1..12),
                fates in vec(fates(), 12),
            ) {
                let mut rx = DtmfReceiver::new();
                let mut heard = Vec::new();
                for (press, fate) in presses(&keys).into_iter().zip(&fates) {
                    let mut kept: Vec<_> = press
                        .into_iter()
                        .zip(fate)
                        .filter(|(_, f)| f.0)
                        .flat_map(|(p, f)| std::iter::repeat_n((f.2, p), usize::from(f.1)))
                        .collect();
                    if kept.is_empty() {
                        continue;
                    }
                    kept.sort_by_key(|(order, _)| *order);
                    for (_, (seq, ts, payload)) in kept {
                        if let Ok(Some(d)) = rx.receive(seq, ts, SSRC, &payload) {
                            heard.push(d as u8);
                        }
                    }
                }
                let expected: Vec<u8> = keys
                    .iter()
                    .zip(&fates)
                    .filter(|(_, f)| f.iter().any(|p| p.0))
                    .map(|(k, _)| *k)
                    .collect();
                prop_assert_eq!(heard, expected);
            }

            #[test]
            fn fuzz_rfc4733_damaged(
                // Four presses and twelve damaged ones stay within the sixteen
                // events the receiver remembers.
                keys in vec(proptest::sample::select(KEYS), 1..5),
                damage in vec((any::<u32>(), voxbridge_mutations::mutation()), 0..12),
                duplicates in vec(any::<u32>(), 0..8),
            ) {
                let mut packets: Vec<(u16, u32, Vec<u8>)> = presses(&keys).into_iter().flatten().collect();
                for (at, m) in &damage {
                    let i = *at as usize % packets.len();
                    let payload = std::mem::take(&mut packets[i].2);
                    packets[i].2 = apply(payload, std::slice::from_ref(m));
                }
                for at in &duplicates {
                    let i = *at as usize % packets.len();
                    packets.insert(i + 1, packets[i].clone());
                }
                let mut rx = DtmfReceiver::new();
                let mut heard = 0;
                for (seq, ts, payload) in &packets {
                    if let Ok(Some(_)) = rx.receive(*seq, *ts, SSRC, payload) {
                        heard += 1;
                    }
                }
                if damage.is_empty() {
                    prop_assert_eq!(heard, keys.len());
                }
                prop_assert!(
                    heard <= keys.len() + damage.len(),
                    "{} keys from {} presses and {} damaged packets", heard, keys.len(), damage.len()
                );
            }
        }
    }
}
