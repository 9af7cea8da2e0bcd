//! The caller of the full-pipeline load test and `bench/e2e`: silence while
//! the bot greets and asks what they want, a spoken request (espeak-ng, as
//! a phone sends it), silence while the bot asks for the order number, the
//! number on the keypad, then silence while the bot answers and hangs up.

use anyhow::Result;

use crate::pcap::PcapBuilder;
use crate::speech::espeak_8k;

/// The script both run, relative to the workspace root.
pub const LOAD_SCRIPT: &str = "tests/scripts/load-order-status.yaml";

/// How the caller's side of a call is laid out in time.
#[derive(Debug, Clone)]
pub struct CallerTiming {
    /// Silence before speaking: the greeting and the menu question.
    pub lead_ms: u32,
    /// Silence after speaking: the bot hears it and asks for the number.
    pub after_speech_ms: u32,
    /// Each key's tone and the gap after it.
    pub tone_ms: u32,
    pub gap_ms: u32,
    /// Silence after the keys, while the bot reads the status and hangs up.
    pub tail_ms: u32,
}

impl Default for CallerTiming {
    fn default() -> Self {
        CallerTiming {
            lead_ms: 3000,
            after_speech_ms: 1500,
            tone_ms: 100,
            gap_ms: 100,
            tail_ms: 3000,
        }
    }
}

/// The caller saying `text` (espeak-ng `en-us`) then keying `keys`, with
/// the default timing.
pub fn caller_pcap(text: &str, keys: &str) -> Result<PcapBuilder> {
    caller_pcap_timed(text, keys, &CallerTiming::default())
}

/// [`caller_pcap`] with explicit timing.
pub fn caller_pcap_timed(text: &str, keys: &str, t: &CallerTiming) -> Result<PcapBuilder> {
    // No text: a caller who stays silent (bench/e2e's baseline for the
    // chatty caller).
    let speech = if text.is_empty() {
        Vec::new()
    } else {
        espeak_8k(text, "en-us")?
    };
    Ok(PcapBuilder::new()
        .silence(t.lead_ms)
        .speech(&speech)
        .silence(t.after_speech_ms)
        .digits(keys, t.tone_ms, t.gap_ms)
        .silence(t.tail_ms))
}
