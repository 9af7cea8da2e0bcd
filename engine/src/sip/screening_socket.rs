//! The UDP socket the SIP stack reads through. It runs [`screen`] on every
//! datagram so malformed requests are answered (400/501) or dropped with a
//! log line and a metric, instead of vanishing inside the stack, and it
//! translates digest algorithm names (see `digest_compat`).

use std::net::SocketAddr;
use std::sync::Arc;

use rsipstack::platform::net::UdpSocket as StackUdpSocket;
use tracing::warn;

use super::screen::{screen, Verdict};
use super::sent::SentWatch;
use crate::metrics::Metrics;

pub struct ScreeningSocket {
    socket: tokio::net::UdpSocket,
    server: String,
    metrics: Arc<Metrics>,
    sent: Arc<SentWatch>,
}

impl ScreeningSocket {
    pub fn new(
        socket: tokio::net::UdpSocket,
        server: String,
        metrics: Arc<Metrics>,
        sent: Arc<SentWatch>,
    ) -> Self {
        ScreeningSocket {
            socket,
            server,
            metrics,
            sent,
        }
    }
}

#[async_trait::async_trait]
impl StackUdpSocket for ScreeningSocket {
    async fn recv_from(&self, buf: &mut [u8]) -> rsipstack::Result<(usize, SocketAddr)> {
        loop {
            let (mut len, from) = self.socket.recv_from(buf).await?;
            if let Some(fixed) = super::digest_compat::inbound(&buf[..len]) {
                if fixed.len() <= buf.len() {
                    buf[..fixed.len()].copy_from_slice(&fixed);
                    len = fixed.len();
                }
            }
            let datagram = &buf[..len];
            // Keepalives (CRLF) and empty datagrams are the stack's business.
            if datagram.iter().all(u8::is_ascii_whitespace) {
                return Ok((len, from));
            }
            match screen(datagram, &self.server) {
                Verdict::Pass => return Ok((len, from)),
                Verdict::Reply(response, why) => {
                    self.metrics.screened(why);
                    if let Some(code) = response
                        .get(8..11)
                        .and_then(|c| std::str::from_utf8(c).ok())
                        .and_then(|c| c.parse().ok())
                    {
                        self.metrics.response_sent(code);
                    }
                    warn!(source = %from, reason = why.label(), bytes = len, "malformed SIP request answered");
                    if let Err(e) = self.socket.send_to(&response, from).await {
                        warn!(source = %from, error = %e, "could not answer malformed SIP request");
                    }
                }
                Verdict::Drop(why) => {
                    self.metrics.screened(why);
                    warn!(source = %from, reason = why.label(), bytes = len, "malformed SIP datagram dropped");
                }
            }
        }
    }

    async fn send_to(&self, buf: &[u8], addr: SocketAddr) -> rsipstack::Result<usize> {
        let sent = match super::digest_compat::outbound(buf) {
            Some(fixed) => {
                self.socket.send_to(&fixed, addr).await?;
                // The stack checks that everything it handed over was sent.
                buf.len()
            }
            None => self.socket.send_to(buf, addr).await?,
        };
        self.sent.written(buf);
        Ok(sent)
    }

    fn local_addr(&self) -> rsipstack::Result<SocketAddr> {
        Ok(self.socket.local_addr()?)
    }
}
