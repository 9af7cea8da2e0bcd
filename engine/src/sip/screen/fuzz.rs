//! Fuzz harness for SIP screening: every message of the SIP corpora (the
//! RFC 4475 torture tests among them), damaged by `voxbridge_mutations`
//! (flipped bytes, headers duplicated, dropped and reordered, truncation,
//! huge values, bad UTF-8, mixed line endings), through [`screen`],
//! [`too_large`] and [`answer`]. Properties: nothing panics (it found a
//! `str` sliced inside a character: see `tests.rs`); what screening answers
//! is a response the parser reads back; a rewrite is final (screening it
//! again passes it).
//!
//! What screening passes, the stack's parser reads (before, within 20,000
//! cases the harness found RFC 4475's `regaut01`, an unknown
//! `Authorization` scheme, mutated, passed by screening and refused by the
//! parser, so the stack dropped it without an answer; screening now answers
//! such a request 400).
//! `PROPTEST_CASES` sets the count (`bench/fuzz` runs it long).

use proptest::prelude::*;
use rsipstack::sip::SipMessage;
use voxbridge_mutations::{mutated, seeds_in};

use super::corpus::{corpus, fill};
use super::{answer, screen, too_large, Verdict};

fn seeds() -> Vec<Vec<u8>> {
    let keep = |n: &str| n != "EXPECT" && !n.ends_with(".md");
    let mut out = seeds_in(&corpus(""), keep);
    out.extend(seeds_in(&corpus("rfc4475"), keep));
    out.iter().map(|s| fill(s)).collect()
}

/// What screening handed on parses in the stack.
fn passed(bytes: &[u8]) -> Result<(), TestCaseError> {
    prop_assert!(
        SipMessage::try_from(bytes).is_ok(),
        "screening passed what the stack cannot parse:\n{}",
        String::from_utf8_lossy(bytes)
    );
    Ok(())
}

fn is_response(bytes: &[u8]) -> bool {
    matches!(SipMessage::try_from(bytes), Ok(SipMessage::Response(_)))
}

fn check(msg: &[u8]) -> Result<(), TestCaseError> {
    let text = || String::from_utf8_lossy(msg).into_owned();
    match screen(msg, "vb") {
        Verdict::Pass => passed(msg)?,
        Verdict::Trim(n) => {
            prop_assert!(n <= msg.len());
            passed(&msg[..n])?;
        }
        Verdict::Rewrite(bytes) => {
            prop_assert!(bytes.len() <= msg.len(), "a rewrite grew:\n{}", text());
            passed(&bytes)?;
            let again = screen(&bytes, "vb");
            prop_assert!(
                matches!(again, Verdict::Pass | Verdict::Trim(_)),
                "a rewrite screened again gives {:?}:\n{}",
                again,
                String::from_utf8_lossy(&bytes)
            );
        }
        Verdict::Reply(bytes, _) => prop_assert!(
            is_response(&bytes),
            "our answer does not parse:\n{}\nto:\n{}",
            String::from_utf8_lossy(&bytes),
            text()
        ),
        Verdict::Drop(_) => {}
    }
    if let Verdict::Reply(bytes, _) = too_large(msg, "vb") {
        prop_assert!(
            is_response(&bytes),
            "our 513 does not parse:\n{}",
            String::from_utf8_lossy(&bytes)
        );
    }
    if let Some(bytes) = answer(
        msg,
        503,
        "Service Unavailable",
        "vb",
        &[("Retry-After", "5")],
    ) {
        prop_assert!(
            is_response(&bytes),
            "our 503 does not parse:\n{}",
            String::from_utf8_lossy(&bytes)
        );
    }
    Ok(())
}

#[test]
fn every_seed_is_checked() {
    let seeds = seeds();
    assert!(seeds.len() > 50, "{} seeds", seeds.len());
    for s in &seeds {
        check(s).unwrap_or_else(|e| panic!("{e}"));
    }
}

proptest! {
    #[test]
    fn fuzz_sip_screening(msg in mutated(seeds(), 4)) {
        check(&msg)?;
    }
}
