//! A calling-only SIP user agent on its own UDP port: what `voxbridge call`
//! dials from. It places one INVITE at a time and serves the in-dialog
//! requests that come back (the bot's BYE, INFO, OPTIONS); it takes no calls.

use std::net::SocketAddr;
use std::sync::Arc;

use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::dialog::invitation::InviteOption;
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::{Header, Method, StatusCode, StatusCodeKind};
use rsipstack::transport::udp::UdpConnection;
use rsipstack::transport::TransportLayer;
use rsipstack::EndpointBuilder;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::dialer::DialError;
use super::leg::{CallInfo, CallLeg};
use super::SipError;

/// A UDP SIP endpoint that places calls; stops when dropped.
pub struct UserAgent {
    cancel: CancellationToken,
    layer: Arc<DialogLayer>,
    contact: rsipstack::sip::Uri,
    local_addr: SocketAddr,
}

/// Sends keys as SIP INFO (`application/dtmf-relay`) in an answered call.
#[derive(Clone)]
pub struct InfoDtmf {
    dialog: InviteDialog,
}

impl UserAgent {
    /// Bind `bind` (port 0: any free port) and serve; `user` is the user
    /// part of our From and Contact (a caller number the bot can look up).
    pub async fn bind(bind: SocketAddr, user: &str, user_agent: &str) -> Result<Self, SipError> {
        if bind.ip().is_unspecified() {
            // The address goes into Contact and Via: the bot answers there.
            return Err(SipError::Config(format!(
                "{bind}: give the IP the bot can reach, not a wildcard"
            )));
        }
        let cancel = CancellationToken::new();
        let transport_layer = TransportLayer::new(cancel.child_token());
        let conn = UdpConnection::create_connection(bind, None, Some(cancel.child_token()))
            .await
            .map_err(|e| SipError::Bind(bind, std::io::Error::other(e.to_string())))?;
        let local_addr = conn.get_addr().get_socketaddr().map_err(SipError::from)?;
        transport_layer.add_transport(conn.into());
        let endpoint = EndpointBuilder::new()
            .with_user_agent(user_agent)
            .with_cancel_token(cancel.child_token())
            .with_transport_layer(transport_layer)
            .with_allows(vec![
                Method::Invite,
                Method::Ack,
                Method::Bye,
                Method::Cancel,
                Method::Options,
                Method::Info,
            ])
            .build();
        let mut incoming = endpoint.incoming_transactions().map_err(SipError::from)?;
        let layer = Arc::new(DialogLayer::new(endpoint.inner.clone()));
        let host = match local_addr.ip() {
            std::net::IpAddr::V6(v6) => format!("[{v6}]"),
            v4 => v4.to_string(),
        };
        let contact_text = format!("sip:{user}@{host}:{}", local_addr.port());
        let contact = rsipstack::sip::Uri::try_from(contact_text.as_str())
            .map_err(|e| SipError::Config(format!("bad caller {user:?}: {e}")))?;

        let inner = endpoint.inner.clone();
        tokio::spawn(async move {
            if let Err(e) = inner.serve().await {
                debug!(error = %e, "SIP user agent stopped");
            }
        });
        let dialogs = layer.clone();
        let stop = cancel.clone();
        tokio::spawn(async move {
            let _endpoint = endpoint;
            loop {
                let mut tx = tokio::select! {
                    _ = stop.cancelled() => return,
                    tx = incoming.recv() => match tx {
                        Some(tx) => tx,
                        None => return,
                    },
                };
                if let Some(mut dialog) = dialogs.match_dialog(&tx) {
                    tokio::spawn(async move {
                        if let Err(e) = dialog.handle(&mut tx).await {
                            debug!(error = %e, "in-dialog request failed");
                        }
                    });
                    continue;
                }
                let status = match tx.original.method {
                    Method::Ack => continue,
                    Method::Options => StatusCode::OK,
                    // We only place calls.
                    Method::Invite => StatusCode::BusyHere,
                    _ => StatusCode::CallTransactionDoesNotExist,
                };
                let _ = tx.reply(status).await;
            }
        });
        Ok(UserAgent {
            cancel,
            layer,
            contact,
            local_addr,
        })
    }

    /// Where our SIP socket is bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// INVITE `target` with `offer` under our own `call_id`; on a 2xx the
    /// answered leg, the SDP answer and a sender for INFO keys. Dropping the
    /// future before the answer CANCELs the INVITE.
    pub async fn invite(
        &self,
        target: &str,
        call_id: &str,
        offer: String,
    ) -> Result<(CallLeg, Vec<u8>, InfoDtmf), DialError> {
        let callee = rsipstack::sip::Uri::try_from(target)
            .map_err(|e| DialError::Failed(format!("bad target {target}: {e}")))?;
        let option = InviteOption {
            caller: self.contact.clone(),
            callee,
            contact: self.contact.clone(),
            content_type: Some("application/sdp".to_string()),
            offer: Some(offer.into_bytes()),
            call_id: Some(call_id.to_string()),
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
            to: target.to_string(),
            source: None,
            body: response.body.clone(),
            received: std::time::Instant::now(),
            received_at: std::time::SystemTime::now(),
        };
        let body = response.body.clone();
        let info_dtmf = InfoDtmf {
            dialog: dialog.clone(),
        };
        Ok((
            CallLeg::new(
                None,
                dialog,
                states_rx,
                self.layer.clone(),
                info,
                Arc::new(super::SentWatch::default()),
            ),
            body,
            info_dtmf,
        ))
    }
}

impl Drop for UserAgent {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

impl InfoDtmf {
    /// Send `key` and return the status of the answer (408 when none came).
    pub async fn send(&self, key: char, duration_ms: u32) -> Result<u16, SipError> {
        let headers = vec![Header::ContentType("application/dtmf-relay".into())];
        let body = format!("Signal={key}\r\nDuration={duration_ms}\r\n").into_bytes();
        let response = self
            .dialog
            .info(Some(headers), Some(body))
            .await
            .map_err(SipError::from)?;
        Ok(response.map(|r| r.status_code.code()).unwrap_or(408))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn binds_a_free_port_and_refuses_a_wildcard() {
        let ua = UserAgent::bind("127.0.0.1:0".parse().unwrap(), "+15551230001", "t")
            .await
            .unwrap();
        assert_ne!(ua.local_addr().port(), 0);
        assert!(ua
            .contact
            .to_string()
            .starts_with("sip:+15551230001@127.0.0.1:"));
        assert!(matches!(
            UserAgent::bind("0.0.0.0:0".parse().unwrap(), "x", "t").await,
            Err(SipError::Config(_))
        ));
    }

    #[tokio::test]
    async fn a_refused_invite_reports_its_status() {
        // A second agent answers every INVITE outside a dialog with 486.
        let callee = UserAgent::bind("127.0.0.1:0".parse().unwrap(), "bot", "t")
            .await
            .unwrap();
        let caller = UserAgent::bind("127.0.0.1:0".parse().unwrap(), "me", "t")
            .await
            .unwrap();
        let target = format!("sip:bot@{}", callee.local_addr());
        let offer = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
        let result = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            caller.invite(&target, "refused-1@test", offer.to_string()),
        )
        .await
        .expect("an answer in time");
        assert!(matches!(result, Err(DialError::Status(486))));
    }
}
