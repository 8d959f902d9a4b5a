//! Live store instances: a store's state in one session, with its join context; mutations run
//! on it as transactions (an error or a panic leaves the state as it was).

use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;
use serde_json::Value;

use crate::diff::Change;
use crate::store::{BoxFuture, Call, Mutations, Outcome, Params, Session, Step};

/// A store instance as the session layer sees it, whatever the store's type.
pub trait LiveStore: Send {
    /// The name clients join by.
    fn name(&self) -> &'static str;

    /// The key init returned, if any.
    fn key(&self) -> Option<&str>;

    /// The whole state as JSON (the join answer's `data`).
    fn state(&self) -> Result<Value, serde_json::Error>;

    /// Runs the mutation `name` with positional JSON `args`. On success the state has changed and
    /// the diff says how; on failure the state is exactly as before.
    fn mutate<'a>(
        &'a mut self,
        name: &'a str,
        args: &'a [Value],
    ) -> Step<'a, Result<Applied, MutationError>>;

    /// Runs the store's terminate (on disconnect). A panic in it is caught and logged.
    fn terminate(&mut self) -> Step<'_, ()>;
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
pub enum MutationError {
    /// The mutation answered an error, or the name or arguments did not fit: the message is the
    /// error answer's text.
    #[error("{0}")]
    Refused(String),
    /// The mutation panicked.
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
}

/// Why a join failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
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
}

struct Instance<S> {
    state: S,
    key: Option<String>,
    session: Session,
    params: Params,
}

/// Creates an instance of `S` for `session`: runs its init, catching a panic.
pub(crate) fn join<S: Mutations>(
    session: Session,
    params: Params,
) -> BoxFuture<'static, Result<Box<dyn LiveStore>, JoinError>> {
    Box::pin(async move {
        let init = AssertUnwindSafe(async { S::init(&session, &params).await })
            .catch_unwind()
            .await;
        match init {
            Ok(Ok(init)) => {
                let instance = Instance {
                    state: init.state,
                    key: init.key,
                    session,
                    params,
                };
                Ok(Box::new(instance) as Box<dyn LiveStore>)
            }
            Ok(Err(message)) => Err(JoinError::Refused(message)),
            Err(_panic) => {
                tracing::error!(store = S::NAME, "init panicked");
                Err(JoinError::Panicked { store: S::NAME })
            }
        }
    })
}

impl<S: Mutations> Instance<S> {
    /// The snapshot seam: how the state before a mutation is kept. A clone today; it can become
    /// O(change) (structural sharing, tracked writes) without touching how mutations are written.
    fn snapshot(&self) -> S {
        self.state.clone()
    }

    /// Finishes a transaction: keeps the new state and diffs it, or restores the snapshot.
    fn settle(
        &mut self,
        snapshot: S,
        name: &str,
        outcome: Result<Outcome, ()>,
    ) -> Result<Applied, MutationError> {
        let reply = match outcome {
            Ok(Outcome::NoReply) => None,
            Ok(Outcome::Reply(reply)) => Some(reply),
            Ok(Outcome::Error(message)) => {
                self.state = snapshot;
                return Err(MutationError::Refused(message));
            }
            Err(()) => {
                self.state = snapshot;
                tracing::error!(store = S::NAME, mutation = name, "mutation panicked");
                return Err(MutationError::Panicked {
                    store: S::NAME,
                    mutation: name.to_owned(),
                });
            }
        };
        match crate::diff::diff(&snapshot, &self.state) {
            Ok(diff) => Ok(Applied { diff, reply }),
            Err(error) => {
                self.state = snapshot;
                Err(MutationError::Unserializable {
                    store: S::NAME,
                    mutation: name.to_owned(),
                    reason: error.to_string(),
                })
            }
        }
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
        serde_json::to_value(&self.state)
    }

    fn mutate<'a>(
        &'a mut self,
        name: &'a str,
        args: &'a [Value],
    ) -> Step<'a, Result<Applied, MutationError>> {
        let snapshot = self.snapshot();
        // Which path to take is decided before dispatching: a sync dispatch must settle the state
        // right after it returns, which the borrow checker only allows when the step it returned
        // is known not to hold on to the state (a conditional return of a borrow).
        let is_async = S::MUTATIONS
            .iter()
            .any(|info| info.name == name && info.is_async);
        if is_async {
            return Step::pending(async move {
                let outcome = {
                    let call = Call {
                        name,
                        args,
                        session: &self.session,
                        params: &self.params,
                    };
                    AssertUnwindSafe(self.state.dispatch(call))
                        .catch_unwind()
                        .await
                };
                self.settle(snapshot, name, outcome.map_err(|_| ()))
            });
        }
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
            let call = Call {
                name,
                args,
                session: &self.session,
                params: &self.params,
            };
            match self.state.dispatch(call) {
                Step::Ready(outcome) => outcome,
                // Only mutations declared `async fn` return a pending step.
                Step::Pending(_) => None,
            }
        }));
        let outcome = match outcome {
            Ok(Some(outcome)) => Ok(outcome),
            Ok(None) => Ok(Outcome::Error(format!(
                "mutation \"{name}\" of store {} is async but its table entry says it is not",
                S::NAME
            ))),
            Err(_panic) => Err(()),
        };
        Step::ready(self.settle(snapshot, name, outcome))
    }

    fn terminate(&mut self) -> Step<'_, ()> {
        Step::pending(async move {
            let result = AssertUnwindSafe(self.state.terminate(&self.session, &self.params))
                .catch_unwind()
                .await;
            if result.is_err() {
                tracing::error!(store = S::NAME, "terminate panicked");
            }
        })
    }
}
