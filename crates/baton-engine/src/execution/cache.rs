//! This node's copies of what routing reads on every execution: a scheme's published
//! rules, and an installed app's configuration with its secrets opened.
//!
//! Several nodes share one database, so a copy is only as good as the tenant's routing
//! version it was read at. Every change that can alter routing (an app installed,
//! configured or uninstalled, a draft published, a scheme deleted) raises that version
//! in its own transaction, and an execution reads the version together with its
//! instruction. A copy is used only when it was read at that version or a later one;
//! otherwise it is read again. So the first execution that starts after a change
//! commits — on whichever node — routes with the change, never with an unpublished or
//! deleted draft or a replaced secret.
//!
//! A copy is filed under the version its reader saw *before* reading it: what it then
//! read from the database is at least that recent (each read sees every commit before
//! it), possibly more, and a newer copy is as good for that reader as a fresh read.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use baton_connectors::AppCredentials;
use baton_domain::SchemeKind;

use crate::schemes::DraftView;

/// How many copies of each kind a node keeps; past that, it starts afresh.
const MAX_ENTRIES: usize = 10_000;

/// Copies of routing configuration, per node.
#[derive(Default)]
pub(crate) struct RoutingCache {
    /// Published draft by (tenant, kind, scheme).
    pub(crate) rules: Versioned<(String, SchemeKind, String), Arc<DraftView>>,
    /// Configuration by (tenant, app).
    pub(crate) apps: Versioned<(String, String), Arc<AppCredentials>>,
}

/// Values filed with the routing version they were read at.
pub(crate) struct Versioned<K, V> {
    entries: Mutex<HashMap<K, (i64, V)>>,
}

impl<K, V> Default for Versioned<K, V> {
    fn default() -> Self {
        Self { entries: Mutex::new(HashMap::new()) }
    }
}

impl<K: Eq + Hash, V: Clone> Versioned<K, V> {
    /// The copy of `key`, if it was read at version `at_least` or later.
    pub(crate) fn get(&self, key: &K, at_least: i64) -> Option<V> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.get(key).filter(|(version, _)| *version >= at_least).map(|(_, value)| value.clone())
    }

    /// Files `value`, read after version `version` was seen, unless a copy read at a
    /// later version is there already.
    pub(crate) fn put(&self, key: K, version: i64, value: V) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.get(&key).is_some_and(|(kept, _)| *kept > version) {
            return;
        }
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(&key) {
            entries.clear();
        }
        entries.insert(key, (version, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_serves_its_version_and_older_ones_only() {
        let cache = Versioned::<&str, u32>::default();
        assert_eq!(cache.get(&"k", 0), None);
        cache.put("k", 3, 30);
        assert_eq!(cache.get(&"k", 3), Some(30));
        assert_eq!(cache.get(&"k", 2), Some(30), "a newer copy is as good as a fresh read");
        assert_eq!(cache.get(&"k", 4), None, "a change since the copy was read makes it stale");
    }

    #[test]
    fn an_older_copy_never_replaces_a_newer_one() {
        let cache = Versioned::<&str, u32>::default();
        cache.put("k", 5, 50);
        cache.put("k", 4, 40);
        assert_eq!(cache.get(&"k", 5), Some(50));
        cache.put("k", 6, 60);
        assert_eq!(cache.get(&"k", 6), Some(60));
    }

    #[test]
    fn the_cache_stays_bounded() {
        let cache = Versioned::<usize, usize>::default();
        for i in 0..MAX_ENTRIES + 5 {
            cache.put(i, 1, i);
        }
        assert!(cache.entries.lock().unwrap().len() <= MAX_ENTRIES);
        assert_eq!(cache.get(&(MAX_ENTRIES + 4), 1), Some(MAX_ENTRIES + 4));
    }
}
