//! One connection's work: the store instances it owns and the answer to each frame and each
//! server-side mutation. The driver (`driver`) runs it; it knows stores, the registry, the hub
//! and the protocol, but no transport and no timer.
//!
//! Its instances are torn down whatever ends the connection: [`Connection::close`] runs every
//! `terminate` in order; when a `Connection` is dropped without it (a panic, its task dropped),
//! `Drop` runs them as far as it can without awaiting, and the hub forgets the session either way.

use std::panic::AssertUnwindSafe;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use serde_json::Value;
use tracing::Instrument;

use crate::hub::Registration;
use crate::instance::LiveStore;
use crate::local::{Command, HubError};
use crate::protocol::{ClientMessage, Close, MutationCall, ServerMessage};
use crate::registry::Registry;
use crate::store::{Params, Session};

/// What the driver does after a frame or a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reaction {
    /// Send this text frame.
    Send(String),
    /// Close with this code and reason.
    Close(Close),
    /// Nothing to send.
    Nothing,
}

/// One connection: the session (id and connect data), the instances it joined, its place in
/// the hub.
pub(crate) struct Connection {
    session: Session,
    stores: Vec<Box<dyn LiveStore>>,
    registration: Registration,
    registry: &'static Registry,
    max_stores: usize,
    time_limit: Duration,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("session", &self.session.id())
            .field(
                "stores",
                &self
                    .stores
                    .iter()
                    .map(|store| store.name())
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Connection {
    pub(crate) fn new(
        session: Session,
        registration: Registration,
        registry: &'static Registry,
        max_stores: usize,
        time_limit: Duration,
    ) -> Self {
        Self {
            session,
            stores: Vec::new(),
            registration,
            registry,
            max_stores,
            time_limit,
        }
    }

    /// The session id.
    pub(crate) fn id(&self) -> &str {
        self.session.id()
    }

    /// Answers one text frame from the client.
    pub(crate) async fn on_text(&mut self, text: &str) -> Reaction {
        match ClientMessage::decode(text) {
            None => Reaction::Close(Close::malformed()),
            Some(ClientMessage::Ping { request }) => Reaction::Send(
                ServerMessage::Pong {
                    store: None,
                    data: None,
                    request: &request,
                    session: None,
                }
                .encode(),
            ),
            Some(ClientMessage::Join {
                store,
                data,
                request,
            }) => {
                let Some(store) = store else {
                    return Reaction::Close(Close::store_not_set());
                };
                let span =
                    tracing::info_span!("join", session = %self.session.id(), store = %store);
                self.join(&store, data, &request).instrument(span).await
            }
            Some(ClientMessage::Mutation {
                store,
                session,
                data,
                request,
            }) => {
                let Some(store) = store else {
                    return Reaction::Close(Close::store_not_set());
                };
                let span = tracing::info_span!(
                    "mutation", session = %self.session.id(), store = %store, mutation = %data.name
                );
                self.mutation(&store, session.as_deref(), data, &request)
                    .instrument(span)
                    .await
            }
        }
    }

    async fn join(
        &mut self,
        name: &str,
        params: Option<Value>,
        request: &Option<Value>,
    ) -> Reaction {
        let Some(entry) = self.registry.get(name) else {
            return Reaction::Close(Close::store_not_defined(name));
        };
        if let Some(existing) = self
            .stores
            .iter()
            .find(|store| store.name() == entry.name())
        {
            return match self.join_answer(existing.as_ref(), request) {
                Ok(answer) => Reaction::Send(answer),
                Err(error) => self.error_answer(name, &error, request),
            };
        }
        if self.stores.len() >= self.max_stores {
            let error = format!(
                "Store {name} not joined: this session already holds {} stores, the most allowed",
                self.stores.len()
            );
            return self.error_answer(name, &error, request);
        }
        let params = Params::new(params.unwrap_or_else(|| Value::Object(Default::default())));
        let joined = entry
            .join_within(self.session.clone(), params, self.time_limit)
            .await;
        match joined {
            Ok(mut instance) => match self.join_answer(instance.as_ref(), request) {
                Ok(answer) => {
                    tracing::debug!("joined");
                    self.registration.joined(instance.name(), instance.key());
                    self.stores.push(instance);
                    Reaction::Send(answer)
                }
                Err(error) => {
                    // The client is told the join failed, so the store is not joined; init ran,
                    // so terminate runs.
                    instance.terminate().await;
                    self.error_answer(name, &error, request)
                }
            },
            Err(error) => {
                tracing::debug!(%error, "join refused");
                self.error_answer(name, &error.to_string(), request)
            }
        }
    }

    async fn mutation(
        &mut self,
        name: &str,
        claimed_session: Option<&str>,
        call: MutationCall,
        request: &Option<Value>,
    ) -> Reaction {
        // The joined store is found first: the registry is only asked when it is not there.
        let position = self.stores.iter().position(|store| store.name() == name);
        if position.is_none() && self.registry.get(name).is_none() {
            return Reaction::Close(Close::store_not_defined(name));
        }
        if let Some(claimed) = claimed_session.filter(|claimed| *claimed != self.session.id()) {
            let error = format!(
                "Mutation refused: session {claimed:?} is not the session of this connection"
            );
            return self.error_answer(name, &error, request);
        }
        let Some(store) = position.and_then(|position| self.stores.get_mut(position)) else {
            let error = format!("Store {name} is not joined in this session: join it first");
            return self.error_answer(name, &error, request);
        };
        match store.mutate(&call.name, &call.data).await {
            Ok(applied) => {
                tracing::debug!(changes = applied.diff.len(), "mutation applied");
                Reaction::Send(
                    ServerMessage::Mutation {
                        store: name,
                        session: self.session.id(),
                        diff: &applied.diff,
                        message: applied.reply.as_ref(),
                        request: request.as_ref(),
                    }
                    .encode(),
                )
            }
            Err(error) => {
                tracing::debug!(%error, "mutation failed");
                self.error_answer(name, &error.to_string(), request)
            }
        }
    }

    /// Runs a server-side mutation; the push to send, if the state changed.
    pub(crate) async fn on_command(&mut self, command: Box<Command>) -> Reaction {
        let Command { mutation, reply } = *command;
        let (store, name) = (mutation.store(), mutation.name());
        let span = tracing::info_span!("server_mutation", session = %self.session.id(), store, mutation = name);
        async move {
            let Some(instance) = self
                .stores
                .iter_mut()
                .find(|instance| instance.name() == store)
            else {
                if let Some(reply) = reply {
                    let _ = reply.send(Err(HubError::NotJoined {
                        session: self.session.id().to_owned(),
                        store,
                    }));
                }
                return Reaction::Nothing;
            };
            match instance.mutate(name, mutation.args()).await {
                Ok(applied) => {
                    // A change-less push would do nothing on the client: skip it (it matters
                    // most when one server-side mutation reaches thousands of sessions).
                    let push = if applied.diff.is_empty() {
                        Reaction::Nothing
                    } else {
                        Reaction::Send(
                            ServerMessage::Mutation {
                                store,
                                session: self.session.id(),
                                diff: &applied.diff,
                                message: None,
                                request: None,
                            }
                            .encode(),
                        )
                    };
                    if let Some(reply) = reply {
                        let _ = reply.send(Ok(applied.reply));
                    }
                    push
                }
                Err(error) => {
                    tracing::debug!(%error, "server-side mutation failed");
                    if let Some(reply) = reply {
                        let _ = reply.send(Err(error.into()));
                    }
                    Reaction::Nothing
                }
            }
        }
        .instrument(span)
        .await
    }

    /// Ends the session: every instance's terminate runs, in join order, then the hub forgets
    /// the session.
    pub(crate) async fn close(mut self) {
        // One at a time: if this task is dropped during a terminate, the stores not reached yet
        // are still in `self.stores`, and `Drop` terminates them.
        while !self.stores.is_empty() {
            let mut store = self.stores.remove(0);
            store.terminate().await;
        }
        tracing::debug!(session = %self.session.id(), "session closed");
    }

    /// The join answer with `store`'s state, or why the state cannot be sent.
    fn join_answer(
        &self,
        store: &dyn LiveStore,
        request: &Option<Value>,
    ) -> Result<String, String> {
        let state = store.state().map_err(|error| {
            format!(
                "The state of store {} cannot be serialized: {error}",
                store.name()
            )
        })?;
        Ok(ServerMessage::Join {
            store: store.name(),
            session: self.session.id(),
            data: &state,
            request,
        }
        .encode())
    }

    fn error_answer(&self, store: &str, error: &str, request: &Option<Value>) -> Reaction {
        Reaction::Send(
            ServerMessage::Error {
                store,
                session: self.session.id(),
                error,
                request,
            }
            .encode(),
        )
    }
}

impl Drop for Connection {
    /// The path nothing can skip: after a panic or a dropped task, each terminate still runs.
    /// A sync terminate finishes here; an async one that does not finish at once continues on
    /// the current runtime when there is one (it is dropped, with an error logged, when there
    /// is none, as while a runtime shuts down).
    fn drop(&mut self) {
        for mut store in std::mem::take(&mut self.stores) {
            let name = store.name();
            let mut terminate: crate::store::BoxFuture<'static, ()> =
                Box::pin(async move { store.terminate().await });
            let mut context = Context::from_waker(Waker::noop());
            let polled = std::panic::catch_unwind(AssertUnwindSafe(|| {
                terminate.as_mut().poll(&mut context)
            }));
            match polled {
                Ok(Poll::Ready(())) | Err(_) => {}
                Ok(Poll::Pending) => match tokio::runtime::Handle::try_current() {
                    Ok(runtime) => {
                        runtime.spawn(terminate);
                    }
                    Err(_) => {
                        tracing::error!(store = name, "terminate could not finish: no runtime");
                    }
                },
            }
        }
        // `registration` is dropped after this: the hub forgets the session.
    }
}
