//! The async side of one campaign: drives the scheduler with the clock,
//! commits each attempt before handing it to a [`Dialer`] task, feeds the
//! outcomes back, writes results to the store and the CRM outbox, and
//! obeys pause, resume and stop.
//!
//! At start it first settles what a previous process left: an attempt
//! started and never ended is closed as `failed` (it may have rung the
//! person, so it counts and is never repeated under its number), and
//! results the outbox may not have are sent again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use jiff::tz::TimeZone;
use jiff::Timestamp;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{error, info, warn};
use voxbridge_crm::model::Write;
use voxbridge_crm::outbox::Outbox;

use super::dnc::Dnc;
use super::format::Campaign;
use super::list::Contact;
use super::metrics::Gauges;
use super::results;
use super::schedule::{After, Blocked, Decision, Entry, Rules, Scheduler, State, Summary};
use super::store::{RunState, Store, StoreError};
use crate::dialing::{DialOutcome, DialRequest, Dialer, Disposition};
use crate::metrics::Metrics;

/// Wall-clock time read through tokio's clock, so a test with paused
/// tokio time runs hours of campaign in milliseconds and a real run reads
/// the real time.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    base: Timestamp,
    start: tokio::time::Instant,
}

impl Clock {
    /// A clock that reads `Timestamp::now()` at this moment.
    pub fn system() -> Clock {
        Clock::starting_at(Timestamp::now())
    }

    /// A clock that reads `base` now (tests).
    pub fn starting_at(base: Timestamp) -> Clock {
        Clock {
            base,
            start: tokio::time::Instant::now(),
        }
    }

    pub fn now(&self) -> Timestamp {
        let elapsed = jiff::SignedDuration::try_from(self.start.elapsed())
            .unwrap_or(jiff::SignedDuration::MAX);
        self.base.saturating_add(elapsed).unwrap_or(self.base)
    }

    async fn sleep_until(&self, at: Timestamp) {
        let ahead = at.duration_since(self.now());
        if let Ok(ahead) = std::time::Duration::try_from(ahead) {
            tokio::time::sleep(ahead).await;
        }
    }
}

/// What a runner needs from the engine.
#[derive(Clone)]
pub struct Deps {
    pub store: Arc<Store>,
    pub dnc: Arc<Dnc>,
    pub dialer: Arc<dyn Dialer>,
    /// The CRM's durable outbox; `None`: results stay in the store only.
    pub outbox: Option<Arc<Outbox>>,
    /// How many campaign calls the engine can carry now: `calls.max_calls`
    /// less its inbound calls (which come first), zero while draining.
    pub capacity: Arc<dyn Fn() -> usize + Send + Sync>,
    pub metrics: Arc<Metrics>,
    pub clock: Clock,
}

/// A command to a running campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Pause,
    Resume,
    Stop,
}

/// What `status` shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    pub state: RunState,
    pub summary: Summary,
    pub blocked: Option<Blocked>,
    pub next: Option<Timestamp>,
}

/// A running campaign.
pub struct Handle {
    control: mpsc::UnboundedSender<Control>,
    status: Arc<Mutex<Status>>,
    task: JoinHandle<Result<RunState, StoreError>>,
}

impl Handle {
    /// Send a command; false if the runner has ended.
    pub fn send(&self, c: Control) -> bool {
        self.control.send(c).is_ok()
    }

    pub fn status(&self) -> Status {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Wait for the runner to end (done, or stopped with nothing in flight).
    pub async fn join(self) -> Result<RunState, StoreError> {
        self.task
            .await
            .unwrap_or_else(|e| Err(StoreError::BadRow(format!("campaign runner died: {e}"))))
    }
}

/// Load the campaign's contacts from the store, settle what a previous
/// process left, and run it on a task of its own.
pub fn spawn(campaign: Campaign, deps: Deps, initial: RunState) -> Result<Handle, StoreError> {
    let (control, rx) = mpsc::unbounded_channel();
    let now = deps.clock.now();
    let stored = deps.store.load(&campaign.name)?;
    let mut contacts = HashMap::with_capacity(stored.len());
    let mut entries = Vec::with_capacity(stored.len());
    for s in stored {
        let zone = TimeZone::get(&s.contact.time_zone).unwrap_or_else(|_| {
            // Checked at import; a zone the bundled database dropped since
            // is read as UTC rather than stopping the campaign.
            warn!(campaign = %campaign.name, contact = %s.contact.id, zone = %s.contact.time_zone, "unknown time zone, using UTC");
            TimeZone::UTC
        });
        let state = match (s.disposition, s.open_attempt, s.next_due) {
            (Some(d), _, _) => State::Done(d),
            (None, Some(a), _) => State::InFlight(a),
            (None, None, Some(at)) => State::Due(at),
            (None, None, None) => State::Due(now),
        };
        entries.push(Entry {
            id: s.contact.id.clone(),
            number: s.contact.number.clone(),
            zone,
            attempts: s.attempts,
            counts: s.counts,
            state,
        });
        contacts.insert(s.contact.id.clone(), s.contact);
    }
    let scheduler = Scheduler::new(
        Rules {
            pacing: campaign.pacing,
            retries: campaign.retries.clone(),
            hours: campaign.hours.clone(),
        },
        entries,
    );
    let status = Arc::new(Mutex::new(Status {
        state: initial,
        summary: scheduler.summary(),
        blocked: None,
        next: None,
    }));
    let run = Run {
        campaign,
        deps,
        scheduler,
        contacts,
        state: initial,
        status: status.clone(),
        started: HashMap::new(),
    };
    let task = tokio::spawn(run.run(rx));
    Ok(Handle {
        control,
        status,
        task,
    })
}

struct Run {
    campaign: Campaign,
    deps: Deps,
    scheduler: Scheduler,
    contacts: HashMap<String, Contact>,
    state: RunState,
    status: Arc<Mutex<Status>>,
    /// Start time (ms) of each attempt in flight.
    started: HashMap<(String, u32), i64>,
}

type Ended = (String, u32, DialOutcome);

impl Run {
    async fn run(
        mut self,
        mut control: mpsc::UnboundedReceiver<Control>,
    ) -> Result<RunState, StoreError> {
        let name = self.campaign.name.clone();
        self.recover().await?;
        self.report_unreported().await?;
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Ended>();
        let mut control_open = true;
        if self.state == RunState::Running {
            self.deps
                .store
                .set_state(&name, RunState::Running, self.deps.clock.now())?;
        }
        info!(campaign = %name, state = self.state.label(), contacts = self.contacts.len(), "campaign runner started");
        loop {
            let now = self.deps.clock.now();
            let mut next = None;
            let mut blocked = None;
            if self.state == RunState::Running {
                let capacity = (self.deps.capacity)();
                let dnc = self.deps.dnc.clone();
                let poll = self.scheduler.poll(now, capacity, |n| dnc.contains(n));
                next = poll.next;
                blocked = poll.blocked;
                for d in poll.decisions {
                    match d {
                        Decision::DoNotCall { id } => {
                            self.deps
                                .store
                                .finish_contact(&name, &id, Disposition::DoNotCall)?;
                            self.deps.metrics.campaigns.outcome(Disposition::DoNotCall);
                            info!(campaign = %name, contact = %id, "on the do-not-call list: not dialled");
                        }
                        Decision::Start { id, attempt } => {
                            self.start(&id, attempt, now, &done_tx)?
                        }
                    }
                }
                if self.scheduler.is_finished() {
                    self.state = RunState::Done;
                    self.deps.store.set_state(&name, RunState::Done, now)?;
                    info!(campaign = %name, "campaign finished: every contact has its disposition");
                }
            }
            self.publish(now, blocked, next);
            let idle = self.scheduler.in_flight() == 0;
            if idle && matches!(self.state, RunState::Done | RunState::Stopped) {
                return Ok(self.state);
            }
            let wait_for_time = self.state == RunState::Running && next.is_some();
            let clock = self.deps.clock;
            tokio::select! {
                ended = done_rx.recv() => {
                    if let Some((id, attempt, outcome)) = ended {
                        self.finish(&id, attempt, outcome, false).await?;
                    }
                }
                c = control.recv(), if control_open => {
                    let now = self.deps.clock.now();
                    control_open = c.is_some();
                    match c {
                        Some(Control::Pause) if self.state == RunState::Running => {
                            self.state = RunState::Paused;
                            self.deps.store.set_state(&name, RunState::Paused, now)?;
                            info!(campaign = %name, "campaign paused");
                        }
                        Some(Control::Resume) if self.state == RunState::Paused => {
                            self.state = RunState::Running;
                            self.deps.store.set_state(&name, RunState::Running, now)?;
                            info!(campaign = %name, "campaign resumed");
                        }
                        // The engine let go of the campaign (it is shutting
                        // down): stop releasing, keep the stored state so the
                        // next start resumes it.
                        None if !matches!(self.state, RunState::Stopped | RunState::Done) => {
                            self.state = RunState::Stopped;
                            self.scheduler.stop();
                        }
                        Some(Control::Stop) if !matches!(self.state, RunState::Stopped | RunState::Done) => {
                            self.state = RunState::Stopped;
                            self.scheduler.stop();
                            self.deps.store.set_state(&name, RunState::Stopped, now)?;
                            info!(campaign = %name, in_flight = self.scheduler.in_flight(), "campaign stopped; calls in flight finish");
                        }
                        _ => {}
                    }
                }
                _ = clock.sleep_until(next.unwrap_or(now)), if wait_for_time => {}
            }
        }
    }

    /// Commit attempt `attempt` of `id`, then hand it to the dialler.
    fn start(
        &mut self,
        id: &str,
        attempt: u32,
        now: Timestamp,
        done: &mpsc::UnboundedSender<Ended>,
    ) -> Result<(), StoreError> {
        let name = &self.campaign.name;
        let Some(contact) = self.contacts.get(id) else {
            return Err(StoreError::BadRow(format!("contact {id} vanished")));
        };
        // The row is on disk before the dial starts: a crash from here on
        // closes the attempt as failed, never repeats it.
        match self
            .deps
            .store
            .begin_attempt(name, id, attempt, &contact.number, now)
        {
            Ok(()) => {}
            Err(e @ StoreError::AttemptTaken { .. }) => {
                // Another process had it: count it as failed, do not dial.
                error!(campaign = %name, contact = %id, attempt, error = %e, "attempt not dialled");
                let _ = done.send((
                    id.to_string(),
                    attempt,
                    DialOutcome {
                        disposition: Disposition::Failed,
                        sip_status: None,
                        script: None,
                    },
                ));
                return Ok(());
            }
            Err(e) => return Err(e),
        }
        self.deps.metrics.campaigns.attempt_started();
        self.started
            .insert((id.to_string(), attempt), now.as_millisecond());
        let request = self.request(contact, attempt);
        let dialer = self.deps.dialer.clone();
        let done = done.clone();
        let id = id.to_string();
        tokio::spawn(async move {
            let outcome = dialer.dial(request).await;
            let _ = done.send((id, attempt, outcome));
        });
        Ok(())
    }

    fn request(&self, contact: &Contact, attempt: u32) -> DialRequest {
        let c = &self.campaign;
        let mut fields = contact.fields.clone();
        if let Some(n) = &contact.name {
            fields.insert("name".into(), n.clone());
        }
        if let Some(l) = &contact.language {
            fields.insert("language".into(), l.clone());
        }
        DialRequest {
            campaign: c.name.clone(),
            contact_id: contact.id.clone(),
            attempt,
            number: contact.number.clone(),
            caller_id: c.caller_id.clone(),
            via: c.via.clone(),
            ring_timeout: c.ring_timeout,
            script: c.script.clone(),
            customer_id: contact.customer_id.clone(),
            fields,
            machine: c.machine,
            machine_message: c.machine_message.clone(),
            invite_rate: Some(c.pacing.window()),
        }
    }

    /// An attempt ended: decide what follows, commit it with its CRM
    /// writes, queue those in the outbox, note `stop_calling`.
    async fn finish(
        &mut self,
        id: &str,
        attempt: u32,
        outcome: DialOutcome,
        recovered: bool,
    ) -> Result<(), StoreError> {
        let now = self.deps.clock.now();
        let name = self.campaign.name.clone();
        let after = match self.scheduler.finish(now, id, attempt, outcome.disposition) {
            Ok(after) => after,
            Err(e) => {
                error!(campaign = %name, error = %e, "outcome for no attempt in flight, ignored");
                return Ok(());
            }
        };
        let started = self
            .started
            .remove(&(id.to_string(), attempt))
            .unwrap_or_else(|| now.as_millisecond());
        let Some(contact) = self.contacts.get(id) else {
            return Err(StoreError::BadRow(format!("contact {id} vanished")));
        };
        let request = self.request(contact, attempt);
        let writes = results::writes(&request, &outcome, started, now.as_millisecond(), recovered);
        let json = serde_json::to_string(&writes).unwrap_or_else(|_| "[]".into());
        self.deps.store.end_attempt(
            &name,
            id,
            attempt,
            now,
            outcome.disposition,
            outcome.sip_status,
            after,
            &json,
            recovered,
        )?;
        self.deps.metrics.campaigns.outcome(outcome.disposition);
        match after {
            After::Retry(at) => {
                info!(campaign = %name, contact = %id, attempt, disposition = outcome.disposition.label(), retry_at = %at, "attempt ended; retry due")
            }
            After::Done(d) => {
                info!(campaign = %name, contact = %id, attempt, disposition = d.label(), "attempt ended; contact finished")
            }
        }
        if outcome.script.as_ref().is_some_and(|s| s.stop_calling) {
            let number = request.number.clone();
            self.deps
                .dnc
                .add(&[number], &format!("stop_calling:{name}"), now)?;
            info!(campaign = %name, contact = %id, "the caller asked not to be called: added to the do-not-call list");
        }
        self.report(id, attempt, writes).await
    }

    /// Queue an attempt's writes in the outbox, then mark them reported.
    async fn report(&self, id: &str, attempt: u32, writes: Vec<Write>) -> Result<(), StoreError> {
        let Some(outbox) = &self.deps.outbox else {
            return Ok(());
        };
        let name = &self.campaign.name;
        let keyed = writes
            .into_iter()
            .enumerate()
            .map(|(i, w)| (results::key(name, id, attempt, i), w))
            .collect();
        match outbox.enqueue_keyed(keyed).await {
            Ok(_) => self.deps.store.mark_reported(name, id, attempt),
            Err(e) => {
                // Kept in the store unreported: sent again at the next start.
                warn!(campaign = %name, contact = %id, attempt, error = %e, "attempt result NOT queued for the CRM");
                Ok(())
            }
        }
    }

    /// Close attempts a previous process left open, as `failed`.
    async fn recover(&mut self) -> Result<(), StoreError> {
        let open: Vec<(String, u32)> = self
            .scheduler
            .entries()
            .iter()
            .filter_map(|e| match e.state {
                State::InFlight(a) => Some((e.id.clone(), a)),
                _ => None,
            })
            .collect();
        for (id, attempt) in open {
            warn!(campaign = %self.campaign.name, contact = %id, attempt, "attempt left open by a stopped process: closed as failed");
            let outcome = DialOutcome {
                disposition: Disposition::Failed,
                sip_status: None,
                script: None,
            };
            self.finish(&id, attempt, outcome, true).await?;
        }
        Ok(())
    }

    /// Send again the results a previous process committed but may not
    /// have queued.
    async fn report_unreported(&self) -> Result<(), StoreError> {
        for u in self.deps.store.unreported(&self.campaign.name)? {
            let writes: Vec<Write> = match serde_json::from_str(&u.writes_json) {
                Ok(w) => w,
                Err(e) => {
                    error!(campaign = %self.campaign.name, contact = %u.contact, attempt = u.attempt, error = %e, "stored result unreadable");
                    continue;
                }
            };
            self.report(&u.contact, u.attempt, writes).await?;
        }
        Ok(())
    }

    fn publish(&self, now: Timestamp, blocked: Option<Blocked>, next: Option<Timestamp>) {
        let summary = self.scheduler.summary();
        let second_ago = now
            .checked_sub(jiff::SignedDuration::from_secs(1))
            .unwrap_or(now);
        self.deps.metrics.campaigns.set_gauges(
            &self.campaign.name,
            Gauges {
                in_flight: summary.in_flight,
                attempts_last_second: self.scheduler.started_since(second_ago),
                contacts: summary.contacts,
                finished: summary.done.values().sum(),
            },
        );
        *self.status.lock().unwrap_or_else(|p| p.into_inner()) = Status {
            state: self.state,
            summary,
            blocked,
            next,
        };
    }
}
