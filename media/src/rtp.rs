//! RTP packets (RFC 3550): a borrowed view of a received packet, and a writer
//! for the fixed 12-byte header we send.
//!
//! Parsing goes through `rtp-rs`, which checks the CSRC list, the extension
//! and the padding against the buffer length; we only turn its errors into
//! ours and reject RTCP that arrives on the RTP port. Nothing here panics on
//! any byte string: this is the first code that touches network input.

use thiserror::Error;

/// Length of the RTP header we write: no CSRCs, no extension.
pub const RTP_HEADER_LEN: usize = 12;

/// Why a datagram is not a usable RTP packet.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RtpError {
    /// Shorter than the fixed header.
    #[error("datagram of {len} bytes is shorter than the 12-byte RTP header")]
    TooShort {
        /// Datagram length.
        len: usize,
    },
    /// The version bits are not 2.
    #[error("RTP version {0}, expected 2")]
    BadVersion(u8),
    /// An RTCP packet (RFC 5761 demultiplexing range), not RTP.
    #[error("RTCP packet type {0} on the RTP port")]
    Rtcp(u8),
    /// The CSRC list or header extension runs past the end of the datagram.
    #[error("RTP header needs {needed} bytes, datagram has {len}")]
    Truncated {
        /// Header length announced by the packet.
        needed: usize,
        /// Datagram length.
        len: usize,
    },
    /// The padding count is zero or longer than what follows the header.
    #[error("invalid RTP padding length {0}")]
    BadPadding(u8),
}

/// The fields of a received RTP packet that the media session uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPacketView<'a> {
    /// Payload type (7 bits).
    pub payload_type: u8,
    /// Marker bit.
    pub marker: bool,
    /// Sequence number.
    pub seq: u16,
    /// Media timestamp.
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: u32,
    /// The payload, without CSRCs, extension or padding.
    pub payload: &'a [u8],
}

impl<'a> RtpPacketView<'a> {
    /// Parse a datagram.
    pub fn parse(buf: &'a [u8]) -> Result<Self, RtpError> {
        if buf.len() < RTP_HEADER_LEN {
            return Err(RtpError::TooShort { len: buf.len() });
        }
        // RFC 5761 §4: second byte 192..=223 is RTCP (SR, RR, SDES, BYE, APP…).
        if (192..=223).contains(&buf[1]) && buf[0] >> 6 == 2 {
            return Err(RtpError::Rtcp(buf[1]));
        }
        let reader = rtp_rs::RtpReader::new(buf).map_err(|e| match e {
            rtp_rs::RtpReaderError::BufferTooShort(len) => RtpError::TooShort { len },
            rtp_rs::RtpReaderError::UnsupportedVersion(v) => RtpError::BadVersion(v),
            rtp_rs::RtpReaderError::HeadersTruncated {
                header_len,
                buffer_len,
            } => RtpError::Truncated {
                needed: header_len,
                len: buffer_len,
            },
            rtp_rs::RtpReaderError::PaddingLengthInvalid(p) => RtpError::BadPadding(p),
        })?;
        Ok(RtpPacketView {
            payload_type: reader.payload_type(),
            marker: reader.mark(),
            seq: reader.sequence_number().into(),
            timestamp: reader.timestamp(),
            ssrc: reader.ssrc(),
            payload: reader.payload(),
        })
    }
}

/// The header of a packet we send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader {
    /// Payload type; only the low 7 bits are written.
    pub payload_type: u8,
    /// Marker bit.
    pub marker: bool,
    /// Sequence number.
    pub seq: u16,
    /// Media timestamp.
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: u32,
}

impl RtpHeader {
    /// Clear `out` and write the 12-byte header into it, so the caller can
    /// append the payload in place (e.g. encode G.711 straight into it).
    ///
    /// Written by hand rather than with `rtp_rs::RtpPacketBuilder`: the
    /// builder wants a pre-sized slice and returns a `Result` for options we
    /// never use, and this runs 50 times a second per call.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.clear();
        out.push(0x80); // V=2, no padding, no extension, no CSRC
        out.push((u8::from(self.marker) << 7) | (self.payload_type & 0x7F));
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.ssrc.to_be_bytes());
    }

    /// Clear `out` and write a whole packet: header then `payload`.
    pub fn write_packet(&self, payload: &[u8], out: &mut Vec<u8>) {
        out.reserve(RTP_HEADER_LEN + payload.len());
        self.write(out);
        out.extend_from_slice(payload);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn header() -> RtpHeader {
        RtpHeader {
            payload_type: 8,
            marker: true,
            seq: 0xBEEF,
            timestamp: 0xDEAD_BEEF,
            ssrc: 0x1234_5678,
        }
    }

    #[test]
    fn writes_the_expected_bytes() {
        let mut out = vec![1, 2, 3];
        header().write_packet(&[9, 9], &mut out);
        assert_eq!(
            out,
            [0x80, 0x88, 0xBE, 0xEF, 0xDE, 0xAD, 0xBE, 0xEF, 0x12, 0x34, 0x56, 0x78, 9, 9]
        );
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(
            RtpPacketView::parse(&[0x80; 5]),
            Err(RtpError::TooShort { len: 5 })
        );
        let mut p = vec![0x40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(RtpPacketView::parse(&p), Err(RtpError::BadVersion(1)));
        // Two CSRCs announced, none present.
        p[0] = 0x82;
        assert!(matches!(
            RtpPacketView::parse(&p),
            Err(RtpError::Truncated { needed: 20, .. })
        ));
        // Padding of 200 bytes in a 13-byte packet.
        let mut padded = vec![0xA0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 200];
        assert_eq!(
            RtpPacketView::parse(&padded),
            Err(RtpError::BadPadding(200))
        );
        padded[12] = 0;
        assert_eq!(RtpPacketView::parse(&padded), Err(RtpError::BadPadding(0)));
        // An RTCP receiver report.
        let rr = [0x81, 201, 0, 7, 0, 0, 0, 1, 0, 0, 0, 0];
        assert_eq!(RtpPacketView::parse(&rr), Err(RtpError::Rtcp(201)));
    }

    #[test]
    fn strips_csrc_extension_and_padding() {
        let mut p = vec![0xB1, 0x00, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
        p.extend_from_slice(&[0, 0, 0, 4]); // one CSRC
        p.extend_from_slice(&[0xBE, 0xDE, 0, 1, 1, 2, 3, 4]); // extension, 1 word
        p.extend_from_slice(&[0xAA, 0xBB]); // payload
        p.extend_from_slice(&[0, 0, 3]); // 3 bytes of padding
        let v = RtpPacketView::parse(&p).unwrap();
        assert_eq!(v.payload, &[0xAA, 0xBB]);
        assert_eq!((v.seq, v.timestamp, v.ssrc), (1, 2, 3));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = RtpPacketView::parse(&bytes);
        }

        #[test]
        fn version_2_headers_with_random_flags_never_panic(
            flags in 0u8..64,
            rest in proptest::collection::vec(any::<u8>(), 0..120),
        ) {
            // V=2 with random P, X and CC bits: exercises the CSRC,
            // extension and padding length checks far more than raw bytes.
            let mut bytes = vec![0x80 | flags];
            bytes.extend_from_slice(&rest);
            if let Ok(v) = RtpPacketView::parse(&bytes) {
                prop_assert!(v.payload.len() + RTP_HEADER_LEN <= bytes.len());
            }
        }

        #[test]
        fn build_then_parse_round_trips(
            pt in 0u8..128,
            marker: bool,
            seq: u16,
            timestamp: u32,
            ssrc: u32,
            payload in proptest::collection::vec(any::<u8>(), 0..480),
        ) {
            prop_assume!(!(marker && (64..=95).contains(&pt)));
            let h = RtpHeader { payload_type: pt, marker, seq, timestamp, ssrc };
            let mut out = Vec::new();
            h.write_packet(&payload, &mut out);
            let v = RtpPacketView::parse(&out).unwrap();
            prop_assert_eq!(v.payload_type, pt);
            prop_assert_eq!(v.marker, marker);
            prop_assert_eq!(v.seq, seq);
            prop_assert_eq!(v.timestamp, timestamp);
            prop_assert_eq!(v.ssrc, ssrc);
            prop_assert_eq!(v.payload, &payload[..]);
        }
    }

    /// The fuzz harness: real packets (G.711 of 20 and 30 ms, CSRCs, a
    /// header extension, padding, RFC 4733 events, RTCP) damaged by
    /// `voxbridge_mutations`. Properties: nothing panics, and what parses
    /// agrees with the bytes (fields from the fixed header, a payload
    /// inside the packet after header, CSRCs and extension).
    mod fuzz {
        use proptest::prelude::*;
        use voxbridge_mutations::mutated;

        use super::super::{RtpError, RtpHeader, RtpPacketView, RTP_HEADER_LEN};

        fn seeds() -> Vec<Vec<u8>> {
            let mut out = Vec::new();
            for (pt, len) in [(0u8, 160usize), (8, 240), (101, 4)] {
                let h = RtpHeader {
                    payload_type: pt,
                    marker: pt == 101,
                    seq: 65535,
                    timestamp: 160,
                    ssrc: 7,
                };
                let mut p = Vec::new();
                h.write_packet(&vec![0xD5; len], &mut p);
                out.push(p);
            }
            // One CSRC, a one-word extension, 3 bytes of padding.
            let mut p = vec![0xB1, 0x00, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4];
            p.extend_from_slice(&[0xBE, 0xDE, 0, 1, 1, 2, 3, 4, 0xAA, 0xBB, 0, 0, 3]);
            out.push(p);
            // RTCP sender report.
            out.push(vec![
                0x80, 200, 0, 6, 0, 0, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 9, 0, 0, 0, 1, 0, 0,
                0, 2,
            ]);
            out
        }

        proptest! {
            #[test]
            fn fuzz_rtp_packets(bytes in mutated(seeds(), 4)) {
                match RtpPacketView::parse(&bytes) {
                    Ok(v) => {
                        prop_assert_eq!(bytes[0] >> 6, 2);
                        prop_assert_eq!(v.payload_type, bytes[1] & 0x7F);
                        prop_assert_eq!(v.marker, bytes[1] & 0x80 != 0);
                        prop_assert_eq!(v.seq, u16::from_be_bytes([bytes[2], bytes[3]]));
                        prop_assert_eq!(v.ssrc, u32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]));
                        let csrcs = usize::from(bytes[0] & 0x0F) * 4;
                        prop_assert!(RTP_HEADER_LEN + csrcs + v.payload.len() <= bytes.len());
                        // The payload is a slice of the packet.
                        let start = v.payload.as_ptr() as usize - bytes.as_ptr() as usize;
                        prop_assert!(start >= RTP_HEADER_LEN + csrcs);
                        prop_assert!(start + v.payload.len() <= bytes.len());
                    }
                    Err(RtpError::Rtcp(pt)) => prop_assert!((192..=223).contains(&pt)),
                    Err(_) => {}
                }
            }
        }
    }
}
