//! The customer-profile cache, keyed by E.164 number, on `moka`.
//!
//! A caller who rings back within minutes (dropped call, "I forgot to ask")
//! is the common case, and the profile is needed before the 200 OK. "Not a
//! customer" is cached too, for a shorter time, so an unknown number calling
//! repeatedly does not hit the CRM each time. Each entry expires on its own
//! clock (found and not-found have different lifetimes), the cache is
//! bounded by the bytes its entries hold as well as by their count, the
//! least recently used go first when it is full, and concurrent misses for
//! one number share one load: if the caller running it gives up, a waiting
//! one takes over.

use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::future::Cache;
use moka::policy::EvictionPolicy;
use moka::Expiry;
use serde::Deserialize;

/// Cache tuning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    /// How long a found profile is served without asking again.
    #[serde(with = "crate::resilience::millis")]
    pub ttl: Duration,
    /// How long "no such customer" is remembered.
    #[serde(with = "crate::resilience::millis")]
    pub negative_ttl: Duration,
    /// Entries kept at most.
    pub max_entries: usize,
    /// Bytes of numbers and profiles kept at most (whichever bound is
    /// reached first; a CRM's `fields` can make one profile large).
    pub max_bytes: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            ttl: Duration::from_secs(300),
            negative_ttl: Duration::from_secs(30),
            max_entries: 100_000,
            max_bytes: 64 * 1024 * 1024,
        }
    }
}

/// How many bytes a key or value holds, for the byte bound.
pub trait Weight {
    fn weight(&self) -> usize;
}

impl Weight for String {
    fn weight(&self) -> usize {
        self.len()
    }
}

impl Weight for u32 {
    fn weight(&self) -> usize {
        4
    }
}

impl<T: Weight> Weight for Option<T> {
    fn weight(&self) -> usize {
        self.as_ref().map_or(0, Weight::weight)
    }
}

/// Found profiles live `ttl`, "not found" lives `negative_ttl`.
struct PerEntry {
    ttl: Duration,
    negative_ttl: Duration,
}

impl<K, V> Expiry<K, Option<V>> for PerEntry {
    fn expire_after_create(&self, _: &K, value: &Option<V>, _: Instant) -> Option<Duration> {
        Some(if value.is_some() {
            self.ttl
        } else {
            self.negative_ttl
        })
    }
}

/// A cache of `Option<V>` (found / not found).
pub struct TtlCache<K, V> {
    cache: Cache<K, Option<V>>,
    disabled: bool,
}

impl<K, V> std::fmt::Debug for TtlCache<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TtlCache")
            .field("entries", &self.cache.entry_count())
            .field("bytes", &self.cache.weighted_size())
            .finish()
    }
}

/// Per-entry overhead counted on top of key and value bytes (hash table
/// slot, expiry timer, LRU links): what keeps many tiny entries bounded.
const ENTRY_OVERHEAD: usize = 64;

impl<K, V> TtlCache<K, V>
where
    K: Eq + Hash + Clone + Weight + Send + Sync + 'static,
    V: Clone + Weight + Send + Sync + 'static,
{
    pub fn new(config: CacheConfig) -> Self {
        let max_bytes = config.max_bytes.max(1);
        // One weight bounds both: every entry weighs at least its share of
        // the byte budget at `max_entries`, so no more than `max_entries`
        // fit, and never more than `max_bytes` in all.
        let floor = max_bytes.div_ceil(config.max_entries.max(1) as u64);
        let cache = Cache::builder()
            .max_capacity(max_bytes)
            .eviction_policy(EvictionPolicy::lru())
            .weigher(move |k: &K, v: &Option<V>| {
                let bytes = (k.weight() + v.weight() + ENTRY_OVERHEAD) as u64;
                u32::try_from(bytes.max(floor)).unwrap_or(u32::MAX)
            })
            .expire_after(PerEntry {
                ttl: config.ttl,
                negative_ttl: config.negative_ttl,
            })
            .build();
        TtlCache {
            cache,
            disabled: config.ttl.is_zero() && config.negative_ttl.is_zero(),
        }
    }

    /// The fresh entry for `key`, if any: `Some(None)` is a cached "not
    /// found".
    pub async fn get(&self, key: &K) -> Option<Option<V>> {
        self.cache.get(key).await
    }

    pub async fn insert(&self, key: K, value: Option<V>) {
        if !self.disabled {
            self.cache.insert(key, value).await;
        }
    }

    /// The cached entry for `key`, or the result of `load` — run once for
    /// all the concurrent misses of `key`, cached when it succeeds. Also
    /// says whether this caller ran the load (the others waited for it).
    pub async fn get_or_load<E, F>(&self, key: K, load: F) -> (Result<Option<V>, E>, bool)
    where
        E: Clone + Send + Sync + 'static,
        F: Future<Output = Result<Option<V>, E>>,
    {
        let led = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&led);
        let result = self
            .cache
            .try_get_with(key.clone(), async move {
                flag.store(true, Ordering::Relaxed);
                load.await
            })
            .await
            .map_err(|e| E::clone(&e));
        if self.disabled {
            // Coalesced, but not kept.
            self.cache.invalidate(&key).await;
        }
        (result, led.load(Ordering::Relaxed))
    }

    /// Forget one key (after a write changed the customer).
    pub async fn invalidate(&self, key: &K) {
        self.cache.invalidate(key).await;
    }

    /// Entries and weighted bytes now, after pending evictions ran.
    pub async fn size(&self) -> (u64, u64) {
        self.cache.run_pending_tasks().await;
        (self.cache.entry_count(), self.cache.weighted_size())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn config(ttl_ms: u64, negative_ms: u64) -> CacheConfig {
        CacheConfig {
            ttl: Duration::from_millis(ttl_ms),
            negative_ttl: Duration::from_millis(negative_ms),
            max_entries: 10,
            ..CacheConfig::default()
        }
    }

    #[tokio::test]
    async fn positive_and_negative_ttls() {
        let cache: TtlCache<String, u32> = TtlCache::new(config(60_000, 5_000));
        cache.insert("a".into(), Some(1)).await;
        cache.insert("b".into(), None).await;
        assert_eq!(cache.get(&"a".into()).await, Some(Some(1)));
        assert_eq!(cache.get(&"b".into()).await, Some(None));
        assert_eq!(cache.get(&"c".into()).await, None);
        cache.invalidate(&"a".into()).await;
        assert_eq!(cache.get(&"a".into()).await, None);
    }

    // The old cache swept the whole map for expired entries only when it
    // was full; here each entry has its own deadline.
    #[tokio::test]
    async fn each_entry_expires_on_its_own_clock() {
        let cache: TtlCache<String, u32> = TtlCache::new(config(30_000, 150));
        cache.insert("known".into(), Some(1)).await;
        cache.insert("unknown".into(), None).await;
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(cache.get(&"unknown".into()).await, None, "negative expired");
        assert_eq!(
            cache.get(&"known".into()).await,
            Some(Some(1)),
            "found kept"
        );
        let short: TtlCache<String, u32> = TtlCache::new(config(150, 150));
        short.insert("known".into(), Some(1)).await;
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(short.get(&"known".into()).await, None);
    }

    #[tokio::test]
    async fn bounded_by_count_newest_kept() {
        let cache: TtlCache<u32, u32> = TtlCache::new(CacheConfig {
            max_entries: 100,
            ..CacheConfig::default()
        });
        for i in 0..1000 {
            cache.insert(i, Some(i)).await;
        }
        assert!(cache.size().await.0 <= 100);
        assert_eq!(cache.get(&999).await, Some(Some(999)));
    }

    // The old cache counted entries only: 100,000 profiles with large
    // `fields` could hold gigabytes.
    #[tokio::test]
    async fn bounded_by_bytes() {
        let cache: TtlCache<String, String> = TtlCache::new(CacheConfig {
            max_entries: 100_000,
            max_bytes: 100_000,
            ..CacheConfig::default()
        });
        let profile = "x".repeat(10_000);
        for i in 0..100 {
            cache
                .insert(format!("+86138001380{i:02}"), Some(profile.clone()))
                .await;
        }
        let (entries, bytes) = cache.size().await;
        assert!(bytes <= 100_000, "{bytes} bytes");
        assert!((5..=10).contains(&entries), "{entries} entries of 10 kB");
        assert!(cache.get(&"+8613800138099".into()).await.is_some());
    }

    #[tokio::test]
    async fn concurrent_misses_for_one_key_load_once() {
        let cache: Arc<TtlCache<String, u32>> = Arc::new(TtlCache::new(config(60_000, 5_000)));
        let loads = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let (cache, loads) = (Arc::clone(&cache), Arc::clone(&loads));
            tasks.push(tokio::spawn(async move {
                cache
                    .get_or_load("+8613800138000".to_string(), async move {
                        loads.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok::<_, String>(Some(7))
                    })
                    .await
            }));
        }
        let mut leaders = 0;
        for t in tasks {
            let (v, led) = t.await.expect("task");
            assert_eq!(v, Ok(Some(7)));
            leaders += usize::from(led);
        }
        assert_eq!((loads.load(Ordering::SeqCst), leaders), (1, 1));
        assert_eq!(cache.get(&"+8613800138000".into()).await, Some(Some(7)));
    }

    #[tokio::test]
    async fn failed_loads_are_not_cached_and_a_cancelled_leader_hands_over() {
        let cache: Arc<TtlCache<u32, u32>> = Arc::new(TtlCache::new(config(60_000, 5_000)));
        let (r, _) = cache
            .get_or_load(1, async { Err::<Option<u32>, _>("down") })
            .await;
        assert_eq!(r, Err("down"));
        assert_eq!(cache.get(&1).await, None);

        let leader = {
            let cache = Arc::clone(&cache);
            tokio::spawn(async move {
                cache
                    .get_or_load(2, async {
                        tokio::time::sleep(Duration::from_secs(60)).await;
                        Ok::<_, String>(Some(1))
                    })
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        let follower = {
            let cache = Arc::clone(&cache);
            tokio::spawn(async move {
                cache
                    .get_or_load(2, async { Ok::<_, String>(Some(2)) })
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        leader.abort();
        let (v, led) = tokio::time::timeout(Duration::from_secs(5), follower)
            .await
            .expect("follower finishes")
            .expect("task");
        assert_eq!((v, led), (Ok(Some(2)), true));
    }

    #[tokio::test]
    async fn zero_ttls_coalesce_but_keep_nothing() {
        let cache: TtlCache<u32, u32> = TtlCache::new(config(0, 0));
        let (r, led) = cache
            .get_or_load(1, async { Ok::<_, String>(Some(1)) })
            .await;
        assert_eq!((r, led), (Ok(Some(1)), true));
        assert_eq!(cache.get(&1).await, None);
    }
}
