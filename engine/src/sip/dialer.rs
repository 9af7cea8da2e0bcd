//! Placing calls: the INVITE voxbridge sends when a peer REFERs it elsewhere.

use std::sync::Arc;

use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::dialog::invitation::InviteOption;
use rsipstack::sip::StatusCodeKind;

use super::leg::{CallInfo, CallLeg};
use super::SipError;

/// Places outbound calls from our SIP address.
#[derive(Clone)]
pub struct Dialer {
    pub(super) layer: Arc<DialogLayer>,
    pub(super) contact: rsipstack::sip::Uri,
    pub(super) sent: Arc<super::SentWatch>,
}

/// Why a call we placed did not connect.
#[derive(Debug)]
pub enum DialError {
    /// The target answered with this final status.
    Status(u16),
    /// No final answer, or the stack failed.
    Failed(String),
}

impl Dialer {
    /// INVITE `target` with `offer`; on a 2xx, the answered leg and the
    /// SDP answer. URI headers on `target` (`?X-…=…`) are dropped from the
    /// Request-URI; provisional responses in any order (a 180 after the 200
    /// from a forking proxy) are the stack's and do not disturb the call.
    pub async fn invite(
        &self,
        target: &str,
        offer: String,
    ) -> Result<(CallLeg, Vec<u8>), DialError> {
        let bare = target
            .trim()
            .trim_start_matches('<')
            .trim_end_matches('>')
            .split('?')
            .next()
            .unwrap_or_default()
            .to_string();
        let callee = rsipstack::sip::Uri::try_from(bare.as_str())
            .map_err(|e| DialError::Failed(format!("bad target {bare}: {e}")))?;
        let option = InviteOption {
            caller: self.contact.clone(),
            callee: callee.clone(),
            contact: self.contact.clone(),
            content_type: Some("application/sdp".to_string()),
            offer: Some(offer.into_bytes()),
            ..Default::default()
        };
        let (states_tx, states_rx) = self.layer.new_dialog_state_channel();
        let (dialog, response) = self
            .layer
            .do_invite(option, states_tx)
            .await
            .map_err(|e| DialError::Failed(SipError::from(e).to_string()))?;
        let response =
            response.ok_or_else(|| DialError::Failed("no final response".to_string()))?;
        if response.status_code.kind() != StatusCodeKind::Successful {
            return Err(DialError::Status(response.status_code.code()));
        }
        let info = CallInfo {
            call_id: dialog.id().call_id.clone(),
            from: self.contact.to_string(),
            to: bare,
            source: None,
            body: response.body.clone(),
            received: std::time::Instant::now(),
            received_at: std::time::SystemTime::now(),
        };
        let body = response.body.clone();
        Ok((
            CallLeg::new(
                None,
                dialog,
                states_rx,
                self.layer.clone(),
                info,
                self.sent.clone(),
            ),
            body,
        ))
    }
}

/// One outbound call to place (a campaign's or `POST /calls`'), as plain
/// strings: the stack's types stay in this module.
#[derive(Debug, Clone)]
pub struct OutboundCall {
    /// Request-URI (`sip:+4930…@trunk.example.com`).
    pub target: String,
    /// From URI (`sip:+15550100@trunk.example.com`); the caller id.
    pub from: String,
    /// P-Asserted-Identity, when the caller id should be asserted too.
    pub asserted: Option<String>,
    /// Send the INVITE here (an outbound proxy or the registrar) instead of
    /// the Request-URI's host.
    pub proxy: Option<String>,
    /// Digest credentials for 401/407 challenges.
    pub credential: Option<DialCredential>,
    /// Our SDP offer.
    pub offer: String,
    /// CANCEL when no final answer came by then.
    pub ring_timeout: std::time::Duration,
    /// The campaign's INVITE pacing: the INVITE waits for its turn and
    /// the turn ends when it was seen leaving (see `invite_pace`).
    pub pace: Option<Arc<super::InvitePace>>,
}

/// The account's digest credentials (never logged).
#[derive(Clone)]
pub struct DialCredential {
    pub username: String,
    pub password: String,
    pub auth_username: Option<String>,
}

impl std::fmt::Debug for DialCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DialCredential({})", self.username)
    }
}

/// How an outbound INVITE ended.
pub enum Placed {
    /// 2xx: the answered leg and the SDP answer (the 200's, else the one an
    /// early 183 carried).
    Answered {
        /// Boxed: a leg is far larger than the other outcomes.
        leg: Box<CallLeg>,
        answer: Vec<u8>,
        early_media: bool,
    },
    /// A final non-2xx status (after any challenge was answered).
    Refused { code: u16, early_media: bool },
    /// No final answer by the ring timeout: we sent CANCEL.
    Cancelled { early_media: bool },
    /// A transport error, a bad URI, or no response at all.
    Failed(String),
}

/// `<proxy;lr>`: the outbound proxy as a loose-routing Route entry.
fn loose_route(mut proxy: rsipstack::sip::Uri) -> rsipstack::sip::typed::Route {
    if !proxy
        .params
        .iter()
        .any(|p| matches!(p, rsipstack::sip::Param::Lr))
    {
        proxy.params.push(rsipstack::sip::Param::Lr);
    }
    rsipstack::sip::typed::Route::from(proxy)
}

/// A Call-ID for an INVITE we place: random, unique per attempt.
fn new_call_id() -> String {
    format!("{:032x}@voxbridge", rand::random::<u128>())
}

/// How long we wait for the final response once CANCEL is sent.
const CANCEL_GRACE: std::time::Duration = std::time::Duration::from_secs(8);

impl Dialer {
    /// Place `call`: challenges (401/407) are answered by the stack with the
    /// credential, provisional responses with SDP (183) are noted as early
    /// media, and CANCEL goes out when `ring_timeout` passes.
    pub async fn place(&self, call: OutboundCall) -> Placed {
        let uri = |text: &str| {
            rsipstack::sip::Uri::try_from(text).map_err(|e| format!("bad URI {text}: {e}"))
        };
        let (callee, caller) = match (uri(&call.target), uri(&call.from)) {
            (Ok(t), Ok(f)) => (t, f),
            (Err(e), _) | (_, Err(e)) => return Placed::Failed(e),
        };
        let (destination, route_set) = match call.proxy.as_deref().map(uri) {
            Some(Ok(p)) => match rsipstack::transport::SipAddr::try_from(&p) {
                Ok(a) => (Some(a), vec![loose_route(p)]),
                Err(e) => return Placed::Failed(format!("proxy {p}: {e}")),
            },
            Some(Err(e)) => return Placed::Failed(e),
            None => (None, Vec::new()),
        };
        let mut headers = Vec::new();
        if let Some(pai) = &call.asserted {
            headers.push(rsipstack::sip::Header::PAssertedIdentity(
                format!("<{pai}>").into(),
            ));
        }
        let option = InviteOption {
            caller,
            callee,
            destination,
            contact: self.contact.clone(),
            content_type: Some("application/sdp".to_string()),
            offer: Some(call.offer.into_bytes()),
            credential: call
                .credential
                .map(|c| rsipstack::dialog::authenticate::Credential {
                    username: c.username,
                    password: c.password,
                    realm: None,
                    auth_username: c.auth_username,
                }),
            headers: Some(headers),
            // The outbound proxy as a pre-loaded Route (RFC 3261 §8.1.2),
            // not only as where the INVITE is sent: the stack builds the
            // CANCEL from the INVITE and sends it to the first Route, else
            // to the Request-URI's host, where a CANCEL that must pass the
            // proxy would be lost (§9.1: a CANCEL carries the INVITE's Route
            // headers).
            route_set,
            // Ours, so the watch for the INVITE leaving is set up before
            // the stack can send it.
            call_id: Some(new_call_id()),
            ..Default::default()
        };
        let call_id = option.call_id.clone().unwrap_or_default();
        let turn = match &call.pace {
            Some(pace) => Some(pace.turn().await),
            None => None,
        };
        let left = turn.as_ref().map(|_| self.sent.expect_invite(&call_id));
        let (states_tx, mut states_rx) = self.layer.new_dialog_state_channel();
        let (dialog, mut handle) = match self.layer.do_invite_async(option, states_tx) {
            Ok(started) => started,
            Err(e) => {
                self.sent.forget_invite(&call_id);
                return Placed::Failed(SipError::from(e).to_string());
            }
        };
        if let (Some(turn), Some(left)) = (turn, left) {
            let at = match tokio::time::timeout(super::invite_pace::DEPARTURE_WAIT, left).await {
                Ok(Ok(at)) => at,
                _ => {
                    // Not seen leaving (a transport that does not report):
                    // count it as gone now, which only holds the next later.
                    self.sent.forget_invite(&call_id);
                    std::time::Instant::now()
                }
            };
            turn.departed(at);
        }
        let mut early_sdp: Option<Vec<u8>> = None;
        let ring_until = tokio::time::Instant::now() + call.ring_timeout;
        let mut cancelled = false;
        let result = loop {
            let deadline = if cancelled {
                ring_until + CANCEL_GRACE
            } else {
                ring_until
            };
            tokio::select! {
                r = &mut handle => break r,
                Some(state) = states_rx.recv() => {
                    if let rsipstack::dialog::dialog::DialogState::Early(_, resp) = state {
                        if !resp.body.is_empty() {
                            early_sdp = Some(resp.body.clone());
                        }
                    }
                }
                _ = tokio::time::sleep_until(deadline) => {
                    if cancelled {
                        // No 487 after our CANCEL: the attempt is over anyway.
                        handle.abort();
                        return Placed::Cancelled { early_media: early_sdp.is_some() };
                    }
                    cancelled = true;
                    if let Err(e) = dialog.cancel().await {
                        tracing::warn!(error = %e, "CANCEL failed");
                    }
                }
            }
        };
        let early_media = early_sdp.is_some();
        let response = match result {
            Ok(Ok((_, Some(response)))) => response,
            Ok(Ok((_, None))) => {
                return if cancelled {
                    Placed::Cancelled { early_media }
                } else {
                    Placed::Failed("no final response".to_string())
                }
            }
            Ok(Err(e)) => {
                return if cancelled {
                    Placed::Cancelled { early_media }
                } else {
                    Placed::Failed(SipError::from(e).to_string())
                }
            }
            Err(e) => return Placed::Failed(format!("INVITE task: {e}")),
        };
        let code = response.status_code.code();
        if response.status_code.kind() != StatusCodeKind::Successful {
            return if cancelled && code == 487 {
                Placed::Cancelled { early_media }
            } else {
                Placed::Refused { code, early_media }
            };
        }
        if cancelled {
            // The 2xx crossed our CANCEL: the stack ends it with a BYE.
            return Placed::Cancelled { early_media };
        }
        let answer = if response.body.is_empty() {
            early_sdp.unwrap_or_default()
        } else {
            response.body.clone()
        };
        let info = CallInfo {
            call_id: dialog.id().call_id.clone(),
            from: call.from.clone(),
            to: call.target.clone(),
            source: None,
            body: answer.clone(),
            received: std::time::Instant::now(),
            received_at: std::time::SystemTime::now(),
        };
        Placed::Answered {
            leg: Box::new(CallLeg::new(
                None,
                dialog,
                states_rx,
                self.layer.clone(),
                info,
                self.sent.clone(),
            )),
            answer,
            early_media,
        }
    }
}
