//! From the offer to the answer: read the SDP, ring, look the caller up
//! while it rings, answer when both are done; later, re-INVITE offers.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tracing::{info, warn};
use voxbridge_crm::model::Customer;
use voxbridge_media::MediaParams;

use super::{CallCore, Command, Phase};
use crate::call::{EndReason, FlowStart};
use crate::config::Config;
use crate::flow::FlowEvent;
use crate::sdp::{self, Negotiated};

impl CallCore {
    pub(super) fn setup_begin(&mut self, now: Instant) {
        let _ = now;
        let parsed = self.negotiate(&self.start.offer.clone());
        match parsed {
            Ok(n) => {
                self.negotiated = Some(n);
                self.push(Command::AllocatePort);
            }
            Err(e) => {
                self.settings
                    .metrics
                    .calls_rejected_sdp
                    .fetch_add(1, Ordering::Relaxed);
                // The dispatcher already answered bad offers (with their
                // Warning); what reaches here is chiefly a missing offer.
                let code = if self.start.offer.is_empty() {
                    488
                } else {
                    e.refusal().0
                };
                self.reject(code, &e.to_string());
            }
        }
    }

    /// Read and negotiate an offer under the call's SRTP policy; our key
    /// is drawn from the CSPRNG the first time SRTP may be used.
    fn negotiate(&mut self, body: &[u8]) -> Result<Negotiated, sdp::SdpError> {
        let offer = sdp::parse(body)?;
        let policy = self.start.srtp;
        if policy == sdp::SrtpPolicy::Off {
            return sdp::negotiate(&offer, &self.preferences());
        }
        let key = match &self.srtp_key {
            Some(key) => key.clone(),
            None => match voxbridge_media::SrtpKey::random() {
                Ok(key) => {
                    self.srtp_key = Some(key.clone());
                    key
                }
                Err(e) => {
                    // No randomness: plain RTP where allowed, never a weak key.
                    warn!(error = %e, "no SRTP key for this call");
                    return sdp::negotiate(&offer, &self.preferences()).and_then(
                        |n| match policy {
                            sdp::SrtpPolicy::Required => Err(sdp::SdpError::SrtpRequired),
                            _ => Ok(n),
                        },
                    );
                }
            },
        };
        sdp::negotiate_with(&offer, &self.preferences(), policy, &key)
    }

    fn reject(&mut self, code: u16, why: &str) {
        warn!(code, reason = why, "INVITE rejected");
        self.push(Command::Reject { code });
        self.finish(EndReason::Rejected);
    }

    pub(super) fn port_ready(&mut self, now: Instant, result: Result<u16, String>) {
        if self.phase != Phase::Setup || self.port.is_some() {
            return;
        }
        match result {
            Ok(port) => {
                self.port = Some(port);
                // Look the caller up while the phone rings.
                if self.settings.crm {
                    self.looking_up = true;
                    self.answer_by = Some(
                        self.start.received
                            + Duration::from_millis(self.config().crm.lookup_budget_ms),
                    );
                    self.push(Command::LookUpCaller);
                }
                self.push(Command::Ring);
                let ring = Duration::from_millis(self.config().sip.ring_ms);
                if !ring.is_zero() {
                    self.ring_until = Some(now + ring);
                }
                self.try_answer(now);
            }
            Err(why) => {
                self.settings
                    .metrics
                    .calls_rejected_busy
                    .fetch_add(1, Ordering::Relaxed);
                self.reject(503, &why);
            }
        }
    }

    pub(super) fn customer_found(&mut self, now: Instant, customer: Option<Customer>) {
        if !self.looking_up {
            return;
        }
        self.looking_up = false;
        match &customer {
            Some(c) => info!(
                call_id = %self.start.call_id,
                customer = %c.id,
                tier = %c.tier.as_deref().unwrap_or("-"),
                "caller identified"
            ),
            None => info!(call_id = %self.start.call_id, "caller not in the CRM"),
        }
        self.outcome.customer = customer;
        self.try_answer(now);
    }

    pub(super) fn setup_timeout(&mut self, now: Instant) {
        if self.ring_until.is_some_and(|t| now >= t) {
            self.ring_until = None;
        }
        if self.looking_up && self.answer_by.is_some_and(|t| now >= t) {
            // The budget is the CRM link's too; answer without the profile.
            self.looking_up = false;
            info!(call_id = %self.start.call_id, "caller lookup over budget; answering without it");
        }
        self.try_answer(now);
    }

    /// Answer once the ring time passed and the lookup is done (or over budget).
    fn try_answer(&mut self, now: Instant) {
        if self.phase != Phase::Setup || self.ring_until.is_some() || self.looking_up {
            return;
        }
        let (Some(n), Some(port)) = (self.negotiated.clone(), self.port) else {
            return;
        };
        let sdp = sdp::answer(&n, self.advertised_ip(), port, self.origin);
        let media = self.media_params(&n);
        if let Some(sdes) = &n.srtp {
            self.settings
                .metrics
                .srtp_calls
                .fetch_add(1, Ordering::Relaxed);
            info!(call_id = %self.start.call_id, suite = sdes.suite.sdp_name(), "media secured by SRTP (SDES)");
        }
        self.phase = Phase::Answering;
        self.settings
            .metrics
            .call_setup(now.saturating_duration_since(self.start.received));
        self.outcome.answered = Some(now);
        self.push(Command::Answer { sdp, media });
    }

    pub(super) fn answered(&mut self, now: Instant, result: Result<(), String>) {
        if self.phase != Phase::Answering {
            return;
        }
        match result {
            Ok(()) => {
                self.phase = Phase::Talking;
                self.screen_or_start(now);
            }
            Err(why) => {
                warn!(error = %why, "answer failed");
                self.release(true, EndReason::Error);
            }
        }
    }

    /// A new flow from the top (at the answer, and for a new party).
    pub(super) fn start_flow(&mut self, now: Instant) {
        let from = &self.start.from;
        let start = FlowStart {
            caller: crate::crm::caller_number(from).unwrap_or_else(|| from.clone()),
            customer: self.outcome.customer.clone(),
        };
        self.flow = Some((self.settings.new_flow)(&start));
        self.input_deadline = None;
        self.ask(now, FlowEvent::Answered);
    }

    pub(super) fn media_params(&self, n: &Negotiated) -> MediaParams {
        media_params(self.config(), n)
    }

    /// A re-INVITE: the new media parameters and our answer, or 488.
    pub(super) fn reoffer(&mut self, body: &[u8]) {
        let parsed = self.negotiate(body);
        match (parsed, self.port) {
            (Ok(n), Some(port)) => {
                self.origin = self.origin.next();
                let answer = sdp::answer(&n, self.advertised_ip(), port, self.origin);
                info!(direction = n.direction.attribute(), "re-INVITE answered");
                let media = self.media_params(&n);
                self.negotiated = Some(n);
                self.push(Command::AnswerOffer(Ok((media, answer))));
            }
            (Err(e), _) => {
                warn!(error = %e, "re-INVITE offer refused; media unchanged");
                self.push(Command::AnswerOffer(Err(488)));
            }
            (Ok(_), None) => self.push(Command::AnswerOffer(Err(500))),
        }
    }

    /// A followed REFER moved the call to a new leg on a new port.
    pub(super) fn moved(&mut self, port: u16) {
        self.port = Some(port);
    }
}

/// The media session's parameters for what the offer and answer agreed.
pub fn media_params(config: &Config, n: &Negotiated) -> MediaParams {
    MediaParams {
        codec: n.codec,
        payload_type: n.payload_type,
        dtmf_payload_type: n.dtmf_payload_type,
        ptime: Duration::from_millis(n.ptime_ms as u64),
        remote: n.remote,
        direction: n.direction,
        inactivity_timeout: Duration::from_secs(config.rtp.inactivity_timeout_secs),
        dtmf_duration: Duration::from_millis(config.rtp.dtmf_duration_ms),
        latching: config.rtp.latching.media(),
        latch_window: Duration::from_millis(config.rtp.latch_window_ms),
        // The shell knows where the SIP came from and fills it in.
        sip_source: None,
        srtp: n.srtp.as_ref().map(|s| s.media()),
    }
}
