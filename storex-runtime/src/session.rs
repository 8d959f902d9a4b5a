//! One connection's session: the store instances it owns and what it answers to each message.
//!
//! A session is driven by one task (see the `actix` module), so its stores need no lock and its
//! mutations run in order. It knows stores, the registry, the hub and the protocol, but no web
//! framework: frames come in as text, answers go out as text or a close.

use std::sync::Arc;

use serde_json::Value;
use tracing::Instrument;

use crate::config::Config;
use crate::hub::{Command, Hub, HubError, Inbox};
use crate::instance::LiveStore;
use crate::protocol::{ClientMessage, Close, MutationCall, ServerMessage};
use crate::registry::Registry;
use crate::store::{Extensions, Params, Session};

/// What the connection task does after a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reaction {
    /// Send this text frame.
    Send(String),
    /// Close the socket with this code and reason.
    Close(Close),
}

/// A live session: its id, connect data, and the store instances it joined.
pub struct Connection {
    session: Session,
    stores: Vec<Box<dyn LiveStore>>,
    hub: Hub,
    registry: &'static Registry,
    max_stores: usize,
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
    /// Opens a session in `config`'s hub with the values the connect hook attached; `None` when
    /// the session id generator keeps giving ids of live sessions.
    pub(crate) fn open(
        config: &Config,
        registry: &'static Registry,
        extensions: Extensions,
    ) -> Option<(Self, Inbox)> {
        const ATTEMPTS: usize = 3;
        let (id, inbox) = (0..ATTEMPTS).find_map(|_| {
            let id: Arc<str> = (config.session_id)().into();
            let inbox = config.hub.open(id.clone(), config.inbox_capacity)?;
            Some((id, inbox))
        })?;
        let connection = Self {
            session: Session::with_extensions(id, extensions),
            stores: Vec::new(),
            hub: config.hub.clone(),
            registry,
            max_stores: config.max_stores_per_session,
        };
        Some((connection, inbox))
    }

    /// The session id.
    pub fn id(&self) -> &str {
        self.session.id()
    }

    /// Answers one text frame from the client.
    pub async fn on_text(&mut self, text: &str) -> Reaction {
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
            return self.state_answer(existing.as_ref(), request);
        }
        if self.stores.len() >= self.max_stores {
            let error = format!(
                "Store {name} not joined: this session already holds {} stores, the most allowed",
                self.stores.len()
            );
            return self.error_answer(name, &error, request);
        }
        let params = Params::new(params.unwrap_or_else(|| Value::Object(Default::default())));
        match entry.join(self.session.clone(), params).await {
            Ok(instance) => {
                tracing::debug!("joined");
                self.hub
                    .joined(self.session.shared_id(), instance.name(), instance.key());
                let answer = self.state_answer(instance.as_ref(), request);
                self.stores.push(instance);
                answer
            }
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
        let result = store.mutate(&call.name, &call.data).await;
        match result {
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

    /// Runs a server-side command; the push to send to the client, if any.
    pub(crate) async fn on_command(&mut self, command: Box<Command>) -> Option<String> {
        let Command::Mutate {
            store,
            name,
            args,
            reply,
        } = *command;
        let span = tracing::info_span!("server_mutation", session = %self.session.id(), store, mutation = name);
        self.run_command(store, name, &args, reply)
            .instrument(span)
            .await
    }

    async fn run_command(
        &mut self,
        store: &'static str,
        name: &'static str,
        args: &[Value],
        reply: Option<tokio::sync::oneshot::Sender<Result<Option<Value>, HubError>>>,
    ) -> Option<String> {
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
            return None;
        };
        match instance.mutate(name, args).await {
            Ok(applied) => {
                // A change-less push would do nothing on the client: skip it (it matters most
                // when one server-side mutation reaches thousands of sessions).
                let push = (!applied.diff.is_empty()).then(|| {
                    ServerMessage::Mutation {
                        store,
                        session: self.session.id(),
                        diff: &applied.diff,
                        message: None,
                        request: None,
                    }
                    .encode()
                });
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
                None
            }
        }
    }

    /// Ends the session: every instance's terminate runs, and the hub forgets it.
    pub async fn close(mut self) {
        self.hub.close(self.session.id());
        for store in &mut self.stores {
            store.terminate().await;
        }
        tracing::debug!(session = %self.session.id(), "session closed");
    }

    fn state_answer(&self, store: &dyn LiveStore, request: &Option<Value>) -> Reaction {
        match store.state() {
            Ok(state) => Reaction::Send(
                ServerMessage::Join {
                    store: store.name(),
                    session: self.session.id(),
                    data: &state,
                    request,
                }
                .encode(),
            ),
            Err(error) => {
                let error = format!(
                    "The state of store {} cannot be serialized: {error}",
                    store.name()
                );
                self.error_answer(store.name(), &error, request)
            }
        }
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
