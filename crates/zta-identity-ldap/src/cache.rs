//! A small map whose entries expire: directory lookups reused for `group_cache`.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

/// Most entries kept; a full map first forgets what expired, then everything (a flood of
/// names costs lookups again, never memory).
const MOST: usize = 10_000;

pub(crate) struct Expiring<V> {
    ttl: Duration,
    entries: Mutex<HashMap<String, (Instant, V)>>,
}

impl<V: Clone> Expiring<V> {
    pub(crate) fn new(ttl: Duration) -> Self {
        Self { ttl, entries: Mutex::new(HashMap::new()) }
    }

    /// The value stored under `key` less than the time to live ago.
    pub(crate) fn get(&self, key: &str) -> Option<V> {
        let entries = self.entries.lock().ok()?;
        entries.get(key).filter(|(at, _)| at.elapsed() < self.ttl).map(|(_, value)| value.clone())
    }

    /// Stores `value` (nothing when the time to live is zero).
    pub(crate) fn put(&self, key: String, value: V) {
        if self.ttl.is_zero() {
            return;
        }
        let Ok(mut entries) = self.entries.lock() else { return };
        if entries.len() >= MOST && !entries.contains_key(&key) {
            entries.retain(|_, (at, _)| at.elapsed() < self.ttl);
            if entries.len() >= MOST {
                entries.clear();
            }
        }
        entries.insert(key, (Instant::now(), value));
    }

    pub(crate) fn remove(&self, key: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_expire_and_a_zero_time_to_live_keeps_nothing() {
        let cache = Expiring::new(Duration::from_secs(60));
        cache.put("a".to_owned(), 1);
        assert_eq!(cache.get("a"), Some(1));
        cache.remove("a");
        assert_eq!(cache.get("a"), None);

        let none = Expiring::new(Duration::ZERO);
        none.put("a".to_owned(), 1);
        assert_eq!(none.get("a"), None);
    }

    #[test]
    fn a_full_cache_forgets_rather_than_grows() {
        let cache = Expiring::new(Duration::from_secs(60));
        for i in 0..=MOST {
            cache.put(i.to_string(), i);
        }
        assert_eq!(cache.get(&MOST.to_string()), Some(MOST));
        assert!(cache.entries.lock().unwrap().len() <= MOST);
    }
}
