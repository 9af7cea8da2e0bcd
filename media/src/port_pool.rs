//! RTP port allocation from the configured range.
//!
//! RTP uses even ports (RFC 3550 §11: RTCP, if any, is on port + 1, which we
//! leave unbound but inside the range). The pool hands ports out round-robin,
//! so a port freed by a call that just ended is not given to the next call
//! while stray packets for the old call may still be in flight. Whether a
//! port is free is decided by the OS: we try to bind and move on when it is
//! in use, so a port held by another process (or a socket still owned by a
//! call) is skipped without the pool having to track releases.

use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::Mutex;

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
    /// Index (0..count) of the port to try first next time.
    cursor: Mutex<u16>,
}

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
            cursor: Mutex::new(0),
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

    /// Bind a socket on the next free even port.
    pub fn allocate(&self) -> Result<UdpSocket, PortPoolError> {
        // Holding the lock while binding keeps two callers from racing for
        // the same port; a bind is a few microseconds.
        let mut cursor = self.cursor.lock().unwrap_or_else(|e| e.into_inner());
        for i in 0..self.count {
            let index = (*cursor + i) % self.count;
            let port = self.first + 2 * index;
            let addr = SocketAddr::new(self.ip, port);
            match UdpSocket::bind(addr) {
                Ok(socket) => {
                    *cursor = (index + 1) % self.count;
                    return Ok(socket);
                }
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => continue,
                Err(source) => return Err(PortPoolError::Bind { addr, source }),
            }
        }
        Err(PortPoolError::Exhausted {
            ip: self.ip,
            min: self.min,
            max: self.max,
        })
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
    fn round_robin_does_not_reuse_a_just_freed_port() {
        let pool = pool(1, 3);
        let a = pool.allocate().unwrap();
        let freed = port(&a);
        drop(a);
        let b = pool.allocate().unwrap();
        assert_ne!(port(&b), freed);
        let c = pool.allocate().unwrap();
        assert_ne!(port(&c), freed);
        // Only now does the cursor come back round.
        assert_eq!(port(&pool.allocate().unwrap()), freed);
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
