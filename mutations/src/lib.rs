//! Structure-aware mutations of real messages for the parsers' property
//! tests (the stable-Rust stand-in for a coverage-guided fuzzer).
//!
//! Random bytes are rejected at the first byte by any parser worth having,
//! so they never reach its depths. These strategies start from real inputs
//! (the SIP corpus, SDP offers, RTP packets, the bundled dialog scripts)
//! and damage them the ways networks and peers do: flipped bytes,
//! duplicated, dropped and reordered lines (headers, SDP lines, YAML keys),
//! truncation, huge values, bad UTF-8, NULs, and mixed line endings. A few
//! mutations at a time keep most of the message intact, so the parser gets
//! past the start line and fails (or succeeds) deep inside.
//!
//! Case counts come from `PROPTEST_CASES` (proptest's default config reads
//! it): `make test` runs a short pass, `bench/fuzz` a long one.

use proptest::collection::vec;
use proptest::prelude::*;

/// One way of damaging a message. Positions are [`Pos`]itions, resolved
/// against the message as it is when the mutation applies, so a sequence
/// of mutations always applies and shrinks (towards the start) well.
/// A position, taken modulo the length of what it indexes (bytes, lines,
/// numbers) when the mutation applies.
pub type Pos = u32;

#[derive(Debug, Clone)]
pub enum Mutation {
    /// Set one byte to any value.
    SetByte(Pos, u8),
    /// Flip one bit of one byte.
    FlipBit(Pos, u8),
    /// Insert bytes that are never valid UTF-8, or a NUL.
    InsertBad(Pos, &'static [u8]),
    /// Remove a line.
    DropLine(Pos),
    /// Repeat a line right after itself (a second Content-Length, Via…).
    DuplicateLine(Pos),
    /// Swap two lines (headers out of order, `m=` before `v=`).
    SwapLines(Pos, Pos),
    /// Copy a line to another place.
    MoveLine(Pos, Pos),
    /// Cut the message short.
    Truncate(Pos),
    /// Replace what follows the first `:` or `=` of a line (or its end)
    /// with a huge value.
    HugeValue(Pos, Huge),
    /// Replace a run of decimal digits with another number (0, -1,
    /// 2^16, 2^32, 2^64 and beyond, many digits).
    Number(Pos, &'static str),
    /// Change line endings: one CRLF to LF, LF to CRLF, CR alone, or LFCR.
    LineEnding(Pos, &'static [u8]),
    /// Insert a blank line (ends a SIP head early, empties a YAML block).
    BlankLine(Pos),
    /// Insert a line or separator from the message's own grammar.
    InsertToken(Pos, &'static [u8]),
}

/// A huge value: `len` copies of `fill`.
#[derive(Debug, Clone)]
pub struct Huge {
    pub fill: &'static [u8],
    pub len: usize,
}

const BAD_BYTES: &[&[u8]] = &[
    b"\xff",
    b"\xc3\x28",
    b"\xed\xa0\x80",
    b"\xf0\x28\x8c\x28",
    b"\x80",
    b"\x00",
    b"\xef\xbb\xbf",
];

const NUMBERS: &[&str] = &[
    "0",
    "-1",
    "65535",
    "65536",
    "4294967295",
    "4294967296",
    "18446744073709551616",
    "99999999999999999999999999999999",
    "1e9",
    "0x10",
    "+5",
    "",
];

const ENDINGS: &[&[u8]] = &[b"\n", b"\r\n", b"\r", b"\n\r", b"\r\r\n"];

const FILLS: &[&[u8]] = &[
    b"a",
    b"9",
    b" ",
    b";",
    b",",
    b"<",
    b"%",
    b"\t",
    b"\xe4\xb8\xad",
];

const TOKENS: &[&[u8]] = &[
    b":",
    b";",
    b"=",
    b",",
    b" ",
    b"\"",
    b"<",
    b">",
    b"@",
    b"/",
    b"[",
    b"]",
    b"{",
    b"}",
    b"-",
    b"#",
    b"&",
    b"*",
    b"!",
    b"'",
    b"|",
    b"\t",
    b"Content-Length: 5\r\n",
    b"Content-Length: 999999\r\n",
    b"l: 0\r\n",
    b"Via: SIP/2.0/UDP [::1]:5060;branch=z9hG4bK\r\n",
    b"CSeq: 1 BYE\r\n",
    b"Require: foo\r\n",
    b"Content-Type: application/sdp\r\n",
    b"m=audio 0 RTP/AVP 0\r\n",
    b"m=audio 5000 RTP/SAVP 0 8 101\r\n",
    b"c=IN IP6 ::1\r\n",
    b"a=rtpmap:101 telephone-event/8000\r\n",
    b"a=rtpmap:0 PCMU/8000/1\r\n",
    b"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n",
    b"a=ptime:0\r\n",
    b"  - ",
    b"    ",
    b"- ",
    b"&a ",
    b"*a",
    b"!!binary ",
    b"<<: ",
];

fn from<T: Copy + std::fmt::Debug + 'static>(items: &'static [T]) -> impl Strategy<Value = T> {
    proptest::sample::select(items)
}

/// Any one mutation.
pub fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Pos>(), any::<u8>()).prop_map(|(i, b)| Mutation::SetByte(i, b)),
        (any::<Pos>(), 0u8..8).prop_map(|(i, b)| Mutation::FlipBit(i, b)),
        (any::<Pos>(), from(BAD_BYTES)).prop_map(|(i, b)| Mutation::InsertBad(i, b)),
        any::<Pos>().prop_map(Mutation::DropLine),
        any::<Pos>().prop_map(Mutation::DuplicateLine),
        (any::<Pos>(), any::<Pos>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        (any::<Pos>(), any::<Pos>()).prop_map(|(a, b)| Mutation::MoveLine(a, b)),
        any::<Pos>().prop_map(Mutation::Truncate),
        (
            any::<Pos>(),
            from(FILLS),
            prop_oneof![1usize..300, 1000usize..70_000]
        )
            .prop_map(|(i, fill, len)| Mutation::HugeValue(i, Huge { fill, len })),
        (any::<Pos>(), from(NUMBERS)).prop_map(|(i, n)| Mutation::Number(i, n)),
        (any::<Pos>(), from(ENDINGS)).prop_map(|(i, e)| Mutation::LineEnding(i, e)),
        any::<Pos>().prop_map(Mutation::BlankLine),
        (any::<Pos>(), from(TOKENS)).prop_map(|(i, t)| Mutation::InsertToken(i, t)),
    ]
}

/// One of `seeds`, damaged by up to `max` mutations (none, sometimes: the
/// seed itself is a case too).
pub fn mutated(seeds: Vec<Vec<u8>>, max: usize) -> impl Strategy<Value = Vec<u8>> {
    assert!(!seeds.is_empty(), "mutated() needs at least one seed");
    (proptest::sample::select(seeds), vec(mutation(), 0..=max))
        .prop_map(|(seed, mutations)| apply(seed, &mutations))
}

/// Apply `mutations` to `message` in order.
pub fn apply(mut message: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        apply_one(&mut message, m);
    }
    message
}

/// Byte ranges of the lines of `message`, each with its line ending.
fn lines(message: &[u8]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, &b) in message.iter().enumerate() {
        if b == b'\n' {
            out.push(start..i + 1);
            start = i + 1;
        }
    }
    if start < message.len() {
        out.push(start..message.len());
    }
    out
}

/// A position in `0..=len` (insertion point).
fn at(i: &Pos, len: usize) -> usize {
    *i as usize % (len + 1)
}

/// An index into something of `size` (> 0) items.
fn pick(i: &Pos, size: usize) -> usize {
    *i as usize % size
}

fn apply_one(msg: &mut Vec<u8>, m: &Mutation) {
    let len = msg.len();
    let ls = lines(msg);
    match m {
        Mutation::SetByte(i, b) if len > 0 => msg[pick(i, len)] = *b,
        Mutation::FlipBit(i, bit) if len > 0 => msg[pick(i, len)] ^= 1 << bit,
        Mutation::InsertBad(i, bytes) => {
            let p = at(i, len);
            msg.splice(p..p, bytes.iter().copied());
        }
        Mutation::DropLine(i) if !ls.is_empty() => {
            msg.drain(ls[pick(i, ls.len())].clone());
        }
        Mutation::DuplicateLine(i) if !ls.is_empty() => {
            let r = ls[pick(i, ls.len())].clone();
            let line = msg[r.clone()].to_vec();
            msg.splice(r.end..r.end, line);
        }
        Mutation::SwapLines(a, b) if ls.len() > 1 => {
            let (a, b) = (pick(a, ls.len()), pick(b, ls.len()));
            let (lo, hi) = (a.min(b), a.max(b));
            if lo != hi {
                let (rl, rh) = (ls[lo].clone(), ls[hi].clone());
                let mut out = msg[..rl.start].to_vec();
                out.extend_from_slice(&msg[rh.clone()]);
                out.extend_from_slice(&msg[rl.end..rh.start]);
                out.extend_from_slice(&msg[rl.clone()]);
                out.extend_from_slice(&msg[rh.end..]);
                *msg = out;
            }
        }
        Mutation::MoveLine(a, b) if !ls.is_empty() => {
            let line = msg[ls[pick(a, ls.len())].clone()].to_vec();
            let to = ls[pick(b, ls.len())].start;
            msg.splice(to..to, line);
        }
        Mutation::Truncate(i) => msg.truncate(at(i, len)),
        Mutation::HugeValue(i, huge) if !ls.is_empty() => {
            let r = ls[pick(i, ls.len())].clone();
            let line = &msg[r.clone()];
            let value_start = line
                .iter()
                .position(|&b| b == b':' || b == b'=')
                .map_or(r.end, |p| r.start + p + 1);
            let content_end = r.start
                + line
                    .iter()
                    .rposition(|&b| b != b'\r' && b != b'\n')
                    .map_or(0, |p| p + 1);
            let end = content_end.max(value_start);
            let value = huge.fill.repeat(huge.len.div_ceil(huge.fill.len()));
            msg.splice(value_start..end, value);
        }
        Mutation::Number(i, n) => {
            let runs: Vec<std::ops::Range<usize>> = digit_runs(msg);
            if !runs.is_empty() {
                let r = runs[pick(i, runs.len())].clone();
                msg.splice(r, n.bytes());
            }
        }
        Mutation::LineEnding(i, ending) => {
            let ends: Vec<std::ops::Range<usize>> = ls
                .iter()
                .filter(|r| msg[r.end - 1] == b'\n')
                .map(|r| {
                    let crlf = r.end >= 2 && r.end - 2 >= r.start && msg[r.end - 2] == b'\r';
                    (if crlf { r.end - 2 } else { r.end - 1 })..r.end
                })
                .collect();
            if !ends.is_empty() {
                let r = ends[pick(i, ends.len())].clone();
                msg.splice(r, ending.iter().copied());
            }
        }
        Mutation::BlankLine(i) if !ls.is_empty() => {
            let p = ls[pick(i, ls.len())].start;
            msg.splice(p..p, b"\r\n".iter().copied());
        }
        Mutation::InsertToken(i, t) => {
            let p = at(i, len);
            msg.splice(p..p, t.iter().copied());
        }
        // A mutation that needs a byte or a line on an empty message.
        _ => {}
    }
}

fn digit_runs(msg: &[u8]) -> Vec<std::ops::Range<usize>> {
    let mut runs = Vec::new();
    let mut start = None;
    for (i, b) in msg.iter().enumerate() {
        match (b.is_ascii_digit(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                runs.push(s..i);
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        runs.push(s..msg.len());
    }
    runs
}

/// Every file in `dir` (not its subfolders), sorted by name, that `keep`
/// accepts by file name: the seeds of a harness.
pub fn seeds_in(dir: &std::path::Path, keep: impl Fn(&str) -> bool) -> Vec<Vec<u8>> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading seeds in {}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.file_name().is_some_and(|n| keep(&n.to_string_lossy())))
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| std::fs::read(p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"INVITE sip:a@b SIP/2.0\r\nVia: x\r\nCSeq: 12 INVITE\r\n\r\nv=0\n";

    proptest! {
        /// Every mutation applies to anything, the empty message included.
        #[test]
        fn mutations_always_apply(seed in vec(any::<u8>(), 0..64), ms in vec(mutation(), 0..8)) {
            let _ = apply(seed, &ms);
            let _ = apply(MSG.to_vec(), &ms);
        }
    }

    #[test]
    fn line_mutations_work_on_lines() {
        let swapped = apply(MSG.to_vec(), &[Mutation::SwapLines(0, 1)]);
        assert!(
            swapped.starts_with(b"Via: x\r\n"),
            "{}",
            String::from_utf8_lossy(&swapped)
        );
        let dup = apply(MSG.to_vec(), &[Mutation::DuplicateLine(1)]);
        assert_eq!(String::from_utf8_lossy(&dup).matches("Via: x").count(), 2);
        let num = apply(MSG.to_vec(), &[Mutation::Number(2, "4294967296")]);
        assert!(String::from_utf8_lossy(&num).contains("CSeq: 4294967296 INVITE"));
        let lf = apply(MSG.to_vec(), &[Mutation::LineEnding(0, b"\n")]);
        assert!(lf.starts_with(b"INVITE sip:a@b SIP/2.0\nVia"));
    }
}
