//! [`List`]: a `Vec` that records its writes while a mutation runs.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::{Deref, Index, IndexMut, Range};
use std::slice::SliceIndex;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{lost, Home, GONE};
use crate::diff::mark::{changes_back_copy, changes_since_copy, undo_copy};
use crate::diff::{Changes, Diff, Mark};

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
struct Log<T> {
    home: Arc<Home<Vec<T>>>,
    /// The length when the mutation began.
    old_len: usize,
    /// The old value of each position below `old_len` that was written or vacated, by position.
    /// A position not here holds the element it held when the mutation began.
    saved: BTreeMap<usize, T>,
    /// The whole list as it was, once a write could reach every element.
    whole: Option<Vec<T>>,
}

/// The record a list's mark holds.
struct ListMark<T> {
    home: Arc<Home<Vec<T>>>,
    /// The rollback found another list in the field: it takes its content from `home`.
    replaced: bool,
}

/// The record of a transaction inside another one (`transact` on part of a state in a
/// mutation): a copy of the content, and the outer transaction's home, to tell whether the
/// collection in the field is still the one the outer log belongs to.
struct Inner<T> {
    copy: Vec<T>,
    outer: Arc<Home<Vec<T>>>,
}

impl<T> Drop for ListMark<T> {
    /// A mark dropped without a commit or a rollback (a `begin` that panicked half-way) ends
    /// its transaction too: the collection's log goes stale and is let go at its next write.
    fn drop(&mut self) {
        self.home.close();
    }
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

    /// The log, if a mutation is recording; a log left from an ended mutation is dropped here.
    fn open_log(&mut self) -> Option<&mut Log<T>> {
        if self.log.as_ref().is_some_and(|log| log.home.is_closed()) {
            self.log = None;
        }
        self.log.as_deref_mut()
    }

    /// Keeps the old values of the positions in `range` (clamped to the list and to the old
    /// length) that are not kept yet.
    fn keep(&mut self, range: Range<usize>)
    where
        T: Clone,
    {
        let len = self.items.len();
        let items = &self.items;
        let Some(log) = self.log.as_deref_mut() else {
            return;
        };
        if log.home.is_closed() {
            self.log = None;
            return;
        }
        if log.whole.is_some() {
            return;
        }
        let end = range.end.min(len).min(log.old_len);
        for (index, item) in items.iter().enumerate().take(end).skip(range.start) {
            log.saved.entry(index).or_insert_with(|| item.clone());
        }
    }

    /// Keeps the whole list as it was, once: what may reach every element.
    fn keep_whole(&mut self)
    where
        T: Clone,
    {
        let items = &self.items;
        let Some(log) = self.log.as_deref_mut() else {
            return;
        };
        if log.home.is_closed() {
            self.log = None;
            return;
        }
        if log.whole.is_some() {
            return;
        }
        let mut saved = std::mem::take(&mut log.saved);
        let original = (0..log.old_len)
            .map(|index| {
                saved
                    .remove(&index)
                    .unwrap_or_else(|| items[index].clone())
            })
            .collect();
        log.whole = Some(original);
    }

    /// Hands the list's content as it was when the mutation began to the mutation's
    /// transaction (the list is dropped, or set aside by a rollback).
    fn hand_back(&mut self) {
        let Some(log) = self.log.take() else {
            return;
        };
        if log.home.is_closed() {
            return;
        }
        let home = log.home.clone();
        let mut items = std::mem::take(&mut self.items);
        if log.undo(&mut items) {
            home.hand_over(items);
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
        if self.open_log().is_some() {
            self.items.clone()
        } else {
            std::mem::take(&mut self.items)
        }
    }
}

impl<T> Drop for List<T> {
    fn drop(&mut self) {
        self.hand_back();
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

impl<T: Diff + Clone + Send + 'static> Diff for List<T> {
    #[inline]
    fn diff<'a>(&'a self, new: &'a Self, changes: &mut Changes<'a>) {
        self.items.as_slice().diff(new.items.as_slice(), changes);
    }

    const TRACKED: bool = true;

    fn begin(&mut self) -> Mark<Self> {
        if self.log.as_ref().is_some_and(|log| !log.home.is_closed()) {
            // A transaction inside another one (`transact` on part of a state in a
            // mutation): a copy, and the outer log goes on recording.
            if let Some(log) = &self.log {
                return Mark::tracked(Inner {
                    copy: self.items.clone(),
                    outer: log.home.clone(),
                });
            }
        }
        let home = Home::new();
        self.log = Some(Box::new(Log {
            home: home.clone(),
            old_len: self.items.len(),
            saved: BTreeMap::new(),
            whole: None,
        }));
        Mark::tracked(ListMark {
            home,
            replaced: false,
        })
    }

    fn settle(&self, mark: &Mark<Self>) {
        // The home this field's collection should log to; a collection logging elsewhere came
        // from another field and leaves a copy of its old content for the field it left.
        let expected = if let Some(record) = mark.record::<ListMark<T>>() {
            &record.home
        } else if let Some(inner) = mark.record::<Inner<T>>() {
            &inner.outer
        } else {
            return;
        };
        match &self.log {
            Some(log) if !Arc::ptr_eq(&log.home, expected) && !log.home.is_closed() => {
                log.home.hand_over(log.original(&self.items));
            }
            _ => {}
        }
    }

    fn changes_since<'a>(&'a self, mark: &'a Mark<Self>, changes: &mut Changes<'a>) {
        if let Some(inner) = mark.record::<Inner<T>>() {
            return inner.copy.diff(&self.items, changes);
        }
        let Some(record) = mark.record::<ListMark<T>>() else {
            return changes_since_copy(self, mark, changes);
        };
        match &self.log {
            Some(log) if Arc::ptr_eq(&log.home, &record.home) => log.changes(&self.items, changes),
            // Another list is in the field: the diff is against what the original handed back.
            _ => match record.home.cloned() {
                Some(old) => changes.graft(crate::diff::diff(old.as_slice(), &*self.items)),
                None => changes.update(&self.items),
            },
        }
    }

    fn changes_back<'a>(&'a self, mark: &'a Mark<Self>, changes: &mut Changes<'a>) {
        if let Some(inner) = mark.record::<Inner<T>>() {
            return self.items.diff(&inner.copy, changes);
        }
        let Some(record) = mark.record::<ListMark<T>>() else {
            return changes_back_copy(self, mark, changes);
        };
        match &self.log {
            Some(log) if Arc::ptr_eq(&log.home, &record.home) => {
                log.changes_back(&self.items, changes)
            }
            _ => match record.home.cloned() {
                Some(old) => changes.graft(crate::diff::diff(&*self.items, old.as_slice())),
                None => changes.fail(GONE),
            },
        }
    }

    fn undo(&mut self, mark: &mut Mark<Self>) {
        if let Some(inner) = mark.record_mut::<Inner<T>>() {
            let copy = std::mem::take(&mut inner.copy);
            match &self.log {
                // The collection the outer log belongs to: its content goes back, and the
                // outer log, which saw every write, stays.
                Some(log) if Arc::ptr_eq(&log.home, &inner.outer) => self.items = copy,
                // Another one is in the field: it is dropped (handing its own content back to
                // its own transaction) and the copy takes its place.
                _ => *self = copy.into(),
            }
            return;
        }
        let Some(record) = mark.record_mut::<ListMark<T>>() else {
            return undo_copy(self, mark);
        };
        match self.log.take() {
            Some(log) if Arc::ptr_eq(&log.home, &record.home) => {
                if !log.undo(&mut self.items) {
                    lost("List");
                }
            }
            other => {
                // Another list is in the field: it hands its own content back to where it came
                // from, and this field takes the original's content in `restore`.
                self.log = other;
                self.hand_back();
                drop(std::mem::take(&mut self.items));
                record.replaced = true;
            }
        }
    }

    fn restore(&mut self, mark: Mark<Self>) {
        let Some(record) = mark.into_record::<ListMark<T>>() else {
            return;
        };
        if record.replaced {
            match record.home.take() {
                Some(items) => self.items = items,
                None => lost("List"),
            }
        }
        record.home.close();
    }

    fn commit(&mut self, mark: Mark<Self>) {
        // A copy (a transaction inside another one) leaves the outer log recording; a mark of
        // its own ends the log in the field, and any other one this transaction left behind.
        if let Some(record) = mark.into_record::<ListMark<T>>() {
            // An outer transaction's log in the field (a collection moved here from a part of
            // the state an outer transaction tracks) goes on; this one's or a stale one ends.
            let ends = self.log.as_ref().is_some_and(|log| {
                Arc::ptr_eq(&log.home, &record.home) || log.home.is_closed()
            });
            if ends {
                self.log = None;
            }
            record.home.close();
        }
    }
}
