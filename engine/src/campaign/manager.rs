//! The engine's campaigns: start one from its file (import the list and
//! the do-not-call file, then run it), pause, resume, stop, status, list;
//! and at engine start, pick up the campaigns a previous process was
//! running.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use thiserror::Error;
use tracing::{info, warn};

use super::format::{Campaign, CampaignError, ListSource};
use super::list::{self, ListError};
use super::runner::{self, Control, Deps, Handle};
use super::schedule::{Entry, Rules, Scheduler, State};
use super::store::{RunState, StoreError};

#[derive(Debug, Error)]
pub enum ManagerError {
    #[error(transparent)]
    Campaign(#[from] CampaignError),
    #[error(transparent)]
    List(#[from] ListError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("do-not-call file: {0}")]
    Dnc(String),
    #[error("list.crm: {0}")]
    Crm(String),
    #[error("no campaign named {0:?}")]
    Unknown(String),
    #[error("campaign {0:?} is already running (pause, resume or stop it)")]
    Running(String),
    #[error("campaign {name:?} is {state}: cannot {action} it")]
    BadState {
        name: String,
        state: &'static str,
        action: &'static str,
    },
}

/// Where a list query goes: the engine's CRM link.
#[async_trait::async_trait]
pub trait CustomerSource: Send + Sync {
    async fn list_customers(
        &self,
        query: &str,
        since: Option<std::time::Duration>,
    ) -> Result<Vec<voxbridge_crm::model::Customer>, String>;
}

#[async_trait::async_trait]
impl CustomerSource for crate::crm::CrmLink {
    async fn list_customers(
        &self,
        query: &str,
        since: Option<std::time::Duration>,
    ) -> Result<Vec<voxbridge_crm::model::Customer>, String> {
        let since_ms = since.map(|d| {
            jiff::Timestamp::now().as_millisecond()
                - i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
        });
        crate::crm::CrmLink::list_customers(
            self,
            &voxbridge_crm::model::CustomerQuery {
                name: query.to_string(),
                since_ms,
            },
        )
        .await
    }
}

/// What `status` shows, as JSON for the admin API and the CLI.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StatusView {
    pub name: String,
    pub file: PathBuf,
    pub state: &'static str,
    pub contacts: usize,
    pub in_flight: usize,
    pub waiting: usize,
    /// Finished contacts by disposition.
    pub finished: BTreeMap<&'static str, usize>,
    pub attempts: u64,
    /// Ended attempts by disposition.
    pub outcomes: BTreeMap<&'static str, u64>,
    /// The soonest due times, RFC 3339, with how many contacts are due then.
    pub due: Vec<(String, usize)>,
    /// Why nothing more starts right now, if something is due.
    pub blocked: Option<&'static str>,
}

/// What `start` did.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Started {
    pub name: String,
    pub imported: usize,
    pub added: usize,
    pub duplicates: usize,
    pub skipped: Vec<String>,
    pub dnc_added: usize,
}

pub struct Manager {
    deps: Deps,
    crm: Option<Arc<dyn CustomerSource>>,
    runners: Mutex<HashMap<String, Handle>>,
}

impl Manager {
    pub fn new(deps: Deps, crm: Option<Arc<dyn CustomerSource>>) -> Manager {
        Manager {
            deps,
            crm,
            runners: Mutex::new(HashMap::new()),
        }
    }

    fn runners(&self) -> std::sync::MutexGuard<'_, HashMap<String, Handle>> {
        self.runners.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Read the file, import its list and do-not-call file, and run it. A
    /// campaign started before keeps its contacts' state (new rows are
    /// added; finished contacts stay finished).
    pub async fn start(&self, file: &Path) -> Result<Started, ManagerError> {
        let campaign = Campaign::load(file)?;
        if self
            .runners()
            .get(&campaign.name)
            .is_some_and(|h| !h.is_finished())
        {
            return Err(ManagerError::Running(campaign.name));
        }
        let country = campaign.country.as_deref();
        let (imported, skipped) = match &campaign.list {
            ListSource::Csv(path) => (list::read_csv(path, country)?, Vec::new()),
            ListSource::Crm { query, since } => {
                let crm = self.crm.as_ref().ok_or_else(|| {
                    ManagerError::Crm("the engine has no CRM (set crm.config)".into())
                })?;
                let customers = crm
                    .list_customers(query, *since)
                    .await
                    .map_err(ManagerError::Crm)?;
                list::from_customers(&customers, country)
            }
        };
        let now = self.deps.clock.now();
        let dnc_added = match &campaign.dnc {
            Some(path) => {
                let numbers = super::dnc::read_file(path, country).map_err(ManagerError::Dnc)?;
                self.deps
                    .dnc
                    .add(&numbers, &format!("file:{}", path.display()), now)?
            }
            None => 0,
        };
        let absolute = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf());
        let added =
            self.deps
                .store
                .add_campaign(&campaign.name, &absolute, &imported.contacts, now)?;
        let report = Started {
            name: campaign.name.clone(),
            imported: imported.contacts.len(),
            added,
            duplicates: imported.duplicates,
            skipped,
            dnc_added,
        };
        info!(campaign = %campaign.name, imported = report.imported, added, dnc_added, "campaign started");
        let handle = runner::spawn(campaign.clone(), self.deps.clone(), RunState::Running)?;
        self.runners().insert(campaign.name, handle);
        Ok(report)
    }

    /// Run again the campaigns the store says were running or paused (the
    /// engine stopped, or was killed, during them).
    pub fn resume_stored(&self) -> Result<usize, ManagerError> {
        let mut resumed = 0;
        for row in self.deps.store.campaigns()? {
            if !matches!(row.state, RunState::Running | RunState::Paused) {
                continue;
            }
            let campaign = match Campaign::load(&row.file) {
                Ok(c) if c.name == row.name => c,
                Ok(c) => {
                    warn!(campaign = %row.name, file = %row.file.display(), found = %c.name, "campaign file now names another campaign; not resumed");
                    continue;
                }
                Err(e) => {
                    warn!(campaign = %row.name, error = %e, "campaign file unreadable; not resumed");
                    continue;
                }
            };
            let handle = runner::spawn(campaign, self.deps.clone(), row.state)?;
            self.runners().insert(row.name.clone(), handle);
            info!(campaign = %row.name, state = row.state.label(), "campaign resumed after a restart");
            resumed += 1;
        }
        Ok(resumed)
    }

    /// Pause, resume or stop a campaign by name.
    pub fn control(&self, name: &str, c: Control) -> Result<(), ManagerError> {
        let runners = self.runners();
        let action = match c {
            Control::Pause => "pause",
            Control::Resume => "resume",
            Control::Stop => "stop",
        };
        match runners.get(name) {
            Some(h) if !h.is_finished() => {
                let state = h.status().state;
                let fits = match c {
                    Control::Pause => state == RunState::Running,
                    Control::Resume => state == RunState::Paused,
                    Control::Stop => matches!(state, RunState::Running | RunState::Paused),
                };
                if !fits {
                    return Err(ManagerError::BadState {
                        name: name.to_string(),
                        state: state.label(),
                        action,
                    });
                }
                h.send(c);
                Ok(())
            }
            _ => match self.deps.store.campaign(name)? {
                Some(row) => Err(ManagerError::BadState {
                    name: name.to_string(),
                    state: row.state.label(),
                    action,
                }),
                None => Err(ManagerError::Unknown(name.to_string())),
            },
        }
    }

    pub fn status(&self, name: &str) -> Result<StatusView, ManagerError> {
        let row = self
            .deps
            .store
            .campaign(name)?
            .ok_or_else(|| ManagerError::Unknown(name.to_string()))?;
        let live = self
            .runners()
            .get(name)
            .filter(|h| !h.is_finished())
            .map(Handle::status);
        let (state, summary, blocked) = match live {
            Some(s) => (s.state, s.summary, s.blocked),
            None => (row.state, self.stored_summary(name)?, None),
        };
        Ok(StatusView {
            name: row.name,
            file: row.file,
            state: state.label(),
            contacts: summary.contacts,
            in_flight: summary.in_flight,
            waiting: summary.waiting,
            finished: summary.done,
            attempts: summary.attempts,
            outcomes: summary.outcomes,
            due: summary
                .due
                .into_iter()
                .map(|(at, n)| (at.to_string(), n))
                .collect(),
            blocked: blocked.map(|b| b.label()),
        })
    }

    pub fn list(&self) -> Result<Vec<StatusView>, ManagerError> {
        let names: Vec<String> = self
            .deps
            .store
            .campaigns()?
            .into_iter()
            .map(|c| c.name)
            .collect();
        names.iter().map(|n| self.status(n)).collect()
    }

    /// The summary of a campaign no runner holds, from the store.
    fn stored_summary(&self, name: &str) -> Result<super::schedule::Summary, ManagerError> {
        let entries = self
            .deps
            .store
            .load(name)?
            .into_iter()
            .map(|s| Entry {
                id: s.contact.id,
                number: s.contact.number,
                zone: jiff::tz::TimeZone::UTC,
                attempts: s.attempts,
                counts: s.counts,
                state: match (s.disposition, s.open_attempt, s.next_due) {
                    (Some(d), _, _) => State::Done(d),
                    (None, Some(a), _) => State::InFlight(a),
                    (None, None, Some(at)) => State::Due(at),
                    (None, None, None) => State::Due(jiff::Timestamp::UNIX_EPOCH),
                },
            })
            .collect();
        let rules = Rules {
            pacing: super::format::Pacing {
                max_concurrent: 1,
                calls_per_second: 1.0,
            },
            retries: Default::default(),
            hours: None,
        };
        Ok(Scheduler::new(rules, entries).summary())
    }
}
