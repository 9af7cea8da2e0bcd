//! Three voxbridge nodes behind Kamailio's dispatcher, with the config we
//! ship (`deploy/kamailio/dispatcher.cfg`): a node killed mid-load loses
//! only the calls it had, Kamailio stops sending to it, and the calls after
//! go through the others; a rolling restart (SIGTERM, drain, start again,
//! one node after the other) under steady load fails no call. The nodes
//! share one PostgreSQL (a throwaway cluster from test-support, one per
//! test binary, a database per test) for their call records and their CRM
//! outbox, and log calls to a REST CRM stand-in that records each call log
//! with its idempotency key: every call that completed has exactly one call
//! record (read back through `voxbridge calls list`, which on any node
//! shows the whole cluster's) and exactly one call log at the CRM, the
//! killed node's undelivered ones included (the other nodes take them over
//! when its lease ends). 127.0.0.1 only; sipp is bounded by call count and
//! a timeout.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use voxbridge_e2e::rest_crm::RestCrm;
use voxbridge_e2e::{
    free_port, run_sipp, scenario_dir, scratch_dir, tail, workspace_root, Bot, BotConfig, Kamailio,
    SippRun,
};

/// Calls per second, and how long each call lasts (sipp's pause).
const RATE: u32 = 20;
const HOLD_MS: u32 = 2000;

/// How long a node's claim on an outbox record holds: the killed node's
/// claimed call logs wait this long before another node delivers them.
const LEASE: &str = "2s";

struct Cluster {
    kamailio: Kamailio,
    nodes: Vec<Bot>,
    crm: RestCrm,
}

/// The CRM configuration every node reads: the stand-in, and the shared
/// PostgreSQL for the outbox and the call records (`storage.url`).
fn crm_config(name: &str, crm: &RestCrm) -> PathBuf {
    let server = voxbridge_test_support::postgres::shared().unwrap_or_else(|e| panic!("{e:#}"));
    let db = server.create_database(name).expect("createdb");
    let dir = scratch_dir(&format!("{name}_crm")).expect("scratch dir");
    let path = dir.join("crm.yaml");
    // `config_yaml` ends inside its `outbox:` block.
    let text = format!(
        "{}  lease: {LEASE}\nstorage:\n  url: {}\n  password: {{ file: {} }}\n",
        crm.config_yaml(&dir.join("unused-outbox.sqlite")),
        server.url(&db),
        server.password_file().display()
    );
    fs::write(&path, text).expect("crm.yaml");
    path
}

fn start_cluster(name: &str, nodes: usize) -> Cluster {
    let crm = RestCrm::start().expect("the CRM stand-in starts");
    let crm_yaml = crm_config(name, &crm);
    let nodes: Vec<Bot> = (0..nodes)
        .map(|i| {
            Bot::start(
                &format!("{name}_node{}", i + 1),
                &BotConfig {
                    more: format!("crm:\n  config: {}\n", crm_yaml.display()),
                    env: vec![
                        // Long enough for a call in progress to end by itself.
                        ("VOXBRIDGE_CALLS_DRAIN_TIMEOUT_SECS".into(), "15".into()),
                        ("VOXBRIDGE_NODE_ID".into(), format!("node-{}", i + 1)),
                    ],
                    ..BotConfig::default()
                },
            )
            .expect("node starts")
        })
        .collect();
    let dir = scratch_dir(&format!("{name}_kamailio")).expect("scratch dir");
    let list = dir.join("dispatcher.list");
    let lines: String = nodes
        .iter()
        .map(|n| format!("1 sip:{}\n", n.addr))
        .collect();
    fs::write(&list, lines).expect("dispatcher.list");
    let port = free_port().expect("a free port");
    let cfg = workspace_root().join("deploy/kamailio/dispatcher.cfg");
    let kamailio = Kamailio::with_config(
        &dir,
        &cfg,
        &[
            format!("LISTEN=udp:127.0.0.1:{port}"),
            format!("DISPATCHER_LIST=\"{}\"", list.display()),
            "CHILDREN=2".into(),
        ],
        port,
    )
    .expect("kamailio starts with deploy/kamailio/dispatcher.cfg");
    Cluster {
        kamailio,
        nodes,
        crm,
    }
}

/// sipp's routed caller through Kamailio, `calls` calls at [`RATE`], in a
/// thread; its run when it ends.
fn callers(name: &str, target: String, calls: u32) -> (PathBuf, thread::JoinHandle<SippRun>) {
    let dir = scratch_dir(name).expect("scratch dir");
    let sipp_dir = dir.clone();
    let handle = thread::spawn(move || {
        let port = free_port().expect("a free port").to_string();
        let scenario = scenario_dir().join("uac_routed.xml");
        let scenario = scenario.display().to_string();
        let (rate, calls, hold) = (RATE.to_string(), calls.to_string(), HOLD_MS.to_string());
        run_sipp(
            &sipp_dir,
            &[
                "-sf",
                &scenario,
                &target,
                "-i",
                "127.0.0.1",
                "-p",
                &port,
                "-r",
                &rate,
                "-m",
                &calls,
                "-l",
                "200",
                "-d",
                &hold,
                "-trace_logs",
                "-timeout",
                "120s",
                "-timeout_error",
            ],
            Duration::from_secs(150),
        )
        .expect("sipp runs")
    });
    (dir, handle)
}

/// The calls sipp saw through to their end: call number → Call-ID.
fn done_calls(dir: &Path) -> HashMap<u32, String> {
    let mut done = HashMap::new();
    for entry in fs::read_dir(dir).expect("sipp's folder").flatten() {
        let path = entry.path();
        if !path.to_string_lossy().ends_with("_logs.log") {
            continue;
        }
        for line in fs::read_to_string(&path).unwrap_or_default().lines() {
            let mut words = line.split_whitespace();
            if words.next() != Some("done") {
                continue;
            }
            if let (Some(n), Some(id)) = (words.next().and_then(|n| n.parse().ok()), words.next()) {
                done.insert(n, id.to_string());
            }
        }
    }
    done
}

/// Every call record in the shared database as (Call-ID, node), read
/// through `voxbridge calls list` on one node (any node shows them all).
fn recorded(via: &Bot) -> Vec<(String, String)> {
    let list = via
        .cli(&["calls", "list", "-n", "100000"])
        .expect("voxbridge calls list");
    list.lines()
        .skip(1)
        .filter_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            // STARTED CALL-ID SECONDS END DTMF NODE DIRECTION FROM, where
            // DTMF may be empty: NODE is the third word from the end.
            let node = words.len().checked_sub(3).and_then(|i| words.get(i))?;
            Some((words.get(1)?.to_string(), node.to_string()))
        })
        .collect()
}

/// Each call sipp completed has exactly one call record, on one node, in
/// the shared database; the records per node.
fn one_record_each(via: &Bot, done: &HashMap<u32, String>) -> HashMap<String, usize> {
    let mut owners: HashMap<String, Vec<String>> = HashMap::new();
    let mut per_node: HashMap<String, usize> = HashMap::new();
    for (id, node) in recorded(via) {
        *per_node.entry(node.clone()).or_default() += 1;
        owners.entry(id).or_default().push(node);
    }
    for (n, id) in done {
        let on = owners.get(id).cloned().unwrap_or_default();
        assert_eq!(
            on.len(),
            1,
            "call {n} ({id}) completed but has records on nodes {on:?}"
        );
    }
    per_node
}

/// Each call sipp completed has exactly one call log at the CRM, and no
/// idempotency key arrived twice. Waits for the outbox (a dead node's
/// claims end after [`LEASE`]); the number of call logs received.
fn one_call_log_each(crm: &RestCrm, done: &HashMap<u32, String>) -> usize {
    let call_ids = |crm: &RestCrm| -> HashMap<String, usize> {
        let mut per_call = HashMap::new();
        for body in crm.call_logs() {
            let id = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["call_id"].as_str().map(str::to_string))
                .unwrap_or_default();
            *per_call.entry(id).or_insert(0) += 1;
        }
        per_call
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut per_call = call_ids(crm);
    while done.values().any(|id| !per_call.contains_key(id)) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(200));
        per_call = call_ids(crm);
    }
    for (n, id) in done {
        assert_eq!(
            per_call.get(id).copied().unwrap_or(0),
            1,
            "call {n} ({id}) completed: call logs at the CRM"
        );
    }
    let keys = crm.call_logs_by_key();
    let twice: Vec<_> = keys.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "call logs delivered twice: {twice:?}");
    assert!(
        !keys.contains_key(&None),
        "every call log carries its idempotency key"
    );
    keys.values().sum()
}

#[test]
fn a_node_killed_under_load_loses_only_its_calls_in_progress() {
    const CALLS: u32 = 600;
    const KILL_AT_CALL: u32 = 200;
    let mut cluster = start_cluster("cluster_kill", 3);
    let target = cluster.kamailio.addr().to_string();
    let started = Instant::now();
    let (dir, sipp) = callers("cluster_kill_sipp", target, CALLS);
    // Call 200 starts 10 s into the run at 20 calls/s.
    thread::sleep(Duration::from_millis(u64::from(KILL_AT_CALL * 1000 / RATE)));
    cluster.nodes[1].kill();
    let killed_at = started.elapsed();
    let run = sipp.join().expect("sipp thread");
    let done = done_calls(&dir);
    let stats = run.stats.as_ref().expect("sipp wrote its stats");
    assert_eq!(stats.created, u64::from(CALLS), "{}", run.describe());

    // Kamailio takes a node out when an INVITE to it times out
    // (fr_timer, 2 s) or a probe goes unanswered (every 2 s): after that
    // window, calls must get through.
    let window_calls = KILL_AT_CALL + 4 * RATE;
    let after: Vec<u32> = (window_calls + 1..=CALLS).collect();
    let after_ok = after.iter().filter(|n| done.contains_key(n)).count();
    let lost: Vec<u32> = (1..=window_calls)
        .filter(|n| !done.contains_key(n))
        .collect();
    let failed_after: Vec<u32> = after
        .iter()
        .copied()
        .filter(|n| !done.contains_key(n))
        .collect();
    let per_node = one_record_each(&cluster.nodes[0], &done);
    let logs = one_call_log_each(&cluster.crm, &done);
    let klog = cluster.kamailio.log();
    // sipp's Call-IDs start with the call number: the calls Kamailio had
    // to move off the dead node.
    let moved: Vec<u32> = klog
        .lines()
        .filter(|l| l.contains("on the next node"))
        .filter_map(|l| l.split("trying INVITE ").nth(1))
        .filter_map(|rest| rest.split('-').next()?.parse().ok())
        .collect();
    let marked = klog.matches("marked inactive").count();
    println!(
        "cluster: {CALLS} calls at {RATE}/s through Kamailio to 3 nodes, node 2 killed at {:.1} s \
         (call {KILL_AT_CALL}); completed {} of {CALLS}; lost up to the end of the window (call \
         {window_calls}): {} {lost:?}; after it: {after_ok} of {} ({:.2} %); records per node \
         (shared PostgreSQL) {per_node:?}; call logs at the CRM {logs}; Kamailio marked a node \
         inactive {marked} times and moved calls {moved:?} \
         to another node",
        killed_at.as_secs_f64(),
        done.len(),
        lost.len(),
        after.len(),
        100.0 * after_ok as f64 / after.len() as f64,
    );
    assert!(
        after_ok * 100 >= after.len() * 99,
        "only {after_ok} of {} calls after the window succeeded (failed: {failed_after:?})\n{}\nkamailio:\n{}",
        after.len(),
        run.describe(),
        tail(&klog, 30)
    );
    // The calls the dead node had are the only losses: at 20 calls/s
    // and 2 s per call a node holds about 14 at a time.
    assert!(
        lost.len() <= 30,
        "{} calls lost around the kill: {lost:?}\nkamailio:\n{}",
        lost.len(),
        tail(&klog, 30)
    );
    // After the window no INVITE goes to the dead node any more.
    assert!(
        moved.iter().all(|&n| n <= window_calls),
        "Kamailio still sent calls to the dead node after the window: {moved:?}"
    );
    for (i, node) in cluster.nodes.iter().enumerate() {
        if i != 1 {
            assert!(
                !node.log().contains("panicked"),
                "{}",
                tail(&node.log(), 30)
            );
        }
    }
}

#[test]
fn a_rolling_restart_under_load_fails_no_call() {
    const CALLS: u32 = 600;
    let mut cluster = start_cluster("cluster_roll", 3);
    let target = cluster.kamailio.addr().to_string();
    let (dir, sipp) = callers("cluster_roll_sipp", target, CALLS);
    let mut restarts = Vec::new();
    thread::sleep(Duration::from_secs(4));
    for i in 0..2 {
        let node = &mut cluster.nodes[i];
        let t = Instant::now();
        node.terminate();
        let code = node.wait_exit(Duration::from_secs(30));
        assert_eq!(code, Some(0), "node {} drains and exits", i + 1);
        let drained = t.elapsed();
        node.restart().expect("node starts again on its port");
        restarts.push((i + 1, drained));
        // Back in the rotation after its next probe (every 2 s).
        thread::sleep(Duration::from_secs(5));
    }
    let run = sipp.join().expect("sipp thread");
    let done = done_calls(&dir);
    let stats = run.stats.as_ref().expect("sipp wrote its stats");
    let per_node = one_record_each(&cluster.nodes[2], &done);
    let logs = one_call_log_each(&cluster.crm, &done);
    println!(
        "rolling restart: {CALLS} calls at {RATE}/s; nodes drained and restarted in turn \
         (node, drain time) {restarts:?}; sipp: {} successful, {} failed; records per node \
         (shared PostgreSQL) {per_node:?}; call logs at the CRM {logs}",
        stats.successful, stats.failed
    );
    assert_eq!(stats.created, u64::from(CALLS), "{}", run.describe());
    assert_eq!(stats.failed, 0, "{}", run.describe());
    assert_eq!(stats.successful, u64::from(CALLS), "{}", run.describe());
    assert_eq!(done.len(), CALLS as usize, "sipp logged every call's end");
    for node in &cluster.nodes {
        let log = node.log();
        assert!(!log.contains("panicked"), "{}", tail(&log, 30));
    }
}
