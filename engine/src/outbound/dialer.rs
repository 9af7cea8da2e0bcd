//! One outbound attempt, from admission to its outcome: wait for a call
//! slot (campaign calls yield to a full box), route the number, offer our
//! SDP from a port bound now, place the INVITE (digest, early media,
//! CANCEL at the ring timeout), and on an answer run the request's script
//! on the call core like any call: live calls, the call record and the CRM
//! call log come from the same call task as an inbound call's.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tracing::{info, warn};
use voxbridge_models::amd::AmdConfig;

use super::leg::OutboundLeg;
use super::route::route;
use super::script;
use crate::admission::{Admission, CallSlot, Refusal};
use crate::call::{run_leg, CallContext, MachineCheck, Party};
use crate::dialing::{DialOutcome, DialRequest, Dialer, Disposition, MachinePolicy};
use crate::pii::mask_uri;
use crate::sdp::{self, SessionOrigin};
use crate::sip::{InvitePace, OutboundCall, Placed};

/// How often an attempt waiting for a slot looks again.
const SLOT_POLL: Duration = Duration::from_millis(100);

/// The engine's SIP dialler.
pub struct SipDialer {
    ctx: Arc<CallContext>,
    admission: Arc<Admission>,
    /// Our SIP address's host and port, the From host of a direct call.
    local_host: String,
    scripts: script::Scripts,
    /// Each campaign's INVITE pacing, shared by its attempts.
    paces: Mutex<HashMap<String, Arc<InvitePace>>>,
}

impl SipDialer {
    pub fn new(ctx: Arc<CallContext>, admission: Arc<Admission>, local_host: String) -> SipDialer {
        SipDialer {
            ctx,
            admission,
            local_host,
            scripts: script::Scripts::default(),
            paces: Mutex::new(HashMap::new()),
        }
    }

    /// The campaign's pace for this request, made (or remade, when the
    /// campaign's pacing changed) on first use.
    fn pace(&self, request: &DialRequest) -> Option<Arc<InvitePace>> {
        let (n, window) = request.invite_rate?;
        let mut paces = self.paces.lock().unwrap_or_else(|p| p.into_inner());
        match paces.get(&request.campaign) {
            Some(p) if p.limits() == (n.max(1), window) => Some(p.clone()),
            _ => {
                let fresh = Arc::new(InvitePace::new(n, window));
                paces.insert(request.campaign.clone(), fresh.clone());
                Some(fresh)
            }
        }
    }

    /// A call slot: waits while the box is full (inbound calls come
    /// first); none once the engine drains.
    async fn slot(&self) -> Option<CallSlot> {
        let waiting = &self.ctx.metrics.outbound.waiting;
        waiting.fetch_add(1, Ordering::Relaxed);
        let slot = loop {
            match self.admission.admit_outbound(Instant::now()) {
                Ok(slot) => break Some(slot),
                Err(Refusal::Draining) => break None,
                Err(_) => {
                    if self.ctx.hangup_all.is_cancelled() {
                        break None;
                    }
                    tokio::time::sleep(SLOT_POLL).await;
                }
            }
        };
        waiting.fetch_sub(1, Ordering::Relaxed);
        slot
    }

    /// The call's own context: the shared one with the request's script,
    /// and no ring time (the callee's phone rang already).
    fn call_context(&self, request: &DialRequest) -> Result<Arc<CallContext>, String> {
        let c = &self.ctx;
        let zone = crate::calendar::zone(c.config.calls.time_zone.as_deref())
            .unwrap_or_else(|_| jiff::tz::TimeZone::system());
        let store = self.scripts.get(&request.script)?;
        let flow = script::flow_factory(store, request.fields.clone(), zone);
        let mut config = (*c.config).clone();
        config.sip.ring_ms = 0;
        Ok(Arc::new(CallContext {
            config: Arc::new(config),
            ports: c.ports.clone(),
            metrics: c.metrics.clone(),
            new_flow: Arc::new(flow),
            cdr: c.cdr.clone(),
            hangup_all: c.hangup_all.clone(),
            dialer: c.dialer.clone(),
            crm: c.crm.clone(),
            tts: c.tts.clone(),
            speech: c.speech.clone(),
            live: c.live.clone(),
            panic_on_key: c.panic_on_key,
            prompt_files: c.prompt_files.clone(),
        }))
    }

    async fn attempt(&self, request: DialRequest) -> DialOutcome {
        let failed = |why: &str| {
            warn!(campaign = %request.campaign, contact = %request.contact_id, error = %why, "outbound call not placed");
            DialOutcome {
                disposition: Disposition::Failed,
                sip_status: None,
                script: None,
            }
        };
        let ctx = match self.call_context(&request) {
            Ok(c) => c,
            Err(e) => return failed(&format!("script {}: {e}", request.script.display())),
        };
        let r = match route(
            &ctx.config,
            &request.number,
            &request.caller_id,
            request.via.as_deref(),
            &self.local_host,
        ) {
            Ok(r) => r,
            Err(e) => return failed(&e.to_string()),
        };
        let Some(slot) = self.slot().await else {
            return failed("the engine is draining");
        };
        let socket = match ctx.ports.bind() {
            Ok(s) => s,
            Err(e) => return failed(&format!("no RTP port: {e}")),
        };
        let port = match socket.local_addr() {
            Ok(a) => a.port(),
            Err(e) => return failed(&e.to_string()),
        };
        let prefs: Vec<_> = ctx.config.sip.codecs.iter().map(|c| c.codec()).collect();
        let offer = sdp::offer(
            &prefs,
            ctx.config.advertised_ip(),
            port,
            SessionOrigin::new(rand::random::<u32>() as u64),
        );
        info!(
            campaign = %request.campaign,
            contact = %request.contact_id,
            attempt = request.attempt,
            to = %mask_uri(&r.target),
            via = request.via.as_deref().unwrap_or("-"),
            "placing outbound call"
        );
        let placed = ctx
            .dialer
            .place(OutboundCall {
                target: r.target.clone(),
                from: r.from.clone(),
                asserted: r.asserted.clone(),
                proxy: r.proxy.clone(),
                credential: r.credential.clone(),
                offer,
                ring_timeout: request.ring_timeout,
                pace: self.pace(&request),
            })
            .await;
        let metrics = &ctx.metrics.outbound;
        let early = |e: bool| {
            if e {
                metrics.early_media.fetch_add(1, Ordering::Relaxed);
            }
        };
        match placed {
            Placed::Refused { code, early_media } => {
                early(early_media);
                info!(status = code, "outbound call refused");
                DialOutcome {
                    disposition: Disposition::from_status(code),
                    sip_status: Some(code),
                    script: None,
                }
            }
            Placed::Cancelled { early_media } => {
                early(early_media);
                metrics.cancelled.fetch_add(1, Ordering::Relaxed);
                info!(
                    ring_timeout_ms = request.ring_timeout.as_millis() as u64,
                    "no answer; cancelled"
                );
                DialOutcome {
                    disposition: Disposition::NoAnswer,
                    sip_status: Some(487),
                    script: None,
                }
            }
            Placed::Failed(why) => failed(&why),
            Placed::Answered {
                leg,
                answer: _,
                early_media,
            } => {
                early(early_media);
                let info = leg.info().clone();
                let party = Party {
                    uri: r.target.clone(),
                    customer_id: request.customer_id.clone(),
                    socket: Some(socket),
                    outbound: true,
                    machine: machine_check(&request),
                };
                metrics.active.fetch_add(1, Ordering::Relaxed);
                let end = run_leg(
                    Box::new(OutboundLeg::new(*leg, slot)),
                    info.clone(),
                    party,
                    ctx.clone(),
                )
                .await;
                metrics.active.fetch_sub(1, Ordering::Relaxed);
                let mut result = script::result(&info.call_id, end.script.as_deref());
                let disposition = match &end.machine {
                    Some(m) if m.machine => {
                        info!(note = %m.note, message_left = m.message_left, "answering machine");
                        Disposition::Machine
                    }
                    _ => Disposition::Answered,
                };
                if let Some(m) = &end.machine {
                    // The call log says what screening found.
                    result.slots.insert("machine_note".into(), m.note.clone());
                    if m.machine {
                        let left = if m.message_left { "yes" } else { "no" };
                        result.slots.insert("message_left".into(), left.into());
                    }
                }
                DialOutcome {
                    disposition,
                    sip_status: Some(200),
                    script: Some(result),
                }
            }
        }
    }
}

/// What the answered call screens for, from the request.
fn machine_check(request: &DialRequest) -> Option<MachineCheck> {
    if request.machine == MachinePolicy::Ignore {
        return None;
    }
    Some(MachineCheck {
        policy: request.machine,
        message: request.machine_message.clone(),
        language: MESSAGE_LANGUAGE.into(),
        amd: AmdConfig::default(),
    })
}

/// The answering-machine message's TTS language (campaign files have no
/// language key yet).
const MESSAGE_LANGUAGE: &str = "en";

#[async_trait]
impl Dialer for SipDialer {
    async fn dial(&self, request: DialRequest) -> DialOutcome {
        self.ctx
            .metrics
            .outbound
            .attempts
            .fetch_add(1, Ordering::Relaxed);
        let outcome = self.attempt(request).await;
        self.ctx.metrics.outbound.ended(outcome.disposition);
        outcome
    }
}
