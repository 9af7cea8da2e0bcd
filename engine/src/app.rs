//! Wiring of one voxbridge process: config in, SIP server up, a task per call,
//! and an orderly stop (drain).

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use voxbridge_media::{PortPool, Prompt};

use crate::acl::Allowlist;
use crate::admission::Admission;
use crate::call::{self, CallContext, FlowFactory, FlowStart};
use crate::cdr::{CdrError, CdrWriter};
use crate::config::Config;
use crate::flow::CallFlow;
use crate::flow::{DefaultFlow, DefaultPrompts};
use crate::metrics::Metrics;
use crate::script_flow::ScriptFlow;
use crate::script_store::ScriptStore;
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
    #[error("trunk.allow: {0}")]
    Allowlist(String),
    #[error("sip.rate_limits.allow: {0}")]
    RateLimitAllow(String),
    #[error(transparent)]
    Cdr(#[from] CdrError),
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageChoiceError),
    #[error("admin HTTP on {0}: {1}")]
    Admin(std::net::SocketAddr, std::io::Error),
    #[error("CRM: {0}")]
    Crm(String),
    #[error("dialog script {0}: {1}")]
    Script(String, String),
    #[error("text to speech: {0}")]
    Tts(String),
    #[error("speech models: {0}")]
    Speech(String),
    #[error(transparent)]
    Campaigns(#[from] crate::campaign::store::StoreError),
}

/// What campaign runners need from this engine. Attempts go to the
/// outbound SIP dialler in `dialer`, set once SIP listens.
fn campaign_deps(
    config: &Config,
    admission: &Arc<Admission>,
    metrics: &Arc<Metrics>,
    crm: Option<&Arc<crate::crm::CrmLink>>,
    dialer: crate::outbound::api::DialerCell,
) -> Result<crate::campaign::runner::Deps, StartError> {
    use crate::campaign::{dnc::Dnc, engine_dialer::EngineDialer, runner, store::Store};
    let store = Arc::new(Store::open(&config.campaigns.store)?);
    let dnc = Arc::new(Dnc::load(store.clone())?);
    let max_calls = config.calls.max_calls;
    let admission = admission.clone();
    let counted = metrics.clone();
    Ok(runner::Deps {
        store,
        dnc,
        dialer: Arc::new(EngineDialer(dialer)),
        outbox: crm.map(|c| c.outbox()),
        // Inbound calls come first: campaign calls take only what is left
        // of `calls.max_calls`, and nothing while draining. The calls in
        // progress less the campaigns' own are the inbound ones.
        capacity: Arc::new(move || {
            if admission.is_draining() {
                return 0;
            }
            let inbound = admission
                .active()
                .saturating_sub(counted.campaigns.in_flight());
            max_calls.saturating_sub(inbound)
        }),
        metrics: metrics.clone(),
        clock: runner::Clock::system(),
    })
}

/// A running engine.
pub struct Engine {
    pub sip: SipServer,
    pub metrics: Arc<Metrics>,
    pub admission: Arc<Admission>,
    pub admin_addr: Option<std::net::SocketAddr>,
    config: Arc<Config>,
    cdr: Arc<CdrWriter>,
    crm: Option<Arc<crate::crm::CrmLink>>,
    hangup_all: CancellationToken,
    stop_admin: CancellationToken,
    dialer: crate::outbound::api::DialerCell,
}

impl Engine {
    /// Load prompts, open the call records, bind SIP and admin, take calls.
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
            transferring: load(&config.flow.transferring)?,
            transfer_failed: load(&config.flow.transfer_failed)?,
        };
        let ports = PortPool::new(
            config.rtp_bind_ip(),
            config.rtp.port_min,
            config.rtp.port_max,
        )
        .map_err(|e| StartError::Ports(e.to_string()))?;
        let allow = Allowlist::parse(&config.trunk.allow).map_err(StartError::Allowlist)?;
        let metrics = Arc::new(Metrics::default());
        let limits = &config.sip.rate_limits;
        let source_cap = if limits.enabled {
            let exempt = limits
                .allow
                .iter()
                .map(|e| crate::acl::Cidr::parse(e))
                .collect::<Result<Vec<_>, _>>()
                .map_err(StartError::RateLimitAllow)?;
            crate::admission::SourceCap::new(limits.max_calls_per_source, exempt)
        } else {
            None
        };
        let admission = Admission::with_source_cap(config.calls.max_calls, allow, source_cap);
        let node = config.node.name();
        let _ = metrics.node.set(node.clone());
        let cdr_backend = crate::storage::backend(&config, &config.cdr.path)?;
        let cdr = Arc::new(CdrWriter::start(cdr_backend, &node, metrics.clone())?);

        let dialer: crate::outbound::api::DialerCell = Default::default();
        let crm = match &config.crm.config {
            Some(path) => Some(Arc::new(
                crate::crm::CrmLink::start(
                    path,
                    Duration::from_millis(config.crm.lookup_budget_ms),
                    metrics.clone(),
                )
                .map_err(StartError::Crm)?,
            )),
            None => None,
        };
        let campaigns = Arc::new(crate::campaign::manager::Manager::new(
            campaign_deps(&config, &admission, &metrics, crm.as_ref(), dialer.clone())?,
            crm.clone()
                .map(|c| c as Arc<dyn crate::campaign::manager::CustomerSource>),
        ));
        let stop_admin = CancellationToken::new();
        let live = Arc::new(crate::live_calls::LiveCalls::default());
        let console = crate::console::Console::new(
            &config,
            crate::console::Parts {
                live: live.clone(),
                metrics: metrics.clone(),
                crm: crm.clone(),
                campaigns: Some(campaigns.clone()),
            },
        );
        let admin_addr = match config.admin.listen {
            Some(addr) => Some(
                crate::admin::serve(
                    addr,
                    crate::admin::Services {
                        metrics: metrics.clone(),
                        admission: admission.clone(),
                        live: live.clone(),
                        campaigns: Some(campaigns.clone()),
                        dialer: dialer.clone(),
                        console: console.clone(),
                    },
                    stop_admin.clone(),
                )
                .await
                .map_err(|e| StartError::Admin(addr, e))?,
            ),
            None => None,
        };

        let hangup_all = CancellationToken::new();
        let flow_config = config.flow.clone();
        let (new_flow, tts, speech): (FlowFactory, _, _) = match &config.dialog.script {
            Some(path) => {
                let store = ScriptStore::load(path)
                    .map_err(|e| StartError::Script(path.display().to_string(), e))?;
                store.watch(stop_admin.clone());
                let sp = &config.speech;
                let tts = match voxbridge_models::tts::Tts::start(
                    voxbridge_models::tts::TtsConfig {
                        rate_wpm: sp.tts_rate_wpm,
                        cache_bytes: sp.tts_cache_mb << 20,
                        ..Default::default()
                    },
                ) {
                    Ok(tts) => Some(Arc::new(tts)),
                    // A build without `espeak` still runs keypad scripts
                    // with WAV prompts; each text prompt is skipped (logged).
                    Err(e @ voxbridge_models::ModelError::Disabled { .. }) => {
                        warn!(error = %e, "no text to speech: WAV prompts play, text prompts are skipped");
                        None
                    }
                    Err(e) => return Err(StartError::Tts(e.to_string())),
                };
                // Every static prompt goes into the TTS cache now and at each
                // reload, so the first caller hears the menu at once.
                if let Some(tts) = &tts {
                    crate::prewarm::spawn(store.subscribe(), tts.clone(), stop_admin.clone());
                }
                let speech = Arc::new(
                    crate::speech::Speech::start(sp)
                        .map_err(|e| StartError::Speech(e.to_string()))?,
                );
                if let Some(c) = &console {
                    c.set_speech(speech.clone());
                }
                // Validated with the config; the machine's zone if it vanished since.
                let zone = crate::calendar::zone(config.calls.time_zone.as_deref())
                    .unwrap_or_else(|_| jiff::tz::TimeZone::system());
                info!(script = %path.display(), speech = %speech.describe(), time_zone = %crate::calendar::zone_name(&zone), "calls run the dialog script");
                (
                    Box::new(move |start: &FlowStart| {
                        let customer = start.customer.as_ref().and_then(|c| {
                            serde_json::to_value(c)
                                .ok()
                                .map(crate::crm::script_view)
                                .map(voxbridge_dialog::value::Value::from)
                        });
                        Box::new(
                            ScriptFlow::new(store.current(), start.caller.clone(), customer)
                                .with_today(crate::calendar::today(&zone)),
                        ) as Box<dyn CallFlow>
                    }),
                    tts,
                    Some(speech),
                )
            }
            None => (
                Box::new(move |_: &FlowStart| {
                    Box::new(DefaultFlow::new(prompts.clone(), &flow_config)) as Box<dyn CallFlow>
                }),
                None,
                None,
            ),
        };
        // SIP listens last: a call taken while the script and the speech
        // engines still load (seconds on a busy box) would spend its
        // caller-lookup budget waiting for them.
        let (sip, mut calls) =
            SipServer::start(&config, metrics.clone(), admission.clone()).await?;
        let ctx = Arc::new(CallContext {
            config: config.clone(),
            ports: Arc::new(ports),
            metrics: metrics.clone(),
            new_flow: Arc::new(new_flow),
            cdr: cdr.clone(),
            hangup_all: hangup_all.clone(),
            dialer: sip.dialer(),
            crm: crm.clone(),
            tts,
            speech,
            live,
            panic_on_key: CallContext::panic_on_key_from_env(),
            prompt_files: CallContext::prompt_files(),
        });
        let local_host = match (config.advertised_ip(), sip.local_addr().port()) {
            (std::net::IpAddr::V6(ip), port) => format!("[{ip}]:{port}"),
            (ip, port) => format!("{ip}:{port}"),
        };
        let _ = dialer.set(Arc::new(crate::outbound::SipDialer::new(
            ctx.clone(),
            admission.clone(),
            local_host,
        )));
        // Campaigns a previous process was running go on (after a crash
        // too: attempts it left open are closed as failed first), now that
        // the dialler exists.
        match campaigns.resume_stored() {
            Ok(0) => {}
            Ok(n) => info!(campaigns = n, "campaigns resumed"),
            Err(e) => warn!(error = %e, "campaigns not resumed"),
        }
        tokio::spawn(async move {
            while let Some(leg) = calls.recv().await {
                tokio::spawn(call::run(leg, ctx.clone()));
            }
        });
        Ok(Engine {
            sip,
            metrics,
            admission,
            admin_addr,
            config,
            cdr,
            crm,
            hangup_all,
            stop_admin,
            dialer,
        })
    }

    /// The outbound dialler (what a campaign calls through).
    pub fn dialer(&self) -> Option<Arc<dyn crate::dialing::Dialer>> {
        self.dialer.get().cloned()
    }

    /// Stop taking calls (503 + Retry-After), let active calls finish for up
    /// to `calls.drain_timeout_secs`, hang up the rest, write every record,
    /// close the listeners.
    pub async fn drain(self) {
        self.admission.start_draining();
        let active = self.admission.active();
        info!(
            active,
            timeout_secs = self.config.calls.drain_timeout_secs,
            "draining"
        );
        let deadline =
            tokio::time::Instant::now() + Duration::from_secs(self.config.calls.drain_timeout_secs);
        while self.admission.active() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if self.admission.active() > 0 {
            warn!(
                active = self.admission.active(),
                "drain timeout: hanging up the remaining calls"
            );
            self.hangup_all.cancel();
            let grace = tokio::time::Instant::now() + Duration::from_secs(10);
            while self.admission.active() > 0 && tokio::time::Instant::now() < grace {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        // Give BYE/200 transactions of the last calls a moment on the wire.
        tokio::time::sleep(Duration::from_millis(200)).await;
        self.sip.stop().await;
        if let Some(crm) = &self.crm {
            crm.stop().await;
        }
        self.stop_admin.cancel();
        let cdr = self.cdr.clone();
        let _ = tokio::task::spawn_blocking(move || cdr.flush()).await;
        info!(metrics = %self.metrics.summary(), "voxbridge stopped");
    }
}

/// Run until SIGINT or SIGTERM, then drain.
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
    engine.drain().await;
}
