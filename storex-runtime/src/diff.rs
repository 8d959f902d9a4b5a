//! Diffs of store state: the `Diff` trait, the changes it emits, and the client's patch algorithm.
//!
//! The wire format and the order of changes are fixed by PROTOCOL.md: a diff is a list of
//! `{"a":"u"|"i"|"d","p":PATH,"t":VALUE}` changes that a client applies one after another.

use std::borrow::Cow;

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::Value;

/// One step of a path from the root of a state: a map key or a list index.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PathSegment {
    /// A map key or a struct field name.
    Key(String),
    /// A list index.
    Index(usize),
}

impl Serialize for PathSegment {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            PathSegment::Key(key) => serializer.serialize_str(key),
            PathSegment::Index(index) => serializer.serialize_u64(*index as u64),
        }
    }
}

/// One change of a diff, as PROTOCOL.md defines it.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// `{"a":"u","p":path,"t":value}`: the value at `path` becomes `value`.
    Update {
        /// Where, from the root; empty for the root itself.
        path: Vec<PathSegment>,
        /// The new value.
        value: Value,
    },
    /// `{"a":"i","p":path,"t":value}`: a new map key or list element at `path`.
    Insert {
        /// Where, from the root.
        path: Vec<PathSegment>,
        /// The new value.
        value: Value,
    },
    /// `{"a":"d","p":path}`: the map key or list element at `path` goes away.
    Delete {
        /// Where, from the root.
        path: Vec<PathSegment>,
    },
}

impl Serialize for Change {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let (action, path, value) = match self {
            Change::Update { path, value } => ("u", path, Some(value)),
            Change::Insert { path, value } => ("i", path, Some(value)),
            Change::Delete { path } => ("d", path, None),
        };
        let mut map = serializer.serialize_map(Some(if value.is_some() { 3 } else { 2 }))?;
        map.serialize_entry("a", action)?;
        map.serialize_entry("p", &PathRef(path))?;
        if let Some(value) = value {
            map.serialize_entry("t", value)?;
        }
        map.end()
    }
}

struct PathRef<'a>(&'a [PathSegment]);

impl Serialize for PathRef<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for segment in self.0 {
            seq.serialize_element(segment)?;
        }
        seq.end()
    }
}

/// A path segment while a diff is being computed: it borrows keys from the states being compared,
/// so walking unchanged parts of a state allocates nothing.
#[derive(Debug, Clone)]
pub enum Segment<'a> {
    /// A map key or a struct field name.
    Key(Cow<'a, str>),
    /// A list index.
    Index(usize),
}

/// Collects the changes of one diff: the current path and the changes emitted so far.
///
/// Implementations of [`Diff`] walk the old and the new value together, descend with
/// [`Changes::at_key`] / [`Changes::at_index`], and emit with [`Changes::update`],
/// [`Changes::insert`] and [`Changes::delete`] at the current path.
#[derive(Debug, Default)]
pub struct Changes<'a> {
    path: Vec<Segment<'a>>,
    changes: Vec<Change>,
    error: Option<serde_json::Error>,
}

impl<'a> Changes<'a> {
    /// An empty collection at the root path.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `f` with `key` appended to the current path.
    #[inline]
    pub fn at_key<R>(&mut self, key: impl Into<Cow<'a, str>>, f: impl FnOnce(&mut Self) -> R) -> R {
        self.path.push(Segment::Key(key.into()));
        let result = f(self);
        self.path.pop();
        result
    }

    /// Runs `f` with `index` appended to the current path.
    #[inline]
    pub fn at_index<R>(&mut self, index: usize, f: impl FnOnce(&mut Self) -> R) -> R {
        self.path.push(Segment::Index(index));
        let result = f(self);
        self.path.pop();
        result
    }

    /// Emits "the value at the current path becomes `value`".
    pub fn update<T: Serialize + ?Sized>(&mut self, value: &T) {
        if let Some(value) = self.serialize_value(value) {
            let path = self.owned_path();
            self.changes.push(Change::Update { path, value });
        }
    }

    /// Emits "a new map key or list element at the current path".
    pub fn insert<T: Serialize + ?Sized>(&mut self, value: &T) {
        if let Some(value) = self.serialize_value(value) {
            let path = self.owned_path();
            self.changes.push(Change::Insert { path, value });
        }
    }

    /// Emits "the map key or list element at the current path goes away".
    pub fn delete(&mut self) {
        let path = self.owned_path();
        self.changes.push(Change::Delete { path });
    }

    /// The changes in the order they were emitted, or the first serialization error met.
    pub fn finish(self) -> Result<Vec<Change>, serde_json::Error> {
        match self.error {
            Some(error) => Err(error),
            None => Ok(self.changes),
        }
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Option<Value> {
        match serde_json::to_value(value) {
            Ok(value) => Some(value),
            Err(error) => {
                self.error.get_or_insert(error);
                None
            }
        }
    }

    fn owned_path(&self) -> Vec<PathSegment> {
        self.path
            .iter()
            .map(|segment| match segment {
                Segment::Key(key) => PathSegment::Key(key.clone().into_owned()),
                Segment::Index(index) => PathSegment::Index(*index),
            })
            .collect()
    }
}

/// A value that can compute the changes turning it into another value of its type.
///
/// Implemented for scalars, `String`, `Option`, `Box`, `Vec`/arrays/slices (by position),
/// `HashMap`/`BTreeMap` with string-like keys (by key), `serde_json::Value`, and, through
/// `#[derive(Diff)]` or `#[derive(Store)]`, for structs with named fields (field by field).
///
/// The contract (checked by property tests): applying the changes to `self`'s JSON with
/// [`apply`] gives exactly `new`'s JSON.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be diffed",
    label = "this type has no `storex::Diff` implementation",
    note = "derive it with `#[derive(storex::Diff)]` on your own types, or mark the field `#[storex(replace)]` to send the whole value when it changes"
)]
pub trait Diff: Serialize {
    /// Emits into `changes`, at its current path, what turns `self` into `new`.
    fn diff<'a>(&'a self, new: &'a Self, changes: &mut Changes<'a>);
}

/// The changes that turn `old` into `new`, in the order a client applies them.
///
/// ```
/// let old = vec![1, 2, 3];
/// let new = vec![1, 5];
/// let changes = storex::diff::diff(&old, &new).unwrap();
/// assert_eq!(
///     serde_json::to_string(&changes).unwrap(),
///     r#"[{"a":"u","p":[1],"t":5},{"a":"d","p":[2]}]"#
/// );
/// ```
pub fn diff<T: Diff + ?Sized>(old: &T, new: &T) -> Result<Vec<Change>, serde_json::Error> {
    let mut changes = Changes::new();
    old.diff(new, &mut changes);
    changes.finish()
}

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

macro_rules! diff_floats {
    ($($ty:ty),*) => {$(
        impl Diff for $ty {
            #[inline]
            fn diff<'a>(&'a self, new: &'a Self, changes: &mut Changes<'a>) {
                // Bitwise: NaN equals itself here (no endless updates), and 0.0 vs -0.0 is a change.
                if self.to_bits() != new.to_bits() {
                    changes.update(new);
                }
            }
        }
    )*};
}

diff_floats!(f32, f64);

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

impl<T: Diff + ?Sized> Diff for std::sync::Arc<T> {
    #[inline]
    fn diff<'a>(&'a self, new: &'a Self, changes: &mut Changes<'a>) {
        if !std::sync::Arc::ptr_eq(self, new) {
            (**self).diff(&**new, changes)
        }
    }
}

impl<T: Diff> Diff for Option<T> {
    fn diff<'a>(&'a self, new: &'a Self, changes: &mut Changes<'a>) {
        match (self, new) {
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
        // Growing: append after the common part. Shrinking: remove the tail from the highest
        // index down, so every index stays valid while the client splices one by one.
        for (index, item) in new.iter().enumerate().skip(common) {
            changes.at_index(index, |changes| changes.insert(item));
        }
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

impl<T: Diff + Clone> Diff for Cow<'_, T>
where
    T: Serialize,
{
    #[inline]
    fn diff<'a>(&'a self, new: &'a Self, changes: &mut Changes<'a>) {
        self.as_ref().diff(new.as_ref(), changes)
    }
}

/// A map key that serde_json writes as a JSON object key: strings and integers.
pub trait DiffKey: Serialize {
    /// The key as it appears in the JSON object.
    fn json_key(&self) -> Cow<'_, str>;
}

impl DiffKey for String {
    fn json_key(&self) -> Cow<'_, str> {
        Cow::Borrowed(self)
    }
}

impl DiffKey for &str {
    fn json_key(&self) -> Cow<'_, str> {
        Cow::Borrowed(self)
    }
}

impl DiffKey for Cow<'_, str> {
    fn json_key(&self) -> Cow<'_, str> {
        Cow::Borrowed(self.as_ref())
    }
}

impl DiffKey for std::sync::Arc<str> {
    fn json_key(&self) -> Cow<'_, str> {
        Cow::Borrowed(self)
    }
}

macro_rules! integer_keys {
    ($($ty:ty),*) => {$(
        impl DiffKey for $ty {
            fn json_key(&self) -> Cow<'_, str> {
                Cow::Owned(self.to_string())
            }
        }
    )*};
}

integer_keys!(i8, i16, i32, i64, i128, isize, u8, u16, u32, u64, u128, usize);

impl<K, V, S> Diff for std::collections::HashMap<K, V, S>
where
    K: DiffKey + Eq + std::hash::Hash,
    V: Diff,
    S: std::hash::BuildHasher,
{
    fn diff<'a>(&'a self, new: &'a Self, changes: &mut Changes<'a>) {
        for (key, old_value) in self {
            match new.get(key) {
                Some(new_value) => {
                    changes.at_key(key.json_key(), |changes| old_value.diff(new_value, changes))
                }
                None => changes.at_key(key.json_key(), Changes::delete),
            }
        }
        for (key, new_value) in new {
            if !self.contains_key(key) {
                changes.at_key(key.json_key(), |changes| changes.insert(new_value));
            }
        }
    }
}

impl<K, V> Diff for std::collections::BTreeMap<K, V>
where
    K: DiffKey + Ord,
    V: Diff,
{
    fn diff<'a>(&'a self, new: &'a Self, changes: &mut Changes<'a>) {
        for (key, old_value) in self {
            match new.get(key) {
                Some(new_value) => {
                    changes.at_key(key.json_key(), |changes| old_value.diff(new_value, changes))
                }
                None => changes.at_key(key.json_key(), Changes::delete),
            }
        }
        for (key, new_value) in new {
            if !self.contains_key(key) {
                changes.at_key(key.json_key(), |changes| changes.insert(new_value));
            }
        }
    }
}

impl Diff for Value {
    fn diff<'a>(&'a self, new: &'a Self, changes: &mut Changes<'a>) {
        match (self, new) {
            (Value::Object(old), Value::Object(new)) => {
                for (key, old_value) in old {
                    match new.get(key) {
                        Some(new_value) => changes
                            .at_key(key.as_str(), |changes| old_value.diff(new_value, changes)),
                        None => changes.at_key(key.as_str(), Changes::delete),
                    }
                }
                for (key, new_value) in new {
                    if !old.contains_key(key) {
                        changes.at_key(key.as_str(), |changes| changes.insert(new_value));
                    }
                }
            }
            (Value::Array(old), Value::Array(new)) => old.as_slice().diff(new.as_slice(), changes),
            (old, new) => {
                if old != new {
                    changes.update(new)
                }
            }
        }
    }
}

/// Why a diff could not be applied to a state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// A path step that names a missing key or index, or steps into a scalar.
    #[error("path {path:?} does not exist in the state")]
    Missing {
        /// The change's whole path.
        path: Vec<PathSegment>,
    },
    /// A delete of the root.
    #[error("the root cannot be deleted")]
    DeleteRoot,
}

/// Applies `changes` to `state` exactly as the Storex client does (PROTOCOL.md): one after another;
/// update and insert assign at the path (`parent[last] = t`, an index one past the end appends),
/// delete removes (`splice` for a list, `delete` for an object); an empty path is the root.
///
/// ```
/// use serde_json::json;
/// let mut state = json!({"todos": ["a", "b", "c"]});
/// let changes = storex::diff::diff(&json!({"todos": ["a", "b", "c"]}), &json!({"todos": ["z"]})).unwrap();
/// storex::diff::apply(&mut state, &changes).unwrap();
/// assert_eq!(state, json!({"todos": ["z"]}));
/// ```
pub fn apply(state: &mut Value, changes: &[Change]) -> Result<(), PatchError> {
    for change in changes {
        apply_one(state, change)?;
    }
    Ok(())
}

fn apply_one(state: &mut Value, change: &Change) -> Result<(), PatchError> {
    let (path, value) = match change {
        Change::Update { path, value } | Change::Insert { path, value } => (path, Some(value)),
        Change::Delete { path } => (path, None),
    };
    let missing = || PatchError::Missing { path: path.clone() };
    let Some((last, parents)) = path.split_last() else {
        return match value {
            Some(value) => {
                *state = value.clone();
                Ok(())
            }
            None => Err(PatchError::DeleteRoot),
        };
    };
    let mut parent = state;
    for segment in parents {
        parent = match (parent, segment) {
            (Value::Object(map), PathSegment::Key(key)) => map.get_mut(key),
            (Value::Array(list), PathSegment::Index(index)) => list.get_mut(*index),
            _ => None,
        }
        .ok_or_else(missing)?;
    }
    match (parent, last, value) {
        (Value::Object(map), PathSegment::Key(key), Some(value)) => {
            map.insert(key.clone(), value.clone());
        }
        (Value::Object(map), PathSegment::Key(key), None) => {
            map.remove(key).ok_or_else(missing)?;
        }
        (Value::Array(list), PathSegment::Index(index), Some(value)) => {
            match (*index).cmp(&list.len()) {
                std::cmp::Ordering::Less => list[*index] = value.clone(),
                std::cmp::Ordering::Equal => list.push(value.clone()),
                std::cmp::Ordering::Greater => return Err(missing()),
            }
        }
        (Value::Array(list), PathSegment::Index(index), None) => {
            if *index >= list.len() {
                return Err(missing());
            }
            list.remove(*index);
        }
        _ => return Err(missing()),
    }
    Ok(())
}
