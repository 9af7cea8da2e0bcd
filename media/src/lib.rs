//! voxbridge media: everything between a UDP socket and 8 kHz PCM.
//!
//! RTP in and out with 20 ms pacing, G.711 μ-law/A-law, a jitter buffer,
//! RFC 4733 DTMF, WAV prompt playback and the per-call media session. No SIP
//! and no models live here; the engine hands this crate a negotiated codec and
//! a remote address and gets PCM, digits and timeouts back.

pub mod codec;
pub mod direction;

pub use codec::Codec;
pub use direction::Direction;
