//! Browser calls over WebRTC (issue 15, "Calling the bot from the browser").
//!
//! Status: only the sans-IO checks exist so far. The `webrtc` crate is not
//! added yet, there is no leg, no console route and no button.
//! TODO(webrtc): a `webrtc` leg owning the RTCPeerConnection that implements
//! `call::leg::Leg`, a loopback UDP relay into the existing media path, the
//! console's offer/hang-up routes and the "Call the bot" button.

pub mod offer;
pub mod transfer;
