//! Wiring of one voxbridge process: config in, SIP server up, a task per call,
//! and an orderly stop.

use std::sync::Arc;

use tokio::sync::watch;
use tracing::{info, warn};
use voxbridge_media::{PortPool, Prompt};

use crate::call::{self, CallContext};
use crate::config::Config;
use crate::flow::{DefaultFlow, DefaultPrompts};
use crate::metrics::Metrics;
use crate::sip::{SipError, SipServer};

/// Why the engine could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("prompt {path}: {message}")]
    Prompt { path: String, message: String },
    #[error(transparent)]
    Sip(#[from] SipError),
    #[error("RTP port range: {0}")]
    Ports(String),
}

/// A running engine.
pub struct Engine {
    pub sip: SipServer,
    pub metrics: Arc<Metrics>,
    stop: watch::Sender<bool>,
}

impl Engine {
    /// Load prompts, bind SIP and start accepting calls.
    pub async fn start(config: Config) -> Result<Engine, StartError> {
        let config = Arc::new(config);
        let load = |path: &std::path::Path| {
            Prompt::load(path).map_err(|e| StartError::Prompt {
                path: path.display().to_string(),
                message: e.to_string(),
            })
        };
        let prompts = DefaultPrompts {
            greeting: load(&config.flow.greeting)?,
            goodbye: load(&config.flow.goodbye)?,
        };
        let ports = PortPool::new(
            config.rtp_bind_ip(),
            config.rtp.port_min,
            config.rtp.port_max,
        )
        .map_err(|e| StartError::Ports(e.to_string()))?;
        let metrics = Arc::new(Metrics::default());
        let (sip, mut calls) = SipServer::start(&config, metrics.clone()).await?;

        let flow_config = config.flow.clone();
        let ctx = Arc::new(CallContext {
            config: config.clone(),
            ports: Arc::new(ports),
            metrics: metrics.clone(),
            new_flow: Box::new(move || Box::new(DefaultFlow::new(prompts.clone(), &flow_config))),
        });
        let (stop, mut stopped) = watch::channel(false);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    leg = calls.recv() => match leg {
                        Some(leg) => { tokio::spawn(call::run(leg, ctx.clone())); }
                        None => break,
                    },
                    _ = stopped.changed() => break,
                }
            }
        });
        Ok(Engine { sip, metrics, stop })
    }

    /// Stop taking calls and close the listeners.
    pub fn shutdown(&self) {
        let _ = self.stop.send(true);
        self.sip.shutdown();
        info!(metrics = %self.metrics.summary(), "voxbridge stopped");
    }
}

/// Run until SIGINT or SIGTERM.
pub async fn run_until_signal(engine: Engine) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                warn!(error = %e, "cannot watch SIGTERM; stopping on Ctrl-C only");
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    engine.shutdown();
}
