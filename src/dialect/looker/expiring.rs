//! A map whose entries are forgotten once unused for a while: stored queries, SQL Runner queries
//! and the memory of task ids live in memory, so none may grow without end.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// How often, at most, the whole map is swept for entries past their time.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

pub struct Expiring<K, V> {
    entries: HashMap<K, (V, Instant)>,
    lifetime: Duration,
    swept: Instant,
}

impl<K: Eq + Hash + Clone, V> Expiring<K, V> {
    pub fn new(lifetime: Duration) -> Self {
        Expiring {
            entries: HashMap::new(),
            lifetime,
            swept: Instant::now(),
        }
    }

    /// Forgets every entry (the control plane's reset); answers their keys.
    pub fn clear(&mut self) -> Vec<K> {
        self.entries.drain().map(|(k, _)| k).collect()
    }

    /// Stores `value` under `key`; answers what a sweep removed meanwhile.
    pub fn insert(&mut self, key: K, value: V) -> Vec<(K, V)> {
        let removed = self.sweep();
        self.entries.insert(key, (value, Instant::now()));
        removed
    }

    /// The live entry under `key`, marked as used now. An entry past its time is no longer
    /// answered; the next sweep removes it (and reports it to whoever inserts).
    pub fn get(&mut self, key: &K) -> Option<&mut V> {
        let now = Instant::now();
        let lifetime = self.lifetime;
        match self.entries.get_mut(key) {
            Some((value, used)) if now.duration_since(*used) < lifetime => {
                *used = now;
                Some(value)
            }
            _ => None,
        }
    }

    /// Removes every entry unused for the lifetime (at most once per [`SWEEP_EVERY`], or per
    /// lifetime when that is shorter).
    fn sweep(&mut self) -> Vec<(K, V)> {
        let now = Instant::now();
        if now.duration_since(self.swept) < self.lifetime.min(SWEEP_EVERY) {
            return Vec::new();
        }
        self.swept = now;
        let expired: Vec<K> = self
            .entries
            .iter()
            .filter(|(_, (_, used))| now.duration_since(*used) >= self.lifetime)
            .map(|(k, _)| k.clone())
            .collect();
        expired
            .into_iter()
            .filter_map(|k| self.entries.remove(&k).map(|(v, _)| (k, v)))
            .collect()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_unused_for_their_lifetime_are_gone() {
        let mut map = Expiring::new(Duration::from_millis(400));
        map.insert("a", 1);
        map.insert("b", 2);
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(
            map.get(&"a").copied(),
            Some(1),
            "a use keeps an entry alive"
        );
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(map.get(&"b"), None);
        assert_eq!(map.get(&"a").copied(), Some(1));
        std::thread::sleep(Duration::from_millis(500));
        let mut removed = map.insert("c", 3);
        removed.sort();
        assert_eq!(removed, vec![("a", 1), ("b", 2)]);
        assert_eq!(map.len(), 1);
    }
}
