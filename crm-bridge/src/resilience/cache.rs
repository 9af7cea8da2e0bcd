//! The customer-profile cache, keyed by E.164 number.
//!
//! A caller who rings back within minutes (dropped call, "I forgot to ask")
//! is the common case, and the profile is needed before the 200 OK; a
//! concurrent map avoids a lock every call would queue on. "Not a customer"
//! is cached too, for a shorter time, so an unknown number calling
//! repeatedly does not hit the CRM each time.

use std::hash::Hash;
use std::time::{Duration, Instant};

use dashmap::DashMap;
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
    /// Entries kept at most; expired ones go first when full.
    pub max_entries: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            ttl: Duration::from_secs(300),
            negative_ttl: Duration::from_secs(30),
            max_entries: 100_000,
        }
    }
}

/// A TTL cache of `Option<V>` (found / not found).
#[derive(Debug)]
pub struct TtlCache<K: Eq + Hash, V> {
    config: CacheConfig,
    map: DashMap<K, (Instant, Option<V>)>,
}

impl<K: Eq + Hash + Clone, V: Clone> TtlCache<K, V> {
    pub fn new(config: CacheConfig) -> Self {
        TtlCache {
            config,
            map: DashMap::new(),
        }
    }

    /// The fresh entry for `key`, if any: `Some(None)` is a cached "not
    /// found".
    pub fn get(&self, key: &K, now: Instant) -> Option<Option<V>> {
        let entry = self.map.get(key)?;
        let (expires, value) = &*entry;
        if now < *expires {
            Some(value.clone())
        } else {
            drop(entry);
            self.map.remove_if(key, |_, (expires, _)| now >= *expires);
            None
        }
    }

    pub fn insert(&self, key: K, value: Option<V>, now: Instant) {
        let ttl = if value.is_some() {
            self.config.ttl
        } else {
            self.config.negative_ttl
        };
        if ttl.is_zero() {
            return;
        }
        if self.map.len() >= self.config.max_entries {
            self.make_room(now);
        }
        self.map.insert(key, (now + ttl, value));
    }

    /// Forget one key (after a write changed the customer).
    pub fn invalidate(&self, key: &K) {
        self.map.remove(key);
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    fn make_room(&self, now: Instant) {
        self.map.retain(|_, (expires, _)| now < *expires);
        // Still full of live entries: drop an arbitrary tenth rather than
        // grow without bound.
        if self.map.len() >= self.config.max_entries {
            let excess = self.map.len() / 10 + 1;
            let victims: Vec<K> = self
                .map
                .iter()
                .take(excess)
                .map(|e| e.key().clone())
                .collect();
            for k in victims {
                self.map.remove(&k);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positive_and_negative_ttls() {
        let cache: TtlCache<String, u32> = TtlCache::new(CacheConfig {
            ttl: Duration::from_secs(60),
            negative_ttl: Duration::from_secs(5),
            max_entries: 10,
        });
        let t = Instant::now();
        cache.insert("a".into(), Some(1), t);
        cache.insert("b".into(), None, t);
        assert_eq!(cache.get(&"a".into(), t), Some(Some(1)));
        assert_eq!(cache.get(&"b".into(), t), Some(None));
        assert_eq!(cache.get(&"c".into(), t), None);
        let later = t + Duration::from_secs(6);
        assert_eq!(cache.get(&"b".into(), later), None);
        assert_eq!(cache.get(&"a".into(), later), Some(Some(1)));
        assert_eq!(cache.get(&"a".into(), t + Duration::from_secs(61)), None);
        assert!(cache.is_empty());
    }

    #[test]
    fn bounded() {
        let cache: TtlCache<u32, u32> = TtlCache::new(CacheConfig {
            max_entries: 100,
            ..CacheConfig::default()
        });
        let t = Instant::now();
        for i in 0..1000 {
            cache.insert(i, Some(i), t);
        }
        assert!(cache.len() <= 100);
        assert_eq!(cache.get(&999, t), Some(Some(999)));
    }
}
