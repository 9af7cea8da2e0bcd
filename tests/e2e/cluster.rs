//! Three voxbridge nodes behind Kamailio's dispatcher, with the config we
//! ship (`deploy/kamailio/dispatcher.cfg`): a node killed mid-load loses
//! only the calls it had, Kamailio stops sending to it, and the calls after
//! go through the others; a rolling restart (SIGTERM, drain, start again,
//! one node after the other) under steady load fails no call. Every call
//! that completed has exactly one call record, on one node. 127.0.0.1
//! only; sipp is bounded by call count and a timeout.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use voxbridge_e2e::{
    free_port, run_sipp, scenario_dir, scratch_dir, tail, workspace_root, Bot, BotConfig, Kamailio,
    SippRun,
};

/// Calls per second, and how long each call lasts (sipp's pause).
const RATE: u32 = 20;
const HOLD_MS: u32 = 2000;

struct Cluster {
    kamailio: Kamailio,
    nodes: Vec<Bot>,
}

fn start_cluster(name: &str, nodes: usize) -> Cluster {
    let nodes: Vec<Bot> = (0..nodes)
        .map(|i| {
            Bot::start(
                &format!("{name}_node{}", i + 1),
                &BotConfig {
                    // Long enough for a call in progress to end by itself.
                    env: vec![("VOXBRIDGE_CALLS_DRAIN_TIMEOUT_SECS".into(), "15".into())],
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
    Cluster { kamailio, nodes }
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

/// Every Call-ID in the node's call records (read from its database file,
/// so a killed node's too).
fn recorded(node: &Bot) -> Vec<String> {
    let list = node
        .cli(&["calls", "list", "-n", "100000"])
        .expect("voxbridge calls list");
    list.lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(1).map(str::to_string))
        .collect()
}

/// Each call sipp completed has exactly one record, on exactly one node.
fn one_record_each(nodes: &[Bot], done: &HashMap<u32, String>) -> Vec<usize> {
    let mut owners: HashMap<String, Vec<usize>> = HashMap::new();
    let mut per_node = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        let ids = recorded(node);
        per_node.push(ids.len());
        for id in ids {
            owners.entry(id).or_default().push(i + 1);
        }
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
    let per_node = one_record_each(&cluster.nodes, &done);
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
         {per_node:?}; Kamailio marked a node inactive {marked} times and moved calls {moved:?} \
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
    let per_node = one_record_each(&cluster.nodes, &done);
    println!(
        "rolling restart: {CALLS} calls at {RATE}/s; nodes drained and restarted in turn \
         (node, drain time) {restarts:?}; sipp: {} successful, {} failed; records per node \
         {per_node:?}",
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
