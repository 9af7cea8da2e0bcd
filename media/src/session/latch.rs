//! Which source a session's RTP is taken from and sent to: the guard
//! against RTP bleed (a stranger who finds the port hearing the call or
//! talking into it).
//!
//! The signalled address (the SDP's) is always accepted. With
//! [`Latching::Nat`] the first other source inside the latch window whose
//! IP is the signalled one or the SIP source's is accepted too (a caller
//! behind NAT sends from a port its SDP cannot know); everything else is
//! foreign: dropped before it is decoded, and counted. Sans-IO: the
//! instant of each packet is passed in.

use std::net::SocketAddr;
use std::time::Instant;

use super::params::{Latching, MediaParams};

/// What to do with a packet from a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// From the source we already use.
    Accept,
    /// A source we now latch onto (send to it from now on).
    Latch,
    /// From a stranger: drop it.
    Foreign,
}

/// The latching state of one session.
#[derive(Debug, Clone)]
pub struct Latch {
    latched: Option<SocketAddr>,
    /// NAT latching is allowed until this instant.
    open_until: Instant,
    /// Open the window afresh at the next packet (after a re-INVITE moved
    /// the peer: commands carry no time).
    reopen: bool,
}

impl Latch {
    /// A session starting at `now`: the NAT window opens now.
    pub fn new(now: Instant, params: &MediaParams) -> Self {
        Latch {
            latched: None,
            open_until: now + params.latch_window,
            reopen: false,
        }
    }

    /// The source we latched onto, if any.
    pub fn latched(&self) -> Option<SocketAddr> {
        self.latched
    }

    /// The peer moved (re-INVITE to a new address): forget the latched
    /// source and open a new window at the next packet.
    pub fn reset(&mut self) {
        self.latched = None;
        self.reopen = true;
    }

    /// Judge a packet from `from` arriving at `now`, and latch if it is the
    /// one to follow.
    pub fn judge(&mut self, now: Instant, from: SocketAddr, params: &MediaParams) -> Verdict {
        if self.reopen {
            self.reopen = false;
            self.open_until = now + params.latch_window;
        }
        // Kept as received (it is where replies go), compared canonically.
        let received = from;
        let from = canonical(from);
        if self.latched.map(canonical) == Some(from) {
            return Verdict::Accept;
        }
        if from == canonical(params.remote) {
            // The signalled address may always take over: a stray first
            // packet from a NAT port must not lock the real peer out.
            self.latched = Some(received);
            return Verdict::Latch;
        }
        let may_latch = params.latching == Latching::Nat
            && self.latched.is_none()
            && now <= self.open_until
            && (from.ip() == params.remote.ip().to_canonical()
                || params.sip_source.map(|ip| ip.to_canonical()) == Some(from.ip()));
        if may_latch {
            self.latched = Some(received);
            Verdict::Latch
        } else {
            Verdict::Foreign
        }
    }
}

/// An IPv4-mapped IPv6 address (a dual-stack socket) compares as IPv4.
fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Codec;
    use std::time::Duration;

    const PEER: &str = "192.0.2.10:30000";

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn params(latching: Latching) -> MediaParams {
        MediaParams {
            latching,
            sip_source: Some("198.51.100.1".parse().unwrap()),
            ..MediaParams::new(Codec::Pcmu, addr(PEER))
        }
    }

    #[test]
    fn strict_takes_only_the_signalled_address() {
        let p = params(Latching::Strict);
        let t = Instant::now();
        let mut l = Latch::new(t, &p);
        assert_eq!(l.judge(t, addr("192.0.2.10:30002"), &p), Verdict::Foreign);
        assert_eq!(l.judge(t, addr("198.51.100.1:4000"), &p), Verdict::Foreign);
        assert_eq!(l.latched(), None);
        assert_eq!(l.judge(t, addr(PEER), &p), Verdict::Latch);
        assert_eq!(l.judge(t, addr(PEER), &p), Verdict::Accept);
        assert_eq!(l.judge(t, addr("192.0.2.10:30002"), &p), Verdict::Foreign);
    }

    #[test]
    fn nat_latches_once_to_a_matching_ip_in_the_window() {
        let p = params(Latching::Nat);
        let t = Instant::now();
        let mut l = Latch::new(t, &p);
        // A stranger on another IP never latches, even first.
        assert_eq!(l.judge(t, addr("203.0.113.5:5000"), &p), Verdict::Foreign);
        // The signalled IP on another port (NAT rewrote the port) latches.
        let nat = addr("192.0.2.10:41000");
        assert_eq!(l.judge(t, nat, &p), Verdict::Latch);
        assert_eq!(l.latched(), Some(nat));
        // Another port on the same IP is then a stranger: no re-latching.
        assert_eq!(l.judge(t, addr("192.0.2.10:41002"), &p), Verdict::Foreign);
        assert_eq!(l.judge(t, addr("198.51.100.1:4000"), &p), Verdict::Foreign);
        assert_eq!(l.latched(), Some(nat));
        // The signalled address itself may take over.
        assert_eq!(l.judge(t, addr(PEER), &p), Verdict::Latch);
    }

    #[test]
    fn nat_accepts_the_sip_source_ip_until_the_window_closes() {
        let p = params(Latching::Nat);
        let t = Instant::now();
        let mut l = Latch::new(t, &p);
        let late = t + p.latch_window + Duration::from_millis(1);
        assert_eq!(
            l.judge(late, addr("198.51.100.1:4000"), &p),
            Verdict::Foreign
        );
        let mut l = Latch::new(t, &p);
        assert_eq!(
            l.judge(t + p.latch_window, addr("198.51.100.1:4000"), &p),
            Verdict::Latch
        );
    }

    #[test]
    fn reset_reopens_the_window_at_the_next_packet() {
        let p = params(Latching::Nat);
        let t = Instant::now();
        let mut l = Latch::new(t, &p);
        l.reset();
        let later = t + Duration::from_secs(60);
        assert_eq!(l.judge(later, addr("192.0.2.10:41000"), &p), Verdict::Latch);
    }

    #[test]
    fn mapped_ipv6_sources_compare_as_ipv4() {
        let p = params(Latching::Strict);
        let t = Instant::now();
        let mut l = Latch::new(t, &p);
        assert_eq!(
            l.judge(t, addr("[::ffff:192.0.2.10]:30000"), &p),
            Verdict::Latch
        );
    }
}
