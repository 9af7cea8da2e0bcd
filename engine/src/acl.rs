//! Source-address allowlists for trunk mode: who may send us INVITEs.

use std::net::IpAddr;

/// One allowlist entry: an address with a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// `192.0.2.1`, `192.0.2.0/24`, `2001:db8::/32`.
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let (addr, prefix) = match text.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text.trim(), None),
        };
        let network: IpAddr = addr
            .parse()
            .map_err(|_| format!("`{addr}` is not an IP address"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("prefix `/{p}` is not 0..={max}"))?,
            None => max,
        };
        Ok(Cidr { network, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - self.prefix as u32).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - self.prefix as u32).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// An IPv4 peer seen on a dual-stack socket arrives as `::ffff:a.b.c.d`.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// A list of entries; empty means "allow everyone".
#[derive(Debug, Clone, Default)]
pub struct Allowlist {
    entries: Vec<Cidr>,
}

impl Allowlist {
    pub fn parse(entries: &[String]) -> Result<Allowlist, String> {
        Ok(Allowlist {
            entries: entries
                .iter()
                .map(|e| Cidr::parse(e))
                .collect::<Result<_, _>>()?,
        })
    }

    pub fn is_open(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn allows(&self, ip: IpAddr) -> bool {
        self.is_open() || self.entries.iter().any(|c| c.contains(ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cidrs_match() {
        let c = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(c.contains(ip("10.1.200.3")));
        assert!(!c.contains(ip("10.2.0.1")));
        assert!(Cidr::parse("127.0.0.1").unwrap().contains(ip("127.0.0.1")));
        assert!(!Cidr::parse("127.0.0.1").unwrap().contains(ip("127.0.0.2")));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        assert!(Cidr::parse("2001:db8::/32")
            .unwrap()
            .contains(ip("2001:db8:1::5")));
        assert!(Cidr::parse("127.0.0.1")
            .unwrap()
            .contains(ip("::ffff:127.0.0.1")));
        assert!(!Cidr::parse("::1").unwrap().contains(ip("127.0.0.1")));
    }

    #[test]
    fn bad_entries_are_refused() {
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("pbx.example").is_err());
        assert!(Cidr::parse("::/129").is_err());
    }

    #[test]
    fn empty_list_allows_all() {
        let open = Allowlist::parse(&[]).unwrap();
        assert!(open.allows(ip("192.0.2.1")));
        let closed = Allowlist::parse(&["127.0.0.1".into()]).unwrap();
        assert!(closed.allows(ip("127.0.0.1")));
        assert!(!closed.allows(ip("127.0.0.2")));
    }
}
