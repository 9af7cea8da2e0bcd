//! Caller audio for sipp: a classic pcap (Ethernet/IPv4/UDP/RTP) that
//! `<exec play_pcap_audio="FILE"/>` replays as the caller's RTP stream.
//!
//! The stream is what a desk phone sends: G.711 μ-law (PT 0) in 20 ms
//! packets with no silence suppression, and key presses as RFC 4733
//! telephone-events (PT 101, the type of sipp's own `dtmf_2833_*.pcap`) in
//! place of audio while a key is down. sipp rewrites addresses and ports on
//! replay and paces packets by their pcap timestamps, so only the relative
//! times, the RTP header fields and the payloads matter.
//!
//! The μ-law encoder and the event packets are written here rather than
//! borrowed from `voxbridge-media`: the fixture plays the phone, and sharing
//! the bot's own code would let a bug on its side agree with itself.
//!
//! ```no_run
//! # use voxbridge_e2e::pcap::PcapBuilder;
//! # let speech: Vec<i16> = Vec::new();
//! PcapBuilder::new()
//!     .silence(3000)
//!     .speech(&speech)
//!     .silence(500)
//!     .digits("1001#", 100, 200)
//!     .write("caller.pcap")?;
//! # Ok::<(), anyhow::Error>(())
//! ```

use std::fs;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};

/// RTP payload type of G.711 μ-law.
pub const PCMU_PT: u8 = 0;
/// Telephone-event payload type; sipp's bundled RFC 4733 captures use 101
/// and so do the scenarios that offer it.
pub const TELEPHONE_EVENT_PT: u8 = 101;
/// Samples in one 20 ms packet at 8 kHz.
pub const FRAME_SAMPLES: usize = 160;
/// Packet interval.
pub const PTIME: Duration = Duration::from_millis(20);

const FRAME_US: u64 = 20_000;
/// RFC 4733 §2.5.1.4: the final packet of an event is sent three times.
const END_REPEATS: usize = 3;
/// -10 dBm0, what phones typically announce.
const DTMF_VOLUME: u8 = 10;
/// μ-law of a zero sample.
const ULAW_SILENCE: u8 = 0xFF;

const ULAW_BIAS: i32 = 0x84;
const ULAW_CLIP: i32 = 32635;

/// G.711 μ-law encoding of one sample (the Sun reference algorithm).
pub fn ulaw_encode(pcm: i16) -> u8 {
    let value = i32::from(pcm);
    let (sign, magnitude) = if value < 0 {
        (0x80, -value)
    } else {
        (0x00, value)
    };
    let biased = magnitude.min(ULAW_CLIP) + ULAW_BIAS;
    // The bias puts every value at or above bit 7, so the segment is the
    // position of the top bit counted from there.
    let exponent = (31 - biased.leading_zeros() as i32 - 7).clamp(0, 7);
    let mantissa = (biased >> (exponent + 3)) & 0x0F;
    !(sign | (exponent << 4) as u8 | mantissa as u8)
}

/// G.711 μ-law decoding of one byte.
pub fn ulaw_decode(code: u8) -> i16 {
    let u = !code;
    let t = ((i32::from(u & 0x0F) << 3) + ULAW_BIAS) << ((u & 0x70) >> 4);
    let value = if u & 0x80 != 0 {
        ULAW_BIAS - t
    } else {
        t - ULAW_BIAS
    };
    value as i16
}

/// Decode a μ-law payload or recording to linear samples.
pub fn ulaw_decode_all(codes: &[u8]) -> Vec<i16> {
    codes.iter().map(|&c| ulaw_decode(c)).collect()
}

/// The RFC 4733 event code of a DTMF key.
pub fn dtmf_event(digit: char) -> Option<u8> {
    match digit {
        '0'..='9' => Some(digit as u8 - b'0'),
        '*' => Some(10),
        '#' => Some(11),
        'A'..='D' => Some(digit as u8 - b'A' + 12),
        _ => None,
    }
}

/// One RTP packet of the capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpFrame {
    /// Capture time in microseconds (pcap seconds and microseconds).
    pub time_us: u64,
    pub marker: bool,
    pub payload_type: u8,
    pub seq: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    pub payload: Vec<u8>,
}

/// Builds the caller's RTP stream step by step, then writes it as a pcap.
///
/// Time advances in 20 ms ticks. Audio packet `n` ticks after the start has
/// RTP timestamp `origin + 160 n`; an event keeps the timestamp of the tick
/// it started on, as RFC 4733 requires, and audio after it resumes at the
/// wall-clock timestamp, so the jump over the event is what a phone sends.
#[derive(Debug, Clone)]
pub struct PcapBuilder {
    ssrc: u32,
    first_seq: u16,
    ts_origin: u32,
    start_us: u64,
    tick: u64,
    frames: Vec<RtpFrame>,
    /// The first invalid input, reported by `write` so calls can chain.
    error: Option<String>,
}

impl Default for PcapBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl PcapBuilder {
    /// An empty stream with fixed SSRC, first sequence number and timestamp.
    pub fn new() -> Self {
        PcapBuilder {
            ssrc: 0x5EED_CA11,
            first_seq: 1000,
            ts_origin: 160_000,
            // 2023-11-14: any time works, sipp only uses differences.
            start_us: 1_700_000_000_000_000,
            tick: 0,
            frames: Vec::new(),
            error: None,
        }
    }

    /// Change SSRC, first sequence number and first timestamp. Two captures
    /// replayed in one call need different values: the bot would otherwise
    /// take the second for a replay of the first.
    pub fn origin(mut self, ssrc: u32, seq: u16, timestamp: u32) -> Self {
        for (i, frame) in self.frames.iter_mut().enumerate() {
            let offset = frame.timestamp.wrapping_sub(self.ts_origin);
            frame.ssrc = ssrc;
            frame.seq = seq.wrapping_add(i as u16);
            frame.timestamp = offset.wrapping_add(timestamp);
        }
        self.ssrc = ssrc;
        self.first_seq = seq;
        self.ts_origin = timestamp;
        self
    }

    fn push(&mut self, marker: bool, payload_type: u8, timestamp: u32, payload: Vec<u8>) {
        let seq = self.first_seq.wrapping_add(self.frames.len() as u16);
        self.frames.push(RtpFrame {
            time_us: self.start_us + self.tick * FRAME_US,
            marker,
            payload_type,
            seq,
            timestamp,
            ssrc: self.ssrc,
            payload,
        });
        self.tick += 1;
    }

    fn tick_timestamp(&self) -> u32 {
        self.ts_origin
            .wrapping_add((self.tick as u32).wrapping_mul(FRAME_SAMPLES as u32))
    }

    fn audio_frame(&mut self, payload: Vec<u8>) {
        // A talkspurt starts with the marker; the stream is one long spurt.
        let marker = self.frames.is_empty();
        let ts = self.tick_timestamp();
        self.push(marker, PCMU_PT, ts, payload);
    }

    /// 8 kHz mono speech, μ-law encoded; the last packet is padded with
    /// silence.
    pub fn speech(mut self, samples: &[i16]) -> Self {
        for chunk in samples.chunks(FRAME_SAMPLES) {
            let mut payload: Vec<u8> = chunk.iter().map(|&s| ulaw_encode(s)).collect();
            payload.resize(FRAME_SAMPLES, ULAW_SILENCE);
            self.audio_frame(payload);
        }
        self
    }

    /// Silent audio packets for `ms`, rounded up to whole packets.
    pub fn silence(mut self, ms: u32) -> Self {
        for _ in 0..ms.div_ceil(20) {
            self.audio_frame(vec![ULAW_SILENCE; FRAME_SAMPLES]);
        }
        self
    }

    /// Key presses as RFC 4733 events, each `tone_ms` long (rounded up to
    /// whole packets) and followed by `gap_ms` of silent audio. An event is
    /// one packet per 20 ms with the marker on the first and the duration
    /// growing by 160, the last carrying the E bit; that last packet goes
    /// out three times, 20 ms apart, with new sequence numbers. No audio is
    /// sent while a key is down.
    pub fn digits(mut self, digits: &str, tone_ms: u32, gap_ms: u32) -> Self {
        let ticks = tone_ms.div_ceil(20).max(1);
        let Ok(total) = u16::try_from(ticks * FRAME_SAMPLES as u32) else {
            self.error
                .get_or_insert(format!("tone of {tone_ms} ms overflows the duration field"));
            return self;
        };
        for digit in digits.chars() {
            let Some(event) = dtmf_event(digit) else {
                self.error
                    .get_or_insert(format!("{digit:?} is not a DTMF key"));
                return self;
            };
            let ts = self.tick_timestamp();
            let event_payload = |end: bool, duration: u16| {
                let [d0, d1] = duration.to_be_bytes();
                vec![event, u8::from(end) << 7 | DTMF_VOLUME, d0, d1]
            };
            for i in 1..ticks {
                let duration = (i * FRAME_SAMPLES as u32) as u16;
                self.push(
                    i == 1,
                    TELEPHONE_EVENT_PT,
                    ts,
                    event_payload(false, duration),
                );
            }
            for r in 0..END_REPEATS {
                let marker = ticks == 1 && r == 0;
                self.push(marker, TELEPHONE_EVENT_PT, ts, event_payload(true, total));
            }
            self = self.silence(gap_ms);
        }
        self
    }

    /// The packets so far.
    pub fn frames(&self) -> &[RtpFrame] {
        &self.frames
    }

    /// How long the replay lasts.
    pub fn duration(&self) -> Duration {
        PTIME * self.tick as u32
    }

    /// The pcap file contents.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        if let Some(e) = &self.error {
            bail!("{e}");
        }
        Ok(pcap_bytes(&self.frames))
    }

    /// Write the pcap file.
    pub fn write(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let bytes = self.to_bytes()?;
        fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
    }
}

const ETH_HEADER: usize = 14;
const IPV4_HEADER: usize = 20;
const UDP_HEADER: usize = 8;
const RTP_HEADER: usize = 12;
const ETHERTYPE_IPV4: u16 = 0x0800;
const IPPROTO_UDP: u8 = 17;
const PCAP_MAGIC: u32 = 0xa1b2_c3d4;
const LINKTYPE_ETHERNET: u32 = 1;

/// Documentation addresses (RFC 5737) and ports; sipp replaces them.
const SRC_IP: [u8; 4] = [192, 0, 2, 10];
const DST_IP: [u8; 4] = [192, 0, 2, 20];
const SRC_PORT: u16 = 40_000;
const DST_PORT: u16 = 40_002;

fn ipv4_checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = header
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    !(sum as u16)
}

fn frame_bytes(frame: &RtpFrame, ip_id: u16) -> Vec<u8> {
    let udp_len = UDP_HEADER + RTP_HEADER + frame.payload.len();
    let ip_len = IPV4_HEADER + udp_len;
    let mut out = Vec::with_capacity(ETH_HEADER + ip_len);
    out.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x20]); // locally administered MACs
    out.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x10]);
    out.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
    let ip_start = out.len();
    out.extend_from_slice(&[0x45, 0]);
    out.extend_from_slice(&(ip_len as u16).to_be_bytes());
    out.extend_from_slice(&ip_id.to_be_bytes());
    out.extend_from_slice(&[0x40, 0, 64, IPPROTO_UDP, 0, 0]); // DF, TTL 64
    out.extend_from_slice(&SRC_IP);
    out.extend_from_slice(&DST_IP);
    let sum = ipv4_checksum(&out[ip_start..]);
    out[ip_start + 10..ip_start + 12].copy_from_slice(&sum.to_be_bytes());
    out.extend_from_slice(&SRC_PORT.to_be_bytes());
    out.extend_from_slice(&DST_PORT.to_be_bytes());
    out.extend_from_slice(&(udp_len as u16).to_be_bytes());
    // Zero means "no checksum" over IPv4; sipp recomputes it after it
    // rewrites the ports anyway.
    out.extend_from_slice(&[0, 0]);
    out.push(0x80);
    out.push(u8::from(frame.marker) << 7 | (frame.payload_type & 0x7F));
    out.extend_from_slice(&frame.seq.to_be_bytes());
    out.extend_from_slice(&frame.timestamp.to_be_bytes());
    out.extend_from_slice(&frame.ssrc.to_be_bytes());
    out.extend_from_slice(&frame.payload);
    out
}

/// A classic little-endian pcap of `frames`.
pub fn pcap_bytes(frames: &[RtpFrame]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&PCAP_MAGIC.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes()); // thiszone
    out.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
    out.extend_from_slice(&65_535u32.to_le_bytes()); // snaplen
    out.extend_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
    for (i, frame) in frames.iter().enumerate() {
        let bytes = frame_bytes(frame, i as u16);
        out.extend_from_slice(&((frame.time_us / 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&((frame.time_us % 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        out.extend_from_slice(&bytes);
    }
    out
}

/// The RTP packets of a classic pcap (either byte order, Ethernet link
/// type, IPv4/UDP); other packets are skipped. For checking captures made
/// here or by tcpdump.
pub fn read_rtp(path: &Path) -> Result<Vec<RtpFrame>> {
    let bytes = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    parse_rtp(&bytes).with_context(|| format!("parsing {}", path.display()))
}

/// [`read_rtp`] on the file contents.
pub fn parse_rtp(bytes: &[u8]) -> Result<Vec<RtpFrame>> {
    ensure!(bytes.len() >= 24, "shorter than a pcap header");
    let magic = [bytes[0], bytes[1], bytes[2], bytes[3]];
    let big_endian = if u32::from_le_bytes(magic) == PCAP_MAGIC {
        false
    } else if u32::from_be_bytes(magic) == PCAP_MAGIC {
        true
    } else {
        bail!("not a classic microsecond pcap (magic {magic:02x?})");
    };
    let u32_at = |at: usize| -> u32 {
        let b = [bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]];
        if big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    };
    ensure!(
        u32_at(20) == LINKTYPE_ETHERNET,
        "link type {} is not Ethernet",
        u32_at(20)
    );
    let mut frames = Vec::new();
    let mut at = 24;
    while at + 16 <= bytes.len() {
        let time_us = u64::from(u32_at(at)) * 1_000_000 + u64::from(u32_at(at + 4));
        let len = u32_at(at + 8) as usize;
        let start = at + 16;
        let Some(packet) = bytes.get(start..start + len) else {
            bail!("packet at byte {at} runs past the end of the file");
        };
        at = start + len;
        if let Some(frame) = parse_packet(packet, time_us) {
            frames.push(frame);
        }
    }
    Ok(frames)
}

fn parse_packet(packet: &[u8], time_us: u64) -> Option<RtpFrame> {
    let be16 = |at: usize| -> Option<u16> {
        Some(u16::from_be_bytes([*packet.get(at)?, *packet.get(at + 1)?]))
    };
    if be16(12)? != ETHERTYPE_IPV4 {
        return None;
    }
    let ip = ETH_HEADER;
    let ihl = usize::from(packet.get(ip)? & 0x0F) * 4;
    if *packet.get(ip + 9)? != IPPROTO_UDP {
        return None;
    }
    let udp = ip + ihl;
    let udp_len = usize::from(be16(udp + 4)?);
    let rtp = packet.get(udp + UDP_HEADER..udp + udp_len)?;
    if rtp.len() < RTP_HEADER || rtp[0] >> 6 != 2 {
        return None;
    }
    let csrcs = usize::from(rtp[0] & 0x0F);
    let mut body = RTP_HEADER + 4 * csrcs;
    if rtp[0] & 0x10 != 0 {
        let words = u16::from_be_bytes([*rtp.get(body + 2)?, *rtp.get(body + 3)?]);
        body += 4 + 4 * usize::from(words);
    }
    Some(RtpFrame {
        time_us,
        marker: rtp[1] & 0x80 != 0,
        payload_type: rtp[1] & 0x7F,
        seq: u16::from_be_bytes([rtp[2], rtp[3]]),
        timestamp: u32::from_be_bytes([rtp[4], rtp[5], rtp[6], rtp[7]]),
        ssrc: u32::from_be_bytes([rtp[8], rtp[9], rtp[10], rtp[11]]),
        payload: rtp.get(body..)?.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(ms: usize, hz: f64) -> Vec<i16> {
        (0..ms * 8)
            .map(|i| ((i as f64 * hz * std::f64::consts::TAU / 8000.0).sin() * 8000.0) as i16)
            .collect()
    }

    /// Speech, silence, two keys, then silence: everything the e2e tests use.
    fn sample_stream() -> (PcapBuilder, Vec<i16>) {
        // 1010 ms: the last packet is a partial one, padded.
        let speech = tone(1010, 440.0);
        let builder = PcapBuilder::new()
            .speech(&speech)
            .silence(100)
            .digits("1#", 100, 200)
            .silence(30);
        (builder, speech)
    }

    #[test]
    fn stream_layout_round_trips_through_the_file() {
        let (builder, speech) = sample_stream();
        let dir = std::env::temp_dir().join(format!("voxbridge-pcap-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("layout.pcap");
        builder.write(&path).unwrap();
        let bytes = fs::read(&path).unwrap();
        assert_eq!(&bytes[..4], &[0xd4, 0xc3, 0xb2, 0xa1], "classic magic");
        assert_eq!(&bytes[20..24], &[1, 0, 0, 0], "Ethernet");
        let frames = read_rtp(&path).unwrap();
        fs::remove_dir_all(&dir).ok();
        assert_eq!(frames, builder.frames());

        // 51 speech + 5 silence + per key (4 updates + 3 ends + 10 gap) + 2.
        assert_eq!(frames.len(), 51 + 5 + 2 * 17 + 2);
        assert_eq!(builder.duration(), Duration::from_millis(20 * 92));
        for (i, pair) in frames.windows(2).enumerate() {
            assert_eq!(pair[1].seq, pair[0].seq.wrapping_add(1), "seq at {i}");
            assert_eq!(
                pair[1].time_us - pair[0].time_us,
                20_000,
                "pcap time at {i}"
            );
            assert_eq!(pair[1].ssrc, pair[0].ssrc);
        }
        let origin = frames[0].timestamp;
        let audio: Vec<(usize, &RtpFrame)> = frames
            .iter()
            .enumerate()
            .filter(|(_, f)| f.payload_type == PCMU_PT)
            .collect();
        assert_eq!(audio.len(), 51 + 5 + 2 * 10 + 2);
        for &(tick, f) in &audio {
            assert_eq!(f.payload.len(), FRAME_SAMPLES);
            assert_eq!(
                f.timestamp,
                origin + 160 * tick as u32,
                "audio ts at {tick}"
            );
            assert_eq!(f.marker, tick == 0);
        }

        let decoded: Vec<i16> = audio[..51]
            .iter()
            .flat_map(|(_, f)| ulaw_decode_all(&f.payload))
            .collect();
        for (i, (&got, &want)) in decoded.iter().zip(&speech).enumerate() {
            let step = (i32::from(want).abs() / 16).max(8);
            assert!(
                (i32::from(got) - i32::from(want)).abs() <= step,
                "sample {i}"
            );
        }
        assert!(decoded[speech.len()..].iter().all(|&s| s == 0), "padding");

        let events: Vec<(usize, &RtpFrame)> = frames
            .iter()
            .enumerate()
            .filter(|(_, f)| f.payload_type == TELEPHONE_EVENT_PT)
            .collect();
        assert_eq!(events.len(), 14);
        for (key, (first_tick, code)) in [(56usize, 1u8), (73, 11)].into_iter().enumerate() {
            let packets = &events[key * 7..key * 7 + 7];
            assert_eq!(packets[0].0, first_tick);
            let ts = origin + 160 * first_tick as u32;
            for (i, &(tick, f)) in packets.iter().enumerate() {
                assert_eq!(tick, first_tick + i, "events are back to back");
                assert_eq!(f.timestamp, ts, "one timestamp per event");
                assert_eq!(f.marker, i == 0);
                let end = i >= 4;
                let duration: u16 = if end { 800 } else { 160 * (i as u16 + 1) };
                let [d0, d1] = duration.to_be_bytes();
                assert_eq!(
                    f.payload,
                    vec![code, u8::from(end) << 7 | 10, d0, d1],
                    "{i}"
                );
            }
            // Audio resumes on the wall clock right after the last end packet.
            let next = &frames[first_tick + 7];
            assert_eq!(next.payload_type, PCMU_PT);
            assert_eq!(next.timestamp, origin + 160 * (first_tick + 7) as u32);
        }
    }

    #[test]
    fn origin_and_bad_input() {
        let frames = PcapBuilder::new()
            .silence(40)
            .digits("5", 20, 0)
            .origin(7, 65_535, u32::MAX - 100)
            .silence(20)
            .frames()
            .to_vec();
        let seqs: Vec<u16> = frames.iter().map(|f| f.seq).collect();
        assert_eq!(seqs, [65_535, 0, 1, 2, 3, 4]);
        let ts: Vec<u32> = frames.iter().map(|f| f.timestamp).collect();
        let o = u32::MAX - 100;
        assert_eq!(
            ts,
            [
                o,
                o.wrapping_add(160),
                o.wrapping_add(320),
                o.wrapping_add(320),
                o.wrapping_add(320),
                o.wrapping_add(800)
            ]
        );
        assert!(frames.iter().all(|f| f.ssrc == 7));
        // A one-packet key: the first end packet carries the marker.
        assert!(frames[2].marker && !frames[3].marker);
        assert_eq!(frames[2].payload, [5, 0x8A, 0, 160]);

        let err = PcapBuilder::new()
            .digits("12x", 100, 100)
            .to_bytes()
            .unwrap_err();
        assert!(err.to_string().contains("'x'"), "{err}");
        assert!(PcapBuilder::new()
            .digits("1", 10_000, 0)
            .to_bytes()
            .is_err());
        assert!(parse_rtp(b"not a pcap at all, definitely not").is_err());
        let mut truncated = sample_stream().0.to_bytes().unwrap();
        truncated.truncate(100);
        assert!(parse_rtp(&truncated).is_err());
    }

    /// A second opinion on the file format from Wireshark's dissectors
    /// (tshark comes with `scripts/install-deps.sh`; without it this fails).
    #[test]
    fn tshark_reads_the_rtp_and_the_events() {
        let dir = std::env::temp_dir().join(format!("voxbridge-tshark-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("tshark.pcap");
        sample_stream().0.write(&path).unwrap();
        let out = std::process::Command::new("tshark")
            .arg("-r")
            .arg(&path)
            .args(["-d", "udp.port==40000,rtp"])
            .args(["-T", "fields", "-E", "separator=,"])
            .args([
                "-e",
                "rtp.p_type",
                "-e",
                "rtp.seq",
                "-e",
                "rtpevent.event_id",
            ])
            .args([
                "-e",
                "rtpevent.end_of_event",
                "-e",
                "rtpevent.duration",
                "-e",
                "_ws.expert",
            ])
            .output()
            .expect("tshark (Debian package tshark, installed by scripts/install-deps.sh)");
        fs::remove_dir_all(&dir).ok();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 92, "{text}");
        assert!(lines.iter().all(|l| !l.contains("Malformed")), "{text}");
        let events: Vec<&str> = lines
            .iter()
            .copied()
            .filter(|l| l.starts_with("101,"))
            .collect();
        assert_eq!(events.len(), 14, "{text}");
        assert!(events[0].ends_with(",1,0,160,"), "{}", events[0]);
        assert!(events[6].ends_with(",1,1,800,"), "{}", events[6]);
        assert!(events[13].ends_with(",11,1,800,"), "{}", events[13]);
    }

    /// The real consumer: sipp loads the file through `-key pcap` and sends
    /// every packet, in order, to the media address the answerer gave.
    #[test]
    fn sipp_replays_the_file_to_the_callee() {
        let dir = crate::scratch_dir("pcap-replay").unwrap();
        let (builder, _) = sample_stream();
        let pcap = dir.join("caller.pcap");
        builder.write(&pcap).unwrap();

        let media = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        media
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let media_port = media.local_addr().unwrap().port().to_string();
        let uas_port = crate::free_port().unwrap();
        let mut uas = std::process::Command::new("sipp")
            .arg("-sf")
            .arg(crate::scenario_dir().join("uas_media_bye.xml"))
            .args(["-set", "media_port", &media_port, "-set", "hold_ms", "3000"])
            .args(["-i", "127.0.0.1", "-p", &uas_port.to_string(), "-m", "1"])
            .args(["-nostdin", "-timeout", "20s"])
            .current_dir(&dir)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(300));

        let receiver = std::thread::spawn(move || {
            let mut got = Vec::new();
            let mut buf = [0u8; 2048];
            let deadline = std::time::Instant::now() + Duration::from_secs(15);
            while std::time::Instant::now() < deadline && got.len() < 92 {
                if let Ok(n) = media.recv(&mut buf) {
                    got.push(buf[..n].to_vec());
                }
            }
            got
        });
        let uac_port = crate::free_port().unwrap().to_string();
        let rtp_port = crate::free_port().unwrap().to_string();
        let target = format!("127.0.0.1:{uas_port}");
        let pcap_arg = pcap.display().to_string();
        let scenario = crate::scenario_dir().join("uac_speech_keys.xml");
        let run = crate::run_sipp(
            &dir,
            &[
                "-sf",
                &scenario.display().to_string(),
                "-set",
                "caller",
                "5550100",
                "-key",
                "pcap",
                &pcap_arg,
                "-i",
                "127.0.0.1",
                "-p",
                &uac_port,
                "-mp",
                &rtp_port,
                "-m",
                "1",
                "-timeout",
                "20s",
                &target,
            ],
            Duration::from_secs(25),
        )
        .unwrap();
        let uas_status = crate::wait_child(&mut uas, Duration::from_secs(10));
        let got = receiver.join().unwrap();
        assert_eq!(run.status, Some(0), "{}", run.describe());
        assert_eq!(uas_status, Some(0), "the answerer saw its BYE answered");

        let sent = builder.frames();
        assert_eq!(got.len(), sent.len(), "packets received");
        for (i, (packet, frame)) in got.iter().zip(sent).enumerate() {
            assert_eq!(packet[1] & 0x7F, frame.payload_type, "{i}");
            assert_eq!(u16::from_be_bytes([packet[2], packet[3]]), frame.seq, "{i}");
            assert_eq!(&packet[12..], &frame.payload[..], "{i}");
        }
    }

    #[test]
    fn ulaw_matches_the_media_crate() {
        for pcm in i16::MIN..=i16::MAX {
            assert_eq!(
                ulaw_encode(pcm),
                voxbridge_media::g711::linear_to_ulaw(pcm),
                "encoding {pcm}"
            );
        }
        for code in 0..=255u8 {
            assert_eq!(
                ulaw_decode(code),
                voxbridge_media::g711::ulaw_to_linear(code),
                "decoding {code:#04x}"
            );
        }
        assert_eq!(ulaw_encode(0), ULAW_SILENCE);
        assert_eq!(ulaw_decode(ULAW_SILENCE), 0);
    }
}
