//! The operator console: server-rendered pages on the admin port under
//! `/console` (docs/console.md). Closed unless `console.enabled`; users log
//! in with a password (argon2 hashes in `console.users`) or the token from
//! `VOXBRIDGE_CONSOLE_TOKEN`, get an HttpOnly SameSite=Strict session
//! cookie, and send its CSRF token with every state-changing request.
//! Pages: live calls (updated by server-sent events), a call's transcript,
//! turn latencies and recording, the history of call records, the agent
//! screen pop, the CRM outbox (retry, purge), campaigns (pause, resume),
//! the dialog scripts (problems, state graph, conversation tests) and an
//! overview of the last hours as charts.

#[cfg(test)]
mod action_tests;
pub mod auth;
mod campaigns;
mod chart;
mod graph_svg;
pub mod history;
mod limit;
mod outbox;
mod overview;
mod pages;
mod routes;
pub mod samples;
mod scripts;
pub mod session;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap};

use crate::campaign::manager::Manager;
use crate::config::{Config, ConsoleRole};
use crate::crm::CrmLink;
use crate::live_calls::LiveCalls;
use crate::metrics::Metrics;
use crate::speech::Speech;
use auth::{Identity, Users};
use limit::LoginLimiter;
use session::Sessions;

pub use routes::{require_login, router};

/// What the console's handlers share.
pub struct Console {
    users: Users,
    sessions: Sessions,
    limiter: LoginLimiter,
    live: Arc<LiveCalls>,
    cdr_path: PathBuf,
    /// `/health`, `/ready`, `/metrics` need no login.
    pub open_monitoring: bool,
    metrics: Arc<Metrics>,
    /// The outbox and the lookup counters; None without `crm.config`.
    crm: Option<Arc<CrmLink>>,
    campaigns: Option<Arc<Manager>>,
    /// `dialog.script`, the script inbound calls run.
    script: Option<PathBuf>,
    /// Set once the speech engines are up (after the admin server).
    speech: OnceLock<Arc<Speech>>,
    samples: Mutex<samples::Samples>,
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console")
            .field("users", &self.users)
            .field("cdr_path", &self.cdr_path)
            .field("script", &self.script)
            .finish_non_exhaustive()
    }
}

/// The engine's parts the console reads beyond the config.
pub struct Parts {
    pub live: Arc<LiveCalls>,
    pub metrics: Arc<Metrics>,
    pub crm: Option<Arc<CrmLink>>,
    pub campaigns: Option<Arc<Manager>>,
}

/// How often the overview's counters are read (the charts keep minutes;
/// gauges are the highest of these reads).
const SAMPLE_EVERY: Duration = Duration::from_secs(5);

/// A request's verified sender.
#[derive(Debug, Clone)]
pub struct Auth {
    pub identity: Identity,
    /// The session's CSRF token; None for `Authorization: Bearer`, which a
    /// browser never attaches by itself, so needs none.
    pub csrf: Option<String>,
}

impl Auth {
    /// The token state-changing forms carry ("" for bearer requests).
    pub fn csrf_field(&self) -> &str {
        self.csrf.as_deref().unwrap_or("")
    }

    /// Whether a state-changing request carries this session's CSRF token,
    /// in the `csrf` form field or the `X-CSRF-Token` header.
    pub fn csrf_ok(&self, field: Option<&str>, headers: &HeaderMap) -> bool {
        let Some(expected) = &self.csrf else {
            return true;
        };
        let header = headers.get("x-csrf-token").and_then(|v| v.to_str().ok());
        [field, header]
            .into_iter()
            .flatten()
            .any(|given| session::same_secret(expected, given))
    }

    /// Operators and admins: retry, purge, pause, resume.
    pub fn may_act(&self) -> bool {
        self.identity.role >= ConsoleRole::Operator
    }
}

impl Console {
    /// The console for this configuration, or None when it is off. Starts
    /// the overview's sampling (a task that ends with the console); call it
    /// inside the runtime.
    pub fn new(config: &Config, parts: Parts) -> Option<Arc<Console>> {
        let c = &config.console;
        if !c.enabled {
            return None;
        }
        let console = Arc::new(Console {
            users: Users::new(c),
            sessions: Sessions::new(Duration::from_secs(c.session_ttl_secs)),
            limiter: LoginLimiter::new(c.login_attempts, Duration::from_secs(c.login_window_secs)),
            live: parts.live,
            cdr_path: config.cdr.path.clone(),
            open_monitoring: c.open_monitoring,
            metrics: parts.metrics,
            crm: parts.crm,
            campaigns: parts.campaigns,
            script: config.dialog.script.clone(),
            speech: OnceLock::new(),
            samples: Mutex::new(samples::Samples::default()),
        });
        console.sample();
        spawn_sampling(Arc::downgrade(&console));
        Some(console)
    }

    /// Hand over the speech engines (their queue goes on the overview).
    pub fn set_speech(&self, speech: Arc<Speech>) {
        let _ = self.speech.set(speech);
    }

    /// Read the counters once into the overview's minutes.
    fn sample(&self) {
        let (turn_bounds, turn_buckets, turns) = self.metrics.turn_histogram();
        let snap = samples::Snapshot {
            calls_started: self
                .metrics
                .calls_started
                .load(std::sync::atomic::Ordering::Relaxed),
            calls_active: self
                .metrics
                .calls_active
                .load(std::sync::atomic::Ordering::Relaxed),
            turn_bounds,
            turn_buckets,
            turns,
            asr_queued: self.speech.get().map_or(0, |s| s.queued() as u64),
            crm_errors: self.crm.as_ref().map_or(0, |c| c.lookup_failures()),
        };
        let now = jiff::Timestamp::now().as_millisecond();
        self.samples
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .observe(now, snap);
    }

    /// The overview's finished minutes, oldest first.
    fn minutes(&self) -> Vec<samples::Minute> {
        self.samples
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .minutes()
    }

    /// Who sent these headers: the bearer token, or a live session cookie.
    pub fn authenticate(&self, headers: &HeaderMap) -> Option<Auth> {
        if let Some(token) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        {
            return self.users.token_matches(token.trim()).then(|| Auth {
                identity: Identity {
                    name: auth::TOKEN_USER.to_string(),
                    role: ConsoleRole::Admin,
                },
                csrf: None,
            });
        }
        let id = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| session::cookie_value(v, session::COOKIE))?;
        let s = self.sessions.get(&id, Instant::now())?;
        Some(Auth {
            identity: s.identity,
            csrf: Some(s.csrf),
        })
    }
}

/// Sample every [`SAMPLE_EVERY`] while the console lives.
fn spawn_sampling(console: Weak<Console>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SAMPLE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            match console.upgrade() {
                Some(c) => c.sample(),
                None => return,
            }
        }
    });
}
