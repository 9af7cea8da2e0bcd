//! The Request Tracker connector against a real RT 5 (Debian
//! `request-tracker5`, see scripts/install-crm-servers.sh), set up and
//! started on 127.0.0.1 by the shared test-support crate (queues, custom
//! fields, customers and an auth token from tests/rt/setup.pl); stopped at
//! the end.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use voxbridge_crm::model::{CallLog, NewTask, NewTicket, Priority, Write};
use voxbridge_crm::outbox::{DeliveryTarget, Outbox};
use voxbridge_crm::{Bridge, CrmConfig, CrmError};
use voxbridge_test_support::rt::{rt_missing, RtServer};

/// A running RT (the shared test-support server) and the folder it lives in.
struct Rt {
    server: RtServer,
    dir: tempfile::TempDir,
}

impl std::ops::Deref for Rt {
    type Target = RtServer;
    fn deref(&self) -> &RtServer {
        &self.server
    }
}

async fn start_rt() -> Rt {
    assert!(
        rt_missing().is_none(),
        "{}",
        rt_missing().unwrap_or_default()
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().to_path_buf();
    let server = tokio::task::spawn_blocking(move || RtServer::start_in(&path))
        .await
        .expect("RT start task")
        .unwrap_or_else(|e| panic!("RT starts: {e:#}"));
    Rt { server, dir }
}

fn yaml(rt: &Rt, token_env: &str, phone_field: &str) -> String {
    format!(
        r#"
default_country: CN
systems:
  helpdesk:
    kind: rt
    url: http://127.0.0.1:{port}
    token: {{ env: {token_env} }}
    phone_field: {phone_field}
    tier_field: Tier
    tier_map: tier
    ticket_queue: Support
    call_log_queue: Calls
    value_maps:
      tier: {{ Gold: gold, "*": standard }}
timeouts:
  find_customer: 5s
  get_customer: 5s
  create_ticket: 10s
  log_call: 10s
  create_task: 10s
outbox:
  path: {outbox}
  backoff_base: 50ms
  backoff_max: 500ms
  poll_interval: 100ms
  concurrency: 4
"#,
        port = rt.port,
        outbox = rt.dir.path().join("outbox.sqlite").display(),
    )
}

fn bridge(text: &str) -> Bridge {
    CrmConfig::from_yaml(text, "rt.yaml")
        .expect("config")
        .build_bridge()
        .expect("bridge")
}

async fn ticket_json(rt: &Rt, id: &str) -> Value {
    reqwest::Client::new()
        .get(format!("http://127.0.0.1:{}/REST/2.0/ticket/{id}", rt.port))
        .header("Authorization", format!("token {}", rt.token))
        .send()
        .await
        .expect("GET ticket")
        .json()
        .await
        .expect("ticket JSON")
}

async fn tickets_in(rt: &Rt, queue: &str) -> u64 {
    let body: Value = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{}/REST/2.0/tickets", rt.port))
        .query(&[("query", format!("Queue = '{queue}'"))])
        .header("Authorization", format!("token {}", rt.token))
        .send()
        .await
        .expect("search")
        .json()
        .await
        .expect("JSON");
    body["total"].as_u64().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_tracker_users_tickets_call_logs_and_outbox() {
    let rt = start_rt().await;
    std::env::set_var("VB_RT_TOKEN", &rt.token);
    let text = yaml(&rt, "VB_RT_TOKEN", "Phone");
    let b = bridge(&text);

    let li = b
        .lookup_caller("013800138000")
        .await
        .expect("lookup")
        .expect("Li Wei");
    assert_eq!((li.id.as_str(), li.name.as_str()), ("liwei", "Li Wei"));
    assert_eq!(li.tier.as_deref(), Some("gold"));
    assert_eq!(li.email.as_deref(), Some("li.wei@example.cn"));
    let alice = b
        .lookup_caller("+1 (555) 123-4567")
        .await
        .expect("lookup")
        .expect("Alice");
    assert_eq!((alice.id.as_str(), alice.tier.as_deref()), ("alice", None));
    assert_eq!(b.lookup_caller("13900000000").await.expect("lookup"), None);
    assert_eq!(
        b.customer("alice")
            .await
            .expect("get")
            .map(|c| c.name)
            .as_deref(),
        Some("Alice Johnson")
    );
    assert_eq!(b.customer("nobody-here").await.expect("get"), None);

    // Tickets: created once per key, in the right queue, for the customer.
    let ticket = NewTicket {
        priority: Priority::High,
        subject: "Kettle leaks".into(),
        body: "Caller reports the blue kettle leaks.".into(),
        customer_id: Some("liwei".into()),
        phone: Some("+8613800138000".into()),
        call_id: Some("rt-call-1".into()),
        ..NewTicket::default()
    };
    let t1 = b
        .create_ticket(&ticket, "vb-rt-ticket-1")
        .await
        .expect("ticket");
    let t2 = b
        .create_ticket(&ticket, "vb-rt-ticket-1")
        .await
        .expect("again");
    assert_eq!(t1.id, t2.id);
    assert!(!t1.existing && t2.existing);
    let stored = ticket_json(&rt, &t1.id).await;
    assert_eq!(stored["Subject"], "Kettle leaks");
    assert_eq!(stored["Priority"], "80");
    assert_eq!(stored["Requestor"][0]["id"], "liwei");

    // The call log: a resolved ticket in the call-log queue.
    let call = CallLog {
        call_id: "rt-call-1".into(),
        caller: Some("+8613800138000".into()),
        customer_id: Some("liwei".into()),
        started_at_ms: 1_795_253_400_000,
        ended_at_ms: 1_795_253_461_000,
        disposition: "ticket_created".into(),
        ..CallLog::default()
    };
    let log = b.log_call(&call, "vb-rt-call-1").await.expect("call log");
    assert!(
        b.log_call(&call, "vb-rt-call-1")
            .await
            .expect("again")
            .existing
    );
    let stored = ticket_json(&rt, &log.id).await;
    assert_eq!(stored["Status"], "resolved");
    assert!(stored["Subject"]
        .as_str()
        .is_some_and(|s| s.contains("61 s") && !s.contains("13800138000")));

    let task = NewTask {
        subject: "Call Li Wei back".into(),
        body: "About the leaking kettle.".into(),
        due: Some("2026-11-23".into()),
        customer_id: Some("liwei".into()),
        ..NewTask::default()
    };
    let follow_up = b.create_task(&task, "vb-rt-task-1").await.expect("task");
    let stored = ticket_json(&rt, &follow_up.id).await;
    assert!(
        stored["Due"]
            .as_str()
            .is_some_and(|d| d.starts_with("2026-11-23")),
        "{}",
        stored["Due"]
    );

    // The outbox delivers to RT: 20 writes, each once.
    let cfg = CrmConfig::from_yaml(&text, "rt.yaml").expect("config");
    let outbox: Outbox = cfg.open_outbox().expect("outbox");
    let writes: Vec<Write> = (0..20)
        .map(|i| {
            Write::CallLog(CallLog {
                call_id: format!("rt-outbox-{i}"),
                caller: Some("+15551234567".into()),
                customer_id: Some("alice".into()),
                started_at_ms: 1_795_253_400_000 + i * 1000,
                ended_at_ms: 1_795_253_430_000 + i * 1000,
                disposition: "resolved".into(),
                ..CallLog::default()
            })
        })
        .collect();
    outbox.enqueue_all(writes.clone()).await.expect("enqueue");
    outbox
        .enqueue_all(writes)
        .await
        .expect("enqueue twice: stored once");
    let target: Arc<dyn DeliveryTarget> = Arc::new(bridge(&text));
    let watcher = outbox.clone();
    tokio::time::timeout(
        Duration::from_secs(120),
        outbox.run(
            target,
            async move {
                while watcher.counts().await.map(|c| c.pending).unwrap_or(1) > 0 {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Duration::from_secs(5),
        ),
    )
    .await
    .expect("outbox drained in time")
    .expect("outbox");
    assert_eq!(outbox.counts().await.expect("counts").delivered, 20);
    assert_eq!(
        tickets_in(&rt, "Calls").await,
        21,
        "20 outbox call logs + the one above"
    );

    // The pitfall: a phone custom field that does not exist makes RT
    // ignore the filter and list users; none of them may be taken for the
    // caller.
    let misconfigured = bridge(&yaml(&rt, "VB_RT_TOKEN", "Telephone"));
    assert_eq!(
        misconfigured
            .lookup_caller("013800138000")
            .await
            .expect("lookup"),
        None
    );

    std::env::set_var("VB_RT_BAD_TOKEN", "1-2-0000000000000000");
    let bad = bridge(&yaml(&rt, "VB_RT_BAD_TOKEN", "Phone"));
    assert!(matches!(
        bad.customer("alice").await,
        Err(CrmError::Auth { .. })
    ));
    drop(rt);
}
