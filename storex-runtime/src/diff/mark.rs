//! Marks: what a mutation's transaction keeps of a value so that it can say afterwards what
//! changed (the diff) or put the value back (the rollback).
//!
//! A value that does not track its writes is copied when the mutation begins ([`Mark::copy`]);
//! then the diff compares the copy with the value, and the rollback puts the copy back, at the
//! cost of the whole value. The tracked collections ([`List`](crate::List),
//! [`Map`](crate::Map)) and the structs that hold them (`#[derive(Diff)]`, `#[derive(Store)]`)
//! record their writes instead ([`Mark::tracked`]), so that both cost what the mutation changed.

use std::any::Any;
use std::fmt;

use super::{Changes, Diff};

/// What a transaction keeps of a value of type `T` while a mutation runs: a copy of it, or
/// what the value's own tracking needs (see [`Diff::begin`]).
pub struct Mark<T>(Kind<T>);

enum Kind<T> {
    /// The value as it was; `None` once a rollback moved it back.
    Copy(Option<T>),
    /// The type's own record (a struct's field marks, a collection's handle).
    Tracked(Box<dyn Any + Send>),
}

impl<T> fmt::Debug for Mark<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Kind::Copy(Some(_)) => f.write_str("Mark::copy"),
            Kind::Copy(None) => f.write_str("Mark::copy(restored)"),
            Kind::Tracked(_) => f.write_str("Mark::tracked"),
        }
    }
}

impl<T> Mark<T> {
    /// A mark holding a copy of the value as it was.
    pub fn copy(value: T) -> Self {
        Mark(Kind::Copy(Some(value)))
    }

    /// A mark holding a type's own record of the value (what its tracked methods read back).
    pub fn tracked<R: Any + Send>(record: R) -> Self {
        Mark(Kind::Tracked(Box::new(record)))
    }

    /// The copy, if this is a copy not yet moved back.
    pub fn copied(&self) -> Option<&T> {
        match &self.0 {
            Kind::Copy(value) => value.as_ref(),
            Kind::Tracked(_) => None,
        }
    }

    /// The record, if this mark was made by [`Mark::tracked`] with an `R`.
    pub fn record<R: Any>(&self) -> Option<&R> {
        match &self.0 {
            Kind::Tracked(record) => record.downcast_ref(),
            Kind::Copy(_) => None,
        }
    }

    /// The record, mutably.
    pub fn record_mut<R: Any>(&mut self) -> Option<&mut R> {
        match &mut self.0 {
            Kind::Tracked(record) => record.downcast_mut(),
            Kind::Copy(_) => None,
        }
    }

    /// The record, by value.
    pub fn into_record<R: Any>(self) -> Option<R> {
        match self.0 {
            Kind::Tracked(record) => record.downcast().ok().map(|record| *record),
            Kind::Copy(_) => None,
        }
    }

    /// Moves the copy out (a rollback's first step); `None` for a tracked mark.
    pub fn take_copy(&mut self) -> Option<T> {
        match &mut self.0 {
            Kind::Copy(value) => value.take(),
            Kind::Tracked(_) => None,
        }
    }
}

/// What [`Diff::changes_since`] does for a copy: compare it with the value. For a mark the type
/// does not recognise (a bug in a hand-written implementation), the whole value is sent, which
/// is still exact for the client.
pub fn changes_since_copy<'a, T: Diff>(value: &'a T, mark: &'a Mark<T>, changes: &mut Changes<'a>) {
    match mark.copied() {
        Some(old) => old.diff(value, changes),
        None => changes.update(value),
    }
}

/// What [`Diff::undo`] does for a copy: put it back (the value the mutation made is dropped
/// here, which lets any tracked collection it holds hand its own content back).
pub fn undo_copy<T>(value: &mut T, mark: &mut Mark<T>) {
    if let Some(old) = mark.take_copy() {
        *value = old;
    }
}

/// Begins a transaction on `value`: the function the generated code calls for every field.
#[inline]
pub fn begin<T: Diff + Clone>(value: &mut T) -> Mark<T> {
    value.begin()
}

/// Runs a rollback's two steps on `value`: [`Diff::undo`], then [`Diff::restore`].
pub fn roll_back<T: Diff>(value: &mut T, mut mark: Mark<T>) {
    value.undo(&mut mark);
    value.restore(mark);
}

/// The diff since `mark`, as [`diff`](super::diff) gives it: [`Diff::settle`], then
/// [`Diff::changes_since`].
pub fn changes_since<T: Diff>(
    value: &T,
    mark: &Mark<T>,
) -> Result<Vec<super::Change>, serde_json::Error> {
    value.settle(mark);
    let mut changes = Changes::new();
    value.changes_since(mark, &mut changes);
    changes.finish()
}
