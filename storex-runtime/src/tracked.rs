//! Tracked collections: [`List`] and [`Map`], a `Vec` and a `HashMap` that record their writes
//! while a mutation runs, so that the mutation's diff and its rollback cost what it changed, not
//! what the collection holds.
//!
//! Outside a mutation they are a `Vec` and a `HashMap` with one empty field beside them. When a
//! mutation begins, the store's transaction opens a log in each tracked collection of the state
//! (through [`Diff::begin`]; struct fields are followed to any depth). A
//! write then keeps the old value of what it touches, the first time only:
//! - `list[i] = x`, `list[i].field = x`, `list.get_mut(i)`, `map.get_mut(k)`, `map.insert(k, v)`,
//!   `map.entry(k)`, `map.remove(k)` keep one old element (a clone of it);
//! - `list.push(x)` and `list.pop()` at the end keep nothing or the popped element;
//! - `list.insert(i, x)`, `list.remove(i)`, `list.truncate(n)` keep the elements that move;
//! - what may touch every element (`iter_mut`, `retain`, the sorts, [`List::with_vec`],
//!   [`Map::with_map`]) keeps a copy of the whole collection once, as an untracked field would.
//!
//! Inside an element, nothing is tracked: an element written is copied whole and diffed whole, so
//! keep elements small (a row, a card) and put what grows in collections of the state's structs.
//!
//! Replacing a tracked collection (`self.items = List::new()`, `std::mem::take`) is allowed: the
//! collection dropped or moved away hands its content back, so a rollback still restores it and
//! the diff still compares with it. A collection moved out of the state for good (into a static,
//! a channel) while the mutation then fails cannot be put back: the field is left empty and an
//! error is logged.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::diff::mark::{changes_back_copy, changes_since_copy, undo_copy};
use crate::diff::{Changes, Diff, Mark};

/// `impl Diff` for a tracked collection: the diff of its content, and the transaction methods,
/// which are the [`Collection`] protocol's functions below.
macro_rules! tracked_diff {
    (impl [$($params:tt)*] for $ty:ty where [$($bounds:tt)*]) => {
        impl<$($params)*> $crate::diff::Diff for $ty
        where
            $($bounds)*
        {
            #[inline]
            fn diff<'a>(&'a self, new: &'a Self, changes: &mut $crate::diff::Changes<'a>) {
                use $crate::tracked::Collection;
                self.parts().0.diff(new.parts().0, changes);
            }

            const TRACKED: bool = true;

            fn begin(&mut self) -> $crate::diff::Mark<Self> {
                $crate::tracked::begin(self)
            }

            fn settle(&self, mark: &$crate::diff::Mark<Self>) {
                $crate::tracked::settle(self, mark);
            }

            fn changes_since<'a>(
                &'a self,
                mark: &'a $crate::diff::Mark<Self>,
                changes: &mut $crate::diff::Changes<'a>,
            ) {
                $crate::tracked::changes_since(self, mark, changes);
            }

            fn changes_back<'a>(
                &'a self,
                mark: &'a $crate::diff::Mark<Self>,
                changes: &mut $crate::diff::Changes<'a>,
            ) {
                $crate::tracked::changes_back(self, mark, changes);
            }

            fn undo(&mut self, mark: &mut $crate::diff::Mark<Self>) {
                $crate::tracked::undo(self, mark);
            }

            fn restore(&mut self, mark: $crate::diff::Mark<Self>) {
                $crate::tracked::restore(self, mark);
            }

            fn commit(&mut self, mark: $crate::diff::Mark<Self>) {
                $crate::tracked::commit(self, mark);
            }
        }
    };
}

mod list;
mod map;

pub use list::List;
pub use map::Map;

/// Where a tracked collection of one transaction hands its content back if it is dropped or set
/// aside before the transaction ends; shared by the collection's log and the transaction's mark.
struct Home<C> {
    /// What the collection held when the transaction began, handed over by
    /// [`Home::hand_over`].
    content: Mutex<Option<C>>,
    /// The transaction ended: a log pointing here is stale.
    closed: AtomicBool,
}

impl<C> Home<C> {
    fn new() -> Arc<Self> {
        Arc::new(Home {
            content: Mutex::new(None),
            closed: AtomicBool::new(false),
        })
    }

    fn hand_over(&self, content: C) {
        *self.content.lock().unwrap_or_else(PoisonError::into_inner) = Some(content);
    }

    fn take(&self) -> Option<C> {
        self.content
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// The handed-over content, cloned (for a diff against a collection that was replaced).
    fn cloned(&self) -> Option<C>
    where
        C: Clone,
    {
        self.content
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

/// Why the way back of a tracked collection cannot be computed: it was moved out of the state
/// for good, so its old content was never handed back.
const GONE: &str = "a tracked collection was moved out of the state, so its old content is unknown";

/// Logs an error for a rollback that found a tracked collection gone for good.
fn lost(kind: &str) {
    tracing::error!(
        "a rollback could not restore a {kind}: the failing mutation moved it out of the state; \
         the field is left empty"
    );
}

/// The record a tracked collection's mark holds: the home of its own transaction.
struct Own<C> {
    home: Arc<Home<C>>,
    /// The rollback found another collection in the field: it takes its content from `home`.
    replaced: bool,
}

impl<C> Drop for Own<C> {
    /// A mark dropped without a commit or a rollback (a `begin` that panicked half-way) ends
    /// its transaction too: the collection's log goes stale and is let go at its next write.
    fn drop(&mut self) {
        self.home.close();
    }
}

/// The record of a transaction inside another one (`transact` on part of a state in a
/// mutation): a copy of the content, and the outer transaction's home, to tell whether the
/// collection in the field is still the one the outer log belongs to.
struct Inner<C> {
    copy: C,
    outer: Arc<Home<C>>,
}

/// What the transaction protocol needs of a tracked collection: its content, its log and what
/// the log does. `List` and `Map` implement it; `tracked_diff!` makes their `Diff` impl of the
/// functions below.
trait Collection: Sized {
    /// What the collection holds (`Vec<T>`, `HashMap<K, V>`).
    type Content: Diff + Clone + Default + Send + 'static;
    /// What it keeps during one transaction.
    type Log;
    /// Its name in a log line.
    const KIND: &'static str;

    /// The content and the log, if one is open (or stale).
    fn parts(&self) -> (&Self::Content, Option<&Self::Log>);
    /// The content and the log's place.
    fn parts_mut(&mut self) -> (&mut Self::Content, &mut Option<Box<Self::Log>>);
    /// A collection holding `content`, recording nothing.
    fn from_content(content: Self::Content) -> Self;
    /// Opens a log whose transaction is kept in `home`.
    fn open(&mut self, home: Arc<Home<Self::Content>>);
    /// The home of a log.
    fn home(log: &Self::Log) -> &Arc<Home<Self::Content>>;
    /// Puts `content` back as it was when the log opened; false when it cannot.
    fn undo_log(log: Box<Self::Log>, content: &mut Self::Content) -> bool;
    /// A copy of the content as it was when the log opened.
    fn original(log: &Self::Log, content: &Self::Content) -> Self::Content;
    /// The changes from the content when the log opened to `content`.
    fn log_changes<'a>(log: &'a Self::Log, content: &'a Self::Content, changes: &mut Changes<'a>);
    /// The changes from `content` back to the content when the log opened.
    fn log_changes_back<'a>(
        log: &'a Self::Log,
        content: &'a Self::Content,
        changes: &mut Changes<'a>,
    );
    /// Hands the content as it was when the log opened to the log's home (the collection is
    /// dropped, or set aside by a rollback), and closes the log.
    fn hand_back(&mut self) {
        let (content, slot) = self.parts_mut();
        let Some(log) = slot.take() else {
            return;
        };
        let home = Self::home(&log).clone();
        if home.is_closed() {
            return;
        }
        let mut original = std::mem::take(content);
        if Self::undo_log(log, &mut original) {
            home.hand_over(original);
        }
    }
}

/// The log of `collection` if it belongs to `home`.
fn logs_to<'c, C: Collection>(
    collection: &'c C,
    home: &Arc<Home<C::Content>>,
) -> Option<&'c C::Log> {
    collection
        .parts()
        .1
        .filter(|log| Arc::ptr_eq(C::home(log), home))
}

fn begin<C: Collection>(collection: &mut C) -> Mark<C> {
    let (content, log) = collection.parts();
    if let Some(log) = log.filter(|log| !C::home(log).is_closed()) {
        // A transaction inside another one: a copy, and the outer log goes on recording.
        return Mark::tracked(Inner {
            copy: content.clone(),
            outer: C::home(log).clone(),
        });
    }
    let home = Home::new();
    collection.open(home.clone());
    Mark::tracked(Own {
        home,
        replaced: false,
    })
}

fn settle<C: Collection>(collection: &C, mark: &Mark<C>) {
    // The home this field's collection should log to; a collection logging elsewhere came
    // from another field and leaves a copy of its old content for the field it left.
    let expected = if let Some(own) = mark.record::<Own<C::Content>>() {
        &own.home
    } else if let Some(inner) = mark.record::<Inner<C::Content>>() {
        &inner.outer
    } else {
        return;
    };
    let (content, log) = collection.parts();
    if let Some(log) = log {
        let home = C::home(log);
        if !Arc::ptr_eq(home, expected) && !home.is_closed() {
            home.hand_over(C::original(log, content));
        }
    }
}

fn changes_since<'a, C: Collection + Diff>(
    collection: &'a C,
    mark: &'a Mark<C>,
    changes: &mut Changes<'a>,
) {
    let content = collection.parts().0;
    if let Some(inner) = mark.record::<Inner<C::Content>>() {
        return inner.copy.diff(content, changes);
    }
    let Some(own) = mark.record::<Own<C::Content>>() else {
        return changes_since_copy(collection, mark, changes);
    };
    match logs_to(collection, &own.home) {
        Some(log) => C::log_changes(log, content, changes),
        // Another collection is in the field: the diff is against what the original handed
        // back.
        None => match own.home.cloned() {
            Some(old) => changes.graft(crate::diff::diff(&old, content)),
            None => changes.update(content),
        },
    }
}

fn changes_back<'a, C: Collection + Diff>(
    collection: &'a C,
    mark: &'a Mark<C>,
    changes: &mut Changes<'a>,
) {
    let content = collection.parts().0;
    if let Some(inner) = mark.record::<Inner<C::Content>>() {
        return content.diff(&inner.copy, changes);
    }
    let Some(own) = mark.record::<Own<C::Content>>() else {
        return changes_back_copy(collection, mark, changes);
    };
    match logs_to(collection, &own.home) {
        Some(log) => C::log_changes_back(log, content, changes),
        None => match own.home.cloned() {
            Some(old) => changes.graft(crate::diff::diff(content, &old)),
            None => changes.fail(GONE),
        },
    }
}

fn undo<C: Collection>(collection: &mut C, mark: &mut Mark<C>) {
    if let Some(inner) = mark.record_mut::<Inner<C::Content>>() {
        let copy = std::mem::take(&mut inner.copy);
        if logs_to(collection, &inner.outer).is_some() {
            // The collection the outer log belongs to: its content goes back, and the outer
            // log, which saw every write, stays.
            *collection.parts_mut().0 = copy;
        } else {
            // Another one is in the field: it is dropped (handing its own content back to its
            // own transaction) and the copy takes its place.
            *collection = C::from_content(copy);
        }
        return;
    }
    let Some(own) = mark.record_mut::<Own<C::Content>>() else {
        return undo_copy(collection, mark);
    };
    let (content, slot) = collection.parts_mut();
    match slot.take() {
        Some(log) if Arc::ptr_eq(C::home(&log), &own.home) => {
            if !C::undo_log(log, content) {
                lost(C::KIND);
            }
        }
        other => {
            // Another collection is in the field: it hands its own content back to where it
            // came from, and this field takes the original's content in `restore`.
            *slot = other;
            collection.hand_back();
            drop(std::mem::take(collection.parts_mut().0));
            own.replaced = true;
        }
    }
}

fn restore<C: Collection>(collection: &mut C, mark: Mark<C>) {
    let Some(own) = mark.into_record::<Own<C::Content>>() else {
        return;
    };
    if own.replaced {
        match own.home.take() {
            Some(content) => *collection.parts_mut().0 = content,
            None => lost(C::KIND),
        }
    }
}

fn commit<C: Collection>(collection: &mut C, mark: Mark<C>) {
    // A mark of its own ends the log in the field, when it is this transaction's or a stale
    // one; an outer transaction's log (the collection was moved here from a part of the state
    // an outer transaction tracks) goes on. An `Inner` mark leaves the outer log recording.
    let Some(own) = mark.into_record::<Own<C::Content>>() else {
        return;
    };
    let slot = collection.parts_mut().1;
    let ends = slot.as_ref().is_some_and(|log| {
        let home = C::home(log);
        Arc::ptr_eq(home, &own.home) || home.is_closed()
    });
    if ends {
        *slot = None;
    }
}
