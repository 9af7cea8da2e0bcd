//! One inbound call leg: the INVITE dialog as the call task sees it.
//!
//! It turns the stack's dialog states into a few [`LegEvent`]s and answers
//! the in-dialog requests that need no call-level decision (OPTIONS, INFO,
//! methods we do not handle) so the call task only deals with what matters:
//! the ACK, re-INVITE offers and the end of the dialog.

use std::net::SocketAddr;
use std::sync::Arc;

use rsipstack::dialog::dialog::{
    DialogState, DialogStateReceiver, TerminatedReason, TransactionHandle,
};
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::{Header, HeadersExt, Method, StatusCode};
use tracing::{debug, warn};

use super::SipError;
use crate::admission::CallSlot;

/// Facts about the INVITE that started a call, as plain strings.
#[derive(Debug, Clone)]
pub struct CallInfo {
    pub call_id: String,
    /// From URI (`sip:1000@pbx`), unmasked: mask it before logging.
    pub from: String,
    /// To URI.
    pub to: String,
    /// Where the INVITE came from.
    pub source: Option<SocketAddr>,
    /// The INVITE body (an SDP offer, or empty for a late offer).
    pub body: Vec<u8>,
    /// When the INVITE arrived (for the call-setup time).
    pub received: std::time::Instant,
    /// When the INVITE arrived, wall clock (for the call record).
    pub received_at: std::time::SystemTime,
}

/// What happened on the leg.
#[derive(Debug)]
pub enum LegEvent {
    /// The caller ACKed our 200 OK.
    Confirmed,
    /// A re-INVITE or UPDATE with this body: answer it with [`OfferResponder`].
    Offer(Vec<u8>, OfferResponder),
    /// A key pressed, sent as SIP INFO (already answered with 200).
    Dtmf(char),
    /// The peer asks us to call someone else (incoming REFER); answer it
    /// with the responder, then report progress with `notify_refer`.
    Referred(String, ReferResponder),
    /// A NOTIFY about our REFER (already answered with 200): the sipfrag
    /// status and whether the subscription ended.
    ReferProgress { code: u16, terminated: bool },
    /// The dialog ended; the reason says who ended it.
    Terminated(LegEnd),
}

/// Why the dialog ended, from the stack's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegEnd {
    /// The caller sent BYE.
    RemoteBye,
    /// The caller sent CANCEL before we answered.
    Cancelled,
    /// We sent BYE.
    LocalBye,
    /// We rejected the INVITE.
    Rejected,
    /// No ACK or a transaction timed out.
    Timeout,
    /// Anything else the stack reports.
    Other,
}

/// Answers one in-dialog offer (re-INVITE/UPDATE).
#[derive(Debug)]
pub struct OfferResponder {
    handle: TransactionHandle,
}

impl OfferResponder {
    /// 200 OK with our SDP answer.
    pub async fn accept(self, sdp: String) {
        let headers = vec![Header::ContentType("application/sdp".into())];
        if self
            .handle
            .respond(StatusCode::OK, Some(headers), Some(sdp.into_bytes()))
            .await
            .is_err()
        {
            debug!("re-INVITE transaction ended before our answer");
        }
    }

    /// Refuse the offer (488 for an unusable SDP); the session stays as it was.
    pub async fn reject(self, code: u16) {
        let _ = self.handle.reply(StatusCode::from(code)).await;
    }
}

/// Answers one incoming REFER.
#[derive(Debug)]
pub struct ReferResponder {
    handle: TransactionHandle,
}

impl ReferResponder {
    /// 202 Accepted: we will try, and report by NOTIFY.
    pub async fn accept(self) {
        let _ = self.handle.reply(StatusCode::Accepted).await;
    }

    /// Refuse the REFER (603 Decline when transfers are not honoured).
    pub async fn reject(self, code: u16) {
        let _ = self.handle.reply(StatusCode::from(code)).await;
    }
}

/// The leg of one call (inbound, or one we placed for a transfer).
pub struct CallLeg {
    /// Holds the call's place under `calls.max_calls` until the leg is gone
    /// (moved to the new leg when the call is transferred by the peer).
    slot: Option<CallSlot>,
    dialog: InviteDialog,
    states: DialogStateReceiver,
    layer: Arc<DialogLayer>,
    info: CallInfo,
    ended: bool,
}

impl CallLeg {
    pub(super) fn new(
        slot: CallSlot,
        dialog: InviteDialog,
        states: DialogStateReceiver,
        layer: Arc<DialogLayer>,
        info: CallInfo,
    ) -> Self {
        CallLeg {
            slot: Some(slot),
            dialog,
            states,
            layer,
            info,
            ended: false,
        }
    }

    pub fn info(&self) -> &CallInfo {
        &self.info
    }

    /// A leg for a call we placed (already answered).
    pub(super) fn outbound(
        dialog: InviteDialog,
        states: DialogStateReceiver,
        layer: Arc<DialogLayer>,
        info: CallInfo,
    ) -> Self {
        CallLeg {
            slot: None,
            dialog,
            states,
            layer,
            info,
            ended: false,
        }
    }

    /// Move the call's admission slot from `other` to this leg.
    pub fn take_slot_from(&mut self, other: &mut CallLeg) {
        if let Some(slot) = other.slot.take() {
            self.slot = Some(slot);
        }
    }

    /// Report progress of an incoming REFER (RFC 3515 NOTIFY with a sipfrag).
    pub async fn notify_refer(&self, code: u16, terminated: bool) -> Result<(), SipError> {
        let reason = StatusCode::from(code).to_string();
        let state = if terminated {
            "terminated;reason=noresource"
        } else {
            "active;expires=60"
        };
        let headers = vec![
            Header::Event("refer".into()),
            Header::SubscriptionState(state.into()),
            Header::ContentType("message/sipfrag".into()),
        ];
        let body = format!("SIP/2.0 {code} {reason}\r\n").into_bytes();
        self.dialog
            .notify(Some(headers), Some(body))
            .await
            .map(|_| ())
            .map_err(SipError::from)
    }

    /// Send 180 Ringing.
    pub fn ringing(&self) -> Result<(), SipError> {
        self.dialog.ringing(None, None).map_err(SipError::from)
    }

    /// Send 200 OK with our SDP answer.
    pub fn answer(&self, sdp: String) -> Result<(), SipError> {
        let headers = vec![Header::ContentType("application/sdp".into())];
        self.dialog
            .accept(Some(headers), Some(sdp.into_bytes()))
            .map_err(SipError::from)
    }

    /// Refuse the INVITE with a final status code (486, 488, 503...).
    pub fn reject(&mut self, code: u16, retry_after: Option<u32>) -> Result<(), SipError> {
        let _ = retry_after; // Retry-After is added once max_calls lands.
        self.ended = true;
        self.dialog
            .reject(Some(StatusCode::from(code)), None)
            .map_err(SipError::from)
    }

    /// Send REFER (blind transfer) and return the status of its final
    /// response (408 when none came).
    pub async fn refer(&self, refer_to: &str, user_to_user: Option<&str>) -> Result<u16, SipError> {
        let mut headers = Vec::new();
        if let Some(uui) = user_to_user {
            headers.push(Header::UserToUser(uui.into()));
        }
        let response = self
            .dialog
            .refer(
                rsipstack::sip::ReferTo::from(refer_to.to_string()),
                Some(headers),
                None,
            )
            .await
            .map_err(SipError::from)?;
        Ok(response.map(|r| r.status_code.code()).unwrap_or(408))
    }

    /// Send BYE and wait for its transaction to finish.
    pub async fn hangup(&mut self) -> Result<(), SipError> {
        self.ended = true;
        self.dialog.bye().await.map_err(SipError::from)
    }

    /// The next event that needs the call task; `None` when the stack is gone.
    pub async fn next_event(&mut self) -> Option<LegEvent> {
        loop {
            let state = self.states.recv().await?;
            match state {
                DialogState::Confirmed(..) => return Some(LegEvent::Confirmed),
                DialogState::Updated(_, req, handle) => {
                    if matches!(req.method, Method::Invite | Method::Update) {
                        return Some(LegEvent::Offer(req.body.clone(), OfferResponder { handle }));
                    }
                    let _ = handle.reply(StatusCode::OK).await;
                }
                DialogState::Info(_, req, handle) => {
                    let content_type = req.header_value("Content-Type").unwrap_or_default();
                    let key = super::info_dtmf::parse(&content_type, &req.body);
                    // 200 either way: an INFO package we do not use is not an error.
                    let _ = handle.reply(StatusCode::OK).await;
                    if let Some(key) = key {
                        return Some(LegEvent::Dtmf(key));
                    }
                }
                DialogState::Options(_, _, handle) => {
                    let _ = handle.reply(StatusCode::OK).await;
                }
                DialogState::Notify(_, req, handle) => {
                    let event = req
                        .header_value("Event")
                        .unwrap_or_default()
                        .to_ascii_lowercase();
                    let state = req
                        .header_value("Subscription-State")
                        .unwrap_or_default()
                        .to_ascii_lowercase();
                    let code = crate::transfer::sipfrag_status(&req.body);
                    let _ = handle.reply(StatusCode::OK).await;
                    if let (true, Some(code)) = (event.starts_with("refer"), code) {
                        return Some(LegEvent::ReferProgress {
                            code,
                            terminated: state.starts_with("terminated"),
                        });
                    }
                }
                DialogState::Refer(_, req, handle) => {
                    match req
                        .header_value("Refer-To")
                        .or_else(|| req.header_value("r"))
                    {
                        Some(target) => {
                            return Some(LegEvent::Referred(target, ReferResponder { handle }));
                        }
                        None => {
                            let _ = handle.reply(StatusCode::BadRequest).await;
                        }
                    }
                }
                DialogState::Message(_, _, handle) | DialogState::Publish(_, _, handle) => {
                    let _ = handle.reply(StatusCode::NotImplemented).await;
                }
                DialogState::Terminated(_, reason) => {
                    self.ended = true;
                    return Some(LegEvent::Terminated(match reason {
                        TerminatedReason::UacBye => LegEnd::RemoteBye,
                        TerminatedReason::UacCancel => LegEnd::Cancelled,
                        TerminatedReason::UasBye => LegEnd::LocalBye,
                        TerminatedReason::UasDecline | TerminatedReason::UasBusy => {
                            LegEnd::Rejected
                        }
                        TerminatedReason::Timeout => LegEnd::Timeout,
                        other => {
                            warn!(call_id = %self.info.call_id, reason = ?other, "dialog ended");
                            LegEnd::Other
                        }
                    }));
                }
                DialogState::Calling(_)
                | DialogState::Trying(_)
                | DialogState::Early(..)
                | DialogState::WaitAck(..) => {}
            }
        }
    }
}

impl Drop for CallLeg {
    fn drop(&mut self) {
        let id = self.dialog.id();
        // A call task that fails half-way must not leave a dialog the peer
        // still believes in, nor an entry in the dialog table.
        if !self.ended {
            match self.dialog.state() {
                DialogState::Confirmed(..) | DialogState::WaitAck(..) => {
                    let dialog = self.dialog.clone();
                    let layer = self.layer.clone();
                    tokio::spawn(async move {
                        let _ = dialog.bye().await;
                        layer.remove_dialog(&id);
                    });
                    return;
                }
                DialogState::Terminated(..) => {}
                _ => {
                    let _ = self
                        .dialog
                        .reject(Some(StatusCode::ServerInternalError), None);
                }
            }
        }
        self.layer.remove_dialog(&id);
    }
}

/// Pull the plain facts out of an INVITE.
pub(super) fn call_info(req: &rsipstack::sip::Request, source: Option<SocketAddr>) -> CallInfo {
    let call_id = req
        .call_id_header()
        .map(|h| h.value().to_string())
        .unwrap_or_default();
    let from = req
        .from_header()
        .ok()
        .and_then(|h| h.uri().ok())
        .map(|u| u.to_string())
        .unwrap_or_default();
    let to = req
        .to_header()
        .ok()
        .and_then(|h| h.uri().ok())
        .map(|u| u.to_string())
        .unwrap_or_default();
    CallInfo {
        call_id,
        from,
        to,
        source,
        body: req.body.clone(),
        received: std::time::Instant::now(),
        received_at: std::time::SystemTime::now(),
    }
}
