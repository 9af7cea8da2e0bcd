//! The async side of one call: it runs the core's commands and feeds back
//! what happens. Lookups, tickets, prompts, recognition and the INVITE of a
//! followed REFER run as tasks whose results come back as inputs; leg
//! requests go through the signalling queue; the loop itself only waits
//! for the next event or the core's deadline. This module is the loop (what
//! the shell holds, the inputs it waits for); [`commands`] carries out what
//! the core asks.

mod commands;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use tokio::net::UdpSocket;
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use voxbridge_media::{MediaEvent, MediaHandle};

use super::core::{
    CallCore, CallOutcome, CallStart, CoreSettings, Done, Ears, Input, LegEnd, LegInput,
    MachineCheck, MediaInput, Output,
};
use super::leg::{Leg, LegControl, LegEvent, OfferReply, ReferReply};
use super::signalling::{Op, Signalling};
use super::{CallContext, EndReason};
use crate::sip::{CallInfo, CallLeg};
use crate::speech::sink::SpeechEvent;

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

/// Who the other party is and how the call came to be, for the caller
/// lookup and the script: the From of an inbound call, the callee of one we
/// placed.
#[derive(Debug)]
pub struct Party {
    /// The other party's URI (looked up in the CRM, `caller` in the script).
    pub uri: String,
    /// Look the profile up by this CRM id rather than by number.
    pub customer_id: Option<String>,
    /// The RTP socket our offer already named (a call we placed).
    pub socket: Option<UdpSocket>,
    /// We placed the call.
    pub outbound: bool,
    /// Screen the answer for an answering machine before the script.
    pub machine: Option<MachineCheck>,
}

impl Party {
    /// The caller of an inbound call.
    pub fn caller(info: &CallInfo) -> Party {
        Party {
            uri: info.from.clone(),
            customer_id: None,
            socket: None,
            outbound: false,
            machine: None,
        }
    }
}

struct Shell {
    ctx: Arc<CallContext>,
    info: CallInfo,
    party: Party,
    leg: Box<dyn Leg>,
    control: Arc<dyn LegControl>,
    leg_events: UnboundedReceiver<LegEvent>,
    socket: Option<UdpSocket>,
    media: Option<MediaHandle>,
    speech_events: Option<UnboundedReceiver<SpeechEvent>>,
    /// The answering-machine detector's events, while it screens.
    machine_events: Option<UnboundedReceiver<voxbridge_models::amd::AmdEvent>>,
    listening: Arc<AtomicBool>,
    prompt_playing: Arc<AtomicBool>,
    end_silence_ms: Arc<AtomicU32>,
    barge_in_ms: Arc<AtomicU32>,
    early: Arc<crate::speech::sink::EarlyControl>,
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

/// Run one call to its end: any kind of leg, `info` its facts, `party` the
/// other side.
pub async fn run(
    mut leg: Box<dyn Leg>,
    info: CallInfo,
    mut party: Party,
    ctx: Arc<CallContext>,
) -> ShellEnd {
    let (done_tx, done_rx) = mpsc::unbounded_channel();
    let socket = party.socket.take();
    let start = call_start(&info, &party, &ctx.config);
    let leg_events = leg.events();
    let control = leg.control();
    let mut shell = Shell {
        signalling: Some(Signalling::start(done_tx.clone())),
        ctx: ctx.clone(),
        info: info.clone(),
        party,
        leg,
        control,
        leg_events,
        socket,
        media: None,
        speech_events: None,
        machine_events: None,
        listening: Arc::new(AtomicBool::new(false)),
        prompt_playing: Arc::new(AtomicBool::new(false)),
        end_silence_ms: Arc::new(AtomicU32::new(0)),
        barge_in_ms: Arc::new(AtomicU32::new(0)),
        early: Arc::default(),
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
    let machine = shell.party.machine.clone();
    let mut core = CallCore::new(settings(&ctx, ears, machine), start, rand::random());
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

fn settings(ctx: &CallContext, ears: Option<Ears>, machine: Option<MachineCheck>) -> CoreSettings {
    let new_flow = ctx.new_flow.clone();
    CoreSettings {
        config: ctx.config.clone(),
        metrics: ctx.metrics.clone(),
        new_flow: Arc::new(move |start| (new_flow)(start)),
        ears,
        crm: ctx.crm.is_some(),
        machine,
    }
}

fn call_start(info: &CallInfo, party: &Party, config: &crate::config::Config) -> CallStart {
    CallStart {
        call_id: info.call_id.clone(),
        from: party.uri.clone(),
        offer: info.body.clone(),
        received: info.received,
        srtp: crate::srtp_policy::SrtpPolicies::new(config)
            .for_call(info.source.map(|s| s.ip()), &info.to),
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
                Some(SpeechEvent::Paused { audio, ended_at, endpointing }) => {
                    Input::Media(MediaInput::Paused { audio, ended_at, endpointing })
                }
                Some(SpeechEvent::Resumed) => Input::Media(MediaInput::Resumed),
                Some(SpeechEvent::Utterance { audio, ended_at, endpointing }) => {
                    Input::Media(MediaInput::Utterance { audio, ended_at, endpointing })
                }
                None => {
                    self.speech_events = None;
                    Input::Timeout
                }
            },
            ev = next_machine(&mut self.machine_events) => match ev {
                Some(event) => Input::Media(MediaInput::Machine(event)),
                None => {
                    self.machine_events = None;
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
}

async fn next_media(media: &mut Option<MediaHandle>) -> Option<MediaEvent> {
    match media {
        Some(m) => m.next_event().await,
        None => std::future::pending().await,
    }
}

async fn next_machine(
    events: &mut Option<UnboundedReceiver<voxbridge_models::amd::AmdEvent>>,
) -> Option<voxbridge_models::amd::AmdEvent> {
    match events {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn next_speech(events: &mut Option<UnboundedReceiver<SpeechEvent>>) -> Option<SpeechEvent> {
    match events {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}
