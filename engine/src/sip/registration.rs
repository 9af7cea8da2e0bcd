//! Keeping accounts registered: REGISTER with digest authentication (the
//! stack answers MD5 and SHA-256 challenges, `qop=auth`), refresh at 75 % of
//! the granted lifetime, back off after failures, and un-REGISTER on shutdown.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use rsipstack::dialog::authenticate::Credential;
use rsipstack::dialog::registration::{RefreshOutcome, Registration};
use rsipstack::transaction::endpoint::EndpointInnerRef;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::SipError;
use crate::config::AccountConfig;
use crate::metrics::Metrics;

/// The registration tasks of a process.
pub struct Registrations {
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl Registrations {
    /// Start one task per account. Fails at once on a missing password or a
    /// bad registrar URI, so a misconfigured account stops the start.
    pub fn start(
        endpoint: EndpointInnerRef,
        accounts: &[AccountConfig],
        metrics: Arc<Metrics>,
    ) -> Result<Registrations, SipError> {
        let stop = CancellationToken::new();
        let mut tasks = Vec::new();
        for account in accounts {
            let password = account
                .password()
                .map_err(|e| SipError::Config(format!("account {}: {e}", account.username)))?;
            let server = rsipstack::sip::Uri::try_from(account.registrar.as_str())
                .map_err(|e| SipError::Config(format!("registrar {}: {e}", account.registrar)))?;
            let credential = Credential {
                username: account.username.clone(),
                password,
                realm: None,
                auth_username: account.auth_username.clone(),
            };
            let registration = Registration::new(endpoint.clone(), Some(credential));
            tasks.push(tokio::spawn(keep_registered(
                registration,
                server,
                account.clone(),
                metrics.clone(),
                stop.clone(),
            )));
        }
        Ok(Registrations { stop, tasks })
    }

    /// Un-REGISTER every account (expires 0) and wait for it, briefly.
    pub async fn unregister_all(self) {
        self.stop.cancel();
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
    }
}

async fn keep_registered(
    mut registration: Registration,
    server: rsipstack::sip::Uri,
    account: AccountConfig,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) {
    let registrar = account.registrar.clone();
    let user = account.username.clone();
    registration
        .keep_alive(server.clone(), account.expires_secs, stop.child_token(), |outcome| match outcome {
            RefreshOutcome::Registered(resp) => {
                metrics.registrations_ok.fetch_add(1, Ordering::Relaxed);
                info!(registrar = %registrar, user = %user, status = resp.status_code.code(), "registered");
            }
            RefreshOutcome::Rejected(resp) => {
                metrics.registration_failures.fetch_add(1, Ordering::Relaxed);
                // 401/403 after our credentials went in means a wrong password.
                warn!(
                    registrar = %registrar,
                    user = %user,
                    status = resp.status_code.code(),
                    reason = %resp.status_code,
                    "registration rejected; retrying with backoff"
                );
            }
            RefreshOutcome::Failed(e) => {
                metrics.registration_failures.fetch_add(1, Ordering::Relaxed);
                warn!(registrar = %registrar, user = %user, error = %e, "registration failed; retrying with backoff");
            }
        })
        .await;
    match tokio::time::timeout(
        Duration::from_secs(4),
        registration.register(server, Some(0)),
    )
    .await
    {
        Ok(Ok(resp)) => {
            info!(registrar = %registrar, user = %user, status = resp.status_code.code(), "unregistered")
        }
        Ok(Err(e)) => warn!(registrar = %registrar, user = %user, error = %e, "un-REGISTER failed"),
        Err(_) => warn!(registrar = %registrar, user = %user, "un-REGISTER timed out"),
    }
}
