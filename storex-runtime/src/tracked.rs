//! Tracked collections: [`List`] and [`Map`], a `Vec` and a `HashMap` that record their writes
//! while a mutation runs, so that the mutation's diff and its rollback cost what it changed, not
//! what the collection holds.
//!
//! Outside a mutation they are a `Vec` and a `HashMap` with one empty field beside them. When a
//! mutation begins, the store's transaction opens a log in each tracked collection of the state
//! (through [`Diff::begin`](crate::Diff::begin); struct fields are followed to any depth). A
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

mod list;
mod map;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

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
