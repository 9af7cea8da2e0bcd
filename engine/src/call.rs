//! The life of one call, from INVITE to BYE: negotiate SDP, ring, answer,
//! run media, and carry out what the [`CallFlow`] asks until someone hangs up.
//!
//! This task is the only place that knows SIP, media and the flow at once.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio_util::sync::CancellationToken;

use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::sleep_until;
use tracing::{debug, info, warn};
use voxbridge_media::{MediaEvent, MediaHandle, MediaParams, MediaSession, PortPool, Prompt};

use crate::call_log::{call_log, CallActivity};
use crate::cdr::{CallRecord, CdrWriter};
use crate::config::Config;
use crate::flow::{CallFlow, FlowAction, FlowEvent};
use crate::live_calls::LiveCalls;
use crate::metrics::Metrics;
use crate::pii::mask_uri;
use crate::sdp::{self, Negotiated, SdpError, SessionOrigin};
use crate::sip::{CallLeg, DialError, Dialer, LegEnd, LegEvent};
use crate::speech::sink::{SpeechEvent, SpeechSink, Tee};
use crate::speech::understanding::EngineChoice;
use crate::speech::{Speech, SpeechError, Understood};
use crate::transfer::{self, ContextOptions, TransferState, TransferTracker};
use crate::turn_latency::{Stage, TurnClock, TurnKind};

/// Why a call ended: one label per metric series and call record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The caller hung up (BYE).
    CallerHangup,
    /// The caller gave up before we answered (CANCEL).
    CallerCancel,
    /// The flow hung up.
    BotHangup,
    /// No RTP from the caller for `rtp.inactivity_timeout_secs`.
    RtpTimeout,
    /// We refused the INVITE (bad SDP, no port, overload).
    Rejected,
    /// No ACK, a transaction timeout or an internal failure.
    Error,
    /// Handed to a human by REFER; the target answered.
    Transferred,
    /// The last transfer attempt failed and the call then ended.
    TransferFailed,
}

impl EndReason {
    pub const COUNT: usize = 8;
    pub const ALL: [EndReason; EndReason::COUNT] = [
        EndReason::CallerHangup,
        EndReason::CallerCancel,
        EndReason::BotHangup,
        EndReason::RtpTimeout,
        EndReason::Rejected,
        EndReason::Error,
        EndReason::Transferred,
        EndReason::TransferFailed,
    ];

    pub fn label(self) -> &'static str {
        match self {
            EndReason::CallerHangup => "caller_hangup",
            EndReason::CallerCancel => "caller_cancel",
            EndReason::BotHangup => "bot_hangup",
            EndReason::RtpTimeout => "rtp_timeout",
            EndReason::Rejected => "rejected",
            EndReason::Error => "error",
            EndReason::Transferred => "transferred",
            EndReason::TransferFailed => "transfer_failed",
        }
    }
}

/// What a flow knows when the call is answered.
pub struct FlowStart {
    /// The caller's number (or SIP user) from the From URI.
    pub caller: String,
    /// The CRM profile, when the lookup found one.
    pub customer: Option<voxbridge_crm::model::Customer>,
}

/// Builds the flow of each new call.
pub type FlowFactory = Box<dyn Fn(&FlowStart) -> Box<dyn CallFlow> + Send + Sync>;

/// What every call task shares.
pub struct CallContext {
    pub config: Arc<Config>,
    pub ports: Arc<PortPool>,
    pub metrics: Arc<Metrics>,
    /// Builds the flow for a new call.
    pub new_flow: FlowFactory,
    /// Call records go here when a call ends.
    pub cdr: Arc<CdrWriter>,
    /// Fired when the drain timeout passes: every call hangs up.
    pub hangup_all: CancellationToken,
    /// Places calls when a peer REFERs us elsewhere.
    pub dialer: Dialer,
    /// The CRM, when one is configured.
    pub crm: Option<Arc<crate::crm::CrmLink>>,
    /// Text to speech for scripts' `say`.
    pub tts: Option<Arc<voxbridge_models::tts::Tts>>,
    /// Recognisers and the intent model for scripts' questions.
    pub speech: Option<Arc<Speech>>,
    /// Transcripts so far, for the admin endpoint.
    pub live: Arc<LiveCalls>,
}

/// Run one call to its end and write its record.
pub async fn run(leg: CallLeg, ctx: Arc<CallContext>) -> EndReason {
    ctx.metrics.calls_started.fetch_add(1, Ordering::Relaxed);
    ctx.metrics.calls_active.fetch_add(1, Ordering::Relaxed);
    let info = leg.info().clone();
    ctx.live.start(&info.call_id);
    let mut call = Call::new(leg, ctx.clone());
    let mut reason = call.run().await;
    if call.last_transfer_failed && matches!(reason, EndReason::CallerHangup | EndReason::BotHangup)
    {
        reason = EndReason::TransferFailed;
    }
    let record = CallRecord {
        call_id: info.call_id.clone(),
        from: info.from.clone(),
        to: info.to.clone(),
        started: info.received_at,
        answered: call.answered,
        ended: SystemTime::now(),
        end_reason: reason.label().to_string(),
        dtmf: std::mem::take(&mut call.dtmf),
        recording: call.recording.take(),
        transfer_target: call.transfer_target.take(),
        turns: std::mem::take(&mut call.turns),
    };
    info!(
        call_id = %info.call_id,
        reason = reason.label(),
        duration_ms = record.duration().as_millis() as u64,
        "call ended"
    );
    // The call log goes to the durable outbox in the same step that
    // closes the call record, and the task waits for its commit.
    if let (Some(crm), true) = (&ctx.crm, call.answered.is_some()) {
        call.activity.customer_id = call.customer.as_ref().map(|c| c.id.clone());
        crm.record(call_log(
            &record,
            call.script_record.as_deref(),
            &call.activity,
        ))
        .await;
    }
    ctx.live.end(&info.call_id);
    ctx.cdr.write(record);
    ctx.metrics.calls_active.fetch_sub(1, Ordering::Relaxed);
    ctx.metrics.call_ended(reason);
    // The leg holds the call's admission slot: free it last, so a draining
    // process that sees zero calls also sees every record queued.
    drop(call);
    reason
}

struct Call {
    leg: CallLeg,
    ctx: Arc<CallContext>,
    origin: SessionOrigin,
    answered: Option<SystemTime>,
    dtmf: String,
    recording: Option<std::path::PathBuf>,
    transfer_target: Option<String>,
    last_transfer_failed: bool,
    /// Who the CRM says is calling.
    customer: Option<voxbridge_crm::model::Customer>,
    /// What a dialog script made of the call.
    script_record: Option<Box<voxbridge_dialog::interp::CallRecord>>,
    /// Lookups, tickets and transfer results, for the CRM's call log.
    activity: CallActivity,
    /// The turn being timed, and those measured.
    clock: TurnClock,
    turns: Vec<crate::turn_latency::TurnLatency>,
    /// The script's current question, while speech answers it.
    listen: Option<Box<voxbridge_dialog::interp::Listen>>,
    /// Bumped whenever the open question changes, so a transcript that
    /// arrives after the caller moved on (keys, a timeout) is dropped.
    listen_generation: u64,
    /// Recognition running off the call loop, for the question it answers.
    recognition: Option<Recognition>,
    /// When the last key arrived (a keyed turn ends there).
    last_key_at: Option<Instant>,
    /// Tells the endpointer on the media task whether a prompt plays.
    prompt_playing: Arc<AtomicBool>,
    /// Tells it the end-of-speech silence the open question wants (0: default).
    end_silence_ms: Arc<std::sync::atomic::AtomicU32>,
    /// What the endpointer noticed, when speech is on.
    speech_events: Option<UnboundedReceiver<SpeechEvent>>,
    /// The Call-ID the call started with (the live transcript's key; a
    /// followed incoming REFER changes the leg).
    call_id: String,
}

impl Call {
    fn new(leg: CallLeg, ctx: Arc<CallContext>) -> Self {
        let call_id = leg.info().call_id.clone();
        let mut call = Call {
            leg,
            ctx,
            origin: SessionOrigin::new(rand::random::<u32>() as u64),
            answered: None,
            dtmf: String::new(),
            recording: None,
            transfer_target: None,
            last_transfer_failed: false,
            customer: None,
            script_record: None,
            activity: CallActivity::default(),
            clock: TurnClock::default(),
            turns: Vec::new(),
            listen: None,
            listen_generation: 0,
            recognition: None,
            last_key_at: None,
            prompt_playing: Arc::new(AtomicBool::new(false)),
            end_silence_ms: Arc::new(std::sync::atomic::AtomicU32::new(0)),
            speech_events: None,
            call_id: String::new(),
        };
        call.call_id = call_id;
        call
    }

    fn advertised_ip(&self) -> IpAddr {
        self.ctx.config.advertised_ip()
    }

    fn preferences(&self) -> Vec<voxbridge_media::Codec> {
        self.ctx
            .config
            .sip
            .codecs
            .iter()
            .map(|c| c.codec())
            .collect()
    }

    fn media_params(&self, n: &Negotiated) -> MediaParams {
        MediaParams {
            codec: n.codec,
            payload_type: n.payload_type,
            dtmf_payload_type: n.dtmf_payload_type,
            ptime: Duration::from_millis(n.ptime_ms as u64),
            remote: n.remote,
            direction: n.direction,
            inactivity_timeout: Duration::from_secs(self.ctx.config.rtp.inactivity_timeout_secs),
            dtmf_duration: Duration::from_millis(self.ctx.config.rtp.dtmf_duration_ms),
        }
    }

    fn reject(&mut self, code: u16, why: &str) -> EndReason {
        warn!(call_id = %self.leg.info().call_id, code, reason = why, "INVITE rejected");
        if let Err(e) = self.leg.reject(code, None) {
            warn!(call_id = %self.leg.info().call_id, error = %e, "could not send rejection");
        }
        EndReason::Rejected
    }

    async fn run(&mut self) -> EndReason {
        let info = self.leg.info().clone();
        info!(
            call_id = %info.call_id,
            from = %mask_uri(&info.from),
            to = %mask_uri(&info.to),
            "incoming call"
        );

        let negotiated =
            match sdp::parse(&info.body).and_then(|o| sdp::negotiate(&o, &self.preferences())) {
                Ok(n) => n,
                Err(e) => {
                    self.ctx
                        .metrics
                        .calls_rejected_sdp
                        .fetch_add(1, Ordering::Relaxed);
                    let code = match e {
                        SdpError::NoAudio | SdpError::NoCommonCodec | SdpError::NoConnection => 488,
                        _ if info.body.is_empty() => 488,
                        _ => 400,
                    };
                    return self.reject(code, &e.to_string());
                }
            };

        let socket = match self.ctx.ports.bind() {
            Ok(s) => s,
            Err(e) => {
                self.ctx
                    .metrics
                    .calls_rejected_busy
                    .fetch_add(1, Ordering::Relaxed);
                return self.reject(503, &e.to_string());
            }
        };
        let local_port = match socket.local_addr() {
            Ok(a) => a.port(),
            Err(e) => return self.reject(500, &e.to_string()),
        };

        // Look the caller up while the phone rings.
        let lookup = self.ctx.crm.clone().map(|crm| {
            let from = info.from.clone();
            let since = info.received;
            tokio::spawn(async move { crm.lookup(&from, since).await })
        });
        if let Err(e) = self.leg.ringing() {
            warn!(call_id = %info.call_id, error = %e, "could not send 180");
        }
        let ring = Duration::from_millis(self.ctx.config.sip.ring_ms);
        if !ring.is_zero() {
            let until = tokio::time::Instant::now() + ring;
            loop {
                tokio::select! {
                    _ = sleep_until(until) => break,
                    _ = self.ctx.hangup_all.cancelled() => {
                        let _ = self.leg.reject(503, None);
                        return EndReason::Rejected;
                    }
                    ev = self.leg.next_event() => match ev {
                        Some(LegEvent::Terminated(LegEnd::Cancelled)) => return EndReason::CallerCancel,
                        Some(LegEvent::Terminated(_)) | None => return EndReason::Error,
                        // A re-INVITE before we answered is the stack's to refuse.
                        Some(_) => {}
                    }
                }
            }
        }

        if let Some(lookup) = lookup {
            // Bounded by the lookup budget inside `CrmLink::lookup`.
            self.customer = lookup.await.ok().flatten();
            match &self.customer {
                Some(c) => info!(
                    call_id = %info.call_id,
                    customer = %c.id,
                    tier = %c.tier.as_deref().unwrap_or("-"),
                    "caller identified"
                ),
                None => info!(call_id = %info.call_id, "caller not in the CRM"),
            }
        }
        let answer = sdp::answer(&negotiated, self.advertised_ip(), local_port, self.origin);
        if let Err(e) = self.leg.answer(answer) {
            warn!(call_id = %info.call_id, error = %e, "could not send 200 OK");
            return EndReason::Error;
        }
        self.answered = Some(SystemTime::now());
        self.ctx.metrics.call_setup(info.received.elapsed());
        let params = self.media_params(&negotiated);
        let sink = match (self.recorder(&info), self.speech_sink()) {
            (Some(rec), Some(speech)) => Some(Box::new(Tee(rec, speech)) as Box<_>),
            (Some(one), None) | (None, Some(one)) => Some(one),
            (None, None) => None,
        };
        let started = match sink {
            Some(sink) => MediaSession::start_with_sink(socket, params, sink),
            None => MediaSession::start(socket, params),
        };
        let media = match started {
            Ok(m) => m,
            Err(e) => {
                warn!(call_id = %info.call_id, error = %e, "media session did not start");
                let _ = self.bye().await;
                return EndReason::Error;
            }
        };
        self.talk(media).await
    }

    /// The answered call: route leg, media and flow events until the end.
    async fn talk(&mut self, media: MediaHandle) -> EndReason {
        let mut flow = (self.ctx.new_flow)(&self.flow_start());
        let reason = self.converse(&mut flow, media).await;
        // Whoever ended the call, the script writes down what it produced.
        self.collect_record(flow.as_mut());
        reason
    }

    /// Route leg, media and flow events until the call ends.
    async fn converse(
        &mut self,
        flow: &mut Box<dyn CallFlow>,
        mut media: MediaHandle,
    ) -> EndReason {
        let call_id = self.leg.info().call_id.clone();
        let mut deadline: Option<tokio::time::Instant> = None;
        let mut pending = self.ask(flow.as_mut(), FlowEvent::Answered);
        let mut queued: VecDeque<FlowEvent> = VecDeque::new();
        let mut transfer: Option<(TransferTracker, tokio::time::Instant)> = None;

        loop {
            for action in pending.drain(..) {
                match action {
                    FlowAction::Play(prompt) => {
                        media.play(prompt);
                    }
                    FlowAction::StopPlayback => {
                        media.stop_playback();
                        self.prompt_playing.store(false, Ordering::Relaxed);
                        self.ctx.metrics.barge_ins.fetch_add(1, Ordering::Relaxed);
                    }
                    FlowAction::AwaitInput(d) => deadline = Some(tokio::time::Instant::now() + d),
                    FlowAction::DigitsCollected(digits) => {
                        info!(call_id = %call_id, digits = %digits, "digits collected");
                        let keyed = self.last_key_at.unwrap_or_else(Instant::now);
                        self.clock.open(TurnKind::Dtmf, keyed);
                        // Entry that ended by the inter-digit timeout waited
                        // for more keys: that wait is keypad endpointing.
                        self.clock.add(Stage::Endpointing, keyed.elapsed());
                        self.listen = None;
                        self.listen_generation += 1;
                        self.end_silence_ms.store(0, Ordering::Relaxed);
                        self.ctx
                            .live
                            .line(&self.call_id, "caller", format!("[keys] {digits}"));
                        self.dtmf.push_str(&digits);
                        // The caller moved on after a failed transfer.
                        self.last_transfer_failed = false;
                    }
                    FlowAction::Say {
                        text,
                        language,
                        voice,
                        ..
                    } => {
                        self.ctx.live.line(&self.call_id, "bot", text.clone());
                        let t = Instant::now();
                        let spoken = self.speak(&text, &language, voice.as_deref()).await;
                        self.clock.add(Stage::Tts, t.elapsed());
                        match spoken {
                            Some(prompt) => {
                                media.play(prompt);
                            }
                            None => queued.push_back(FlowEvent::PlaybackDone),
                        }
                    }
                    FlowAction::PlayFile { path, .. } => match Prompt::load(&path) {
                        Ok(prompt) => {
                            media.play(prompt);
                        }
                        Err(e) => {
                            warn!(call_id = %call_id, error = %e, "prompt file not played");
                            queued.push_back(FlowEvent::PlaybackDone);
                        }
                    },
                    FlowAction::Lookup(request) => {
                        let t = Instant::now();
                        let event = match &self.ctx.crm {
                            Some(crm) => match crm.script_lookup(&request).await {
                                Ok(value) => FlowEvent::LookupDone(value),
                                Err(why) => FlowEvent::LookupFailed(why),
                            },
                            None => FlowEvent::LookupFailed("no CRM configured".to_string()),
                        };
                        self.clock.add(Stage::Lookup, t.elapsed());
                        let outcome = match &event {
                            FlowEvent::LookupDone(v) if v.is_null() => "not found".to_string(),
                            FlowEvent::LookupDone(_) => "found".to_string(),
                            FlowEvent::LookupFailed(why) => format!("failed: {why}"),
                            _ => String::new(),
                        };
                        let line = format!(
                            "{}: {outcome} ({} ms)",
                            request.name,
                            t.elapsed().as_millis()
                        );
                        self.ctx
                            .live
                            .line(&self.call_id, "system", format!("lookup {line}"));
                        self.activity.lookups.push(line);
                        queued.push_back(event);
                    }
                    FlowAction::Ticket(request) => {
                        let t = Instant::now();
                        let event = match &self.ctx.crm {
                            Some(crm) => {
                                match crm.ticket(&request, &call_id, self.customer.as_ref()).await {
                                    Ok(id) => {
                                        self.activity.tickets.push(id.clone());
                                        self.ctx.live.line(
                                            &self.call_id,
                                            "system",
                                            format!("ticket {id} created"),
                                        );
                                        FlowEvent::TicketCreated(id)
                                    }
                                    Err(why) => FlowEvent::TicketFailed(why),
                                }
                            }
                            None => FlowEvent::TicketFailed("no CRM configured".to_string()),
                        };
                        self.clock.add(Stage::Lookup, t.elapsed());
                        queued.push_back(event);
                    }
                    FlowAction::Listen(listen) => {
                        match self.ctx.speech.as_ref().map(|s| s.choose(&listen)) {
                            Some(EngineChoice::None) | None => {
                                debug!(call_id = %call_id, language = listen.language.code(), "no recogniser for this question; keys only");
                            }
                            Some(engine) => {
                                if let Some(speech) = &self.ctx.speech {
                                    self.end_silence_ms
                                        .store(speech.end_silence_ms(engine), Ordering::Relaxed);
                                }
                                self.listen = Some(listen);
                                self.listen_generation += 1;
                            }
                        }
                    }
                    FlowAction::Record(record) => self.script_record = Some(record),
                    FlowAction::Transfer { target, context } => {
                        self.clock.abandon();
                        self.ctx.live.line(
                            &self.call_id,
                            "system",
                            // A configured name says where; a URI may hold a number.
                            if self.ctx.config.transfer.targets.contains_key(&target) {
                                format!("transfer to {target}")
                            } else {
                                format!("transfer to {}", mask_uri(&target))
                            },
                        );
                        match self.start_transfer(&target, context).await {
                            Ok(tracker) => {
                                let timeout =
                                    Duration::from_secs(self.ctx.config.transfer.timeout_secs);
                                transfer = Some((tracker, tokio::time::Instant::now() + timeout));
                            }
                            Err(why) => queued.push_back(self.transfer_failed(why)),
                        }
                    }
                    FlowAction::Hangup => {
                        self.clock.abandon();
                        self.finish_media(media).await;
                        if let Err(e) = self.bye().await {
                            warn!(call_id = %call_id, error = %e, "BYE failed");
                        }
                        return EndReason::BotHangup;
                    }
                }
            }

            if let Some(event) = queued.pop_front() {
                pending = self.ask(flow.as_mut(), event);
                continue;
            }

            let event = tokio::select! {
                ev = self.leg.next_event() => match ev {
                    Some(LegEvent::Referred(target, responder)) => {
                        if !self.ctx.config.transfer.accept_incoming_refer {
                            info!(call_id = %call_id, "incoming REFER declined (transfer.accept_incoming_refer is off)");
                            responder.reject(603).await;
                            continue;
                        }
                        responder.accept().await;
                        // The 202 is sent by the dialog's task: let it leave
                        // before our NOTIFY so the peer sees them in order.
                        tokio::time::sleep(Duration::from_millis(30)).await;
                        if let Err(e) = self.leg.notify_refer(100, false).await {
                            warn!(call_id = %call_id, error = %e, "NOTIFY 100 failed");
                        }
                        info!(call_id = %call_id, target = %mask_uri(&target), "referred by the peer; calling the target");
                        match self.follow_refer(&target).await {
                            Ok((mut new_leg, new_media)) => {
                                if let Err(e) = self.leg.notify_refer(200, true).await {
                                    warn!(call_id = %call_id, error = %e, "NOTIFY 200 failed");
                                }
                                self.finish_media(media).await;
                                if let Err(e) = self.bye().await {
                                    warn!(call_id = %call_id, error = %e, "BYE to the referrer failed");
                                }
                                new_leg.take_slot_from(&mut self.leg);
                                self.leg = new_leg;
                                media = new_media;
                                self.transfer_target = Some(target);
                                info!(call_id = %call_id, new_call_id = %self.leg.info().call_id, "call moved to the REFER target");
                                // The new party starts the flow from the top.
                                *flow = (self.ctx.new_flow)(&self.flow_start());
                                deadline = None;
                                transfer = None;
                                Some(FlowEvent::Answered)
                            }
                            Err(code) => {
                                warn!(call_id = %call_id, status = code, "REFER target not reached; keeping the call");
                                if let Err(e) = self.leg.notify_refer(code, true).await {
                                    warn!(call_id = %call_id, error = %e, "NOTIFY failed");
                                }
                                None
                            }
                        }
                    }
                    Some(LegEvent::ReferProgress { code, terminated }) => {
                        let Some((tracker, _)) = transfer.as_mut() else {
                            continue;
                        };
                        match tracker.on_notify(code, terminated) {
                            TransferState::Pending => None,
                            TransferState::Succeeded => {
                                self.ctx.metrics.transfers_ok.fetch_add(1, Ordering::Relaxed);
                                info!(call_id = %call_id, status = code, "transfer answered; leaving the call");
                                self.activity.transfer_result = Some("answered".to_string());
                                self.ctx.live.line(&self.call_id, "system", "transfer answered");
                                self.finish_media(media).await;
                                // Our 200 to the final NOTIFY is sent by another
                                // task; let it leave first, as some UAs treat a
                                // BYE that overtakes it as an error.
                                tokio::time::sleep(Duration::from_millis(50)).await;
                                if let Err(e) = self.bye().await {
                                    warn!(call_id = %call_id, error = %e, "BYE after transfer failed");
                                }
                                return EndReason::Transferred;
                            }
                            TransferState::Failed(why) => {
                                transfer = None;
                                Some(self.transfer_failed(why))
                            }
                        }
                    }
                    Some(LegEvent::Confirmed) => None,
                    Some(LegEvent::Dtmf(d)) => {
                        self.ctx.metrics.dtmf_digits.fetch_add(1, Ordering::Relaxed);
                        self.last_key_at = Some(Instant::now());
                        Some(FlowEvent::Digit(d))
                    }
                    Some(LegEvent::Offer(body, responder)) => {
                        match sdp::parse(&body).and_then(|o| sdp::negotiate(&o, &self.preferences())) {
                            Ok(n) => {
                                self.origin = self.origin.next();
                                if let Err(e) = media.update(self.media_params(&n)) {
                                    warn!(call_id = %call_id, error = %e, "re-INVITE media parameters refused");
                                    responder.reject(488).await;
                                    continue;
                                }
                                let port = media.local_addr().port();
                                responder.accept(sdp::answer(&n, self.advertised_ip(), port, self.origin)).await;
                                info!(call_id = %call_id, direction = n.direction.attribute(), "re-INVITE answered");
                            }
                            Err(e) => {
                                warn!(call_id = %call_id, error = %e, "re-INVITE offer refused; media unchanged");
                                responder.reject(488).await;
                            }
                        }
                        None
                    }
                    Some(LegEvent::Terminated(end)) => {
                        self.finish_media(media).await;
                        return match end {
                            LegEnd::RemoteBye => EndReason::CallerHangup,
                            LegEnd::Cancelled => EndReason::CallerCancel,
                            LegEnd::LocalBye => EndReason::BotHangup,
                            LegEnd::Rejected | LegEnd::Timeout | LegEnd::Other => EndReason::Error,
                        };
                    }
                    None => {
                        self.finish_media(media).await;
                        return EndReason::Error;
                    }
                },
                ev = media.next_event() => match ev {
                    Some(MediaEvent::Dtmf(d)) => {
                        self.ctx.metrics.dtmf_digits.fetch_add(1, Ordering::Relaxed);
                        self.last_key_at = Some(Instant::now());
                        Some(FlowEvent::Digit(d))
                    }
                    Some(MediaEvent::PlaybackStarted(_)) => {
                        self.prompt_playing.store(true, Ordering::Relaxed);
                        if let Some(turn) = self.clock.reply_started(Instant::now()) {
                            debug!(call_id = %call_id, input = turn.kind.label(), total_ms = turn.total_ms, asr_ms = turn.asr_ms, tts_ms = turn.tts_ms, lookup_ms = turn.lookup_ms, "turn latency");
                            self.ctx.metrics.turn(&turn);
                            self.turns.push(turn);
                        }
                        None
                    }
                    Some(MediaEvent::PlaybackDone(_)) => {
                        self.prompt_playing.store(false, Ordering::Relaxed);
                        Some(FlowEvent::PlaybackDone)
                    }
                    Some(MediaEvent::Inactive) => {
                        warn!(call_id = %call_id, "no RTP from the caller; hanging up");
                        self.finish_media(media).await;
                        if let Err(e) = self.bye().await {
                            warn!(call_id = %call_id, error = %e, "BYE failed");
                        }
                        return EndReason::RtpTimeout;
                    }
                    Some(_) => None,
                    None => {
                        warn!(call_id = %call_id, "media session ended unexpectedly");
                        let _ = self.bye().await;
                        return EndReason::Error;
                    }
                },
                _ = self.ctx.hangup_all.cancelled() => {
                    info!(call_id = %call_id, "drain timeout: hanging up");
                    self.finish_media(media).await;
                    if let Err(e) = self.bye().await {
                        warn!(call_id = %call_id, error = %e, "BYE failed");
                    }
                    return EndReason::BotHangup;
                }
                _ = wait_for(transfer.as_ref().map(|t| t.1)) => {
                    let why = match transfer.take() {
                        Some((tracker, _)) => match tracker.on_timeout() {
                            TransferState::Failed(why) => why,
                            _ => "timeout".to_string(),
                        },
                        None => "timeout".to_string(),
                    };
                    Some(self.transfer_failed(why))
                }
                _ = wait_for(deadline) => {
                    deadline = None;
                    self.listen = None;
                        self.listen_generation += 1;
                        self.end_silence_ms.store(0, Ordering::Relaxed);
                    Some(FlowEvent::InputTimeout)
                }
                ev = next_speech(&mut self.speech_events) => match ev {
                    Some(SpeechEvent::Started) => {
                        // The caller is answering: no "I didn't hear you"
                        // while they speak.
                        if self.listen.is_some() {
                            deadline = None;
                        }
                        None
                    }
                    Some(SpeechEvent::BargeIn) => Some(FlowEvent::BargeIn),
                    Some(SpeechEvent::Utterance { audio, ended_at, endpointing }) => {
                        self.utterance(audio, ended_at, endpointing);
                        None
                    }
                    None => {
                        self.speech_events = None;
                        None
                    }
                },
                done = next_recognition(&mut self.recognition) => {
                    match self.recognition.take() {
                        Some(r) => self.recognised(done, r),
                        None => None,
                    }
                }
            };
            if let Some(event) = event {
                if matches!(event, FlowEvent::Digit(_)) {
                    deadline = None;
                }
                pending = self.ask(flow.as_mut(), event);
            }
        }
    }
}

impl Call {
    fn flow_start(&self) -> FlowStart {
        let from = &self.leg.info().from;
        FlowStart {
            caller: crate::crm::caller_number(from).unwrap_or_else(|| from.clone()),
            customer: self.customer.clone(),
        }
    }

    /// Synthesize `text` for the call; `None` (logged) when there is no TTS
    /// or it failed, so the flow moves on instead of waiting for silence.
    async fn speak(&self, text: &str, language: &str, voice: Option<&str>) -> Option<Prompt> {
        let Some(tts) = self.ctx.tts.clone() else {
            warn!(call_id = %self.leg.info().call_id, "no TTS configured; a `say` was skipped");
            return None;
        };
        let text = text.to_string();
        let voice = voice.map(str::to_string);
        let language = language
            .parse::<voxbridge_models::Language>()
            .unwrap_or(voxbridge_models::Language::En);
        // espeak-ng runs on its own thread; keep this task's executor free.
        let result = tokio::task::spawn_blocking(move || match voice {
            Some(v) => tts.speak_with_voice(&text, &v),
            None => tts.speak(&text, language),
        })
        .await;
        match result {
            Ok(Ok(samples)) => Some(Prompt::from_samples(samples)),
            Ok(Err(e)) => {
                warn!(call_id = %self.leg.info().call_id, error = %e, "TTS failed");
                None
            }
            Err(e) => {
                warn!(call_id = %self.leg.info().call_id, error = %e, "TTS task failed");
                None
            }
        }
    }

    /// Call the target of an incoming REFER; the answered leg and its
    /// running media, or the status to report in the final NOTIFY.
    async fn follow_refer(&mut self, target: &str) -> Result<(CallLeg, MediaHandle), u16> {
        let socket = self.ctx.ports.bind().map_err(|_| 503u16)?;
        let port = socket.local_addr().map_err(|_| 500u16)?.port();
        self.origin = SessionOrigin::new(rand::random::<u32>() as u64);
        let offer = sdp::offer(&self.preferences(), self.advertised_ip(), port, self.origin);
        let (mut leg, answer) = match self.ctx.dialer.invite(target, offer).await {
            Ok(answered) => answered,
            Err(DialError::Status(code)) => return Err(code),
            Err(DialError::Failed(why)) => {
                warn!(error = %why, "INVITE to the REFER target failed");
                return Err(503);
            }
        };
        let negotiated =
            match sdp::parse(&answer).and_then(|o| sdp::negotiate(&o, &self.preferences())) {
                Ok(n) => n,
                Err(e) => {
                    warn!(error = %e, "unusable SDP answer from the REFER target");
                    let _ = tokio::time::timeout(Duration::from_secs(4), leg.hangup()).await;
                    return Err(488);
                }
            };
        match MediaSession::start(socket, self.media_params(&negotiated)) {
            Ok(media) => Ok((leg, media)),
            Err(e) => {
                warn!(error = %e, "media for the new call did not start");
                let _ = tokio::time::timeout(Duration::from_secs(4), leg.hangup()).await;
                Err(500)
            }
        }
    }

    /// Send BYE, waiting for its answer at most a few seconds: a caller who
    /// vanished must not hold the call task (and a drain) for the 32 s of
    /// BYE retransmissions.
    async fn bye(&mut self) -> Result<(), crate::sip::SipError> {
        match tokio::time::timeout(Duration::from_secs(4), self.leg.hangup()).await {
            Ok(result) => result,
            Err(_) => Err(crate::sip::SipError::Stack("no answer to BYE".to_string())),
        }
    }

    /// Send the REFER; `Ok` when the transferee accepted it (202) and the
    /// NOTIFYs decide, `Err` with a reason when it failed at once.
    async fn start_transfer(
        &mut self,
        target: &str,
        mut context: Vec<(String, String)>,
    ) -> Result<TransferTracker, String> {
        let call_id = self.leg.info().call_id.clone();
        let cfg = &self.ctx.config.transfer;
        let target = match resolve_target(target, &cfg.targets) {
            Ok(uri) => uri,
            Err(why) => return Err(why),
        };
        let target = target.as_str();
        // The script's own context items win; the CRM fills what it left out.
        let has = |key: &str, context: &[(String, String)]| {
            context.iter().any(|(k, v)| k == key && !v.is_empty())
        };
        context.retain(|(_, v)| !v.is_empty());
        if let Some(c) = &self.customer {
            if !has("customer", &context) {
                context.insert(0, ("customer".to_string(), c.id.clone()));
            }
            if let (Some(tier), false) = (&c.tier, has("tier", &context)) {
                context.insert(1, ("tier".to_string(), tier.clone()));
            }
        }
        context.push(("call-id".to_string(), call_id.clone()));
        let options = ContextOptions {
            in_uri: cfg.context_in_uri,
            user_to_user: cfg.user_to_user,
            header_prefix: cfg.header_prefix.clone(),
            max_bytes: cfg.max_context_bytes,
        };
        let request = transfer::refer_request(target, &context, &options);
        if !request.dropped.is_empty() {
            warn!(call_id = %call_id, dropped = ?request.dropped, "transfer context over the size limit");
        }
        self.transfer_target = Some(target.to_string());
        info!(call_id = %call_id, target = %mask_uri(target), "transferring by REFER");
        let mut tracker = TransferTracker::default();
        match self
            .leg
            .refer(&request.refer_to, request.user_to_user.as_deref())
            .await
        {
            Ok(code) => match tracker.on_refer_response(code) {
                TransferState::Failed(why) => Err(why),
                _ => Ok(tracker),
            },
            Err(e) => Err(e.to_string()),
        }
    }

    /// Count and log a failed transfer; the event tells the flow.
    fn transfer_failed(&mut self, why: String) -> FlowEvent {
        self.activity.transfer_result = Some(format!("failed: {why}"));
        self.ctx
            .live
            .line(&self.call_id, "system", format!("transfer failed: {why}"));
        self.ctx
            .metrics
            .transfers_failed
            .fetch_add(1, Ordering::Relaxed);
        self.last_transfer_failed = true;
        warn!(call_id = %self.leg.info().call_id, reason = %why, "transfer failed; the bot keeps the call");
        FlowEvent::TransferFailed(why)
    }

    /// The recorder for this call, when recording is on and the file opens.
    fn recorder(
        &mut self,
        info: &crate::sip::CallInfo,
    ) -> Option<Box<dyn voxbridge_media::session::AudioSink>> {
        let rec = &self.ctx.config.recording;
        if !rec.enabled {
            return None;
        }
        let started_ms = info
            .received_at
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let path = rec
            .dir
            .join(crate::recording::file_name(&info.call_id, started_ms));
        match crate::recording::CallRecorder::create(&path, rec.mode) {
            Ok(r) => {
                self.recording = Some(path);
                Some(Box::new(r))
            }
            Err(e) => {
                // The call goes on unrecorded rather than not at all.
                warn!(call_id = %info.call_id, path = %path.display(), error = %e, "cannot record call");
                None
            }
        }
    }

    /// Let a script write down what the call produced, whoever ended it
    /// (the flow hears of it as the caller leaving).
    fn collect_record(&mut self, flow: &mut dyn CallFlow) {
        if self.script_record.is_some() {
            return;
        }
        for action in self.ask(flow, FlowEvent::CallerHungUp) {
            if let FlowAction::Record(record) = action {
                self.script_record = Some(record);
            }
        }
    }

    /// The flow's answer to `event`, timed as the dialog stage of an open turn.
    fn ask(&mut self, flow: &mut dyn CallFlow, event: FlowEvent) -> Vec<FlowAction> {
        let t = Instant::now();
        let actions = flow.on_event(event);
        self.clock.add(Stage::Dialog, t.elapsed());
        actions
    }

    /// The endpointer for this call, when speech is on and it starts.
    fn speech_sink(&mut self) -> Option<Box<dyn voxbridge_media::session::AudioSink>> {
        let speech = self.ctx.speech.as_ref()?;
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        match SpeechSink::new(
            speech.endpoint_config(),
            tx,
            self.prompt_playing.clone(),
            self.end_silence_ms.clone(),
        ) {
            Ok(sink) => {
                self.speech_events = Some(rx);
                Some(Box::new(sink))
            }
            Err(e) => {
                // Keys still work; the operator learns why speech does not.
                warn!(call_id = %self.call_id, error = %e, "endpointer did not start; keys only");
                None
            }
        }
    }

    /// Start recognising an utterance for the open question, off the call
    /// loop: the call keeps answering BYE, keys and media meanwhile.
    fn utterance(&mut self, audio: Vec<i16>, ended_at: Instant, endpointing: Duration) {
        self.end_silence_ms.store(0, Ordering::Relaxed);
        let Some(listen) = self.listen.take() else {
            debug!(call_id = %self.call_id, "speech while no question is open; ignored");
            return;
        };
        let Some(speech) = self.ctx.speech.clone() else {
            return;
        };
        self.clock.open(TurnKind::Speech, ended_at);
        self.clock.add(Stage::Endpointing, endpointing);
        let question = listen.clone();
        let task = tokio::spawn(async move { speech.understand(&question, audio).await });
        let started = Recognition {
            task,
            listen,
            generation: self.listen_generation,
        };
        if let Some(previous) = self.recognition.replace(started) {
            previous.task.abort();
        }
    }

    /// A recognition finished: the event for the flow, unless the caller
    /// has moved on to another question since.
    fn recognised(
        &mut self,
        done: Result<Result<Understood, SpeechError>, tokio::task::JoinError>,
        r: Recognition,
    ) -> Option<FlowEvent> {
        if r.generation != self.listen_generation {
            debug!(call_id = %self.call_id, "transcript for a question no longer open; dropped");
            return None;
        }
        let metrics = &self.ctx.metrics;
        let heard = match done {
            Ok(Ok(u)) => {
                self.clock.add(Stage::Asr, u.asr);
                self.clock.add(Stage::Intent, u.intent);
                let counter = if u.heard.text.trim().is_empty() {
                    &metrics.asr_no_match
                } else {
                    &metrics.asr_recognised
                };
                counter.fetch_add(1, Ordering::Relaxed);
                // The words are personal data: they go to the transcript,
                // not the log.
                info!(
                    call_id = %self.call_id,
                    engine = u.engine,
                    words = u.heard.text.split_whitespace().count(),
                    intent = u.heard.intent.as_deref().unwrap_or("-"),
                    confidence = u.heard.confidence,
                    asr_ms = u.asr.as_millis() as u64,
                    "heard"
                );
                u.heard
            }
            Ok(Err(SpeechError::NoEngine)) => {
                self.listen = Some(r.listen.clone());
                self.clock.abandon();
                return None;
            }
            Ok(Err(SpeechError::Busy(e))) => {
                metrics.asr_busy.fetch_add(1, Ordering::Relaxed);
                warn!(call_id = %self.call_id, error = %e, "recogniser busy; the caller hears the no-match prompt");
                Default::default()
            }
            Ok(Err(SpeechError::Failed(e))) => {
                metrics.asr_failed.fetch_add(1, Ordering::Relaxed);
                warn!(call_id = %self.call_id, error = %e, "recognition failed; the caller hears the no-match prompt");
                Default::default()
            }
            Err(e) => {
                metrics.asr_failed.fetch_add(1, Ordering::Relaxed);
                warn!(call_id = %self.call_id, error = %e, "recognition task failed; the caller hears the no-match prompt");
                Default::default()
            }
        };
        let line = if heard.text.trim().is_empty() {
            "[not understood]".to_string()
        } else {
            heard.text.clone()
        };
        self.ctx.live.line(&self.call_id, "caller", line);
        Some(FlowEvent::Heard(heard))
    }

    /// Stop media and fold its statistics into the process counters.
    async fn finish_media(&self, media: MediaHandle) {
        let stats = media.stop().await;
        self.ctx.metrics.add_media(&stats);
    }
}

/// A script's transfer target: a URI as is, or a name from
/// `transfer.targets`.
fn resolve_target(
    target: &str,
    names: &std::collections::BTreeMap<String, String>,
) -> Result<String, String> {
    let t = target.trim();
    if t.starts_with("sip:")
        || t.starts_with("sips:")
        || t.starts_with("tel:")
        || t.starts_with('<')
    {
        return Ok(t.to_string());
    }
    names
        .get(t)
        .cloned()
        .ok_or_else(|| format!("no transfer target named `{t}` in transfer.targets"))
}

/// Recognition of one utterance, running on its own task.
struct Recognition {
    task: tokio::task::JoinHandle<Result<Understood, SpeechError>>,
    listen: Box<voxbridge_dialog::interp::Listen>,
    /// `Call::listen_generation` when the utterance ended.
    generation: u64,
}

impl Drop for Recognition {
    fn drop(&mut self) {
        // A call that ended needs no transcript; the recogniser skips an
        // abandoned request.
        self.task.abort();
    }
}

async fn next_recognition(
    r: &mut Option<Recognition>,
) -> Result<Result<Understood, SpeechError>, tokio::task::JoinError> {
    match r {
        Some(r) => (&mut r.task).await,
        None => std::future::pending().await,
    }
}

async fn next_speech(events: &mut Option<UnboundedReceiver<SpeechEvent>>) -> Option<SpeechEvent> {
    match events {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn wait_for(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => sleep_until(d).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transfer_targets_are_uris_or_configured_names() {
        let mut names = std::collections::BTreeMap::new();
        names.insert("agents".to_string(), "sip:agents@pbx.example".to_string());
        assert_eq!(
            resolve_target("agents", &names).unwrap(),
            "sip:agents@pbx.example"
        );
        assert_eq!(
            resolve_target(" sip:2001@pbx ", &names).unwrap(),
            "sip:2001@pbx"
        );
        let err = resolve_target("priority", &names).unwrap_err();
        assert!(err.contains("`priority`"), "{err}");
    }
}
