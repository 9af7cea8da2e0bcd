//! The outbox worker with real time and a real SQLite file, against an
//! in-process target: records written during an outage go out once the
//! target is back, once each, in order per customer; a panicking connector
//! does not stop delivery; shutdown leaves undelivered records pending.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use voxbridge_crm::model::{CallLog, NewTicket, Write, WriteRef};
use voxbridge_crm::outbox::{DeliveryTarget, Outbox, OutboxConfig};
use voxbridge_crm::CrmError;

#[derive(Default)]
struct Target {
    down: AtomicBool,
    panic_on: Mutex<Option<String>>,
    attempts: AtomicUsize,
    /// key → times accepted; and the acceptance order per customer.
    seen: Mutex<HashMap<String, usize>>,
    order: Mutex<HashMap<String, Vec<String>>>,
}

#[async_trait]
impl DeliveryTarget for Target {
    async fn deliver(&self, write: &Write, key: &str) -> Result<WriteRef, CrmError> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(1)).await;
        if self.down.load(Ordering::SeqCst) {
            return Err(CrmError::Connect {
                system: "crm".into(),
                message: "connection refused".into(),
            });
        }
        let call_id = match write {
            Write::CallLog(c) => c.call_id.clone(),
            Write::Ticket(t) => t.call_id.clone().unwrap_or_default(),
            Write::Task(t) => t.call_id.clone().unwrap_or_default(),
        };
        let panic_now = {
            let mut p = self.panic_on.lock().expect("lock");
            if p.as_deref() == Some(call_id.as_str()) {
                *p = None;
                true
            } else {
                false
            }
        };
        if panic_now {
            panic!("connector bug on {call_id}");
        }
        let mut seen = self.seen.lock().expect("lock");
        let n = seen.entry(key.to_string()).or_insert(0);
        *n += 1;
        if *n == 1 {
            self.order
                .lock()
                .expect("lock")
                .entry(write.order_key())
                .or_default()
                .push(call_id);
        }
        Ok(WriteRef {
            system: "crm".into(),
            id: key.to_string(),
            existing: *n > 1,
        })
    }

    fn system_for(&self, _: &Write) -> Option<String> {
        Some("crm".into())
    }
}

fn fast_config(dir: &tempfile::TempDir) -> OutboxConfig {
    OutboxConfig {
        path: dir.path().join("outbox.sqlite"),
        max_attempts: 1000,
        backoff_base: Duration::from_millis(20),
        backoff_max: Duration::from_millis(200),
        poll_interval: Duration::from_millis(50),
        ..OutboxConfig::default()
    }
}

fn call(i: usize, customers: usize) -> Write {
    Write::CallLog(CallLog {
        call_id: format!("call-{i:04}"),
        customer_id: Some(format!("C{:02}", i % customers)),
        started_at_ms: 1_795_000_000_000 + i as i64,
        ended_at_ms: 1_795_000_060_000 + i as i64,
        disposition: "resolved".into(),
        ..CallLog::default()
    })
}

async fn wait_for(mut done: impl FnMut() -> bool, limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    done()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_then_recovery_delivers_each_record_once_in_order() {
    let dir = tempfile::tempdir().expect("temp dir");
    let outbox = Outbox::open(fast_config(&dir)).expect("open");
    let target = Arc::new(Target::default());
    target.down.store(true, Ordering::SeqCst);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let worker = {
        let outbox = outbox.clone();
        let target = Arc::clone(&target) as Arc<dyn DeliveryTarget>;
        tokio::spawn(async move {
            outbox
                .run(
                    target,
                    async {
                        let _ = stop_rx.await;
                    },
                    Duration::from_secs(2),
                )
                .await
        })
    };
    for i in 0..200 {
        outbox.enqueue(call(i, 10)).await.expect("enqueue");
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(target.attempts.load(Ordering::SeqCst) > 0);
    assert_eq!(outbox.counts().await.expect("counts").delivered, 0);
    target.down.store(false, Ordering::SeqCst);

    let t = Arc::clone(&target);
    assert!(
        wait_for(
            move || t.seen.lock().expect("lock").len() == 200,
            Duration::from_secs(20)
        )
        .await,
        "not all delivered"
    );
    let _ = stop_tx.send(());
    worker.await.expect("join").expect("worker");
    let counts = outbox.counts().await.expect("counts");
    assert_eq!((counts.delivered, counts.pending, counts.dead), (200, 0, 0));
    assert!(target.seen.lock().expect("lock").values().all(|n| *n == 1));
    for (customer, calls) in target.order.lock().expect("lock").iter() {
        let mut sorted = calls.clone();
        sorted.sort();
        assert_eq!(calls, &sorted, "{customer} out of order");
        assert_eq!(calls.len(), 20);
    }
}

#[tokio::test]
async fn enqueue_is_idempotent_and_atomic_per_call() {
    let dir = tempfile::tempdir().expect("temp dir");
    let outbox = Outbox::open(fast_config(&dir)).expect("open");
    let ticket = Write::Ticket(NewTicket {
        subject: "Leaking kettle".into(),
        call_id: Some("call-0001".into()),
        ..NewTicket::default()
    });
    let first = outbox
        .enqueue_all(vec![call(1, 1), ticket.clone()])
        .await
        .expect("enqueue");
    let again = outbox
        .enqueue_all(vec![call(1, 1), ticket])
        .await
        .expect("enqueue");
    assert_eq!(first, again, "same call enqueued twice is stored once");
    assert_eq!(outbox.counts().await.expect("counts").pending, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_connector_does_not_stop_delivery() {
    let dir = tempfile::tempdir().expect("temp dir");
    let outbox = Outbox::open(fast_config(&dir)).expect("open");
    let target = Arc::new(Target::default());
    *target.panic_on.lock().expect("lock") = Some("call-0003".into());
    for i in 0..10 {
        outbox.enqueue(call(i, 10)).await.expect("enqueue");
    }
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let worker = {
        let outbox = outbox.clone();
        let target = Arc::clone(&target) as Arc<dyn DeliveryTarget>;
        tokio::spawn(async move {
            outbox
                .run(
                    target,
                    async {
                        let _ = stop_rx.await;
                    },
                    Duration::from_secs(1),
                )
                .await
        })
    };
    let t = Arc::clone(&target);
    assert!(
        wait_for(
            move || t.seen.lock().expect("lock").len() == 10,
            Duration::from_secs(10)
        )
        .await,
        "the record whose first delivery panicked was retried"
    );
    let _ = stop_tx.send(());
    worker.await.expect("join").expect("worker");
    assert_eq!(outbox.counts().await.expect("counts").delivered, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_survive_a_restart_of_the_outbox() {
    let dir = tempfile::tempdir().expect("temp dir");
    {
        let outbox = Outbox::open(fast_config(&dir)).expect("open");
        for i in 0..20 {
            outbox.enqueue(call(i, 4)).await.expect("enqueue");
        }
        // Dropped without ever delivering: a stopped engine.
    }
    let outbox = Outbox::open(fast_config(&dir)).expect("reopen");
    assert_eq!(outbox.counts().await.expect("counts").pending, 20);
    let target = Arc::new(Target::default());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let worker = {
        let outbox = outbox.clone();
        let target = Arc::clone(&target) as Arc<dyn DeliveryTarget>;
        tokio::spawn(async move {
            outbox
                .run(
                    target,
                    async {
                        let _ = stop_rx.await;
                    },
                    Duration::from_secs(1),
                )
                .await
        })
    };
    let t = Arc::clone(&target);
    assert!(
        wait_for(
            move || t.seen.lock().expect("lock").len() == 20,
            Duration::from_secs(10)
        )
        .await
    );
    let _ = stop_tx.send(());
    worker.await.expect("join").expect("worker");
}
