//! A call leg as the call shell sees it: the signalling side of one party,
//! whatever carries it. Inbound SIP implements it today (`sip::CallLeg`);
//! outbound campaign calls and browser calls over WebRTC are the next
//! kinds. The call core never sees a leg, only [`LegInput`]s.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::mpsc::UnboundedReceiver;

pub use super::core::{LegEnd, LegInput};

/// Why a leg operation failed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct LegError(pub String);

/// What a leg reports to the shell. Requests that need an answer carry
/// their responder; everything else is plain input for the core.
pub enum LegEvent {
    Input(LegInput),
    /// A new offer inside the call; answer it with the responder.
    Offer(Vec<u8>, Box<dyn OfferReply>),
    /// The peer asks us to call someone else.
    Referred(String, Box<dyn ReferReply>),
}

impl std::fmt::Debug for LegEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LegEvent::Input(i) => write!(f, "Input({i:?})"),
            LegEvent::Offer(b, _) => write!(f, "Offer({} bytes)", b.len()),
            LegEvent::Referred(t, _) => write!(f, "Referred({t})"),
        }
    }
}

/// Answers one in-call offer.
#[async_trait]
pub trait OfferReply: Send {
    async fn accept(self: Box<Self>, sdp: String);
    async fn reject(self: Box<Self>, code: u16);
}

/// Answers one incoming transfer request. `accept` returns once the
/// acceptance has left, so what the shell sends next follows it.
#[async_trait]
pub trait ReferReply: Send {
    async fn accept(self: Box<Self>);
    async fn reject(self: Box<Self>, code: u16);
}

/// One party's signalling.
pub trait Leg: Send {
    /// The leg's own call id (a followed REFER brings a new one).
    fn call_id(&self) -> &str;
    /// Early progress (180 Ringing).
    fn ring(&self) -> Result<(), LegError>;
    /// Answer with our session description.
    fn answer(&self, sdp: String) -> Result<(), LegError>;
    /// Refuse the call with a final status.
    fn reject(&mut self, code: u16) -> Result<(), LegError>;
    /// The leg's events, delivered by its own task so that waiting for one
    /// never loses another. Call once.
    fn events(&mut self) -> UnboundedReceiver<LegEvent>;
    /// Operations that take a round trip, usable from any task.
    fn control(&self) -> Arc<dyn LegControl>;
    /// Take over another leg's admission slot (the call moved here).
    fn take_slot_from(&mut self, other: &mut dyn Leg);
    /// Give up the admission slot (to move it to another leg).
    fn release_slot(&mut self) -> Option<crate::admission::CallSlot>;
}

/// The round-trip operations of a leg.
#[async_trait]
pub trait LegControl: Send + Sync {
    /// Send a transfer request; the status of its final response.
    async fn refer(&self, refer_to: String, user_to_user: Option<String>) -> Result<u16, LegError>;
    /// Report an incoming transfer's progress.
    async fn notify_refer(&self, code: u16, terminated: bool) -> Result<(), LegError>;
    /// End the leg and wait for the peer's answer.
    async fn hangup(&self) -> Result<(), LegError>;
}
