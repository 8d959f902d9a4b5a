//! `Diff` for the standard types: scalars by equality, sequences by position, maps by key.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hash};
use std::rc::Rc;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Number, Value};

use super::{Changes, Diff, Segment};

/// Replaces the whole value when it differs: the diff of values without inner structure.
#[inline]
pub fn replace_if_changed<'a, T: Serialize + PartialEq + ?Sized>(
    old: &'a T,
    new: &'a T,
    changes: &mut Changes<'a>,
) {
    if old != new {
        changes.update(new);
    }
}

macro_rules! diff_by_equality {
    ($($ty:ty),* $(,)?) => {$(
        impl Diff for $ty {
            #[inline]
            fn diff<'a>(&'a self, new: &'a Self, changes: &mut Changes<'a>) {
                replace_if_changed(self, new, changes);
            }
        }
    )*};
}

diff_by_equality!(
    bool,
    char,
    i8,
    i16,
    i32,
    i64,
    i128,
    isize,
    u8,
    u16,
    u32,
    u64,
    u128,
    usize,
    String,
    str,
    ()
);

/// Whether two floats have different JSON. serde_json writes every non-finite float as `null`, so
/// NaN, NaN with another payload and the infinities are all the same (no endless updates of a NaN
/// field); finite floats are compared bit for bit, so `0.0` → `-0.0` is a change, as in the JSON.
#[inline]
fn float_changed(old: f64, new: f64) -> bool {
    if old.is_finite() || new.is_finite() {
        old.to_bits() != new.to_bits()
    } else {
        false
    }
}

impl Diff for f64 {
    #[inline]
    fn diff<'a>(&'a self, new: &'a Self, changes: &mut Changes<'a>) {
        if float_changed(*self, *new) {
            changes.update(new);
        }
    }
}

impl Diff for f32 {
    #[inline]
    fn diff<'a>(&'a self, new: &'a Self, changes: &mut Changes<'a>) {
        // serde_json turns an f32 into the f64 of the same value, which is exact.
        if float_changed(f64::from(*self), f64::from(*new)) {
            changes.update(new);
        }
    }
}

impl<T: Diff + ?Sized> Diff for &T {
    #[inline]
    fn diff<'a>(&'a self, new: &'a Self, changes: &mut Changes<'a>) {
        (**self).diff(&**new, changes)
    }
}

impl<T: Diff + ?Sized> Diff for Box<T> {
    #[inline]
    fn diff<'a>(&'a self, new: &'a Self, changes: &mut Changes<'a>) {
        (**self).diff(&**new, changes)
    }
}

impl<T: Diff + ?Sized> Diff for Arc<T> {
    #[inline]
    fn diff<'a>(&'a self, new: &'a Self, changes: &mut Changes<'a>) {
        // A snapshot that shares this value with the new state has nothing to compare.
        if !Arc::ptr_eq(self, new) {
            (**self).diff(&**new, changes)
        }
    }
}

impl<T: Diff + ?Sized> Diff for Rc<T> {
    #[inline]
    fn diff<'a>(&'a self, new: &'a Self, changes: &mut Changes<'a>) {
        if !Rc::ptr_eq(self, new) {
            (**self).diff(&**new, changes)
        }
    }
}

impl<T: Diff + ToOwned + ?Sized> Diff for Cow<'_, T> {
    #[inline]
    fn diff<'a>(&'a self, new: &'a Self, changes: &mut Changes<'a>) {
        (**self).diff(&**new, changes)
    }
}

impl<T: Diff> Diff for Option<T> {
    fn diff<'a>(&'a self, new: &'a Self, changes: &mut Changes<'a>) {
        match (self, new) {
            // serde_json writes `Some(x)` as `x`, so the inner diff applies as is.
            (Some(old), Some(new)) => old.diff(new, changes),
            (None, None) => {}
            _ => changes.update(new),
        }
    }
}

impl<T: Diff> Diff for [T] {
    fn diff<'a>(&'a self, new: &'a Self, changes: &mut Changes<'a>) {
        let common = self.len().min(new.len());
        for (index, (old_item, new_item)) in self.iter().zip(new).enumerate() {
            changes.at_index(index, |changes| old_item.diff(new_item, changes));
        }
        // Growing: append after the common part, lowest index first, each one at the list's end.
        for (index, item) in new.iter().enumerate().skip(common) {
            changes.at_index(index, |changes| changes.insert(item));
        }
        // Shrinking: remove the tail from the highest index down, so that every index still
        // names the element it meant while the client splices one by one.
        for index in (common..self.len()).rev() {
            changes.at_index(index, Changes::delete);
        }
    }
}

impl<T: Diff> Diff for Vec<T> {
    #[inline]
    fn diff<'a>(&'a self, new: &'a Self, changes: &mut Changes<'a>) {
        self.as_slice().diff(new.as_slice(), changes)
    }
}

impl<T: Diff, const N: usize> Diff for [T; N]
where
    [T; N]: Serialize,
{
    #[inline]
    fn diff<'a>(&'a self, new: &'a Self, changes: &mut Changes<'a>) {
        self.as_slice().diff(new.as_slice(), changes)
    }
}

// Tuples are JSON arrays of a fixed length: position by position, nothing to insert or delete.
macro_rules! diff_tuples {
    ($(($($name:ident $index:tt),+))*) => {$(
        impl<$($name: Diff),+> Diff for ($($name,)+) {
            #[inline]
            fn diff<'a>(&'a self, new: &'a Self, changes: &mut Changes<'a>) {
                $(changes.at_index($index, |changes| self.$index.diff(&new.$index, changes));)+
            }
        }
    )*};
}

diff_tuples! {
    (A 0)
    (A 0, B 1)
    (A 0, B 1, C 2)
    (A 0, B 1, C 2, D 3)
    (A 0, B 1, C 2, D 3, E 4)
    (A 0, B 1, C 2, D 3, E 4, F 5)
}

/// A map key, as it appears in the JSON object serde_json writes for the map.
///
/// Strings are the key itself; integers, bools and chars become the string their `Display`
/// gives, which is what serde_json writes (`{1: x}` is `{"1": x}`). The key's segment borrows
/// from the key, so walking an unchanged map allocates nothing.
pub trait DiffKey: Serialize {
    /// The path segment naming this key.
    fn segment(&self) -> Segment<'_>;
}

impl DiffKey for str {
    #[inline]
    fn segment(&self) -> Segment<'_> {
        Segment::Key(Cow::Borrowed(self))
    }
}

impl DiffKey for String {
    #[inline]
    fn segment(&self) -> Segment<'_> {
        Segment::Key(Cow::Borrowed(self))
    }
}

impl<K: DiffKey + ?Sized> DiffKey for &K {
    #[inline]
    fn segment(&self) -> Segment<'_> {
        (**self).segment()
    }
}

impl<K: DiffKey + ?Sized> DiffKey for Box<K> {
    #[inline]
    fn segment(&self) -> Segment<'_> {
        (**self).segment()
    }
}

impl<K: DiffKey + ?Sized> DiffKey for Arc<K> {
    #[inline]
    fn segment(&self) -> Segment<'_> {
        (**self).segment()
    }
}

impl<K: DiffKey + ?Sized> DiffKey for Rc<K> {
    #[inline]
    fn segment(&self) -> Segment<'_> {
        (**self).segment()
    }
}

impl<K: DiffKey + ToOwned + ?Sized> DiffKey for Cow<'_, K> {
    #[inline]
    fn segment(&self) -> Segment<'_> {
        (**self).segment()
    }
}

macro_rules! display_keys {
    ($($ty:ty),*) => {$(
        impl DiffKey for $ty {
            #[inline]
            fn segment(&self) -> Segment<'_> {
                Segment::DisplayKey(self)
            }
        }
    )*};
}

display_keys!(i8, i16, i32, i64, i128, isize, u8, u16, u32, u64, u128, usize, bool, char);

/// The key-by-key diff every map shares: common keys recurse, removed keys are deleted, new keys
/// inserted. Keys are independent of each other, so the order of the changes does not matter.
fn diff_maps<'a, K: 'a, V: Diff + 'a>(
    old: impl IntoIterator<Item = (&'a K, &'a V)>,
    new: impl IntoIterator<Item = (&'a K, &'a V)>,
    in_new: impl Fn(&K) -> Option<&'a V>,
    in_old: impl Fn(&K) -> bool,
    segment: impl Fn(&'a K) -> Segment<'a>,
    changes: &mut Changes<'a>,
) {
    for (key, old_value) in old {
        match in_new(key) {
            Some(new_value) => {
                changes.at(segment(key), |changes| old_value.diff(new_value, changes))
            }
            None => changes.at(segment(key), Changes::delete),
        }
    }
    for (key, new_value) in new {
        if !in_old(key) {
            changes.at(segment(key), |changes| changes.insert(new_value));
        }
    }
}

impl<K, V, S> Diff for HashMap<K, V, S>
where
    K: DiffKey + Eq + Hash,
    V: Diff,
    S: BuildHasher,
{
    fn diff<'a>(&'a self, new: &'a Self, changes: &mut Changes<'a>) {
        let (in_new, in_old) = (|key: &K| new.get(key), |key: &K| self.contains_key(key));
        diff_maps(self, new, in_new, in_old, K::segment, changes);
    }
}

impl<K, V> Diff for BTreeMap<K, V>
where
    K: DiffKey + Ord,
    V: Diff,
{
    fn diff<'a>(&'a self, new: &'a Self, changes: &mut Changes<'a>) {
        let (in_new, in_old) = (|key: &K| new.get(key), |key: &K| self.contains_key(key));
        diff_maps(self, new, in_new, in_old, K::segment, changes);
    }
}

impl Diff for Value {
    fn diff<'a>(&'a self, new: &'a Self, changes: &mut Changes<'a>) {
        match (self, new) {
            (Value::Object(old), Value::Object(new)) => {
                let (in_new, in_old) = (
                    |key: &String| new.get(key),
                    |key: &String| old.contains_key(key),
                );
                let segment = |key: &'a String| Segment::Key(Cow::Borrowed(key.as_str()));
                diff_maps(old, new, in_new, in_old, segment, changes);
            }
            (Value::Array(old), Value::Array(new)) => old.as_slice().diff(new.as_slice(), changes),
            (Value::Number(old), Value::Number(new)) => {
                if !same_number(old, new) {
                    changes.update(new);
                }
            }
            // Anything else: equal scalars, or one update for a scalar change or a type change.
            (old, new) => {
                if old != new {
                    changes.update(new)
                }
            }
        }
    }
}

/// Numbers as their JSON text tells them apart: `1` and `1.0` differ (serde_json's equality says
/// so too), and so do `0.0` and `-0.0` (which serde_json's equality calls equal), as for `f64`.
fn same_number(old: &Number, new: &Number) -> bool {
    match (old.is_f64(), new.is_f64()) {
        (true, true) => old.as_f64().map(f64::to_bits) == new.as_f64().map(f64::to_bits),
        _ => old == new,
    }
}
