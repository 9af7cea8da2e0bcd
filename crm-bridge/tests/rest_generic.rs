//! The generic REST connector, configured in YAML, against a site's own CRM
//! (tests/common/site_crm.rs): OAuth2 client credentials with expiry and
//! refresh, lookups with JSON paths and value maps, and writes made
//! idempotent by header, by conflict status and by lookup.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::site_crm::{config_yaml, Server};
use voxbridge_crm::config::ConfigError;
use voxbridge_crm::model::{
    CallLog, IntentHit, NewTask, NewTicket, Priority, ProductQuery, Speaker, Turn,
};
use voxbridge_crm::{Bridge, CrmConfig, CrmError, LookupFailed};

fn bridge(server: &Server, env: &str) -> Bridge {
    std::env::set_var(env, common::site_crm::CLIENT_SECRET);
    let cfg =
        CrmConfig::from_yaml(&config_yaml(&server.base_url(), env), "test.yaml").expect("config");
    cfg.build_bridge().expect("bridge")
}

fn call_log() -> CallLog {
    CallLog {
        call_id: "c-1@pbx".into(),
        caller: Some("+8613800138000".into()),
        customer_id: Some("42".into()),
        started_at_ms: 1_795_253_400_250,
        ended_at_ms: 1_795_253_461_900,
        transcript: vec![
            Turn {
                speaker: Speaker::Bot,
                text: "How can I help?".into(),
                at_ms: 0,
            },
            Turn {
                speaker: Speaker::Caller,
                text: "Where is my kettle?".into(),
                at_ms: 2_000,
            },
        ],
        intents: vec![
            IntentHit {
                name: "order_status".into(),
                confidence: 0.91,
            },
            IntentHit {
                name: "complaint".into(),
                confidence: 0.2,
            },
        ],
        intent_level: Some("S".into()),
        slots: BTreeMap::from([("order_id".to_string(), "SO-1".to_string())]),
        disposition: "resolved".into(),
        ..CallLog::default()
    }
}

#[tokio::test]
async fn lookups_map_fields_and_value_codes() {
    let server = Server::start().await;
    let b = bridge(&server, "VB_SITE_SECRET_LOOKUPS");

    let li = b
        .lookup_caller("013800138000")
        .await
        .expect("lookup")
        .expect("found");
    assert_eq!(li.id, "42");
    assert_eq!(li.system, "site");
    assert_eq!(li.name, "Li Wei");
    assert_eq!(li.tier.as_deref(), Some("gold"));
    assert_eq!(li.language.as_deref(), Some("zh-CN"));
    assert_eq!(
        li.fields.get("account_manager").map(String::as_str),
        Some("Ann Lee")
    );
    let alice = b
        .lookup_caller("+1 (555) 123-4567")
        .await
        .expect("lookup")
        .expect("found");
    assert_eq!(
        alice.tier.as_deref(),
        Some("standard"),
        "unknown code takes the * default"
    );
    assert!(alice.fields.is_empty(), "null owner is no field");
    assert_eq!(b.lookup_caller("13900000000").await.expect("lookup"), None);

    assert_eq!(
        b.customer("43")
            .await
            .expect("get")
            .map(|c| c.name)
            .as_deref(),
        Some("Alice Johnson")
    );
    assert_eq!(b.customer("999").await.expect("get"), None, "404 is none");

    let orders = b.orders("42").await.expect("orders");
    assert_eq!(orders.len(), 2);
    assert_eq!(orders[0].status, "shipped");
    assert_eq!(orders[0].total.as_deref(), Some("1299.0"));
    assert_eq!(
        orders[1].lines[0].quantity, 2.0,
        "numeric text read as a number"
    );
    let one = b
        .order_status("SO-1")
        .await
        .expect("status")
        .expect("found");
    assert_eq!(
        (one.status.as_str(), one.placed_at.as_deref()),
        ("delivered", Some("2026-11-02"))
    );
    assert_eq!(b.order_status("SO-404").await.expect("status"), None);

    let kettles = b
        .stock(&ProductQuery::Name("red kettel".into()))
        .await
        .expect("stock");
    assert_eq!(kettles[0].sku, "KET-RED-17");
    assert_eq!(kettles[0].forecast, Some(25.0));
    let sku = b
        .stock(&ProductQuery::Sku("KET-BLU-17".into()))
        .await
        .expect("stock");
    assert_eq!(
        (sku.len(), sku[0].quantity, sku[0].forecast),
        (1, 42.0, Some(40.0))
    );

    assert_eq!(
        server.site.tokens_issued.load(Ordering::SeqCst),
        1,
        "one token for all requests"
    );
}

#[tokio::test]
async fn oauth2_tokens_are_refreshed_on_expiry_and_on_401() {
    let server = Server::start().await;
    server.site.token_lifetime_secs.store(2, Ordering::SeqCst);
    let b = bridge(&server, "VB_SITE_SECRET_REFRESH");
    b.customer("42").await.expect("first");
    b.customer("42").await.expect("cached token");
    assert_eq!(server.site.tokens_issued.load(Ordering::SeqCst), 1);
    // Refreshed before expiry (a 2 s token is refreshed after 1 s).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    b.customer("42").await.expect("after expiry");
    assert_eq!(server.site.tokens_issued.load(Ordering::SeqCst), 2);

    server.site.revoke_tokens();
    b.customer("42").await.expect("401 → new token → success");
    assert_eq!(server.site.tokens_issued.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn wrong_client_secret_is_a_clear_auth_error() {
    let server = Server::start().await;
    std::env::set_var("VB_SITE_SECRET_WRONG", "not-the-secret");
    let cfg = CrmConfig::from_yaml(
        &config_yaml(&server.base_url(), "VB_SITE_SECRET_WRONG"),
        "t.yaml",
    )
    .expect("config");
    let b = cfg.build_bridge().expect("bridge");
    let err = b.lookup_caller("13800138000").await.expect_err("auth");
    let LookupFailed::Crm(CrmError::Auth { message, .. }) = &err else {
        panic!("unexpected {err:?}");
    };
    assert!(message.contains("invalid_client"), "{message}");
    assert!(!err.to_string().contains("not-the-secret"));
}

#[tokio::test]
async fn writes_map_the_call_record_and_are_idempotent_three_ways() {
    let server = Server::start().await;
    let b = bridge(&server, "VB_SITE_SECRET_WRITES");

    // Idempotency-Key header.
    let first = b.log_call(&call_log(), "vb-key-1").await.expect("log");
    let again = b
        .log_call(&call_log(), "vb-key-1")
        .await
        .expect("log again");
    assert_eq!(first.id, "CALL-1");
    assert_eq!(again.id, "CALL-1");
    assert_eq!(server.site.calls_created(), 1);
    let body = server.site.data.lock().expect("lock").calls["vb-key-1"]
        .1
        .clone();
    assert_eq!(body["duration"], 61, "a number stays a number");
    assert_eq!(body["intent"], "high intent");
    assert_eq!(body["outcome"], "RESOLVED");
    assert_eq!(body["topic"], "order_status");
    assert_eq!(body["started"], "2026-11-21T09:30:00.250Z");
    assert_eq!(
        body["transcript"],
        "Bot: How can I help?\nCaller: Where is my kettle?\n"
    );
    assert_eq!(body["slots"]["order_id"], "SO-1");
    assert_eq!(body["source"], "voxbridge");
    let mut anonymous = call_log();
    anonymous.customer_id = None;
    b.log_call(&anonymous, "vb-key-2").await.expect("log");
    let body = server.site.data.lock().expect("lock").calls["vb-key-2"]
        .1
        .clone();
    assert!(
        body.get("customer").is_none(),
        "unknown customer is left out, not null"
    );

    // 409 on a duplicate external id.
    let ticket = NewTicket {
        subject: "Kettle leaks".into(),
        body: "Caller reports a leak.".into(),
        priority: Priority::High,
        customer_id: Some("42".into()),
        ..NewTicket::default()
    };
    let t1 = b.create_ticket(&ticket, "vb-t-1").await.expect("ticket");
    let t2 = b
        .create_ticket(&ticket, "vb-t-1")
        .await
        .expect("ticket again");
    assert_eq!((t1.id.as_str(), t1.existing), ("T-100", false));
    assert!(t2.existing);
    assert_eq!(
        server.site.data.lock().expect("lock").tickets["vb-t-1"].1["priority"],
        "high"
    );

    // Lookup by key first.
    let task = NewTask {
        subject: "Call back".into(),
        due: Some("2026-11-23".into()),
        ..NewTask::default()
    };
    let k1 = b.create_task(&task, "vb-k-1").await.expect("task");
    let k2 = b.create_task(&task, "vb-k-1").await.expect("task again");
    assert_eq!(k1.id, k2.id);
    assert!(k2.existing);
    assert_eq!(server.site.task_posts.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_rejected_write_is_reported_with_the_servers_reason() {
    let server = Server::start().await;
    std::env::set_var("VB_SITE_SECRET_REJECT", common::site_crm::CLIENT_SECRET);
    // A site mapping that sends the duration as text: the CRM says 422.
    let yaml = config_yaml(&server.base_url(), "VB_SITE_SECRET_REJECT").replace(
        "duration: \"{{call.duration_secs}}\"",
        "duration: \"{{call.duration_secs}} s\"",
    );
    let b = CrmConfig::from_yaml(&yaml, "t.yaml")
        .expect("config")
        .build_bridge()
        .expect("bridge");
    let err = b.log_call(&call_log(), "vb-key-9").await.expect_err("422");
    match err {
        CrmError::Rejected {
            status, snippet, ..
        } => {
            assert_eq!(status, 422);
            assert!(snippet.contains("duration must be a number"), "{snippet}");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn configuration_errors_are_located_and_explained() {
    let base = "http://127.0.0.1:9";
    let yaml = config_yaml(base, "VB_SITE_SECRET_CFG");

    let typo = yaml.replace("    idempotency_header:", "    idempotency_headr:");
    match CrmConfig::from_yaml(&typo, "crm.yaml") {
        Err(ConfigError::Syntax { line, message, .. }) => {
            assert!(line > 0);
            assert!(message.contains("idempotency_headr"), "{message}");
        }
        other => panic!("unexpected {other:?}"),
    }

    let literal = yaml.replace(
        "client_secret: { env: VB_SITE_SECRET_CFG }",
        "client_secret: hunter2",
    );
    let err = CrmConfig::from_yaml(&literal, "crm.yaml").expect_err("literal secret");
    assert!(
        err.to_string()
            .contains("cannot be written in the configuration"),
        "{err}"
    );

    std::env::remove_var("VB_SITE_SECRET_CFG");
    let cfg = CrmConfig::from_yaml(&yaml, "crm.yaml").expect("parses");
    let err = cfg.build_bridge().err().expect("missing env");
    assert!(
        err.to_string().contains("VB_SITE_SECRET_CFG is not set"),
        "{err}"
    );

    std::env::set_var("VB_SITE_SECRET_CFG2", "x");
    let yaml2 = config_yaml(base, "VB_SITE_SECRET_CFG2");
    let bad_root = yaml2.replace("{{task.subject}}", "{{ticket.subject}}");
    let err = CrmConfig::from_yaml(&bad_root, "crm.yaml")
        .expect("parses")
        .build_bridge()
        .err()
        .expect("bad root");
    assert!(err.to_string().contains("operations.create_task"), "{err}");
    assert!(
        err.to_string().contains("unknown value `ticket.subject`"),
        "{err}"
    );

    let bad_map = yaml2.replace("map:intent_level", "map:intent_lvl");
    let err = CrmConfig::from_yaml(&bad_map, "crm.yaml")
        .expect("parses")
        .build_bridge()
        .err()
        .expect("bad map");
    assert!(
        err.to_string().contains("no value map named `intent_lvl`"),
        "{err}"
    );

    let bad_path = yaml2.replace("id: $.number", "id: $.number[");
    let err = CrmConfig::from_yaml(&bad_path, "crm.yaml").expect_err("bad path");
    assert!(err.to_string().contains("JSON path"), "{err}");

    let bad_op = yaml2.replace("      create_task:", "      create_tsk:");
    assert!(CrmConfig::from_yaml(&bad_op, "crm.yaml").is_err());

    let bad_route = format!("{yaml2}routes:\n  stock: erp\n");
    let err = CrmConfig::from_yaml(&bad_route, "crm.yaml")
        .expect("parses")
        .build_bridge()
        .err()
        .expect("route");
    assert!(err.to_string().contains("routes.stock"), "{err}");
}
