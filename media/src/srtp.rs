//! SRTP (RFC 3711) for one call: protect what we send, unprotect what we
//! receive, with the keys SDES (RFC 4568) put in the SDP.
//!
//! The cryptography is webrtc-rs's `rtc-srtp` (pure Rust, sans-IO, ring
//! underneath), never ours: this module only holds the two contexts (one
//! per direction, as RFC 3711 keys them), turns the library's errors into
//! the few outcomes the session counts, and keeps the keys out of logs.

use std::fmt;

use rtc_shared::error::Error as LibError;
use rtc_srtp::context::Context;
use rtc_srtp::option::srtp_replay_protection;
use rtc_srtp::protection_profile::ProtectionProfile;
use thiserror::Error;

/// Master key (16 bytes) plus master salt (14 bytes) of the AES-128 suites.
pub const KEY_LEN: usize = 16;
/// Master salt length of the AES-128 suites.
pub const SALT_LEN: usize = 14;
/// What an SDES `inline:` key decodes to: key then salt.
pub const KEY_SALT_LEN: usize = KEY_LEN + SALT_LEN;

/// Packets behind the newest one still accepted (RFC 3711 §3.3.2 asks for
/// at least 64). 128 covers a second of reordering at 20 ms ptime without
/// letting a replay through.
const REPLAY_WINDOW: usize = 128;

/// The SDES crypto suites we speak (RFC 4568 §6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SrtpSuite {
    /// AES-128 counter mode, 80-bit HMAC-SHA1 tag: what every SDES peer offers first.
    AesCm128HmacSha1_80,
    /// The same with a 32-bit tag (6 bytes less per packet).
    AesCm128HmacSha1_32,
}

impl SrtpSuite {
    /// Both, in the order we prefer them.
    pub const ALL: [SrtpSuite; 2] = [
        SrtpSuite::AesCm128HmacSha1_80,
        SrtpSuite::AesCm128HmacSha1_32,
    ];

    /// The suite's name in `a=crypto`.
    pub fn sdp_name(self) -> &'static str {
        match self {
            SrtpSuite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            SrtpSuite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
        }
    }

    /// The suite an `a=crypto` name stands for, if we speak it.
    pub fn from_sdp_name(name: &str) -> Option<SrtpSuite> {
        SrtpSuite::ALL
            .into_iter()
            .find(|s| s.sdp_name().eq_ignore_ascii_case(name))
    }

    /// Bytes the authentication tag adds to each packet.
    pub fn tag_len(self) -> usize {
        self.profile().rtp_auth_tag_len()
    }

    fn profile(self) -> ProtectionProfile {
        match self {
            SrtpSuite::AesCm128HmacSha1_80 => ProtectionProfile::Aes128CmHmacSha1_80,
            SrtpSuite::AesCm128HmacSha1_32 => ProtectionProfile::Aes128CmHmacSha1_32,
        }
    }
}

/// A master key and salt. Secret: its `Debug` prints no byte of it.
#[derive(Clone, PartialEq, Eq)]
pub struct SrtpKey([u8; KEY_SALT_LEN]);

impl SrtpKey {
    pub const fn from_bytes(bytes: [u8; KEY_SALT_LEN]) -> Self {
        SrtpKey(bytes)
    }

    /// A fresh key from the operating system's CSPRNG (through the SRTP
    /// library's crypto provider, ring's `SystemRandom`).
    pub fn random() -> Result<Self, SrtpError> {
        let provider =
            rtc_srtp::crypto::default_provider().map_err(|e| SrtpError::Random(e.to_string()))?;
        let mut bytes = [0u8; KEY_SALT_LEN];
        provider
            .random()
            .fill(&mut bytes)
            .map_err(|e| SrtpError::Random(e.to_string()))?;
        Ok(SrtpKey(bytes))
    }

    /// Key then salt, as SDES encodes them.
    pub fn as_bytes(&self) -> &[u8; KEY_SALT_LEN] {
        &self.0
    }
}

impl fmt::Debug for SrtpKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SrtpKey(<redacted>)")
    }
}

/// What SDES agreed for a call: one suite, our key for what we send, the
/// peer's for what we receive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrtpParams {
    pub suite: SrtpSuite,
    pub send: SrtpKey,
    pub receive: SrtpKey,
}

/// Why a packet could not be protected or unprotected, or a context made.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SrtpError {
    /// The tag did not match: forged, corrupted, or sent with another key.
    #[error("SRTP authentication failed")]
    Auth,
    /// A packet index already seen (or too old for the replay window).
    #[error("SRTP replayed packet")]
    Replay,
    /// Too short for an RTP header and the tag, or not RTP at all.
    #[error("SRTP packet malformed: {0}")]
    Malformed(String),
    /// The library refused a key or a packet to protect.
    #[error("SRTP context: {0}")]
    Context(String),
    /// No random bytes for a key.
    #[error("no random bytes for an SRTP key: {0}")]
    Random(String),
}

fn classify(error: LibError) -> SrtpError {
    match error {
        LibError::ErrFailedToVerifyAuthTag | LibError::RtpFailedToVerifyAuthTag => SrtpError::Auth,
        LibError::SrtpSsrcDuplicated(..) | LibError::ErrDuplicated => SrtpError::Replay,
        LibError::ErrTooShortRtp
        | LibError::ErrShortPacket
        | LibError::ErrBufferShort
        | LibError::ErrHeaderSizeInsufficient
        | LibError::ErrHeaderSizeInsufficientForExtension => {
            SrtpError::Malformed(error.to_string())
        }
        other => SrtpError::Context(other.to_string()),
    }
}

/// The two directions of one call's SRTP.
pub struct SrtpSession {
    suite: SrtpSuite,
    params: SrtpParams,
    outbound: Context,
    inbound: Context,
}

impl fmt::Debug for SrtpSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SrtpSession")
            .field("suite", &self.suite)
            .finish_non_exhaustive()
    }
}

impl SrtpSession {
    pub fn new(params: &SrtpParams) -> Result<Self, SrtpError> {
        let provider =
            rtc_srtp::crypto::default_provider().map_err(|e| SrtpError::Context(e.to_string()))?;
        let context = |key: &SrtpKey, replay: bool| {
            let (master, salt) = key.0.split_at(KEY_LEN);
            Context::new(
                master,
                salt,
                params.suite.profile(),
                replay.then(|| srtp_replay_protection(REPLAY_WINDOW)),
                None,
                provider.crypto(),
            )
            .map_err(|e| SrtpError::Context(e.to_string()))
        };
        Ok(SrtpSession {
            suite: params.suite,
            outbound: context(&params.send, false)?,
            inbound: context(&params.receive, true)?,
            params: params.clone(),
        })
    }

    /// The parameters this session was keyed with.
    pub fn params(&self) -> &SrtpParams {
        &self.params
    }

    /// An RTP packet of ours, encrypted and tagged, into `out` (cleared first).
    pub fn protect(&mut self, rtp: &[u8], out: &mut Vec<u8>) -> Result<(), SrtpError> {
        let protected = self.outbound.encrypt_rtp(rtp).map_err(classify)?;
        out.clear();
        out.extend_from_slice(&protected);
        Ok(())
    }

    /// A received SRTP packet, checked (tag, replay) and decrypted into `out`
    /// (cleared first). A packet that fails leaves the state untouched.
    pub fn unprotect(&mut self, srtp: &[u8], out: &mut Vec<u8>) -> Result<(), SrtpError> {
        let plain = self.inbound.decrypt_rtp(srtp).map_err(classify)?;
        out.clear();
        out.extend_from_slice(&plain);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::RtpHeader;

    fn key(byte: u8) -> SrtpKey {
        SrtpKey::from_bytes([byte; KEY_SALT_LEN])
    }

    fn pair(suite: SrtpSuite) -> (SrtpSession, SrtpSession) {
        let a = SrtpParams {
            suite,
            send: key(1),
            receive: key(2),
        };
        let b = SrtpParams {
            suite,
            send: key(2),
            receive: key(1),
        };
        (SrtpSession::new(&a).unwrap(), SrtpSession::new(&b).unwrap())
    }

    fn packet(seq: u16, payload: &[u8]) -> Vec<u8> {
        let mut buf = Vec::new();
        RtpHeader {
            payload_type: 0,
            marker: false,
            seq,
            timestamp: u32::from(seq) * 160,
            ssrc: 0x1234_5678,
        }
        .write_packet(payload, &mut buf);
        buf
    }

    #[test]
    fn round_trip_both_suites_and_the_payload_is_not_on_the_wire() {
        for suite in SrtpSuite::ALL {
            let (mut a, mut b) = pair(suite);
            let payload = [0x55u8; 160];
            let plain = packet(7, &payload);
            let mut wire = Vec::new();
            a.protect(&plain, &mut wire).unwrap();
            assert_eq!(wire.len(), plain.len() + suite.tag_len());
            assert_eq!(wire[..12], plain[..12], "the header stays readable");
            assert!(!wire.windows(16).any(|w| w == &payload[..16]));
            let mut back = Vec::new();
            b.unprotect(&wire, &mut back).unwrap();
            assert_eq!(back, plain);
        }
        assert_eq!(SrtpSuite::AesCm128HmacSha1_80.tag_len(), 10);
        assert_eq!(SrtpSuite::AesCm128HmacSha1_32.tag_len(), 4);
    }

    #[test]
    fn tampering_replay_and_wrong_keys_are_refused() {
        let (mut a, mut b) = pair(SrtpSuite::AesCm128HmacSha1_80);
        let mut wire = Vec::new();
        let mut out = Vec::new();
        a.protect(&packet(1, &[1; 160]), &mut wire).unwrap();
        let mut forged = wire.clone();
        forged[20] ^= 1;
        assert_eq!(b.unprotect(&forged, &mut out), Err(SrtpError::Auth));
        // The forged copy did not use up the index: the real one passes.
        b.unprotect(&wire, &mut out).unwrap();
        assert_eq!(b.unprotect(&wire, &mut out), Err(SrtpError::Replay));
        // Plain RTP (no tag made with our key) fails authentication.
        assert_eq!(
            b.unprotect(&packet(2, &[9; 160]), &mut out),
            Err(SrtpError::Auth)
        );
        assert!(matches!(
            b.unprotect(&[0x80, 0, 0], &mut out),
            Err(SrtpError::Malformed(_))
        ));
        // Out of order within the window is fine.
        let (mut c, mut d) = pair(SrtpSuite::AesCm128HmacSha1_32);
        let mut p = Vec::new();
        let mut q = Vec::new();
        c.protect(&packet(10, &[3; 80]), &mut p).unwrap();
        c.protect(&packet(11, &[4; 80]), &mut q).unwrap();
        d.unprotect(&q, &mut out).unwrap();
        d.unprotect(&p, &mut out).unwrap();
    }

    #[test]
    fn keys_are_random_and_never_printed() {
        let (k1, k2) = (SrtpKey::random().unwrap(), SrtpKey::random().unwrap());
        assert_ne!(k1, k2);
        assert_eq!(format!("{k1:?}"), "SrtpKey(<redacted>)");
        assert_eq!(
            SrtpSuite::from_sdp_name("aes_cm_128_hmac_sha1_32"),
            Some(SrtpSuite::AesCm128HmacSha1_32)
        );
        assert_eq!(SrtpSuite::from_sdp_name("AES_256_CM_HMAC_SHA1_80"), None);
    }

    proptest::proptest! {
        #[test]
        fn random_datagrams_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let (_, mut b) = pair(SrtpSuite::AesCm128HmacSha1_80);
            let mut out = Vec::new();
            let _ = b.unprotect(&bytes, &mut out);
        }
    }
}
