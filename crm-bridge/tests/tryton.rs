//! The Tryton connector against a real Tryton 7.0 server (from PyPI, see
//! scripts/install-crm-servers.sh), started on 127.0.0.1 by the shared
//! test-support crate with a copy of the seeded database (tests/tryton/
//! seed.py: company, customers with phone numbers, products with stock,
//! sales), and stopped at the end. All checks share one server, in one
//! test, so the binary starts it once.

use voxbridge_crm::model::{CallLog, ProductQuery, Speaker, Turn};
use voxbridge_crm::{Bridge, CrmConfig, CrmError, LookupFailed};
use voxbridge_test_support::tryton::{
    tryton_missing, TrytonServer, TRYTON_ADMIN_PASSWORD, TRYTON_DATABASE,
};

const DATABASE: &str = TRYTON_DATABASE;

async fn start_server() -> (TrytonServer, tempfile::TempDir) {
    assert!(
        tryton_missing().is_none(),
        "{}",
        tryton_missing().unwrap_or_default()
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().to_path_buf();
    let server = tokio::task::spawn_blocking(move || TrytonServer::start_in(&path))
        .await
        .expect("Tryton start task")
        .unwrap_or_else(|e| panic!("Tryton starts: {e:#}"));
    (server, dir)
}

fn bridge(port: u16, password_env: &str) -> Bridge {
    let yaml = format!(
        r#"
default_country: CN
systems:
  erp:
    kind: tryton
    url: http://127.0.0.1:{port}
    database: {DATABASE}
    user: admin
    password: {{ env: {password_env} }}
    tier_map: tier
    value_maps:
      tier: {{ Gold: gold, Silver: silver, "*": standard }}
timeouts:
  find_customer: 5s
  get_customer: 5s
  list_orders: 5s
  order_status: 5s
  stock: 5s
"#
    );
    CrmConfig::from_yaml(&yaml, "tryton.yaml")
        .expect("config")
        .build_bridge()
        .expect("bridge")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tryton_customers_orders_stock_and_call_notes() {
    let (server, _dir) = start_server().await;
    std::env::set_var("VB_TRYTON_PASSWORD", TRYTON_ADMIN_PASSWORD);
    let b = bridge(server.port, "VB_TRYTON_PASSWORD");

    // Customers by phone, typed the ways people type them.
    let li = b
        .lookup_caller("013800138000")
        .await
        .expect("lookup")
        .expect("Li Wei");
    assert_eq!(li.name, "Li Wei");
    assert_eq!(li.tier.as_deref(), Some("gold"));
    assert_eq!(li.email.as_deref(), Some("li.wei@example.cn"));
    assert_eq!(li.fields.get("code").map(String::as_str), Some("CUST-001"));
    let wang = b
        .lookup_caller("+86 10 6552 9988")
        .await
        .expect("lookup")
        .expect("landline");
    assert_eq!(
        (wang.name.as_str(), wang.tier.as_deref()),
        ("Wang Fang", Some("silver"))
    );
    let wang_mobile = b
        .lookup_caller("139-1234-5678")
        .await
        .expect("lookup")
        .expect("mobile");
    assert_eq!(wang_mobile.id, wang.id);
    let alice = b
        .lookup_caller("+1 201 555 0123")
        .await
        .expect("lookup")
        .expect("US");
    assert_eq!((alice.name.as_str(), alice.tier), ("Alice Johnson", None));
    assert_eq!(b.lookup_caller("13700000000").await.expect("lookup"), None);
    assert_eq!(
        b.customer(&li.id)
            .await
            .expect("get")
            .map(|c| c.name)
            .as_deref(),
        Some("Li Wei")
    );
    assert_eq!(b.customer("99999").await.expect("get"), None);

    // Sales: the draft is known by its reference, the quotation by number.
    let orders = b.orders(&li.id).await.expect("orders");
    assert_eq!(orders.len(), 2);
    assert_eq!(orders[0].id, "WEB-1002");
    assert_eq!(orders[0].status, "draft");
    assert_eq!(orders[0].total.as_deref(), Some("1817.00"));
    assert_eq!(orders[0].lines.len(), 2);
    assert_eq!(orders[1].status, "quoted");
    assert_eq!(orders[1].placed_at.as_deref(), Some("2026-11-02"));
    assert_eq!(orders[1].currency.as_deref(), Some("CNY"));
    assert_eq!(orders[1].lines[0].sku.as_deref(), Some("KET-BLU-17"));
    let cancelled = b
        .order_status("web-1003")
        .await
        .expect("status")
        .expect("found");
    assert_eq!(cancelled.status, "cancelled");
    assert_eq!(b.order_status("NOPE-1").await.expect("status"), None);

    // Stock in the warehouse: on hand and forecast (2 kettles going out).
    let kettle = b
        .stock(&ProductQuery::Name("the blue kettle".into()))
        .await
        .expect("stock");
    assert_eq!(kettle[0].sku, "KET-BLU-17");
    assert_eq!((kettle[0].quantity, kettle[0].forecast), (42.0, Some(40.0)));
    let red = b
        .stock(&ProductQuery::Sku("ket-red-17".into()))
        .await
        .expect("stock");
    assert_eq!((red.len(), red[0].quantity), (1, 0.0));
    let toaster = b
        .stock(&ProductQuery::Name("toaster".into()))
        .await
        .expect("stock");
    assert_eq!(toaster[0].quantity, 17.0);

    // The call log is a note on the party, once per key.
    let call = CallLog {
        call_id: "tryton-call-1@pbx".into(),
        caller: Some("+8613800138000".into()),
        customer_id: Some(li.id.clone()),
        started_at_ms: 1_795_253_400_000,
        ended_at_ms: 1_795_253_442_000,
        transcript: vec![Turn {
            speaker: Speaker::Caller,
            text: "Where is order WEB-1002?".into(),
            at_ms: 0,
        }],
        disposition: "resolved".into(),
        ..CallLog::default()
    };
    let first = b.log_call(&call, "vb-tryton-1").await.expect("note");
    let again = b.log_call(&call, "vb-tryton-1").await.expect("note again");
    assert_eq!(first.id, again.id);
    assert!(!first.existing && again.existing);
    let other = b.log_call(&call, "vb-tryton-2").await.expect("second call");
    assert_ne!(other.id, first.id);
    assert!(matches!(
        b.create_ticket(&Default::default(), "k").await,
        Err(CrmError::Unsupported { .. })
    ));

    // A wrong password is an authentication error, not a hang or a panic.
    std::env::set_var("VB_TRYTON_WRONG", "not-the-password");
    let wrong = bridge(server.port, "VB_TRYTON_WRONG");
    match wrong.lookup_caller("013800138000").await {
        Err(LookupFailed::Crm(CrmError::Auth { .. })) => {}
        other => panic!("wrong password gave {other:?}"),
    }
    drop(server);
}
