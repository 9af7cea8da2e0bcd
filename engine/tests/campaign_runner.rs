//! Campaigns in simulated time: the real store, scheduler and runner with
//! a scripted dialler, tokio's clock paused so hours of campaign run in
//! moments. What is asserted is what the dialler saw: how many calls at
//! once, how many started in any second, which numbers, when retries came.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use voxbridge_engine::campaign::dnc::Dnc;
use voxbridge_engine::campaign::manager::Manager;
use voxbridge_engine::campaign::runner::{Clock, Deps};
use voxbridge_engine::campaign::store::{RunState, Store};
use voxbridge_engine::dialing::{DialOutcome, DialRequest, Dialer, Disposition, ScriptResult};
use voxbridge_engine::metrics::Metrics;

/// One call the dialler was handed.
#[derive(Debug, Clone)]
struct Seen {
    contact: String,
    attempt: u32,
    number: String,
    started: Timestamp,
    ended: Timestamp,
}

/// How a contact's attempt ends and how long the call lasts.
type Rule = Box<dyn Fn(&DialRequest) -> (Disposition, Duration) + Send + Sync>;

/// A dialler whose outcome and call length come from a rule per contact;
/// it records what it saw against the campaign clock.
struct Scripted {
    clock: Clock,
    rule: Rule,
    seen: Mutex<Vec<Seen>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    /// Calls in flight may not exceed this at any moment (the capacity the
    /// test gave the campaign), checked as each call starts.
    cap: Option<Arc<AtomicUsize>>,
    over_cap: AtomicUsize,
}

#[async_trait]
impl Dialer for Scripted {
    async fn dial(&self, request: DialRequest) -> DialOutcome {
        let started = self.clock.now();
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        if let Some(cap) = &self.cap {
            if now > cap.load(Ordering::SeqCst) {
                self.over_cap.fetch_add(1, Ordering::SeqCst);
            }
        }
        let (disposition, length) = (self.rule)(&request);
        tokio::time::sleep(length).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.seen.lock().unwrap().push(Seen {
            contact: request.contact_id.clone(),
            attempt: request.attempt,
            number: request.number.clone(),
            started,
            ended: self.clock.now(),
        });
        let answered = disposition == Disposition::Answered;
        DialOutcome {
            disposition,
            sip_status: Some(match disposition {
                Disposition::Answered => 200,
                Disposition::Busy => 486,
                Disposition::NoAnswer => 487,
                _ => 503,
            }),
            script: answered.then(|| ScriptResult {
                call_id: format!("call-{}-{}", request.contact_id, request.attempt),
                intents: vec!["confirm".into()],
                ..ScriptResult::default()
            }),
        }
    }
}

struct Setup {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    store: Arc<Store>,
    manager: Manager,
    dialer: Arc<Scripted>,
}

fn setup(
    start: &str,
    rule: impl Fn(&DialRequest) -> (Disposition, Duration) + Send + Sync + 'static,
    capacity: Arc<AtomicUsize>,
    check_cap: bool,
) -> Setup {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().to_path_buf();
    let store = Arc::new(Store::open(&path.join("campaigns.db")).expect("store"));
    let clock = Clock::starting_at(start.parse().expect("time"));
    let dialer = Arc::new(Scripted {
        clock,
        rule: Box::new(rule),
        seen: Mutex::new(Vec::new()),
        in_flight: AtomicUsize::new(0),
        max_in_flight: AtomicUsize::new(0),
        cap: check_cap.then(|| capacity.clone()),
        over_cap: AtomicUsize::new(0),
    });
    let cap = capacity.clone();
    let deps = Deps {
        store: store.clone(),
        dnc: Arc::new(Dnc::load(store.clone()).expect("dnc")),
        dialer: dialer.clone(),
        outbox: None,
        // What the engine reports: `calls.max_calls` less its inbound calls.
        capacity: Arc::new(move || cap.load(Ordering::SeqCst)),
        metrics: Arc::new(Metrics::default()),
        clock,
    };
    Setup {
        _dir: dir,
        dir: path,
        store,
        manager: Manager::new(deps, None),
        dialer,
    }
}

fn write_campaign(dir: &Path, body: &str, rows: &[String], dnc: &[String]) -> PathBuf {
    let list = dir.join("list.csv");
    let mut csv = String::from("phone,id,time_zone,product\n");
    for r in rows {
        csv.push_str(r);
        csv.push('\n');
    }
    std::fs::write(&list, csv).expect("list");
    std::fs::write(dir.join("dnc.txt"), dnc.join("\n") + "\n").expect("dnc");
    let file = dir.join("campaign.yaml");
    std::fs::write(
        &file,
        format!(
            "name: sim\nscript: script.yaml\ncaller_id: \"+15550100\"\nlist: {{ csv: list.csv }}\ndnc: dnc.txt\n{body}"
        ),
    )
    .expect("campaign");
    file
}

/// Run until the campaign is done (bounded in simulated time).
async fn run_to_end(s: &Setup, file: &Path, limit: Duration) {
    s.manager.start(file).await.expect("start");
    let give_up = tokio::time::Instant::now() + limit;
    loop {
        let status = s.manager.status("sim").expect("status");
        if status.state == "done" {
            return;
        }
        assert!(
            tokio::time::Instant::now() < give_up,
            "not done in {limit:?} of simulated time: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The most starts in any one-second window.
fn max_per_second(seen: &[Seen]) -> usize {
    let mut starts: Vec<Timestamp> = seen.iter().map(|s| s.started).collect();
    starts.sort();
    let mut best = 0;
    for (i, t) in starts.iter().enumerate() {
        let end = *t + jiff::SignedDuration::from_secs(1);
        best = best.max(starts[i..].iter().take_while(|s| **s < end).count());
    }
    best
}

#[tokio::test(start_paused = true)]
async fn three_hundred_contacts_within_pacing_dnc_never_dialled_one_disposition_each() {
    let rows: Vec<String> = (0..300)
        .map(|i| format!("+1212555{i:04},c{i:03},UTC,kettle"))
        .collect();
    let dnc: Vec<String> = (0..300)
        .step_by(17)
        .map(|i| format!("+1212555{i:04}"))
        .collect();
    let rule = |r: &DialRequest| {
        let n: u32 = r.contact_id[1..].parse().unwrap();
        // Busy on the first try for every fifth contact, else answered;
        // calls last 3–40 s.
        let d = if n.is_multiple_of(5) && r.attempt == 1 {
            Disposition::Busy
        } else if n % 7 == 3 {
            Disposition::NoAnswer
        } else {
            Disposition::Answered
        };
        (d, Duration::from_secs(3 + u64::from(n % 38)))
    };
    let s = setup(
        "2026-12-01T10:00:00Z",
        rule,
        Arc::new(AtomicUsize::new(1000)),
        false,
    );
    let file = write_campaign(
        &s.dir,
        "pacing: { max_concurrent: 20, calls_per_second: 5 }\nretries: { busy: [10m, 1h], no_answer: [2h], max_attempts: 3 }\n",
        &rows,
        &dnc,
    );
    run_to_end(&s, &file, Duration::from_secs(6 * 3600)).await;
    let seen = s.dialer.seen.lock().unwrap().clone();
    assert!(s.dialer.max_in_flight.load(Ordering::SeqCst) <= 20);
    assert_eq!(
        s.dialer.max_in_flight.load(Ordering::SeqCst),
        20,
        "the limit was reached"
    );
    assert!(
        max_per_second(&seen) <= 5,
        "{} starts in one second",
        max_per_second(&seen)
    );
    assert!(
        seen.iter().all(|c| !dnc.contains(&c.number)),
        "a DNC number reached the dialler"
    );
    // Every contact ends with exactly one disposition.
    let stored = s.store.load("sim").expect("load");
    assert_eq!(stored.len(), 300);
    let mut finals: BTreeMap<&str, usize> = BTreeMap::new();
    for c in &stored {
        let d = c
            .disposition
            .unwrap_or_else(|| panic!("{} has no disposition", c.contact.id));
        *finals.entry(d.label()).or_default() += 1;
        if dnc.contains(&c.contact.number) {
            assert_eq!(d, Disposition::DoNotCall);
            assert_eq!(c.attempts, 0);
        }
    }
    assert_eq!(finals["do_not_call"], dnc.len());
    assert_eq!(finals.values().sum::<usize>(), 300);
    // Retries at their times: busy → 10 min after; no answer → 2 h after.
    let by_attempt: HashMap<(String, u32), &Seen> = seen
        .iter()
        .map(|c| ((c.contact.clone(), c.attempt), c))
        .collect();
    assert_eq!(by_attempt.len(), seen.len(), "an attempt was dialled twice");
    let mut retries = 0;
    for c in &seen {
        if c.attempt < 2 {
            continue;
        }
        retries += 1;
        let before = by_attempt[&(c.contact.clone(), c.attempt - 1)];
        let n: u32 = c.contact[1..].parse().unwrap();
        let delay = if n.is_multiple_of(5) && c.attempt == 2 {
            600
        } else {
            7200
        };
        let gap = c.started.duration_since(before.ended).as_secs_f64();
        // At the delay, plus at most the pacing queue's wait.
        assert!(
            gap >= delay as f64 && gap < delay as f64 + 30.0,
            "{} attempt {}: {gap} s after the previous one, want {delay} s",
            c.contact,
            c.attempt
        );
    }
    assert!(retries > 50, "{retries} retries");
    let status = s.manager.status("sim").expect("status");
    assert_eq!(status.state, "done");
    assert_eq!(status.attempts as usize, seen.len());
}

#[tokio::test(start_paused = true)]
async fn contacts_outside_their_calling_hours_wait_for_the_window() {
    // Tuesday 10:00 UTC: 05:00 in New York, 10:00 in London.
    let rows = vec![
        "+12125550001,ny1,,x".to_string(),
        "+12125550002,ny2,America/New_York,x".to_string(),
        "+442071234567,ldn,,x".to_string(),
        "+12125550003,la,America/Los_Angeles,x".to_string(),
    ];
    let s = setup(
        "2026-12-01T10:00:00Z",
        |_| (Disposition::Answered, Duration::from_secs(30)),
        Arc::new(AtomicUsize::new(100)),
        false,
    );
    let file = write_campaign(
        &s.dir,
        "hours: { days: mon-fri, from: \"09:00\", to: \"20:00\" }\npacing: { max_concurrent: 5, calls_per_second: 5 }\n",
        &rows,
        &[],
    );
    run_to_end(&s, &file, Duration::from_secs(24 * 3600)).await;
    let seen = s.dialer.seen.lock().unwrap().clone();
    let start = |id: &str| seen.iter().find(|c| c.contact == id).unwrap().started;
    assert_eq!(
        start("ldn"),
        "2026-12-01T10:00:00Z".parse::<Timestamp>().unwrap()
    );
    for id in ["ny1", "ny2"] {
        assert_eq!(
            start(id),
            "2026-12-01T14:00:00Z".parse::<Timestamp>().unwrap(),
            "{id}: 09:00 New York"
        );
    }
    assert_eq!(
        start("la"),
        "2026-12-01T17:00:00Z".parse::<Timestamp>().unwrap(),
        "09:00 Los Angeles"
    );
}

#[tokio::test(start_paused = true)]
async fn inbound_calls_take_capacity_first() {
    let rows: Vec<String> = (0..60)
        .map(|i| format!("+1212555{i:04},c{i:03},UTC,x"))
        .collect();
    // The box has room for 4 more calls at first, then inbound traffic
    // leaves it 1, then none for a minute, then 6.
    let capacity = Arc::new(AtomicUsize::new(4));
    let s = setup(
        "2026-12-01T10:00:00Z",
        |_| (Disposition::Answered, Duration::from_secs(5)),
        capacity.clone(),
        true,
    );
    let file = write_campaign(
        &s.dir,
        "pacing: { max_concurrent: 20, calls_per_second: 10 }\n",
        &rows,
        &[],
    );
    s.manager.start(&file).await.expect("start");
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(s.dialer.max_in_flight.load(Ordering::SeqCst), 4);
    capacity.store(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(10)).await;
    capacity.store(0, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(10)).await;
    let during_zero = s.dialer.seen.lock().unwrap().len();
    tokio::time::sleep(Duration::from_secs(50)).await;
    assert_eq!(
        s.dialer.seen.lock().unwrap().len(),
        during_zero,
        "no attempt started while the engine was full"
    );
    assert_eq!(s.dialer.in_flight.load(Ordering::SeqCst), 0);
    capacity.store(6, Ordering::SeqCst);
    let give_up = tokio::time::Instant::now() + Duration::from_secs(3600);
    while s.manager.status("sim").expect("status").state != "done" {
        assert!(tokio::time::Instant::now() < give_up);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert_eq!(
        s.dialer.over_cap.load(Ordering::SeqCst),
        0,
        "a call started over capacity"
    );
    assert!(s.dialer.max_in_flight.load(Ordering::SeqCst) <= 6);
}

#[tokio::test(start_paused = true)]
async fn pause_stops_new_attempts_and_resume_goes_on() {
    let rows: Vec<String> = (0..40)
        .map(|i| format!("+1212555{i:04},c{i:03},UTC,x"))
        .collect();
    let s = setup(
        "2026-12-01T10:00:00Z",
        |_| (Disposition::Answered, Duration::from_secs(2)),
        Arc::new(AtomicUsize::new(100)),
        false,
    );
    let file = write_campaign(
        &s.dir,
        "pacing: { max_concurrent: 2, calls_per_second: 1 }\n",
        &rows,
        &[],
    );
    s.manager.start(&file).await.expect("start");
    tokio::time::sleep(Duration::from_secs(5)).await;
    s.manager
        .control("sim", voxbridge_engine::campaign::runner::Control::Pause)
        .expect("pause");
    tokio::time::sleep(Duration::from_secs(5)).await;
    let paused_at = s.dialer.seen.lock().unwrap().len();
    assert_eq!(s.manager.status("sim").expect("status").state, "paused");
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(
        s.dialer.seen.lock().unwrap().len(),
        paused_at,
        "dialled while paused"
    );
    assert_eq!(
        s.store.campaign("sim").unwrap().unwrap().state,
        RunState::Paused
    );
    s.manager
        .control("sim", voxbridge_engine::campaign::runner::Control::Resume)
        .expect("resume");
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert!(s.dialer.seen.lock().unwrap().len() > paused_at);
    s.manager
        .control("sim", voxbridge_engine::campaign::runner::Control::Stop)
        .expect("stop");
    tokio::time::sleep(Duration::from_secs(5)).await;
    let stopped_at = s.dialer.seen.lock().unwrap().len();
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(s.dialer.seen.lock().unwrap().len(), stopped_at);
    let status = s.manager.status("sim").expect("status");
    assert_eq!(status.state, "stopped");
    assert!(stopped_at < 40);
}
