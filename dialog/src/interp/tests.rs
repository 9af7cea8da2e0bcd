//! One test (at least) per construct of the script format, driving the
//! interpreter with events and reading its commands.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::date::Date;

const MENU: &str = r#"
name: t
languages: [en, zh]
defaults:
  voice: { en: en-us, zh: cmn }
  max_retries: 3
  no_input:
    - say: { en: "Sorry?", zh: "什么？" }
      reprompt: true
    - say: { en: "Still there?", zh: "还在吗？" }
    - say: { en: "Bye.", zh: "再见。" }
      goto: bye
  no_match:
    - say: { en: "Pardon?", zh: "请再说一遍。" }
      reprompt: true
    - goto: agent
global:
  intents: { agent: agent, repeat: repeat }
  dtmf: { "0": agent, "*": repeat }
intents:
  orders: { en: [order], zh: [订单] }
  agent: { en: [agent], zh: [人工] }
  repeat: { en: [repeat], zh: [重复] }
  hours: { en: [hours], zh: [营业时间] }
start: greet
states:
  greet:
    next:
      - if: customer.tier == "gold"
        goto: vip
      - goto: menu
  vip:
    say: { en: "Hello {{ customer.first_name }}, VIP.", zh: "{{ customer.first_name }}您好。" }
    next: menu
  menu:
    ask:
      prompt: { en: "Orders or hours?", zh: "订单还是营业时间？" }
      intents: [orders, hours]
      keys: { "1": orders, "2": hours }
    on:
      orders: orders
      hours: hours
  orders:
    say: { en: "Orders it is.", zh: "查订单。" }
    hangup: orders
  hours:
    say: { en: "We open at nine.", zh: "九点开门。" }
    hangup: hours
  agent:
    transfer:
      to: agents
      context: { why: "{{ last.intent }}", text: "{{ last.text }}" }
    on: { failed: busy }
  busy:
    say: { en: "Everyone is busy.", zh: "都在忙。" }
    hangup: busy
  bye:
    hangup: no_answer
"#;

fn program(yaml: &str) -> Arc<Program> {
    match Program::parse("t.yaml", yaml) {
        Ok(p) => Arc::new(p),
        Err(e) => panic!("{e}"),
    }
}

fn start(p: &Arc<Program>, customer: Option<Value>) -> (Interpreter, Vec<Command>) {
    let mut i = Interpreter::new(p.clone());
    let out = i.handle(Event::CallStarted(CallStart {
        caller: "+15550100".into(),
        customer,
        language: None,
        today: Date::new(2026, 11, 21),
    }));
    (i, out)
}

fn heard(text: &str, intent: Option<&str>, confidence: f32) -> Event {
    Event::Heard(Heard {
        text: text.into(),
        intent: intent.map(String::from),
        confidence,
        entities: BTreeMap::new(),
    })
}

fn said(cmds: &[Command]) -> Vec<String> {
    cmds.iter()
        .filter_map(|c| match c {
            Command::Say { text, .. } => Some(text.clone()),
            Command::Play { text, .. } => Some(text.clone()),
            _ => None,
        })
        .collect()
}

fn listens(cmds: &[Command]) -> Vec<&Listen> {
    cmds.iter()
        .filter_map(|c| match c {
            Command::Listen(l) => Some(l),
            _ => None,
        })
        .collect()
}

fn hangup(cmds: &[Command]) -> Option<&str> {
    cmds.iter().find_map(|c| match c {
        Command::Hangup { disposition } => Some(disposition.as_str()),
        _ => None,
    })
}

fn record(cmds: &[Command]) -> &CallRecord {
    match cmds.last() {
        Some(Command::Record(r)) => r,
        other => panic!("last command is not a record: {other:?}"),
    }
}

#[test]
fn intent_question_routes_by_intent() {
    let p = program(MENU);
    let (mut i, out) = start(&p, None);
    assert_eq!(said(&out), vec!["Orders or hours?"]);
    let l = listens(&out)[0];
    assert!(l.speech && l.dtmf);
    assert_eq!(l.intents, vec!["orders", "hours", "agent", "repeat"]);
    assert_eq!(l.max_digits, 1);
    assert_eq!(l.finish_key, None);
    assert!(l.hints.contains(&"order".to_string()));
    assert!(l
        .phrases
        .contains(&("orders".to_string(), "order".to_string())));
    let out = i.handle(heard("my order", Some("orders"), 0.9));
    assert_eq!(said(&out), vec!["Orders it is."]);
    assert_eq!(hangup(&out), Some("orders"));
    let r = record(&out);
    assert_eq!(r.ended_by, EndedBy::Bot);
    assert_eq!(r.path, vec!["greet", "menu", "orders"]);
    assert_eq!(r.intents, vec!["orders"]);
    assert!(i.is_finished());
}

#[test]
fn low_confidence_is_a_no_match() {
    let p = program(MENU);
    let (mut i, _) = start(&p, None);
    let out = i.handle(heard("hmm", Some("orders"), 0.3));
    assert_eq!(said(&out), vec!["Pardon?", "Orders or hours?"]);
    assert_eq!(listens(&out).len(), 1);
    // Second no-match: the handler's next step transfers.
    let out = i.handle(heard("blah", None, 0.0));
    assert!(matches!(&out[0], Command::Transfer { to, .. } if to == "agents"));
}

#[test]
fn no_input_escalates_by_count_and_leaves_at_the_end() {
    let p = program(MENU);
    let (mut i, _) = start(&p, None);
    let out = i.handle(Event::NoInput);
    assert_eq!(said(&out), vec!["Sorry?", "Orders or hours?"]);
    let out = i.handle(Event::NoInput);
    assert_eq!(said(&out), vec!["Still there?"]);
    assert_eq!(listens(&out).len(), 1, "a say-only step listens again");
    let out = i.handle(Event::NoInput);
    assert_eq!(said(&out), vec!["Bye."]);
    assert_eq!(hangup(&out), Some("no_answer"));
}

#[test]
fn max_retries_counts_no_input_and_no_match_together() {
    let p = program(&MENU.replace("max_retries: 3", "max_retries: 2"));
    let (mut i, _) = start(&p, None);
    i.handle(Event::NoInput);
    // Second failure overall reaches max_retries: the no-match handler's last step.
    let out = i.handle(heard("?", None, 0.0));
    assert!(matches!(&out[0], Command::Transfer { .. }), "{out:?}");
}

#[test]
fn global_intent_transfers_with_context_and_failure_is_handled() {
    let p = program(MENU);
    let (mut i, _) = start(&p, None);
    let out = i.handle(heard("a person please", Some("agent"), 0.8));
    let Command::Transfer { to, context } = &out[0] else {
        panic!("{out:?}")
    };
    assert_eq!(to, "agents");
    assert_eq!(context["why"], "agent");
    assert_eq!(context["text"], "a person please");
    let out = i.handle(Event::TransferFailed {
        reason: "busy".into(),
    });
    assert_eq!(said(&out), vec!["Everyone is busy."]);
    assert_eq!(hangup(&out), Some("busy"));
}

#[test]
fn completed_transfer_ends_with_a_transfer_record() {
    let p = program(MENU);
    let (mut i, _) = start(&p, None);
    i.handle(Event::Digits("0".into()));
    let out = i.handle(Event::Hangup);
    let r = record(&out);
    assert_eq!(r.ended_by, EndedBy::Transfer);
    assert_eq!(r.disposition, "transferred");
    assert_eq!(r.transferred_to.as_deref(), Some("agents"));
    assert!(hangup(&out).is_none(), "the engine already hung up");
}

#[test]
fn repeat_says_the_question_again_without_counting() {
    let p = program(MENU);
    let (mut i, _) = start(&p, None);
    let out = i.handle(heard("say again", Some("repeat"), 0.9));
    assert_eq!(said(&out), vec!["Orders or hours?"]);
    let out = i.handle(Event::Digits("*".into()));
    assert_eq!(said(&out), vec!["Orders or hours?"]);
    // Still the first no-input step: repeats did not count.
    let out = i.handle(Event::NoInput);
    assert_eq!(said(&out)[0], "Sorry?");
}

#[test]
fn keys_pick_intents() {
    let p = program(MENU);
    let (mut i, _) = start(&p, None);
    let out = i.handle(Event::Digits("2".into()));
    assert_eq!(said(&out), vec!["We open at nine."]);
    let (mut i, _) = start(&p, None);
    let out = i.handle(Event::Digits("9".into()));
    assert_eq!(said(&out), vec!["Pardon?", "Orders or hours?"]);
}

#[test]
fn global_handlers_can_be_turned_off() {
    let p = program(&MENU.replace(
        "      keys: { \"1\": orders, \"2\": hours }\n",
        "      keys: { \"1\": orders, \"2\": hours }\n      global: false\n",
    ));
    let (mut i, _) = start(&p, None);
    let out = i.handle(heard("agent", Some("agent"), 0.9));
    assert_eq!(said(&out), vec!["Pardon?", "Orders or hours?"]);
}

#[test]
fn conditions_branch_on_customer_data_and_language_follows_the_customer() {
    let p = program(MENU);
    let gold = Value::map([
        ("id", Value::from("C1")),
        ("tier", Value::from("gold")),
        ("first_name", Value::from("Li")),
        ("language", Value::from("zh")),
    ]);
    let (i, out) = start(&p, Some(gold));
    assert_eq!(said(&out), vec!["Li您好。", "订单还是营业时间？"]);
    assert_eq!(i.language(), Lang::Zh);
    match &out[0] {
        Command::Say {
            language, voice, ..
        } => {
            assert_eq!(*language, Lang::Zh);
            assert_eq!(voice.as_deref(), Some("cmn"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(listens(&out)[0].language, Lang::Zh);
}

const SLOTS: &str = r#"
name: slots
defaults:
  no_input: [{ goto: bye }]
  no_match:
    - say: Again please.
      reprompt: true
    - goto: bye
start: ask_order
states:
  ask_order:
    ask:
      prompt: Order number?
      slot: order_id
      type: order_id
      dtmf: { max_digits: 10 }
    next: ask_qty
  ask_qty:
    ask:
      prompt: How many?
      slot: qty
      type: number
      min: 1
      max: 5
    next: ask_colour
  ask_colour:
    ask:
      prompt: Red or blue?
      slot: colour
      type: enum
      values:
        red: [red, scarlet]
        blue: [blue, navy]
      keys: { "1": red, "2": blue }
    on:
      red: ask_day
      blue: ask_day
  ask_day:
    ask:
      prompt: Which day?
      slot: day
      type: date
      valid: value > today
    next: confirm
  confirm:
    ask:
      prompt: "{{ qty }} {{ colour }} for order {{ order_id | digits }} on {{ day }}. Right?"
      slot: ok
      type: yes_no
    on:
      yes: note
      no: bye
  note:
    ask:
      prompt: Any note?
      slot: note
      type: text
      max_len: 20
    next: done
  done:
    set:
      total: "{{ qty + 1 }}"
      label: "order-{{ order_id }}"
    say: "Done: {{ note }}"
    hangup: booked
  bye:
    hangup: gave_up
"#;

#[test]
fn slots_fill_from_speech_and_keys_and_are_checked() {
    let p = program(SLOTS);
    let (mut i, out) = start(&p, None);
    let l = listens(&out)[0];
    assert_eq!(l.slot, Some(SlotType::OrderId));
    assert_eq!(l.max_digits, 10);
    assert_eq!(l.finish_key, Some('#'));
    let out = i.handle(Event::Digits("100234#".into()));
    assert_eq!(said(&out), vec!["How many?"]);
    // Out of range → no-match.
    let out = i.handle(heard("nine", None, 0.0));
    assert_eq!(said(&out), vec!["Again please.", "How many?"]);
    let out = i.handle(heard("three please", None, 0.0));
    assert_eq!(said(&out), vec!["Red or blue?"]);
    let out = i.handle(Event::Digits("2".into()));
    assert_eq!(said(&out), vec!["Which day?"]);
    // Not after today → no-match; tomorrow is fine.
    let out = i.handle(heard("today", None, 0.0));
    assert_eq!(said(&out)[0], "Again please.");
    let out = i.handle(heard("tomorrow", None, 0.0));
    assert_eq!(
        said(&out),
        vec!["3 blue for order 1 0 0 2 3 4 on 2026-11-22. Right?"]
    );
    let out = i.handle(heard("yes that's right", None, 0.0));
    assert_eq!(said(&out), vec!["Any note?"]);
    let out = i.handle(heard("leave it at the door", None, 0.0));
    assert_eq!(said(&out), vec!["Done: leave it at the door"]);
    let r = record(&out);
    assert_eq!(r.disposition, "booked");
    assert_eq!(r.facts["order_id"], Value::from("100234"));
    assert_eq!(r.facts["qty"], Value::from(3.0));
    assert_eq!(r.facts["colour"], Value::from("blue"));
    assert_eq!(r.facts["day"], Value::from("2026-11-22"));
    assert_eq!(r.facts["ok"], Value::Bool(true));
    assert_eq!(
        r.facts["total"],
        Value::from(4.0),
        "single hole keeps the number"
    );
    assert_eq!(r.facts["label"], Value::from("order-100234"));
}

#[test]
fn entities_fill_slots_before_text() {
    let p = program(SLOTS);
    let (mut i, _) = start(&p, None);
    let mut entities = BTreeMap::new();
    entities.insert("order_id".to_string(), "555123".to_string());
    let out = i.handle(Event::Heard(Heard {
        text: "it's the one from last week".into(),
        intent: None,
        confidence: 0.0,
        entities,
    }));
    assert_eq!(said(&out), vec!["How many?"]);
    assert_eq!(i.vars()["order_id"], Value::from("555123"));
}

#[test]
fn order_ids_need_four_to_twelve_digits() {
    let p = program(SLOTS);
    let (mut i, _) = start(&p, None);
    let out = i.handle(Event::Digits("12#".into()));
    assert_eq!(said(&out)[0], "Again please.");
    let out = i.handle(Event::Digits("".into()));
    assert_eq!(said(&out), Vec::<String>::new());
    assert_eq!(hangup(&out), Some("gave_up"));
}

const ACTIONS: &str = r#"
name: actions
defaults:
  no_input: [{ goto: bye }]
  no_match: [{ goto: bye }]
start: find
states:
  find:
    lookup:
      name: order_status
      args: { order_id: "{{ caller }}" }
      into: order
      timeout: 2s
      filler: One moment.
    on:
      not_found: unknown
      error: broken
    next: tell
  tell:
    say: "Order {{ order.id }} is {{ order.status }}."
    next: complain
  unknown:
    say: Not found.
    next: stock
  stock:
    lookup:
      name: stock
      args: { product: kettle }
      into: stock
    on:
      error: broken
    next: complain
  broken:
    say: System down.
    next: complain
  complain:
    ticket:
      queue: complaints
      priority: { by: customer.tier, map: { gold: urgent }, default: low }
      subject: "Complaint from {{ customer.name | default(caller) }}"
      body: "Caller {{ caller }}"
      into: ticket_id
    on: { error: broken_ticket }
    next: logged
  logged:
    say: "Ticket {{ ticket_id }}."
    hangup: done
  broken_ticket:
    say: No ticket.
    hangup: failed
  bye:
    hangup: bye
"#;

fn lookup(cmds: &[Command]) -> &LookupRequest {
    cmds.iter()
        .find_map(|c| match c {
            Command::Lookup(l) => Some(l),
            _ => None,
        })
        .expect("a lookup")
}

#[test]
fn lookup_success_feeds_templates() {
    let p = program(ACTIONS);
    let (mut i, out) = start(&p, None);
    assert_eq!(said(&out), vec!["One moment."]);
    let l = lookup(&out);
    assert_eq!(l.name, "order_status");
    assert_eq!(l.args["order_id"], "+15550100");
    assert_eq!(l.timeout, Duration::from_secs(2));
    // Events that do not fit the wait are ignored.
    assert!(i.handle(Event::NoInput).is_empty());
    let out = i.handle(Event::LookupDone {
        result: Value::map([
            ("id", Value::from("77")),
            ("status", Value::from("shipped")),
        ]),
    });
    assert_eq!(said(&out), vec!["Order 77 is shipped."]);
    let Some(Command::CreateTicket(t)) = out.last() else {
        panic!("{out:?}")
    };
    assert_eq!(t.priority, Priority::Low);
    assert_eq!(t.subject, "Complaint from +15550100");
    assert_eq!(t.body, "Caller +15550100");
    let out = i.handle(Event::TicketCreated { id: "T-9".into() });
    assert_eq!(said(&out), vec!["Ticket T-9."]);
    let r = record(&out);
    assert_eq!(r.tickets, vec!["T-9"]);
    assert_eq!(r.facts["ticket_id"], Value::from("T-9"));
    assert!(
        !r.facts.contains_key("order"),
        "lookup results are not facts"
    );
}

#[test]
fn lookup_not_found_and_errors_take_their_branches() {
    let p = program(ACTIONS);
    let (mut i, _) = start(&p, None);
    let out = i.handle(Event::LookupDone {
        result: Value::List(vec![]),
    });
    assert_eq!(said(&out), vec!["Not found."]);
    assert_eq!(lookup(&out).name, "stock");
    // `stock` handles only `error`: not found falls back to it.
    let out = i.handle(Event::LookupDone {
        result: Value::Null,
    });
    assert_eq!(said(&out), vec!["System down."]);
    let out = i.handle(Event::TicketFailed {
        reason: "503".into(),
    });
    assert_eq!(said(&out), vec!["No ticket."]);
    assert_eq!(hangup(&out), Some("failed"));
}

#[test]
fn ticket_priority_follows_the_tier() {
    let p = program(ACTIONS);
    let gold = Value::map([("tier", Value::from("gold")), ("name", Value::from("Ann"))]);
    let (mut i, _) = start(&p, Some(gold));
    let out = i.handle(Event::LookupFailed {
        reason: "timeout".into(),
    });
    assert_eq!(said(&out), vec!["System down."]);
    let Some(Command::CreateTicket(t)) = out.last() else {
        panic!("{out:?}")
    };
    assert_eq!(t.priority, Priority::Urgent);
    assert_eq!(t.subject, "Complaint from Ann");
}

const FLOWS: &str = r#"
name: flows
defaults:
  no_input: [{ goto: operator }]
  no_match: [{ goto: operator }]
flows:
  confirm:
    uses: [thing]
    start: ask
    states:
      ask:
        ask:
          prompt: "Is {{ thing }} right?"
          slot: confirmed
          type: yes_no
        on:
          yes: ok
          no: nope
      ok:
        set: { checked: true }
        return: confirmed
      nope:
        return: rejected
start: a
states:
  a:
    set: { thing: "the kettle", language: zh }
    flow: confirm
    on:
      confirmed: good
      rejected: bad
  good:
    say: "Great, {{ checked }}."
    hangup: good
  bad:
    say: Oh no.
    hangup: bad
  operator:
    say: Operator.
    hangup: operator
"#;

#[test]
fn flows_return_outcomes_to_their_caller() {
    let p = program(FLOWS);
    let (mut i, out) = start(&p, None);
    assert_eq!(said(&out), vec!["Is the kettle right?"]);
    assert_eq!(i.state(), "confirm/ask");
    // `language: zh` is not among the script's languages: ignored.
    assert_eq!(i.language(), Lang::En);
    let out = i.handle(heard("yes", None, 0.0));
    assert_eq!(said(&out), vec!["Great, true."]);
    assert_eq!(
        record(&out).path,
        vec!["a", "confirm/ask", "confirm/ok", "good"]
    );
    let (mut i, _) = start(&p, None);
    let out = i.handle(heard("no", None, 0.0));
    assert_eq!(said(&out), vec!["Oh no."]);
}

#[test]
fn default_handlers_leave_flows_for_the_main_script() {
    let p = program(FLOWS);
    let (mut i, _) = start(&p, None);
    let out = i.handle(Event::NoInput);
    assert_eq!(said(&out), vec!["Operator."]);
    assert_eq!(i.state(), "operator");
}

#[test]
fn caller_hangup_records_the_call_and_later_events_are_ignored() {
    let p = program(MENU);
    let (mut i, _) = start(&p, None);
    i.handle(heard("uh", None, 0.0));
    let out = i.handle(Event::Hangup);
    let r = record(&out);
    assert_eq!(r.ended_by, EndedBy::Caller);
    assert_eq!(r.disposition, "caller_hangup");
    assert_eq!(r.caller, "+15550100");
    assert!(r
        .transcript
        .iter()
        .any(|t| t.speaker == Speaker::Caller && t.text == "uh"));
    assert!(i.handle(Event::Hangup).is_empty());
    assert!(i.handle(heard("hello", Some("orders"), 1.0)).is_empty());
}

#[test]
fn events_before_the_call_starts_are_ignored() {
    let p = program(MENU);
    let mut i = Interpreter::new(p);
    assert!(i.handle(Event::NoInput).is_empty());
    assert!(i.handle(Event::Digits("1".into())).is_empty());
    let out = i.handle(Event::CallStarted(CallStart::default()));
    assert_eq!(said(&out), vec!["Orders or hours?"]);
    assert!(i
        .handle(Event::CallStarted(CallStart::default()))
        .is_empty());
}

#[test]
fn barge_in_and_wav_prompts() {
    let p = program(
        r#"
name: w
defaults: { barge_in: false }
start: a
states:
  a:
    say:
      - { wav: legal.wav, en: "Legal notice" }
      - { en: "You may interrupt.", barge_in: true }
      - Plain.
    hangup: done
"#,
    );
    let (_, out) = start(&p, None);
    match &out[0] {
        Command::Play {
            file,
            text,
            barge_in,
            ..
        } => {
            assert_eq!(file.to_str(), Some("legal.wav"));
            assert_eq!(text, "Legal notice");
            assert!(!barge_in);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(&out[1], Command::Say { barge_in: true, .. }));
    assert!(matches!(
        &out[2],
        Command::Say {
            barge_in: false,
            ..
        }
    ));
}

#[test]
fn barge_in_rules_are_filled_in_from_the_question_then_the_script() {
    let p = program(
        r#"
name: r
defaults:
  barge_in: { min_speech: 400ms }
  no_input: [{ goto: done }]
  no_match: [{ goto: done }]
start: a
states:
  a:
    say:
      - Script rule.
      - { en: "Own rule.", barge_in: { min_speech: 150ms } }
    ask:
      prompt:
        - Question rule.
        - { en: "Plain true keeps the question's rule.", barge_in: true }
        - { en: "Locked.", barge_in: false }
      barge_in: { min_speech: 250ms }
      intents: [agent]
    on: { agent: done }
  done:
    hangup: done
intents:
  agent: [agent]
"#,
    );
    let (_, out) = start(&p, None);
    let rules: Vec<(bool, Option<u64>)> = out
        .iter()
        .filter_map(|c| match c {
            Command::Say {
                barge_in,
                min_speech,
                ..
            } => Some((*barge_in, min_speech.map(|d| d.as_millis() as u64))),
            _ => None,
        })
        .collect();
    assert_eq!(
        rules,
        vec![
            (true, Some(400)),
            (true, Some(150)),
            (true, Some(250)),
            (true, Some(250)),
            (false, Some(250)),
        ]
    );
}

#[test]
fn language_can_be_switched_by_set() {
    let p = program(
        r#"
name: l
languages: [en, zh]
defaults:
  no_input: [{ goto: bye }]
  no_match: [{ goto: bye }]
start: choose
states:
  choose:
    ask:
      prompt: { en: "For Chinese press 9.", zh: "中文请按9。" }
      slot: lang
      type: enum
      values: { zh: { en: [chinese], zh: [中文] }, en: { en: [english], zh: [英文] } }
      keys: { "9": zh }
    on: { zh: to_zh, en: bye }
  to_zh:
    set: { language: zh }
    say: { en: "English.", zh: "中文服务。" }
    hangup: switched
  bye:
    hangup: bye
"#,
    );
    let (mut i, _) = start(&p, None);
    let out = i.handle(Event::Digits("9".into()));
    assert_eq!(said(&out), vec!["中文服务。"]);
    assert_eq!(record(&out).language, Lang::Zh);
}

#[test]
fn a_loop_the_validator_cannot_see_ends_the_call() {
    // Each state waits (a flow call), so the validator allows it; the
    // flow returns at once, so the interpreter would spin.
    let p = program(
        r#"
name: spin
flows:
  f:
    start: r
    states:
      r:
        return: again
start: a
states:
  a:
    flow: f
    on: { again: a }
"#,
    );
    let (i, out) = start(&p, None);
    assert_eq!(hangup(&out), Some("error"));
    assert!(i.is_finished());
}

#[test]
fn a_confident_global_intent_wins_over_a_slot_answer() {
    let p = program(
        r#"
name: g
defaults:
  no_input: [{ goto: bye }]
  no_match: [{ goto: bye }]
global:
  intents: { stop: stop }
intents:
  stop: [stop calling me]
start: q
states:
  q:
    ask: { prompt: Interested?, slot: ok, type: yes_no }
    on: { yes: bye, no: bye }
  stop:
    hangup: do_not_call
  bye:
    hangup: bye
"#,
    );
    let (mut i, _) = start(&p, None);
    // "please" alone would read as a yes.
    let out = i.handle(heard("please stop calling me", Some("stop"), 0.9));
    assert_eq!(hangup(&out), Some("do_not_call"));
    // Below the threshold the words decide.
    let (mut i, _) = start(&p, None);
    let out = i.handle(heard("yes please", Some("stop"), 0.2));
    assert_eq!(hangup(&out), Some("bye"));
    assert_eq!(record(&out).facts["ok"], Value::Bool(true));
}

const SALES: &str = r#"
name: sales
languages: [en, zh]
defaults:
  max_retries: 3
  no_input:
    - say: { en: "Sorry?", zh: "什么？" }
      reprompt: true
    - goto: bye
  no_match:
    - say: { en: "Pardon?", zh: "请再说一遍。" }
      reprompt: true
    - goto: bye
intents:
  pricing: { en: [how much is it], zh: [多少钱] }
triggers:
  quote:
    words: { en: [price, contract], zh: [价格, 合同] }
    intents: [pricing]
    task: "Send {{ customer.name }} a quote within 24 h"
  manager:
    words: [manager]
    task: "A manager should call"
    body: "Asked in {{ language }}: {{ last.text }}"
start: ask
states:
  ask:
    ask:
      prompt: { en: "Interested?", zh: "感兴趣吗？" }
      slot: interested
      type: yes_no
    on: { yes: hot, no: cold }
  hot:
    set: { score: 80 }
    ask:
      prompt: { en: "Anything else?", zh: "还有别的吗？" }
      slot: note
      type: text
    next: bye
  cold:
    set: { score: "{{ customer.base_score }}" }
    hangup: cold
  bye:
    hangup: hot
"#;

fn follow_ups(cmds: &[Command]) -> Vec<&FollowUp> {
    cmds.iter()
        .filter_map(|c| match c {
            Command::FollowUp(f) => Some(f),
            _ => None,
        })
        .collect()
}

#[test]
fn a_trigger_word_asks_for_one_task_and_the_conversation_goes_on() {
    let p = program(SALES);
    let customer = Value::map([("name", Value::from("Ann Lee"))]);
    let (mut i, _) = start(&p, Some(customer));
    // "yes" answers the question; "price" fires the trigger on the way.
    let out = i.handle(heard("yes, what's the price?", None, 0.0));
    let f = follow_ups(&out);
    assert_eq!(f.len(), 1, "{out:?}");
    assert_eq!(f[0].trigger, "quote");
    assert_eq!(f[0].subject, "Send Ann Lee a quote within 24 h");
    assert_eq!(f[0].state, "ask");
    assert_eq!(f[0].body, "The caller said: \"yes, what's the price?\"");
    // The answer still moved the call on, as without the trigger.
    assert_eq!(i.state(), "hot");
    assert_eq!(said(&out), vec!["Anything else?"]);
    // The word again, and the trigger's intent: no second task.
    let out = i.handle(heard(
        "the contract price, how much is it",
        Some("pricing"),
        0.9,
    ));
    assert!(follow_ups(&out).is_empty(), "{out:?}");
    let r = record(&out);
    assert_eq!(r.follow_ups.len(), 1);
    assert_eq!(r.score, Some(80.0));
    assert_eq!(r.disposition, "hot");
}

#[test]
fn triggers_fire_on_intents_and_several_at_once() {
    let p = program(SALES);
    let (mut i, _) = start(&p, None);
    let out = i.handle(heard(
        "how much, can I talk to a manager",
        Some("pricing"),
        0.9,
    ));
    let f = follow_ups(&out);
    let names: Vec<&str> = f.iter().map(|f| f.trigger.as_str()).collect();
    assert_eq!(names, vec!["quote", "manager"]);
    assert_eq!(f[1].body, "Asked in en: how much, can I talk to a manager");
    // No customer: the template's hole is empty, the task still goes.
    assert_eq!(f[0].subject, "Send  a quote within 24 h");
    // Not understood as a yes/no: the question is asked again.
    assert_eq!(i.state(), "ask");
}

#[test]
fn an_unconfident_intent_does_not_fire_a_trigger() {
    let p = program(SALES);
    let (mut i, _) = start(&p, None);
    let out = i.handle(heard("hmm", Some("pricing"), 0.2));
    assert!(follow_ups(&out).is_empty());
}

#[test]
fn chinese_trigger_words_match_inside_the_sentence() {
    let p = program(SALES);
    let (mut i, _) = start(&p, Some(Value::map([("language", Value::from("zh"))])));
    assert_eq!(i.language(), Lang::Zh);
    let out = i.handle(heard("是的，价格是多少", None, 0.0));
    assert_eq!(follow_ups(&out).len(), 1);
}

#[test]
fn a_score_from_a_template_keeps_its_number_and_no_score_is_none() {
    let p = program(SALES);
    let customer = Value::map([("base_score", Value::Number(35.0))]);
    let (mut i, _) = start(&p, Some(customer));
    let out = i.handle(heard("no", None, 0.0));
    let r = record(&out);
    assert_eq!(r.score, Some(35.0));
    assert!(r.follow_ups.is_empty());

    let (mut i, _) = start(&p, None);
    let out = i.handle(Event::Hangup);
    assert_eq!(record(&out).score, None);
}
