//! Whole calls through the core in simulated time: no sockets, no tasks,
//! no sleeping. A [`Sim`] plays the shell: it takes every command, keeps
//! what a test wants to look at, and feeds inputs at made-up instants.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use voxbridge_dialog::interp::{Heard, Listen, LookupRequest, Program};
use voxbridge_dialog::value::Value;
use voxbridge_media::Prompt;

use super::*;
use crate::config::Config;
use crate::flow::FlowAction;
use crate::script_flow::ScriptFlow;
use crate::speech::Understood;

const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n";

/// A flow whose answers the test writes.
struct Fake(Box<dyn FnMut(FlowEvent) -> Vec<FlowAction> + Send>);

impl CallFlow for Fake {
    fn on_event(&mut self, event: FlowEvent) -> Vec<FlowAction> {
        (self.0)(event)
    }
}

struct Sim {
    core: CallCore,
    now: Instant,
    commands: Vec<Command>,
}

fn ears() -> Ears {
    Ears {
        available: Available {
            whisper: false,
            whisper_zh: false,
            grammar: true,
        },
        end_silence_ms: 500,
        grammar_end_silence_ms: 256,
        grammar_early_end_ms: 128,
        whisper_speculate_ms: 200,
    }
}

impl Sim {
    /// The prompt the core asked for next is made (0.1 s of silence):
    /// takes the pending commands, so `what` names the prompt expected.
    fn prompt_made(&mut self, what: &str) {
        let id = self
            .take()
            .into_iter()
            .find_map(|c| match c {
                Command::PreparePrompt { id, .. } => Some(id),
                _ => None,
            })
            .unwrap_or_else(|| panic!("{what}: no prompt asked for"));
        self.input(Input::Done(Done::Prompt {
            id,
            prompt: Some(Prompt::from_samples(vec![0; 800])),
            took: Duration::ZERO,
        }));
    }

    fn new(config: Config, crm: bool, new_flow: NewFlow) -> Sim {
        let now = Instant::now();
        let settings = CoreSettings {
            config: Arc::new(config),
            metrics: Arc::new(Metrics::default()),
            new_flow,
            ears: Some(ears()),
            crm,
            machine: None,
        };
        let start = CallStart {
            call_id: "sim-1".into(),
            from: "sip:+15550001234@pbx".into(),
            offer: OFFER.as_bytes().to_vec(),
            received: now,
            srtp: Default::default(),
        };
        let mut core = CallCore::new(settings, start, 1);
        core.begin(now);
        let mut sim = Sim {
            core,
            now,
            commands: Vec::new(),
        };
        sim.drain();
        sim
    }

    /// A flow built from a closure.
    fn with_flow(
        config: Config,
        flow: impl FnMut(FlowEvent) -> Vec<FlowAction> + Send + Sync + Clone + 'static,
    ) -> Sim {
        let new_flow: NewFlow = Arc::new(move |_| Box::new(Fake(Box::new(flow.clone()))));
        Sim::new(config, false, new_flow)
    }

    /// Take the commands out; answer the ones a shell answers at once.
    fn drain(&mut self) -> Option<Instant> {
        loop {
            match self.core.poll_output() {
                Output::Command(Command::AllocatePort) => {
                    self.core
                        .handle_input(self.now, Input::Done(Done::Port(Ok(40000))));
                }
                Output::Command(Command::Answer { sdp, .. }) => {
                    assert!(sdp.contains("m=audio 40000"), "{sdp}");
                    self.commands.push(Command::Answer {
                        sdp,
                        media: media_params(&Config::default(), &negotiated()),
                    });
                    self.core
                        .handle_input(self.now, Input::Done(Done::Answered(Ok(()))));
                }
                Output::Command(c) => self.commands.push(c),
                Output::Timeout(d) => return d,
            }
        }
    }

    fn input(&mut self, input: Input) {
        self.core.handle_input(self.now, input);
        self.drain();
    }

    /// Let simulated time pass, firing every deadline on the way.
    fn advance(&mut self, by: Duration) {
        let until = self.now + by;
        while let Some(d) = self.drain().filter(|d| *d <= until) {
            self.now = d.max(self.now);
            self.core.handle_input(self.now, Input::Timeout);
        }
        self.now = until;
        self.drain();
    }

    fn take(&mut self) -> Vec<Command> {
        std::mem::take(&mut self.commands)
    }

    fn finished(&self) -> Option<EndReason> {
        self.commands.iter().find_map(|c| match c {
            Command::Finished(r) => Some(*r),
            _ => None,
        })
    }
}

fn negotiated() -> Negotiated {
    let offer = crate::sdp::parse(OFFER.as_bytes()).unwrap();
    crate::sdp::negotiate(&offer, &[Codec::Pcmu]).unwrap()
}

fn lookup_request(timeout_ms: u64) -> LookupRequest {
    LookupRequest {
        name: "order_status".into(),
        args: Default::default(),
        timeout: Duration::from_millis(timeout_ms),
    }
}

fn ring_config(ring_ms: u64) -> Config {
    let mut c = Config::default();
    c.sip.ring_ms = ring_ms;
    c
}

fn has(commands: &[Command], f: impl Fn(&Command) -> bool) -> bool {
    commands.iter().any(f)
}

#[test]
fn rings_then_answers_and_plays_the_greeting() {
    let mut sim = Sim::with_flow(ring_config(200), |e| match e {
        FlowEvent::Answered => vec![FlowAction::Play(Prompt::from_samples(vec![0; 800]))],
        _ => vec![],
    });
    let c = sim.take();
    assert!(has(&c, |c| matches!(c, Command::Ring)), "{c:?}");
    assert!(
        !has(&c, |c| matches!(c, Command::Answer { .. })),
        "answered early"
    );
    sim.advance(Duration::from_millis(199));
    assert!(sim.take().is_empty());
    sim.advance(Duration::from_millis(1));
    let c = sim.take();
    assert!(has(&c, |c| matches!(c, Command::Answer { .. })), "{c:?}");
    assert!(has(&c, |c| matches!(c, Command::Play(_))), "{c:?}");
}

#[test]
fn the_answer_waits_for_the_caller_lookup_within_its_budget() {
    let mut config = ring_config(0);
    config.crm.lookup_budget_ms = 500;
    let new_flow: NewFlow = Arc::new(|start: &FlowStart| {
        let known = start.customer.is_some();
        Box::new(Fake(Box::new(move |e| match e {
            FlowEvent::Answered if known => vec![FlowAction::DigitsCollected("known".into())],
            _ => vec![],
        })))
    });
    let mut sim = Sim::new(config.clone(), true, new_flow.clone());
    let c = sim.take();
    assert!(has(&c, |c| matches!(c, Command::LookUpCaller)));
    assert!(!has(&c, |c| matches!(c, Command::Answer { .. })));
    sim.advance(Duration::from_millis(120));
    let customer = voxbridge_crm::model::Customer {
        id: "C1".into(),
        ..Default::default()
    };
    sim.input(Input::Done(Done::Customer(Some(customer))));
    let c = sim.take();
    assert!(has(&c, |c| matches!(c, Command::Answer { .. })), "{c:?}");
    assert_eq!(sim.core.outcome.dtmf, "known", "the flow saw the profile");

    // A CRM that never answers: the call is answered at the budget.
    let mut sim = Sim::new(config, true, new_flow);
    sim.advance(Duration::from_millis(499));
    assert!(!has(&sim.take(), |c| matches!(c, Command::Answer { .. })));
    sim.advance(Duration::from_millis(1));
    assert!(has(&sim.take(), |c| matches!(c, Command::Answer { .. })));
}

#[test]
fn bad_offers_are_refused_and_cancel_ends_the_ringing() {
    let mut sim = Sim::with_flow(ring_config(1000), |_| vec![]);
    sim.input(Input::Leg(LegInput::Ended(LegEnd::Cancelled)));
    assert_eq!(sim.finished(), Some(EndReason::CallerCancel));

    let settings = CoreSettings {
        config: Arc::new(Config::default()),
        metrics: Arc::new(Metrics::default()),
        new_flow: Arc::new(|_| Box::new(Fake(Box::new(|_| vec![])))),
        ears: None,
        crm: false,
        machine: None,
    };
    let start = CallStart {
        call_id: "x".into(),
        from: String::new(),
        offer: b"v=0\r\nm=video 1 RTP/AVP 31\r\n".to_vec(),
        received: Instant::now(),
        srtp: Default::default(),
    };
    let mut core = CallCore::new(settings, start, 1);
    core.begin(Instant::now());
    let mut out = vec![];
    while let Output::Command(c) = core.poll_output() {
        out.push(c);
    }
    assert!(matches!(out[0], Command::Reject { code: 488 }), "{out:?}");
    assert!(matches!(out[1], Command::Finished(EndReason::Rejected)));
}

#[test]
fn a_bye_during_a_lookup_ends_the_call_at_once() {
    let mut sim = Sim::with_flow(ring_config(0), |e| match e {
        FlowEvent::Answered => vec![FlowAction::Lookup(lookup_request(10_000))],
        _ => vec![],
    });
    assert!(has(&sim.take(), |c| matches!(c, Command::Lookup { .. })));
    sim.advance(Duration::from_secs(2));
    sim.input(Input::Leg(LegInput::Ended(LegEnd::RemoteBye)));
    let c = sim.take();
    assert!(matches!(c[0], Command::Hangup { bye: false }), "{c:?}");
    assert_eq!(sim.finished(), None, "taken above");
    assert!(matches!(c[1], Command::Finished(EndReason::CallerHangup)));
    // The lookup's late answer changes nothing.
    sim.input(Input::Done(Done::Lookup {
        id: 1,
        result: Ok(Value::Null),
        took: Duration::from_secs(3),
    }));
    assert!(sim.take().is_empty());
    assert!(sim.core.is_over());
}

#[test]
fn a_lookup_that_never_answers_fails_at_its_timeout_and_keys_still_count() {
    let heard = Arc::new(Mutex::new(Vec::<String>::new()));
    let log = heard.clone();
    let mut sim = Sim::with_flow(ring_config(0), move |e| {
        log.lock().unwrap().push(format!("{e:?}"));
        match e {
            FlowEvent::Answered => vec![FlowAction::Lookup(lookup_request(3_000))],
            _ => vec![],
        }
    });
    sim.take();
    sim.advance(Duration::from_millis(1_000));
    // The call is not deaf while it waits: a key reaches the flow.
    sim.input(Input::Media(MediaInput::Dtmf('5')));
    sim.advance(Duration::from_millis(2_249));
    assert!(!heard
        .lock()
        .unwrap()
        .iter()
        .any(|e| e.contains("LookupFailed")));
    sim.advance(Duration::from_millis(1));
    let events = heard.lock().unwrap().clone();
    assert!(events.iter().any(|e| e == "Digit('5')"), "{events:?}");
    assert!(
        events.iter().any(|e| e.contains("LookupFailed")),
        "{events:?}"
    );
    let lines: Vec<String> = sim
        .take()
        .into_iter()
        .filter_map(|c| match c {
            Command::Transcript { text, .. } => Some(text),
            _ => None,
        })
        .collect();
    assert!(
        lines[0].starts_with("lookup order_status: failed: timed out (3250 ms)"),
        "{lines:?}"
    );
}

#[test]
fn drain_during_a_transfer_hangs_up_with_a_bye() {
    let mut sim = Sim::with_flow(ring_config(0), |e| match e {
        FlowEvent::Answered => vec![FlowAction::Transfer {
            target: "sip:agent@pbx".into(),
            context: vec![("intent".into(), "agent".into())],
        }],
        _ => vec![],
    });
    let c = sim.take();
    let refer = c.iter().find_map(|c| match c {
        Command::Refer { refer_to, .. } => Some(refer_to.clone()),
        _ => None,
    });
    let refer = refer.expect("a REFER");
    assert!(refer.contains("X-VB-intent=agent"), "{refer}");
    assert!(refer.contains("X-VB-call-id=sim-1"), "{refer}");
    // The agent's screen pop learns the target and the context's intent.
    let handover = c
        .iter()
        .find_map(|c| match c {
            Command::Refer { handover, .. } => Some(handover.clone()),
            _ => None,
        })
        .expect("a handover");
    assert_eq!(handover.target, "sip:agent@pbx");
    assert_eq!(handover.target_uri, "sip:agent@pbx");
    assert_eq!(handover.intent.as_deref(), Some("agent"));
    assert_eq!(handover.reason, None);
    sim.input(Input::Done(Done::ReferSent(Ok(202))));
    sim.input(Input::Leg(LegInput::ReferProgress {
        code: 100,
        terminated: false,
    }));
    sim.input(Input::Drain);
    let c = sim.take();
    assert!(matches!(c[0], Command::Hangup { bye: true }), "{c:?}");
    assert!(
        matches!(c[1], Command::Finished(EndReason::BotHangup)),
        "{c:?}"
    );
}

#[test]
fn a_failed_transfer_keeps_the_call_and_is_the_end_reason() {
    let mut sim = Sim::with_flow(ring_config(0), |e| match e {
        FlowEvent::Answered => vec![FlowAction::Transfer {
            target: "agents".into(),
            context: vec![],
        }],
        FlowEvent::TransferFailed(_) => vec![FlowAction::AwaitInput(Duration::from_secs(5))],
        _ => vec![],
    });
    let c = sim.take();
    assert!(
        has(
            &c,
            |c| matches!(c, Command::Transcript { text, .. } if text.contains("no transfer target named `agents`"))
        ),
        "{c:?}"
    );
    assert!(!has(&c, |c| matches!(c, Command::Refer { .. })));
    // The flow waits for input: the call goes on until the caller leaves.
    sim.advance(Duration::from_secs(1));
    sim.input(Input::Leg(LegInput::Ended(LegEnd::RemoteBye)));
    assert_eq!(sim.finished(), Some(EndReason::TransferFailed));
}

#[test]
fn a_transfer_with_no_final_notify_fails_at_the_timeout() {
    let mut config = ring_config(0);
    config.transfer.timeout_secs = 30;
    let mut sim = Sim::with_flow(config, |e| match e {
        FlowEvent::Answered => vec![FlowAction::Transfer {
            target: "sip:agent@pbx".into(),
            context: vec![],
        }],
        _ => vec![],
    });
    sim.input(Input::Done(Done::ReferSent(Ok(202))));
    sim.take();
    sim.advance(Duration::from_secs(29));
    assert!(!has(
        &sim.take(),
        |c| matches!(c, Command::Transcript { text, .. } if text.contains("failed"))
    ));
    sim.advance(Duration::from_secs(1));
    assert!(has(
        &sim.take(),
        |c| matches!(c, Command::Transcript { text, .. } if text.contains("no final NOTIFY"))
    ));
}

fn customer_service() -> NewFlow {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/scripts/customer-service.yaml");
    let program = Arc::new(Program::load(&path, None).expect("the bundled script loads"));
    Arc::new(move |start: &FlowStart| {
        Box::new(ScriptFlow::new(program.clone(), start.caller.clone(), None)) as Box<dyn CallFlow>
    })
}

fn heard(text: &str, intent: &str) -> Understood {
    Understood {
        heard: Heard {
            text: text.into(),
            intent: Some(intent.into()),
            confidence: 0.9,
            ..Heard::default()
        },
        engine: "grammar",
        asr: Duration::from_millis(40),
        intent: Duration::from_micros(300),
    }
}

#[test]
fn a_cold_first_call_whose_caller_speaks_at_once_is_heard() {
    let mut sim = Sim::new(ring_config(0), false, customer_service());
    let c = sim.take();
    // The greeting is being synthesised (a cold cache: slow); speech now
    // counts as over the prompt.
    let greeting = c.iter().find_map(|c| match c {
        Command::PreparePrompt { id, .. } => Some(*id),
        _ => None,
    });
    let greeting = greeting.expect("a prompt to make");
    assert!(
        has(&c, |c| matches!(
            c,
            Command::Hearing {
                prompt_active: true,
                ..
            }
        )),
        "the endpointer hears a prompt before its first packet: {c:?}"
    );
    // The caller speaks before any prompt packet left: a short answer,
    // below the barge-in length, ends while the greeting is still made.
    sim.advance(Duration::from_millis(300));
    sim.input(Input::Media(MediaInput::SpeechStarted));
    let ended = sim.now;
    sim.input(Input::Media(MediaInput::Utterance {
        audio: vec![0; 8000],
        ended_at: ended,
        endpointing: Duration::from_millis(256),
    }));
    let c = sim.take();
    assert!(has(&c, |c| matches!(c, Command::StopPlayback)), "{c:?}");
    let (id, listen): (u64, Box<Listen>) = c
        .into_iter()
        .find_map(|c| match c {
            Command::Recognise { id, listen, .. } => Some((id, listen)),
            _ => None,
        })
        .expect("the utterance is recognised, not dropped");
    assert!(
        listen.intents.contains(&"agent".to_string()),
        "the menu question"
    );
    // The greeting, ready at last, is not played over the answer.
    sim.input(Input::Done(Done::Prompt {
        id: greeting,
        prompt: Some(Prompt::from_samples(vec![0; 800])),
        took: Duration::from_millis(700),
    }));
    assert!(!has(&sim.take(), |c| matches!(c, Command::Play(_))));
    sim.input(Input::Done(Done::Recognised {
        id,
        result: Ok(heard("talk to an agent", "agent")),
    }));
    let c = sim.take();
    assert!(
        has(
            &c,
            |c| matches!(c, Command::Transcript { speaker: "caller", text } if text == "talk to an agent")
        ),
        "{c:?}"
    );
    assert!(
        has(
            &c,
            |c| matches!(c, Command::Transcript { speaker: "bot", text } if text == "Connecting you to an agent.")
        ),
        "{c:?}"
    );
}

#[test]
fn the_lookup_starts_while_its_filler_plays() {
    let mut sim = Sim::new(ring_config(0), false, customer_service());
    let id = sim
        .take()
        .into_iter()
        .find_map(|c| match c {
            Command::PreparePrompt { id, .. } => Some(id),
            _ => None,
        })
        .unwrap();
    sim.input(Input::Done(Done::Prompt {
        id,
        prompt: Some(Prompt::from_samples(vec![0; 800])),
        took: Duration::ZERO,
    }));
    sim.input(Input::Media(MediaInput::PlaybackStarted));
    // The caller speaks over the menu: the question opens.
    sim.input(Input::Media(MediaInput::BargeIn));
    sim.take();
    sim.input(Input::Media(MediaInput::Utterance {
        audio: vec![0; 8000],
        ended_at: sim.now,
        endpointing: Duration::from_millis(256),
    }));
    let rid = sim
        .take()
        .into_iter()
        .find_map(|c| match c {
            Command::Recognise { id, .. } => Some(id),
            _ => None,
        })
        .expect("recognised");
    let mut order = heard("where is my order 1001", "order_status");
    order
        .heard
        .entities
        .insert("order_id".into(), "1001".into());
    sim.input(Input::Done(Done::Recognised {
        id: rid,
        result: Ok(order),
    }));
    // "Please key your order number": the caller keys it.
    sim.prompt_made("the order-number prompt");
    sim.input(Input::Media(MediaInput::PlaybackDone));
    for d in "1001#".chars() {
        sim.input(Input::Media(MediaInput::Dtmf(d)));
    }
    let c = sim.take();
    let filler = c.iter().find_map(|c| match c {
        Command::PreparePrompt {
            id,
            source: PromptSource::Speak { text, .. },
        } => Some((*id, text.clone())),
        _ => None,
    });
    let lookup = c.iter().find_map(|c| match c {
        Command::Lookup { id, request } => Some((*id, request.name.clone())),
        _ => None,
    });
    let (Some((filler, text)), Some((lookup, name))) = (filler, lookup) else {
        panic!("a filler and its lookup, together: {c:?}");
    };
    assert_eq!(text, "One moment please.");
    assert_eq!(name, "order_status");
    // The answer comes before the filler ends: held until it does.
    sim.input(Input::Done(Done::Prompt {
        id: filler,
        prompt: Some(Prompt::from_samples(vec![0; 800])),
        took: Duration::ZERO,
    }));
    let mut order = std::collections::BTreeMap::new();
    order.insert("id".to_string(), Value::String("SO-1001".into()));
    order.insert("status".to_string(), Value::String("shipped".into()));
    sim.input(Input::Done(Done::Lookup {
        id: lookup,
        result: Ok(Value::Map(order)),
        took: Duration::from_millis(80),
    }));
    assert!(
        !has(&sim.take(), |c| matches!(c, Command::PreparePrompt { .. })),
        "nothing is said over the filler"
    );
    sim.input(Input::Media(MediaInput::PlaybackDone));
    let c = sim.take();
    assert!(
        has(
            &c,
            |c| matches!(c, Command::Transcript { speaker: "bot", text } if text.contains("shipped"))
        ),
        "{c:?}"
    );
}

#[test]
fn a_prompts_barge_in_rule_reaches_the_endpointer() {
    let mut sim = Sim::with_flow(ring_config(0), |e| match e {
        FlowEvent::Answered => vec![FlowAction::Say {
            text: "Orders or hours?".into(),
            language: "en".into(),
            voice: None,
            barge_in: true,
            min_speech: Some(Duration::from_millis(350)),
        }],
        FlowEvent::PlaybackDone => vec![FlowAction::Say {
            text: "Anything else?".into(),
            language: "en".into(),
            voice: None,
            barge_in: true,
            min_speech: None,
        }],
        _ => vec![],
    });
    let hearing = |c: &[Command]| {
        c.iter()
            .filter_map(|c| match c {
                Command::Hearing {
                    prompt_active,
                    barge_in_ms,
                    ..
                } => Some((*prompt_active, *barge_in_ms)),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(hearing(&sim.take()), [(true, 350)]);
    sim.input(Input::Media(MediaInput::PlaybackDone));
    // The next prompt has no rule of its own: the engine's default (0).
    assert_eq!(hearing(&sim.take()), [(true, 0)]);
}

mod early;
mod listening;

/// The commands a fresh core gives for `offer` under `srtp`, with a port
/// allocated at once.
fn setup_commands(offer: &str, srtp: crate::sdp::SrtpPolicy) -> Vec<Command> {
    let settings = CoreSettings {
        config: Arc::new(Config::default()),
        metrics: Arc::new(Metrics::default()),
        new_flow: Arc::new(|_| Box::new(Fake(Box::new(|_| vec![])))),
        ears: None,
        crm: false,
        machine: None,
    };
    let start = CallStart {
        call_id: "srtp".into(),
        from: String::new(),
        offer: offer.as_bytes().to_vec(),
        received: Instant::now(),
        srtp,
    };
    let mut core = CallCore::new(settings, start, 1);
    let now = Instant::now();
    core.begin(now);
    let mut out = vec![];
    loop {
        match core.poll_output() {
            Output::Command(Command::AllocatePort) => {
                core.handle_input(now, Input::Done(Done::Port(Ok(40000))))
            }
            Output::Command(c) => out.push(c),
            Output::Timeout(_) => return out,
        }
    }
}

#[test]
fn sdes_offer_is_answered_with_a_fresh_key_and_the_media_gets_both() {
    use crate::sdp::SrtpPolicy;
    let key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd";
    let offer = format!("v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 6000 RTP/SAVP 0\r\na=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:{key}\r\n");
    let answers: Vec<(String, voxbridge_media::MediaParams)> = (0..2)
        .map(|_| {
            let out = setup_commands(&offer, SrtpPolicy::Required);
            out.into_iter()
                .find_map(|c| match c {
                    Command::Answer { sdp, media } => Some((sdp, media)),
                    _ => None,
                })
                .expect("answered")
        })
        .collect();
    let (sdp, media) = &answers[0];
    assert!(sdp.contains("m=audio 40000 RTP/SAVP 0\r\n"), "{sdp}");
    let line = sdp
        .lines()
        .find_map(|l| l.strip_prefix("a=crypto:"))
        .expect("our a=crypto");
    let ours = crate::sdp::sdes::parse_crypto(line).unwrap();
    assert_eq!(ours.tag, 3);
    let srtp = media.srtp.as_ref().expect("SRTP media");
    assert_eq!(srtp.send, ours.key);
    assert_eq!(srtp.receive.as_bytes()[29], 29, "the caller's key receives");
    // A fresh key per call, never the caller's.
    assert_ne!(srtp.send, srtp.receive);
    assert_ne!(answers[1].1.srtp.as_ref().unwrap().send, srtp.send);

    // Plain RTP to `required`, SRTP to `off`: refused before ringing.
    for (offer, policy) in [
        (
            "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 6000 RTP/AVP 0\r\n",
            SrtpPolicy::Required,
        ),
        (offer.as_str(), SrtpPolicy::Off),
    ] {
        let out = setup_commands(offer, policy);
        assert!(matches!(out[0], Command::Reject { code: 488 }), "{out:?}");
    }
    // `optional` takes a plain offer as plain RTP.
    let out = setup_commands(
        "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 6000 RTP/AVP 0\r\n",
        SrtpPolicy::Optional,
    );
    assert!(
        out.iter()
            .any(|c| matches!(c, Command::Answer { media, .. } if media.srtp.is_none())),
        "{out:?}"
    );
}
