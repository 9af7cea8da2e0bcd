//! RTP port allocation from the configured range.
//!
//! RTP uses even ports (RFC 3550 §11: RTCP, if any, is on port + 1, which we
//! leave unbound but inside the range). Ports are picked at random, so a
//! stranger cannot guess the next call's port from the last one (RTP bleed
//! starts with a guessed port), and the ports handed out most recently are
//! avoided while others are free, so a port freed by a call that just ended
//! is not given to the next call while stray packets for the old call may
//! still be in flight. Whether a port is free is decided by the OS: we try
//! to bind and move on when it is in use, so a port held by another process
//! (or a socket still owned by a call) is skipped without the pool having
//! to track releases.

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::Mutex;

use rand::Rng;

use thiserror::Error;

/// Why no port could be allocated.
#[derive(Debug, Error)]
pub enum PortPoolError {
    /// The range holds no even port with its RTCP port (port + 1) inside it.
    #[error("RTP port range {min}-{max} contains no usable even port")]
    InvalidRange {
        /// Configured lower bound.
        min: u16,
        /// Configured upper bound.
        max: u16,
    },
    /// Every port in the range is in use.
    #[error("all RTP ports in {min}-{max} on {ip} are in use")]
    Exhausted {
        /// Local address.
        ip: IpAddr,
        /// Configured lower bound.
        min: u16,
        /// Configured upper bound.
        max: u16,
    },
    /// Binding failed for a reason other than the port being taken (address
    /// not local, permission denied…), which retrying other ports won't fix.
    #[error("cannot bind RTP socket on {addr}: {source}")]
    Bind {
        /// The address we tried.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// Hands out bound UDP sockets on even ports of `[min, max]`. Thread-safe.
#[derive(Debug)]
pub struct PortPool {
    ip: IpAddr,
    min: u16,
    max: u16,
    first: u16,
    count: u16,
    /// Indexes (0..count) handed out most recently, oldest first.
    recent: Mutex<VecDeque<u16>>,
}

/// Random probes before falling back to a scan of the whole range.
const RANDOM_PROBES: u32 = 16;

/// How many recently allocated ports are avoided: half the range, at most
/// this many.
const MAX_RECENT: usize = 256;

impl PortPool {
    /// A pool binding on `ip`, using the even ports `p` with `min <= p` and
    /// `p + 1 <= max`.
    pub fn new(ip: IpAddr, min: u16, max: u16) -> Result<Self, PortPoolError> {
        let first = min.saturating_add(min % 2);
        if min == 0 || first >= max {
            return Err(PortPoolError::InvalidRange { min, max });
        }
        // Even ports first, first + 2, … whose RTCP neighbour is <= max.
        let count = (max - 1 - first) / 2 + 1;
        Ok(PortPool {
            ip,
            min,
            max,
            first,
            count,
            recent: Mutex::new(VecDeque::new()),
        })
    }

    /// The local address sockets are bound to.
    pub fn ip(&self) -> IpAddr {
        self.ip
    }

    /// How many RTP ports the range holds.
    pub fn capacity(&self) -> usize {
        usize::from(self.count)
    }

    /// Bind a socket on a free even port chosen at random.
    pub fn allocate(&self) -> Result<UdpSocket, PortPoolError> {
        // Holding the lock while binding keeps two callers from racing for
        // the same port; a bind is a few microseconds.
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        let mut rng = rand::rng();
        let avoid = (usize::from(self.count) / 2).min(MAX_RECENT);
        while recent.len() > avoid {
            recent.pop_front();
        }
        // Random probes find a free port at once in any range that is not
        // nearly full; recently used ports are skipped.
        for _ in 0..RANDOM_PROBES {
            let index = rng.random_range(0..self.count);
            if recent.contains(&index) {
                continue;
            }
            if let Some(socket) = self.try_bind(index)? {
                Self::remember(&mut recent, avoid, index);
                return Ok(socket);
            }
        }
        // Nearly full: scan everything from a random start, the recently
        // used ports last.
        let start = rng.random_range(0..self.count);
        let order = (0..self.count).map(|i| (start + i) % self.count);
        let (fresh, used): (Vec<u16>, Vec<u16>) = order.partition(|i| !recent.contains(i));
        for index in fresh.into_iter().chain(used) {
            if let Some(socket) = self.try_bind(index)? {
                Self::remember(&mut recent, avoid, index);
                return Ok(socket);
            }
        }
        Err(PortPoolError::Exhausted {
            ip: self.ip,
            min: self.min,
            max: self.max,
        })
    }

    /// Bind the `index`th port: `None` when it is taken.
    fn try_bind(&self, index: u16) -> Result<Option<UdpSocket>, PortPoolError> {
        let addr = SocketAddr::new(self.ip, self.first + 2 * index);
        match UdpSocket::bind(addr) {
            Ok(socket) => Ok(Some(socket)),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => Ok(None),
            Err(source) => Err(PortPoolError::Bind { addr, source }),
        }
    }

    fn remember(recent: &mut VecDeque<u16>, avoid: usize, index: u16) {
        recent.retain(|&i| i != index);
        recent.push_back(index);
        while recent.len() > avoid {
            recent.pop_front();
        }
    }

    /// Like [`allocate`](Self::allocate), as the tokio socket that
    /// `MediaSession::start` takes. Must be called inside a tokio runtime.
    pub fn bind(&self) -> Result<tokio::net::UdpSocket, PortPoolError> {
        let socket = self.allocate()?;
        let addr = socket
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::new(self.ip, 0));
        socket
            .set_nonblocking(true)
            .and_then(|()| tokio::net::UdpSocket::from_std(socket))
            .map_err(|source| PortPoolError::Bind { addr, source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    /// A range of `ports` RTP ports unlikely to collide with other tests or
    /// processes; tests use distinct `slot`s.
    fn pool(slot: u16, ports: u16) -> PortPool {
        let base = 41_000 + (std::process::id() % 500) as u16 * 40 + slot * 10;
        PortPool::new(LOCALHOST, base, base + 2 * ports - 1).unwrap()
    }

    fn port(s: &UdpSocket) -> u16 {
        s.local_addr().unwrap().port()
    }

    #[test]
    fn range_validation() {
        assert!(PortPool::new(LOCALHOST, 10_000, 10_000).is_err());
        assert!(PortPool::new(LOCALHOST, 10_001, 10_002).is_err());
        assert!(PortPool::new(LOCALHOST, 0, 100).is_err());
        assert_eq!(
            PortPool::new(LOCALHOST, 10_000, 10_001).unwrap().capacity(),
            1
        );
        assert_eq!(
            PortPool::new(LOCALHOST, 10_001, 10_004).unwrap().capacity(),
            1
        );
        assert_eq!(
            PortPool::new(LOCALHOST, 10_000, 20_000).unwrap().capacity(),
            5000
        );
        assert_eq!(
            PortPool::new(LOCALHOST, 10_000, 19_999).unwrap().capacity(),
            5000
        );
    }

    #[test]
    fn allocates_even_ports_until_exhausted() {
        let pool = pool(0, 3);
        let sockets: Vec<_> = (0..3).map(|_| pool.allocate().unwrap()).collect();
        let mut ports: Vec<_> = sockets.iter().map(port).collect();
        ports.sort();
        assert!(ports.iter().all(|p| p % 2 == 0));
        assert_eq!(ports[2] - ports[0], 4);
        assert!(matches!(
            pool.allocate(),
            Err(PortPoolError::Exhausted { .. })
        ));
    }

    #[test]
    fn a_just_freed_port_is_not_reused_at_once() {
        let pool = pool(1, 4);
        // Half the range (2 ports) is avoided after use.
        for _ in 0..20 {
            let a = pool.allocate().unwrap();
            let freed = port(&a);
            drop(a);
            let b = pool.allocate().unwrap();
            assert_ne!(port(&b), freed);
        }
    }

    #[test]
    fn ports_are_not_sequential() {
        // 50 allocations from 1000 ports, each freed at once: a sequential
        // pool gives +2 every time; a random one almost never does.
        let base = 42_000;
        let pool = PortPool::new(LOCALHOST, base, base + 1999).unwrap();
        let ports: Vec<u16> = (0..50).map(|_| port(&pool.allocate().unwrap())).collect();
        let steps_of_two = ports.windows(2).filter(|w| w[1] == w[0] + 2).count();
        assert!(steps_of_two < 5, "{ports:?}");
        let distinct: std::collections::BTreeSet<_> = ports.iter().collect();
        assert!(distinct.len() > 40, "{ports:?}");
    }

    #[test]
    fn skips_ports_bound_elsewhere() {
        let pool = pool(2, 2);
        let first = pool.first;
        let _squatter = UdpSocket::bind((LOCALHOST, first)).unwrap();
        let s = pool.allocate().unwrap();
        assert_eq!(port(&s), first + 2);
        assert!(matches!(
            pool.allocate(),
            Err(PortPoolError::Exhausted { .. })
        ));
    }

    #[test]
    fn a_non_local_address_is_a_bind_error() {
        let pool = PortPool::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 40_000, 40_009).unwrap();
        assert!(matches!(pool.allocate(), Err(PortPoolError::Bind { .. })));
    }

    #[tokio::test]
    async fn tokio_socket() {
        let pool = pool(3, 1);
        let s = pool.bind().unwrap();
        assert_eq!(s.local_addr().unwrap().port() % 2, 0);
    }
}
