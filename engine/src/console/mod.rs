//! The operator console: server-rendered pages on the admin port under
//! `/console` (docs/console.md). Closed unless `console.enabled`; users log
//! in with a password (argon2 hashes in `console.users`) or the token from
//! `VOXBRIDGE_CONSOLE_TOKEN`, get an HttpOnly SameSite=Strict session
//! cookie, and send its CSRF token with every state-changing request.
//! Pages: live calls (updated by server-sent events), a call's transcript,
//! turn latencies and recording, and the history of call records.

pub mod auth;
pub mod history;
mod limit;
mod pages;
mod routes;
pub mod session;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap};

use crate::config::{Config, ConsoleRole};
use crate::live_calls::LiveCalls;
use auth::{Identity, Users};
use limit::LoginLimiter;
use session::Sessions;

pub use routes::{require_login, router};

/// What the console's handlers share.
#[derive(Debug)]
pub struct Console {
    users: Users,
    sessions: Sessions,
    limiter: LoginLimiter,
    live: Arc<LiveCalls>,
    cdr_path: PathBuf,
    /// `/health`, `/ready`, `/metrics` need no login.
    pub open_monitoring: bool,
}

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

    pub fn may_act(&self) -> bool {
        self.identity.role >= ConsoleRole::Operator
    }
}

impl Console {
    /// The console for this configuration, or None when it is off.
    pub fn new(config: &Config, live: Arc<LiveCalls>) -> Option<Arc<Console>> {
        let c = &config.console;
        if !c.enabled {
            return None;
        }
        Some(Arc::new(Console {
            users: Users::new(c),
            sessions: Sessions::new(Duration::from_secs(c.session_ttl_secs)),
            limiter: LoginLimiter::new(c.login_attempts, Duration::from_secs(c.login_window_secs)),
            live,
            cdr_path: config.cdr.path.clone(),
            open_monitoring: c.open_monitoring,
        }))
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
