//! Turns that end at a pause (`speech::early`) as the core runs them, in
//! simulated time: a complete grammar answer at a pause ends the turn and
//! cuts the utterance; speech after the pause discards the early result;
//! a whisper question uses the result of its pause when no more speech
//! follows.

use super::*;

/// The bundled script's menu question open (the caller barged into the
/// menu prompt), with nothing else pending.
fn menu_open() -> Sim {
    let mut sim = Sim::new(ring_config(0), false, customer_service());
    sim.prompt_made("the greeting is made");
    sim.input(Input::Media(MediaInput::PlaybackStarted));
    sim.input(Input::Media(MediaInput::BargeIn));
    sim.input(Input::Media(MediaInput::SpeechStarted));
    sim.take();
    sim
}

fn pause(sim: &mut Sim) -> Option<u64> {
    let at = sim.now;
    sim.input(Input::Media(MediaInput::Paused {
        audio: vec![0; 8000],
        ended_at: at,
        endpointing: Duration::from_millis(128),
    }));
    sim.take().into_iter().find_map(|c| match c {
        Command::Speculate { id, .. } => Some(id),
        _ => None,
    })
}

fn recognises(c: &[Command]) -> bool {
    has(c, |c| matches!(c, Command::Recognise { .. }))
}

#[test]
fn a_complete_answer_at_a_pause_ends_the_turn_and_cuts_the_utterance() {
    let mut sim = menu_open();
    let hearing_pause = sim.core.hearing_told.4;
    assert_eq!(hearing_pause, 128, "the endpointer is told the pause rule");
    let id = pause(&mut sim).expect("the speech so far is recognised at the pause");
    sim.advance(Duration::from_millis(40));
    sim.input(Input::Done(Done::Speculated {
        id,
        result: Ok(heard("talk to an agent", "agent")),
        complete: true,
    }));
    let c = sim.take();
    assert!(has(&c, |c| matches!(c, Command::CutUtterance)), "{c:?}");
    assert!(
        has(
            &c,
            |c| matches!(c, Command::Transcript { speaker: "caller", text } if text == "talk to an agent")
        ),
        "{c:?}"
    );
    assert!(!recognises(&c), "no second recognition: {c:?}");
    // The endpointer's own end of that utterance, had it come before the
    // cut: not a second answer, nor a barge-in into the reply.
    sim.input(Input::Media(MediaInput::Utterance {
        audio: vec![0; 8000],
        ended_at: sim.now,
        endpointing: Duration::from_millis(256),
    }));
    let c = sim.take();
    assert!(!recognises(&c), "{c:?}");
    assert!(!has(&c, |c| matches!(c, Command::StopPlayback)), "{c:?}");
    assert_eq!(
        sim.core
            .settings
            .metrics
            .asr_early_ends
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[test]
fn speech_after_the_pause_or_an_incomplete_answer_waits_for_the_silence() {
    let mut sim = menu_open();
    let id = pause(&mut sim).expect("speculated");
    // The caller goes on: the early result is worthless.
    sim.input(Input::Media(MediaInput::Resumed));
    // Another pause while the first still runs starts nothing.
    assert_eq!(pause(&mut sim), None);
    sim.input(Input::Done(Done::Speculated {
        id,
        result: Ok(heard("talk to an agent", "agent")),
        complete: true,
    }));
    let c = sim.take();
    assert!(!has(&c, |c| matches!(c, Command::CutUtterance)), "{c:?}");
    assert!(
        !has(&c, |c| matches!(
            c,
            Command::Transcript {
                speaker: "caller",
                ..
            }
        )),
        "{c:?}"
    );
    // An incomplete answer at the next pause does not end the turn either.
    let id = pause(&mut sim).expect("speculated again");
    sim.input(Input::Done(Done::Speculated {
        id,
        result: Ok(heard("talk to", "agent")),
        complete: false,
    }));
    assert!(!has(&sim.take(), |c| matches!(c, Command::CutUtterance)));
    // The whole utterance is recognised as usual.
    sim.input(Input::Media(MediaInput::Utterance {
        audio: vec![0; 16000],
        ended_at: sim.now,
        endpointing: Duration::from_millis(256),
    }));
    assert!(recognises(&sim.take()));
}

const WHISPER_QUESTION: &str = r#"
name: free-speech
defaults:
  language: en
  no_input_timeout: 5s
  no_input: [{ reprompt: true }, { goto: bye }]
  no_match: [{ reprompt: true }, { goto: bye }]
intents:
  complaint: { en: ["my kettle arrived broken"] }
start: ask
states:
  ask:
    ask:
      prompt: "How can I help?"
      asr: whisper
      intents: [complaint]
    on:
      complaint: bye
  bye:
    say: "Goodbye."
    hangup: resolved
"#;

/// A call at the whisper question, the caller speaking after its prompt.
fn whisper_caller_speaking() -> Sim {
    let program = Arc::new(Program::parse("early.yaml", WHISPER_QUESTION).expect("parses"));
    let flow: NewFlow = Arc::new(move |start: &FlowStart| {
        Box::new(ScriptFlow::new(program.clone(), start.caller.clone(), None)) as Box<dyn CallFlow>
    });
    let mut config = ring_config(0);
    config.speech.whisper_speculate_ms = 200;
    let mut sim = Sim::new(config, false, flow);
    sim.core.settings.ears = Some(Ears {
        available: Available {
            whisper: true,
            whisper_zh: false,
            grammar: true,
        },
        ..ears()
    });
    sim.prompt_made("the prompt is made");
    sim.input(Input::Media(MediaInput::PlaybackStarted));
    sim.input(Input::Media(MediaInput::PlaybackDone));
    sim.input(Input::Media(MediaInput::SpeechStarted));
    sim.take();
    sim
}

#[test]
fn whisper_uses_the_result_of_its_pause_when_nothing_follows() {
    let mut sim = whisper_caller_speaking();
    assert_eq!(sim.core.pause_ms, 200, "a whisper question speculates");
    let id = pause(&mut sim).expect("speculated at the pause");
    sim.input(Input::Done(Done::Speculated {
        id,
        result: Ok(heard("my kettle arrived broken", "complaint")),
        complete: false,
    }));
    // Kept, not used yet: the caller may still go on.
    assert!(!has(&sim.take(), |c| matches!(
        c,
        Command::Transcript {
            speaker: "caller",
            ..
        }
    )));
    sim.advance(Duration::from_millis(300));
    sim.input(Input::Media(MediaInput::Utterance {
        audio: vec![0; 8000],
        ended_at: sim.now,
        endpointing: Duration::from_millis(500),
    }));
    let c = sim.take();
    assert!(!recognises(&c), "the kept result answers: {c:?}");
    assert!(
        has(
            &c,
            |c| matches!(c, Command::Transcript { speaker: "caller", text } if text == "my kettle arrived broken")
        ),
        "{c:?}"
    );
}

#[test]
fn understood_free_speech_ends_the_turn_when_its_pause_result_arrives() {
    let mut sim = whisper_caller_speaking();
    let id = pause(&mut sim).expect("speculated at the pause");
    sim.advance(Duration::from_millis(150));
    // The shell found it understood (`speech::early::understood`): no
    // waiting for the rest of the 500 ms silence.
    sim.input(Input::Done(Done::Speculated {
        id,
        result: Ok(heard("my kettle arrived broken", "complaint")),
        complete: true,
    }));
    let c = sim.take();
    assert!(has(&c, |c| matches!(c, Command::CutUtterance)), "{c:?}");
    assert!(
        has(
            &c,
            |c| matches!(c, Command::Transcript { speaker: "caller", text } if text == "my kettle arrived broken")
        ),
        "{c:?}"
    );
    assert!(!recognises(&c), "nothing else is recognised: {c:?}");
}
