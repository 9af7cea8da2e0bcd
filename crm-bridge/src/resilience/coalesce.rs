//! Coalescing of concurrent identical lookups ("single flight").
//!
//! When a campaign calls back a list, or a PBX forks one caller to several
//! bot instances, the same number is looked up many times at once; only
//! the first lookup goes to the CRM and the others wait for its answer. If
//! the first caller gives up (its timeout fired), one of the waiters takes
//! over, so nobody waits on a lookup that nobody is running.

use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;

use dashmap::DashMap;
use tokio::sync::OnceCell;

/// Shares one in-flight computation per key.
#[derive(Debug)]
pub struct Coalescer<K: Eq + Hash, V> {
    in_flight: DashMap<K, Arc<OnceCell<V>>>,
}

impl<K: Eq + Hash + Clone, V: Clone> Default for Coalescer<K, V> {
    fn default() -> Self {
        Coalescer {
            in_flight: DashMap::new(),
        }
    }
}

impl<K: Eq + Hash + Clone, V: Clone> Coalescer<K, V> {
    /// Run `make()` for `key` unless a run for the same key is already in
    /// flight, in which case wait for that run's value. Returns the value
    /// and whether this caller was the one that computed it.
    pub async fn run<F, Fut>(&self, key: K, make: F) -> (V, bool)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = V>,
    {
        let cell = self
            .in_flight
            .entry(key.clone())
            .or_insert_with(|| Arc::new(OnceCell::new()))
            .clone();
        let mut led = false;
        let value = cell
            .get_or_init(|| {
                led = true;
                make()
            })
            .await
            .clone();
        // Whoever finishes first retires the entry; later lookups start a
        // fresh run (the cache, not this map, is what serves repeats).
        self.in_flight
            .remove_if(&key, |_, current| Arc::ptr_eq(current, &cell));
        (value, led)
    }

    /// Lookups in flight now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test]
    async fn concurrent_identical_keys_run_once() {
        let c: Arc<Coalescer<&'static str, u32>> = Arc::new(Coalescer::default());
        let runs = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let c = Arc::clone(&c);
            let runs = Arc::clone(&runs);
            tasks.push(tokio::spawn(async move {
                c.run("k", || async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    7
                })
                .await
            }));
        }
        let mut leaders = 0;
        for t in tasks {
            let (v, led) = t.await.expect("task");
            assert_eq!(v, 7);
            leaders += usize::from(led);
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(leaders, 1);
        assert_eq!(c.in_flight(), 0);
    }

    #[tokio::test]
    async fn a_cancelled_leader_hands_over() {
        let c: Arc<Coalescer<u8, u32>> = Arc::new(Coalescer::default());
        let leader = {
            let c = Arc::clone(&c);
            tokio::spawn(async move {
                c.run(1, || async {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    1
                })
                .await
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        let follower = {
            let c = Arc::clone(&c);
            tokio::spawn(async move { c.run(1, || async { 2 }).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        leader.abort();
        let (v, led) = tokio::time::timeout(Duration::from_secs(5), follower)
            .await
            .expect("follower finishes")
            .expect("task");
        assert_eq!((v, led), (2, true));
    }
}
