//! The UDP socket the SIP stack reads through. It runs [`screen`] on every
//! datagram so malformed or unsupported requests are answered (400, 416,
//! 420, 501, 505, 513…) or dropped with a
//! log line and a metric, instead of vanishing inside the stack, and it
//! translates digest algorithm names (see `digest_compat`). Before any of
//! that it applies the per-source rate limits (see `ratelimit`), so a flood
//! is answered 503 or dropped here, for the price of reading one word.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rsipstack::platform::net::UdpSocket as StackUdpSocket;
use tracing::warn;

use super::ratelimit::{Class, Decision, RateLimiter};
use super::screen::{answer, screen, too_large, Rejection, Verdict};
use super::sent::SentWatch;
use crate::metrics::Metrics;

pub struct ScreeningSocket {
    socket: tokio::net::UdpSocket,
    server: String,
    metrics: Arc<Metrics>,
    sent: Arc<SentWatch>,
    spare: std::sync::Mutex<Vec<u8>>,
    limits: Mutex<RateLimiter>,
}

impl ScreeningSocket {
    pub fn new(
        socket: tokio::net::UdpSocket,
        server: String,
        metrics: Arc<Metrics>,
        sent: Arc<SentWatch>,
        limits: RateLimiter,
    ) -> Self {
        ScreeningSocket {
            socket,
            server,
            metrics,
            sent,
            spare: std::sync::Mutex::new(Vec::new()),
            limits: Mutex::new(limits),
        }
    }

    /// Apply the rate limits to one datagram: `true` when it may go on.
    /// Over a soft limit it is answered 503 here, never reaching the stack
    /// or a call; over the hard limit it is dropped.
    async fn within_limits(&self, datagram: &[u8], from: SocketAddr) -> bool {
        let class = Class::of(datagram);
        let (outcome, closing) = {
            let mut limits = self.limits.lock().unwrap_or_else(|e| e.into_inner());
            let outcome = limits.check(Instant::now(), from.ip(), class);
            let closing: Vec<_> = std::iter::from_fn(|| limits.poll_log()).collect();
            (outcome, closing)
        };
        let mut decision = outcome.decision;
        if let Decision::Refuse { retry_after } = decision {
            let retry = retry_after.to_string();
            match answer(
                datagram,
                503,
                "Service Unavailable",
                &self.server,
                &[("Retry-After", &retry)],
            ) {
                Some(response) => {
                    self.metrics.response_sent(503);
                    if let Err(e) = self.socket.send_to(&response, from).await {
                        warn!(source = %from, error = %e, "could not answer a rate-limited SIP request");
                    }
                }
                // No Via: nobody to answer.
                None => decision = Decision::Drop,
            }
        }
        self.metrics.rate_limited.count(class, decision);
        for line in outcome.log.into_iter().chain(closing) {
            match line.source {
                Some(ip) => warn!(
                    source = %ip,
                    limited = line.limited,
                    "SIP source over its rate limit: answered 503 or dropped (logged at most once a minute per source)"
                ),
                None => warn!(
                    limited = line.limited,
                    "SIP sources beyond the rate limiter's table share one bucket: answered 503 or dropped (logged at most once a minute)"
                ),
            }
        }
        decision == Decision::Pass
    }
}

/// Largest UDP datagram (64 KB less the IP and UDP headers): what we read,
/// so one larger than the stack's buffer is seen whole and answered 513.
const MAX_DATAGRAM: usize = 65_507;

impl ScreeningSocket {
    /// Read datagrams into `whole` until one is for the stack.
    async fn receive(
        &self,
        buf: &mut [u8],
        whole: &mut [u8],
    ) -> rsipstack::Result<(usize, SocketAddr)> {
        loop {
            let (mut len, from) = self.socket.recv_from(whole).await?;
            if !self.within_limits(&whole[..len], from).await {
                continue;
            }
            if let Some(fixed) = super::digest_compat::inbound(&whole[..len]) {
                if fixed.len() <= whole.len() {
                    whole[..fixed.len()].copy_from_slice(&fixed);
                    len = fixed.len();
                }
            }
            let datagram = &whole[..len];
            // Keepalives (CRLF) and empty datagrams are the stack's business.
            if datagram.iter().all(u8::is_ascii_whitespace) {
                let n = len.min(buf.len());
                buf[..n].copy_from_slice(&datagram[..n]);
                return Ok((n, from));
            }
            let verdict = if len > buf.len() {
                too_large(&datagram[..buf.len()], &self.server)
            } else {
                screen(datagram, &self.server)
            };
            match verdict {
                Verdict::Pass => {
                    buf[..len].copy_from_slice(datagram);
                    return Ok((len, from));
                }
                Verdict::Rewrite(bytes) if bytes.len() <= buf.len() => {
                    buf[..bytes.len()].copy_from_slice(&bytes);
                    return Ok((bytes.len(), from));
                }
                Verdict::Rewrite(_) => {
                    // Unfolding only shortens a message; never reached.
                    self.metrics.screened(Rejection::TooLarge);
                }
                Verdict::Trim(n) => {
                    // RFC 3261 §18.3: octets past Content-Length are discarded.
                    buf[..n].copy_from_slice(&datagram[..n]);
                    return Ok((n, from));
                }
                Verdict::Reply(response, why) => {
                    self.metrics.screened(why);
                    if let Some(code) = response
                        .get(8..11)
                        .and_then(|c| std::str::from_utf8(c).ok())
                        .and_then(|c| c.parse().ok())
                    {
                        self.metrics.response_sent(code);
                    }
                    warn!(source = %from, reason = why.label(), bytes = len, "SIP request refused by screening");
                    if let Err(e) = self.socket.send_to(&response, from).await {
                        warn!(source = %from, error = %e, "could not answer a screened SIP request");
                    }
                }
                Verdict::Drop(why) => {
                    self.metrics.screened(why);
                    warn!(source = %from, reason = why.label(), bytes = len, "malformed SIP datagram dropped");
                }
            }
        }
    }
}

#[async_trait::async_trait]
impl StackUdpSocket for ScreeningSocket {
    async fn recv_from(&self, buf: &mut [u8]) -> rsipstack::Result<(usize, SocketAddr)> {
        // The stack reads from one task: reuse one buffer rather than zero
        // 64 KB per datagram (a second reader, if ever, gets its own).
        let mut whole = std::mem::take(&mut *self.spare.lock().unwrap_or_else(|e| e.into_inner()));
        if whole.len() < MAX_DATAGRAM {
            whole = vec![0u8; MAX_DATAGRAM];
        }
        let result = self.receive(buf, &mut whole).await;
        *self.spare.lock().unwrap_or_else(|e| e.into_inner()) = whole;
        result
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
