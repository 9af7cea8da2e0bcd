//! Checks on the browser's complete offer (posted after ICE gathering) before
//! it is handed to the peer connection, so a bad offer gets a clear 400
//! instead of a half-built call. Sans-IO: text in, verdict out.

use std::net::IpAddr;

/// Audio codecs a browser call can use; PCMU first because every browser
/// offers it and the recognisers already take 8 kHz.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Pcmu,
    Pcma,
}

/// What the offer says, as far as the bot needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrowserOffer {
    pub codec: Codec,
    /// Host candidates the bot may use: loopback or the configured address.
    pub candidates: Vec<IpAddr>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OfferError {
    #[error("the offer has no audio section")]
    NoAudio,
    #[error("the offer's audio is not DTLS-SRTP (UDP/TLS/RTP/SAVPF)")]
    NotDtlsSrtp,
    #[error("the offer has no DTLS fingerprint")]
    NoFingerprint,
    #[error("the offer has no ICE credentials")]
    NoIceCredentials,
    #[error("the offer has neither PCMU nor PCMA")]
    NoCommonCodec,
    #[error("the offer has no usable host candidate (loopback or {0})")]
    NoUsableCandidate(String),
}

/// Checks `sdp` and keeps the host candidates on loopback or `allowed`.
/// Candidates of other types (srflx, relay) are dropped: no STUN/TURN here.
pub fn inspect(sdp: &str, allowed: Option<IpAddr>) -> Result<BrowserOffer, OfferError> {
    let mut audio = false;
    let mut dtls = false;
    let mut fingerprint = false;
    let mut ufrag = false;
    let mut pwd = false;
    let mut pcmu = false;
    let mut pcma = false;
    let mut candidates = Vec::new();
    for line in sdp.lines().map(str::trim) {
        if let Some(m) = line.strip_prefix("m=audio ") {
            audio = true;
            let mut fields = m.split_whitespace();
            let _port = fields.next();
            dtls = fields.next() == Some("UDP/TLS/RTP/SAVPF");
            for pt in fields {
                // Static payload types: 0 is PCMU, 8 is PCMA (RFC 3551).
                pcmu |= pt == "0";
                pcma |= pt == "8";
            }
        } else if line.starts_with("a=fingerprint:") {
            fingerprint = true;
        } else if line.starts_with("a=ice-ufrag:") {
            ufrag = true;
        } else if line.starts_with("a=ice-pwd:") {
            pwd = true;
        } else if let Some(c) = line.strip_prefix("a=candidate:") {
            if let Some(ip) = host_candidate(c) {
                if ip.is_loopback() || Some(ip) == allowed {
                    candidates.push(ip);
                }
            }
        }
    }
    if !audio {
        return Err(OfferError::NoAudio);
    }
    if !dtls {
        return Err(OfferError::NotDtlsSrtp);
    }
    if !fingerprint {
        return Err(OfferError::NoFingerprint);
    }
    if !(ufrag && pwd) {
        return Err(OfferError::NoIceCredentials);
    }
    let codec = match (pcmu, pcma) {
        (true, _) => Codec::Pcmu,
        (false, true) => Codec::Pcma,
        _ => return Err(OfferError::NoCommonCodec),
    };
    if candidates.is_empty() {
        let shown = allowed.map_or_else(|| "no configured address".to_string(), |a| a.to_string());
        return Err(OfferError::NoUsableCandidate(shown));
    }
    Ok(BrowserOffer { codec, candidates })
}

/// `foundation component transport priority address port typ TYPE ...`
/// (RFC 8839); the address of a UDP host candidate, else None. Browsers
/// may hide addresses behind mDNS names, which do not parse and are dropped.
fn host_candidate(c: &str) -> Option<IpAddr> {
    let f: Vec<&str> = c.split_whitespace().collect();
    if f.len() < 8 || !f[2].eq_ignore_ascii_case("udp") || f[6] != "typ" || f[7] != "host" {
        return None;
    }
    f[4].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 111 0 8\r\n\
        a=ice-ufrag:abcd\r\na=ice-pwd:0123456789abcdef012345\r\n\
        a=fingerprint:sha-256 AA:BB\r\na=setup:actpass\r\n\
        a=candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host generation 0\r\n\
        a=candidate:2 1 udp 2122260223 10.0.0.5 50001 typ host\r\n\
        a=candidate:3 1 udp 1686052607 203.0.113.9 50002 typ srflx raddr 10.0.0.5 rport 50001\r\n\
        a=candidate:4 1 udp 2122260223 abc.local 50003 typ host\r\n";

    #[test]
    fn keeps_loopback_and_the_configured_address_only() {
        let o = inspect(OFFER, Some("10.0.0.5".parse().unwrap())).unwrap();
        assert_eq!(o.codec, Codec::Pcmu);
        assert_eq!(
            o.candidates,
            vec![
                "127.0.0.1".parse::<IpAddr>().unwrap(),
                "10.0.0.5".parse().unwrap()
            ]
        );
        let o = inspect(OFFER, None).unwrap();
        assert_eq!(o.candidates, vec!["127.0.0.1".parse::<IpAddr>().unwrap()]);
    }

    #[test]
    fn pcma_when_pcmu_is_missing() {
        let sdp = OFFER.replace("111 0 8", "111 8");
        assert_eq!(inspect(&sdp, None).unwrap().codec, Codec::Pcma);
        let sdp = OFFER.replace("111 0 8", "111");
        assert_eq!(inspect(&sdp, None), Err(OfferError::NoCommonCodec));
    }

    #[test]
    fn refuses_what_is_not_dtls_srtp_or_lacks_credentials() {
        assert_eq!(
            inspect(&OFFER.replace("UDP/TLS/RTP/SAVPF", "RTP/AVP"), None),
            Err(OfferError::NotDtlsSrtp)
        );
        assert_eq!(
            inspect(&OFFER.replace("a=fingerprint", "a=x"), None),
            Err(OfferError::NoFingerprint)
        );
        assert_eq!(
            inspect(&OFFER.replace("a=ice-pwd", "a=x"), None),
            Err(OfferError::NoIceCredentials)
        );
        assert_eq!(
            inspect(&OFFER.replace("m=audio", "m=video"), None),
            Err(OfferError::NoAudio)
        );
        assert_eq!(inspect("garbage\u{0}\n\n", None), Err(OfferError::NoAudio));
    }

    #[test]
    fn no_usable_candidate_is_an_error() {
        let sdp = OFFER.replace("127.0.0.1 50000", "192.0.2.1 50000");
        assert!(matches!(
            inspect(&sdp, None),
            Err(OfferError::NoUsableCandidate(_))
        ));
    }
}
