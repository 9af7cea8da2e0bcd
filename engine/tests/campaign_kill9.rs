//! Durability: a campaign process is killed with SIGKILL in the middle of
//! calling, started again, and runs to the end. Afterwards each contact's
//! attempts are numbered once each, no (contact, attempt) was handed to
//! the dialler twice, the attempts that were in flight at the kill count
//! as `failed`, and every attempt's result is in the CRM outbox.
//!
//! The campaign process is this test binary run again with `--ignored
//! --exact child_campaign_process` and `VB_CAMPAIGN_DIR` naming its folder.

use std::collections::{HashMap, HashSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use voxbridge_crm::outbox::{Outbox, OutboxConfig};
use voxbridge_engine::campaign::dnc::Dnc;
use voxbridge_engine::campaign::manager::Manager;
use voxbridge_engine::campaign::runner::{Clock, Deps};
use voxbridge_engine::campaign::store::Store;
use voxbridge_engine::dialing::{DialOutcome, DialRequest, Dialer, Disposition, ScriptResult};

const CONTACTS: usize = 40;

/// Logs every call it is handed (one line, appended, before the call
/// "rings") and answers odd contacts, busy on the first try for even ones.
struct Logging {
    log: Mutex<std::fs::File>,
}

#[async_trait]
impl Dialer for Logging {
    async fn dial(&self, r: DialRequest) -> DialOutcome {
        {
            let mut f = self.log.lock().unwrap();
            writeln!(f, "{} {}", r.contact_id, r.attempt).unwrap();
        }
        tokio::time::sleep(Duration::from_millis(400)).await;
        let n: usize = r.contact_id[1..].parse().unwrap();
        let busy = n.is_multiple_of(2) && r.attempt == 1;
        DialOutcome {
            disposition: if busy {
                Disposition::Busy
            } else {
                Disposition::Answered
            },
            sip_status: Some(if busy { 486 } else { 200 }),
            script: (!busy).then(|| ScriptResult {
                call_id: format!("call-{}-{}", r.contact_id, r.attempt),
                tasks: vec!["send the brochure".into()],
                ..ScriptResult::default()
            }),
        }
    }
}

#[test]
#[ignore = "the campaign process of the kill -9 test, run by it"]
fn child_campaign_process() {
    let dir = PathBuf::from(std::env::var("VB_CAMPAIGN_DIR").expect("VB_CAMPAIGN_DIR"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = Arc::new(Store::open(&dir.join("campaigns.db")).unwrap());
        let outbox = Arc::new(
            Outbox::open(OutboxConfig {
                path: dir.join("outbox.sqlite"),
                ..OutboxConfig::default()
            })
            .unwrap(),
        );
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("dialled.log"))
            .unwrap();
        let deps = Deps {
            store: store.clone(),
            dnc: Arc::new(Dnc::load(store.clone()).unwrap()),
            dialer: Arc::new(Logging {
                log: Mutex::new(log),
            }),
            outbox: Some(outbox),
            capacity: Arc::new(|| 100),
            metrics: Arc::default(),
            clock: Clock::system(),
        };
        let manager = Manager::new(deps, None);
        if manager.resume_stored().unwrap() == 0 {
            manager.start(&dir.join("campaign.yaml")).await.unwrap();
        }
        let give_up = Instant::now() + Duration::from_secs(60);
        while manager.status("durable").unwrap().state != "done" {
            assert!(Instant::now() < give_up, "campaign not done in 60 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
}

fn spawn_child(dir: &Path) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "child_campaign_process",
            "--nocapture",
        ])
        .env("VB_CAMPAIGN_DIR", dir)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the campaign process")
}

fn dialled(dir: &Path) -> Vec<(String, u32)> {
    std::fs::read_to_string(dir.join("dialled.log"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (c, a) = l.split_once(' ')?;
            Some((c.to_string(), a.parse().ok()?))
        })
        .collect()
}

#[test]
fn kill_9_mid_campaign_then_restart_counts_each_attempt_once_and_loses_no_result() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut csv = String::from("phone,id\n");
    for i in 0..CONTACTS {
        csv.push_str(&format!("+1212555{i:04},c{i:02}\n"));
    }
    std::fs::write(dir.join("list.csv"), csv).unwrap();
    std::fs::write(
        dir.join("campaign.yaml"),
        "name: durable\nscript: s.yaml\ncaller_id: \"+15550100\"\nlist: { csv: list.csv }\n\
         pacing: { max_concurrent: 6, calls_per_second: 20 }\nretries: { busy: [1s], failed: [1s], max_attempts: 3 }\n",
    )
    .unwrap();

    let mut child = spawn_child(dir);
    let give_up = Instant::now() + Duration::from_secs(60);
    while dialled(dir).len() < 15 {
        assert!(
            Instant::now() < give_up,
            "the campaign process dialled nothing"
        );
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the campaign process ended early: {status}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let before_kill = dialled(dir).len();

    let mut child = spawn_child(dir);
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "the restarted campaign process failed: {status}"
    );

    // No (contact, attempt) was dialled twice, across both processes.
    let calls = dialled(dir);
    let unique: HashSet<_> = calls.iter().cloned().collect();
    assert_eq!(
        unique.len(),
        calls.len(),
        "an attempt was dialled twice: {calls:?}"
    );
    assert!(calls.len() > before_kill, "the restart dialled nothing");

    let store = Store::open(&dir.join("campaigns.db")).unwrap();
    let attempts = store.attempts("durable").unwrap();
    let mut per_contact: HashMap<&str, Vec<u32>> = HashMap::new();
    for a in &attempts {
        per_contact.entry(&a.contact).or_default().push(a.attempt);
        assert!(
            a.ended.is_some() && a.disposition.is_some(),
            "{a:?} has no result"
        );
        assert!(a.reported, "{a:?} not reported to the outbox");
    }
    for (contact, mut numbers) in per_contact {
        numbers.sort();
        let want: Vec<u32> = (1..=numbers.len() as u32).collect();
        assert_eq!(numbers, want, "{contact}: attempts counted once each");
    }
    // Every dial had its row first (a row without a dial is an attempt
    // committed just before the kill: it counts, as failed).
    let rows: HashSet<(String, u32)> = attempts
        .iter()
        .map(|a| (a.contact.clone(), a.attempt))
        .collect();
    assert!(unique.is_subset(&rows), "a dial without its attempt row");
    let recovered: Vec<_> = attempts.iter().filter(|a| a.recovered).collect();
    assert!(!recovered.is_empty(), "the kill left no call in flight");
    for a in &recovered {
        assert_eq!(a.disposition, Some(Disposition::Failed), "{a:?}");
    }
    let contacts = store.load("durable").unwrap();
    assert_eq!(contacts.len(), CONTACTS);
    assert!(
        contacts.iter().all(|c| c.disposition.is_some()),
        "a contact has no disposition"
    );

    // Every attempt's call log (key …:0) and every task is in the outbox.
    let conn = rusqlite::Connection::open(dir.join("outbox.sqlite")).unwrap();
    let keys: HashSet<String> = conn
        .prepare("SELECT key FROM outbox")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for a in &attempts {
        let key = format!("campaign:durable:{}:{}:0", a.contact, a.attempt);
        assert!(keys.contains(&key), "{key} missing from the outbox");
        if a.disposition == Some(Disposition::Answered) {
            let task = format!("campaign:durable:{}:{}:1", a.contact, a.attempt);
            assert!(keys.contains(&task), "{task} missing from the outbox");
        }
    }
}
