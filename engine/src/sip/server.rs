//! The SIP endpoint: listeners, the stack, and the dispatcher that turns
//! incoming transactions into new calls, in-dialog requests and stateless
//! answers (OPTIONS keepalives, 405/481/501).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::sip::{Header, HeadersExt, Method, SipMessage, StatusCode};
use rsipstack::transaction::endpoint::{EndpointOption, MessageInspector};
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transport::udp::UdpConnection;
use rsipstack::transport::SipAddr;

use super::sent::SentWatch;
use rsipstack::transport::{TcpListenerConnection, TransportLayer};
use rsipstack::EndpointBuilder;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::dialer::Dialer;
use super::leg::{call_info, CallLeg};
use super::ratelimit::RateLimiter;
use super::registration::Registrations;
use super::screen::ALLOWED_METHODS;
use super::screening_socket::ScreeningSocket;
use super::SipError;
use crate::admission::Admission;
use crate::config::{Config, Transport};
use crate::health::{Component, DownOnDrop};
use crate::metrics::Metrics;
use crate::pii::mask_uri;
use crate::sdp;

/// A running SIP endpoint. New calls arrive on the receiver returned by
/// [`SipServer::start`]; dropping the server does not stop it, [`SipServer::shutdown`] does.
pub struct SipServer {
    cancel: CancellationToken,
    local_addr: SocketAddr,
    tls_addr: Option<SocketAddr>,
    registrations: Option<Registrations>,
    dialer: Dialer,
}

impl SipServer {
    /// Bind the listeners and start serving. Returns the server and the
    /// stream of new inbound calls.
    pub async fn start(
        config: &Config,
        metrics: Arc<Metrics>,
        admission: Arc<Admission>,
    ) -> Result<(SipServer, mpsc::Receiver<CallLeg>), SipError> {
        let cancel = CancellationToken::new();
        let transport_layer = TransportLayer::new(cancel.child_token());
        let sent = Arc::new(SentWatch::default());
        let listen = config.sip.listen;
        let external = config
            .sip
            .public_address
            .map(|ip| SocketAddr::new(ip, listen.port()));
        let mut local_addr = listen;

        if config.sip.transports.contains(&Transport::Udp) {
            let socket = tokio::net::UdpSocket::bind(listen)
                .await
                .map_err(|e| SipError::Bind(listen, e))?;
            local_addr = socket.local_addr().map_err(|e| SipError::Bind(listen, e))?;
            // A burst of INVITEs at 1,000 calls/s overflows the default
            // 208 KB receive buffer during a scheduling hiccup.
            set_recv_buffer(&socket, 4 * 1024 * 1024);
            let limits = RateLimiter::new(&config.sip.rate_limits, Instant::now())
                .map_err(|e| SipError::Config(format!("sip.rate_limits.allow: {e}")))?;
            let screening = ScreeningSocket::new(
                socket,
                config.sip.user_agent.clone(),
                metrics.clone(),
                sent.clone(),
                limits,
            );
            let conn = UdpConnection::from_socket(
                Arc::new(screening),
                external,
                Some(cancel.child_token()),
            )
            .await
            .map_err(SipError::from)?;
            transport_layer.add_transport(conn.into());
        }
        if config.sip.transports.contains(&Transport::Tcp) {
            let tcp_addr = SocketAddr::new(listen.ip(), local_addr.port());
            // The stack binds lazily; probe now so a taken port fails at start.
            std::net::TcpListener::bind(tcp_addr).map_err(|e| SipError::Bind(tcp_addr, e))?;
            let tcp = TcpListenerConnection::new(tcp_addr, external)
                .await
                .map_err(SipError::from)?;
            transport_layer.add_transport(tcp.into());
        }

        // SIP over TLS: files checked and the port bound before anything
        // answers, so a bad certificate or a taken port fails the start.
        let tls = match &config.sip.tls {
            Some(cfg) => {
                let material = super::tls::load(cfg)?;
                let listener = tokio::net::TcpListener::bind(cfg.listen)
                    .await
                    .map_err(|e| SipError::Bind(cfg.listen, e))?;
                let bound = listener
                    .local_addr()
                    .map_err(|e| SipError::Bind(cfg.listen, e))?;
                transport_layer.set_tls_config(material.client.clone());
                Some((listener, material.acceptor, bound))
            }
            None => None,
        };

        // Call-IDs of calls we place end in our own host, not the stack's
        // default domain.
        let option = EndpointOption {
            callid_suffix: Some(config.advertised_ip().to_string()),
            ..EndpointOption::default()
        };
        let endpoint = EndpointBuilder::new()
            .with_option(option)
            .with_user_agent(&config.sip.user_agent)
            .with_cancel_token(cancel.child_token())
            .with_transport_layer(transport_layer)
            .with_inspector(Box::new(ResponseCounter(metrics.clone(), sent.clone())))
            .with_allows(vec![
                Method::Invite,
                Method::Ack,
                Method::Bye,
                Method::Cancel,
                Method::Options,
                Method::Info,
                Method::Update,
            ])
            .build();
        let incoming = endpoint.incoming_transactions().map_err(SipError::from)?;
        let layer = Arc::new(DialogLayer::new(endpoint.inner.clone()));
        let contact = contact_uri(config, local_addr)?;
        let mut tls_addr = None;
        let tls_contact = match tls {
            Some((listener, acceptor, bound)) => {
                let advertised = SocketAddr::new(config.advertised_ip(), bound.port());
                super::tls::spawn_accept(
                    listener,
                    acceptor,
                    advertised,
                    endpoint.inner.clone(),
                    metrics.clone(),
                    cancel.child_token(),
                );
                info!(address = %bound, "SIP TLS listening");
                tls_addr = Some(bound);
                Some(tls_contact_uri(config, bound)?)
            }
            None => None,
        };

        let registrations = if config.registration.accounts.is_empty() {
            None
        } else {
            Some(Registrations::start(
                endpoint.inner.clone(),
                &config.registration.accounts,
                metrics.clone(),
            )?)
        };

        let inner = endpoint.inner.clone();
        let serve_metrics = metrics.clone();
        let serve_stop = cancel.clone();
        // Up before either task starts, so an instant failure is not undone.
        metrics.health.set(Component::Sip, true);
        tokio::spawn(async move {
            // However the stack ends, /ready stops saying we take calls.
            let _down = DownOnDrop {
                health: &serve_metrics.health,
                component: Component::Sip,
            };
            let result = inner.serve().await;
            if !serve_stop.is_cancelled() {
                match result {
                    Err(e) => warn!(error = %e, "SIP endpoint stopped; not ready"),
                    Ok(()) => warn!("SIP endpoint ended; not ready"),
                }
            }
        });

        // Admission by measured load: the probe runs on this runtime, the
        // one the calls' media tasks pace their packets on.
        admission.set_load_limit(std::time::Duration::from_millis(u64::from(
            config.calls.max_scheduling_delay_ms,
        )));
        crate::load::spawn_probe(admission.clone(), metrics.clone(), cancel.child_token());

        let (calls_tx, calls_rx) = mpsc::channel(1024);
        let dialer = Dialer {
            layer: layer.clone(),
            contact: contact.clone(),
            sent: sent.clone(),
        };
        let dispatcher = Dispatcher {
            layer,
            contact,
            tls_contact,
            calls: calls_tx,
            metrics,
            admission,
            retry_after: config.calls.retry_after_secs,
            sent,
            codecs: config.sip.codecs.iter().map(|c| c.codec()).collect(),
            srtp: crate::srtp_policy::SrtpPolicies::new(config),
        };
        let stop = cancel.clone();
        let health_metrics = dispatcher.metrics.clone();
        tokio::spawn(async move {
            // Keep the endpoint alive as long as the dispatcher runs.
            let _endpoint = endpoint;
            let _down = DownOnDrop {
                health: &health_metrics.health,
                component: Component::Sip,
            };
            dispatcher.run(incoming, stop.clone()).await;
            if !stop.is_cancelled() {
                warn!("SIP dispatcher ended: no new calls; not ready");
            }
        });
        info!(address = %local_addr, transports = ?config.sip.transports, node = %config.node.name(), "SIP listening");
        Ok((
            SipServer {
                cancel,
                local_addr,
                tls_addr,
                registrations,
                dialer,
            },
            calls_rx,
        ))
    }

    /// Places outbound calls from this endpoint.
    pub fn dialer(&self) -> Dialer {
        self.dialer.clone()
    }

    /// The address the listeners are bound to (the real port when 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Where the TLS listener is bound, when `sip.tls` is set.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls_addr
    }

    /// Un-REGISTER every account, then stop listening and end the stack.
    pub async fn stop(mut self) {
        if let Some(r) = self.registrations.take() {
            r.unregister_all().await;
        }
        self.cancel.cancel();
    }
}

struct Dispatcher {
    layer: Arc<DialogLayer>,
    contact: rsipstack::sip::Uri,
    /// Our Contact for dialogs that arrived over TLS, so the caller's BYE,
    /// re-INVITE and REFER come back over TLS too.
    tls_contact: Option<rsipstack::sip::Uri>,
    calls: mpsc::Sender<CallLeg>,
    metrics: Arc<Metrics>,
    admission: Arc<Admission>,
    retry_after: u32,
    sent: Arc<SentWatch>,
    /// Our codecs in preference order, to judge offers before ringing.
    codecs: Vec<voxbridge_media::Codec>,
    /// The SRTP policies offers are judged by (the call applies the same).
    srtp: crate::srtp_policy::SrtpPolicies,
}

/// Counts every response the stack sends, by status code.
/// It also reports responses sent over streams to the [`SentWatch`] (the
/// UDP socket reports its own once written).
struct ResponseCounter(Arc<Metrics>, Arc<SentWatch>);

impl MessageInspector for ResponseCounter {
    fn before_send(&self, msg: SipMessage, dest: Option<&SipAddr>) -> SipMessage {
        let udp = dest
            .and_then(|d| d.r#type)
            .is_none_or(|t| matches!(t, rsipstack::sip::transport::Transport::Udp));
        match &msg {
            SipMessage::Response(resp) => {
                self.0.response_sent(resp.status_code.code());
                if !udp {
                    self.1.written(resp.to_string().as_bytes());
                }
            }
            // INVITEs leaving over a stream, for the campaigns' pacing.
            SipMessage::Request(req) if !udp && req.method == rsipstack::sip::Method::Invite => {
                self.1.written(req.to_string().as_bytes());
            }
            SipMessage::Request(_) => {}
        }
        msg
    }

    fn after_received(&self, msg: SipMessage, _from: Option<&SipAddr>) -> SipMessage {
        msg
    }
}

impl Dispatcher {
    /// The Contact for a dialog `tx` starts: on the transport it came over.
    fn contact_for(&self, tx: &Transaction) -> rsipstack::sip::Uri {
        let over_tls = tx.connection.as_ref().is_some_and(|c| {
            matches!(
                c.get_addr().r#type,
                Some(rsipstack::sip::transport::Transport::Tls)
            )
        });
        match (&self.tls_contact, over_tls) {
            (Some(tls), true) => {
                let mut contact = tls.clone();
                if tx.original.uri.scheme == Some(rsipstack::sip::Scheme::Sips) {
                    contact.scheme = Some(rsipstack::sip::Scheme::Sips);
                }
                contact
            }
            _ => self.contact.clone(),
        }
    }

    async fn run(
        self,
        mut incoming: rsipstack::transaction::TransactionReceiver,
        stop: CancellationToken,
    ) {
        loop {
            let tx = tokio::select! {
                _ = stop.cancelled() => return,
                tx = incoming.recv() => match tx {
                    Some(tx) => tx,
                    None => return,
                },
            };
            self.dispatch(tx).await;
        }
    }

    async fn dispatch(&self, mut tx: Transaction) {
        let in_dialog = tx
            .original
            .to_header()
            .ok()
            .and_then(|to| to.tag().ok().flatten())
            .is_some();

        if in_dialog {
            match self.layer.match_dialog(&tx) {
                Some(mut dialog) => {
                    tokio::spawn(async move {
                        if let Err(e) = dialog.handle(&mut tx).await {
                            debug!(error = %e, "in-dialog request failed");
                        }
                    });
                }
                None => {
                    // RFC 3261 §12.2.2: a request for a dialog we do not know.
                    reply(&mut tx, StatusCode::CallTransactionDoesNotExist, vec![]).await;
                }
            }
            return;
        }

        match tx.original.method {
            Method::Invite => self.new_call(tx).await,
            Method::Options => {
                let headers = vec![
                    Header::Allow(ALLOWED_METHODS.into()),
                    Header::Accept("application/sdp".into()),
                ];
                reply(&mut tx, StatusCode::OK, headers).await;
            }
            Method::Bye => reply(&mut tx, StatusCode::CallTransactionDoesNotExist, vec![]).await,
            Method::Ack | Method::Cancel => {}
            _ => {
                let headers = vec![Header::Allow(ALLOWED_METHODS.into())];
                reply(&mut tx, StatusCode::MethodNotAllowed, headers).await;
            }
        }
    }

    async fn new_call(&self, mut tx: Transaction) {
        let source = tx
            .connection
            .as_ref()
            .and_then(|c| c.get_remote_addr())
            .and_then(|a| a.get_socketaddr().ok());
        let info = call_info(&tx.original, source);
        // RFC 3264 §6: refuse only an offer we cannot take, before ringing,
        // and say in a Warning (RFC 3261 §20.43) what stopped it. An INVITE
        // without an offer goes on to the call, which refuses it.
        if !tx.original.body.is_empty() {
            let policy = self.srtp.for_call(source.map(|s| s.ip()), &info.to);
            // Only judged here, never used: the call draws its own key.
            let key =
                voxbridge_media::SrtpKey::from_bytes([0; voxbridge_media::srtp::KEY_SALT_LEN]);
            if let Err(e) = sdp::parse(&tx.original.body)
                .and_then(|o| sdp::negotiate_with(&o, &self.codecs, policy, &key))
            {
                self.metrics
                    .calls_rejected_sdp
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let (code, _) = e.refusal();
                warn!(call_id = %info.call_id, source = ?source, code, reason = %e, "INVITE offer refused");
                let headers = e
                    .warning("voxbridge")
                    .map(|w| vec![Header::Warning(w.into())])
                    .unwrap_or_default();
                reply(&mut tx, StatusCode::from(code), headers).await;
                return;
            }
        }
        let slot = match self.admission.admit(source.map(|s| s.ip())) {
            Ok(slot) => slot,
            Err(refusal) => {
                self.metrics.refused(refusal);
                if self.admission.log_refusal(
                    refusal,
                    source.map(|s| s.ip()),
                    std::time::Instant::now(),
                ) {
                    warn!(
                        call_id = %info.call_id,
                        source = ?source,
                        from = %mask_uri(&info.from),
                        reason = refusal.label(),
                        status = refusal.status(),
                        "INVITE refused"
                    );
                }
                let mut headers = vec![];
                if refusal.status() == 503 {
                    headers.push(Header::RetryAfter(self.retry_after.to_string().into()));
                }
                reply(&mut tx, StatusCode::from(refusal.status()), headers).await;
                return;
            }
        };
        let (state_tx, state_rx) = self.layer.new_dialog_state_channel();
        let dialog = match self.layer.get_or_create_server_invite(
            &tx,
            state_tx,
            None,
            Some(self.contact_for(&tx)),
        ) {
            Ok(d) => d,
            Err(e) => {
                warn!(call_id = %info.call_id, error = %e, "cannot create dialog");
                reply(&mut tx, StatusCode::ServerInternalError, vec![]).await;
                return;
            }
        };
        debug!(call_id = %info.call_id, from = %mask_uri(&info.from), "INVITE");
        let leg = CallLeg::new(
            Some(slot),
            dialog.clone(),
            state_rx,
            self.layer.clone(),
            info,
            self.sent.clone(),
        );
        // The dialog drives the INVITE transaction (100 Trying, our final
        // response, its retransmissions, the ACK or a CANCEL).
        let mut dialog_task = dialog;
        tokio::spawn(async move {
            if let Err(e) = dialog_task.handle(&mut tx).await {
                debug!(error = %e, "INVITE transaction ended with an error");
            }
        });
        // Never block the dispatcher: a full queue means the call tasks are
        // not keeping up, and the caller is better served by a fast 503.
        if let Err(
            mpsc::error::TrySendError::Full(mut leg) | mpsc::error::TrySendError::Closed(mut leg),
        ) = self.calls.try_send(leg)
        {
            self.metrics
                .calls_rejected_busy
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let _ = leg.reject_with(503);
        }
    }
}

async fn reply(tx: &mut Transaction, status: StatusCode, headers: Vec<Header>) {
    if let Err(e) = tx.reply_with(status, headers, None).await {
        debug!(error = %e, "could not send response");
    }
}

/// Our Contact: `sip:voxbridge@<advertised ip>:<port>`.
/// Our Contact on the TLS listener (`transport=tls`, which every peer we
/// tested routes over TLS; a `sips:` request gets a `sips:` Contact).
fn tls_contact_uri(config: &Config, local: SocketAddr) -> Result<rsipstack::sip::Uri, SipError> {
    let host = match config.advertised_ip() {
        std::net::IpAddr::V6(v6) => format!("[{v6}]"),
        v4 => v4.to_string(),
    };
    let text = format!("sip:voxbridge@{host}:{};transport=tls", local.port());
    rsipstack::sip::Uri::try_from(text.as_str()).map_err(|e| SipError::Stack(e.to_string()))
}

fn contact_uri(config: &Config, local: SocketAddr) -> Result<rsipstack::sip::Uri, SipError> {
    let host = match config.advertised_ip() {
        std::net::IpAddr::V6(v6) => format!("[{v6}]"),
        v4 => v4.to_string(),
    };
    let text = format!("sip:voxbridge@{host}:{}", local.port());
    rsipstack::sip::Uri::try_from(text.as_str()).map_err(|e| SipError::Stack(e.to_string()))
}

fn set_recv_buffer(socket: &tokio::net::UdpSocket, bytes: usize) {
    let sock = socket2::SockRef::from(socket);
    if let Err(e) = sock.set_recv_buffer_size(bytes) {
        debug!(error = %e, "could not enlarge the SIP receive buffer");
    }
}
