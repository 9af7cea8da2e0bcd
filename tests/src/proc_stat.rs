//! CPU time a process has used, from `/proc/PID/stat`: what the flood test
//! holds the bot to (a bound on work done, not on latency).

use std::fs;
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};

/// User plus system CPU time `pid` has used so far (its threads included).
pub fn cpu_time(pid: u32) -> Result<Duration> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // The command name (field 2) is in parentheses and may hold spaces:
    // count fields from after its closing parenthesis, where field 3 starts.
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
        bail!("/proc/{pid}/stat has no command field: {stat:?}");
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of proc(5), so 11 and 12 here.
    let ticks = |i: usize| -> Result<u64> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .with_context(|| format!("/proc/{pid}/stat field {}: {stat:?}", i + 3))
    };
    let total = ticks(11)? + ticks(12)?;
    Ok(Duration::from_secs_f64(
        total as f64 / clock_ticks()? as f64,
    ))
}

/// Clock ticks per second (`getconf CLK_TCK`, 100 on Linux).
fn clock_ticks() -> Result<u64> {
    let out = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .context("running getconf CLK_TCK")?;
    let text = String::from_utf8_lossy(&out.stdout);
    match text.trim().parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => bail!("getconf CLK_TCK printed {text:?}"),
    }
}
