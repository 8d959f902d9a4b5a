//! Live store instances: a store's state in one session, with its join context; mutations run
//! on it as transactions (an error, a panic, the time limit or a cancelled mutation leaves the
//! state as it was).

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures_util::FutureExt;
use serde_json::Value;

use crate::diff::mark::Transaction;
use crate::diff::Change;
use crate::store::{BoxFuture, Call, Mutations, Outcome, Params, Session, Step};

/// How long init, a mutation or terminate may take when no other limit is configured.
pub(crate) const DEFAULT_TIME_LIMIT: Duration = Duration::from_secs(30);

/// Awaits `future` for at most `limit`, if there is one (a limit needs tokio's timer).
async fn within<T>(
    limit: Option<Duration>,
    future: impl std::future::Future<Output = T>,
) -> Result<T, tokio::time::error::Elapsed> {
    match limit {
        Some(limit) => tokio::time::timeout(limit, future).await,
        None => Ok(future.await),
    }
}

/// A store instance as the session layer sees it, whatever the store's type.
///
/// [`StoreEntry::join`](crate::StoreEntry::join) makes one; tests can drive a store with it
/// without a server.
pub trait LiveStore: Send {
    /// The name clients join by.
    fn name(&self) -> &'static str;

    /// The key init returned, if any.
    fn key(&self) -> Option<&str>;

    /// The whole state as JSON (the join answer's `data`). A `Serialize` impl that panics is
    /// reported as an error, not propagated.
    fn state(&self) -> Result<Value, serde_json::Error>;

    /// Runs the mutation `name` with positional JSON `args`. On success the state has changed and
    /// the diff says how; on failure (including a panic, the time limit, or the returned future
    /// being dropped before it finished) the state is exactly as before.
    fn mutate<'a>(
        &'a mut self,
        name: &'a str,
        args: &'a [Value],
    ) -> Step<'a, Result<Applied, MutationError>>;

    /// Runs the store's terminate (on disconnect). A panic in it is caught and logged; an async
    /// terminate is given the time limit.
    fn terminate(&mut self) -> Step<'_, ()>;
}

/// The whole state of `store` as JSON, or the answer's text saying why it cannot be sent.
pub(crate) fn state_of(store: &dyn LiveStore) -> Result<Value, String> {
    store.state().map_err(|error| {
        format!(
            "The state of store {} cannot be serialized: {error}",
            store.name()
        )
    })
}

/// A mutation that succeeded: its diff and its reply, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    /// The changes from the state before to the state after, in PROTOCOL.md order.
    pub diff: Vec<Change>,
    /// The reply (Storex `{:reply, message, state}`), sent as `message`.
    pub reply: Option<Value>,
}

/// A mutation that failed; the state is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MutationError {
    /// The mutation answered an error, or the name or arguments did not fit: the message is the
    /// error answer's text.
    #[error("{0}")]
    Refused(String),
    /// The mutation panicked, or copying the state before it or diffing it after it did.
    #[error("mutation \"{mutation}\" of store {store} failed unexpectedly (it panicked)")]
    Panicked {
        /// The store's name.
        store: &'static str,
        /// The mutation's name.
        mutation: String,
    },
    /// The new state could not be serialized into a diff.
    #[error(
        "the state of store {store} cannot be serialized after mutation \"{mutation}\": {reason}"
    )]
    Unserializable {
        /// The store's name.
        store: &'static str,
        /// The mutation's name.
        mutation: String,
        /// serde_json's message.
        reason: String,
    },
    /// An async mutation did not finish within the time limit.
    #[error("mutation \"{mutation}\" of store {store} did not finish within {limit:?}; the state is unchanged")]
    TimedOut {
        /// The store's name.
        store: &'static str,
        /// The mutation's name.
        mutation: String,
        /// The limit it ran into.
        limit: Duration,
    },
}

/// Why a join failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JoinError {
    /// Init refused the join with this message (Storex `{:error, message}`).
    #[error("{0}")]
    Refused(String),
    /// Init panicked.
    #[error("init of store {store} failed unexpectedly (it panicked)")]
    Panicked {
        /// The store's name.
        store: &'static str,
    },
    /// An async init did not finish within the time limit.
    #[error("init of store {store} did not finish within {limit:?}")]
    TimedOut {
        /// The store's name.
        store: &'static str,
        /// The limit it ran into.
        limit: Duration,
    },
}

/// An instance of store `S`: its state and its join context.
pub(crate) struct Instance<S> {
    state: S,
    key: Option<String>,
    session: Session,
    params: Params,
    time_limit: Option<Duration>,
}

/// Creates an instance of `S` for `session`: runs its init, catching a panic, within
/// `time_limit` if there is one (it then applies to async mutations and terminate too).
pub(crate) fn join<S: Mutations>(
    session: Session,
    params: Params,
    time_limit: Option<Duration>,
) -> BoxFuture<'static, Result<Box<dyn LiveStore>, JoinError>> {
    Box::pin(async move {
        let instance = start::<S>(session, params, time_limit).await?;
        Ok(Box::new(instance) as Box<dyn LiveStore>)
    })
}

/// [`join`], unboxed: the instance keeps its type (the test kit reads its state).
pub(crate) async fn start<S: Mutations>(
    session: Session,
    params: Params,
    time_limit: Option<Duration>,
) -> Result<Instance<S>, JoinError> {
    let init = AssertUnwindSafe(async { S::init(&session, &params).await }).catch_unwind();
    match within(time_limit, init).await {
        Ok(Ok(Ok(init))) => Ok(Instance {
            state: init.state,
            key: init.key,
            session,
            params,
            time_limit,
        }),
        Ok(Ok(Err(message))) => Err(JoinError::Refused(message)),
        Ok(Err(_panic)) => {
            tracing::error!(store = S::NAME, "init panicked");
            Err(JoinError::Panicked { store: S::NAME })
        }
        Err(_elapsed) => {
            tracing::warn!(store = S::NAME, limit = ?time_limit, "init timed out");
            Err(JoinError::TimedOut {
                store: S::NAME,
                limit: time_limit.unwrap_or_default(),
            })
        }
    }
}

/// An instance of `S` made again from its state as JSON (a durable session taken over from
/// another node): init does not run again. The error says why the state does not read back.
pub(crate) fn restore<S: Mutations + serde::de::DeserializeOwned>(
    session: Session,
    params: Params,
    key: Option<String>,
    state: Value,
    time_limit: Option<Duration>,
) -> Result<Box<dyn LiveStore>, String> {
    let state = S::deserialize(state).map_err(|error| {
        format!(
            "the saved state of store {} does not read back: {error}",
            S::NAME
        )
    })?;
    Ok(Box::new(Instance {
        state,
        key,
        session,
        params,
        time_limit,
    }))
}

/// Keeps the new state and diffs it, or rolls back (dropping `transaction`). May panic (in a
/// `Serialize` or `Diff` impl): the unwinding drop rolls back.
///
/// The transaction holds [`Diff::begin`](crate::Diff::begin)'s mark: a copy of the state, or, where the state holds
/// tracked collections ([`List`](crate::List), [`Map`](crate::Map)), a record of what the
/// mutation writes, so that the diff and the rollback cost what it changed.
fn settle<S: Mutations>(
    transaction: Transaction<'_, S>,
    name: &str,
    outcome: Outcome,
) -> Result<Applied, MutationError> {
    let reply = match outcome {
        Outcome::NoReply => None,
        Outcome::Reply(reply) => Some(reply),
        Outcome::Error(message) => return Err(MutationError::Refused(message)),
    };
    match transaction.changes() {
        Ok(diff) => {
            transaction.commit();
            Ok(Applied { diff, reply })
        }
        Err(error) => Err(MutationError::Unserializable {
            store: S::NAME,
            mutation: name.to_owned(),
            reason: error.to_string(),
        }),
    }
}

fn panicked<S: Mutations>(name: &str) -> MutationError {
    tracing::error!(store = S::NAME, mutation = name, "mutation panicked");
    MutationError::Panicked {
        store: S::NAME,
        mutation: name.to_owned(),
    }
}

impl<S: Mutations> Instance<S> {
    /// The state, typed.
    pub(crate) fn typed(&self) -> &S {
        &self.state
    }

    /// The session it runs in.
    pub(crate) fn session(&self) -> &Session {
        &self.session
    }

    /// What init was given.
    pub(crate) fn params(&self) -> &Params {
        &self.params
    }

    fn mutate_now(&mut self, name: &str, args: &[Value]) -> Result<Applied, MutationError> {
        let Self {
            state,
            session,
            params,
            ..
        } = self;
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
            let transaction = Transaction::begin(state);
            let call = Call {
                name,
                args,
                session,
                params,
            };
            let outcome = transaction.state.dispatch(call).now().unwrap_or_else(|| {
                // Only mutations declared `async fn` return a pending step.
                Outcome::Error(format!(
                    "mutation \"{name}\" of store {} is async but its table entry says it is not",
                    S::NAME
                ))
            });
            settle(transaction, name, outcome)
        }));
        result.unwrap_or_else(|_panic| Err(panicked::<S>(name)))
    }

    async fn mutate_async(&mut self, name: &str, args: &[Value]) -> Result<Applied, MutationError> {
        let limit = self.time_limit;
        let Self {
            state,
            session,
            params,
            ..
        } = self;
        let begun = std::panic::catch_unwind(AssertUnwindSafe(move || {
            let state = state; // moved, not reborrowed: the transaction outlives the closure
            Transaction::begin(state)
        }));
        let Ok(transaction) = begun else {
            return Err(panicked::<S>(name));
        };
        let call = Call {
            name,
            args,
            session,
            params,
        };
        let run = AssertUnwindSafe(transaction.state.dispatch(call)).catch_unwind();
        let outcome = match within(limit, run).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_panic)) => return Err(panicked::<S>(name)),
            Err(_elapsed) => {
                tracing::warn!(
                    store = S::NAME,
                    mutation = name,
                    ?limit,
                    "mutation timed out"
                );
                return Err(MutationError::TimedOut {
                    store: S::NAME,
                    mutation: name.to_owned(),
                    limit: limit.unwrap_or_default(),
                });
            }
        };
        std::panic::catch_unwind(AssertUnwindSafe(|| settle(transaction, name, outcome)))
            .unwrap_or_else(|_panic| Err(panicked::<S>(name)))
    }
}

impl<S: Mutations> LiveStore for Instance<S> {
    fn name(&self) -> &'static str {
        S::NAME
    }

    fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    fn state(&self) -> Result<Value, serde_json::Error> {
        std::panic::catch_unwind(AssertUnwindSafe(|| serde_json::to_value(&self.state)))
            .unwrap_or_else(|_panic| {
                tracing::error!(store = S::NAME, "serializing the state panicked");
                Err(serde::ser::Error::custom("serializing it panicked"))
            })
    }

    fn mutate<'a>(
        &'a mut self,
        name: &'a str,
        args: &'a [Value],
    ) -> Step<'a, Result<Applied, MutationError>> {
        // Which path to take is decided before dispatching: a sync dispatch must settle the state
        // right after it returns, which the borrow checker only allows when the step it returned
        // is known not to hold on to the state.
        let is_async = S::MUTATIONS
            .iter()
            .any(|info| info.name == name && info.is_async);
        if is_async {
            Step::pending(self.mutate_async(name, args))
        } else {
            Step::ready(self.mutate_now(name, args))
        }
    }

    fn terminate(&mut self) -> Step<'_, ()> {
        let limit = self.time_limit;
        let Self {
            state,
            session,
            params,
            ..
        } = self;
        // A sync terminate runs when it is called, an async one when it is polled: both are
        // guarded.
        let called = std::panic::catch_unwind(AssertUnwindSafe(move || {
            let state = state; // moved, not reborrowed: the step outlives the closure
            state.terminate(session, params)
        }));
        let Ok(step) = called else {
            tracing::error!(store = S::NAME, "terminate panicked");
            return Step::ready(());
        };
        if step.is_ready() {
            return step;
        }
        Step::pending(async move {
            match within(limit, AssertUnwindSafe(step).catch_unwind()).await {
                Ok(Ok(())) => {}
                Ok(Err(_panic)) => tracing::error!(store = S::NAME, "terminate panicked"),
                Err(_elapsed) => tracing::warn!(store = S::NAME, ?limit, "terminate timed out"),
            }
        })
    }
}
