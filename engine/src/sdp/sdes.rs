//! SDES (RFC 4568): SRTP keys in the SDP's `a=crypto` lines, and the
//! per-trunk policy on whether a call must, may or must not use them.
//!
//! Sans-IO: text in, a choice out. The key we answer with is passed in
//! (the caller draws it from a CSPRNG), so every outcome is unit-tested.
//!
//! What we take: `AES_CM_128_HMAC_SHA1_80` and `AES_CM_128_HMAC_SHA1_32`
//! with one `inline:` key. What we refuse (that line only; another line of
//! the offer may still do): other suites, several keys, an MKI (it would
//! add a field to every packet that our SRTP library does not read), a
//! lifetime under 2^20 packets (we do not rekey mid-call; 2^20 is 5.8 hours
//! at 20 ms), a key derivation rate other than 0, the `UNENCRYPTED_*`,
//! `UNAUTHENTICATED_SRTP` and `FEC_KEY` session parameters, and unknown
//! session parameters (RFC 4568 §6.3.7; one starting with `-` may be
//! ignored). `WSH` and `FEC_ORDER` only tune what we do anyway: ignored.

use std::fmt::Write as _;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::Deserialize;
use thiserror::Error;
use voxbridge_media::srtp::KEY_SALT_LEN;
use voxbridge_media::{SrtpKey, SrtpSuite};

/// Whether calls use SRTP (config `sip.srtp`, `trunk.srtp`,
/// `registration.accounts[].srtp`).
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SrtpPolicy {
    /// Plain RTP only: an offer of SRTP alone is refused (488).
    Off,
    /// SRTP when the offer carries a key we can use, else plain RTP.
    #[default]
    Optional,
    /// SRTP only: a plain-RTP offer is refused (488).
    Required,
}

impl SrtpPolicy {
    /// The word for config and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            SrtpPolicy::Off => "off",
            SrtpPolicy::Optional => "optional",
            SrtpPolicy::Required => "required",
        }
    }

    /// Parse the config word (for `apply_env`).
    pub fn from_word(word: &str) -> Option<SrtpPolicy> {
        match word {
            "off" => Some(SrtpPolicy::Off),
            "optional" => Some(SrtpPolicy::Optional),
            "required" => Some(SrtpPolicy::Required),
            _ => None,
        }
    }
}

/// One offered `a=crypto` line we can use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CryptoOffer {
    /// Echoed in the answer (RFC 4568 §5.1).
    pub tag: u32,
    pub suite: SrtpSuite,
    /// The offerer's key: what it sends with, so what we receive with.
    pub key: SrtpKey,
}

/// What SDES agreed: the offer's line and the key we answer with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sdes {
    pub tag: u32,
    pub suite: SrtpSuite,
    /// The peer's key (what we unprotect with).
    pub remote: SrtpKey,
    /// Our key (what we protect with), fresh for the call.
    pub local: SrtpKey,
}

impl Sdes {
    /// The SRTP parameters for the media session.
    pub fn media(&self) -> voxbridge_media::SrtpParams {
        voxbridge_media::SrtpParams {
            suite: self.suite,
            send: self.local.clone(),
            receive: self.remote.clone(),
        }
    }

    /// Our `a=crypto` value: the offer's tag and suite, our key, no
    /// lifetime or MKI.
    pub fn answer_value(&self) -> String {
        crypto_value(self.tag, self.suite, &self.local)
    }
}

/// `<tag> <suite> inline:<base64 key||salt>`, the value of `a=crypto:`.
pub fn crypto_value(tag: u32, suite: SrtpSuite, key: &SrtpKey) -> String {
    let mut s = String::with_capacity(80);
    let _ = write!(
        s,
        "{tag} {} inline:{}",
        suite.sdp_name(),
        STANDARD.encode(key.as_bytes())
    );
    s
}

/// Why one `a=crypto` line cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CryptoError {
    #[error("no a=crypto line")]
    Missing,
    #[error("a=crypto line is not `<tag> <suite> <key-params>`")]
    Malformed,
    #[error("a=crypto tag `{0}` is not 1 to 9 digits")]
    BadTag(String),
    #[error("crypto suite {0} is not one we support (AES_CM_128_HMAC_SHA1_80, _32)")]
    UnknownSuite(String),
    #[error("a=crypto key method is not `inline:`")]
    NotInline,
    #[error("a=crypto key is not base64 of 30 bytes (16-byte key, 14-byte salt)")]
    BadKey,
    #[error("a=crypto offers several keys; we take one")]
    SeveralKeys,
    #[error("a=crypto key has an MKI, which we do not support")]
    Mki,
    #[error("a=crypto key lifetime `{0}` is malformed or under 2^20 packets (we do not rekey)")]
    Lifetime(String),
    #[error("a=crypto session parameter `{0}` is one we refuse")]
    SessionParameter(String),
}

/// The least lifetime we accept for a key, in packets.
const MIN_LIFETIME: u64 = 1 << 20;

/// Read one `a=crypto` value (after `a=crypto:`).
pub fn parse_crypto(value: &str) -> Result<CryptoOffer, CryptoError> {
    let mut fields = value.split_ascii_whitespace();
    let (Some(tag), Some(suite), Some(key_params)) = (fields.next(), fields.next(), fields.next())
    else {
        return Err(CryptoError::Malformed);
    };
    if tag.is_empty() || tag.len() > 9 || !tag.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CryptoError::BadTag(tag.to_string()));
    }
    let tag: u32 = tag
        .parse()
        .map_err(|_| CryptoError::BadTag(tag.to_string()))?;
    let suite = SrtpSuite::from_sdp_name(suite)
        .ok_or_else(|| CryptoError::UnknownSuite(suite.to_string()))?;
    if key_params.contains(';') {
        return Err(CryptoError::SeveralKeys);
    }
    let key_info = key_params
        .strip_prefix("inline:")
        .ok_or(CryptoError::NotInline)?;
    let mut parts = key_info.split('|');
    let key = decode_key(parts.next().unwrap_or(""))?;
    for part in parts {
        if part.contains(':') {
            return Err(CryptoError::Mki);
        }
        check_lifetime(part)?;
    }
    for param in fields {
        check_session_parameter(param)?;
    }
    Ok(CryptoOffer { tag, suite, key })
}

fn decode_key(text: &str) -> Result<SrtpKey, CryptoError> {
    // 30 bytes are exactly 40 base64 characters: no padding either way.
    let bytes = STANDARD.decode(text).map_err(|_| CryptoError::BadKey)?;
    let bytes: [u8; KEY_SALT_LEN] = bytes.try_into().map_err(|_| CryptoError::BadKey)?;
    Ok(SrtpKey::from_bytes(bytes))
}

/// `2^20` or `1048576`.
fn check_lifetime(text: &str) -> Result<(), CryptoError> {
    let bad = || CryptoError::Lifetime(text.to_string());
    let packets = match text.strip_prefix("2^") {
        Some(exp) => {
            let exp: u32 = exp.parse().map_err(|_| bad())?;
            if exp >= 64 {
                u64::MAX
            } else {
                1u64 << exp
            }
        }
        None => text.parse::<u64>().map_err(|_| bad())?,
    };
    if packets < MIN_LIFETIME {
        return Err(bad());
    }
    Ok(())
}

fn check_session_parameter(param: &str) -> Result<(), CryptoError> {
    let refuse = || Err(CryptoError::SessionParameter(param.to_string()));
    let (name, value) = param.split_once('=').unwrap_or((param, ""));
    match name {
        "WSH" | "FEC_ORDER" => Ok(()),
        "KDR" if value == "0" => Ok(()),
        _ if name.starts_with('-') => Ok(()),
        _ => refuse(),
    }
}

/// The first offered line we can use (the offerer lists its preference
/// first, RFC 4568 §7.1.1), or why none: the first line's reason.
pub fn choose(lines: &[String]) -> Result<CryptoOffer, CryptoError> {
    let mut first_error = None;
    for line in lines {
        match parse_crypto(line) {
            Ok(offer) => return Ok(offer),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.unwrap_or(CryptoError::Missing))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 30 bytes 0..29 in base64.
    const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd";

    fn key_bytes() -> [u8; 30] {
        std::array::from_fn(|i| i as u8)
    }

    #[test]
    fn reads_the_lines_real_phones_send() {
        let o = parse_crypto(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}")).unwrap();
        assert_eq!(o.tag, 1);
        assert_eq!(o.suite, SrtpSuite::AesCm128HmacSha1_80);
        assert_eq!(o.key.as_bytes(), &key_bytes());
        // baresip, Asterisk: a lifetime; session parameters we may ignore.
        let o = parse_crypto(&format!("2 AES_CM_128_HMAC_SHA1_32 inline:{KEY}|2^31")).unwrap();
        assert_eq!((o.tag, o.suite), (2, SrtpSuite::AesCm128HmacSha1_32));
        parse_crypto(&format!(
            "3 aes_cm_128_hmac_sha1_80 inline:{KEY}|2147483648 WSH=64 KDR=0 -X_VENDOR"
        ))
        .unwrap();
    }

    #[test]
    fn refuses_what_we_cannot_honour() {
        let cases = [
            ("", CryptoError::Malformed),
            ("1 AES_CM_128_HMAC_SHA1_80", CryptoError::Malformed),
            (
                "x AES_CM_128_HMAC_SHA1_80 inline:K",
                CryptoError::BadTag("x".into()),
            ),
            (
                "1234567890 AES_CM_128_HMAC_SHA1_80 inline:K",
                CryptoError::BadTag("1234567890".into()),
            ),
            (
                "1 AES_256_CM_HMAC_SHA1_80 inline:K",
                CryptoError::UnknownSuite("AES_256_CM_HMAC_SHA1_80".into()),
            ),
            (
                "1 AES_CM_128_HMAC_SHA1_80 uri:http://x",
                CryptoError::NotInline,
            ),
            ("1 AES_CM_128_HMAC_SHA1_80 inline:!!!!", CryptoError::BadKey),
            // 16 bytes: a key without its salt.
            (
                "1 AES_CM_128_HMAC_SHA1_80 inline:AAECAwQFBgcICQoLDA0ODw==",
                CryptoError::BadKey,
            ),
        ];
        for (line, want) in cases {
            assert_eq!(parse_crypto(line), Err(want), "{line}");
        }
        let with =
            |rest: &str| parse_crypto(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}{rest}"));
        assert_eq!(with("|2^20|1:4"), Err(CryptoError::Mki));
        assert_eq!(with("|1:4"), Err(CryptoError::Mki));
        assert_eq!(
            with(&format!(";inline:{KEY}")),
            Err(CryptoError::SeveralKeys)
        );
        assert_eq!(with("|2^10"), Err(CryptoError::Lifetime("2^10".into())));
        assert_eq!(with("|1000"), Err(CryptoError::Lifetime("1000".into())));
        assert_eq!(with("|2^x"), Err(CryptoError::Lifetime("2^x".into())));
        assert!(with("|2^20").is_ok());
        assert!(with("|2^99").is_ok());
        for param in [
            "UNENCRYPTED_SRTP",
            "UNENCRYPTED_SRTCP",
            "UNAUTHENTICATED_SRTP",
            "KDR=24",
            "FEC_KEY=inline:x",
            "NEW_THING",
        ] {
            assert_eq!(
                with(&format!(" {param}")),
                Err(CryptoError::SessionParameter(param.into())),
                "{param}"
            );
        }
    }

    #[test]
    fn choice_takes_the_first_usable_line() {
        let lines = vec![
            format!("1 AES_256_CM_HMAC_SHA1_80 inline:{KEY}"),
            format!("2 AES_CM_128_HMAC_SHA1_32 inline:{KEY}"),
            format!("3 AES_CM_128_HMAC_SHA1_80 inline:{KEY}"),
        ];
        let o = choose(&lines).unwrap();
        assert_eq!((o.tag, o.suite), (2, SrtpSuite::AesCm128HmacSha1_32));
        assert_eq!(
            choose(&lines[..1]),
            Err(CryptoError::UnknownSuite("AES_256_CM_HMAC_SHA1_80".into()))
        );
        assert_eq!(choose(&[]), Err(CryptoError::Missing));
    }

    #[test]
    fn answer_line_round_trips_and_policy_words() {
        let sdes = Sdes {
            tag: 7,
            suite: SrtpSuite::AesCm128HmacSha1_32,
            remote: SrtpKey::from_bytes([1; 30]),
            local: SrtpKey::from_bytes(key_bytes()),
        };
        let value = sdes.answer_value();
        assert_eq!(value, format!("7 AES_CM_128_HMAC_SHA1_32 inline:{KEY}"));
        let back = parse_crypto(&value).unwrap();
        assert_eq!(back.key, sdes.local);
        let media = sdes.media();
        assert_eq!((media.send, media.receive), (sdes.local, sdes.remote));
        for p in [SrtpPolicy::Off, SrtpPolicy::Optional, SrtpPolicy::Required] {
            assert_eq!(SrtpPolicy::from_word(p.as_str()), Some(p));
        }
        assert_eq!(SrtpPolicy::from_word("on"), None);
    }

    proptest::proptest! {
        #[test]
        fn random_crypto_lines_never_panic(line in "[ -~]{0,120}") {
            let _ = parse_crypto(&line);
        }
    }
}
