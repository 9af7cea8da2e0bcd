//! voxbridge media: everything between a UDP socket and 8 kHz PCM.
//!
//! RTP in and out with 20 ms pacing, G.711 μ-law/A-law, a jitter buffer,
//! RFC 4733 DTMF, WAV prompt playback and the per-call media session. No SIP
//! and no models live here; the engine hands this crate a negotiated codec and
//! a remote address and gets PCM, digits and timeouts back.
//!
//! The protocol logic is sans-IO ([`MediaCore`], [`JitterBuffer`],
//! [`DtmfReceiver`], [`PacingClock`]): time and packets are passed in, so
//! tests run hours of call time in microseconds. [`MediaSession`] is the thin
//! tokio shell that runs one core per call on its own socket.

pub mod clock;
pub mod codec;
pub mod direction;
pub mod dtmf;
pub mod echo;
pub mod g711;
pub mod jitter;
pub mod port_pool;
pub mod prompt;
pub mod prompt_files;
pub mod rtp;
pub mod session;
pub mod srtp;

/// Sample-rate conversion (the workspace's one resampler, on rubato):
/// `voxbridge_media::resample::to_8k` and friends.
pub use voxbridge_resample as resample;

pub use clock::PacingClock;
pub use codec::Codec;
pub use direction::Direction;
pub use dtmf::{DtmfError, DtmfReceiver, DtmfSender};
pub use echo::{EchoConfig, EchoDetector, EchoMatch};
pub use jitter::{JitterBuffer, JitterOutput};
pub use port_pool::{PortPool, PortPoolError};
pub use prompt::{Prompt, PromptError};
pub use prompt_files::PromptFiles;
pub use rtp::{RtpError, RtpHeader, RtpPacketView};
pub use session::{
    AudioSink, Latching, MediaCore, MediaEvent, MediaHandle, MediaParams, MediaSession, MediaStats,
    ParamsError, PlaybackId, StartError,
};
pub use srtp::{SrtpError, SrtpKey, SrtpParams, SrtpSession, SrtpSuite};
