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
