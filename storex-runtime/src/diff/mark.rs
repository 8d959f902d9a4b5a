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

use super::{Change, Changes, Diff};

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

/// What [`Diff::changes_back`] does for a copy: compare the value with it.
pub fn changes_back_copy<'a, T: Diff>(value: &'a T, mark: &'a Mark<T>, changes: &mut Changes<'a>) {
    match mark.copied() {
        Some(old) => value.diff(old, changes),
        None => changes.fail("the value as it was is not kept, so the way back is unknown"),
    }
}

/// What [`Diff::undo`] does for a copy: put it back (the value the mutation made is dropped
/// here, which lets any tracked collection it holds hand its own content back).
pub fn undo_copy<T>(value: &mut T, mark: &mut Mark<T>) {
    if let Some(old) = mark.take_copy() {
        *value = old;
    }
}

/// The changes back to the value at `mark` (an undo): [`Diff::settle`], then
/// [`Diff::changes_back`].
pub fn changes_back<T: Diff>(
    value: &T,
    mark: &Mark<T>,
) -> Result<Vec<super::Change>, serde_json::Error> {
    value.settle(mark);
    let mut changes = Changes::new();
    value.changes_back(mark, &mut changes);
    changes.finish()
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

/// A value in a transaction: what the mutation writes goes to `state`, and unless
/// [`commit`](Transaction::commit) is called, dropping the transaction (an error, a panic
/// unwinding through it, a cancelled future) puts the value back as it was.
pub(crate) struct Transaction<'s, T: Diff> {
    pub(crate) state: &'s mut T,
    mark: Option<Mark<T>>,
}

impl<'s, T: Diff + Clone> Transaction<'s, T> {
    /// Marks `state` ([`Diff::begin`]). A panicking `Clone` leaves the state untouched and
    /// unwinds from here.
    pub(crate) fn begin(state: &'s mut T) -> Self {
        let mark = state.begin();
        Transaction {
            state,
            mark: Some(mark),
        }
    }
}

impl<T: Diff> Transaction<'_, T> {
    /// The changes since the transaction began. The mark stays in the transaction meanwhile, so
    /// a panic in a `Serialize` or `Diff` impl rolls back.
    pub(crate) fn changes(&self) -> Result<Vec<Change>, serde_json::Error> {
        match &self.mark {
            Some(mark) => changes_since(&*self.state, mark),
            None => Ok(Vec::new()),
        }
    }

    /// The changes back to the value as it was when the transaction began.
    pub(crate) fn changes_back(&self) -> Result<Vec<Change>, serde_json::Error> {
        match &self.mark {
            Some(mark) => changes_back(&*self.state, mark),
            None => Ok(Vec::new()),
        }
    }

    /// The changes stand.
    pub(crate) fn commit(mut self) {
        if let Some(mark) = self.mark.take() {
            self.state.commit(mark);
        }
    }
}

impl<T: Diff> Drop for Transaction<'_, T> {
    fn drop(&mut self) {
        if let Some(mark) = self.mark.take() {
            // The value goes back; what the mutation made is dropped on the way.
            roll_back(self.state, mark);
        }
    }
}

/// A change [`transact`] made: what the closure returned, the diff, and the way back.
#[derive(Debug, Clone, PartialEq)]
pub struct Transacted<R> {
    /// What the closure returned.
    pub value: R,
    /// The changes from the value before to the value after (what a client applies).
    pub diff: Vec<Change>,
    /// The changes from the value after back to the value before: apply them with
    /// [`apply_to`](super::apply_to) to undo the change.
    pub undo: Vec<Change>,
}

/// Why [`transact`] left the value as it was.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransactError<E> {
    /// The closure returned this error.
    #[error("{0}")]
    Refused(E),
    /// The value could not be serialized into its diff.
    #[error("the changed value cannot be serialized: {0}")]
    Unserializable(#[source] serde_json::Error),
}

/// Runs `change` on `value` as a transaction, as the runtime runs a mutation: when it returns
/// an error (or panics, which unwinds from here), `value` is put back as it was; when it
/// succeeds, the result says what changed and how to go back. It costs what the change
/// touched when `value` holds tracked collections ([`List`](crate::List),
/// [`Map`](crate::Map)), and a copy of `value` otherwise.
///
/// Inside a mutation, on part of the store's state, the tracked collections it reaches are
/// copied (a transaction inside another one); elsewhere (state shared outside the store, a
/// test) it records only what the change writes.
///
/// ```
/// use storex::diff::{apply_to, transact, TransactError};
/// use storex::List;
///
/// let mut list: List<i32> = vec![1, 2, 3].into();
/// let done = transact(&mut list, |list| -> Result<(), String> {
///     list[0] = 10;
///     list.push(4);
///     Ok(())
/// })
/// .unwrap();
/// assert_eq!(serde_json::to_string(&done.diff).unwrap(), r#"[{"a":"u","p":[0],"t":10},{"a":"i","p":[3],"t":4}]"#);
///
/// // Refused: the list is as it was.
/// let refused = transact(&mut list, |list| -> Result<(), &str> {
///     list.clear();
///     Err("no")
/// });
/// assert!(matches!(refused, Err(TransactError::Refused("no"))));
/// assert_eq!(list, [10, 2, 3, 4]);
///
/// // Undone: the way back, applied.
/// apply_to(&mut list, &done.undo).unwrap();
/// assert_eq!(list, [1, 2, 3]);
/// ```
pub fn transact<T, R, E>(
    value: &mut T,
    change: impl FnOnce(&mut T) -> Result<R, E>,
) -> Result<Transacted<R>, TransactError<E>>
where
    T: Diff + Clone,
{
    let transaction = Transaction::begin(value);
    let result = change(&mut *transaction.state).map_err(TransactError::Refused)?;
    let diff = transaction
        .changes()
        .map_err(TransactError::Unserializable)?;
    let undo = transaction
        .changes_back()
        .map_err(TransactError::Unserializable)?;
    transaction.commit();
    Ok(Transacted {
        value: result,
        diff,
        undo,
    })
}
