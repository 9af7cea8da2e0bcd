//! Several delivery processes on one outbox (`voxbridge-crm-outbox deliver`,
//! as next to an engine or on other nodes), over HTTP to the site CRM
//! stand-in, which keeps one record per idempotency key and counts replays:
//! - 1,000 records, three processes, the CRM down (503) for part of the
//!   run and one process killed with SIGKILL mid-run: every record arrives
//!   once, in order per customer, on SQLite and on PostgreSQL;
//! - two processes on one SQLite file with the CRM up: not one replay (each
//!   record is sent once, which the in-memory claims of before did not do).

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use common::site_crm::{config_yaml, Server, Site, CLIENT_SECRET};
use common::wait_for;
use voxbridge_crm::model::{CallLog, Write};
use voxbridge_crm::CrmConfig;

const CUSTOMERS: usize = 25;
const SECRET_ENV: &str = "VB_CLUSTER_SECRET";

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

/// The CRM configuration: the stand-in, a fast schedule, a 2 s lease, and
/// `storage` (empty for SQLite).
fn write_config(dir: &Path, server: &Server, storage: &str) -> std::path::PathBuf {
    let text = format!(
        "{}breaker: {{ failure_threshold: 5, open_for: 300ms }}\n\
         outbox:\n  path: {}\n  backoff_base: 50ms\n  backoff_max: 400ms\n  poll_interval: 100ms\n  concurrency: 8\n  lease: 2s\n{storage}",
        config_yaml(&server.base_url(), SECRET_ENV),
        dir.join("outbox.sqlite").display()
    );
    let path = dir.join("crm.yaml");
    std::fs::write(&path, text).expect("write config");
    path
}

fn spawn(config: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_voxbridge-crm-outbox"))
        .args(["deliver", "--until-empty", "--config"])
        .arg(config)
        .env(SECRET_ENV, CLIENT_SECRET)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn delivery process")
}

async fn enqueue(config: &Path, n: usize) {
    let cfg = CrmConfig::load(config).expect("config");
    let outbox = cfg.open_outbox().expect("outbox");
    outbox
        .enqueue_all((0..n).map(record).collect())
        .await
        .expect("enqueue");
}

async fn finish(children: Vec<Child>) {
    for child in children {
        let out = tokio::task::spawn_blocking(move || child.wait_with_output())
            .await
            .expect("join")
            .expect("wait");
        assert!(
            out.status.success(),
            "a delivery process failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Every record created once, and each customer's calls in written order.
fn assert_once_in_order(site: &Site, total: usize) {
    let data = site.data.lock().expect("lock");
    assert_eq!(data.calls.len(), total, "records created at the CRM");
    let mut n = 0;
    for (customer, calls) in &data.call_order {
        let mut sorted = calls.clone();
        sorted.sort();
        assert_eq!(calls, &sorted, "customer {customer} out of order");
        n += calls.len();
    }
    assert_eq!(n, total);
    let per: HashMap<_, _> = data.call_order.iter().map(|(c, v)| (c, v.len())).collect();
    assert_eq!(per.len(), CUSTOMERS);
}

async fn three_workers_outage_and_a_kill(storage: &str, what: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start().await;
    server.site.write_delay_ms.store(3, Ordering::SeqCst);
    let config = write_config(dir.path(), &server, storage);
    enqueue(&config, 1000).await;
    let mut children: Vec<Child> = (0..3).map(|_| spawn(&config)).collect();

    let site = Arc::clone(&server.site);
    assert!(
        wait_for(move || site.calls_created() >= 200, Duration::from_secs(60)).await,
        "{what}: delivery stalled before 200"
    );
    server.site.unavailable.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let during = server.site.calls_created();
    server.site.unavailable.store(false, Ordering::SeqCst);
    let site = Arc::clone(&server.site);
    assert!(
        wait_for(move || site.calls_created() >= 500, Duration::from_secs(60)).await,
        "{what}: delivery stalled before 500"
    );
    let mut victim = children.remove(0);
    // std's kill() is SIGKILL: no destructor, claims left behind.
    victim.kill().expect("kill -9");
    let _ = victim.wait();
    let at_kill = server.site.calls_created();
    assert!(at_kill < 1000, "{what}: the kill landed after the end");
    finish(children).await;

    assert_once_in_order(&server.site, 1000);
    let posts = server.site.call_posts.load(Ordering::SeqCst);
    eprintln!(
        "{what}: 1000 records by 3 processes, {during} created when the CRM went down for 1.5 s, \
         one killed at {at_kill}: {posts} POSTs reached the CRM, {} replays absorbed by the key",
        posts - 1000
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_three_processes_outage_and_kill_deliver_each_record_once_in_order() {
    three_workers_outage_and_a_kill("", "sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_three_processes_outage_and_kill_deliver_each_record_once_in_order() {
    let server = voxbridge_test_support::postgres::shared().unwrap_or_else(|e| panic!("{e:#}"));
    let db = server.create_database("cluster").expect("createdb");
    let storage = format!(
        "storage:\n  url: {}\n  password: {{ file: {} }}\n",
        server.url(&db),
        server.password_file().display()
    );
    three_workers_outage_and_a_kill(&storage, "postgres").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_one_sqlite_file_send_each_record_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start().await;
    server.site.write_delay_ms.store(3, Ordering::SeqCst);
    let config = write_config(dir.path(), &server, "");
    enqueue(&config, 300).await;
    let children: Vec<Child> = (0..2).map(|_| spawn(&config)).collect();
    finish(children).await;
    assert_once_in_order_of(&server.site, 300);
    assert_eq!(
        server.site.call_posts.load(Ordering::SeqCst),
        300,
        "a record was sent by both processes"
    );
}

fn assert_once_in_order_of(site: &Site, total: usize) {
    let data = site.data.lock().expect("lock");
    assert_eq!(data.calls.len(), total);
    for (customer, calls) in &data.call_order {
        let mut sorted = calls.clone();
        sorted.sort();
        assert_eq!(calls, &sorted, "customer {customer} out of order");
    }
}
