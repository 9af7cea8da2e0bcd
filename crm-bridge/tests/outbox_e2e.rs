//! The outbox end to end, over HTTP to the site CRM stand-in:
//! - an outage: 200 call records written while the CRM is stopped (the test
//!   stops it mid-delivery and starts it again later) all arrive exactly
//!   once, in order per customer;
//! - a crash: the delivering process is killed with SIGKILL in the middle
//!   of deliveries, started again, and every record still arrives once.

mod common;

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use common::site_crm::{config_yaml, Server, Site, CLIENT_SECRET};
use common::wait_for;
use voxbridge_crm::model::{CallLog, Write};
use voxbridge_crm::outbox::{DeliveryTarget, Outbox};
use voxbridge_crm::CrmConfig;

const CUSTOMERS: usize = 20;

fn config_text(server: &Server, env: &str, outbox: &std::path::Path, concurrency: usize) -> String {
    format!(
        "{}breaker: {{ failure_threshold: 5, open_for: 300ms }}\n\
         outbox:\n  path: {}\n  backoff_base: 50ms\n  backoff_max: 500ms\n  poll_interval: 100ms\n  concurrency: {concurrency}\n  lease: 2s\n",
        config_yaml(&server.base_url(), env),
        outbox.display()
    )
}

fn record(i: usize) -> Write {
    Write::CallLog(CallLog {
        call_id: format!("call-{i:04}"),
        caller: Some(format!("+86138{:08}", i % CUSTOMERS)),
        customer_id: Some(format!("C{:02}", i % CUSTOMERS)),
        started_at_ms: 1_795_000_000_000 + (i as i64) * 1000,
        ended_at_ms: 1_795_000_000_000 + (i as i64) * 1000 + 45_000,
        disposition: "resolved".into(),
        ..CallLog::default()
    })
}

/// Every record created once, and each customer's calls in written order.
fn assert_exactly_once_in_order(site: &Site, total: usize) {
    let data = site.data.lock().expect("lock");
    assert_eq!(data.calls.len(), total, "records created at the CRM");
    let mut per_customer: HashMap<&str, usize> = HashMap::new();
    for (customer, calls) in &data.call_order {
        let mut sorted = calls.clone();
        sorted.sort();
        assert_eq!(calls, &sorted, "customer {customer} out of order");
        per_customer.insert(customer, calls.len());
    }
    assert_eq!(per_customer.values().sum::<usize>(), total);
    assert_eq!(per_customer.len(), CUSTOMERS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_records_through_an_outage_arrive_once_in_order() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut server = Server::start().await;
    server.site.write_delay_ms.store(5, Ordering::SeqCst);
    std::env::set_var("VB_OUTAGE_SECRET", CLIENT_SECRET);
    let cfg = CrmConfig::from_yaml(
        &config_text(
            &server,
            "VB_OUTAGE_SECRET",
            &dir.path().join("outbox.sqlite"),
            32,
        ),
        "outage.yaml",
    )
    .expect("config");
    let bridge: Arc<dyn DeliveryTarget> = Arc::new(cfg.build_bridge().expect("bridge"));
    let outbox = cfg.open_outbox().expect("outbox");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let worker = {
        let outbox = outbox.clone();
        tokio::spawn(async move {
            outbox
                .run(
                    bridge,
                    async {
                        let _ = stop_rx.await;
                    },
                    Duration::from_secs(2),
                )
                .await
        })
    };

    // Calls end while the CRM works, then it goes down mid-stream.
    for i in 0..200 {
        if i == 40 {
            server.stop().await;
        }
        outbox.enqueue(record(i)).await.expect("enqueue");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let during = server.site.calls_created();
    assert!(
        during < 200,
        "the outage held records back ({during} created)"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        server.site.calls_created(),
        during,
        "nothing arrives while down"
    );
    let pending = outbox.counts().await.expect("counts").pending;
    assert!(pending > 0);

    server.restart().await;
    let site = Arc::clone(&server.site);
    assert!(
        wait_for(move || site.calls_created() == 200, Duration::from_secs(60)).await,
        "only {} of 200 delivered after the CRM came back",
        server.site.calls_created()
    );
    let _ = stop_tx.send(());
    worker.await.expect("join").expect("worker");

    assert_exactly_once_in_order(&server.site, 200);
    let counts = outbox.counts().await.expect("counts");
    assert_eq!((counts.delivered, counts.pending, counts.dead), (200, 0, 0));
    eprintln!(
        "outage: {} POSTs for 200 records ({} before the outage)",
        server.site.call_posts.load(Ordering::SeqCst),
        during
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_dash_nine_during_delivery_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start().await;
    // Slow writes keep deliveries in flight when the kill lands.
    server.site.write_delay_ms.store(40, Ordering::SeqCst);
    let config_path = dir.path().join("crm.yaml");
    let outbox_path = dir.path().join("outbox.sqlite");
    std::fs::write(
        &config_path,
        config_text(&server, "VB_CRASH_SECRET", &outbox_path, 8),
    )
    .expect("write config");
    std::env::set_var("VB_CRASH_SECRET", CLIENT_SECRET);
    {
        let cfg = CrmConfig::load(&config_path).expect("config");
        let outbox: Outbox = cfg.open_outbox().expect("outbox");
        let writes: Vec<Write> = (0..200).map(record).collect();
        outbox.enqueue_all(writes).await.expect("enqueue");
    }

    let spawn = || {
        Command::new(env!("CARGO_BIN_EXE_voxbridge-crm-outbox"))
            .args(["deliver", "--until-empty", "--config"])
            .arg(&config_path)
            .env("VB_CRASH_SECRET", CLIENT_SECRET)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn delivery process")
    };

    let mut kills = 0;
    for threshold in [40, 110] {
        let mut child = spawn();
        let site = Arc::clone(&server.site);
        let reached = wait_for(
            move || site.calls_created() >= threshold,
            Duration::from_secs(60),
        )
        .await;
        assert!(reached, "delivery stalled before {threshold}");
        // std's kill() is SIGKILL on Unix: no destructor, no flush.
        child.kill().expect("kill -9");
        let status = child.wait().expect("wait");
        assert!(!status.success(), "process was killed, not finished");
        kills += 1;
        let created = server.site.calls_created();
        assert!(
            created < 200,
            "kill {kills} landed after the end ({created})"
        );
    }

    let child = spawn();
    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("wait");
    assert!(
        output.status.success(),
        "final run failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("200 delivered, 0 pending, 0 dead"));
    assert_exactly_once_in_order(&server.site, 200);
    eprintln!(
        "crash: {} POSTs for 200 records across {kills} kills",
        server.site.call_posts.load(Ordering::SeqCst)
    );
}
