//! Places the call and runs the script: prepare every step's audio, INVITE,
//! start media, run the steps while watching for the bot's BYE and the
//! deadline, then hang up or wait for the bot to, and always finish the
//! recording.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch};
use voxbridge_media::{
    Codec, MediaEvent, MediaHandle, MediaParams, MediaSession, PlaybackId, PortPool, Prompt,
};

use super::admin_client::{self, BotLines};
use super::speech::{self, BotAudio, Heard};
use super::steps::{format_duration, Step};
use super::transcript::Printer;
use super::{status_text, DtmfMode, Options, TestCallError};
use crate::call::leg::{Leg, LegEnd, LegEvent, LegInput};
use crate::sdp::{self, SessionOrigin};
use crate::sip::{CallLeg, DialError, InfoDtmf, UserAgent};

/// Gap between keys: a digit lasts about 100 ms, and receivers need a
/// pause to tell two presses of the same key apart.
const KEY_SPACING: Duration = Duration::from_millis(250);

/// The `Duration` field of an INFO key.
const INFO_KEY_MS: u32 = 160;

/// How often the call loop looks at the received audio.
const TICK: Duration = Duration::from_millis(20);

/// How long after a transcript line its audio may start (speech synthesis
/// of a long prompt takes about a second on a small machine); past this the
/// line had no audio and `quiet` stops waiting for it.
const PROMPT_LATENCY: Duration = Duration::from_secs(3);

/// How long a BYE may take before we give up on the answer.
const BYE_WAIT: Duration = Duration::from_secs(4);

/// Who ended an answered call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndedBy {
    /// The bot sent BYE.
    Bot,
    /// We sent BYE (a `hangup` step).
    Caller,
}

/// How a call that was answered and ended went.
#[derive(Debug, Clone)]
pub struct Summary {
    pub call_id: String,
    pub ended_by: EndedBy,
    /// From the answer to the end.
    pub duration: Duration,
    /// Samples of the bot's audio received.
    pub samples_heard: u64,
    /// Samples written to `--record`.
    pub recorded: Option<u64>,
}

/// A step, ready to run: WAVs loaded, texts spoken.
enum Action {
    Wait(Duration),
    Quiet(Duration),
    Play { what: String, prompt: Prompt },
    Keys(String),
    Hangup,
}

/// Place the call described by `options`, printing the transcript on
/// `printer`. `Ok` when the call was answered and ended (by either side)
/// before the timeout. The recording is finished whatever happens.
pub async fn run(options: &Options, printer: Arc<Printer>) -> Result<Summary, TestCallError> {
    let actions = prepare(&options.steps).await?;
    let (sink, heard) = BotAudio::new(Instant::now(), options.record.as_deref()).map_err(|e| {
        TestCallError::Record {
            path: options.record.clone().unwrap_or_default(),
            source: e,
        }
    })?;
    let result = place(options, actions, sink, heard.clone(), printer.clone()).await;
    let recorded = match speech::lock(&heard).finish_recording() {
        None => None,
        Some(Ok(samples)) => Some(samples),
        Some(Err(source)) => {
            let error = TestCallError::Record {
                path: options.record.clone().unwrap_or_default(),
                source,
            };
            // The call's own failure says more than the recording's.
            return Err(result.err().unwrap_or(error));
        }
    };
    if let (Some(path), Some(samples)) = (&options.record, recorded) {
        printer.note(&format!(
            "recorded {:.1} s of the bot's audio to {}",
            samples as f64 / f64::from(Codec::CLOCK_RATE),
            path.display()
        ));
    }
    result.map(|summary| Summary {
        recorded,
        ..summary
    })
}

/// Load every WAV and speak every text before dialing, so a missing file
/// fails at once instead of in the middle of a call.
async fn prepare(steps: &[Step]) -> Result<Vec<Action>, TestCallError> {
    let mut tts = None;
    let mut actions = Vec::with_capacity(steps.len());
    for step in steps {
        actions.push(match step {
            Step::Wait(d) => Action::Wait(*d),
            Step::Quiet(d) => Action::Quiet(*d),
            Step::Keys(k) => Action::Keys(k.clone()),
            Step::Hangup => Action::Hangup,
            Step::Wav(path) => {
                let prompt = Prompt::load(path)
                    .map_err(|e| TestCallError::Prepare(format!("step `{step}`: {e}")))?;
                Action::Play {
                    what: format!(
                        "[wav] {} ({:.1} s)",
                        path.display(),
                        prompt.duration().as_secs_f64()
                    ),
                    prompt,
                }
            }
            Step::Say(text) => {
                let engine = match &tts {
                    Some(engine) => Arc::clone(engine),
                    None => {
                        let engine = start_tts().await.map_err(|e| {
                            TestCallError::Prepare(format!("step `{step}`: text to speech: {e}"))
                        })?;
                        tts = Some(engine.clone());
                        engine
                    }
                };
                let spoken = text.clone();
                let samples = tokio::task::spawn_blocking(move || {
                    engine.speak(&spoken, voxbridge_models::Language::En)
                })
                .await
                .map_err(|e| TestCallError::Prepare(format!("step `{step}`: {e}")))?
                .map_err(|e| TestCallError::Prepare(format!("step `{step}`: {e}")))?;
                let prompt = Prompt::from_samples(samples);
                Action::Play {
                    what: format!("[say] {text} ({:.1} s)", prompt.duration().as_secs_f64()),
                    prompt,
                }
            }
        });
    }
    Ok(actions)
}

async fn start_tts() -> Result<Arc<voxbridge_models::tts::Tts>, String> {
    tokio::task::spawn_blocking(|| voxbridge_models::tts::Tts::start(Default::default()))
        .await
        .map_err(|e| e.to_string())?
        .map(Arc::new)
        .map_err(|e| e.to_string())
}

/// From the INVITE to the end of the call.
async fn place(
    options: &Options,
    actions: Vec<Action>,
    mut sink: BotAudio,
    heard: Arc<Mutex<Heard>>,
    printer: Arc<Printer>,
) -> Result<Summary, TestCallError> {
    let invited = Instant::now();
    let deadline = tokio::time::Instant::now() + options.timeout;
    let user_agent = concat!("voxbridge-call/", env!("CARGO_PKG_VERSION"));
    let ua = UserAgent::bind(options.bind, &options.from, user_agent).await?;
    let ip = ua.local_addr().ip();
    let ports = PortPool::new(ip, options.rtp_ports.0, options.rtp_ports.1)?;
    let socket = ports.bind()?;
    let rtp = socket
        .local_addr()
        .map_err(|e| TestCallError::Prepare(format!("RTP socket: {e}")))?;
    let codecs = match options.codec {
        Some(c) => vec![c],
        None => vec![Codec::Pcmu, Codec::Pcma],
    };
    let offer = sdp::offer(
        &codecs,
        ip,
        rtp.port(),
        SessionOrigin::new(u64::from(rand::random::<u32>())),
    );
    // Our own Call-ID, known before the answer: it is the key of the bot's
    // transcript and of its call record.
    let call_id = format!("vbcall-{:016x}@{ip}", rand::random::<u64>());
    printer.note(&format!(
        "calling {} from {} (SIP {}, RTP {rtp}, Call-ID {call_id})",
        options.target,
        options.from,
        ua.local_addr()
    ));

    let invite = ua.invite(&options.target, &call_id, offer);
    let answered = tokio::select! {
        answered = tokio::time::timeout_at(deadline, invite) => answered.map_err(|_| {
            TestCallError::NoAnswer(options.timeout)
        }),
        _ = tokio::signal::ctrl_c() => Err(TestCallError::Interrupted),
    };
    let (leg, answer, info) = match answered {
        Ok(Ok(answered)) => answered,
        Ok(Err(DialError::Status(code))) => return Err(TestCallError::Refused { code }),
        Ok(Err(DialError::Failed(why))) => return Err(TestCallError::DialFailed(why)),
        Err(e) => {
            // The INVITE future was dropped, which CANCELs it: let it go out.
            tokio::time::sleep(Duration::from_millis(300)).await;
            return Err(e);
        }
    };
    let answered = Instant::now();
    printer.start_clock(answered);
    let negotiated = match sdp::parse(&answer).and_then(|o| sdp::negotiate(&o, &codecs)) {
        Ok(n) => n,
        Err(e) => {
            let (mut events, hangup) = watch_leg(leg);
            let _ = hangup.send(());
            let _ = tokio::time::timeout(BYE_WAIT, events.recv()).await;
            return Err(e.into());
        }
    };
    sink.set_origin(answered);
    let params = MediaParams {
        codec: negotiated.codec,
        payload_type: negotiated.payload_type,
        dtmf_payload_type: negotiated.dtmf_payload_type,
        ptime: Duration::from_millis(u64::from(negotiated.ptime_ms)),
        remote: negotiated.remote,
        direction: negotiated.direction,
        inactivity_timeout: Duration::from_secs(10),
        // The test caller presses keys like a phone does, whatever the bot's config.
        dtmf_duration: voxbridge_media::dtmf::DEFAULT_DIGIT_DURATION,
        ..MediaParams::new(negotiated.codec, negotiated.remote)
    };
    let media = MediaSession::start_with_sink(socket, params, Box::new(sink))?;
    printer.line(
        "call",
        &format!(
            "answered after {:.2} s: {}, RTP to {}{}",
            answered.duration_since(invited).as_secs_f64(),
            negotiated.codec.encoding_name(),
            negotiated.remote,
            if negotiated.dtmf_payload_type.is_some() {
                ", telephone-event"
            } else {
                ""
            }
        ),
    );

    let (leg_events, hangup) = watch_leg(leg);
    let bot_lines = Arc::new(BotLines::default());
    let (stop_admin, stop_rx) = watch::channel(false);
    let poller = options.admin.clone().map(|addr| {
        tokio::spawn(admin_client::follow(
            addr,
            call_id.clone(),
            printer.clone(),
            bot_lines.clone(),
            stop_rx,
        ))
    });

    let mut call = Call {
        printer: printer.clone(),
        media,
        media_alive: true,
        heard: heard.clone(),
        leg_events,
        hangup: Some(hangup),
        info,
        dtmf: options.dtmf,
        telephone_event: negotiated.dtmf_payload_type.is_some(),
        deadline,
        played: HashSet::new(),
        steps_run: 0,
        bot_lines,
    };
    let outcome = call.script(&actions).await;
    let end_at = printer.elapsed();
    let outcome = match outcome {
        Ok(()) => Ok(EndedBy::Caller),
        Err(Stop::Ended(by)) => Ok(by),
        Err(Stop::Lost(why)) => Err(TestCallError::Lost(why)),
        Err(Stop::Timeout) => {
            call.bye().await;
            Err(TestCallError::Timeout(options.timeout))
        }
        Err(Stop::Interrupted) => {
            call.bye().await;
            Err(TestCallError::Interrupted)
        }
        Err(Stop::Failed { step, reason }) => {
            call.bye().await;
            Err(TestCallError::Step { step, reason })
        }
    };

    let Call {
        media,
        bot_lines,
        steps_run,
        ..
    } = call;
    media.stop().await;
    // Speech still in progress when the call ended is printed too.
    let last = speech::lock(&heard).tracker_flush(printer.elapsed() + speech::HANGOVER);
    if bot_lines.last().is_none() {
        for span in last {
            print_span(&printer, span);
        }
    }
    let _ = stop_admin.send(true);
    if let Some(poller) = poller {
        let _ = tokio::time::timeout(Duration::from_secs(5), poller).await;
    }
    let samples_heard = speech::lock(&heard).samples;
    let ended_by = outcome?;
    if ended_by == EndedBy::Bot && steps_run < actions.len() {
        printer.note(&format!(
            "note: the bot hung up before {} of the {} steps ran",
            actions.len() - steps_run,
            actions.len()
        ));
    }
    printer.note(&format!(
        "call ended by {} after {:.1} s",
        match ended_by {
            EndedBy::Bot => "the bot",
            EndedBy::Caller => "us (BYE)",
        },
        end_at.as_secs_f64()
    ));
    Ok(Summary {
        call_id,
        ended_by,
        duration: end_at,
        samples_heard,
        recorded: None,
    })
}

/// What the SIP side tells the call loop.
enum LegNote {
    Ended(Result<EndedBy, String>),
    Dtmf(char),
    Note(String),
}

/// Why the script stopped before its end.
enum Stop {
    /// The call ended (the bot's BYE, or our `hangup`).
    Ended(EndedBy),
    /// The dialog ended some other way.
    Lost(String),
    /// The whole-call limit passed.
    Timeout,
    /// Ctrl-C: hang up rather than leave the bot a call nobody ends.
    Interrupted,
    /// A step could not be carried out.
    Failed { step: String, reason: String },
}

/// Run the leg on its own task: the call loop only needs its end, the keys
/// the bot sends and a way to hang up, and an in-dialog request must be
/// answered even while the loop is busy sending keys.
fn watch_leg(mut leg: CallLeg) -> (mpsc::UnboundedReceiver<LegNote>, oneshot::Sender<()>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let (hangup_tx, mut hangup_rx) = oneshot::channel::<()>();
    let mut events = leg.events();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                // A dropped sender (the call loop gave up) also hangs up.
                _ = &mut hangup_rx => {
                    let note = match tokio::time::timeout(BYE_WAIT, leg.hangup()).await {
                        Ok(_) => Ok(EndedBy::Caller),
                        Err(_) => Err("no answer to our BYE".to_string()),
                    };
                    let _ = tx.send(LegNote::Ended(note));
                    return;
                }
                event = events.recv() => {
                    let note = match event {
                        None => LegNote::Ended(Err("the SIP stack stopped".to_string())),
                        // rsipstack names BYEs by dialog role: on a dialog
                        // we placed, the peer's BYE is the UAS's, which the
                        // leg reports as `LocalBye`.
                        Some(LegEvent::Input(LegInput::Ended(LegEnd::LocalBye))) => LegNote::Ended(Ok(EndedBy::Bot)),
                        Some(LegEvent::Input(LegInput::Ended(other))) => {
                            LegNote::Ended(Err(format!("the dialog ended ({other:?})")))
                        }
                        Some(LegEvent::Input(LegInput::Dtmf(key))) => LegNote::Dtmf(key),
                        Some(LegEvent::Offer(_, responder)) => {
                            responder.reject(488).await;
                            LegNote::Note("the bot sent a re-INVITE: refused (488), media unchanged".into())
                        }
                        Some(LegEvent::Referred(target, responder)) => {
                            responder.reject(603).await;
                            // The context headers on the Refer-To are the
                            // bot's business; the address is what matters here.
                            let address = target
                                .trim_matches(|c| c == '<' || c == '>')
                                .split('?')
                                .next()
                                .unwrap_or_default()
                                .to_string();
                            LegNote::Note(format!(
                                "the bot asked us to call {address} (REFER): declined (603)"
                            ))
                        }
                        Some(_) => continue,
                    };
                    let ended = matches!(note, LegNote::Ended(_));
                    let _ = tx.send(note);
                    if ended {
                        return;
                    }
                }
            }
        }
    });
    (rx, hangup_tx)
}

/// The answered call, as the script sees it.
struct Call {
    printer: Arc<Printer>,
    media: MediaHandle,
    media_alive: bool,
    heard: Arc<Mutex<Heard>>,
    leg_events: mpsc::UnboundedReceiver<LegNote>,
    hangup: Option<oneshot::Sender<()>>,
    info: InfoDtmf,
    dtmf: DtmfMode,
    telephone_event: bool,
    deadline: tokio::time::Instant,
    played: HashSet<PlaybackId>,
    /// Steps finished, to tell when the bot hung up before the script's end.
    steps_run: usize,
    bot_lines: Arc<BotLines>,
}

impl Call {
    /// Run the steps, then wait for the bot to hang up. `Ok` when a
    /// `hangup` step ended the call.
    async fn script(&mut self, actions: &[Action]) -> Result<(), Stop> {
        let mut previous_start = Duration::ZERO;
        for action in actions {
            let start = self.printer.elapsed();
            // A wait cut short by the bot's BYE did its job; keys or speech
            // cut short did not.
            let waiting = matches!(action, Action::Wait(_) | Action::Quiet(_));
            if waiting {
                self.steps_run += 1;
            }
            match action {
                Action::Wait(d) => {
                    self.idle(Some(*d), |_| false).await?;
                }
                Action::Quiet(max) => {
                    // Speech since the previous step began counts: the bot
                    // may answer while we are still sending keys.
                    let since = previous_start;
                    let finished = self.idle(Some(*max), |call| call.quiet(since)).await?;
                    if !finished {
                        self.printer.line(
                            "caller",
                            &format!(
                                "[quiet] the bot did not speak and fall silent within {}; going on",
                                format_duration(*max)
                            ),
                        );
                    }
                }
                Action::Play { what, prompt } => {
                    self.printer.line("caller", what);
                    let id = self.media.play(prompt.clone());
                    let limit = prompt.duration() + Duration::from_secs(5);
                    if !self
                        .idle(Some(limit), |call| call.played.contains(&id))
                        .await?
                    {
                        return Err(Stop::Failed {
                            step: what.clone(),
                            reason: "the media session did not finish playing it".into(),
                        });
                    }
                }
                Action::Keys(keys) => {
                    self.printer.line("caller", &format!("[keys] {keys}"));
                    self.send_keys(keys).await?;
                }
                Action::Hangup => {
                    self.printer.line("caller", "[hangup]");
                    return self.hang_up().await;
                }
            }
            previous_start = start;
            if !waiting {
                self.steps_run += 1;
            }
        }
        // Without a hangup step the bot ends the call (or the timeout does).
        self.idle(None, |_| false).await?;
        Ok(())
    }

    async fn send_keys(&mut self, keys: &str) -> Result<(), Stop> {
        let step = format!("keys:{keys}");
        if self.dtmf == DtmfMode::Rfc4733 && !self.telephone_event {
            return Err(Stop::Failed {
                step,
                reason: "the bot's SDP answer has no telephone-event; try --dtmf info".into(),
            });
        }
        for key in keys.chars() {
            match self.dtmf {
                DtmfMode::Rfc4733 => {
                    if let Err(e) = self.media.send_dtmf(key) {
                        return Err(Stop::Failed {
                            step,
                            reason: e.to_string(),
                        });
                    }
                }
                DtmfMode::Info => {
                    let sent =
                        tokio::time::timeout(BYE_WAIT, self.info.send(key, INFO_KEY_MS)).await;
                    let reason = match sent {
                        Ok(Ok(code)) if (200..300).contains(&code) => None,
                        Ok(Ok(code)) => {
                            Some(format!("INFO for `{key}` answered {}", status_text(code)))
                        }
                        Ok(Err(e)) => Some(format!("INFO for `{key}`: {e}")),
                        Err(_) => Some(format!("no answer to the INFO for `{key}`")),
                    };
                    if let Some(reason) = reason {
                        // The bot hanging up meanwhile explains the failure better.
                        self.idle(Some(Duration::from_millis(100)), |_| false)
                            .await?;
                        return Err(Stop::Failed { step, reason });
                    }
                }
            }
            self.idle(Some(KEY_SPACING), |_| false).await?;
        }
        Ok(())
    }

    /// Send BYE and wait for the leg to confirm.
    async fn hang_up(&mut self) -> Result<(), Stop> {
        if let Some(hangup) = self.hangup.take() {
            let _ = hangup.send(());
        }
        let wait = tokio::time::timeout(BYE_WAIT + Duration::from_secs(1), async {
            while let Some(note) = self.leg_events.recv().await {
                if let LegNote::Ended(result) = note {
                    return result;
                }
            }
            Err("the SIP stack stopped".to_string())
        })
        .await;
        match wait {
            Ok(Ok(_)) => Ok(()),
            // The bot's BYE crossed ours: the call is over either way.
            Ok(Err(why)) => Err(Stop::Lost(why)),
            Err(_) => Err(Stop::Lost("no answer to our BYE".into())),
        }
    }

    /// BYE on the way out of a failed call; its outcome changes nothing.
    async fn bye(&mut self) {
        if self.hangup.is_some() {
            let _ = self.hang_up().await;
        }
    }

    /// Let the call run for at most `max` (or until the call ends), until
    /// `done` holds: whether it did. The bot's BYE and the deadline
    /// interrupt any step.
    async fn idle(
        &mut self,
        max: Option<Duration>,
        mut done: impl FnMut(&mut Self) -> bool,
    ) -> Result<bool, Stop> {
        let until = max.map(|d| tokio::time::Instant::now() + d);
        loop {
            self.show_speech();
            if done(self) {
                return Ok(true);
            }
            if until.is_some_and(|u| tokio::time::Instant::now() >= u) {
                return Ok(false);
            }
            let tick = match until {
                Some(u) => u.min(tokio::time::Instant::now() + TICK),
                None => tokio::time::Instant::now() + TICK,
            };
            tokio::select! {
                note = self.leg_events.recv() => match note {
                    Some(LegNote::Ended(Ok(by))) => {
                        self.hangup = None;
                        return Err(Stop::Ended(by));
                    }
                    Some(LegNote::Ended(Err(why))) => {
                        self.hangup = None;
                        return Err(Stop::Lost(why));
                    }
                    Some(LegNote::Dtmf(key)) => self.printer.line("bot", &format!("[keys] {key} (SIP INFO)")),
                    Some(LegNote::Note(text)) => self.printer.line("call", &text),
                    None => {
                        self.hangup = None;
                        return Err(Stop::Lost("the SIP stack stopped".into()));
                    }
                },
                event = self.media.next_event(), if self.media_alive => match event {
                    Some(MediaEvent::PlaybackDone(id)) => {
                        self.played.insert(id);
                    }
                    Some(MediaEvent::Dtmf(key)) => self.printer.line("bot", &format!("[keys] {key}")),
                    Some(MediaEvent::Inactive) => self.printer.line("call", "no RTP from the bot for 10 s"),
                    Some(_) => {}
                    None => self.media_alive = false,
                },
                () = tokio::time::sleep_until(tick) => {}
                () = tokio::time::sleep_until(self.deadline) => return Err(Stop::Timeout),
                _ = tokio::signal::ctrl_c() => return Err(Stop::Interrupted),
            }
        }
    }

    /// Whether the bot spoke since `since` and has finished: silent for the
    /// hangover, and no line in its transcript still waiting for its audio.
    fn quiet(&self, since: Duration) -> bool {
        let spoken = {
            let heard = speech::lock(&self.heard);
            if !heard.tracker.quiet_after(since) {
                return false;
            }
            heard.tracker.last_end().unwrap_or_default()
        };
        let pending = self.bot_lines.last().is_some_and(|line| {
            line > spoken && self.printer.elapsed().saturating_sub(line) < PROMPT_LATENCY
        });
        !pending
    }

    /// Print the bot's finished stretches of speech, unless the admin
    /// endpoint is already telling us what it said.
    fn show_speech(&mut self) {
        let spans = {
            let mut heard = speech::lock(&self.heard);
            heard.tracker.poll(self.printer.elapsed());
            heard.tracker.take_ended()
        };
        if self.bot_lines.last().is_some() {
            return;
        }
        for span in spans {
            print_span(&self.printer, span);
        }
    }
}

/// `[  0.10s] bot: speaking … (3.2 s)`, stamped when it began.
fn print_span(printer: &Printer, span: speech::Span) {
    printer.line_at(
        span.start,
        "bot",
        &format!("speaking … ({:.1} s)", span.length().as_secs_f64()),
    );
}
