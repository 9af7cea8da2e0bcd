//! One storage test suite, run on both outbox backends: SQLite (a temp
//! file) and PostgreSQL (a throwaway cluster from test-support, started once
//! for this binary, a database per test). The statements are driven
//! directly with simulated time, several connections standing for several
//! workers: migrations, claims and leases, order per customer, fencing of a
//! worker whose lease ran out, release, the operator's list/retry/purge,
//! and threads racing for the same records.
//!
//! SQLite alone: a file created before migrations existed opens as it is.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use voxbridge_crm::model::{CallLog, Write};
use voxbridge_crm::outbox::admin::{ListFilter, Selection};
use voxbridge_crm::outbox::store::{NewRecord, Outcome, Store};
use voxbridge_crm::outbox::{idempotency_key, open_store, Durability, RecordState};
use voxbridge_crm::secret::SecretSource;
use voxbridge_crm::storage::{Backend, StorageConfig};

const T0: i64 = 1_795_000_000_000;
const LEASE: Duration = Duration::from_secs(10);

/// A place for one test's outbox; keeps its temp folder alive.
struct Place {
    backend: Backend,
    _dir: Option<tempfile::TempDir>,
}

impl Place {
    fn store(&self) -> Box<dyn Store> {
        open_store(&self.backend, Durability::Normal).expect("open store")
    }
}

fn sqlite(_name: &str) -> Place {
    let dir = tempfile::tempdir().expect("temp dir");
    Place {
        backend: Backend::Sqlite(dir.path().join("outbox.sqlite")),
        _dir: Some(dir),
    }
}

fn postgres(name: &str) -> Place {
    let server = voxbridge_test_support::postgres::shared().unwrap_or_else(|e| panic!("{e:#}"));
    let db = server.create_database(name).expect("createdb");
    let storage = StorageConfig {
        url: Some(server.url(&db)),
        password: Some(SecretSource::File(server.password_file())),
    };
    Place {
        backend: storage.backend(PathBuf::new()).expect("backend"),
        _dir: None,
    }
}

fn call(i: usize, customers: usize) -> (String, Write) {
    let w = Write::CallLog(CallLog {
        call_id: format!("call-{i:04}"),
        customer_id: Some(format!("C{:02}", i % customers)),
        started_at_ms: T0,
        ended_at_ms: T0 + 60_000,
        disposition: "resolved".into(),
        ..CallLog::default()
    });
    (idempotency_key(&w, 0), w)
}

fn seed(store: &mut dyn Store, records: usize, customers: usize) -> Vec<i64> {
    let writes: Vec<(String, Write)> = (0..records).map(|i| call(i, customers)).collect();
    let new: Vec<NewRecord<'_>> = writes
        .iter()
        .map(|(key, write)| NewRecord { key, write })
        .collect();
    store.insert(&new, T0).expect("insert")
}

fn delivered(id: i64) -> (i64, Outcome) {
    (
        id,
        Outcome::Delivered {
            remote_id: format!("R{id}"),
            system: "crm".into(),
        },
    )
}

fn schema_is_versioned(place: Place) {
    let mut a = place.store();
    assert_eq!(a.schema_version().expect("version"), 2);
    seed(a.as_mut(), 3, 3);
    // A second connection (another process) migrates nothing again.
    let mut b = place.store();
    assert_eq!(b.schema_version().expect("version"), 2);
    assert_eq!(b.counts().expect("counts").pending, 3);
}

fn inserts_are_idempotent_by_key(place: Place) {
    let mut s = place.store();
    let first = seed(s.as_mut(), 5, 5);
    let again = seed(s.as_mut(), 5, 5);
    assert_eq!(first, again, "the same keys give the same ids");
    assert_eq!(s.counts().expect("counts").pending, 5);
}

fn a_claim_is_exclusive_until_its_lease_ends(place: Place) {
    let mut a = place.store();
    let mut b = place.store();
    seed(a.as_mut(), 6, 6);
    let got = a.claim("a", T0, LEASE, 10).expect("claim");
    assert_eq!(got.len(), 6);
    assert!(got.windows(2).all(|w| w[0].id < w[1].id), "oldest first");
    assert!(b.claim("b", T0 + 1, LEASE, 10).expect("claim").is_empty());
    // Worker a died: after its lease, b gets every record.
    let later = T0 + 10_001;
    assert_eq!(b.next_due().expect("next due"), Some(T0 + 10_000));
    let taken = b.claim("b", later, LEASE, 10).expect("claim");
    assert_eq!(taken.len(), 6);
    // a's late outcome no longer counts; b's does.
    a.complete("a", &[delivered(taken[0].id)], later)
        .expect("complete a");
    assert_eq!(a.counts().expect("counts").delivered, 0);
    b.complete("b", &[delivered(taken[0].id)], later)
        .expect("complete b");
    assert_eq!(b.counts().expect("counts").delivered, 1);
}

fn one_record_per_customer_in_flight_in_order(place: Place) {
    let mut a = place.store();
    let mut b = place.store();
    let ids = seed(a.as_mut(), 6, 2); // C00: ids 0,2,4  C01: 1,3,5
    let first = a.claim("a", T0, LEASE, 10).expect("claim");
    assert_eq!(
        first.iter().map(|c| c.id).collect::<Vec<_>>(),
        [ids[0], ids[1]]
    );
    // Nothing else is claimable while those two are in flight.
    assert!(b.claim("b", T0, LEASE, 10).expect("claim").is_empty());
    // C00's first fails and waits out a backoff: C00's next still waits.
    a.complete(
        "a",
        &[
            (
                ids[0],
                Outcome::Retry {
                    next_at: T0 + 5_000,
                    error: "HTTP 503".into(),
                    system: Some("crm".into()),
                    count: true,
                },
            ),
            delivered(ids[1]),
        ],
        T0,
    )
    .expect("complete");
    let next = b.claim("b", T0 + 1, LEASE, 10).expect("claim");
    assert_eq!(next.iter().map(|c| c.id).collect::<Vec<_>>(), [ids[3]]);
    assert_eq!(b.next_due().expect("next due"), Some(T0 + 5_000));
    let retried = b.claim("b", T0 + 5_000, LEASE, 10).expect("claim");
    assert_eq!(retried.iter().map(|c| c.id).collect::<Vec<_>>(), [ids[0]]);
    assert_eq!(retried[0].attempts, 1);
}

fn release_frees_a_workers_claims(place: Place) {
    let mut a = place.store();
    let mut b = place.store();
    seed(a.as_mut(), 4, 4);
    assert_eq!(a.claim("a", T0, LEASE, 2).expect("claim").len(), 2);
    assert_eq!(a.release("a").expect("release"), 2);
    assert_eq!(b.claim("b", T0, LEASE, 10).expect("claim").len(), 4);
    assert_eq!(a.release("a").expect("release"), 0, "b's claims stay");
}

fn dead_letters_list_retry_and_purge(place: Place) {
    let mut s = place.store();
    let ids = seed(s.as_mut(), 4, 4);
    let claimed = s.claim("w", T0, LEASE, 10).expect("claim");
    assert_eq!(claimed.len(), 4);
    s.complete(
        "w",
        &[
            delivered(ids[0]),
            (
                ids[1],
                Outcome::Dead {
                    error: "HTTP 422 for +8613800138000".into(),
                    system: Some("crm".into()),
                },
            ),
            (
                ids[2],
                Outcome::Dead {
                    error: "HTTP 422".into(),
                    system: Some("crm".into()),
                },
            ),
        ],
        T0,
    )
    .expect("complete");
    let dead = s
        .list(&ListFilter {
            state: Some(RecordState::Dead),
            limit: 0,
        })
        .expect("list");
    assert_eq!(
        dead.iter().map(|e| e.id).collect::<Vec<_>>(),
        [ids[2], ids[1]]
    );
    assert!(
        !dead[1]
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("13800138000"),
        "numbers masked: {:?}",
        dead[1].last_error
    );
    assert_eq!(
        s.list(&ListFilter {
            state: None,
            limit: 2
        })
        .expect("list")
        .len(),
        2
    );
    assert_eq!(
        s.retry(&Selection::Ids(vec![ids[1]]), T0).expect("retry"),
        1
    );
    assert_eq!(s.purge(&Selection::AllDead).expect("purge"), 1);
    assert_eq!(
        s.purge(&Selection::Ids(vec![ids[3]])).expect("purge"),
        0,
        "pending stays"
    );
    assert_eq!(s.purge(&Selection::AllDelivered).expect("purge"), 1);
    let c = s.counts().expect("counts");
    assert_eq!((c.pending, c.delivered, c.dead), (2, 0, 0));
}

/// Four threads on four connections deliver 400 records of 10 customers:
/// each record is claimed once, and each customer's records are delivered
/// in the order they were written.
fn racing_workers_take_each_record_once(place: Place) {
    let ids = seed(place.store().as_mut(), 400, 10);
    let customer_of: HashMap<i64, usize> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (*id, i % 10))
        .collect();
    let log: Arc<Mutex<Vec<(i64, usize)>>> = Arc::default();
    let place = Arc::new(place);
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let place = Arc::clone(&place);
            let log = Arc::clone(&log);
            let customer_of = customer_of.clone();
            std::thread::spawn(move || {
                let mut s = place.store();
                let name = format!("w{w}");
                let mut idle = 0;
                while idle < 50 {
                    let got = s.claim(&name, T0, LEASE, 3).expect("claim");
                    if got.is_empty() {
                        idle += 1;
                        std::thread::sleep(Duration::from_millis(2));
                        continue;
                    }
                    idle = 0;
                    let done: Vec<_> = got.iter().map(|c| delivered(c.id)).collect();
                    {
                        // Delivered while claimed: the log is the target.
                        let mut log = log.lock().expect("lock");
                        for c in &got {
                            log.push((c.id, customer_of[&c.id]));
                        }
                    }
                    s.complete(&name, &done, T0).expect("complete");
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("worker");
    }
    let log = log.lock().expect("lock");
    let unique: HashSet<i64> = log.iter().map(|(id, _)| *id).collect();
    assert_eq!(log.len(), 400, "each record delivered once");
    assert_eq!(unique.len(), 400);
    let mut per_customer: HashMap<usize, Vec<i64>> = HashMap::new();
    for (id, c) in log.iter() {
        per_customer.entry(*c).or_default().push(*id);
    }
    for (c, seq) in &per_customer {
        assert!(seq.windows(2).all(|w| w[0] < w[1]), "customer {c}: {seq:?}");
    }
    assert_eq!(place.store().counts().expect("counts").delivered, 400);
}

macro_rules! suite {
    ($backend:ident) => {
        mod $backend {
            macro_rules! case {
                ($name:ident) => {
                    #[test]
                    fn $name() {
                        super::$name(super::$backend(stringify!($name)));
                    }
                };
            }
            case!(schema_is_versioned);
            case!(inserts_are_idempotent_by_key);
            case!(a_claim_is_exclusive_until_its_lease_ends);
            case!(one_record_per_customer_in_flight_in_order);
            case!(release_frees_a_workers_claims);
            case!(dead_letters_list_retry_and_purge);
            case!(racing_workers_take_each_record_once);
        }
    };
}

suite!(sqlite);
suite!(postgres);

/// A file the outbox made before schema versions existed (the table as it
/// was, no `schema_version`) opens with its records, as version 2.
#[test]
fn sqlite_file_from_before_migrations_is_accepted() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("outbox.sqlite");
    {
        let conn = rusqlite::Connection::open(&path).expect("open");
        conn.execute_batch(
            "CREATE TABLE outbox(
                id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL UNIQUE,
                kind TEXT NOT NULL, order_key TEXT NOT NULL, payload TEXT NOT NULL,
                state TEXT NOT NULL DEFAULT 'pending', system TEXT,
                attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at INTEGER NOT NULL,
                last_error TEXT, remote_id TEXT, created_at INTEGER NOT NULL, delivered_at INTEGER);
             CREATE INDEX outbox_state ON outbox(state, id);
             CREATE INDEX outbox_order ON outbox(order_key, state, id);",
        )
        .expect("old schema");
        let (key, write) = call(7, 1);
        conn.execute(
            "INSERT INTO outbox(key, kind, order_key, payload, next_attempt_at, created_at)
             VALUES (?1, 'call_log', ?2, ?3, ?4, ?4)",
            rusqlite::params![
                key,
                write.order_key(),
                serde_json::to_string(&write).expect("json"),
                T0
            ],
        )
        .expect("old row");
    }
    let mut s = open_store(&Backend::Sqlite(path.clone()), Durability::Full).expect("opens");
    assert_eq!(s.schema_version().expect("version"), 2);
    let got = s.claim("w", T0, LEASE, 10).expect("claim");
    assert_eq!(got.len(), 1);
    assert!(got[0].write.is_ok(), "the old record reads back");
    let conn = rusqlite::Connection::open(&path).expect("open");
    let steps: Vec<(u32, String)> = conn
        .prepare(
            "SELECT version, name FROM schema_version WHERE component = 'outbox' ORDER BY version",
        )
        .expect("prepare")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(steps.iter().map(|s| s.0).collect::<Vec<_>>(), [1, 2]);
}

/// The password reaches PostgreSQL from the file named in the config; a
/// wrong one is refused with a message that does not quote it.
#[test]
fn postgres_password_comes_from_the_named_file() {
    let server = voxbridge_test_support::postgres::shared().unwrap_or_else(|e| panic!("{e:#}"));
    let db = server.create_database("password").expect("createdb");
    let dir = tempfile::tempdir().expect("temp dir");
    let wrong = dir.path().join("wrong");
    std::fs::write(&wrong, "not-the-password\n").expect("write");
    let storage = StorageConfig {
        url: Some(server.url(&db)),
        password: Some(SecretSource::File(wrong)),
    };
    let backend = storage.backend(PathBuf::new()).expect("backend");
    let err = match open_store(&backend, Durability::Full) {
        Ok(_) => panic!("a wrong password was accepted"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("password authentication failed"), "{err}");
    assert!(!err.contains("not-the-password"), "{err}");
}
