//! The command functions the `voxbridge` binary wires up, run as the binary
//! would run them (output captured).

use std::io::Cursor;
use std::path::{Path, PathBuf};

use voxbridge_dialog::cli::{self, ChatOptions, CliError};
use voxbridge_dialog::date::Date;
use voxbridge_dialog::graph::GraphFormat;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn scripts() -> PathBuf {
    root().join("fixtures/scripts")
}

fn text(buf: Vec<u8>) -> String {
    String::from_utf8(buf).unwrap()
}

#[test]
fn check_passes_the_bundled_scripts() {
    let mut out = Vec::new();
    let ok = cli::check(&[scripts()], None, &mut out).unwrap();
    let out = text(out);
    assert!(ok, "{out}");
    assert!(out.contains("customer-service.yaml: ok ("), "{out}");
    assert!(out.contains("outbound-follow-up.yaml: ok ("), "{out}");
}

#[test]
fn check_reports_problems_with_locations() {
    let broken = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/broken/unknown-state.yaml");
    let mut out = Vec::new();
    let ok = cli::check(std::slice::from_ref(&broken), None, &mut out).unwrap();
    let out = text(out);
    assert!(!ok);
    assert!(
        out.contains(&format!(
            "{}:6:11: error: unknown state `menuu` (did you mean `menu`?)",
            broken.display()
        )),
        "{out}"
    );
    assert!(out.contains("2 errors, 0 warnings"), "{out}");
}

#[test]
fn check_against_intent_labels() {
    let dir = std::env::temp_dir().join(format!("vb-dialog-labels-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let labels = dir.join("labels.txt");
    std::fs::write(
        &labels,
        "order_status\nstock_check\ncomplaint\nagent\nrepeat\n",
    )
    .unwrap();
    let mut out = Vec::new();
    let ok = cli::check(
        &[scripts().join("customer-service.yaml")],
        Some(&labels),
        &mut out,
    )
    .unwrap();
    let out = text(out);
    assert!(!ok);
    assert!(
        out.contains("intent `goodbye` is not one of the intent model's labels"),
        "{out}"
    );
    let missing = cli::check(&[scripts()], Some(&dir.join("nope.txt")), &mut Vec::new());
    assert!(matches!(missing, Err(CliError::Io { .. })));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn graph_writes_dot_and_mermaid() {
    let script = scripts().join("customer-service.yaml");
    let mut out = Vec::new();
    cli::graph(&script, GraphFormat::Dot, &mut out).unwrap();
    let dot = text(out);
    assert!(dot.starts_with("digraph \"customer-service\" {"));
    assert!(
        dot.contains("greet -> gold_welcome [label=\"if customer.tier == \\\"gold\\\"\"];"),
        "{dot}"
    );
    let mut out = Vec::new();
    cli::graph(&script, GraphFormat::Mermaid, &mut out).unwrap();
    assert!(text(out).contains("menu -->|\"complaint\"| ask_complaint"));
    let mut out = Vec::new();
    match cli::graph(&script, GraphFormat::Svg, &mut out) {
        Ok(()) => assert!(text(out).contains("<svg")),
        Err(CliError::DotMissing) => assert!(!cli::dot_installed()),
        Err(e) => panic!("{e}"),
    }
}

fn chat(script: &str, customer: Option<&str>, lines: &str) -> String {
    let options = ChatOptions {
        customer: customer.map(String::from),
        data: Some(root().join("fixtures/dialog/demo-crm.yaml")),
        today: Date::new(2026, 11, 21),
        ..ChatOptions::default()
    };
    let mut input = Cursor::new(lines.as_bytes().to_vec());
    let mut out = Vec::new();
    cli::chat(
        &scripts().join(script),
        &options,
        None,
        &mut input,
        &mut out,
    )
    .unwrap();
    text(out)
}

#[test]
fn chat_runs_a_conversation() {
    let out = chat(
        "customer-service.yaml",
        Some("C1002"),
        "where is my order\n/state\nyes\nno thanks\n",
    );
    assert!(out.contains("as customer C1002 (Bob Stone)"), "{out}");
    assert!(
        out.contains("bot: Hello Bob, thank you for calling Acme Home."),
        "{out}"
    );
    assert!(
        out.contains("  [heard \"where is my order\" → order_status (1.00)]"),
        "{out}"
    );
    assert!(out.contains("  [state ask_latest, language en]"), "{out}");
    assert!(
        out.contains("  [lookup latest_order customer=C1002 → found "),
        "{out}"
    );
    assert!(
        out.contains("bot: Your order 1 0 0 2 3 5 is being prepared"),
        "{out}"
    );
    assert!(out.contains("  [hangup: resolved]"), "{out}");
    assert!(out.contains("  [record: disposition=resolved ended_by=Bot facts: about_latest=true, order_id=\"100235\"]"), "{out}");
}

#[test]
fn chat_takes_keys_silence_and_forced_intents() {
    let out = chat(
        "customer-service.yaml",
        None,
        "/silence\n#2\n#1\n/intent agent\n/quit\n",
    );
    assert!(out.contains("bot: Sorry, I didn't hear anything."), "{out}");
    assert!(
        out.contains("[lookup stock product=kettle → found "),
        "{out}"
    );
    assert!(
        out.contains("bot: Good news: we have 12 of the electric kettle in stock."),
        "{out}"
    );
    assert!(out.contains("[transfer to agents "), "{out}");
    assert!(out.contains("→ connected; the call left the bot]"), "{out}");
}

#[test]
fn chat_in_chinese_with_a_chinese_customer() {
    let out = chat("customer-service.yaml", Some("C1003"), "查库存\n搅拌机\n");
    assert!(out.contains("bot: 王女士您好，感谢致电Acme家居。"), "{out}");
    assert!(out.contains("bot: 好消息：搅拌机目前有3件现货。"), "{out}");
}

#[test]
fn chat_with_an_unknown_customer_is_an_error() {
    let options = ChatOptions {
        customer: Some("C9999".into()),
        data: Some(root().join("fixtures/dialog/demo-crm.yaml")),
        ..ChatOptions::default()
    };
    let r = cli::chat(
        &scripts().join("customer-service.yaml"),
        &options,
        None,
        &mut Cursor::new(Vec::new()),
        &mut Vec::new(),
    );
    assert!(matches!(r, Err(CliError::UnknownCustomer(c)) if c == "C9999"));
}

#[test]
fn test_dialog_runs_the_bundled_tests() {
    let mut out = Vec::new();
    let summary = cli::test_dialog(&[scripts().join("tests")], &mut out).unwrap();
    let out = text(out);
    assert_eq!(summary.failed, 0, "{out}");
    assert!(summary.passed >= 50, "{out}");
    assert!(
        out.ends_with(&format!("{} passed, 0 failed\n", summary.passed)),
        "{out}"
    );
}

#[test]
fn test_dialog_reports_failures() {
    let dir = std::env::temp_dir().join(format!("vb-dialog-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = scripts().join("customer-service.yaml");
    std::fs::write(
        dir.join("t.yaml"),
        format!(
            "script: {}\ntests:\n  - name: wrong greeting\n    steps:\n      - bot: Good morning\n",
            script.display()
        ),
    )
    .unwrap();
    let mut out = Vec::new();
    let summary = cli::test_dialog(std::slice::from_ref(&dir), &mut out).unwrap();
    let out = text(out);
    assert_eq!(
        summary,
        cli::TestSummary {
            passed: 0,
            failed: 1
        }
    );
    assert!(out.contains("FAIL"), "{out}");
    assert!(out.contains("expected the bot to say \"Good morning\" after the call started; it said \"Thank you for calling Acme Home.\""), "{out}");
    std::fs::remove_dir_all(&dir).ok();
    assert!(matches!(
        cli::test_dialog(
            &[PathBuf::from("/nonexistent-dir-for-test")],
            &mut Vec::new()
        ),
        Err(CliError::Io { .. })
    ));
    let empty = std::env::temp_dir().join(format!("vb-dialog-empty-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    assert!(matches!(
        cli::test_dialog(std::slice::from_ref(&empty), &mut Vec::new()),
        Err(CliError::NoTests(_))
    ));
    std::fs::remove_dir_all(&empty).ok();
}

/// A stand-in for the embedded CRM: one customer, every order "delivered".
struct FakeCrm;

impl voxbridge_dialog::sim::Backend for FakeCrm {
    fn customer(&self, id: &str) -> Option<voxbridge_dialog::value::Value> {
        use voxbridge_dialog::value::Value;
        (id == "X1").then(|| {
            Value::map([
                ("id", Value::from("X1")),
                ("name", Value::from("Zoe Park")),
                ("first_name", Value::from("Zoe")),
                ("tier", Value::from("bronze")),
            ])
        })
    }
    fn lookup(
        &mut self,
        name: &str,
        args: &std::collections::BTreeMap<String, String>,
    ) -> Result<voxbridge_dialog::value::Value, String> {
        use voxbridge_dialog::value::Value;
        match name {
            "order_status" => Ok(Value::map([
                ("id", Value::from(args["order_id"].as_str())),
                ("status", Value::from("delivered")),
                ("delivered", Value::from("2026-11-20")),
            ])),
            _ => Err("not here".into()),
        }
    }
}

#[test]
fn chat_with_another_backend() {
    let options = ChatOptions {
        customer: Some("X1".into()),
        today: Date::new(2026, 11, 21),
        ..ChatOptions::default()
    };
    let mut input = Cursor::new(b"#1\nno\n#4455#\n".to_vec());
    let mut out = Vec::new();
    cli::chat_with(
        &scripts().join("customer-service.yaml"),
        &options,
        None,
        Some(Box::new(FakeCrm)),
        &mut input,
        &mut out,
    )
    .unwrap();
    let out = text(out);
    assert!(out.contains("as customer X1 (Zoe Park)"), "{out}");
    assert!(out.contains("lookups from the configured CRM"), "{out}");
    assert!(
        out.contains("bot: Your order 4 4 5 5 was delivered on 2026-11-20."),
        "{out}"
    );
}
