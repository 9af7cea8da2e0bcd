//! When the core lets the endpointer run: only while a question takes
//! speech or a prompt speech may barge into is on. A keys-only menu read
//! with barge-in off costs no VAD and holds no audio.

use super::*;

/// A script flow from YAML text.
fn script(yaml: &'static str) -> NewFlow {
    let program = Arc::new(Program::parse("listening.yaml", yaml).expect("the test script parses"));
    Arc::new(move |start: &FlowStart| {
        Box::new(ScriptFlow::new(program.clone(), start.caller.clone(), None)) as Box<dyn CallFlow>
    })
}

/// The last `Hearing` among `commands`: (listening, prompt active).
fn hearing(commands: &[Command]) -> Option<(bool, bool)> {
    commands.iter().rev().find_map(|c| match c {
        Command::Hearing {
            listening,
            prompt_active,
            ..
        } => Some((*listening, *prompt_active)),
        _ => None,
    })
}

fn prompt_id(commands: &[Command]) -> u64 {
    commands
        .iter()
        .find_map(|c| match c {
            Command::PreparePrompt { id, .. } => Some(*id),
            _ => None,
        })
        .expect("a prompt to make")
}

/// The prompt is ready and plays to its end.
fn play_through(sim: &mut Sim, id: u64) {
    sim.input(Input::Done(Done::Prompt {
        id,
        prompt: Some(Prompt::from_samples(vec![0; 800])),
        took: Duration::ZERO,
    }));
    sim.input(Input::Media(MediaInput::PlaybackStarted));
    sim.input(Input::Media(MediaInput::PlaybackDone));
}

const KEYS_ONLY: &str = r#"
name: keys-only
defaults:
  language: en
  barge_in: false
  no_input_timeout: 2s
  no_input: [{ reprompt: true }, { goto: bye }]
  no_match: [{ reprompt: true }, { goto: bye }]
intents:
  stop: { en: ["stop"] }
start: menu
states:
  menu:
    ask:
      prompt: "To stop, press nine."
      input: dtmf
      intents: [stop]
      keys: { "9": stop }
    on:
      stop: bye
  bye:
    say: "Goodbye."
    hangup: resolved
"#;

#[test]
fn a_keys_only_menu_with_barge_in_off_is_never_listened_to() {
    let mut sim = Sim::new(ring_config(0), false, script(KEYS_ONLY));
    let c = sim.take();
    let id = prompt_id(&c);
    // Told at once, so the endpointer never starts for this call.
    assert_eq!(hearing(&c), Some((false, true)), "{c:?}");
    play_through(&mut sim, id);
    // The keys-only question is open: still nobody listens.
    let c = sim.take();
    assert!(
        !has(&c, |c| matches!(
            c,
            Command::Hearing {
                listening: true,
                ..
            }
        )),
        "{c:?}"
    );
    assert_eq!(hearing(&c), Some((false, false)), "{c:?}");
    sim.input(Input::Media(MediaInput::Dtmf('9')));
    assert!(has(&sim.take(), |c| matches!(
        c,
        Command::PreparePrompt { .. }
    )));
}

const SPEECH_AFTER_A_LEGAL_TEXT: &str = r#"
name: speech-after-legal
defaults:
  language: en
  barge_in: true
  no_input_timeout: 2s
  no_input: [{ reprompt: true }, { goto: bye }]
  no_match: [{ reprompt: true }, { goto: bye }]
intents:
  agent: { en: ["agent", "a person"] }
start: legal
states:
  legal:
    say: { en: "This call may be recorded.", barge_in: false }
    next: menu
  menu:
    ask:
      prompt: "How can I help?"
      intents: [agent]
    on:
      agent: bye
  bye:
    say: "Goodbye."
    hangup: resolved
"#;

#[test]
fn listening_starts_when_a_speech_question_or_a_barge_in_prompt_begins() {
    let mut sim = Sim::new(ring_config(0), false, script(SPEECH_AFTER_A_LEGAL_TEXT));
    let c = sim.take();
    // The legal text may not be barged into: not listening.
    assert_eq!(hearing(&c), Some((false, true)), "{c:?}");
    let legal = prompt_id(&c);
    play_through(&mut sim, legal);
    // The menu prompt may be barged into: listening from the moment the
    // bot commits to it, before its first packet.
    let c = sim.take();
    assert_eq!(hearing(&c), Some((true, true)), "{c:?}");
    let menu = prompt_id(&c);
    play_through(&mut sim, menu);
    // The question is open after the prompt: still listening.
    let c = sim.take();
    assert_eq!(hearing(&c), Some((true, false)), "{c:?}");
    // The answer is recognised; until the next question or prompt nobody
    // listens.
    sim.input(Input::Media(MediaInput::SpeechStarted));
    sim.input(Input::Media(MediaInput::Utterance {
        audio: vec![0; 8000],
        ended_at: sim.now,
        endpointing: Duration::from_millis(256),
    }));
    let c = sim.take();
    assert!(has(&c, |c| matches!(c, Command::Recognise { .. })), "{c:?}");
    assert_eq!(hearing(&c), Some((false, false)), "{c:?}");
}
