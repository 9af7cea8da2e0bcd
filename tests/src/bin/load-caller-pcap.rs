//! Writes the load test's caller as a pcap for sipp (`bench/e2e` uses it):
//! `load-caller-pcap OUT.pcap [TEXT] [KEYS] [LEAD_MS] [AFTER_SPEECH_MS]`
//! (defaults: "where is my order", "1001#", and the test's timing).

use anyhow::{Context, Result};
use voxbridge_e2e::load::{caller_pcap_timed, CallerTiming};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let out = args
        .first()
        .context("usage: load-caller-pcap OUT.pcap [TEXT] [KEYS] [LEAD_MS] [AFTER_SPEECH_MS]")?;
    let text = args.get(1).map_or("where is my order", String::as_str);
    let keys = args.get(2).map_or("1001#", String::as_str);
    let mut timing = CallerTiming::default();
    if let Some(ms) = args.get(3) {
        timing.lead_ms = ms.parse().context("LEAD_MS")?;
    }
    if let Some(ms) = args.get(4) {
        timing.after_speech_ms = ms.parse().context("AFTER_SPEECH_MS")?;
    }
    let caller = caller_pcap_timed(text, keys, &timing)?;
    caller.write(out)?;
    println!("{out}: {:.1} s", caller.duration().as_secs_f64());
    Ok(())
}
