//! The text simulator behind `voxbridge chat`: typed lines are the
//! caller, the bot's prompts and the commands the engine would run are
//! printed. Lines: text = speech, `#123` = keys, `/silence` = no input,
//! `/hangup`, `/intent NAME [text]`, `/state`, `/vars`, `/help`, `/quit`.

use std::io::{BufRead, Write};

use crate::interp::{Command, Speaker};
use crate::sim::{Input, Simulator};
use crate::value::Value;

pub const HELP: &str = "\
  text             the caller says it (labelled by the intent model or the script's examples)
  #123 / #123#     the caller keys 1 2 3 (and #)
  /silence         the caller says nothing (no-input)
  /intent NAME [text]  the caller says text that the model labels NAME
  /hangup          the caller hangs up
  /state, /vars    where the call is, what it knows
  /quit            leave";

/// Run a chat until the call ends, `/quit` or end of input.
pub fn run(
    sim: &mut Simulator,
    opening: Vec<Command>,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    print_commands(sim, &opening, out)?;
    let mut line = String::new();
    while !sim.call().is_finished() {
        write!(out, "you> ")?;
        out.flush()?;
        line.clear();
        if input.read_line(&mut line)? == 0 {
            writeln!(out)?;
            break;
        }
        let text = line.trim();
        let caller_input = match parse_line(text) {
            Line::Nothing => continue,
            Line::Quit => break,
            Line::Help => {
                writeln!(out, "{HELP}")?;
                continue;
            }
            Line::State => {
                writeln!(
                    out,
                    "  [state {}, language {}]",
                    sim.call().state(),
                    sim.call().language()
                )?;
                continue;
            }
            Line::Vars => {
                for (k, v) in sim.call().vars() {
                    writeln!(out, "  {k} = {}", show(v))?;
                }
                continue;
            }
            Line::Input(i) => i,
        };
        let cmds = sim.input(caller_input);
        if let Some(t) = sim
            .call()
            .transcript()
            .iter()
            .rev()
            .find(|t| t.speaker == Speaker::Caller)
        {
            if let Some(i) = &t.intent {
                writeln!(
                    out,
                    "  [heard \"{}\" → {i} ({:.2})]",
                    t.text,
                    t.confidence.unwrap_or(0.0)
                )?;
            }
        }
        print_commands(sim, &cmds, out)?;
    }
    Ok(())
}

enum Line {
    Nothing,
    Quit,
    Help,
    State,
    Vars,
    Input(Input),
}

fn parse_line(text: &str) -> Line {
    if text.is_empty() {
        return Line::Nothing;
    }
    if let Some(keys) = text.strip_prefix('#') {
        return Line::Input(Input::Digits(
            keys.chars().filter(|c| !c.is_whitespace()).collect(),
        ));
    }
    let Some(cmd) = text.strip_prefix('/') else {
        return Line::Input(Input::say(text));
    };
    let (word, rest) = cmd.split_once(' ').unwrap_or((cmd, ""));
    match word {
        "silence" | "s" => Line::Input(Input::Silence),
        "hangup" | "bye" => Line::Input(Input::Hangup),
        "quit" | "q" | "exit" => Line::Quit,
        "state" => Line::State,
        "vars" => Line::Vars,
        "intent" | "i" => {
            let (name, said) = rest.trim().split_once(' ').unwrap_or((rest.trim(), ""));
            Line::Input(Input::Speech {
                text: if said.is_empty() {
                    name.to_string()
                } else {
                    said.to_string()
                },
                intent: Some(name.to_string()),
                confidence: Some(1.0),
                entities: Default::default(),
            })
        }
        _ => Line::Help,
    }
}

fn show(v: &Value) -> String {
    match v {
        Value::String(s) => format!("\"{s}\""),
        Value::Null => "null".into(),
        other => serde_json::to_string(other).unwrap_or_else(|_| other.to_string()),
    }
}

fn print_commands(
    sim: &mut Simulator,
    cmds: &[Command],
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let mut answers = sim.take_answers().into_iter();
    for c in cmds {
        match c {
            Command::Say { text, barge_in, .. } => {
                let lock = if *barge_in { "" } else { " [no barge-in]" };
                writeln!(out, "bot: {text}{lock}")?;
            }
            Command::Play { file, text, .. } => {
                writeln!(out, "bot: {text} [plays {}]", file.display())?;
            }
            Command::Listen(l) => {
                let mut how = Vec::new();
                if l.speech {
                    how.push("speech");
                }
                if l.dtmf {
                    how.push("keys");
                }
                let mut extra = String::new();
                if l.dtmf {
                    extra.push_str(&format!(", up to {} keys", l.max_digits));
                    if let Some(k) = l.finish_key {
                        extra.push_str(&format!(" or {k}"));
                    }
                }
                if let Some(s) = l.slot {
                    extra.push_str(&format!(", slot {}", s.name()));
                }
                writeln!(
                    out,
                    "  [listen {} for {}s{extra}]",
                    how.join("+"),
                    l.timeout.as_secs_f32()
                )?;
            }
            Command::Lookup(l) => {
                let args: Vec<String> = l.args.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let answer = answers.next().unwrap_or_default();
                writeln!(out, "  [lookup {} {} → {answer}]", l.name, args.join(" "))?;
            }
            Command::CreateTicket(t) => {
                let answer = answers.next().unwrap_or_default();
                writeln!(
                    out,
                    "  [ticket queue={} priority={} subject=\"{}\" → {answer}]",
                    t.queue,
                    t.priority.name(),
                    t.subject
                )?;
            }
            Command::FollowUp(f) => {
                writeln!(out, "  [follow-up task ({}): \"{}\"]", f.trigger, f.subject)?
            }
            Command::Transfer { to, context } => {
                let ctx: Vec<String> = context.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let answer = answers.next().unwrap_or_default();
                writeln!(out, "  [transfer to {to} {} → {answer}]", ctx.join(" "))?;
            }
            Command::Hangup { disposition } => writeln!(out, "  [hangup: {disposition}]")?,
            Command::Record(r) => {
                let facts: Vec<String> = r
                    .facts
                    .iter()
                    .map(|(k, v)| format!("{k}={}", show(v)))
                    .collect();
                writeln!(
                    out,
                    "  [record: disposition={} ended_by={:?} facts: {}{}]",
                    r.disposition,
                    r.ended_by,
                    if facts.is_empty() {
                        "none".to_string()
                    } else {
                        facts.join(", ")
                    },
                    match r.score {
                        Some(s) => format!(" score={}", crate::value::format_number(s)),
                        None => String::new(),
                    }
                )?;
            }
        }
    }
    Ok(())
}
