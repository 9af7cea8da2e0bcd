//! One call-record test suite, run on both backends: SQLite (a temp file)
//! and PostgreSQL (a throwaway cluster from test-support, started once for
//! this binary, a database per test). Round trip of every column, numbered
//! migrations from an older schema, a database newer than the code refused,
//! the writer thread, two nodes writing into one database and read as one
//! (what `voxbridge calls list` shows), and — PostgreSQL alone — a writer
//! whose connection the server dropped reconnecting without losing records.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use voxbridge_crm::secret::SecretSource;
use voxbridge_crm::storage::migrate;
use voxbridge_crm::storage::{Backend, StorageConfig};
use voxbridge_engine::cdr::{self, CallRecord, CdrStore, CdrWriter, Direction, COMPONENT};
use voxbridge_engine::health::Component;
use voxbridge_engine::metrics::Metrics;
use voxbridge_engine::turn_latency::{TurnKind, TurnLatency};

/// A place for one test's records; keeps its temp folder alive.
struct Place {
    backend: Backend,
    /// The PostgreSQL database's name (for `psql`), if that is the backend.
    pg_db: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

impl Place {
    fn store(&self) -> Box<dyn CdrStore> {
        cdr::open_store(&self.backend).expect("open call records")
    }

    /// Apply only the first `n` migrations (a database an older voxbridge
    /// wrote), then run `sql` on it.
    fn at_version(&self, n: usize, sql: &str) {
        match &self.backend {
            Backend::Sqlite(path) => {
                let mut conn = rusqlite::Connection::open(path).expect("open");
                migrate::sqlite(&mut conn, COMPONENT, &cdr::sqlite::MIGRATIONS[..n], 1)
                    .expect("old schema");
                conn.execute_batch(sql).expect("old rows");
            }
            Backend::Postgres(target) => {
                let mut client = target.connect().expect("connect");
                migrate::postgres(&mut client, COMPONENT, &cdr::postgres::MIGRATIONS[..n], 1)
                    .expect("old schema");
                client.batch_execute(sql).expect("old rows");
            }
        }
    }

    fn sql(&self, sql: &str) {
        match (&self.backend, &self.pg_db) {
            (Backend::Sqlite(path), _) => rusqlite::Connection::open(path)
                .expect("open")
                .execute_batch(sql)
                .expect("sql"),
            (Backend::Postgres(_), Some(db)) => {
                let server = voxbridge_test_support::postgres::shared().expect("server");
                server.psql(db, sql).expect("psql");
            }
            (Backend::Postgres(_), None) => unreachable!("a PostgreSQL place names its database"),
        }
    }
}

fn sqlite(_name: &str) -> Place {
    let dir = tempfile::tempdir().expect("temp dir");
    Place {
        backend: Backend::Sqlite(dir.path().join("voxbridge.db")),
        pg_db: None,
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
        pg_db: Some(db),
        _dir: None,
    }
}

fn record(id: &str, node: &str, direction: Direction) -> CallRecord {
    let start = UNIX_EPOCH + Duration::from_millis(1_800_000_000_123);
    CallRecord {
        call_id: id.into(),
        from: "sip:+15550100@pbx".into(),
        to: "sip:bot@vb".into(),
        started: start,
        answered: Some(start + Duration::from_millis(120)),
        ended: start + Duration::from_millis(42_500),
        end_reason: "caller_hangup".into(),
        dtmf: "1234#".into(),
        recording: Some(PathBuf::from("/rec/a.wav")),
        transfer_target: Some("sip:agents@pbx".into()),
        turns: vec![TurnLatency {
            kind: TurnKind::Dtmf,
            total_ms: 180.5,
            endpointing_ms: 0.0,
            asr_ms: 0.0,
            intent_ms: 0.0,
            dialog_ms: 0.1,
            lookup_ms: 12.0,
            tts_ms: 40.0,
        }],
        node: Some(node.into()),
        direction: Some(direction),
    }
}

// The store takes the writer's queue as it is: boxed records.
#[allow(clippy::vec_box)]
fn boxed(records: &[CallRecord]) -> Vec<Box<CallRecord>> {
    records.iter().cloned().map(Box::new).collect()
}

fn every_column_round_trips(place: Place) {
    let mut s = place.store();
    assert_eq!(s.schema_version().expect("version"), 3);
    let mut unanswered = record("b", "node-1", Direction::Outbound);
    unanswered.answered = None;
    unanswered.recording = None;
    unanswered.transfer_target = None;
    unanswered.turns.clear();
    let c = record("c", "node-2", Direction::Webrtc);
    let a = record("a", "node-1", Direction::Inbound);
    s.insert(&boxed(&[a.clone(), unanswered.clone(), c.clone()]))
        .expect("insert");
    let all = s.list(10).expect("list");
    assert_eq!(
        all.iter().map(|r| r.call_id.as_str()).collect::<Vec<_>>(),
        ["c", "b", "a"],
        "newest first"
    );
    assert_eq!(all[0], c);
    assert_eq!(s.show("a").expect("show"), Some(a.clone()));
    assert_eq!(s.show("b").expect("show"), Some(unanswered));
    assert_eq!(
        s.show("a").expect("show").map(|r| r.duration()),
        Some(Duration::from_millis(42_500))
    );
    assert_eq!(s.show("zzz").expect("show"), None);
    assert_eq!(s.count().expect("count"), 3);
    assert_eq!(s.list(2).expect("list").len(), 2, "the limit holds");
    // A reused Call-ID shows its latest record.
    let mut again = a;
    again.end_reason = "bot_hangup".into();
    s.insert(&boxed(&[again])).expect("insert");
    assert_eq!(
        s.show("a").expect("show").map(|r| r.end_reason),
        Some("bot_hangup".into())
    );
}

fn an_older_schema_is_migrated_in_numbered_steps(place: Place) {
    // A database of the node-column version (2), with a row in it.
    place.at_version(
        2,
        "INSERT INTO calls (call_id, from_uri, to_uri, started_ms, ended_ms, duration_ms,
             end_reason, dtmf, node) VALUES ('old', 'a', 'b', 1, 2, 1, 'bot_hangup', '', 'n0')",
    );
    let mut s = place.store();
    assert_eq!(s.schema_version().expect("version"), 3);
    let old = s.show("old").expect("show").expect("the old row is kept");
    assert_eq!(old.node.as_deref(), Some("n0"));
    assert_eq!(old.direction, None, "its direction was not recorded");
    s.insert(&boxed(&[record("new", "n1", Direction::Outbound)]))
        .expect("insert");
    assert_eq!(
        s.show("new").expect("show").and_then(|r| r.direction),
        Some(Direction::Outbound)
    );
    // Opening again (another node) applies nothing twice.
    let mut again = place.store();
    assert_eq!(again.schema_version().expect("version"), 3);
    assert_eq!(again.count().expect("count"), 2);
}

fn a_database_newer_than_the_code_is_refused(place: Place) {
    drop(place.store());
    place.sql(
        "INSERT INTO schema_version(component, version, name, applied_at)
         VALUES ('calls', 99, 'future', 0)",
    );
    let err = match cdr::open_store(&place.backend) {
        Ok(_) => panic!("a newer schema is refused"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("version 99"), "{err}");
}

fn the_writer_commits_everything_queued_and_names_its_node(place: Place) {
    let metrics = Arc::new(Metrics::default());
    let w = CdrWriter::start(place.backend.clone(), "node-w", metrics.clone()).expect("writer");
    assert_eq!(metrics.health.state(Component::Cdr), Some(true));
    for i in 0..300 {
        w.write(record(&format!("c{i}"), "node-x", Direction::Inbound));
    }
    let mut unnamed = record("unnamed", "-", Direction::Outbound);
    unnamed.node = None;
    w.write(unnamed);
    w.flush();
    let mut s = place.store();
    assert_eq!(s.count().expect("count"), 301);
    let stamped = s.show("unnamed").expect("show").expect("written");
    assert_eq!(stamped.node.as_deref(), Some("node-w"));
    assert_eq!(stamped.direction, Some(Direction::Outbound));
    drop(w);
    assert_eq!(
        metrics
            .cdr_write_errors
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
}

fn two_nodes_write_into_one_database_read_as_one(place: Place) {
    let m = Arc::new(Metrics::default());
    let one = CdrWriter::start(place.backend.clone(), "node-1", m.clone()).expect("writer 1");
    let two = CdrWriter::start(place.backend.clone(), "node-2", m.clone()).expect("writer 2");
    for i in 0..50 {
        let mut r = record(&format!("n1-{i}"), "-", Direction::Inbound);
        r.node = None;
        one.write(r);
        let mut r = record(&format!("n2-{i}"), "-", Direction::Inbound);
        r.node = None;
        two.write(r);
    }
    one.flush();
    two.flush();
    let all = place.store().list(1000).expect("list");
    assert_eq!(all.len(), 100);
    for r in &all {
        let want = if r.call_id.starts_with("n1-") {
            "node-1"
        } else {
            "node-2"
        };
        assert_eq!(r.node.as_deref(), Some(want), "{}", r.call_id);
    }
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
            case!(every_column_round_trips);
            case!(an_older_schema_is_migrated_in_numbered_steps);
            case!(a_database_newer_than_the_code_is_refused);
            case!(the_writer_commits_everything_queued_and_names_its_node);
            case!(two_nodes_write_into_one_database_read_as_one);
        }
    };
}

suite!(sqlite);
suite!(postgres);

/// The server closes the writer's connection (a PostgreSQL restart or
/// failover does the same): the batch in hand fails, the engine reports
/// the records down, and the writer connects again and commits it.
#[test]
fn postgres_writer_reconnects_after_the_server_drops_it() {
    let place = postgres("reconnect");
    let metrics = Arc::new(Metrics::default());
    let w = CdrWriter::start(place.backend.clone(), "node-r", metrics.clone()).expect("writer");
    w.write(record("before", "-", Direction::Inbound));
    w.flush();
    place.sql(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    );
    w.write(record("after", "-", Direction::Inbound));
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut s = place.store();
    while s.show("after").expect("show").is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        s.show("after").expect("show").is_some(),
        "written after reconnecting"
    );
    assert_eq!(s.count().expect("count"), 2);
    let up_by = Instant::now() + Duration::from_secs(5);
    while metrics.health.state(Component::Cdr) != Some(true) && Instant::now() < up_by {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(metrics.health.state(Component::Cdr), Some(true));
    drop(w);
}
