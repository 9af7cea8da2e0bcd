//! One SIP call leg: the INVITE dialog behind the call shell's `Leg`.
//!
//! Its own task turns the stack's dialog states into [`LegEvent`]s and
//! answers the in-dialog requests that need no call-level decision
//! (OPTIONS, INFO, methods we do not handle), so the call deals only with
//! what matters: the ACK, re-INVITE offers, transfers and the end.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use tracing::Instrument;

use rsipstack::dialog::dialog::{
    DialogState, DialogStateReceiver, TerminatedReason, TransactionHandle,
};
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::{Header, HeadersExt, Method, StatusCode};
use tracing::{debug, warn};

use super::sent::SentWatch;
use super::SipError;
use crate::admission::CallSlot;
use crate::call::leg::{
    Leg, LegControl, LegEnd, LegError, LegEvent, LegInput, OfferReply, ReferReply,
};

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

/// One SIP leg (inbound, or one we placed for a transfer): the INVITE
/// dialog behind the call shell's [`Leg`].
pub struct CallLeg {
    /// Holds the call's place under `calls.max_calls` until the leg is gone
    /// (moved to the new leg when the call is transferred by the peer).
    slot: Option<CallSlot>,
    dialog: InviteDialog,
    states: Option<DialogStateReceiver>,
    layer: Arc<DialogLayer>,
    info: CallInfo,
    /// Set once the dialog ended or we sent BYE, by whichever task saw it.
    ended: Arc<AtomicBool>,
    sent: Arc<SentWatch>,
}

impl CallLeg {
    pub(super) fn new(
        slot: Option<CallSlot>,
        dialog: InviteDialog,
        states: DialogStateReceiver,
        layer: Arc<DialogLayer>,
        info: CallInfo,
        sent: Arc<SentWatch>,
    ) -> Self {
        CallLeg {
            slot,
            dialog,
            states: Some(states),
            layer,
            info,
            ended: Arc::new(AtomicBool::new(false)),
            sent,
        }
    }

    pub fn info(&self) -> &CallInfo {
        &self.info
    }

    /// Refuse the INVITE with a final status code (486, 488, 503...).
    pub fn reject_with(&mut self, code: u16) -> Result<(), SipError> {
        self.ended.store(true, Ordering::Relaxed);
        self.dialog
            .reject(Some(StatusCode::from(code)), None)
            .map_err(SipError::from)
    }

    /// Send BYE and wait for its transaction to finish.
    pub async fn hangup(&mut self) -> Result<(), SipError> {
        self.ended.store(true, Ordering::Relaxed);
        self.dialog.bye().await.map_err(SipError::from)
    }
}

impl Leg for CallLeg {
    fn call_id(&self) -> &str {
        &self.info.call_id
    }

    fn ring(&self) -> Result<(), LegError> {
        self.dialog
            .ringing(None, None)
            .map_err(|e| LegError(e.to_string()))
    }

    fn answer(&self, sdp: String) -> Result<(), LegError> {
        let headers = vec![Header::ContentType("application/sdp".into())];
        self.dialog
            .accept(Some(headers), Some(sdp.into_bytes()))
            .map_err(|e| LegError(e.to_string()))
    }

    fn reject(&mut self, code: u16) -> Result<(), LegError> {
        self.reject_with(code).map_err(|e| LegError(e.to_string()))
    }

    fn events(&mut self) -> UnboundedReceiver<LegEvent> {
        let (tx, rx) = mpsc::unbounded_channel();
        if let Some(states) = self.states.take() {
            let pump = Pump {
                states,
                events: tx,
                ended: self.ended.clone(),
                sent: self.sent.clone(),
                call_id: self.info.call_id.clone(),
            };
            tokio::spawn(pump.run().in_current_span());
        }
        rx
    }

    fn control(&self) -> Arc<dyn LegControl> {
        Arc::new(Control {
            dialog: self.dialog.clone(),
            ended: self.ended.clone(),
        })
    }

    fn take_slot_from(&mut self, other: &mut dyn Leg) {
        if let Some(slot) = other.release_slot() {
            self.slot = Some(slot);
        }
    }

    fn release_slot(&mut self) -> Option<CallSlot> {
        self.slot.take()
    }
}

/// The round trips of a SIP leg, from any task.
struct Control {
    dialog: InviteDialog,
    ended: Arc<AtomicBool>,
}

#[async_trait]
impl LegControl for Control {
    async fn refer(&self, refer_to: String, user_to_user: Option<String>) -> Result<u16, LegError> {
        let mut headers = Vec::new();
        if let Some(uui) = user_to_user {
            headers.push(Header::UserToUser(uui.into()));
        }
        let response = self
            .dialog
            .refer(rsipstack::sip::ReferTo::from(refer_to), Some(headers), None)
            .await
            .map_err(|e| LegError(e.to_string()))?;
        Ok(response.map(|r| r.status_code.code()).unwrap_or(408))
    }

    /// RFC 3515 NOTIFY with a sipfrag.
    async fn notify_refer(&self, code: u16, terminated: bool) -> Result<(), LegError> {
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
            .map_err(|e| LegError(e.to_string()))
    }

    async fn hangup(&self) -> Result<(), LegError> {
        self.ended.store(true, Ordering::Relaxed);
        self.dialog.bye().await.map_err(|e| LegError(e.to_string()))
    }
}

struct OfferResponder {
    handle: TransactionHandle,
}

#[async_trait]
impl OfferReply for OfferResponder {
    async fn accept(self: Box<Self>, sdp: String) {
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

    async fn reject(self: Box<Self>, code: u16) {
        let _ = self.handle.reply(StatusCode::from(code)).await;
    }
}

struct ReferResponder {
    handle: TransactionHandle,
    sent: Arc<SentWatch>,
    call_id: String,
    cseq: u32,
}

#[async_trait]
impl ReferReply for ReferResponder {
    async fn accept(self: Box<Self>) {
        let out = self.sent.expect(&self.call_id, self.cseq);
        if self.handle.reply(StatusCode::Accepted).await.is_ok() {
            self.sent.wait(&self.call_id, self.cseq, out).await;
        }
    }

    async fn reject(self: Box<Self>, code: u16) {
        let _ = self.handle.reply(StatusCode::from(code)).await;
    }
}

/// The leg's own task: turns dialog states into [`LegEvent`]s and answers
/// what needs no call-level decision (OPTIONS, INFO, methods we do not
/// handle).
struct Pump {
    states: DialogStateReceiver,
    events: UnboundedSender<LegEvent>,
    ended: Arc<AtomicBool>,
    sent: Arc<SentWatch>,
    call_id: String,
}

impl Pump {
    async fn run(mut self) {
        while let Some(state) = self.states.recv().await {
            let Some(event) = self.event(state).await else {
                continue;
            };
            let last = matches!(event, LegEvent::Input(LegInput::Ended(_)));
            if self.events.send(event).is_err() || last {
                return;
            }
        }
    }

    /// Reply `status` to `req` and return once the reply has left.
    async fn reply_in_order(
        &self,
        req: &rsipstack::sip::Request,
        handle: TransactionHandle,
        status: StatusCode,
    ) {
        let cseq = req.cseq_header().ok().and_then(|c| c.seq().ok());
        let call_id = req
            .call_id_header()
            .map(|h| h.value().to_string())
            .unwrap_or_else(|_| self.call_id.clone());
        let out = cseq.map(|n| (n, self.sent.expect(&call_id, n)));
        if handle.reply(status).await.is_ok() {
            if let Some((n, out)) = out {
                self.sent.wait(&call_id, n, out).await;
            }
        }
    }

    async fn event(&self, state: DialogState) -> Option<LegEvent> {
        match state {
            DialogState::Confirmed(..) => Some(LegEvent::Input(LegInput::Confirmed)),
            DialogState::Updated(_, req, handle) => {
                if matches!(req.method, Method::Invite | Method::Update) {
                    return Some(LegEvent::Offer(
                        req.body.clone(),
                        Box::new(OfferResponder { handle }),
                    ));
                }
                let _ = handle.reply(StatusCode::OK).await;
                None
            }
            DialogState::Info(_, req, handle) => {
                let content_type = req.header_value("Content-Type").unwrap_or_default();
                let key = super::info_dtmf::parse(&content_type, &req.body);
                // 200 either way: an INFO package we do not use is not an error.
                let _ = handle.reply(StatusCode::OK).await;
                key.map(|k| LegEvent::Input(LegInput::Dtmf(k)))
            }
            DialogState::Options(_, _, handle) => {
                let _ = handle.reply(StatusCode::OK).await;
                None
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
                // Our 200 leaves before the call hears of the NOTIFY, so a
                // BYE it sends next cannot overtake it.
                self.reply_in_order(&req, handle, StatusCode::OK).await;
                match (event.starts_with("refer"), code) {
                    (true, Some(code)) => Some(LegEvent::Input(LegInput::ReferProgress {
                        code,
                        terminated: state.starts_with("terminated"),
                    })),
                    _ => None,
                }
            }
            DialogState::Refer(_, req, handle) => {
                match req
                    .header_value("Refer-To")
                    .or_else(|| req.header_value("r"))
                {
                    Some(target) => {
                        let call_id = req
                            .call_id_header()
                            .map(|h| h.value().to_string())
                            .unwrap_or_else(|_| self.call_id.clone());
                        let cseq = req
                            .cseq_header()
                            .ok()
                            .and_then(|c| c.seq().ok())
                            .unwrap_or_default();
                        Some(LegEvent::Referred(
                            target,
                            Box::new(ReferResponder {
                                handle,
                                sent: self.sent.clone(),
                                call_id,
                                cseq,
                            }),
                        ))
                    }
                    None => {
                        let _ = handle.reply(StatusCode::BadRequest).await;
                        None
                    }
                }
            }
            DialogState::Message(_, _, handle) | DialogState::Publish(_, _, handle) => {
                let _ = handle.reply(StatusCode::NotImplemented).await;
                None
            }
            DialogState::Terminated(_, reason) => {
                self.ended.store(true, Ordering::Relaxed);
                Some(LegEvent::Input(LegInput::Ended(match reason {
                    TerminatedReason::UacBye => LegEnd::RemoteBye,
                    TerminatedReason::UacCancel => LegEnd::Cancelled,
                    TerminatedReason::UasBye => LegEnd::LocalBye,
                    TerminatedReason::UasDecline | TerminatedReason::UasBusy => LegEnd::Rejected,
                    TerminatedReason::Timeout => LegEnd::Timeout,
                    other => {
                        warn!(reason = ?other, "dialog ended");
                        LegEnd::Other
                    }
                })))
            }
            DialogState::Calling(_)
            | DialogState::Trying(_)
            | DialogState::Early(..)
            | DialogState::WaitAck(..) => None,
        }
    }
}

impl Drop for CallLeg {
    fn drop(&mut self) {
        let id = self.dialog.id();
        // A call task that fails half-way (or panics) must not leave a
        // dialog the peer still believes in, nor an entry in the dialog table.
        if !self.ended.load(Ordering::Relaxed) {
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
