//! What a media session reports to the engine, and the hook through which
//! received audio leaves it.

use std::sync::atomic::{AtomicU64, Ordering};

/// Identifies one `play` request, so a `PlaybackDone` that crossed a
/// `stop_playback` + `play` in the channel is not mistaken for the new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PlaybackId(pub u64);

impl PlaybackId {
    /// A process-wide unique id.
    pub fn next() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        PlaybackId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// Something the engine may want to act on.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MediaEvent {
    /// The caller pressed a key (RFC 4733), reported once per press.
    Dtmf(char),
    /// The first packet of a prompt was handed out for sending: what the
    /// caller starts to hear (turn latency ends here).
    PlaybackStarted(PlaybackId),
    /// A prompt was sent to its last sample. Not reported for prompts that
    /// were stopped or replaced.
    PlaybackDone(PlaybackId),
    /// No RTP for the inactivity timeout while we expected some. Reported
    /// once per silent period (again only after RTP resumed and stopped).
    Inactive,
}

/// Receives the caller's audio as decoded 8 kHz PCM, one frame per call, in
/// playout order (concealment frames included). Runs on the session's task
/// for every frame: keep it cheap and never block.
pub trait AudioSink: Send {
    /// One frame of received audio.
    fn on_audio(&mut self, pcm: &[i16]);

    /// What we sent during one send-clock frame: the prompt audio, or
    /// silence while nothing plays or a digit is sent. Called once per frame
    /// after that frame's `on_audio` calls, so a recorder can keep both
    /// directions aligned on the same clock.
    fn on_sent(&mut self, _pcm: &[i16]) {}
}

impl<F: FnMut(&[i16]) + Send> AudioSink for F {
    fn on_audio(&mut self, pcm: &[i16]) {
        self(pcm)
    }
}

/// Counters for one session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MediaStats {
    /// Valid RTP packets accepted from the peer.
    pub packets_in: u64,
    /// RTP packets handed out for sending.
    pub packets_out: u64,
    /// Audio packets that arrived after their playout time.
    pub late: u64,
    /// Audio frames missing at playout time.
    pub lost: u64,
    /// Audio packets received twice.
    pub duplicate: u64,
    /// Datagrams that were not valid RTP (or bad telephone-event payloads).
    pub bad_packets: u64,
    /// RTP from a foreign source (not the signalled address, not the
    /// NAT'd source latched onto), dropped undecoded.
    pub ignored_source: u64,
    /// RTP with a payload type that was not negotiated.
    pub unknown_payload: u64,
    /// DTMF digits received.
    pub dtmf_in: u64,
    /// DTMF digits sent.
    pub dtmf_out: u64,
    /// Frames not sent because the session stalled (see `PacingClock`).
    pub frames_skipped: u64,
    /// Frames handed out for sending one packet interval or more after
    /// they were due: the caller's jitter buffer may already have played
    /// a gap. On-time share = (packets_out − late_out) / (packets_out +
    /// frames_skipped).
    pub late_out: u64,
    /// Socket send errors (shell only).
    pub send_errors: u64,
    /// SRTP packets dropped because their authentication tag did not
    /// match (forged, corrupted, other key, or plain RTP on an SRTP call).
    pub srtp_auth_failed: u64,
    /// SRTP packets dropped as replays (an index already seen or too old).
    pub srtp_replayed: u64,
    /// Packets of ours not sent because SRTP could not protect them.
    pub srtp_send_failed: u64,
}
