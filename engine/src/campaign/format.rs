//! The campaign file (`campaigns/*.yaml`): who to call, with which script,
//! when, how fast, and how often to try again. Parsed with serde and then
//! checked, so every problem names the file, the key and what is wrong.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use thiserror::Error;

use super::hours::Hours;
use crate::dialing::{Disposition, MachinePolicy};

/// Why a campaign file cannot be used.
#[derive(Debug, Error)]
pub enum CampaignError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {message}")]
    Syntax {
        path: PathBuf,
        line: u64,
        column: u64,
        message: String,
    },
    #[error("{path}: `{key}`: {problem}")]
    Invalid {
        path: PathBuf,
        key: String,
        problem: String,
    },
}

/// The file as written; [`Campaign`] is the checked form.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCampaign {
    name: String,
    script: PathBuf,
    caller_id: String,
    #[serde(default)]
    via: Option<String>,
    list: RawList,
    #[serde(default)]
    hours: Option<RawHours>,
    #[serde(default)]
    pacing: RawPacing,
    #[serde(default)]
    retries: RawRetries,
    #[serde(default)]
    ring_timeout: Option<String>,
    #[serde(default)]
    machine: Option<RawMachine>,
    /// A do-not-call file: one number a line, `#` comments.
    #[serde(default)]
    dnc: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawList {
    #[serde(default)]
    csv: Option<PathBuf>,
    #[serde(default)]
    crm: Option<RawCrmList>,
    /// The country national numbers in the list are read in.
    #[serde(default)]
    country: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCrmList {
    query: String,
    #[serde(default)]
    since: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHours {
    days: String,
    from: String,
    to: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPacing {
    #[serde(default = "one")]
    max_concurrent: usize,
    #[serde(default = "one_f")]
    calls_per_second: f64,
}

fn one() -> usize {
    1
}
fn one_f() -> f64 {
    1.0
}

impl Default for RawPacing {
    fn default() -> Self {
        RawPacing {
            max_concurrent: 1,
            calls_per_second: 1.0,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetries {
    #[serde(default)]
    busy: Vec<String>,
    #[serde(default)]
    no_answer: Vec<String>,
    #[serde(default)]
    failed: Vec<String>,
    #[serde(default)]
    rejected: Vec<String>,
    #[serde(default)]
    machine: Vec<String>,
    #[serde(default)]
    max_attempts: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMachine {
    #[serde(default)]
    detect: bool,
    #[serde(default)]
    on_machine: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

/// Where the contacts come from.
#[derive(Debug, Clone, PartialEq)]
pub enum ListSource {
    /// A CSV file (resolved against the campaign file's folder).
    Csv(PathBuf),
    /// A CRM list query (`follow_ups`, `all`), optionally only records
    /// touched in the last `since`.
    Crm {
        query: String,
        since: Option<Duration>,
    },
}

/// Pacing limits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pacing {
    /// Campaign calls in flight at once.
    pub max_concurrent: usize,
    /// Attempts started per second; below 1, one every `1/x` seconds.
    pub calls_per_second: f64,
}

impl Pacing {
    /// The rate as "at most `n` starts in any `window`".
    pub fn window(&self) -> (usize, Duration) {
        if self.calls_per_second >= 1.0 {
            // Rounded down: 2.5/s allows 2 per second, never 3.
            (
                self.calls_per_second.floor() as usize,
                Duration::from_secs(1),
            )
        } else {
            (1, Duration::from_secs_f64(1.0 / self.calls_per_second))
        }
    }
}

/// When to try again, per disposition.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Retries {
    /// The n-th time an attempt ends with this disposition, the next one
    /// is due `delays[n-1]` later; past the list's end, no more retries.
    pub delays: BTreeMap<Disposition, Vec<Duration>>,
    /// Attempts per contact, the first included.
    pub max_attempts: u32,
}

impl Retries {
    /// The delay before the next attempt after the `nth` (1-based) outcome
    /// `disposition`, if one is allowed after `attempts` attempts.
    pub fn next_delay(
        &self,
        disposition: Disposition,
        nth: u32,
        attempts: u32,
    ) -> Option<Duration> {
        if attempts >= self.max_attempts {
            return None;
        }
        let list = self.delays.get(&disposition)?;
        list.get(usize::try_from(nth.checked_sub(1)?).ok()?)
            .copied()
    }
}

/// A checked campaign.
#[derive(Debug, Clone, PartialEq)]
pub struct Campaign {
    pub name: String,
    /// The file it was read from.
    pub file: PathBuf,
    pub script: PathBuf,
    pub caller_id: String,
    pub via: Option<String>,
    pub list: ListSource,
    /// ISO code national numbers are read in.
    pub country: Option<String>,
    /// `None`: any time of day.
    pub hours: Option<Hours>,
    pub pacing: Pacing,
    pub retries: Retries,
    pub ring_timeout: Duration,
    pub machine: MachinePolicy,
    pub machine_message: Option<String>,
    pub dnc: Option<PathBuf>,
}

/// The `ring_timeout` when the file has none.
pub const DEFAULT_RING_TIMEOUT: Duration = Duration::from_secs(25);

impl Campaign {
    /// Read and check a campaign file.
    pub fn load(path: &Path) -> Result<Campaign, CampaignError> {
        let text = std::fs::read_to_string(path).map_err(|source| CampaignError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Campaign::parse(path, &text)
    }

    /// Parse and check YAML text; relative paths in it are resolved against
    /// `path`'s folder.
    pub fn parse(path: &Path, text: &str) -> Result<Campaign, CampaignError> {
        let raw: RawCampaign = serde_saphyr::from_str(text).map_err(|e| {
            let (line, column) = e
                .location()
                .map(|l| (l.line(), l.column()))
                .unwrap_or((0, 0));
            CampaignError::Syntax {
                path: path.to_path_buf(),
                line,
                column,
                message: e.to_string().lines().next().unwrap_or_default().to_string(),
            }
        })?;
        let bad = |key: &str, problem: String| CampaignError::Invalid {
            path: path.to_path_buf(),
            key: key.to_string(),
            problem,
        };
        let base = path.parent().unwrap_or(Path::new(""));
        let resolve = |p: &Path| {
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            }
        };
        let name = raw.name.trim().to_string();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(bad(
                "name",
                format!("{name:?}: use letters, digits, `-`, `_` or `.`"),
            ));
        }
        if raw.caller_id.trim().is_empty() {
            return Err(bad("caller_id", "is empty".into()));
        }
        let list = match (raw.list.csv, raw.list.crm) {
            (Some(csv), None) => ListSource::Csv(resolve(&csv)),
            (None, Some(crm)) => {
                let since = match crm.since.as_deref() {
                    Some(s) => Some(duration(s).map_err(|p| bad("list.crm.since", p))?),
                    None => None,
                };
                if crm.query.trim().is_empty() {
                    return Err(bad("list.crm.query", "is empty".into()));
                }
                ListSource::Crm {
                    query: crm.query.trim().to_string(),
                    since,
                }
            }
            (Some(_), Some(_)) => return Err(bad("list", "give `csv` or `crm`, not both".into())),
            (None, None) => {
                return Err(bad("list", "give `csv: FILE` or `crm: {query: …}`".into()))
            }
        };
        if let Some(c) = &raw.list.country {
            voxbridge_crm::Country::by_iso(c).map_err(|e| bad("list.country", e.to_string()))?;
        }
        let hours = match raw.hours {
            Some(h) => Some(
                Hours::parse(&h.days, &h.from, &h.to)
                    .map_err(|(key, p)| bad(&format!("hours.{key}"), p))?,
            ),
            None => None,
        };
        let pacing = Pacing {
            max_concurrent: raw.pacing.max_concurrent,
            calls_per_second: raw.pacing.calls_per_second,
        };
        if pacing.max_concurrent == 0 {
            return Err(bad("pacing.max_concurrent", "must be at least 1".into()));
        }
        if !(pacing.calls_per_second.is_finite() && pacing.calls_per_second > 0.0) {
            return Err(bad(
                "pacing.calls_per_second",
                "must be a number above 0".into(),
            ));
        }
        let mut delays = BTreeMap::new();
        let r = raw.retries;
        for (key, disposition, list) in [
            ("busy", Disposition::Busy, r.busy),
            ("no_answer", Disposition::NoAnswer, r.no_answer),
            ("failed", Disposition::Failed, r.failed),
            ("rejected", Disposition::Rejected, r.rejected),
            ("machine", Disposition::Machine, r.machine),
        ] {
            let parsed = list
                .iter()
                .map(|s| duration(s))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|p| bad(&format!("retries.{key}"), p))?;
            if !parsed.is_empty() {
                delays.insert(disposition, parsed);
            }
        }
        let longest = delays.values().map(Vec::len).max().unwrap_or(0) as u32;
        let max_attempts = r.max_attempts.unwrap_or(1 + longest);
        if max_attempts == 0 {
            return Err(bad("retries.max_attempts", "must be at least 1".into()));
        }
        let ring_timeout = match raw.ring_timeout.as_deref() {
            Some(s) => duration(s).map_err(|p| bad("ring_timeout", p))?,
            None => DEFAULT_RING_TIMEOUT,
        };
        if ring_timeout.is_zero() {
            return Err(bad("ring_timeout", "must be above 0".into()));
        }
        let (machine, machine_message) = match raw.machine {
            None => (MachinePolicy::Ignore, None),
            Some(m) if !m.detect => (MachinePolicy::Ignore, m.message),
            Some(m) => match m.on_machine.as_deref().unwrap_or("hang_up") {
                "hang_up" => (MachinePolicy::HangUp, m.message),
                "leave_message" => (MachinePolicy::LeaveMessage, m.message),
                other => {
                    return Err(bad(
                        "machine.on_machine",
                        format!("{other:?}: use hang_up or leave_message"),
                    ))
                }
            },
        };
        Ok(Campaign {
            name,
            file: path.to_path_buf(),
            script: resolve(&raw.script),
            caller_id: raw.caller_id.trim().to_string(),
            via: raw.via.filter(|v| !v.trim().is_empty()),
            list,
            country: raw.list.country,
            hours,
            pacing,
            retries: Retries {
                delays,
                max_attempts,
            },
            ring_timeout,
            machine,
            machine_message,
            dnc: raw.dnc.as_deref().map(resolve),
        })
    }
}

/// `10m`, `1h`, `1d`, `25s`.
fn duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("{text:?}: {e} (e.g. 30s, 10m, 2h, 1d)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
name: november-follow-up
script: ../scripts/outbound-follow-up.yaml
caller_id: "+15550100"
via: trunk-1
list:
  crm: { query: follow_ups, since: 7d }
hours: { days: mon-fri, from: "09:00", to: "20:00" }
pacing: { max_concurrent: 20, calls_per_second: 2 }
retries: { busy: [10m, 1h], no_answer: [2h, 1d], failed: [30m], max_attempts: 3 }
ring_timeout: 25s
machine: { detect: true, on_machine: leave_message }
"#;

    #[test]
    fn the_issue_example_parses() {
        let c = Campaign::parse(Path::new("campaigns/follow-up.yaml"), EXAMPLE).unwrap();
        assert_eq!(c.name, "november-follow-up");
        assert_eq!(
            c.script,
            Path::new("campaigns/../scripts/outbound-follow-up.yaml")
        );
        assert_eq!(
            c.list,
            ListSource::Crm {
                query: "follow_ups".into(),
                since: Some(Duration::from_secs(7 * 86400))
            }
        );
        assert_eq!(c.pacing.window(), (2, Duration::from_secs(1)));
        assert_eq!(
            c.retries.delays[&Disposition::Busy],
            vec![Duration::from_secs(600), Duration::from_secs(3600)]
        );
        assert_eq!(c.retries.max_attempts, 3);
        assert_eq!(c.ring_timeout, Duration::from_secs(25));
        assert_eq!(c.machine, MachinePolicy::LeaveMessage);
    }

    #[test]
    fn retry_delays_follow_the_list_and_max_attempts() {
        let c = Campaign::parse(Path::new("c.yaml"), EXAMPLE).unwrap();
        let r = &c.retries;
        assert_eq!(
            r.next_delay(Disposition::Busy, 1, 1),
            Some(Duration::from_secs(600))
        );
        assert_eq!(
            r.next_delay(Disposition::Busy, 2, 2),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(r.next_delay(Disposition::Busy, 2, 3), None, "max_attempts");
        assert_eq!(r.next_delay(Disposition::Failed, 2, 2), None, "list ends");
        assert_eq!(r.next_delay(Disposition::Answered, 1, 1), None);
    }

    #[test]
    fn errors_name_the_file_and_the_key() {
        let cases = [
            (
                EXAMPLE.replace("calls_per_second: 2", "calls_per_second: 0"),
                "pacing.calls_per_second",
            ),
            (
                EXAMPLE.replace("busy: [10m, 1h]", "busy: [10 lightyears]"),
                "retries.busy",
            ),
            (EXAMPLE.replace("mon-fri", "mon-funday"), "hours.days"),
            (EXAMPLE.replace("\"20:00\"", "\"25:00\""), "hours.to"),
            (
                EXAMPLE.replace("leave_message", "sing"),
                "machine.on_machine",
            ),
            (
                EXAMPLE.replace("crm: { query: follow_ups, since: 7d }", "{}"),
                "list",
            ),
            (
                EXAMPLE.replace("november-follow-up", "no spaces please"),
                "name",
            ),
        ];
        for (text, key) in cases {
            let err = Campaign::parse(Path::new("campaigns/x.yaml"), &text).unwrap_err();
            let shown = err.to_string();
            assert!(shown.starts_with("campaigns/x.yaml: "), "{shown}");
            assert!(shown.contains(&format!("`{key}`")), "{shown}");
        }
        let err = Campaign::parse(Path::new("x.yaml"), "name: a\nbogus: 1\n").unwrap_err();
        assert!(
            matches!(err, CampaignError::Syntax { line: 2, .. }),
            "{err}"
        );
    }
}
