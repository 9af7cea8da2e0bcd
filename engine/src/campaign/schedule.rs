//! The campaign scheduler, sans-IO: contacts and their state in, `now`
//! passed in (never read from a clock), outcomes of attempts in; out come
//! the attempts to start now and the next deadline.
//!
//! Rules it keeps: never more than `max_concurrent` attempts in flight,
//! never more than `calls_per_second` started in any one-second window,
//! never more than the engine's `capacity` in flight (what
//! `calls.max_calls` leaves after inbound calls, which come first); retries per
//! disposition at their delays up to `max_attempts`; calling hours in the
//! contact's zone (a contact outside its window is due at the next
//! opening); the do-not-call check as an attempt is released, so a number
//! added to the list while it waited is never handed to the dialler.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::Duration;

use jiff::tz::TimeZone;
use jiff::Timestamp;
use thiserror::Error;

use super::format::{Pacing, Retries};
use super::hours::Hours;
use crate::dialing::Disposition;

/// How soon to look again when the engine had no room (capacity frees up
/// when an inbound call ends, which the scheduler does not hear of).
pub const CAPACITY_RECHECK: Duration = Duration::from_millis(250);

/// The campaign's rules.
#[derive(Debug, Clone)]
pub struct Rules {
    pub pacing: Pacing,
    pub retries: Retries,
    pub hours: Option<Hours>,
}

/// Where one contact stands.
#[derive(Debug, Clone, PartialEq)]
pub enum State {
    /// Waiting for its next attempt, due at this time.
    Due(Timestamp),
    /// This attempt is with the dialler.
    InFlight(u32),
    /// Finished with this disposition: never called again.
    Done(Disposition),
}

/// One contact as the scheduler sees it.
#[derive(Debug, Clone)]
pub struct Entry {
    pub id: String,
    /// E.164, for the do-not-call check.
    pub number: String,
    pub zone: TimeZone,
    /// Attempts made so far (released, whatever their end).
    pub attempts: u32,
    /// How many attempts ended with each disposition.
    pub counts: BTreeMap<Disposition, u32>,
    pub state: State,
}

impl Entry {
    /// A contact never tried, due at `at`.
    pub fn new(id: &str, number: &str, zone: TimeZone, at: Timestamp) -> Entry {
        Entry {
            id: id.to_string(),
            number: number.to_string(),
            zone,
            attempts: 0,
            counts: BTreeMap::new(),
            state: State::Due(at),
        }
    }
}

/// What a poll decided, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Start this attempt now.
    Start { id: String, attempt: u32 },
    /// On the do-not-call list: finished without a call.
    DoNotCall { id: String },
}

/// Why a poll stopped releasing while contacts were due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blocked {
    Concurrency,
    Rate,
    Capacity,
}

impl Blocked {
    pub fn label(self) -> &'static str {
        match self {
            Blocked::Concurrency => "max_concurrent",
            Blocked::Rate => "calls_per_second",
            Blocked::Capacity => "engine capacity",
        }
    }
}

/// The result of [`Scheduler::poll`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Poll {
    pub decisions: Vec<Decision>,
    /// Poll again at this time (or when an attempt ends); `None`: only
    /// when an attempt ends (or never, once [`Scheduler::is_finished`]).
    pub next: Option<Timestamp>,
    pub blocked: Option<Blocked>,
}

/// What follows an attempt's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    /// Try again at this time.
    Retry(Timestamp),
    /// The contact is finished with this disposition.
    Done(Disposition),
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ScheduleError {
    #[error("no contact {0:?} in this campaign")]
    UnknownContact(String),
    #[error("contact {id:?} has no attempt {attempt} in flight")]
    NotInFlight { id: String, attempt: u32 },
}

/// Totals for `campaign status`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Summary {
    pub contacts: usize,
    pub in_flight: usize,
    pub waiting: usize,
    /// Finished contacts by final disposition label.
    pub done: BTreeMap<&'static str, usize>,
    /// Attempts made, all contacts.
    pub attempts: u64,
    /// Attempts that ended, by disposition label.
    pub outcomes: BTreeMap<&'static str, u64>,
    /// The soonest due times: (when, how many contacts then), at most 10.
    pub due: Vec<(Timestamp, usize)>,
}

/// The scheduler of one campaign.
#[derive(Debug)]
pub struct Scheduler {
    rules: Rules,
    entries: Vec<Entry>,
    by_id: HashMap<String, usize>,
    /// (due, entry index) of every `Due` entry.
    queue: BTreeSet<(Timestamp, usize)>,
    in_flight: usize,
    /// Start times within the last rate window, oldest first.
    recent: VecDeque<Timestamp>,
}

impl Scheduler {
    /// Take over contacts in any state (as the store had them).
    pub fn new(rules: Rules, entries: Vec<Entry>) -> Scheduler {
        let mut by_id = HashMap::with_capacity(entries.len());
        let mut queue = BTreeSet::new();
        let mut in_flight = 0;
        for (i, e) in entries.iter().enumerate() {
            by_id.insert(e.id.clone(), i);
            match e.state {
                State::Due(at) => {
                    queue.insert((at, i));
                }
                State::InFlight(_) => in_flight += 1,
                State::Done(_) => {}
            }
        }
        Scheduler {
            rules,
            entries,
            by_id,
            queue,
            in_flight,
            recent: VecDeque::new(),
        }
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn entry(&self, id: &str) -> Option<&Entry> {
        self.by_id.get(id).map(|&i| &self.entries[i])
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Attempts started at or after `since` (within the last rate window).
    pub fn started_since(&self, since: Timestamp) -> usize {
        self.recent.iter().filter(|t| **t >= since).count()
    }

    /// Every contact finished: nothing due, nothing in flight.
    pub fn is_finished(&self) -> bool {
        self.queue.is_empty() && self.in_flight == 0
    }

    /// Decide what starts at `now`. `capacity`: how many campaign calls the
    /// engine can carry now (its `calls.max_calls` less its inbound calls);
    /// `is_dnc`: the do-not-call list as it is now.
    pub fn poll(&mut self, now: Timestamp, capacity: usize, is_dnc: impl Fn(&str) -> bool) -> Poll {
        let (per_window, window) = self.rules.pacing.window();
        let window = jiff::SignedDuration::try_from(window).unwrap_or(jiff::SignedDuration::MAX);
        while let Some(&first) = self.recent.front() {
            if first.saturating_add(window).is_ok_and(|end| end <= now) {
                self.recent.pop_front();
            } else {
                break;
            }
        }
        let mut out = Poll::default();
        while let Some(&(due, i)) = self.queue.first() {
            if due > now {
                out.next = Some(due);
                break;
            }
            // Limits first: a blocked poll leaves the queue as it was.
            let blocked = if self.in_flight >= self.rules.pacing.max_concurrent {
                Some(Blocked::Concurrency)
            } else if self.recent.len() >= per_window {
                Some(Blocked::Rate)
            } else if self.in_flight >= capacity {
                Some(Blocked::Capacity)
            } else {
                None
            };
            if let Some(why) = blocked {
                out.blocked = Some(why);
                out.next = match why {
                    Blocked::Concurrency => None,
                    Blocked::Rate => self
                        .recent
                        .front()
                        .and_then(|t| t.saturating_add(window).ok()),
                    Blocked::Capacity => now.saturating_add(CAPACITY_RECHECK).ok(),
                };
                break;
            }
            self.queue.remove(&(due, i));
            let entry = &mut self.entries[i];
            if is_dnc(&entry.number) {
                entry.state = State::Done(Disposition::DoNotCall);
                out.decisions.push(Decision::DoNotCall {
                    id: entry.id.clone(),
                });
                continue;
            }
            if let Some(hours) = &self.rules.hours {
                match hours.next_open(now, &entry.zone) {
                    Some(open) if open > now => {
                        entry.state = State::Due(open);
                        self.queue.insert((open, i));
                        continue;
                    }
                    Some(_) => {}
                    None => {
                        // No day is allowed: `Hours::parse` refuses that,
                        // so this is a zone jiff cannot place the window in.
                        entry.state = State::Done(Disposition::Failed);
                        continue;
                    }
                }
            }
            entry.attempts += 1;
            entry.state = State::InFlight(entry.attempts);
            self.in_flight += 1;
            self.recent.push_back(now);
            out.decisions.push(Decision::Start {
                id: entry.id.clone(),
                attempt: entry.attempts,
            });
        }
        out
    }

    /// An attempt ended at `now`: when (if ever) the contact is tried again.
    pub fn finish(
        &mut self,
        now: Timestamp,
        id: &str,
        attempt: u32,
        disposition: Disposition,
    ) -> Result<After, ScheduleError> {
        let &i = self
            .by_id
            .get(id)
            .ok_or_else(|| ScheduleError::UnknownContact(id.to_string()))?;
        let entry = &mut self.entries[i];
        if entry.state != State::InFlight(attempt) {
            return Err(ScheduleError::NotInFlight {
                id: id.to_string(),
                attempt,
            });
        }
        self.in_flight -= 1;
        let nth = entry.counts.entry(disposition).or_insert(0);
        *nth += 1;
        let delay = self
            .rules
            .retries
            .next_delay(disposition, *nth, entry.attempts);
        let after = match delay.and_then(|d| {
            jiff::SignedDuration::try_from(d)
                .ok()
                .and_then(|d| now.checked_add(d).ok())
        }) {
            Some(at) => {
                entry.state = State::Due(at);
                self.queue.insert((at, i));
                After::Retry(at)
            }
            None => {
                entry.state = State::Done(disposition);
                After::Done(disposition)
            }
        };
        Ok(after)
    }

    /// End every waiting contact (the campaign was stopped): they keep the
    /// state they had, nothing more is released. Returns how many waited.
    pub fn stop(&mut self) -> usize {
        let n = self.queue.len();
        self.queue.clear();
        n
    }

    pub fn summary(&self) -> Summary {
        let mut s = Summary {
            contacts: self.entries.len(),
            in_flight: self.in_flight,
            waiting: self.queue.len(),
            ..Summary::default()
        };
        for e in &self.entries {
            s.attempts += u64::from(e.attempts);
            for (d, n) in &e.counts {
                *s.outcomes.entry(d.label()).or_default() += u64::from(*n);
            }
            if let State::Done(d) = e.state {
                *s.done.entry(d.label()).or_default() += 1;
            }
        }
        for &(at, _) in &self.queue {
            let full = s.due.len() == 10;
            match s.due.last_mut() {
                Some((last, n)) if *last == at => *n += 1,
                _ if full => break,
                _ => s.due.push((at, 1)),
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn rules(max_concurrent: usize, cps: f64, retries: Retries, hours: Option<Hours>) -> Rules {
        Rules {
            pacing: Pacing {
                max_concurrent,
                calls_per_second: cps,
            },
            retries,
            hours,
        }
    }

    fn contacts(n: usize, at: Timestamp) -> Vec<Entry> {
        (0..n)
            .map(|i| {
                Entry::new(
                    &format!("c{i}"),
                    &format!("+1212555{i:04}"),
                    TimeZone::UTC,
                    at,
                )
            })
            .collect()
    }

    fn starts(p: &Poll) -> Vec<(String, u32)> {
        p.decisions
            .iter()
            .filter_map(|d| match d {
                Decision::Start { id, attempt } => Some((id.clone(), *attempt)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn concurrency_rate_and_capacity_bound_each_poll() {
        let t0 = t("2026-12-01T10:00:00Z");
        let mut s = Scheduler::new(rules(3, 2.0, Retries::default(), None), contacts(10, t0));
        let p = s.poll(t0, 100, |_| false);
        assert_eq!(starts(&p).len(), 2, "2 per second");
        assert_eq!(p.blocked, Some(Blocked::Rate));
        assert_eq!(p.next, Some(t("2026-12-01T10:00:01Z")));
        let p = s.poll(t("2026-12-01T10:00:01Z"), 100, |_| false);
        assert_eq!(starts(&p).len(), 1, "3 in flight at most");
        assert_eq!(p.blocked, Some(Blocked::Concurrency));
        assert_eq!(p.next, None);
        let mut s = Scheduler::new(rules(10, 10.0, Retries::default(), None), contacts(10, t0));
        let p = s.poll(t0, 1, |_| false);
        assert_eq!(starts(&p).len(), 1, "capacity 1");
        assert_eq!(p.blocked, Some(Blocked::Capacity));
        assert_eq!(p.next, Some(t("2026-12-01T10:00:00.25Z")));
        assert!(starts(&s.poll(t0, 0, |_| false)).is_empty());
    }

    #[test]
    fn retries_follow_the_list_then_the_contact_is_done() {
        let t0 = t("2026-12-01T10:00:00Z");
        let retries = Retries {
            delays: [(
                Disposition::Busy,
                vec![Duration::from_secs(600), Duration::from_secs(3600)],
            )]
            .into(),
            max_attempts: 5,
        };
        let mut s = Scheduler::new(rules(1, 1.0, retries, None), contacts(1, t0));
        assert_eq!(starts(&s.poll(t0, 1, |_| false)), vec![("c0".into(), 1)]);
        let after = s.finish(t0, "c0", 1, Disposition::Busy).unwrap();
        assert_eq!(after, After::Retry(t("2026-12-01T10:10:00Z")));
        assert!(starts(&s.poll(t("2026-12-01T10:09:59Z"), 1, |_| false)).is_empty());
        let p = s.poll(t("2026-12-01T10:10:00Z"), 1, |_| false);
        assert_eq!(starts(&p), vec![("c0".into(), 2)]);
        let after = s
            .finish(t("2026-12-01T10:11:00Z"), "c0", 2, Disposition::Busy)
            .unwrap();
        assert_eq!(after, After::Retry(t("2026-12-01T11:11:00Z")));
        s.poll(t("2026-12-01T11:11:00Z"), 1, |_| false);
        let after = s
            .finish(t("2026-12-01T11:12:00Z"), "c0", 3, Disposition::Busy)
            .unwrap();
        assert_eq!(after, After::Done(Disposition::Busy));
        assert!(s.is_finished());
        assert_eq!(
            s.finish(t0, "c0", 3, Disposition::Busy),
            Err(ScheduleError::NotInFlight {
                id: "c0".into(),
                attempt: 3
            })
        );
    }

    #[test]
    fn dnc_is_checked_at_release_and_never_started() {
        let t0 = t("2026-12-01T10:00:00Z");
        let mut s = Scheduler::new(rules(5, 5.0, Retries::default(), None), contacts(3, t0));
        let p = s.poll(t0, 5, |n| n == "+12125550001");
        assert_eq!(starts(&p).len(), 2);
        assert!(p
            .decisions
            .contains(&Decision::DoNotCall { id: "c1".into() }));
        assert_eq!(
            s.entry("c1").unwrap().state,
            State::Done(Disposition::DoNotCall)
        );
    }

    #[test]
    fn a_contact_outside_its_window_waits_for_the_opening() {
        let hours = Hours::parse("mon-fri", "09:00", "20:00").unwrap();
        // Tuesday 10:00 UTC: open in London, 05:00 in New York, 18:00 in Shanghai.
        let t0 = t("2026-12-01T10:00:00Z");
        let zone = |n| TimeZone::get(n).unwrap();
        let entries = vec![
            Entry::new("ldn", "+442071234567", zone("Europe/London"), t0),
            Entry::new("nyc", "+12125550101", zone("America/New_York"), t0),
            Entry::new("sha", "+8613800138000", zone("Asia/Shanghai"), t0),
        ];
        let mut s = Scheduler::new(rules(5, 5.0, Retries::default(), Some(hours)), entries);
        let p = s.poll(t0, 5, |_| false);
        let ids: Vec<_> = starts(&p).into_iter().map(|(id, _)| id).collect();
        assert_eq!(ids, vec!["ldn".to_string(), "sha".to_string()]);
        assert_eq!(p.next, Some(t("2026-12-01T14:00:00Z")), "09:00 in New York");
        assert!(starts(&s.poll(t("2026-12-01T13:59:59Z"), 5, |_| false)).is_empty());
        let p = s.poll(t("2026-12-01T14:00:00Z"), 5, |_| false);
        assert_eq!(starts(&p), vec![("nyc".into(), 1)]);
    }
}
