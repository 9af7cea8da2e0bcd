//! The sans-IO heart of a call's media: RTP in (latching, jitter buffer,
//! G.711 decode, DTMF), RTP out (paced prompt/silence/DTMF frames) and the
//! inactivity timer, driven entirely by the inputs and instants it is given.
//!
//! Contract, as in str0m: after every [`MediaCore::handle_input`] (and every
//! command) drain [`MediaCore::poll_output`] until it returns
//! [`Output::Timeout`], then call `handle_input(Input::Timeout(now))` no later
//! than that instant. Nothing here reads the clock or touches a socket, so
//! tests drive minutes of call time in microseconds.

use std::collections::VecDeque;
use std::hash::BuildHasher;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tracing::{debug, info, trace, warn};

use super::event::{AudioSink, MediaEvent, MediaStats, PlaybackId};
use super::latch::{Latch, Verdict};
use super::params::{MediaParams, ParamsError};
use crate::clock::PacingClock;
use crate::dtmf::{self, DtmfError, DtmfReceiver, DtmfSender};
use crate::g711;
use crate::jitter::{Concealer, JitterBuffer, JitterOutput};
use crate::prompt::Prompt;
use crate::rtp::{RtpHeader, RtpPacketView, RTP_HEADER_LEN};
use crate::srtp::{SrtpError, SrtpSession};

/// Packets waiting to be polled beyond this are dropped, oldest first: a
/// shell that stopped draining must not make us grow without bound.
const MAX_QUEUED_PACKETS: usize = 16;

/// Digits queued for sending beyond this are refused.
const MAX_QUEUED_DIGITS: usize = 64;

/// Audio between two digits we send, so receivers see separate presses.
const INTER_DIGIT_GAP: Duration = Duration::from_millis(40);

/// What to wait for when no timer is armed (media inactive both ways).
const IDLE_WAKEUP: Duration = Duration::from_secs(3600);

/// Something happening to the session.
#[derive(Debug)]
pub enum Input<'a> {
    /// Time has reached this instant.
    Timeout(Instant),
    /// A datagram arrived at this instant from this address.
    Receive(Instant, SocketAddr, &'a [u8]),
}

/// Something the session wants done.
#[derive(Debug, PartialEq, Eq)]
pub enum Output<'a> {
    /// Send this datagram.
    Transmit(SocketAddr, &'a [u8]),
    /// Tell the engine.
    Event(MediaEvent),
    /// Nothing more to do until this instant (or the next input).
    Timeout(Instant),
}

#[derive(Debug)]
struct Playback {
    id: PlaybackId,
    prompt: Prompt,
    pos: usize,
}

#[derive(Debug)]
struct DtmfTx {
    sender: DtmfSender,
    timestamp: u32,
}

/// One call's media state machine. See the module documentation.
pub struct MediaCore {
    params: MediaParams,
    now: Instant,
    stats: MediaStats,
    events: VecDeque<MediaEvent>,

    // Sending.
    clock: PacingClock,
    ssrc: u32,
    seq: u16,
    marker_next: bool,
    playback: Option<Playback>,
    dtmf_queue: VecDeque<char>,
    dtmf_tx: Option<DtmfTx>,
    dtmf_gap_frames: u32,
    tx_queue: VecDeque<Vec<u8>>,
    tx_free: Vec<Vec<u8>>,
    tx_current: Vec<u8>,

    // Receiving.
    latch: Latch,
    jitter: JitterBuffer,
    dtmf_rx: DtmfReceiver,
    concealer: Concealer,
    /// Playout time owed to the caller's audio, in samples: lets a 20 ms
    /// send clock play out 30 ms frames at the right average rate.
    playout_owed: i64,
    pcm: Vec<i16>,
    sink: Option<Box<dyn AudioSink>>,
    /// What this frame sent, for the sink (only filled when there is one).
    sent_pcm: Vec<i16>,
    last_activity: Instant,
    inactive_reported: bool,
    /// Restart the inactivity timer at the next input: commands carry no
    /// time, and `now` may be stale after a long inactive period.
    rearm_inactivity: bool,

    /// SRTP contexts when the call negotiated SDES keys.
    srtp: Option<SrtpSession>,
    /// The packet being unprotected (reused: no allocation per packet).
    srtp_rx: Vec<u8>,
}

impl std::fmt::Debug for MediaCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaCore")
            .field("params", &self.params)
            .field("ssrc", &self.ssrc)
            .field("latched", &self.latch.latched())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// Random bits without a dependency: std seeds every `RandomState` from the
/// OS once per thread and then varies it, which is plenty for SSRCs and
/// initial sequence numbers (RFC 3550 only asks them to be unpredictable-ish).
fn random_u64() -> u64 {
    std::collections::hash_map::RandomState::new().hash_one(0u8)
}

impl MediaCore {
    /// A session starting at `now`; the first frame is due immediately.
    pub fn new(now: Instant, params: MediaParams) -> Result<Self, ParamsError> {
        params.validate()?;
        let srtp = srtp_session(&params)?;
        let random = random_u64();
        let clock = PacingClock::new(now, params.ptime).with_rtp_origin((random >> 32) as u32);
        Ok(MediaCore {
            now,
            stats: MediaStats::default(),
            events: VecDeque::new(),
            clock,
            ssrc: random as u32,
            seq: random_u64() as u16,
            marker_next: true,
            playback: None,
            dtmf_queue: VecDeque::new(),
            dtmf_tx: None,
            dtmf_gap_frames: 0,
            tx_queue: VecDeque::new(),
            tx_free: Vec::new(),
            tx_current: Vec::new(),
            latch: Latch::new(now, &params),
            jitter: JitterBuffer::default(),
            dtmf_rx: DtmfReceiver::new(),
            concealer: Concealer::new(),
            playout_owed: 0,
            pcm: Vec::with_capacity(params.samples_per_frame()),
            sink: None,
            sent_pcm: Vec::new(),
            last_activity: now,
            inactive_reported: false,
            rearm_inactivity: false,
            srtp,
            srtp_rx: Vec::new(),
            params,
        })
    }

    /// Deliver received audio to `sink` from now on.
    pub fn set_audio_sink(&mut self, sink: Box<dyn AudioSink>) {
        self.sink = Some(sink);
    }

    /// The current parameters.
    pub fn params(&self) -> &MediaParams {
        &self.params
    }

    /// Our SSRC.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// Where packets go: the latched source, else the signalled address.
    pub fn destination(&self) -> SocketAddr {
        self.latch.latched().unwrap_or(self.params.remote)
    }

    /// The address we latched onto, once RTP arrived.
    pub fn latched(&self) -> Option<SocketAddr> {
        self.latch.latched()
    }

    /// Whether a prompt is playing (or paused by hold/DTMF).
    pub fn is_playing(&self) -> bool {
        self.playback.is_some()
    }

    /// Counters so far.
    pub fn stats(&self) -> MediaStats {
        let jitter = self.jitter.stats();
        MediaStats {
            late: jitter.late,
            lost: jitter.lost,
            duplicate: jitter.duplicate,
            frames_skipped: self.clock.frames_skipped(),
            ..self.stats
        }
    }

    /// Feed time or a datagram.
    pub fn handle_input(&mut self, input: Input<'_>) {
        match input {
            Input::Timeout(now) => self.on_timeout(now),
            Input::Receive(now, from, data) => self.on_receive(now, from, data),
        }
    }

    /// The next thing to do: packets first (pacing matters most), then
    /// events, then when to call again.
    pub fn poll_output(&mut self) -> Output<'_> {
        if let Some(packet) = self.tx_queue.pop_front() {
            let sent = std::mem::replace(&mut self.tx_current, packet);
            self.tx_free.push(sent);
            self.stats.packets_out += 1;
            return Output::Transmit(self.destination(), &self.tx_current);
        }
        if let Some(event) = self.events.pop_front() {
            return Output::Event(event);
        }
        Output::Timeout(self.next_timeout())
    }

    /// Play `prompt` from the start, replacing any prompt playing.
    pub fn play(&mut self, prompt: Prompt) -> PlaybackId {
        let id = PlaybackId::next();
        self.play_with_id(id, prompt);
        id
    }

    /// [`play`](Self::play) with an id chosen by the caller (the tokio shell
    /// hands ids out before the command reaches the session task).
    pub fn play_with_id(&mut self, id: PlaybackId, prompt: Prompt) {
        if prompt.is_empty() {
            self.playback = None;
            self.events.push_back(MediaEvent::PlaybackDone(id));
            return;
        }
        self.playback = Some(Playback { id, prompt, pos: 0 });
    }

    /// Stop the prompt playing, if any (no `PlaybackDone` for it).
    pub fn stop_playback(&mut self) {
        self.playback = None;
    }

    /// Queue a digit for sending as RFC 4733 events; it takes over the
    /// outgoing stream for its duration, then audio resumes.
    pub fn send_dtmf(&mut self, digit: char) -> Result<(), DtmfError> {
        dtmf::event_for_digit(digit).ok_or(DtmfError::InvalidDigit(digit))?;
        if self.params.dtmf_payload_type.is_none() {
            return Err(DtmfError::NotNegotiated);
        }
        if self.dtmf_queue.len() < MAX_QUEUED_DIGITS {
            self.dtmf_queue.push_back(digit);
        }
        Ok(())
    }

    /// Apply renegotiated parameters (re-INVITE, hold, resume). SSRC,
    /// sequence numbers, timestamps and the playing prompt carry on.
    pub fn update(&mut self, params: MediaParams) -> Result<(), ParamsError> {
        params.validate()?;
        // Same keys: the contexts (rollover counters, replay window) carry
        // on; new keys (a re-INVITE's new a=crypto): new contexts.
        if self.srtp.as_ref().map(SrtpSession::params) != params.srtp.as_ref() {
            self.srtp = srtp_session(&params)?;
        }
        let old = std::mem::replace(&mut self.params, params);
        let new = &self.params;
        if old.ptime != new.ptime {
            self.clock.set_ptime(new.ptime);
        }
        if old.remote != new.remote {
            // A new peer (transfer, media server change): latch again.
            self.latch.reset();
        }
        if old.codec != new.codec || old.payload_type != new.payload_type {
            self.jitter.reset();
            self.concealer.reset();
        }
        if new.dtmf_payload_type.is_none() {
            self.dtmf_queue.clear();
            self.dtmf_tx = None;
        }
        if !old.direction.sends() && new.direction.sends() {
            self.marker_next = true;
        }
        // A re-INVITE is a sign of life; give the peer a full timeout.
        self.rearm_inactivity = true;
        self.inactive_reported = false;
        Ok(())
    }

    fn media_active(&self) -> bool {
        self.params.direction.sends() || self.params.direction.receives()
    }

    fn inactivity_deadline(&self) -> Option<Instant> {
        let armed = !self.rearm_inactivity
            && self.params.direction.receives()
            && !self.params.inactivity_timeout.is_zero()
            && !self.inactive_reported;
        armed.then(|| self.last_activity + self.params.inactivity_timeout)
    }

    fn next_timeout(&self) -> Instant {
        let clock = self.media_active().then(|| self.clock.next_deadline());
        match (clock, self.inactivity_deadline()) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => self.now + IDLE_WAKEUP,
        }
    }

    fn set_now(&mut self, now: Instant) {
        self.now = now;
        if self.rearm_inactivity {
            self.rearm_inactivity = false;
            self.last_activity = now;
        }
    }

    fn on_timeout(&mut self, now: Instant) {
        self.set_now(now);
        if self.media_active() {
            let receives = self.params.direction.receives();
            let sends = self.params.direction.sends();
            for frame in self.clock.due_frames(now) {
                if receives {
                    self.playout_frame();
                }
                if sends {
                    // A whole packet interval behind: the shell was not
                    // scheduled in time (CPU starved, a blocked worker).
                    if now.saturating_duration_since(self.clock.deadline(frame))
                        >= self.params.ptime
                    {
                        self.stats.late_out += 1;
                    }
                    self.send_frame(frame);
                }
                if let Some(sink) = &mut self.sink {
                    self.sent_pcm.resize(self.params.samples_per_frame(), 0);
                    sink.on_sent(&self.sent_pcm);
                    self.sent_pcm.clear();
                }
            }
        }
        if let Some(deadline) = self.inactivity_deadline() {
            if now >= deadline {
                debug!(timeout = ?self.params.inactivity_timeout, "no RTP received");
                self.inactive_reported = true;
                self.events.push_back(MediaEvent::Inactive);
            }
        }
    }

    fn on_receive(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        self.set_now(now);
        let Some(srtp) = &mut self.srtp else {
            self.on_rtp(now, from, data);
            return;
        };
        // Authenticate before anything else looks at the packet, latching
        // included: a stranger without the key can then neither be heard
        // nor latch in the NAT window.
        let mut plain = std::mem::take(&mut self.srtp_rx);
        match srtp.unprotect(data, &mut plain) {
            Ok(()) => self.on_rtp(now, from, &plain),
            Err(error) => {
                let first = self.stats.srtp_auth_failed + self.stats.srtp_replayed == 0;
                match error {
                    SrtpError::Replay => self.stats.srtp_replayed += 1,
                    SrtpError::Malformed(_) => self.stats.bad_packets += 1,
                    _ => self.stats.srtp_auth_failed += 1,
                }
                // Once per call, not per packet: a flood must not flood the log.
                if first && !matches!(error, SrtpError::Malformed(_)) {
                    info!(%from, %error, "dropping SRTP packet that failed its check (counted; logged once per call)");
                }
            }
        }
        self.srtp_rx = plain;
    }

    fn on_rtp(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        let packet = match RtpPacketView::parse(data) {
            Ok(packet) => packet,
            Err(error) => {
                self.stats.bad_packets += 1;
                trace!(%from, %error, "dropping datagram");
                return;
            }
        };
        match self.latch.judge(now, from, &self.params) {
            Verdict::Accept => {}
            Verdict::Latch => debug!(%from, "latched RTP source"),
            Verdict::Foreign => {
                // Once per call, not per packet: a flood must not flood the log.
                if self.stats.ignored_source == 0 {
                    info!(
                        %from,
                        signalled = %self.params.remote,
                        latched = ?self.latch.latched(),
                        "dropping RTP from a foreign source (counted; logged once per call)"
                    );
                }
                self.stats.ignored_source += 1;
                return;
            }
        }
        self.stats.packets_in += 1;
        self.last_activity = now;
        self.inactive_reported = false;
        if !self.params.direction.receives() {
            return;
        }
        if Some(packet.payload_type) == self.params.dtmf_payload_type {
            // Events usually share the audio's sequence numbers: not losses.
            self.jitter.skip(packet.ssrc, packet.seq);
            match self
                .dtmf_rx
                .receive(packet.seq, packet.timestamp, packet.ssrc, packet.payload)
            {
                Ok(Some(digit)) => {
                    self.stats.dtmf_in += 1;
                    self.events.push_back(MediaEvent::Dtmf(digit));
                }
                Ok(None) => {}
                Err(_) => self.stats.bad_packets += 1,
            }
        } else if packet.payload_type == self.params.payload_type {
            if packet.payload.is_empty() {
                self.stats.bad_packets += 1;
                return;
            }
            self.jitter
                .push(packet.ssrc, packet.seq, packet.timestamp, packet.payload);
        } else {
            self.stats.unknown_payload += 1;
        }
    }

    /// Play out one send-clock frame's worth of the caller's audio.
    fn playout_frame(&mut self) {
        let frame_samples = self.params.samples_per_frame();
        self.playout_owed += frame_samples as i64;
        while self.playout_owed > 0 {
            self.pcm.clear();
            let len = match self.jitter.pop() {
                JitterOutput::Frame { payload, .. } => {
                    if self.sink.is_some() {
                        g711::decode(self.params.codec, payload, &mut self.pcm);
                        self.concealer.good_frame(&self.pcm);
                    }
                    payload.len()
                }
                JitterOutput::Concealed => {
                    let len = self.concealer.last_len().unwrap_or(frame_samples);
                    if self.sink.is_some() {
                        self.concealer.conceal(len, &mut self.pcm);
                    }
                    len
                }
                JitterOutput::Empty => {
                    self.playout_owed = 0;
                    return;
                }
            };
            self.playout_owed -= len.max(1) as i64;
            if let Some(sink) = &mut self.sink {
                sink.on_audio(&self.pcm);
            }
        }
    }

    fn take_buffer(&mut self) -> Vec<u8> {
        self.tx_free.pop().unwrap_or_default()
    }

    fn enqueue(&mut self, packet: Vec<u8>) {
        let packet = match &mut self.srtp {
            None => packet,
            Some(srtp) => {
                let mut protected = self.tx_free.pop().unwrap_or_default();
                let result = srtp.protect(&packet, &mut protected);
                self.tx_free.push(packet);
                if let Err(error) = result {
                    // Only at 2^48 packets with one key, or a bug: say so
                    // once a call rather than 50 times a second.
                    if self.stats.srtp_send_failed == 0 {
                        warn!(%error, "cannot protect an RTP packet; not sending it");
                    }
                    self.stats.srtp_send_failed += 1;
                    self.tx_free.push(protected);
                    return;
                }
                protected
            }
        };
        if self.tx_queue.len() >= MAX_QUEUED_PACKETS {
            if let Some(old) = self.tx_queue.pop_front() {
                self.tx_free.push(old);
            }
        }
        self.tx_queue.push_back(packet);
    }

    fn next_seq(&mut self) -> u16 {
        let seq = self.seq;
        self.seq = seq.wrapping_add(1);
        seq
    }

    fn send_frame(&mut self, frame: u64) {
        let timestamp = self.clock.rtp_timestamp(frame);
        if self.dtmf_tx.is_none() && self.dtmf_gap_frames == 0 {
            self.start_next_digit(timestamp);
        }
        if let Some(tx) = &mut self.dtmf_tx {
            if let Some(packet) = tx.sender.next() {
                let event_timestamp = tx.timestamp;
                if tx.sender.is_finished() {
                    self.dtmf_tx = None;
                    self.stats.dtmf_out += 1;
                    let ptime_ms = self.params.ptime.as_millis().max(1) as u32;
                    self.dtmf_gap_frames = (INTER_DIGIT_GAP.as_millis() as u32).div_ceil(ptime_ms);
                }
                let header = RtpHeader {
                    payload_type: packet.payload_type,
                    marker: packet.marker,
                    seq: self.next_seq(),
                    timestamp: event_timestamp,
                    ssrc: self.ssrc,
                };
                let mut buf = self.take_buffer();
                header.write_packet(&packet.payload, &mut buf);
                self.enqueue(buf);
                return;
            }
            self.dtmf_tx = None;
        }
        self.dtmf_gap_frames = self.dtmf_gap_frames.saturating_sub(1);
        self.send_audio(timestamp);
    }

    fn start_next_digit(&mut self, timestamp: u32) {
        let Some(pt) = self.params.dtmf_payload_type else {
            return;
        };
        while let Some(digit) = self.dtmf_queue.pop_front() {
            match DtmfSender::new(digit, pt, self.params.dtmf_duration, self.params.ptime) {
                Ok(sender) => {
                    self.dtmf_tx = Some(DtmfTx { sender, timestamp });
                    return;
                }
                Err(error) => debug!(%error, "dropping queued digit"),
            }
        }
    }

    fn send_audio(&mut self, timestamp: u32) {
        let codec = self.params.codec;
        let samples = self.params.samples_per_frame();
        let header = RtpHeader {
            payload_type: self.params.payload_type,
            marker: std::mem::take(&mut self.marker_next),
            seq: self.next_seq(),
            timestamp,
            ssrc: self.ssrc,
        };
        let mut buf = self.take_buffer();
        buf.reserve(RTP_HEADER_LEN + samples);
        header.write(&mut buf);
        let mut finished = None;
        if let Some(playback) = &mut self.playback {
            if playback.pos == 0 {
                self.events
                    .push_back(MediaEvent::PlaybackStarted(playback.id));
            }
            let all = playback.prompt.samples();
            let end = (playback.pos + samples).min(all.len());
            g711::encode(codec, &all[playback.pos..end], &mut buf);
            if self.sink.is_some() {
                self.sent_pcm.extend_from_slice(&all[playback.pos..end]);
            }
            playback.pos = end;
            if end == all.len() {
                finished = Some(playback.id);
            }
        }
        // Comfort silence, also pads the last frame of a prompt.
        buf.resize(RTP_HEADER_LEN + samples, codec.silence_byte());
        self.enqueue(buf);
        if let Some(id) = finished {
            self.playback = None;
            self.events.push_back(MediaEvent::PlaybackDone(id));
        }
    }
}

/// The SRTP contexts for `params`, if it carries keys.
fn srtp_session(params: &MediaParams) -> Result<Option<SrtpSession>, ParamsError> {
    params
        .srtp
        .as_ref()
        .map(SrtpSession::new)
        .transpose()
        .map_err(|e| ParamsError::Srtp(e.to_string()))
}

#[cfg(test)]
mod tests;
