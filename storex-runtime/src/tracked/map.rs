//! [`Map`]: a `HashMap` that records its writes while a mutation runs.

use std::borrow::Borrow;
use std::collections::hash_map::{self, HashMap};
use std::fmt;
use std::hash::Hash;
use std::ops::Deref;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{Collection, Home};
use crate::diff::{Changes, Diff, DiffKey};

/// A `HashMap` for store state whose mutations cost what they change: while a mutation runs it
/// keeps the old value of each key the first time it is written, so the diff visits only those
/// keys, and a rollback puts only those back (see [the module](crate::tracked)).
///
/// Reads are the `HashMap`'s (`map.get(k)`, `map.len()`, `map.iter()`, through
/// `Deref<Target = HashMap<K, V>>`); writes are its names: `map.insert(k, v)`,
/// `map.get_mut(k)`, `map.entry(k)`, `map.remove(k)`. Its JSON is the JSON of the `HashMap`.
///
/// ```
/// use storex::Map;
///
/// let mut scores: Map<String, u32> = Map::new();
/// scores.insert("ada".to_owned(), 3);
/// *scores.entry("ada".to_owned()).or_insert(0) += 1;
/// if let Some(score) = scores.get_mut("ada") {
///     *score *= 10;
/// }
/// assert_eq!(scores.get("ada"), Some(&40));
/// ```
pub struct Map<K, V> {
    map: HashMap<K, V>,
    /// Open while a mutation of the state that holds the map runs.
    log: Option<Box<Log<K, V>>>,
}

/// What a map keeps during one mutation.
pub(super) struct Log<K, V> {
    home: Arc<Home<HashMap<K, V>>>,
    /// The old value of each key written (`None`: the key was absent).
    saved: HashMap<K, Option<V>>,
    /// The whole map as it was, once a write could reach every value.
    whole: Option<HashMap<K, V>>,
    /// [`Collection::hand_back`], which needs `K: Eq + Hash`: a `Drop` impl cannot ask for
    /// it, `begin` can.
    hand_back: fn(&mut Map<K, V>),
}

/// A map's entries and its open log, borrowed together.
type Recording<'m, K, V> = (&'m HashMap<K, V>, &'m mut Log<K, V>);

impl<K: Eq + Hash, V> Log<K, V> {
    /// Puts `map` back as it was when the mutation began.
    fn undo(self, map: &mut HashMap<K, V>) {
        if let Some(whole) = self.whole {
            *map = whole;
            return;
        }
        for (key, old) in self.saved {
            match old {
                Some(value) => {
                    map.insert(key, value);
                }
                None => {
                    map.remove(&key);
                }
            }
        }
    }

    /// A copy of the map as it was when the mutation began.
    fn original(&self, map: &HashMap<K, V>) -> HashMap<K, V>
    where
        K: Clone,
        V: Clone,
    {
        if let Some(whole) = &self.whole {
            return whole.clone();
        }
        let mut original = map.clone();
        for (key, old) in &self.saved {
            match old {
                Some(value) => {
                    original.insert(key.clone(), value.clone());
                }
                None => {
                    original.remove(key);
                }
            }
        }
        original
    }

    /// The changes from the map when the mutation began to `map`, as `HashMap`'s diff gives
    /// them: the keys that were there first (updated or deleted), then the new keys.
    fn changes<'a>(&'a self, map: &'a HashMap<K, V>, changes: &mut Changes<'a>)
    where
        K: DiffKey,
        V: Diff,
    {
        if let Some(whole) = &self.whole {
            return whole.diff(map, changes);
        }
        for (key, old) in &self.saved {
            let Some(old) = old else { continue };
            match map.get(key) {
                Some(new) => changes.at(key.segment(), |changes| old.diff(new, changes)),
                None => changes.at(key.segment(), Changes::delete),
            }
        }
        for (key, old) in &self.saved {
            if old.is_none() {
                if let Some(new) = map.get(key) {
                    changes.at(key.segment(), |changes| changes.insert(new));
                }
            }
        }
    }
}

impl<K: DiffKey + Eq + Hash, V: Diff> Log<K, V> {
    /// The changes from `map` back to the map when the mutation began: the keys there now
    /// first (updated back or deleted), then the keys to put back, as `HashMap`'s diff from
    /// `map` to the old map gives them.
    fn changes_back<'a>(&'a self, map: &'a HashMap<K, V>, changes: &mut Changes<'a>) {
        if let Some(whole) = &self.whole {
            return map.diff(whole, changes);
        }
        for (key, old) in &self.saved {
            let Some(new) = map.get(key) else { continue };
            match old {
                Some(old) => changes.at(key.segment(), |changes| new.diff(old, changes)),
                None => changes.at(key.segment(), Changes::delete),
            }
        }
        for (key, old) in &self.saved {
            if let (Some(old), false) = (old, map.contains_key(key)) {
                changes.at(key.segment(), |changes| changes.insert(old));
            }
        }
    }
}

impl<K, V> Map<K, V> {
    /// An empty map.
    pub fn new() -> Self {
        HashMap::new().into()
    }

    /// An empty map with room for `capacity` entries.
    pub fn with_capacity(capacity: usize) -> Self {
        HashMap::with_capacity(capacity).into()
    }

    /// The entries and the log, if a mutation is recording; a log left from an ended mutation
    /// is dropped here.
    fn recording(&mut self) -> Option<Recording<'_, K, V>> {
        if self.log.as_ref().is_some_and(|log| log.home.is_closed()) {
            self.log = None;
        }
        let log = self.log.as_deref_mut()?;
        Some((&self.map, log))
    }
}

impl<K: Eq + Hash, V> Map<K, V> {
    /// Keeps the old value of `key` (a clone) unless it is kept already; an absent key needs
    /// nothing (the write cannot create it).
    fn keep<Q>(&mut self, key: &Q)
    where
        K: Borrow<Q> + Clone,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        let Some((map, log)) = self.recording() else {
            return;
        };
        if log.whole.is_some() || log.saved.contains_key(key) {
            return;
        }
        if let Some((key, value)) = map.get_key_value(key) {
            log.saved.insert(key.clone(), Some(value.clone()));
        }
    }

    /// Keeps the old value of an owned `key` (which may be absent) unless it is kept already.
    fn keep_owned(&mut self, key: &K)
    where
        K: Clone,
        V: Clone,
    {
        let Some((map, log)) = self.recording() else {
            return;
        };
        if log.whole.is_none() && !log.saved.contains_key(key) {
            log.saved.insert(key.clone(), map.get(key).cloned());
        }
    }

    /// Keeps the whole map as it was, once: what may reach every value.
    fn keep_whole(&mut self)
    where
        K: Clone,
        V: Clone,
    {
        let Some((map, log)) = self.recording() else {
            return;
        };
        if log.whole.is_none() {
            log.whole = Some(log.original(map));
            log.saved.clear();
        }
    }

    /// Inserts `value` at `key`, returning the value it replaces.
    pub fn insert(&mut self, key: K, value: V) -> Option<V>
    where
        K: Clone,
        V: Clone,
    {
        self.keep_owned(&key);
        self.map.insert(key, value)
    }

    /// Removes `key`, returning its value.
    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q> + Clone,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        self.keep(key);
        self.map.remove(key)
    }

    /// The value at `key`, mutably.
    pub fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q> + Clone,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        self.keep(key);
        self.map.get_mut(key)
    }

    /// The entry of `key`, as `HashMap::entry` gives it.
    pub fn entry(&mut self, key: K) -> hash_map::Entry<'_, K, V>
    where
        K: Clone,
        V: Clone,
    {
        self.keep_owned(&key);
        self.map.entry(key)
    }

    /// Removes every entry.
    pub fn clear(&mut self)
    where
        K: Clone,
        V: Clone,
    {
        self.keep_whole();
        self.map.clear();
    }

    /// Keeps the entries `keep` says yes to; copies the whole map once in a mutation.
    pub fn retain(&mut self, keep: impl FnMut(&K, &mut V) -> bool)
    where
        K: Clone,
        V: Clone,
    {
        self.keep_whole();
        self.map.retain(keep);
    }

    /// Every entry, values mutably; copies the whole map once in a mutation.
    pub fn iter_mut(&mut self) -> hash_map::IterMut<'_, K, V>
    where
        K: Clone,
        V: Clone,
    {
        self.keep_whole();
        self.map.iter_mut()
    }

    /// Every value, mutably; copies the whole map once in a mutation.
    pub fn values_mut(&mut self) -> hash_map::ValuesMut<'_, K, V>
    where
        K: Clone,
        V: Clone,
    {
        self.keep_whole();
        self.map.values_mut()
    }

    /// Runs `f` on the underlying `HashMap`, for what the map has no method of its own;
    /// copies the whole map once in a mutation.
    pub fn with_map<R>(&mut self, f: impl FnOnce(&mut HashMap<K, V>) -> R) -> R
    where
        K: Clone,
        V: Clone,
    {
        self.keep_whole();
        f(&mut self.map)
    }

    /// The entries as a `HashMap`. In a mutation, a tracked map taken out of the state is
    /// copied here, so that its old content can still go back if the mutation fails.
    pub fn into_map(mut self) -> HashMap<K, V>
    where
        K: Clone,
        V: Clone,
    {
        if self.recording().is_some() {
            self.map.clone()
        } else {
            std::mem::take(&mut self.map)
        }
    }
}

impl<K, V> Drop for Map<K, V> {
    fn drop(&mut self) {
        let hand_back = match &self.log {
            Some(log) if !log.home.is_closed() => log.hand_back,
            _ => return,
        };
        hand_back(self);
    }
}

impl<K, V> Default for Map<K, V> {
    fn default() -> Self {
        Map::new()
    }
}

impl<K: Clone, V: Clone> Clone for Map<K, V> {
    /// A copy of the entries; the copy records nothing.
    fn clone(&self) -> Self {
        self.map.clone().into()
    }
}

impl<K: fmt::Debug, V: fmt::Debug> fmt::Debug for Map<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.map, f)
    }
}

impl<K: Eq + Hash, V: PartialEq> PartialEq for Map<K, V> {
    fn eq(&self, other: &Self) -> bool {
        self.map == other.map
    }
}

impl<K: Eq + Hash, V: Eq> Eq for Map<K, V> {}

impl<K, V> Deref for Map<K, V> {
    type Target = HashMap<K, V>;

    fn deref(&self) -> &HashMap<K, V> {
        &self.map
    }
}

impl<K, V> From<HashMap<K, V>> for Map<K, V> {
    fn from(map: HashMap<K, V>) -> Self {
        Map { map, log: None }
    }
}

impl<K: Eq + Hash, V> FromIterator<(K, V)> for Map<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        HashMap::from_iter(iter).into()
    }
}

impl<K: Eq + Hash + Clone, V: Clone> Extend<(K, V)> for Map<K, V> {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        for (key, value) in iter {
            self.insert(key, value);
        }
    }
}

impl<'a, K, V> IntoIterator for &'a Map<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter = hash_map::Iter<'a, K, V>;

    fn into_iter(self) -> Self::IntoIter {
        self.map.iter()
    }
}

impl<K: Serialize, V: Serialize> Serialize for Map<K, V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.map.serialize(serializer)
    }
}

impl<'de, K: Deserialize<'de> + Eq + Hash, V: Deserialize<'de>> Deserialize<'de> for Map<K, V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        HashMap::deserialize(deserializer).map(Map::from)
    }
}

impl<K, V> Collection for Map<K, V>
where
    K: DiffKey + Eq + Hash + Clone + Send + 'static,
    V: Diff + Clone + Send + 'static,
{
    type Content = HashMap<K, V>;
    type Log = Log<K, V>;
    const KIND: &'static str = "Map";

    fn parts(&self) -> (&HashMap<K, V>, Option<&Log<K, V>>) {
        (&self.map, self.log.as_deref())
    }

    fn parts_mut(&mut self) -> (&mut HashMap<K, V>, &mut Option<Box<Log<K, V>>>) {
        (&mut self.map, &mut self.log)
    }

    fn from_content(map: HashMap<K, V>) -> Self {
        map.into()
    }

    fn open(&mut self, home: Arc<Home<HashMap<K, V>>>) {
        self.log = Some(Box::new(Log {
            home,
            saved: HashMap::new(),
            whole: None,
            hand_back: <Self as Collection>::hand_back,
        }));
    }

    fn home(log: &Log<K, V>) -> &Arc<Home<HashMap<K, V>>> {
        &log.home
    }

    fn undo_log(log: Box<Log<K, V>>, map: &mut HashMap<K, V>) -> bool {
        log.undo(map);
        true
    }

    fn original(log: &Log<K, V>, map: &HashMap<K, V>) -> HashMap<K, V> {
        log.original(map)
    }

    fn log_changes<'a>(log: &'a Log<K, V>, map: &'a HashMap<K, V>, changes: &mut Changes<'a>) {
        log.changes(map, changes);
    }

    fn log_changes_back<'a>(log: &'a Log<K, V>, map: &'a HashMap<K, V>, changes: &mut Changes<'a>) {
        log.changes_back(map, changes);
    }
}

tracked_diff!(impl [K, V] for Map<K, V> where [
    K: DiffKey + Eq + Hash + Clone + Send + 'static,
    V: Diff + Clone + Send + 'static,
]);
