//! MediaCore driven with fake time.

use super::*;
use crate::dtmf::TelephoneEvent;
use crate::{Codec, Direction};
use std::sync::{Arc, Mutex};

const PEER: &str = "192.0.2.10:30000";
const NAT: &str = "198.51.100.7:41000";
const OTHER: &str = "203.0.113.5:5000";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn params(ptime_ms: u64) -> MediaParams {
    MediaParams {
        ptime: Duration::from_millis(ptime_ms),
        inactivity_timeout: Duration::from_secs(5),
        ..MediaParams::new(Codec::Pcmu, addr(PEER))
    }
}

/// One packet we sent, decoded.
#[derive(Debug, Clone)]
struct Sent {
    to: SocketAddr,
    pt: u8,
    marker: bool,
    seq: u16,
    ts: u32,
    ssrc: u32,
    payload: Vec<u8>,
    /// The datagram as sent (SRTP: encrypted and tagged).
    raw: Vec<u8>,
}

/// A core plus the fake clock and everything it produced.
struct Harness {
    core: MediaCore,
    start: Instant,
    now: Instant,
    sent: Vec<Sent>,
    events: Vec<(Duration, MediaEvent)>,
    next_timeout: Instant,
}

impl Harness {
    fn new(params: MediaParams) -> Self {
        let start = Instant::now();
        let core = MediaCore::new(start, params).unwrap();
        let mut h = Harness {
            core,
            start,
            now: start,
            sent: Vec::new(),
            events: Vec::new(),
            next_timeout: start,
        };
        h.drain();
        h
    }

    fn drain(&mut self) {
        loop {
            match self.core.poll_output() {
                Output::Transmit(to, bytes) => {
                    let p = RtpPacketView::parse(bytes).unwrap();
                    self.sent.push(Sent {
                        to,
                        pt: p.payload_type,
                        marker: p.marker,
                        seq: p.seq,
                        ts: p.timestamp,
                        ssrc: p.ssrc,
                        payload: p.payload.to_vec(),
                        raw: bytes.to_vec(),
                    });
                }
                Output::Event(e) => self.events.push((self.now - self.start, e)),
                Output::Timeout(t) => {
                    self.next_timeout = t;
                    return;
                }
            }
        }
    }

    /// Advance fake time to `start + at`, firing every timeout on the way.
    fn run_until(&mut self, at: Duration) {
        let end = self.start + at;
        while self.next_timeout <= end {
            self.now = self.next_timeout.max(self.now);
            self.core.handle_input(Input::Timeout(self.now));
            self.drain();
        }
        self.now = end;
    }

    fn receive(&mut self, from: &str, bytes: &[u8]) {
        self.core
            .handle_input(Input::Receive(self.now, addr(from), bytes));
        self.drain();
    }

    fn audio_sent(&self) -> Vec<&Sent> {
        self.sent.iter().filter(|s| s.pt == 0).collect()
    }

    fn event_list(&self) -> Vec<MediaEvent> {
        self.events.iter().map(|(_, e)| e.clone()).collect()
    }
}

fn rtp(pt: u8, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    RtpHeader {
        payload_type: pt,
        marker: false,
        seq,
        timestamp: ts,
        ssrc,
    }
    .write_packet(payload, &mut out);
    out
}

fn assert_continuous(sent: &[Sent]) {
    for pair in sent.windows(2) {
        assert_eq!(pair[1].seq, pair[0].seq.wrapping_add(1), "{pair:?}");
        assert_eq!(pair[1].ssrc, pair[0].ssrc);
    }
}

#[test]
fn one_second_prompt_at_20ms_is_50_packets_then_silence() {
    let mut h = Harness::new(params(20));
    let tone = vec![1000i16; 8000];
    let id = h.core.play(Prompt::from_samples(tone));
    h.run_until(Duration::from_millis(1990));
    let sent = h.audio_sent();
    assert_eq!(sent.len(), 100);
    let code = g711::linear_to_ulaw(1000);
    for (i, p) in sent.iter().enumerate() {
        assert_eq!(p.payload.len(), 160);
        let expected = if i < 50 { code } else { 0xFF };
        assert!(p.payload.iter().all(|&b| b == expected), "packet {i}");
        assert_eq!(p.to, addr(PEER));
        assert_eq!(p.marker, i == 0);
    }
    for pair in sent.windows(2) {
        assert_eq!(pair[1].ts.wrapping_sub(pair[0].ts), 160);
    }
    assert_continuous(&h.sent);
    assert_eq!(
        h.event_list(),
        [
            MediaEvent::PlaybackStarted(id),
            MediaEvent::PlaybackDone(id)
        ]
    );
    // Started with the first packet; done with the 50th, 980 ms in.
    assert_eq!(h.events[0].0, Duration::ZERO);
    assert_eq!(h.events[1].0, Duration::from_millis(980));
    assert!(!h.core.is_playing());
    assert_eq!(h.core.stats().packets_out, 100);
}

#[test]
fn thirty_ms_ptime_sends_240_samples() {
    let mut h = Harness::new(params(30));
    h.core.play(Prompt::from_samples(vec![-2000i16; 8000]));
    h.run_until(Duration::from_millis(1500));
    let sent = h.audio_sent();
    assert_eq!(sent.len(), 51);
    assert!(sent.iter().all(|p| p.payload.len() == 240));
    for pair in sent.windows(2) {
        assert_eq!(pair[1].ts.wrapping_sub(pair[0].ts), 240);
    }
    // 8000 / 240 = 33.3: the 34th packet is a third prompt, then silence.
    let code = g711::linear_to_ulaw(-2000);
    assert!(sent[32].payload.iter().all(|&b| b == code));
    assert_eq!(sent[33].payload.iter().filter(|&&b| b == code).count(), 80);
    assert!(sent[34].payload.iter().all(|&b| b == 0xFF));
    assert_eq!(h.event_list().len(), 2);
}

#[test]
fn replacing_and_stopping_prompts() {
    let mut h = Harness::new(params(20));
    let first = h.core.play(Prompt::from_samples(vec![100i16; 8000]));
    h.run_until(Duration::from_millis(100));
    let second = h.core.play(Prompt::from_samples(vec![200i16; 320]));
    h.run_until(Duration::from_millis(500));
    assert_eq!(
        h.event_list(),
        [
            MediaEvent::PlaybackStarted(first),
            MediaEvent::PlaybackStarted(second),
            MediaEvent::PlaybackDone(second)
        ]
    );
    assert_ne!(first, second);
    h.core.play(Prompt::from_samples(vec![300i16; 8000]));
    h.run_until(Duration::from_millis(600));
    h.core.stop_playback();
    h.run_until(Duration::from_millis(700));
    assert!(h
        .audio_sent()
        .last()
        .unwrap()
        .payload
        .iter()
        .all(|&b| b == 0xFF));
    let empty = h.core.play(Prompt::from_samples(Vec::new()));
    h.drain();
    assert_eq!(
        h.event_list().last(),
        Some(&MediaEvent::PlaybackDone(empty))
    );
}

#[test]
fn dtmf_in_gives_one_digit_and_is_not_audio() {
    let mut h = Harness::new(params(20));
    for i in 0..10u16 {
        let end = i >= 7;
        let payload = TelephoneEvent {
            event: 1,
            end,
            volume: 10,
            duration: 160 * (i.min(7) + 1),
        }
        .to_bytes();
        h.receive(PEER, &rtp(101, 500 + i, 13280, 77, &payload));
    }
    assert_eq!(h.event_list(), [MediaEvent::Dtmf('1')]);
    let stats = h.core.stats();
    assert_eq!(
        (stats.dtmf_in, stats.packets_in, stats.bad_packets),
        (1, 10, 0)
    );
    // A truncated telephone-event payload is a bad packet, not a panic.
    h.receive(PEER, &rtp(101, 600, 1, 77, &[1, 2]));
    assert_eq!(h.core.stats().bad_packets, 1);
}

#[test]
fn a_key_between_audio_packets_is_not_counted_as_loss() {
    let mut h = Harness::new(params(20));
    let audio = [0xFFu8; 160];
    let mut t = Duration::ZERO;
    for seq in 0..40u16 {
        // Packets 10..=16 are a key press in the audio's sequence space.
        let bytes = if (10..=16).contains(&seq) {
            let payload = TelephoneEvent {
                event: 5,
                end: seq >= 14,
                volume: 10,
                duration: 160 * (seq - 9).min(5),
            }
            .to_bytes();
            rtp(101, seq, 1600, 77, &payload)
        } else {
            rtp(0, seq, u32::from(seq) * 160, 77, &audio)
        };
        h.receive(PEER, &bytes);
        t += Duration::from_millis(20);
        h.run_until(t);
    }
    assert_eq!(h.event_list(), [MediaEvent::Dtmf('5')]);
    assert_eq!(h.core.stats().lost, 0, "{:?}", h.core.stats());
}

#[test]
fn dtmf_out_takes_over_then_audio_resumes() {
    let mut h = Harness::new(params(20));
    h.core.play(Prompt::from_samples(vec![1000i16; 8000]));
    h.run_until(Duration::from_millis(50));
    h.core.send_dtmf('5').unwrap();
    h.core.send_dtmf('#').unwrap();
    assert_eq!(h.core.send_dtmf('x'), Err(DtmfError::InvalidDigit('x')));
    h.run_until(Duration::from_millis(600));
    assert_continuous(&h.sent);
    let kinds: String = h
        .sent
        .iter()
        .map(|p| if p.pt == 101 { 'D' } else { 'a' })
        .collect();
    // 3 audio, digit '5' (7 packets), 2 audio of gap, digit '#', then audio.
    assert!(kinds.starts_with("aaaDDDDDDDaaDDDDDDDaaa"), "{kinds}");
    let digits: Vec<&Sent> = h.sent.iter().filter(|p| p.pt == 101).collect();
    let first = &digits[..7];
    assert!(first[0].marker && first[1..].iter().all(|p| !p.marker));
    assert!(first.iter().all(|p| p.ts == first[0].ts));
    let events: Vec<TelephoneEvent> = first
        .iter()
        .map(|p| TelephoneEvent::parse(&p.payload).unwrap())
        .collect();
    assert!(events.iter().all(|e| e.event == 5));
    assert_eq!(events.iter().filter(|e| e.end).count(), 3);
    assert_eq!(events[6].duration, 800);
    // The second digit is a new event with a later timestamp.
    assert!(digits[7].marker);
    assert_eq!(digits[7].ts.wrapping_sub(first[0].ts), 9 * 160);
    assert_eq!(TelephoneEvent::parse(&digits[7].payload).unwrap().event, 11);
    // The prompt paused during the digits and continues afterwards.
    let code = g711::linear_to_ulaw(1000);
    assert!(h.audio_sent().iter().all(|p| p.payload[0] == code));
    assert_eq!(h.core.stats().dtmf_out, 2);
    // Audio timestamps keep following the clock across the digits.
    let audio = h.audio_sent();
    assert_eq!(audio[3].ts.wrapping_sub(audio[2].ts), 8 * 160);

    let mut no_dtmf = params(20);
    no_dtmf.dtmf_payload_type = None;
    h.core.update(no_dtmf).unwrap();
    assert_eq!(h.core.send_dtmf('1'), Err(DtmfError::NotNegotiated));
}

/// The telephone-event packets of the first digit sent.
fn first_digit(h: &Harness) -> Vec<TelephoneEvent> {
    let start = h.sent.iter().position(|p| p.pt == 101 && p.marker).unwrap();
    let ts = h.sent[start].ts;
    h.sent[start..]
        .iter()
        .take_while(|p| p.pt == 101 && p.ts == ts)
        .map(|p| TelephoneEvent::parse(&p.payload).unwrap())
        .collect()
}

#[test]
fn dtmf_out_lasts_the_configured_duration() {
    for (ms, ptime) in [(250u64, 20u64), (130, 20), (60, 30)] {
        let mut p = params(ptime);
        p.dtmf_duration = Duration::from_millis(ms);
        let mut h = Harness::new(p);
        h.run_until(Duration::from_millis(40));
        h.core.send_dtmf('7').unwrap();
        h.run_until(Duration::from_millis(100 + 2 * ms));
        let events = first_digit(&h);
        let samples = (ms * 8) as u16;
        let ends: Vec<&TelephoneEvent> = events.iter().filter(|e| e.end).collect();
        assert_eq!(ends.len(), 3, "{ms} ms: three end packets");
        assert!(
            ends.iter().all(|e| e.duration == samples),
            "{ms} ms at {ptime} ms ptime: final duration {:?}, want {samples}",
            ends.iter().map(|e| e.duration).collect::<Vec<_>>()
        );
        // One packet per ptime while the key is down, each longer than the last.
        let steps: Vec<u16> = events.iter().map(|e| e.duration).collect();
        assert!(steps.windows(2).all(|w| w[0] <= w[1]), "{steps:?}");
        assert_eq!(
            events.len() - 3,
            (ms as usize).div_ceil(ptime as usize) - 1,
            "{steps:?}"
        );
    }
}

#[test]
fn latches_to_the_first_source() {
    // Behind NAT the packets come from the signalled IP on another port.
    const NAT_PORT: &str = "192.0.2.10:41000";
    let mut h = Harness::new(params(20));
    h.run_until(Duration::from_millis(40));
    assert!(h.sent.iter().all(|p| p.to == addr(PEER)));
    // A stranger on another IP, even first, is not followed.
    h.receive(NAT, &rtp(0, 1, 0, 9, &[0xFF; 160]));
    assert_eq!(h.core.latched(), None);
    h.receive(NAT_PORT, &rtp(0, 1, 0, 9, &[0xFF; 160]));
    assert_eq!(h.core.latched(), Some(addr(NAT_PORT)));
    h.receive(OTHER, &rtp(0, 2, 160, 9, &[0xFF; 160]));
    h.run_until(Duration::from_millis(100));
    let after: Vec<_> = h.sent[3..].iter().map(|p| p.to).collect();
    assert!(after.iter().all(|&to| to == addr(NAT_PORT)), "{after:?}");
    let stats = h.core.stats();
    assert_eq!((stats.ignored_source, stats.packets_in), (2, 1));
    // The signalled address may always take over.
    h.receive(PEER, &rtp(0, 3, 320, 9, &[0xFF; 160]));
    assert_eq!(h.core.latched(), Some(addr(PEER)));
    // A re-INVITE to a new peer latches afresh.
    let mut moved = params(20);
    moved.remote = addr(OTHER);
    h.core.update(moved).unwrap();
    assert_eq!(h.core.latched(), None);
    assert_eq!(h.core.destination(), addr(OTHER));
}

#[test]
fn a_stranger_mid_call_is_neither_heard_nor_answered() {
    let heard = Arc::new(Mutex::new(Vec::<i16>::new()));
    let mut h = Harness::new(params(20));
    let sink = heard.clone();
    h.core.set_audio_sink(Box::new(move |pcm: &[i16]| {
        sink.lock().unwrap().extend_from_slice(pcm)
    }));
    // The caller sends silence (0xFF is μ-law 0) and keeps doing so…
    for i in 0..10u16 {
        h.receive(PEER, &rtp(0, i, u32::from(i) * 160, 9, &[0xFF; 160]));
        // …while a stranger on the same IP sends loud audio and a digit.
        h.receive(
            "192.0.2.10:40000",
            &rtp(0, 100 + i, u32::from(i) * 160, 77, &[0x00; 160]),
        );
        h.receive(OTHER, &rtp(101, 200 + i, 0, 78, &[5, 0x80, 0, 160]));
        h.run_until(Duration::from_millis(20 * (u64::from(i) + 1)));
    }
    h.run_until(Duration::from_millis(400));
    assert!(h.sent.iter().all(|p| p.to == addr(PEER)));
    assert!(h
        .event_list()
        .iter()
        .all(|e| !matches!(e, MediaEvent::Dtmf(_))));
    let heard = heard.lock().unwrap();
    assert!(!heard.is_empty());
    assert!(heard.iter().all(|&s| s == 0), "stranger's audio leaked in");
    let stats = h.core.stats();
    assert_eq!((stats.packets_in, stats.ignored_source), (10, 20));
}

#[test]
fn strict_latching_ignores_the_nat_port() {
    let mut p = params(20);
    p.latching = crate::Latching::Strict;
    let mut h = Harness::new(p);
    h.receive("192.0.2.10:41000", &rtp(0, 1, 0, 9, &[0xFF; 160]));
    assert_eq!(h.core.latched(), None);
    assert_eq!(h.core.stats().ignored_source, 1);
    h.run_until(Duration::from_millis(60));
    assert!(h.sent.iter().all(|p| p.to == addr(PEER)));
}

#[test]
fn garbage_and_unknown_payload_types_are_counted() {
    let mut h = Harness::new(params(20));
    h.receive(NAT, b"hello");
    h.receive(NAT, &[0x80, 201, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
    // Garbage does not latch.
    assert_eq!(h.core.latched(), None);
    h.receive(PEER, &rtp(18, 1, 0, 9, &[1, 2, 3]));
    h.receive(PEER, &rtp(0, 2, 0, 9, &[]));
    let stats = h.core.stats();
    assert_eq!(stats.bad_packets, 3);
    assert_eq!(stats.unknown_payload, 1);
    assert_eq!(stats.packets_in, 2);
    assert_eq!(h.core.latched(), Some(addr(PEER)));
}

#[test]
fn inactivity_fires_once_without_rtp() {
    let mut h = Harness::new(params(20));
    h.run_until(Duration::from_secs(12));
    assert_eq!(h.events, [(Duration::from_secs(5), MediaEvent::Inactive)]);
    // RTP comes back, then stops again: a second report.
    h.receive(PEER, &rtp(0, 1, 0, 9, &[0xFF; 160]));
    h.run_until(Duration::from_secs(20));
    assert_eq!(h.event_list(), [MediaEvent::Inactive, MediaEvent::Inactive]);
    assert_eq!(h.events[1].0, Duration::from_secs(17));
}

#[test]
fn no_inactivity_while_rtp_flows() {
    let mut h = Harness::new(params(20));
    for i in 0..600u16 {
        h.run_until(Duration::from_millis(u64::from(i) * 20));
        h.receive(PEER, &rtp(0, i, u32::from(i) * 160, 9, &[0xFF; 160]));
    }
    assert!(h.events.is_empty(), "{:?}", h.events);
    let stats = h.core.stats();
    assert_eq!(stats.packets_in, 600);
    assert_eq!((stats.lost, stats.late, stats.duplicate), (0, 0, 0));
}

#[test]
fn received_audio_reaches_the_sink_in_order() {
    let mut h = Harness::new(params(20));
    let heard = Arc::new(Mutex::new(Vec::<i16>::new()));
    let sink = heard.clone();
    h.core.set_audio_sink(Box::new(move |pcm: &[i16]| {
        sink.lock().unwrap().extend_from_slice(pcm)
    }));
    // The peer sends 30 ms packets, slightly out of order, one lost.
    let mut order: Vec<u16> = (0..40).collect();
    order.swap(5, 6);
    order.retain(|&s| s != 20);
    let mut next = 0;
    for t in 0..60u64 {
        h.run_until(Duration::from_millis(t * 20));
        // ~30 ms per packet, delivered at the 20 ms ticks.
        while next < order.len() && u64::from(order[next]) * 30 <= t * 20 {
            let seq = order[next];
            let payload = vec![g711::linear_to_ulaw(i16::try_from(seq).unwrap() * 100); 240];
            h.receive(PEER, &rtp(0, seq, u32::from(seq) * 240, 9, &payload));
            next += 1;
        }
    }
    h.run_until(Duration::from_millis(1400));
    let heard = heard.lock().unwrap();
    // 39 frames plus one concealed, 240 samples each.
    assert_eq!(heard.len(), 40 * 240);
    let firsts: Vec<i16> = heard.chunks(240).map(|f| f[0]).collect();
    for (seq, &v) in firsts.iter().enumerate() {
        let expected = g711::ulaw_to_linear(g711::linear_to_ulaw(seq as i16 * 100));
        if seq == 20 {
            // Concealed: the previous frame at 3/4.
            let prev = g711::ulaw_to_linear(g711::linear_to_ulaw(1900));
            assert_eq!(v, prev * 3 / 4);
        } else {
            assert_eq!(v, expected, "frame {seq}");
        }
    }
    assert_eq!(h.core.stats().lost, 1);
}

#[test]
fn hold_stops_sending_and_resume_continues_the_stream() {
    let mut h = Harness::new(params(20));
    let id = h.core.play(Prompt::from_samples(vec![1000i16; 1600]));
    h.run_until(Duration::from_millis(90));
    let before = h.sent.len();
    assert_eq!(before, 5);
    let mut hold = params(20);
    hold.direction = Direction::Inactive;
    h.core.update(hold).unwrap();
    h.drain();
    assert!(h.next_timeout > h.now + Duration::from_secs(60));
    h.run_until(Duration::from_secs(30));
    assert_eq!(h.sent.len(), before);
    assert_eq!(
        h.event_list(),
        [MediaEvent::PlaybackStarted(id)],
        "no inactivity timer when inactive"
    );

    // recvonly (peer holds us with sendonly): no sending, timer runs.
    let mut held = params(20);
    held.direction = Direction::RecvOnly;
    h.core.update(held).unwrap();
    h.drain();
    h.run_until(Duration::from_secs(36));
    assert_eq!(h.sent.len(), before);
    // Counted from when the update took effect, not from the last packet.
    assert_eq!(
        h.events[1..],
        [(Duration::from_secs(35), MediaEvent::Inactive)]
    );

    h.core.update(params(20)).unwrap();
    h.drain();
    h.run_until(Duration::from_millis(36_200));
    assert_continuous(&h.sent);
    let resumed = &h.sent[before];
    assert!(resumed.marker);
    // Timestamps followed real time across the hold.
    let gap = resumed.ts.wrapping_sub(h.sent[before - 1].ts);
    assert!(gap >= 8000 * 35, "{gap}");
    // The prompt was paused, not lost: 10 frames in total, then done.
    let code = g711::linear_to_ulaw(1000);
    let prompt_frames = h.sent.iter().filter(|p| p.payload[0] == code).count();
    assert_eq!(prompt_frames, 10);
    assert_eq!(h.event_list().last(), Some(&MediaEvent::PlaybackDone(id)));
}

#[test]
fn update_keeps_seq_ssrc_and_timestamps() {
    let mut h = Harness::new(params(20));
    h.run_until(Duration::from_millis(90));
    let mut p = params(30);
    p.codec = Codec::Pcma;
    p.payload_type = 8;
    h.core.update(p.clone()).unwrap();
    h.drain();
    h.run_until(Duration::from_millis(300));
    assert_continuous(&h.sent);
    let switch = h.sent.iter().position(|s| s.pt == 8).unwrap();
    assert_eq!(switch, 5);
    assert_eq!(h.sent[switch].ts.wrapping_sub(h.sent[switch - 1].ts), 160);
    assert_eq!(h.sent[switch + 1].ts.wrapping_sub(h.sent[switch].ts), 240);
    assert_eq!(h.sent[switch].payload, vec![0xD5; 240]);
    assert!(!h.sent[switch].marker);
    // Bad parameters are refused and change nothing.
    p.ptime = Duration::from_millis(100);
    assert!(h.core.update(p).is_err());
    assert_eq!(h.core.params().ptime, Duration::from_millis(30));
}

#[test]
fn a_stalled_shell_gets_one_frame_not_a_burst() {
    let mut h = Harness::new(params(20));
    assert_eq!(h.sent.len(), 0);
    h.run_until(Duration::ZERO);
    assert_eq!(h.sent.len(), 1);
    // The task did not run for 2 s.
    h.now = h.start + Duration::from_secs(2);
    h.core.handle_input(Input::Timeout(h.now));
    h.drain();
    assert_eq!(h.sent.len(), 2);
    assert_eq!(h.sent[1].ts.wrapping_sub(h.sent[0].ts), 100 * 160);
    assert_eq!(h.core.stats().frames_skipped, 99);
    // The one frame sent after the stall is the one due now: not late.
    assert_eq!(h.core.stats().late_out, 0);
}

#[test]
fn frames_sent_a_packet_interval_after_their_time_count_as_late() {
    let mut h = Harness::new(params(20));
    h.run_until(Duration::from_millis(100));
    assert_eq!((h.sent.len(), h.core.stats().late_out), (6, 0));
    // Woken 45 ms after frame 6 was due: frames 6 and 7 are a whole
    // interval behind, frame 8 (due 5 ms ago) is not.
    h.now = h.start + Duration::from_millis(165);
    h.core.handle_input(Input::Timeout(h.now));
    h.drain();
    assert_eq!(h.sent.len(), 9);
    assert_eq!(h.core.stats().late_out, 2);
    assert_eq!(h.core.stats().frames_skipped, 0);
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Step {
        Wait(u16),
        Garbage(Vec<u8>),
        Rtp {
            pt: u8,
            seq: u16,
            ts: u32,
            ssrc: u32,
            payload: Vec<u8>,
            other_source: bool,
        },
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (0u16..200).prop_map(Step::Wait),
            proptest::collection::vec(any::<u8>(), 0..64).prop_map(Step::Garbage),
            (
                prop_oneof![Just(0u8), Just(101u8), 0u8..128],
                0u16..40,
                0u32..3,
                0u32..2,
                proptest::collection::vec(any::<u8>(), 0..300),
                any::<bool>(),
            )
                .prop_map(|(pt, seq, ts, ssrc, payload, other_source)| Step::Rtp {
                    pt,
                    seq,
                    ts: ts * 160,
                    ssrc,
                    payload,
                    other_source,
                }),
        ]
    }

    proptest! {
        #[test]
        fn random_traffic_never_panics_and_pacing_holds(
            steps in proptest::collection::vec(step(), 0..200)
        ) {
            let mut h = Harness::new(params(20));
            h.core.set_audio_sink(Box::new(|_: &[i16]| {}));
            h.core.play(Prompt::from_samples(vec![500i16; 4000]));
            let mut elapsed = 0u64;
            for step in steps {
                match step {
                    Step::Wait(ms) => {
                        elapsed += u64::from(ms);
                        h.run_until(Duration::from_millis(elapsed));
                    }
                    Step::Garbage(bytes) => h.receive(PEER, &bytes),
                    Step::Rtp { pt, seq, ts, ssrc, payload, other_source } => {
                        let from = if other_source { OTHER } else { PEER };
                        h.receive(from, &rtp(pt, seq, ts, ssrc, &payload));
                    }
                }
            }
            h.run_until(Duration::from_millis(elapsed));
            // Whatever came in, we sent one packet per 20 ms.
            prop_assert_eq!(h.sent.len() as u64, elapsed / 20 + 1);
            assert_continuous(&h.sent);
        }
    }
}

/// Records both directions the way a call recorder sees them.
struct BothWays(Arc<Mutex<Vec<Vec<i16>>>>);

impl AudioSink for BothWays {
    fn on_audio(&mut self, _pcm: &[i16]) {}
    fn on_sent(&mut self, pcm: &[i16]) {
        self.0.lock().unwrap().push(pcm.to_vec());
    }
}

#[test]
fn sink_sees_one_sent_frame_per_tick_with_prompt_then_silence() {
    let mut h = Harness::new(params(20));
    let frames = Arc::new(Mutex::new(Vec::new()));
    h.core.set_audio_sink(Box::new(BothWays(frames.clone())));
    h.core.play(Prompt::from_samples(vec![1000i16; 400]));
    h.run_until(Duration::from_millis(95));
    let frames = frames.lock().unwrap();
    assert!(frames.len() >= 5, "{} frames", frames.len());
    assert!(frames.iter().all(|f| f.len() == 160));
    let loud: usize = frames.iter().flatten().filter(|&&s| s == 1000).count();
    assert_eq!(loud, 400, "the whole prompt, once");
    assert!(frames[0].iter().all(|&s| s == 1000));
    assert!(frames[2][..80].iter().all(|&s| s == 1000) && frames[2][80..].iter().all(|&s| s == 0));
    assert!(frames[3].iter().all(|&s| s == 0));
}

#[test]
fn srtp_call_protects_what_it_sends_and_hears_only_what_passes_the_check() {
    use crate::srtp::{SrtpKey, SrtpParams, SrtpSession, SrtpSuite};
    let suite = SrtpSuite::AesCm128HmacSha1_32;
    let (ours, theirs) = (SrtpKey::from_bytes([7; 30]), SrtpKey::from_bytes([9; 30]));
    let mut p = params(20);
    p.srtp = Some(SrtpParams {
        suite,
        send: ours.clone(),
        receive: theirs.clone(),
    });
    let mut h = Harness::new(p);
    let mut peer = SrtpSession::new(&SrtpParams {
        suite,
        send: theirs,
        receive: ours,
    })
    .unwrap();
    // A stranger on the peer's IP without the key cannot latch, even in
    // the NAT window (plain RTP would).
    h.receive("192.0.2.10:30002", &rtp(0, 9, 9, 9, &[0xFF; 160]));
    assert_eq!(h.core.latched(), None);
    h.core.play(Prompt::from_samples(vec![1000i16; 1600]));
    h.run_until(Duration::from_millis(190));
    assert_eq!(h.sent.len(), 10);
    let code = g711::linear_to_ulaw(1000);
    for s in &h.sent {
        // On the wire: header, 160 bytes of ciphertext, a 4-byte tag.
        assert_eq!(s.raw.len(), 12 + 160 + 4);
        assert!(!s.raw[12..172].iter().all(|&b| b == code));
        let mut plain = Vec::new();
        peer.unprotect(&s.raw, &mut plain).unwrap();
        assert!(plain[12..].iter().all(|&b| b == code), "{plain:?}");
    }

    // Plain RTP and a forged packet are dropped and counted, not heard.
    let press = |end| {
        TelephoneEvent {
            event: 4,
            end,
            volume: 10,
            duration: 800,
        }
        .to_bytes()
    };
    h.receive(PEER, &rtp(101, 500, 3200, 77, &press(true)));
    let mut wire = Vec::new();
    peer.protect(&rtp(101, 501, 4000, 77, &press(false)), &mut wire)
        .unwrap();
    let mut forged = wire.clone();
    forged[14] ^= 0x40;
    h.receive(PEER, &forged);
    assert_eq!(h.core.stats().srtp_auth_failed, 3);
    assert_eq!(h.core.stats().packets_in, 0);
    // The real one is heard; its replay is not.
    h.receive(PEER, &wire);
    h.receive(PEER, &wire);
    for seq in 502..505 {
        peer.protect(&rtp(101, seq, 4000, 77, &press(true)), &mut wire)
            .unwrap();
        h.receive(PEER, &wire);
    }
    let stats = h.core.stats();
    assert_eq!((stats.packets_in, stats.srtp_replayed), (4, 1));
    assert_eq!(
        h.event_list()
            .iter()
            .filter(|e| **e == MediaEvent::Dtmf('4'))
            .count(),
        1
    );
    assert_eq!(h.core.latched(), Some(addr(PEER)));
}
