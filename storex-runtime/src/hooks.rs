//! Middleware around mutations: the hooks an application sets on its [`Config`](crate::Config)
//! that run before every mutation (and may refuse it) and after it (and see what it did).
//!
//! Both kinds see a [`MutationEvent`]: the session, the store, the mutation's name and arguments,
//! and whether a client committed it or server code sent it ([`Source`]). Hooks run on the task
//! of the session, one mutation at a time, in the order they were added; a hook added for one
//! store ([`Config::before_mutation_of`](crate::Config::before_mutation_of)) runs only for that
//! store's mutations, in its place in that order. They are plain functions: they must not block
//! (hand slow work to a task of their own).
//!
//! A panic in a hook is caught: a before hook that panics refuses the mutation (its answer says
//! a hook failed, without the panic's text); an after hook that panics is logged, and the answer
//! goes as it would have.

use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use serde_json::Value;

use crate::diff::Change;
use crate::instance::{Applied, MutationError};
use crate::store::Session;

/// Who asked for a mutation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Source {
    /// The session's client committed it.
    Client,
    /// Server code sent it through the [`Hub`](crate::Hub) (a server-side mutation).
    Server,
}

/// One mutation, as hooks see it.
#[derive(Debug, Clone, Copy)]
pub struct MutationEvent<'a> {
    pub(crate) session: &'a Session,
    pub(crate) store: &'static str,
    pub(crate) name: &'a str,
    pub(crate) args: &'a [Value],
    pub(crate) source: Source,
}

impl<'a> MutationEvent<'a> {
    /// The session whose store instance the mutation changes: its id, and what the connect hook
    /// attached ([`Session::get`]).
    pub fn session(&self) -> &'a Session {
        self.session
    }

    /// The store's name (as registered: never a client's text).
    pub fn store(&self) -> &'static str {
        self.store
    }

    /// The mutation's name, as the client or the server code wrote it (it may name no mutation
    /// of the store: the store then answers an error).
    pub fn name(&self) -> &'a str {
        self.name
    }

    /// The mutation's arguments, positional.
    pub fn args(&self) -> &'a [Value] {
        self.args
    }

    /// Whether a client committed it or server code sent it.
    pub fn source(&self) -> Source {
        self.source
    }
}

/// What a mutation did, as after hooks see it.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum MutationOutcome<'a> {
    /// It ran: the state changed by `diff` (empty when nothing changed) and it replied `reply`.
    Applied {
        /// The changes, in PROTOCOL.md order.
        diff: &'a [Change],
        /// Its reply (sent as `message`), if any.
        reply: Option<&'a Value>,
    },
    /// It failed: it answered an error, it panicked, it took too long, or its state could not
    /// be written; the state is unchanged.
    Failed(&'a MutationError),
    /// A before hook refused it with this message (the error answer's text); it did not run.
    Refused(&'a str),
}

impl MutationOutcome<'_> {
    /// Whether the mutation ran and its state is the new one.
    pub fn is_applied(&self) -> bool {
        matches!(self, Self::Applied { .. })
    }
}

type BeforeFn = dyn Fn(&MutationEvent<'_>) -> Result<(), String> + Send + Sync;
type AfterFn = dyn Fn(&MutationEvent<'_>, &MutationOutcome<'_>) + Send + Sync;

/// One hook, and the store it is for (`None`: every store).
struct Hook<F: ?Sized> {
    store: Option<&'static str>,
    run: Arc<F>,
}

impl<F: ?Sized> Clone for Hook<F> {
    fn clone(&self) -> Self {
        Self {
            store: self.store,
            run: self.run.clone(),
        }
    }
}

impl<F: ?Sized> Hook<F> {
    fn applies_to(&self, store: &str) -> bool {
        self.store.is_none_or(|only| only == store)
    }
}

/// The hooks of an endpoint, in the order they were added.
#[derive(Clone, Default)]
pub(crate) struct Hooks {
    before: Vec<Hook<BeforeFn>>,
    after: Vec<Hook<AfterFn>>,
}

impl fmt::Debug for Hooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hooks")
            .field("before", &self.before.len())
            .field("after", &self.after.len())
            .finish()
    }
}

/// The answer to a mutation a before hook refused by panicking.
pub(crate) const HOOK_FAILED: &str = "Mutation refused: a hook failed unexpectedly.";

impl Hooks {
    pub(crate) fn add_before(
        &mut self,
        store: Option<&'static str>,
        hook: impl Fn(&MutationEvent<'_>) -> Result<(), String> + Send + Sync + 'static,
    ) {
        self.before.push(Hook {
            store,
            run: Arc::new(hook),
        });
    }

    pub(crate) fn add_after(
        &mut self,
        store: Option<&'static str>,
        hook: impl Fn(&MutationEvent<'_>, &MutationOutcome<'_>) + Send + Sync + 'static,
    ) {
        self.after.push(Hook {
            store,
            run: Arc::new(hook),
        });
    }

    /// Whether there is no hook at all.
    pub(crate) fn is_empty(&self) -> bool {
        self.before.is_empty() && self.after.is_empty()
    }

    /// Runs the before hooks of `event`'s store in order; the first refusal stops them and is
    /// the mutation's error answer.
    pub(crate) fn before(&self, event: &MutationEvent<'_>) -> Result<(), String> {
        for hook in self
            .before
            .iter()
            .filter(|hook| hook.applies_to(event.store))
        {
            match std::panic::catch_unwind(AssertUnwindSafe(|| (hook.run)(event))) {
                Ok(Ok(())) => {}
                Ok(Err(refusal)) => {
                    tracing::debug!(refusal = %refusal, "mutation refused by a hook");
                    return Err(refusal);
                }
                Err(_panic) => {
                    tracing::error!(
                        store = event.store,
                        mutation = event.name,
                        "a before-mutation hook panicked; the mutation is refused"
                    );
                    return Err(HOOK_FAILED.to_owned());
                }
            }
        }
        Ok(())
    }

    /// Runs the after hooks of `event`'s store in order, with what the mutation did (`refused`:
    /// a before hook's refusal, which `result` carries as its error).
    pub(crate) fn after(
        &self,
        event: &MutationEvent<'_>,
        result: &Result<Applied, MutationError>,
        refused: bool,
    ) {
        if self.after.is_empty() {
            return;
        }
        let outcome = match result {
            Ok(applied) => MutationOutcome::Applied {
                diff: &applied.diff,
                reply: applied.reply.as_ref(),
            },
            Err(MutationError::Refused(message)) if refused => MutationOutcome::Refused(message),
            Err(error) => MutationOutcome::Failed(error),
        };
        for hook in self
            .after
            .iter()
            .filter(|hook| hook.applies_to(event.store))
        {
            if std::panic::catch_unwind(AssertUnwindSafe(|| (hook.run)(event, &outcome))).is_err() {
                tracing::error!(
                    store = event.store,
                    mutation = event.name,
                    "an after-mutation hook panicked"
                );
            }
        }
    }

    /// Runs a mutation between the hooks: the before hooks, then `mutate` unless one refused,
    /// then the after hooks; its result, and whether a hook refused it. (`mutate` makes the
    /// future only once the hooks let it: a sync mutation runs as soon as its step is made.)
    pub(crate) async fn around<F, M>(
        &self,
        event: &MutationEvent<'_>,
        mutate: M,
    ) -> (Result<Applied, MutationError>, bool)
    where
        M: FnOnce() -> F,
        F: std::future::Future<Output = Result<Applied, MutationError>>,
    {
        if self.is_empty() {
            return (mutate().await, false);
        }
        let (result, refused) = match self.before(event) {
            Ok(()) => (mutate().await, false),
            Err(refusal) => (Err(MutationError::Refused(refusal)), true),
        };
        self.after(event, &result, refused);
        (result, refused)
    }
}
