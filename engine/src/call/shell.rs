//! The async side of one call: it runs the core's commands and feeds back
//! what happens. Lookups, tickets, prompts, recognition and the INVITE of a
//! followed REFER run as tasks whose results come back as inputs; leg
//! requests go through the signalling queue; the loop itself only waits
//! for the next event or the core's deadline.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::net::UdpSocket;
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use tracing::{warn, Instrument};
use voxbridge_media::{MediaEvent, MediaHandle, MediaParams, MediaSession};

use super::core::{
    CallCore, CallOutcome, CallStart, Command, CoreSettings, Done, Ears, Input, LegEnd, LegInput,
    MediaInput, Output, PromptSource,
};
use super::leg::{Leg, LegControl, LegEvent, OfferReply, ReferReply};
use super::listeners;
use super::signalling::{Op, Signalling};
use super::work::{dial, make_prompt, BoxFuture, Reply, ReplyTo};
use super::{CallContext, EndReason};
use crate::sip::{CallInfo, CallLeg};
use crate::speech::sink::{SpeechEvent, Tee};

/// What a task of the call hands back. Boxed, so the channel stays small:
/// its first block holds 32 of these for every call from the start, and a
/// call sends only a handful.
pub enum Finished {
    Core(Box<Done>),
    /// A followed REFER's target answered: the call moves to this leg.
    Moved(Box<Moved>),
}

/// The new leg of a followed REFER, its running media and RTP port.
pub struct Moved {
    pub leg: CallLeg,
    pub media: MediaHandle,
    pub port: u16,
}

/// What the shell knows at the end, for the record.
pub struct ShellEnd {
    pub reason: EndReason,
    pub outcome: CallOutcome,
    pub answered_at: Option<SystemTime>,
    pub recording: Option<PathBuf>,
}

struct Shell {
    ctx: Arc<CallContext>,
    info: CallInfo,
    leg: Box<dyn Leg>,
    control: Arc<dyn LegControl>,
    leg_events: UnboundedReceiver<LegEvent>,
    socket: Option<UdpSocket>,
    media: Option<MediaHandle>,
    speech_events: Option<UnboundedReceiver<SpeechEvent>>,
    listening: Arc<AtomicBool>,
    prompt_playing: Arc<AtomicBool>,
    end_silence_ms: Arc<AtomicU32>,
    offer_reply: Option<Box<dyn OfferReply>>,
    refer_reply: Option<Box<dyn ReferReply>>,
    done_tx: UnboundedSender<Finished>,
    done_rx: UnboundedReceiver<Finished>,
    /// Inputs the commands produced at once, fed before waiting.
    ready: Vec<Input>,
    signalling: Option<Signalling>,
    recognition: Option<tokio::task::AbortHandle>,
    recording: Option<PathBuf>,
    answered_at: Option<SystemTime>,
    reason: Option<EndReason>,
}

/// Run one call to its end.
pub async fn run(mut leg: CallLeg, ctx: Arc<CallContext>) -> ShellEnd {
    let info = leg.info().clone();
    let (done_tx, done_rx) = mpsc::unbounded_channel();
    let leg_events = leg.events();
    let control = leg.control();
    let mut shell = Shell {
        signalling: Some(Signalling::start(done_tx.clone())),
        ctx: ctx.clone(),
        info: info.clone(),
        leg: Box::new(leg),
        control,
        leg_events,
        socket: None,
        media: None,
        speech_events: None,
        listening: Arc::new(AtomicBool::new(false)),
        prompt_playing: Arc::new(AtomicBool::new(false)),
        end_silence_ms: Arc::new(AtomicU32::new(0)),
        offer_reply: None,
        refer_reply: None,
        done_tx,
        done_rx,
        ready: Vec::new(),
        recognition: None,
        recording: None,
        answered_at: None,
        reason: None,
    };
    let ears = ctx.speech.as_ref().map(|s| s.ears());
    let mut core = CallCore::new(settings(&ctx, ears), call_start(&info), rand::random());
    core.begin(Instant::now());
    shell.drive(&mut core).await;
    if let Some(s) = shell.signalling.take() {
        s.finish().await;
    }
    if let Some(r) = shell.recognition.take() {
        r.abort();
    }
    ShellEnd {
        reason: shell.reason.unwrap_or(EndReason::Error),
        outcome: core.take_outcome(),
        answered_at: shell.answered_at,
        recording: shell.recording,
    }
}

fn settings(ctx: &CallContext, ears: Option<Ears>) -> CoreSettings {
    let new_flow = ctx.new_flow.clone();
    CoreSettings {
        config: ctx.config.clone(),
        metrics: ctx.metrics.clone(),
        new_flow: Arc::new(move |start| (new_flow)(start)),
        ears,
        crm: ctx.crm.is_some(),
    }
}

fn call_start(info: &CallInfo) -> CallStart {
    CallStart {
        call_id: info.call_id.clone(),
        from: info.from.clone(),
        offer: info.body.clone(),
        received: info.received,
    }
}

impl Shell {
    async fn drive(&mut self, core: &mut CallCore) {
        loop {
            let deadline = loop {
                match core.poll_output() {
                    Output::Command(c) => self.execute(c).await,
                    Output::Timeout(d) => break d,
                }
            };
            if core.is_over() {
                return;
            }
            if !self.ready.is_empty() {
                for input in std::mem::take(&mut self.ready) {
                    core.handle_input(Instant::now(), input);
                }
                continue;
            }
            let input = self.next_input(deadline).await;
            core.handle_input(Instant::now(), input);
        }
    }

    async fn next_input(&mut self, deadline: Option<Instant>) -> Input {
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            ev = self.leg_events.recv() => self.leg_input(ev),
            ev = next_media(&mut self.media) => self.media_input(ev),
            ev = next_speech(&mut self.speech_events) => match ev {
                Some(SpeechEvent::Started) => Input::Media(MediaInput::SpeechStarted),
                Some(SpeechEvent::BargeIn) => Input::Media(MediaInput::BargeIn),
                Some(SpeechEvent::Utterance { audio, ended_at, endpointing }) => {
                    Input::Media(MediaInput::Utterance { audio, ended_at, endpointing })
                }
                None => {
                    self.speech_events = None;
                    Input::Timeout
                }
            },
            Some(done) = self.done_rx.recv() => self.finished(done),
            _ = self.ctx.hangup_all.cancelled(), if self.reason.is_none() => Input::Drain,
            _ = sleep => Input::Timeout,
        }
    }

    fn leg_input(&mut self, ev: Option<LegEvent>) -> Input {
        match ev {
            Some(LegEvent::Input(LegInput::Dtmf(d))) => {
                self.inject_fault(d);
                Input::Leg(LegInput::Dtmf(d))
            }
            Some(LegEvent::Input(i)) => Input::Leg(i),
            Some(LegEvent::Offer(body, reply)) => {
                self.offer_reply = Some(reply);
                Input::Leg(LegInput::Offer(body))
            }
            Some(LegEvent::Referred(target, reply)) => {
                self.refer_reply = Some(reply);
                Input::Leg(LegInput::Referred(target))
            }
            // The leg's task is gone without saying why.
            None => Input::Leg(LegInput::Ended(LegEnd::Other)),
        }
    }

    fn media_input(&mut self, ev: Option<MediaEvent>) -> Input {
        match ev {
            Some(MediaEvent::Dtmf(d)) => {
                self.inject_fault(d);
                Input::Media(MediaInput::Dtmf(d))
            }
            Some(MediaEvent::PlaybackStarted(_)) => Input::Media(MediaInput::PlaybackStarted),
            Some(MediaEvent::PlaybackDone(_)) => Input::Media(MediaInput::PlaybackDone),
            Some(MediaEvent::Inactive) => Input::Media(MediaInput::Inactive),
            Some(_) => Input::Timeout,
            None => {
                self.media = None;
                Input::Media(MediaInput::Stopped)
            }
        }
    }

    /// The panic-containment test's fault (see `CallContext::panic_on_key`).
    fn inject_fault(&self, key: char) {
        if self.ctx.panic_on_key == Some(key) {
            panic!("injected fault: key {key} pressed");
        }
    }

    fn finished(&mut self, done: Finished) -> Input {
        match done {
            Finished::Core(d) => Input::Done(*d),
            Finished::Moved(moved) => {
                let Moved {
                    mut leg,
                    media,
                    port,
                } = *moved;
                leg.take_slot_from(self.leg.as_mut());
                let new_call_id = leg.info().call_id.clone();
                let events = leg.events();
                let control = leg.control();
                let old_leg = std::mem::replace(&mut self.leg, Box::new(leg));
                let old_control = std::mem::replace(&mut self.control, control);
                self.leg_events = events;
                if let Some(old) = self.media.replace(media) {
                    self.stop_media(old);
                }
                self.speech_events = None;
                self.signal(Op::Retire {
                    leg: old_leg,
                    control: old_control,
                });
                Input::Done(Done::ReferFollowed(Ok((port, new_call_id))))
            }
        }
    }

    fn signal(&self, op: Op) {
        if let Some(s) = &self.signalling {
            s.send(op);
        }
    }

    /// Run a task whose result (or, if it never gives one, `fallback`)
    /// comes back as an input.
    fn spawn<F>(&self, fallback: Done, work: F) -> tokio::task::AbortHandle
    where
        F: FnOnce(ReplyTo) -> BoxFuture + Send + 'static,
    {
        let fut = work(ReplyTo(Reply::new(self.done_tx.clone(), fallback)));
        tokio::spawn(fut.in_current_span()).abort_handle()
    }

    async fn execute(&mut self, command: Command) {
        match command {
            Command::Ring => {
                if let Err(e) = self.leg.ring() {
                    warn!(error = %e, "could not send 180");
                }
            }
            Command::AllocatePort => {
                let port = self
                    .ctx
                    .ports
                    .bind()
                    .map_err(|e| e.to_string())
                    .and_then(|s| {
                        let port = s.local_addr().map_err(|e| e.to_string())?.port();
                        self.socket = Some(s);
                        Ok(port)
                    });
                self.ready.push(Input::Done(Done::Port(port)));
            }
            Command::LookUpCaller => {
                if let Some(crm) = self.ctx.crm.clone() {
                    let from = self.info.from.clone();
                    let since = self.info.received;
                    self.spawn(Done::Customer(None), move |r| {
                        Box::pin(
                            async move { r.send(Done::Customer(crm.lookup(&from, since).await)) },
                        )
                    });
                }
            }
            Command::Answer { sdp, media } => {
                let result = self.answer(sdp, media);
                self.ready.push(Input::Done(Done::Answered(result)));
            }
            Command::Reject { code } => {
                if let Err(e) = self.leg.reject(code) {
                    warn!(error = %e, "could not send rejection");
                }
            }
            Command::PreparePrompt { id, source } => self.prepare(id, source),
            Command::Play(prompt) => {
                if let Some(m) = &self.media {
                    m.play(prompt);
                }
            }
            Command::StopPlayback => {
                if let Some(m) = &self.media {
                    m.stop_playback();
                }
            }
            Command::Hearing {
                listening,
                prompt_active,
                end_silence_ms,
            } => {
                self.listening.store(listening, Ordering::Relaxed);
                self.prompt_playing.store(prompt_active, Ordering::Relaxed);
                self.end_silence_ms.store(end_silence_ms, Ordering::Relaxed);
            }
            Command::Recognise { id, listen, audio } => self.recognise(id, listen, audio),
            Command::Lookup { id, request } => {
                let fallback = Done::Lookup {
                    id,
                    result: Err("lookup task failed".into()),
                    took: Duration::ZERO,
                };
                let crm = self.ctx.crm.clone();
                self.spawn(fallback, move |r| {
                    Box::pin(async move {
                        let t = Instant::now();
                        let result = match crm {
                            Some(crm) => crm.script_lookup(&request).await,
                            None => Err("no CRM configured".to_string()),
                        };
                        r.send(Done::Lookup {
                            id,
                            result,
                            took: t.elapsed(),
                        })
                    })
                });
            }
            Command::Ticket {
                id,
                request,
                customer,
            } => {
                let fallback = Done::Ticket {
                    id,
                    result: Err("ticket task failed".into()),
                    took: Duration::ZERO,
                };
                let crm = self.ctx.crm.clone();
                let call_id = self.info.call_id.clone();
                self.spawn(fallback, move |r| {
                    Box::pin(async move {
                        let t = Instant::now();
                        let result = match crm {
                            Some(crm) => crm.ticket(&request, &call_id, customer.as_deref()).await,
                            None => Err("no CRM configured".to_string()),
                        };
                        r.send(Done::Ticket {
                            id,
                            result,
                            took: t.elapsed(),
                        })
                    })
                });
            }
            Command::Refer {
                refer_to,
                user_to_user,
            } => self.signal(Op::Refer {
                leg: self.control.clone(),
                refer_to,
                user_to_user,
            }),
            Command::AnswerOffer(result) => self.answer_offer(result),
            Command::AnswerRefer(result) => {
                if let Some(reply) = self.refer_reply.take() {
                    self.signal(match result {
                        Ok(()) => Op::AcceptRefer(reply),
                        Err(code) => Op::RejectRefer(reply, code),
                    });
                }
            }
            Command::NotifyRefer { code, terminated } => self.signal(Op::Notify {
                leg: self.control.clone(),
                code,
                terminated,
            }),
            Command::FollowRefer { target } => self.follow_refer(target),
            Command::Transcript { speaker, text } => {
                self.ctx.live.line(&self.info.call_id, speaker, text);
            }
            Command::Hangup { bye } => {
                if let Some(m) = self.media.take() {
                    let stats = m.stop().await;
                    self.ctx.metrics.add_media(&stats);
                }
                if bye {
                    self.signal(Op::Bye(self.control.clone()));
                }
            }
            Command::Finished(reason) => self.reason = Some(reason),
        }
    }

    /// 200 OK, then media on the allocated socket with the recorder and
    /// the endpointer listening.
    fn answer(&mut self, sdp: String, params: MediaParams) -> Result<(), String> {
        let socket = self.socket.take().ok_or("no RTP socket")?;
        self.leg.answer(sdp).map_err(|e| e.to_string())?;
        self.answered_at = Some(SystemTime::now());
        let recorder = listeners::recorder(&self.ctx, &self.info).map(|(sink, path)| {
            self.recording = Some(path);
            sink
        });
        let speech = listeners::speech_sink(
            &self.ctx,
            self.listening.clone(),
            self.prompt_playing.clone(),
            self.end_silence_ms.clone(),
        )
        .map(|(sink, events)| {
            self.speech_events = Some(events);
            sink
        });
        let sink = match (recorder, speech) {
            (Some(rec), Some(speech)) => Some(Box::new(Tee(rec, speech)) as Box<_>),
            (Some(one), None) | (None, Some(one)) => Some(one),
            (None, None) => None,
        };
        let started = match sink {
            Some(sink) => MediaSession::start_with_sink(socket, params, sink),
            None => MediaSession::start(socket, params),
        };
        self.media = Some(started.map_err(|e| format!("media session did not start: {e}"))?);
        Ok(())
    }

    fn answer_offer(&mut self, result: Result<(MediaParams, String), u16>) {
        let Some(reply) = self.offer_reply.take() else {
            return;
        };
        let op = match (result, &self.media) {
            (Ok((params, sdp)), Some(media)) => match media.update(params) {
                Ok(()) => Op::AcceptOffer(reply, sdp),
                Err(e) => {
                    warn!(error = %e, "re-INVITE media parameters refused");
                    Op::RejectOffer(reply, 488)
                }
            },
            (Ok(_), None) => Op::RejectOffer(reply, 500),
            (Err(code), _) => Op::RejectOffer(reply, code),
        };
        self.signal(op);
    }

    fn prepare(&mut self, id: u64, source: PromptSource) {
        let fallback = Done::Prompt {
            id,
            prompt: None,
            took: Duration::ZERO,
        };
        let tts = self.ctx.tts.clone();
        let files = self.ctx.prompt_files.clone();
        self.spawn(fallback, move |r| {
            Box::pin(async move {
                let t = Instant::now();
                // espeak-ng and file reads run off the runtime's workers.
                let made = tokio::task::spawn_blocking(move || {
                    make_prompt(tts.as_deref(), &files, source)
                })
                .await
                .unwrap_or_else(|e| Err(format!("prompt task failed: {e}")));
                let prompt = made
                    .map_err(|e| warn!(error = %e, "prompt not played"))
                    .ok();
                r.send(Done::Prompt {
                    id,
                    prompt,
                    took: t.elapsed(),
                })
            })
        });
    }

    fn recognise(
        &mut self,
        id: u64,
        listen: Box<voxbridge_dialog::interp::Listen>,
        audio: Vec<i16>,
    ) {
        let Some(speech) = self.ctx.speech.clone() else {
            return;
        };
        if let Some(previous) = self.recognition.take() {
            previous.abort();
        }
        let fallback = Done::Recognised {
            id,
            result: Err(crate::speech::SpeechError::Failed(
                "recognition task ended".into(),
            )),
        };
        let handle = self.spawn(fallback, move |r| {
            Box::pin(async move {
                let result = speech.understand(&listen, audio).await;
                r.send(Done::Recognised { id, result })
            })
        });
        self.recognition = Some(handle);
    }

    /// INVITE the target of an incoming REFER; the call moves there when it answers.
    fn follow_refer(&mut self, target: String) {
        let ctx = self.ctx.clone();
        let tx = self.done_tx.clone();
        let fut = async move {
            let result = dial(&ctx, &target).await;
            let _ = tx.send(match result {
                Ok((leg, media, port)) => Finished::Moved(Box::new(Moved { leg, media, port })),
                Err(code) => Finished::Core(Box::new(Done::ReferFollowed(Err(code)))),
            });
        };
        tokio::spawn(fut.in_current_span());
    }

    fn stop_media(&self, media: MediaHandle) {
        let metrics = self.ctx.metrics.clone();
        tokio::spawn(async move {
            let stats = media.stop().await;
            metrics.add_media(&stats);
        });
    }
}

async fn next_media(media: &mut Option<MediaHandle>) -> Option<MediaEvent> {
    match media {
        Some(m) => m.next_event().await,
        None => std::future::pending().await,
    }
}

async fn next_speech(events: &mut Option<UnboundedReceiver<SpeechEvent>>) -> Option<SpeechEvent> {
    match events {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}
