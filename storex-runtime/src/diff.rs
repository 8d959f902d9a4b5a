//! Diffs of store state: the `Diff` trait, the changes it emits, and the client's patch algorithm.
//!
//! The wire format and the order of changes are fixed by PROTOCOL.md: a diff is a list of
//! `{"a":"u"|"i"|"d","p":PATH,"t":VALUE}` changes that a client applies one after another.
//! What the implementations here emit, so that this sequential application is exact:
//! - lists by position: the common part first, then inserts in ascending index order when the
//!   list grew, or deletes from the highest index down when it shrank;
//! - maps by key (keys as serde_json writes them: integers, bools and chars become strings);
//! - a value whose JSON type changed, and `None` ↔ `Some`, is one update at its path (`[]` for the root);
//! - floats change when their JSON does: bit for bit when finite (`0.0` → `-0.0` is sent), and never
//!   between two non-finite values, which JSON writes alike as `null`.
//!
//! Walking unchanged parts of a state allocates nothing: paths borrow keys from the states, and a
//! value is serialized only when a change carrying it is emitted.

use std::borrow::Cow;
use std::fmt;

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

mod impls;
pub mod mark;
mod patch;
#[cfg(test)]
mod tests;

pub use impls::{replace_if_changed, DiffKey};
pub use mark::{transact, Mark, TransactError, Transacted};
pub use patch::{apply, apply_to, ApplyError, PatchError};

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

/// A change as its JSON reads back (a diff kept as text, replayed on another node).
#[derive(Deserialize)]
struct ChangeWire {
    a: Action,
    p: Vec<SegmentWire>,
    #[serde(default)]
    t: Option<Value>,
}

#[derive(Deserialize)]
enum Action {
    #[serde(rename = "u")]
    Update,
    #[serde(rename = "i")]
    Insert,
    #[serde(rename = "d")]
    Delete,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum SegmentWire {
    Key(String),
    Index(usize),
}

impl<'de> Deserialize<'de> for Change {
    /// Reads `{"a":"u"|"i"|"d","p":PATH,"t":VALUE}`; an update or insert without `t` is an
    /// error.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = ChangeWire::deserialize(deserializer)?;
        let path = wire
            .p
            .into_iter()
            .map(|segment| match segment {
                SegmentWire::Key(key) => PathSegment::Key(key),
                SegmentWire::Index(index) => PathSegment::Index(index),
            })
            .collect();
        let value = || {
            wire.t
                .clone()
                .ok_or_else(|| serde::de::Error::missing_field("t"))
        };
        Ok(match wire.a {
            Action::Update => Change::Update {
                path,
                value: value()?,
            },
            Action::Insert => Change::Insert {
                path,
                value: value()?,
            },
            Action::Delete => Change::Delete { path },
        })
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
#[derive(Clone)]
pub enum Segment<'a> {
    /// A map key or a struct field name.
    Key(Cow<'a, str>),
    /// A list index.
    Index(usize),
    /// A map key that JSON writes as the string its `Display` gives (an integer, a bool, a char):
    /// that string is only built when a change under it is emitted.
    DisplayKey(&'a (dyn fmt::Display + 'a)),
}

impl fmt::Debug for Segment<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Segment::Key(key) => f.debug_tuple("Key").field(key).finish(),
            Segment::Index(index) => f.debug_tuple("Index").field(index).finish(),
            Segment::DisplayKey(key) => f
                .debug_tuple("DisplayKey")
                .field(&format_args!("{key}"))
                .finish(),
        }
    }
}

impl Segment<'_> {
    fn to_owned_segment(&self) -> PathSegment {
        match self {
            Segment::Key(key) => PathSegment::Key(key.as_ref().to_owned()),
            Segment::Index(index) => PathSegment::Index(*index),
            Segment::DisplayKey(key) => PathSegment::Key(key.to_string()),
        }
    }
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

    /// Runs `f` with `segment` appended to the current path: the general form of
    /// [`Changes::at_key`] and [`Changes::at_index`], used for map keys ([`DiffKey::segment`]).
    #[inline]
    pub fn at<R>(&mut self, segment: Segment<'a>, f: impl FnOnce(&mut Self) -> R) -> R {
        self.path.push(segment);
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

    /// Emits, at the current path, changes computed on their own from the value here (their
    /// paths start at this value): a diff against a copy that does not live as long as the
    /// states being compared.
    pub(crate) fn graft(&mut self, inner: Result<Vec<Change>, serde_json::Error>) {
        let inner = match inner {
            Ok(inner) => inner,
            Err(error) => {
                self.error.get_or_insert(error);
                return;
            }
        };
        let prefix = self.owned_path();
        for change in inner {
            let mut change = change;
            let path = match &mut change {
                Change::Update { path, .. }
                | Change::Insert { path, .. }
                | Change::Delete { path } => path,
            };
            path.splice(0..0, prefix.iter().cloned());
            self.changes.push(change);
        }
    }

    /// Records that the changes cannot be computed (the first reason met is kept).
    pub(crate) fn fail(&mut self, reason: &str) {
        self.error
            .get_or_insert_with(|| serde::ser::Error::custom(reason));
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
        self.path.iter().map(Segment::to_owned_segment).collect()
    }
}

/// A value that can compute the changes turning it into another value of its type.
///
/// Implemented for scalars, `String`, `Option`, `Box`/`Rc`/`Arc`/`Cow`, `Vec`/arrays/slices/tuples
/// (by position), `HashMap`/`BTreeMap` whose keys are strings, integers, bools or chars (by key,
/// see [`DiffKey`]), `serde_json::Value`, and, through `#[derive(Diff)]` or `#[derive(Store)]`,
/// for structs with named fields (field by field), newtypes (as their field) and enums, tuple
/// and unit structs (whole).
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

    /// Whether [`begin`](Diff::begin) records writes instead of copying the value: true for
    /// [`List`](crate::List) and [`Map`](crate::Map), and for derived structs that hold one
    /// (at any depth of struct fields).
    const TRACKED: bool = false;

    /// A mutation begins: keep what [`changes_since`](Diff::changes_since) and a rollback will
    /// need. By default a copy of the value (it costs the value's size); tracked types record
    /// their writes from here on instead.
    fn begin(&mut self) -> Mark<Self>
    where
        Self: Clone + Sized,
    {
        Mark::copy(self.clone())
    }

    /// Runs before [`changes_since`](Diff::changes_since), on the whole state: a tracked
    /// collection the mutation moved into another tracked field (`mem::swap`, `mem::take`)
    /// leaves a copy of its old content for the field it came from, so that this field's diff
    /// is against it. Nothing to do for other values.
    fn settle(&self, mark: &Mark<Self>)
    where
        Self: Sized,
    {
        let _ = mark;
    }

    /// The changes from the value at [`begin`](Diff::begin) to `self`: exactly what
    /// [`diff`](Diff::diff) of the two would emit (map changes may come in another order).
    fn changes_since<'a>(&'a self, mark: &'a Mark<Self>, changes: &mut Changes<'a>)
    where
        Self: Sized,
    {
        mark::changes_since_copy(self, mark, changes);
    }

    /// The changes that turn `self` back into the value at [`begin`](Diff::begin): the
    /// inverse of [`changes_since`](Diff::changes_since), exactly what [`diff`](Diff::diff)
    /// from `self` to the old value would emit (map changes may come in another order). What an
    /// undo applies.
    fn changes_back<'a>(&'a self, mark: &'a Mark<Self>, changes: &mut Changes<'a>)
    where
        Self: Sized,
    {
        mark::changes_back_copy(self, mark, changes);
    }

    /// A rollback's first step: the value goes back to what it was at
    /// [`begin`](Diff::begin), as far as its own record reaches. What the mutation made is
    /// dropped here, so that a tracked collection it moved elsewhere hands its content back.
    fn undo(&mut self, mark: &mut Mark<Self>)
    where
        Self: Sized,
    {
        mark::undo_copy(self, mark);
    }

    /// A rollback's second step, after every part of the state took the first: a tracked
    /// collection the mutation replaced takes back the content its original handed over.
    fn restore(&mut self, mark: Mark<Self>)
    where
        Self: Sized,
    {
        let _ = mark;
    }

    /// The mutation stands: tracking ends, and what the mark kept is let go.
    fn commit(&mut self, mark: Mark<Self>)
    where
        Self: Sized,
    {
        let _ = mark;
    }
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
