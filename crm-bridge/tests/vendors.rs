//! The SaaS connectors end to end against stand-ins that follow each
//! vendor's documented requests and replies (the stand-ins in
//! tests/common/ cite the documentation pages they follow): Salesforce,
//! HubSpot, Zendesk and Odoo. Each: caller lookup from the formats people
//! type, customer by id, ticket creation and call logging, and a second
//! delivery of every write that must not create a second record.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use voxbridge_crm::model::{
    CallLog, IntentHit, NewTask, NewTicket, Priority, ProductQuery, Speaker, Turn,
};
use voxbridge_crm::{Bridge, CrmConfig, CrmError};

fn bridge(yaml: &str) -> Bridge {
    CrmConfig::from_yaml(yaml, "vendor.yaml")
        .expect("config")
        .build_bridge()
        .expect("bridge")
}

fn call(customer: Option<&str>) -> CallLog {
    CallLog {
        call_id: "a84b4c76e66710@pc33.example.com".into(),
        caller: Some("+8613800138000".into()),
        callee: Some("+861080001000".into()),
        customer_id: customer.map(str::to_string),
        started_at_ms: 1_795_253_400_000,
        answered_at_ms: Some(1_795_253_401_000),
        ended_at_ms: 1_795_253_475_500,
        transcript: vec![
            Turn {
                speaker: Speaker::Bot,
                text: "您好, how can I help?".into(),
                at_ms: 0,
            },
            Turn {
                speaker: Speaker::Caller,
                text: "My kettle <leaks> & drips".into(),
                at_ms: 1500,
            },
        ],
        intents: vec![IntentHit {
            name: "complaint".into(),
            confidence: 0.88,
        }],
        intent_level: Some("S".into()),
        slots: BTreeMap::from([("product".to_string(), "kettle".to_string())]),
        disposition: "ticket_created".into(),
        recording: Some("rec/2026/11/21/a84b4c76.wav".into()),
        transfer_target: None,
    }
}

/// Free text (subjects, bodies, notes) never carries the caller's full
/// number; only the fields meant for it do.
fn assert_no_raw_number(what: &str, text: &serde_json::Value) {
    let text = text.as_str().unwrap_or_default();
    assert!(
        !text.contains("13800138000"),
        "{what} carries the caller's full number: {text}"
    );
}

fn ticket(customer: Option<&str>) -> NewTicket {
    NewTicket {
        queue: None,
        priority: Priority::High,
        subject: "Kettle leaks".into(),
        body: "Caller reports the blue kettle leaks.".into(),
        customer_id: customer.map(str::to_string),
        phone: Some("+8613800138000".into()),
        email: None,
        call_id: Some("a84b4c76e66710@pc33.example.com".into()),
    }
}

fn task(customer: Option<&str>) -> NewTask {
    NewTask {
        subject: "Call back about the kettle".into(),
        body: "Promised a call back within a day.".into(),
        due: Some("2026-11-22".into()),
        customer_id: customer.map(str::to_string),
        phone: Some("+8613800138000".into()),
        assignee: None,
        call_id: Some("a84b4c76e66710@pc33.example.com".into()),
    }
}

#[tokio::test]
async fn salesforce_search_task_and_case() {
    use common::salesforce as sf;
    let org = Arc::new(sf::Org::default());
    let server = common::serve(sf::router(Arc::clone(&org))).await;
    std::env::set_var("VB_SF_CLIENT_SECRET", sf::CLIENT_SECRET);
    let b = bridge(&format!(
        r#"
default_country: CN
systems:
  sf:
    kind: salesforce
    instance_url: {url}
    auth:
      type: oauth2_client_credentials
      token_url: {url}/services/oauth2/token
      client_id: {id}
      client_secret: {{ env: VB_SF_CLIENT_SECRET }}
      client_auth: body
    tier_field: Customer_Tier__c
    tier_map: tier
    value_maps:
      tier: {{ Platinum: gold, Gold: gold, Silver: silver, "*": standard }}
"#,
        url = server.url(),
        id = sf::CLIENT_ID
    ));

    let li = b
        .lookup_caller("013800138000")
        .await
        .expect("lookup")
        .expect("found");
    assert_eq!(li.id, "0035g00000AbCdEAA1");
    assert_eq!(li.name, "Li Wei");
    assert_eq!(li.tier.as_deref(), Some("gold"));
    // The SOSL search also returns +852 1380 0138 0009, which is not the
    // caller: only the normalised match counts.
    assert_eq!(
        b.lookup_caller("+852 6123 4567").await.expect("lookup"),
        None
    );
    let alice = b
        .lookup_caller("+1 (555) 123-4567")
        .await
        .expect("lookup")
        .expect("mobile");
    assert_eq!(alice.phone.as_deref(), Some("(555) 123-4567"));
    assert_eq!(alice.tier, None);
    assert_eq!(
        b.customer("0035g00000AbCdGAA1")
            .await
            .expect("get")
            .map(|c| c.name)
            .as_deref(),
        Some("Alice Johnson")
    );
    assert_eq!(b.customer("003000000000000AAA").await.expect("get"), None);

    let first = b
        .log_call(&call(Some(&li.id)), "vb-sf-call-1")
        .await
        .expect("task");
    let again = b
        .log_call(&call(Some(&li.id)), "vb-sf-call-1")
        .await
        .expect("task again");
    assert_eq!(first.id, again.id);
    assert!(!first.existing && again.existing);
    let case = b
        .create_ticket(&ticket(Some(&li.id)), "vb-sf-case-1")
        .await
        .expect("case");
    assert!(case.id.starts_with("500"));
    let follow_up = b
        .create_task(&task(Some(&li.id)), "vb-sf-task-1")
        .await
        .expect("task");
    assert_ne!(follow_up.id, first.id);

    {
        let records = org.records.lock().expect("lock");
        assert_eq!(records.len(), 3, "three records for four upserts");
        let (_, log) = &records[&("Task".to_string(), "vb-sf-call-1".to_string())];
        assert_eq!(log["TaskSubtype"], "Call");
        assert_eq!(log["CallDurationInSeconds"], 75);
        assert_eq!(log["WhoId"], "0035g00000AbCdEAA1");
        assert_eq!(log["ActivityDate"], "2026-11-21");
        assert!(log["Description"]
            .as_str()
            .is_some_and(|d| d.contains("Caller: My kettle <leaks> & drips")));
        assert!(
            log["Subject"]
                .as_str()
                .is_some_and(|s| !s.contains("13800138000")),
            "subject masks the number"
        );
        assert_no_raw_number("Task.Description", &log["Description"]);
        let (_, case) = &records[&("Case".to_string(), "vb-sf-case-1".to_string())];
        assert_no_raw_number("Case.Subject", &case["Subject"]);
        assert_no_raw_number("Case.Description", &case["Description"]);
        assert_eq!(case["SuppliedPhone"], "+8613800138000", "the field for it");
        assert_eq!(
            (case["Priority"].as_str(), case["Origin"].as_str()),
            (Some("High"), Some("Phone"))
        );
    }

    // A revoked session: the connector fetches a new token and carries on.
    org.tokens.lock().expect("lock").clear();
    assert!(b
        .customer("0035g00000AbCdEAA1")
        .await
        .expect("after 401")
        .is_some());
}

#[tokio::test]
async fn salesforce_upsert_to_a_missing_external_id_field_is_rejected() {
    use common::salesforce as sf;
    let org = Arc::new(sf::Org::default());
    let server = common::serve(sf::router(Arc::clone(&org))).await;
    std::env::set_var("VB_SF_CLIENT_SECRET2", sf::CLIENT_SECRET);
    let b = bridge(&format!(
        r#"
systems:
  sf:
    kind: salesforce
    instance_url: {url}
    external_id_field: Not_An_External_Id__c
    auth:
      type: oauth2_client_credentials
      token_url: {url}/services/oauth2/token
      client_id: {id}
      client_secret: {{ env: VB_SF_CLIENT_SECRET2 }}
      client_auth: body
"#,
        url = server.url(),
        id = sf::CLIENT_ID
    ));
    match b.log_call(&call(None), "vb-x").await {
        Err(CrmError::Rejected {
            status: 404,
            snippet,
            ..
        }) => assert!(snippet.contains("NOT_FOUND"), "{snippet}"),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn hubspot_contacts_calls_tickets_tasks() {
    use common::hubspot as hs;
    let portal = Arc::new(hs::Portal::seeded());
    let server = common::serve(hs::router(Arc::clone(&portal))).await;
    std::env::set_var("VB_HUBSPOT_TOKEN", hs::TOKEN);
    let b = bridge(&format!(
        r#"
default_country: US
systems:
  hubspot:
    kind: hubspot
    base_url: {url}
    auth: {{ type: bearer, token: {{ env: VB_HUBSPOT_TOKEN }} }}
    tier_property: customer_tier
    tier_map: tier
    value_maps:
      tier: {{ VIP: gold, "*": standard }}
      intent_level: {{ S: high intent, A: medium intent, "*": low intent }}
    fields:
      call_log:
        voxbridge_intent_level: "{{{{call.intent_level | map:intent_level}}}}"
"#,
        url = server.url()
    ));

    let li = b
        .lookup_caller("+86 138 0013 8000")
        .await
        .expect("lookup")
        .expect("found");
    assert_eq!((li.id.as_str(), li.name.as_str()), ("501", "Li Wei"));
    assert_eq!(li.tier.as_deref(), Some("gold"));
    assert_eq!(li.language.as_deref(), Some("zh-cn"));
    let alice = b
        .lookup_caller("(555) 123-4567")
        .await
        .expect("lookup")
        .expect("mobilephone");
    assert_eq!(alice.id, "502");
    assert_eq!(alice.tier, None);
    assert_eq!(
        b.lookup_caller("(555) 000-0000").await.expect("lookup"),
        None
    );
    assert_eq!(
        b.customer("502").await.expect("get").map(|c| c.email),
        Some(Some("alice@example.com".into()))
    );
    assert_eq!(b.customer("999").await.expect("get"), None);

    let c1 = b
        .log_call(&call(Some("501")), "vb-hs-call-1")
        .await
        .expect("call");
    let c2 = b
        .log_call(&call(Some("501")), "vb-hs-call-1")
        .await
        .expect("call again");
    assert_eq!(c1.id, c2.id);
    assert!(c2.existing);
    let t = b
        .create_ticket(&ticket(Some("501")), "vb-hs-ticket-1")
        .await
        .expect("ticket");
    assert!(
        b.create_ticket(&ticket(Some("501")), "vb-hs-ticket-1")
            .await
            .expect("again")
            .existing
    );
    b.create_task(&task(Some("501")), "vb-hs-task-1")
        .await
        .expect("task");
    assert_eq!(
        (
            portal.count("calls"),
            portal.count("tickets"),
            portal.count("tasks")
        ),
        (1, 1, 1)
    );
    assert_eq!(portal.creates.load(Ordering::SeqCst), 3);

    let objects = portal.objects.lock().expect("lock");
    let props = &objects["calls"][&c1.id];
    assert_eq!(props["hs_call_duration"], "75500", "milliseconds");
    assert_eq!(props["hs_call_direction"], "INBOUND");
    assert_eq!(props["hs_timestamp"], "2026-11-21T09:30:00.000Z");
    assert_eq!(
        props["voxbridge_intent_level"], "high intent",
        "site field mapping"
    );
    assert_eq!(props[hs::KEY_PROPERTY], "vb-hs-call-1");
    assert_no_raw_number("hs_call_body", &props["hs_call_body"]);
    assert_no_raw_number("hs_call_title", &props["hs_call_title"]);
    assert_eq!(
        props["hs_call_from_number"], "+8613800138000",
        "the field for it"
    );
    assert_eq!(objects["tickets"][&t.id]["hs_ticket_priority"], "HIGH");
    drop(objects);
    let assoc = portal.associations.lock().expect("lock");
    assert!(assoc.contains(&(c1.id.clone(), "501".into(), 194)));
    assert!(assoc.contains(&(t.id.clone(), "501".into(), 16)));
}

#[tokio::test]
async fn hubspot_wrong_token_is_an_auth_error() {
    use common::hubspot as hs;
    let server = common::serve(hs::router(Arc::new(hs::Portal::seeded()))).await;
    std::env::set_var("VB_HUBSPOT_BAD", "pat-na1-wrong");
    let b = bridge(&format!(
        "systems:\n  hs:\n    kind: hubspot\n    base_url: {}\n    auth: {{ type: bearer, token: {{ env: VB_HUBSPOT_BAD }} }}\n",
        server.url()
    ));
    let err = b.customer("501").await.expect_err("401");
    assert!(matches!(err, CrmError::Auth { .. }), "{err:?}");
    assert!(
        err.to_string().contains("INVALID_AUTHENTICATION")
            || err.to_string().contains("Authentication"),
        "{err}"
    );
}

#[tokio::test]
async fn zendesk_users_and_tickets() {
    use common::zendesk as zd;
    let account = Arc::new(zd::Account::default());
    let server = common::serve(zd::router(Arc::clone(&account))).await;
    std::env::set_var("VB_ZENDESK_TOKEN", zd::API_TOKEN);
    let b = bridge(&format!(
        r#"
default_country: GB
systems:
  zendesk:
    kind: zendesk
    base_url: {url}
    auth:
      type: basic
      username: "{agent}/token"
      password: {{ env: VB_ZENDESK_TOKEN }}
    tier_user_field: support_plan
    tier_map: plan
    value_maps:
      plan: {{ premium: gold, basic: standard }}
"#,
        url = server.url(),
        agent = zd::AGENT
    ));

    // The users search is loose and also returns +86 139 0000 8000.
    let li = b
        .lookup_caller("+86 138 0013 8000")
        .await
        .expect("lookup")
        .expect("found");
    assert_eq!(
        (li.id.as_str(), li.tier.as_deref()),
        ("35436", Some("gold"))
    );
    let emma = b
        .lookup_caller("020 7946 0018")
        .await
        .expect("lookup")
        .expect("UK national");
    assert_eq!(emma.name, "Emma Brown");
    assert_eq!(
        b.lookup_caller("+86 139 1111 2222").await.expect("lookup"),
        None
    );
    assert_eq!(
        b.customer("35438").await.expect("get").map(|c| c.language),
        Some(Some("en-gb".into()))
    );
    assert_eq!(b.customer("1").await.expect("get"), None);

    let t1 = b
        .create_ticket(&ticket(Some("35436")), "vb-zd-ticket-1")
        .await
        .expect("ticket");
    let t2 = b
        .create_ticket(&ticket(Some("35436")), "vb-zd-ticket-1")
        .await
        .expect("again");
    assert_eq!(t1.id, t2.id);
    assert!(t2.existing);
    let log = b
        .log_call(&call(None), "vb-zd-call-1")
        .await
        .expect("call log");
    b.create_task(&task(Some("35436")), "vb-zd-task-1")
        .await
        .expect("task");
    assert_eq!(account.creates.load(Ordering::SeqCst), 3);

    let tickets = account.tickets.lock().expect("lock");
    let stored = tickets
        .iter()
        .find(|t| t["id"].as_u64().is_some_and(|n| n.to_string() == log.id))
        .expect("log ticket");
    assert_eq!(stored["status"], "solved");
    assert_eq!(stored["external_id"], "vb-zd-call-1");
    assert!(
        stored["requester"]["phone"] == "+8613800138000",
        "unknown caller becomes the requester"
    );
    assert!(stored["description"]
        .as_str()
        .is_some_and(|d| d.contains("Duration: 75 s")));
    assert_no_raw_number("subject", &stored["subject"]);
    assert_no_raw_number("description", &stored["description"]);
    assert_no_raw_number("requester name", &stored["requester"]["name"]);
    let task_ticket = tickets
        .iter()
        .find(|t| t["external_id"] == "vb-zd-task-1")
        .expect("task");
    assert_eq!(
        (task_ticket["type"].as_str(), task_ticket["due_at"].as_str()),
        (Some("task"), Some("2026-11-22T09:00:00Z"))
    );
    assert_eq!(
        tickets
            .iter()
            .find(|t| t["external_id"] == "vb-zd-ticket-1")
            .map(|t| t["priority"].clone()),
        Some("high".into())
    );
}

#[tokio::test]
async fn zendesk_idempotency_key_covers_an_unlisted_ticket() {
    use common::zendesk as zd;
    let account = Arc::new(zd::Account::default());
    let server = common::serve(zd::router(Arc::clone(&account))).await;
    std::env::set_var("VB_ZENDESK_TOKEN2", zd::API_TOKEN);
    let b = bridge(&format!(
        "systems:\n  zd:\n    kind: zendesk\n    base_url: {}\n    auth: {{ type: basic, username: \"{}/token\", password: {{ env: VB_ZENDESK_TOKEN2 }} }}\n",
        server.url(),
        zd::AGENT
    ));
    let first = b
        .create_ticket(&ticket(None), "vb-zd-2")
        .await
        .expect("ticket");
    // As if the list had not caught up yet: the ticket is gone from the
    // list, but Zendesk still knows the key.
    account.tickets.lock().expect("lock").clear();
    let again = b
        .create_ticket(&ticket(None), "vb-zd-2")
        .await
        .expect("replayed");
    assert_eq!(first.id, again.id);
    assert!(again.existing, "x-idempotency-lookup: hit");
    assert_eq!(account.creates.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn odoo_partners_orders_stock_notes_and_tickets() {
    use common::odoo as od;
    let db = Arc::new(od::Db::seeded());
    let server = common::serve(od::router(Arc::clone(&db))).await;
    std::env::set_var("VB_ODOO_KEY", od::API_KEY);
    let b = bridge(&format!(
        r#"
default_country: CN
systems:
  odoo:
    kind: odoo
    base_url: {url}
    database: {db}
    auth: {{ type: bearer, token: {{ env: VB_ODOO_KEY }} }}
    tier_field: x_tier
    tier_map: tier
    value_maps:
      tier: {{ A: gold, B: silver, "*": standard }}
"#,
        url = server.url(),
        db = od::DATABASE
    ));

    let li = b
        .lookup_caller("138-0013-8000")
        .await
        .expect("lookup")
        .expect("found");
    assert_eq!(
        (li.id.as_str(), li.tier.as_deref(), li.language.as_deref()),
        ("7", Some("gold"), Some("zh-CN"))
    );
    let alice = b
        .lookup_caller("+1 555 123 4567")
        .await
        .expect("lookup")
        .expect("found");
    assert_eq!(alice.tier, None, "false is no tier");
    assert_eq!(b.lookup_caller("13900000000").await.expect("lookup"), None);
    assert_eq!(
        b.customer("8")
            .await
            .expect("get")
            .map(|c| c.name)
            .as_deref(),
        Some("Alice Johnson")
    );
    assert!(matches!(
        b.customer("abc").await,
        Err(CrmError::Invalid { .. })
    ));

    let orders = b.orders("7").await.expect("orders");
    assert_eq!(
        orders.iter().map(|o| o.id.as_str()).collect::<Vec<_>>(),
        ["S00041", "S00040"]
    );
    assert_eq!(orders[0].status, "confirmed");
    assert_eq!(orders[1].status, "cancelled");
    assert_eq!(orders[0].currency.as_deref(), Some("CNY"));
    assert_eq!(orders[0].lines[0].quantity, 2.0);
    assert_eq!(orders[0].lines[0].name, "Blue Electric Kettle 1.7L");
    assert_eq!(
        b.order_status("s00040")
            .await
            .expect("status")
            .map(|o| o.status)
            .as_deref(),
        Some("cancelled")
    );

    let kettle = b
        .stock(&ProductQuery::Name("the blue kettle".into()))
        .await
        .expect("stock");
    assert_eq!(kettle[0].sku, "KET-BLU-17");
    assert_eq!(kettle[0].quantity, 42.0, "internal locations only");
    assert_eq!(kettle[0].forecast, Some(38.0), "less reserved");
    let toaster = b
        .stock(&ProductQuery::Sku("toa-ss-2".into()))
        .await
        .expect("stock");
    assert_eq!((toaster.len(), toaster[0].quantity), (1, 17.0));
    let red = b
        .stock(&ProductQuery::Sku("KET-RED-17".into()))
        .await
        .expect("stock");
    assert_eq!(red[0].quantity, 0.0, "no quants is zero");

    let note = b
        .log_call(&call(Some("7")), "vb-odoo-call-1")
        .await
        .expect("note");
    assert!(
        b.log_call(&call(Some("7")), "vb-odoo-call-1")
            .await
            .expect("again")
            .existing
    );
    let t = b
        .create_ticket(&ticket(Some("7")), "vb-odoo-ticket-1")
        .await
        .expect("ticket");
    assert_eq!(
        b.create_ticket(&ticket(Some("7")), "vb-odoo-ticket-1")
            .await
            .expect("again")
            .id,
        t.id
    );
    assert_eq!(db.creates.load(Ordering::SeqCst), 2);
    {
        let tables = db.tables.lock().expect("lock");
        let msg = &tables["mail.message"][&note.id.parse::<i64>().expect("id")];
        let body = msg["body"].as_str().unwrap_or("");
        assert!(
            body.contains("My kettle &lt;leaks&gt; &amp; drips"),
            "HTML-escaped: {body}"
        );
        assert_eq!(msg["res_id"], 7);
        assert_no_raw_number("note", &msg["body"]);
        let stored = &tables["helpdesk.ticket"][&t.id.parse::<i64>().expect("id")];
        assert_eq!(
            (stored["priority"].as_str(), stored["partner_id"].as_i64()),
            (Some("2"), Some(7))
        );
    }

    assert!(
        matches!(
            b.log_call(&call(None), "vb-odoo-call-2").await,
            Err(CrmError::Invalid { .. })
        ),
        "a call log without a partner cannot be a partner note"
    );
    assert!(matches!(
        b.create_task(&task(Some("7")), "k").await,
        Err(CrmError::Unsupported { .. })
    ));
}

#[tokio::test]
async fn odoo_wrong_database_and_key_are_clear_errors() {
    use common::odoo as od;
    let server = common::serve(od::router(Arc::new(od::Db::seeded()))).await;
    std::env::set_var("VB_ODOO_KEY_BAD", "not-a-key");
    let b = bridge(&format!(
        "systems:\n  odoo:\n    kind: odoo\n    base_url: {}\n    database: {}\n    auth: {{ type: bearer, token: {{ env: VB_ODOO_KEY_BAD }} }}\n",
        server.url(),
        od::DATABASE
    ));
    let err = b.customer("7").await.expect_err("401");
    assert!(err.to_string().contains("Invalid apikey"), "{err}");
}
