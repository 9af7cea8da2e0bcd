//! The outbox schedule over simulated hours: the real SQLite statements and
//! the real retry policy, with time stepped instead of slept, so an
//! hour-long CRM outage takes milliseconds to test.

use std::collections::HashMap;

use super::sqlite::SqliteStore;
use super::store::{self, Outcome, Store};
use super::*;
use crate::model::CallLog;

const T0: i64 = 1_795_000_000_000;
/// The simulated worker's name in its claims.
const SIM: &str = "sim";

fn outage_error() -> CrmError {
    CrmError::Connect {
        system: "crm".into(),
        message: "connection refused".into(),
    }
}

fn seed(conn: &mut dyn Store, records: usize, customers: usize) {
    let writes: Vec<(String, Write)> = (0..records)
        .map(|i| {
            let w = Write::CallLog(CallLog {
                call_id: format!("call-{i}"),
                customer_id: Some(format!("C{:03}", i % customers)),
                started_at_ms: T0,
                ended_at_ms: T0 + 60_000,
                disposition: "resolved".into(),
                ..CallLog::default()
            });
            (idempotency_key(&w, 0), w)
        })
        .collect();
    let new: Vec<store::NewRecord<'_>> = writes
        .iter()
        .map(|(key, write)| store::NewRecord { key, write })
        .collect();
    conn.insert(&new, T0).expect("insert");
}

/// Runs the schedule: the target is down until `outage_end`, then accepts
/// everything. Returns (delivery order per customer, deliveries per key,
/// time of the last delivery).
fn simulate(
    conn: &mut dyn Store,
    config: &OutboxConfig,
    outage_end: i64,
    error: &CrmError,
) -> (HashMap<String, Vec<i64>>, HashMap<String, u32>, i64) {
    let mut now = T0;
    let mut per_customer: HashMap<String, Vec<i64>> = HashMap::new();
    let mut seen: HashMap<String, u32> = HashMap::new();
    let mut last = now;
    let mut finished = false;
    for _ in 0..100_000 {
        let claimed = conn
            .claim(SIM, now, Duration::from_secs(30), 32)
            .expect("claim");
        if claimed.is_empty() {
            match conn.next_due().expect("next due") {
                Some(t) => now = (now + 1).max(t),
                None => {
                    finished = true;
                    break;
                }
            }
            continue;
        }
        let mut outcomes = Vec::new();
        let mut recovered = false;
        for c in claimed {
            if now < outage_end {
                outcomes.push((
                    c.id,
                    failure_outcome(config, c.attempts, error, Some("crm".into()), now),
                ));
            } else {
                *seen.entry(c.key.clone()).or_default() += 1;
                per_customer
                    .entry(c.order_key.clone())
                    .or_default()
                    .push(c.id);
                recovered |= c.attempts > 0;
                last = now;
                outcomes.push((
                    c.id,
                    Outcome::Delivered {
                        remote_id: c.id.to_string(),
                        system: "crm".into(),
                    },
                ));
            }
        }
        conn.complete(SIM, &outcomes, now).expect("complete");
        if recovered {
            conn.pull_forward("crm", now).expect("pull forward");
        }
        // One round of deliveries takes a few milliseconds.
        now += 5;
    }
    assert!(finished, "simulation did not settle");
    (per_customer, seen, last)
}

#[test]
fn an_hour_long_outage_loses_nothing_and_keeps_customer_order() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut conn =
        SqliteStore::open(&dir.path().join("outbox.sqlite"), Durability::Normal).expect("open");
    let conn: &mut dyn Store = &mut conn;
    seed(conn, 200, 20);
    let config = OutboxConfig::default();
    let outage_end = T0 + 3_600_000;
    let (per_customer, seen, last) = simulate(conn, &config, outage_end, &outage_error());

    let counts = conn.counts().expect("counts");
    assert_eq!(
        counts,
        Counts {
            pending: 0,
            delivered: 200,
            dead: 0
        }
    );
    assert_eq!(seen.len(), 200);
    assert!(seen.values().all(|n| *n == 1), "each record delivered once");
    assert_eq!(per_customer.len(), 20);
    for (customer, ids) in &per_customer {
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{customer}: {ids:?}");
        assert_eq!(ids.len(), 10);
    }
    // Once the first record gets through, the backlog is pulled forward:
    // it drains within one backoff ceiling of the CRM coming back.
    let drained_after = last - outage_end;
    assert!(
        drained_after <= i64::try_from(config.backoff_max.as_millis()).expect("ms") + 1_000,
        "backlog took {drained_after} ms after the outage"
    );
}

#[test]
fn records_die_after_max_attempts_and_rejections_at_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut conn =
        SqliteStore::open(&dir.path().join("outbox.sqlite"), Durability::Normal).expect("open");
    let conn: &mut dyn Store = &mut conn;
    seed(conn, 3, 3);
    let config = OutboxConfig {
        max_attempts: 4,
        backoff_base: Duration::from_millis(100),
        backoff_max: Duration::from_secs(1),
        ..OutboxConfig::default()
    };
    // Down for ever.
    simulate(conn, &config, i64::MAX, &outage_error());
    let counts = conn.counts().expect("counts");
    assert_eq!((counts.pending, counts.dead), (0, 3));
    let attempts: Vec<u32> = conn
        .list(&admin::ListFilter::default())
        .expect("list")
        .iter()
        .map(|e| e.attempts)
        .collect();
    assert_eq!(attempts, [4, 4, 4]);

    let rejected = CrmError::Rejected {
        system: "crm".into(),
        status: 422,
        endpoint: "POST /calls".into(),
        snippet: "field `duration` must be a number".into(),
    };
    assert!(matches!(
        failure_outcome(&config, 0, &rejected, None, T0),
        Outcome::Dead { .. }
    ));
    let open = CrmError::CircuitOpen {
        system: "crm".into(),
        retry_in_ms: 2_000,
    };
    match failure_outcome(&config, 3, &open, None, T0) {
        Outcome::Retry { count, next_at, .. } => {
            assert!(!count, "an open circuit does not spend an attempt");
            assert!((T0 + 2_000..=T0 + 4_000).contains(&next_at));
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn operator_can_list_retry_and_purge() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("outbox.sqlite");
    let mut conn = SqliteStore::open(&path, Durability::Normal).expect("open");
    let conn: &mut dyn Store = &mut conn;
    seed(conn, 6, 6);
    let config = OutboxConfig {
        max_attempts: 1,
        ..OutboxConfig::default()
    };
    simulate(conn, &config, i64::MAX, &outage_error());

    let dead = admin::list(
        &path,
        &admin::ListFilter {
            state: Some(RecordState::Dead),
            limit: 0,
        },
    )
    .expect("list");
    assert_eq!(dead.len(), 6);
    assert_eq!(dead[0].id, 6, "newest first");
    assert_eq!(dead[0].kind, "call_log");
    assert_eq!(dead[0].system.as_deref(), Some("crm"));
    let line = dead[0].to_string();
    assert!(
        line.contains("dead") && line.contains("call_log") && line.contains("connection refused"),
        "{line}"
    );
    assert!(dead[0]
        .last_error
        .as_deref()
        .is_some_and(|e| e.contains("connection refused")));

    assert_eq!(
        admin::retry(&path, &admin::Selection::Ids(vec![1, 2])).expect("retry"),
        2
    );
    assert_eq!(admin::counts(&path).expect("counts").pending, 2);
    // Those two now get through.
    simulate(conn, &config, T0, &outage_error());
    assert_eq!(admin::counts(&path).expect("counts").delivered, 2);

    // Pending records are never purged; delivered and dead ones are.
    assert_eq!(
        admin::retry(&path, &admin::Selection::Ids(vec![3])).expect("retry"),
        1
    );
    assert_eq!(
        admin::purge(&path, &admin::Selection::Ids(vec![3])).expect("purge"),
        0
    );
    assert_eq!(
        admin::purge(&path, &admin::Selection::AllDelivered).expect("purge"),
        2
    );
    assert_eq!(
        admin::purge(&path, &admin::Selection::AllDead).expect("purge"),
        3
    );
    let left = admin::list(&path, &admin::ListFilter::default()).expect("list");
    assert_eq!(left.iter().map(|e| e.id).collect::<Vec<_>>(), [3]);
    assert_eq!(left[0].order_key, "customer:C002");

    assert!(admin::list(
        &dir.path().join("nope.sqlite"),
        &admin::ListFilter::default()
    )
    .is_err());
}
