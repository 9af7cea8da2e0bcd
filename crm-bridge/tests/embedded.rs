//! The embedded SQLite CRM seeded from `fixtures/crm/*.csv`: lookups by
//! phone in the formats people type, orders, fuzzy stock, and idempotent
//! writes.

use std::path::PathBuf;

use voxbridge_crm::connectors::embedded::EmbeddedCrm;
use voxbridge_crm::model::{CallLog, NewTask, NewTicket, Priority, ProductQuery};
use voxbridge_crm::{Connector, Country, CrmError, E164};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/crm")
}

fn open(dir: &tempfile::TempDir) -> EmbeddedCrm {
    let cn = Country::by_iso("CN").expect("CN");
    EmbeddedCrm::open("crm", &dir.path().join("crm.sqlite"), Some(&fixtures()), cn)
        .expect("open embedded CRM")
}

fn e164(s: &str, iso: &str) -> E164 {
    E164::parse(s, Country::by_iso(iso).expect("country")).expect("valid number")
}

#[tokio::test]
async fn customers_by_phone_in_any_format() {
    let dir = tempfile::tempdir().expect("temp dir");
    let crm = open(&dir);
    let cases = [
        ("013800138000", "CN", "C001"),
        ("+86 139 1234 5678", "CN", "C002"),
        ("(010) 6552 9988", "CN", "C003"),
        ("(555) 123-4567", "US", "C005"),
        ("+1 555 987 6543", "US", "C006"),
        ("07700 900123", "GB", "C008"),
        ("020 7946 0018", "GB", "C009"),
        ("+852 9123 4567", "CN", "C011"),
    ];
    for (number, country, want) in cases {
        let found = crm
            .find_customer_by_phone(&e164(number, country))
            .await
            .expect("lookup");
        assert_eq!(
            found.map(|c| c.id).as_deref(),
            Some(want),
            "number {number}"
        );
    }
    let nobody = crm
        .find_customer_by_phone(&e164("13900000000", "CN"))
        .await
        .expect("lookup");
    assert_eq!(nobody, None);

    let li = crm
        .get_customer("C001")
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(li.name, "Li Wei");
    assert_eq!(li.tier.as_deref(), Some("gold"));
    assert_eq!(li.phone.as_deref(), Some("+8613800138000"));
    assert_eq!(li.fields.get("city").map(String::as_str), Some("Beijing"));
    assert_eq!(crm.get_customer("C999").await.expect("get"), None);
}

#[tokio::test]
async fn orders_and_stock() {
    let dir = tempfile::tempdir().expect("temp dir");
    let crm = open(&dir);
    let orders = crm.list_orders("C001").await.expect("orders");
    let ids: Vec<&str> = orders.iter().map(|o| o.id.as_str()).collect();
    assert_eq!(ids, ["SO-1002", "SO-1001"], "newest first");
    assert_eq!(orders[1].status, "shipped");
    assert_eq!(orders[1].lines[0].sku.as_deref(), Some("KET-BLU-17"));

    let by_number = crm
        .order_status("1005")
        .await
        .expect("status")
        .expect("found");
    assert_eq!(by_number.id, "SO-1005");
    assert_eq!(by_number.lines.len(), 2);
    assert_eq!(
        crm.order_status("so-1010")
            .await
            .expect("status")
            .map(|o| o.status),
        Some("shipped".to_string())
    );
    assert_eq!(crm.order_status("9999").await.expect("status"), None);
    assert_eq!(crm.order_status("none").await.expect("status"), None);

    let sku = crm
        .stock(&ProductQuery::Sku("ket-blu-17".into()))
        .await
        .expect("stock");
    assert_eq!(sku.len(), 1);
    assert_eq!(sku[0].quantity, 42.0);
    let spoken = crm
        .stock(&ProductQuery::Name("the red kettel".into()))
        .await
        .expect("stock");
    assert_eq!(spoken[0].sku, "KET-RED-17");
    assert_eq!(spoken[0].quantity, 0.0);
    assert_eq!(spoken[0].forecast, Some(25.0));
    let chinese = crm
        .stock(&ProductQuery::Name("电饭煲".into()))
        .await
        .expect("stock");
    assert_eq!(chinese[0].sku, "RCK-5L");
    let none = crm
        .stock(&ProductQuery::Name("bicycle".into()))
        .await
        .expect("stock");
    assert!(none.is_empty());
}

#[tokio::test]
async fn writes_are_idempotent_by_key_and_survive_reopening() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ticket = NewTicket {
        queue: Some("support".into()),
        priority: Priority::High,
        subject: "Kettle leaks".into(),
        body: "Caller says the blue kettle leaks.".into(),
        customer_id: Some("C001".into()),
        phone: Some("+8613800138000".into()),
        ..NewTicket::default()
    };
    let call = CallLog {
        call_id: "call-1".into(),
        caller: Some("+8613800138000".into()),
        customer_id: Some("C001".into()),
        started_at_ms: 1_795_253_400_000,
        ended_at_ms: 1_795_253_460_000,
        disposition: "resolved".into(),
        ..CallLog::default()
    };
    {
        let crm = open(&dir);
        let first = crm
            .create_ticket(&ticket, "k-ticket-1")
            .await
            .expect("ticket");
        let again = crm
            .create_ticket(&ticket, "k-ticket-1")
            .await
            .expect("ticket");
        assert_eq!(first.id, again.id);
        assert!(!first.existing);
        assert!(again.existing);
        let other = crm
            .create_ticket(&ticket, "k-ticket-2")
            .await
            .expect("ticket");
        assert_ne!(other.id, first.id);

        crm.log_call(&call, "k-call-1").await.expect("log");
        assert!(crm.log_call(&call, "k-call-1").await.expect("log").existing);
        let task = NewTask {
            subject: "Call back".into(),
            body: "About the kettle".into(),
            due: Some("2026-11-22".into()),
            ..NewTask::default()
        };
        crm.create_task(&task, "k-task-1").await.expect("task");
        assert!(
            crm.create_task(&task, "k-task-1")
                .await
                .expect("task")
                .existing
        );
    }
    let crm = open(&dir);
    assert_eq!(crm.tickets().await.expect("tickets").len(), 2);
    let logs = crm.call_logs().await.expect("logs");
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0].1, call);
    // Re-opening does not seed again on top of edits.
    assert!(crm.get_customer("C001").await.expect("get").is_some());
}

#[test]
fn bad_seed_rows_are_reported_with_their_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let seed = dir.path().join("seed");
    std::fs::create_dir_all(&seed).expect("mkdir");
    std::fs::write(
        seed.join("customers.csv"),
        "id,name,phone,country\nX1,Ok,13800138000,CN\nX2,Bad,12ab,CN\n",
    )
    .expect("write");
    let cn = Country::by_iso("CN").expect("CN");
    let err = EmbeddedCrm::open("crm", &dir.path().join("db.sqlite"), Some(&seed), cn)
        .err()
        .expect("bad phone must fail");
    match err {
        CrmError::Invalid { message, .. } => {
            assert!(message.contains("customers.csv:3"), "{message}");
            assert!(message.contains("'a'"), "{message}");
        }
        other => panic!("unexpected error {other:?}"),
    }
    std::fs::write(seed.join("customers.csv"), "name\nNo id\n").expect("write");
    let err = EmbeddedCrm::open("crm", &dir.path().join("db2.sqlite"), Some(&seed), cn)
        .err()
        .expect("missing column must fail");
    assert!(err.to_string().contains("missing column `id`"), "{err}");
}

#[tokio::test]
async fn campaign_lists_name_customers_with_follow_up_tasks() {
    use voxbridge_crm::model::CustomerQuery;
    let dir = tempfile::tempdir().expect("temp dir");
    let crm = open(&dir);
    let query = |name: &str, since_ms| CustomerQuery {
        name: name.into(),
        since_ms,
    };
    let none = crm
        .list_customers(&query("follow_ups", None))
        .await
        .expect("list");
    assert!(none.is_empty(), "no tasks yet: {none:?}");
    let by_id = NewTask {
        subject: "Call back about the kettle".into(),
        customer_id: Some("C001".into()),
        ..NewTask::default()
    };
    let by_phone = NewTask {
        subject: "Send a quote".into(),
        phone: Some("+8613912345678".into()),
        ..NewTask::default()
    };
    crm.create_task(&by_id, "t1").await.expect("task");
    crm.create_task(&by_phone, "t2").await.expect("task");
    let ids: Vec<String> = crm
        .list_customers(&query("follow_ups", Some(0)))
        .await
        .expect("list")
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(ids, vec!["C001".to_string(), "C002".to_string()]);
    let later = crm
        .list_customers(&query("follow_ups", Some(i64::MAX)))
        .await
        .expect("list");
    assert!(later.is_empty(), "`since` filters by task time");
    let all = crm.list_customers(&query("all", None)).await.expect("list");
    assert!(all.len() >= 4 && all.iter().all(|c| c.phone.is_some()));
    let err = crm
        .list_customers(&query("everyone", None))
        .await
        .expect_err("unknown list");
    assert!(err.to_string().contains("follow_ups"), "{err}");
}
