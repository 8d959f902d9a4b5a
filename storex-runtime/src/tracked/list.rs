//! [`List`]: a `Vec` that records its writes while a mutation runs.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::{Deref, Index, IndexMut, Range};
use std::slice::SliceIndex;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{Collection, Home};
use crate::diff::{Changes, Diff};

/// A `Vec` for store state whose mutations cost what they change: while a mutation runs it
/// keeps the old value of each element the first time it is written, so the diff visits only
/// those, and a rollback puts only those back (see [the module](crate::tracked)).
///
/// Reads are a slice's (`list[i]`, `list.len()`, `list.iter()`, through `Deref<Target = [T]>`);
/// writes are `Vec`'s names: `list[i].done = true`, `list.push(x)`, `list.remove(i)`.
/// Its JSON is the JSON of the `Vec`.
///
/// ```
/// use storex::List;
///
/// let mut list: List<i32> = vec![1, 2, 3].into();
/// list[1] += 10;
/// list.push(4);
/// assert_eq!(list, [1, 12, 3, 4]);
/// assert_eq!(serde_json::to_string(&list).unwrap(), "[1,12,3,4]");
/// ```
pub struct List<T> {
    items: Vec<T>,
    /// Open while a mutation of the state that holds the list runs.
    log: Option<Box<Log<T>>>,
}

/// What a list keeps during one mutation.
pub(super) struct Log<T> {
    home: Arc<Home<Vec<T>>>,
    /// The length when the mutation began.
    old_len: usize,
    /// The old value of each position below `old_len` that was written or vacated, by position.
    /// A position not here holds the element it held when the mutation began.
    saved: BTreeMap<usize, T>,
    /// The whole list as it was, once a write could reach every element.
    whole: Option<Vec<T>>,
    /// [`Collection::hand_back`], which needs the bounds of `Diff`: a `Drop` impl cannot ask
    /// for them, `begin` can.
    hand_back: fn(&mut List<T>),
}

impl<T> Log<T> {
    /// Puts `items` back as they were when the mutation began. False when a vacated position
    /// has no saved value (cannot happen while the log's rules hold).
    fn undo(self, items: &mut Vec<T>) -> bool {
        let Log {
            old_len,
            mut saved,
            whole,
            ..
        } = self;
        if let Some(whole) = whole {
            *items = whole;
            return true;
        }
        items.truncate(old_len);
        while items.len() < old_len {
            match saved.remove(&items.len()) {
                Some(value) => items.push(value),
                None => return false,
            }
        }
        for (index, value) in saved {
            if let Some(slot) = items.get_mut(index) {
                *slot = value;
            }
        }
        true
    }

    /// A copy of the list as it was when the mutation began.
    fn original(&self, items: &[T]) -> Vec<T>
    where
        T: Clone,
    {
        if let Some(whole) = &self.whole {
            return whole.clone();
        }
        (0..self.old_len)
            .filter_map(|index| self.saved.get(&index).or_else(|| items.get(index)))
            .cloned()
            .collect()
    }

    /// The changes from the list when the mutation began to `items`, as `[T]`'s diff gives them.
    fn changes<'a>(&'a self, items: &'a [T], changes: &mut Changes<'a>)
    where
        T: Diff,
    {
        if let Some(whole) = &self.whole {
            return whole.as_slice().diff(items, changes);
        }
        let common = items.len().min(self.old_len);
        for (&index, old) in self.saved.range(..common) {
            changes.at_index(index, |changes| old.diff(&items[index], changes));
        }
        for (index, item) in items.iter().enumerate().skip(self.old_len) {
            changes.at_index(index, |changes| changes.insert(item));
        }
        for index in (common..self.old_len).rev() {
            changes.at_index(index, Changes::delete);
        }
    }
}

impl<T: Diff> Log<T> {
    /// The changes from `items` back to the list when the mutation began: the inverse of
    /// [`Log::changes`], as `[T]`'s diff from `items` to the old list gives them.
    fn changes_back<'a>(&'a self, items: &'a [T], changes: &mut Changes<'a>) {
        if let Some(whole) = &self.whole {
            return items.diff(whole.as_slice(), changes);
        }
        let common = items.len().min(self.old_len);
        for (&index, old) in self.saved.range(..common) {
            changes.at_index(index, |changes| items[index].diff(old, changes));
        }
        for (index, old) in self.saved.range(common..self.old_len) {
            changes.at_index(*index, |changes| changes.insert(old));
        }
        for index in (self.old_len..items.len()).rev() {
            changes.at_index(index, Changes::delete);
        }
    }
}

impl<T> List<T> {
    /// An empty list.
    pub const fn new() -> Self {
        List {
            items: Vec::new(),
            log: None,
        }
    }

    /// An empty list with room for `capacity` elements.
    pub fn with_capacity(capacity: usize) -> Self {
        Vec::with_capacity(capacity).into()
    }

    /// The elements.
    pub fn as_slice(&self) -> &[T] {
        &self.items
    }

    /// The items and the log, if a mutation is recording; a log left from an ended mutation is
    /// dropped here.
    fn recording(&mut self) -> Option<(&Vec<T>, &mut Log<T>)> {
        if self.log.as_ref().is_some_and(|log| log.home.is_closed()) {
            self.log = None;
        }
        let log = self.log.as_deref_mut()?;
        Some((&self.items, log))
    }

    /// Keeps the old values of the positions in `range` (clamped to the list and to the old
    /// length) that are not kept yet.
    fn keep(&mut self, range: Range<usize>)
    where
        T: Clone,
    {
        let Some((items, log)) = self.recording() else {
            return;
        };
        if log.whole.is_some() {
            return;
        }
        let end = range.end.min(items.len()).min(log.old_len);
        for (index, item) in items.iter().enumerate().take(end).skip(range.start) {
            log.saved.entry(index).or_insert_with(|| item.clone());
        }
    }

    /// Keeps the whole list as it was, once: what may reach every element.
    fn keep_whole(&mut self)
    where
        T: Clone,
    {
        let Some((items, log)) = self.recording() else {
            return;
        };
        if log.whole.is_none() {
            log.whole = Some(log.original(items));
            log.saved.clear();
        }
    }

    /// Appends an element.
    pub fn push(&mut self, value: T) {
        self.items.push(value);
    }

    /// Removes the last element and returns it.
    pub fn pop(&mut self) -> Option<T>
    where
        T: Clone,
    {
        let last = self.items.len().checked_sub(1)?;
        self.keep(last..last + 1);
        self.items.pop()
    }

    /// Inserts an element at `index`, shifting the ones after it. Panics if `index > len`.
    pub fn insert(&mut self, index: usize, value: T)
    where
        T: Clone,
    {
        self.keep(index..self.items.len());
        self.items.insert(index, value);
    }

    /// Removes the element at `index`, shifting the ones after it. Panics if out of bounds.
    pub fn remove(&mut self, index: usize) -> T
    where
        T: Clone,
    {
        self.keep(index..self.items.len());
        self.items.remove(index)
    }

    /// Removes the element at `index`, putting the last one in its place. Panics if out of
    /// bounds.
    pub fn swap_remove(&mut self, index: usize) -> T
    where
        T: Clone,
    {
        let len = self.items.len();
        self.keep(index..index + 1);
        self.keep(len.saturating_sub(1)..len);
        self.items.swap_remove(index)
    }

    /// Swaps two elements. Panics if either is out of bounds.
    pub fn swap(&mut self, a: usize, b: usize)
    where
        T: Clone,
    {
        self.keep(a..a + 1);
        self.keep(b..b + 1);
        self.items.swap(a, b);
    }

    /// Keeps the first `len` elements.
    pub fn truncate(&mut self, len: usize)
    where
        T: Clone,
    {
        self.keep(len..self.items.len());
        self.items.truncate(len);
    }

    /// Removes every element.
    pub fn clear(&mut self)
    where
        T: Clone,
    {
        self.truncate(0);
    }

    /// The element at `index`, mutably.
    pub fn get_mut(&mut self, index: usize) -> Option<&mut T>
    where
        T: Clone,
    {
        self.keep(index..index + 1);
        self.items.get_mut(index)
    }

    /// The first element, mutably.
    pub fn first_mut(&mut self) -> Option<&mut T>
    where
        T: Clone,
    {
        self.get_mut(0)
    }

    /// The last element, mutably.
    pub fn last_mut(&mut self) -> Option<&mut T>
    where
        T: Clone,
    {
        let last = self.items.len().checked_sub(1)?;
        self.get_mut(last)
    }

    /// Every element, mutably. In a mutation this copies the whole list once (it may write
    /// any element); prefer `list[i]` or [`get_mut`](Self::get_mut) for a few.
    pub fn iter_mut(&mut self) -> std::slice::IterMut<'_, T>
    where
        T: Clone,
    {
        self.keep_whole();
        self.items.iter_mut()
    }

    /// The elements as a mutable slice; copies the whole list once in a mutation.
    pub fn as_mut_slice(&mut self) -> &mut [T]
    where
        T: Clone,
    {
        self.keep_whole();
        &mut self.items
    }

    /// Keeps the elements `keep` says yes to; copies the whole list once in a mutation.
    pub fn retain(&mut self, keep: impl FnMut(&T) -> bool)
    where
        T: Clone,
    {
        self.keep_whole();
        self.items.retain(keep);
    }

    /// Sorts the list (stable); copies the whole list once in a mutation.
    pub fn sort(&mut self)
    where
        T: Clone + Ord,
    {
        self.keep_whole();
        self.items.sort();
    }

    /// Sorts the list with a comparator (stable); copies the whole list once in a mutation.
    pub fn sort_by(&mut self, compare: impl FnMut(&T, &T) -> std::cmp::Ordering)
    where
        T: Clone,
    {
        self.keep_whole();
        self.items.sort_by(compare);
    }

    /// Sorts the list by a key (stable); copies the whole list once in a mutation.
    pub fn sort_by_key<K: Ord>(&mut self, key: impl FnMut(&T) -> K)
    where
        T: Clone,
    {
        self.keep_whole();
        self.items.sort_by_key(key);
    }

    /// Reverses the order of the elements; copies the whole list once in a mutation.
    pub fn reverse(&mut self)
    where
        T: Clone,
    {
        self.keep_whole();
        self.items.reverse();
    }

    /// Runs `f` on the underlying `Vec`, for what the list has no method of its own; copies
    /// the whole list once in a mutation.
    ///
    /// ```
    /// let mut list: storex::List<i32> = vec![3, 1, 2].into();
    /// list.with_vec(|items| items.dedup());
    /// ```
    pub fn with_vec<R>(&mut self, f: impl FnOnce(&mut Vec<T>) -> R) -> R
    where
        T: Clone,
    {
        self.keep_whole();
        f(&mut self.items)
    }

    /// The elements as a `Vec`. In a mutation, a tracked list taken out of the state is copied
    /// here, so that its old content can still go back if the mutation fails.
    pub fn into_vec(mut self) -> Vec<T>
    where
        T: Clone,
    {
        if self.recording().is_some() {
            self.items.clone()
        } else {
            std::mem::take(&mut self.items)
        }
    }
}

impl<T> Drop for List<T> {
    fn drop(&mut self) {
        let hand_back = match &self.log {
            Some(log) if !log.home.is_closed() => log.hand_back,
            _ => return,
        };
        hand_back(self);
    }
}

impl<T> Default for List<T> {
    fn default() -> Self {
        List::new()
    }
}

impl<T: Clone> Clone for List<T> {
    /// A copy of the elements; the copy records nothing.
    fn clone(&self) -> Self {
        self.items.clone().into()
    }
}

impl<T: fmt::Debug> fmt::Debug for List<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.items, f)
    }
}

impl<T: PartialEq> PartialEq for List<T> {
    fn eq(&self, other: &Self) -> bool {
        self.items == other.items
    }
}

impl<T: Eq> Eq for List<T> {}

impl<T: PartialEq, const N: usize> PartialEq<[T; N]> for List<T> {
    fn eq(&self, other: &[T; N]) -> bool {
        self.items == other
    }
}

impl<T: PartialEq> PartialEq<Vec<T>> for List<T> {
    fn eq(&self, other: &Vec<T>) -> bool {
        &self.items == other
    }
}

impl<T> Deref for List<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        &self.items
    }
}

impl<T, I: SliceIndex<[T]>> Index<I> for List<T> {
    type Output = I::Output;

    fn index(&self, index: I) -> &I::Output {
        &self.items[index]
    }
}

impl<T: Clone> IndexMut<usize> for List<T> {
    fn index_mut(&mut self, index: usize) -> &mut T {
        self.keep(index..index + 1);
        &mut self.items[index]
    }
}

impl<T> From<Vec<T>> for List<T> {
    fn from(items: Vec<T>) -> Self {
        List { items, log: None }
    }
}

impl<T> FromIterator<T> for List<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        Vec::from_iter(iter).into()
    }
}

impl<T> Extend<T> for List<T> {
    fn extend<I: IntoIterator<Item = T>>(&mut self, iter: I) {
        self.items.extend(iter);
    }
}

impl<'a, T> IntoIterator for &'a List<T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;

    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}

impl<T: Clone> IntoIterator for List<T> {
    type Item = T;
    type IntoIter = std::vec::IntoIter<T>;

    fn into_iter(self) -> Self::IntoIter {
        self.into_vec().into_iter()
    }
}

impl<T: Serialize> Serialize for List<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.items.serialize(serializer)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for List<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Vec::deserialize(deserializer).map(List::from)
    }
}

impl<T: Diff + Clone + Send + 'static> Collection for List<T> {
    type Content = Vec<T>;
    type Log = Log<T>;
    const KIND: &'static str = "List";

    fn parts(&self) -> (&Vec<T>, Option<&Log<T>>) {
        (&self.items, self.log.as_deref())
    }

    fn parts_mut(&mut self) -> (&mut Vec<T>, &mut Option<Box<Log<T>>>) {
        (&mut self.items, &mut self.log)
    }

    fn from_content(items: Vec<T>) -> Self {
        items.into()
    }

    fn open(&mut self, home: Arc<Home<Vec<T>>>) {
        self.log = Some(Box::new(Log {
            home,
            old_len: self.items.len(),
            saved: BTreeMap::new(),
            whole: None,
            hand_back: <Self as Collection>::hand_back,
        }));
    }

    fn home(log: &Log<T>) -> &Arc<Home<Vec<T>>> {
        &log.home
    }

    fn undo_log(log: Box<Log<T>>, items: &mut Vec<T>) -> bool {
        log.undo(items)
    }

    fn original(log: &Log<T>, items: &Vec<T>) -> Vec<T> {
        log.original(items)
    }

    fn log_changes<'a>(log: &'a Log<T>, items: &'a Vec<T>, changes: &mut Changes<'a>) {
        log.changes(items, changes);
    }

    fn log_changes_back<'a>(log: &'a Log<T>, items: &'a Vec<T>, changes: &mut Changes<'a>) {
        log.changes_back(items, changes);
    }
}

tracked_diff!(impl [T] for List<T> where [T: Diff + Clone + Send + 'static]);
