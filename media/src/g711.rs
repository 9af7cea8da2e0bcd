//! G.711 μ-law and A-law companding between 16-bit linear PCM and the one byte
//! per sample that goes on the wire.
//!
//! Encoding uses the classic segment search of the Sun reference `g711.c`
//! (μ-law on the 16-bit value with its 0x84 bias, A-law on the top 13 bits).
//! Decoding is a lookup in 256-entry
//! tables built at compile time from the same reference formulas, so the
//! receive path of 500 calls is a few table reads per sample.

use crate::Codec;

/// Upper bound of each of the 8 segments of the biased 16-bit μ-law magnitude.
const SEG_END: [i32; 8] = [
    0x00FF, 0x01FF, 0x03FF, 0x07FF, 0x0FFF, 0x1FFF, 0x3FFF, 0x7FFF,
];

/// μ-law adds this bias so every segment has the same shape.
const ULAW_BIAS: i32 = 0x84;

const QUANT_MASK: u8 = 0x0F;
const SEG_MASK: u8 = 0x70;
const SIGN_BIT: u8 = 0x80;

/// Segment number of a magnitude, 8 when it is beyond the last segment.
fn segment(magnitude: i32) -> i32 {
    // 8 comparisons at most; a leading-zeros trick would save little here.
    let mut seg = 0;
    while seg < SEG_END.len() && magnitude > SEG_END[seg] {
        seg += 1;
    }
    seg as i32
}

/// Encode one linear sample to μ-law.
pub fn linear_to_ulaw(pcm: i16) -> u8 {
    let pcm = i32::from(pcm);
    let (magnitude, mask) = if pcm < 0 {
        (ULAW_BIAS - pcm, 0x7F)
    } else {
        (pcm + ULAW_BIAS, 0xFF)
    };
    let seg = segment(magnitude);
    if seg >= 8 {
        // Clip to the largest code of that sign.
        return 0x7F ^ mask;
    }
    let code = (seg << 4) | ((magnitude >> (seg + 3)) & 0x0F);
    (code as u8) ^ mask
}

/// Segment ends of the 13-bit A-law magnitude.
const ALAW_SEG_END: [i32; 8] = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF];

/// Encode one linear sample to A-law.
pub fn linear_to_alaw(pcm: i16) -> u8 {
    // A-law works on 13 bits. (Sun's older 16-bit variant, `-pcm - 8`, maps
    // -1..-7 to a negative magnitude and so to the wrong code.)
    let pcm = i32::from(pcm) >> 3;
    let (magnitude, mask) = if pcm >= 0 {
        (pcm, 0xD5)
    } else {
        // One's complement: A-law has no zero code, -1 maps next to +0.
        (-pcm - 1, 0x55)
    };
    let seg = ALAW_SEG_END
        .iter()
        .position(|&end| magnitude <= end)
        .unwrap_or(8) as i32;
    if seg >= 8 {
        return 0x7F ^ mask;
    }
    let quant = if seg < 2 {
        (magnitude >> 1) & 0x0F
    } else {
        (magnitude >> seg) & 0x0F
    };
    ((seg << 4) as u8 | quant as u8) ^ mask
}

const fn ulaw_decode(code: u8) -> i16 {
    let u = !code;
    let mut t = (((u & QUANT_MASK) as i32) << 3) + ULAW_BIAS;
    t <<= ((u & SEG_MASK) >> 4) as i32;
    let v = if u & SIGN_BIT != 0 {
        ULAW_BIAS - t
    } else {
        t - ULAW_BIAS
    };
    v as i16
}

const fn alaw_decode(code: u8) -> i16 {
    let a = code ^ 0x55;
    let mut t = ((a & QUANT_MASK) as i32) << 4;
    let seg = ((a & SEG_MASK) >> 4) as i32;
    match seg {
        0 => t += 8,
        1 => t += 0x108,
        _ => {
            t += 0x108;
            t <<= seg - 1;
        }
    }
    let v = if a & SIGN_BIT != 0 { t } else { -t };
    v as i16
}

static ULAW_TO_LINEAR: [i16; 256] = build_ulaw_table();
static ALAW_TO_LINEAR: [i16; 256] = build_alaw_table();

const fn build_ulaw_table() -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = ulaw_decode(i as u8);
        i += 1;
    }
    table
}

const fn build_alaw_table() -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = alaw_decode(i as u8);
        i += 1;
    }
    table
}

/// Decode one μ-law code to linear PCM.
pub fn ulaw_to_linear(code: u8) -> i16 {
    ULAW_TO_LINEAR[usize::from(code)]
}

/// Decode one A-law code to linear PCM.
pub fn alaw_to_linear(code: u8) -> i16 {
    ALAW_TO_LINEAR[usize::from(code)]
}

/// Encode one sample with `codec`.
pub fn encode_sample(codec: Codec, pcm: i16) -> u8 {
    match codec {
        Codec::Pcmu => linear_to_ulaw(pcm),
        Codec::Pcma => linear_to_alaw(pcm),
    }
}

/// Decode one sample with `codec`.
pub fn decode_sample(codec: Codec, code: u8) -> i16 {
    match codec {
        Codec::Pcmu => ulaw_to_linear(code),
        Codec::Pcma => alaw_to_linear(code),
    }
}

/// Encode `pcm`, appending one byte per sample to `out` (which is not
/// cleared, so an RTP header can already be in it).
pub fn encode(codec: Codec, pcm: &[i16], out: &mut Vec<u8>) {
    out.reserve(pcm.len());
    match codec {
        Codec::Pcmu => out.extend(pcm.iter().map(|&s| linear_to_ulaw(s))),
        Codec::Pcma => out.extend(pcm.iter().map(|&s| linear_to_alaw(s))),
    }
}

/// Decode `codes`, appending one sample per byte to `out` (not cleared).
pub fn decode(codec: Codec, codes: &[u8], out: &mut Vec<i16>) {
    let table = match codec {
        Codec::Pcmu => &ULAW_TO_LINEAR,
        Codec::Pcma => &ALAW_TO_LINEAR,
    };
    out.reserve(codes.len());
    out.extend(codes.iter().map(|&c| table[usize::from(c)]));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulaw_reference_values() {
        // Sun g711.c ulaw2linear (ITU G.711 table 2a values × 4).
        let pairs: &[(u8, i16)] = &[
            (0x00, -32124),
            (0x0F, -16764),
            (0x10, -15996),
            (0x1F, -8316),
            (0x70, -120),
            (0x7E, -8),
            (0x7F, 0),
            (0x80, 32124),
            (0x8F, 16764),
            (0xEF, 132),
            (0xF0, 120),
            (0xFE, 8),
            (0xFF, 0),
        ];
        for &(code, linear) in pairs {
            assert_eq!(ulaw_to_linear(code), linear, "μ-law code {code:#04x}");
        }
    }

    #[test]
    fn alaw_reference_values() {
        // Sun g711.c alaw2linear (ITU G.711 table 1a values × 8).
        let pairs: &[(u8, i16)] = &[
            (0xD5, 8),
            (0x55, -8),
            (0xD4, 24),
            (0xDA, 248),
            (0xC5, 264),
            (0xAA, 32256),
            (0x2A, -32256),
            (0x80, 5504),
            (0x00, -5504),
            (0xFF, 848),
        ];
        for &(code, linear) in pairs {
            assert_eq!(alaw_to_linear(code), linear, "A-law code {code:#04x}");
        }
    }

    #[test]
    fn encoder_reference_values() {
        assert_eq!(linear_to_ulaw(0), 0xFF);
        assert_eq!(linear_to_ulaw(-1), 0x7F);
        assert_eq!(linear_to_ulaw(i16::MAX), 0x80);
        assert_eq!(linear_to_ulaw(i16::MIN), 0x00);
        assert_eq!(linear_to_alaw(0), 0xD5);
        assert_eq!(linear_to_alaw(-1), 0x55);
        assert_eq!(linear_to_alaw(i16::MAX), 0xAA);
        assert_eq!(linear_to_alaw(i16::MIN), 0x2A);
        assert_eq!(Codec::Pcmu.silence_byte(), linear_to_ulaw(0));
        assert_eq!(Codec::Pcma.silence_byte(), linear_to_alaw(0));
    }

    #[test]
    fn ulaw_round_trips_every_code() {
        for code in 0..=255u8 {
            let back = linear_to_ulaw(ulaw_to_linear(code));
            if code == 0x7F {
                // Negative zero decodes to 0, which encodes as positive zero.
                assert_eq!(back, 0xFF);
            } else {
                assert_eq!(back, code, "μ-law code {code:#04x}");
            }
        }
    }

    #[test]
    fn alaw_round_trips_every_code() {
        for code in 0..=255u8 {
            assert_eq!(
                linear_to_alaw(alaw_to_linear(code)),
                code,
                "A-law {code:#04x}"
            );
        }
    }

    #[test]
    fn companding_is_monotonic_over_the_whole_range() {
        for codec in [Codec::Pcmu, Codec::Pcma] {
            let mut prev = i16::MIN;
            for x in i16::MIN..=i16::MAX {
                let y = decode_sample(codec, encode_sample(codec, x));
                assert!(y >= prev, "{codec:?}: {x} → {y} after {prev}");
                prev = y;
            }
        }
    }

    #[test]
    fn quantisation_error_is_bounded_by_the_segment_step() {
        for codec in [Codec::Pcmu, Codec::Pcma] {
            for x in i16::MIN..=i16::MAX {
                let y = decode_sample(codec, encode_sample(codec, x));
                let err = (i32::from(x) - i32::from(y)).abs();
                // Largest step is 1024 (μ-law) / 1024 (A-law) in the top segment,
                // plus clipping at the extremes (~650).
                let bound = (i32::from(x).abs() / 16).max(16) + 700;
                assert!(err <= bound, "{codec:?}: {x} → {y}");
            }
        }
    }

    #[test]
    fn slice_helpers_append() {
        let pcm = [0i16, 1000, -1000, 32000];
        let mut bytes = vec![0xAB];
        encode(Codec::Pcmu, &pcm, &mut bytes);
        assert_eq!(bytes.len(), 5);
        assert_eq!(bytes[0], 0xAB);
        let mut back = vec![7];
        decode(Codec::Pcmu, &bytes[1..], &mut back);
        assert_eq!(back.len(), 5);
        assert_eq!(back[0], 7);
        for (i, &x) in pcm.iter().enumerate() {
            assert_eq!(
                back[i + 1],
                decode_sample(Codec::Pcmu, encode_sample(Codec::Pcmu, x))
            );
        }
    }
}
