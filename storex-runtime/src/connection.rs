//! One connection's work: the store instances it owns and the answer to each frame and each
//! server-side mutation. The driver (`driver`) runs it; it knows stores, the registry, the hub
//! and the protocol, but no transport and no timer.
//!
//! Its instances are torn down whatever ends the connection: [`Connection::close`] runs every
//! `terminate` in order; when a `Connection` is dropped without it (a panic, its task dropped),
//! `Drop` runs them as far as it can without awaiting, and the hub forgets the session either way.

use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use serde_json::value::RawValue;
use serde_json::Value;
use tracing::Instrument;

use crate::history::{Answer, Answers, Catchup, HistoryLimits, Outcome, Remembered, Versions};
use crate::hub::{Hub, Registration};
use crate::instance::{state_of, LiveStore};
use crate::local::{Claims, Command, DetachLimits, HubError};
use crate::protocol::{
    ClientMessage, Close, HeldStore, Json, MutationCall, MutationFrame, ResumedStore, ServerMessage,
};
use crate::registry::Registry;
use crate::resume::ResumeSettings;
use crate::store::{Params, Session};

/// What the driver does after a frame or a command.
#[derive(Debug)]
pub(crate) enum Reaction {
    /// Send this text frame.
    Send(String),
    /// Close with this code and reason.
    Close(Close),
    /// Nothing to send.
    Nothing,
    /// Take back the detached session the client asked for (its token is valid); the driver
    /// claims it.
    Resume(Box<ResumeRequest>),
}

/// A resume whose token was accepted.
#[derive(Debug)]
pub(crate) struct ResumeRequest {
    pub(crate) session: String,
    pub(crate) stores: Vec<HeldStore>,
    pub(crate) request: Option<Value>,
}

/// What every connection of an endpoint shares.
#[derive(Debug)]
pub(crate) struct Settings {
    pub(crate) registry: &'static Registry,
    pub(crate) max_stores: usize,
    pub(crate) time_limit: Duration,
    pub(crate) idle: Duration,
    pub(crate) send: Duration,
    pub(crate) resume: ResumeSettings,
}

impl Settings {
    /// Whether sessions outlive their connections.
    pub(crate) fn resumable(&self) -> bool {
        !self.resume.ttl.is_zero()
    }

    fn detach_limits(&self) -> DetachLimits {
        DetachLimits {
            sessions: self.resume.max_detached,
            bytes: self.resume.max_detached_bytes,
        }
    }

    /// How many mutation answers each session remembers: none when sessions are not resumed.
    fn remembered_limit(&self) -> usize {
        if self.resumable() {
            self.resume.remembered_requests
        } else {
            0
        }
    }

    fn history_limits(&self) -> HistoryLimits {
        HistoryLimits {
            len: if self.resumable() {
                self.resume.history_len
            } else {
                0
            },
            bytes: self.resume.history_bytes,
        }
    }
}

/// A store instance the session joined, with its versions.
struct Joined {
    live: Box<dyn LiveStore>,
    versions: Versions,
}

/// One connection: the session (id and connect data), the instances it joined, its place in
/// the hub, and what it remembers for a resume.
pub(crate) struct Connection {
    session: Session,
    stores: Vec<Joined>,
    registration: Registration,
    settings: Arc<Settings>,
    /// The answers to the session's last mutations.
    answers: Answers,
    /// Which connection of the session this is: 0 the first, +1 at each resume.
    generation: u32,
    /// Whether a join, a mutation or a resume arrived: a resume must come first.
    started: bool,
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
                    .map(|store| store.live.name())
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Connection {
    pub(crate) fn new(
        session: Session,
        registration: Registration,
        settings: Arc<Settings>,
    ) -> Self {
        Self {
            session,
            stores: Vec::new(),
            registration,
            settings,
            answers: Answers::default(),
            generation: 0,
            started: false,
        }
    }

    /// The session id.
    pub(crate) fn id(&self) -> &str {
        self.session.id()
    }

    /// The hub the session is registered with.
    pub(crate) fn hub(&self) -> &Hub {
        self.registration.hub()
    }

    /// The endpoint's settings.
    pub(crate) fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Whether the session holds any store (a session without one is not worth detaching).
    pub(crate) fn holds_stores(&self) -> bool {
        !self.stores.is_empty()
    }

    /// The session's client went without closing: the session waits for a resume (see
    /// `LocalSessions::detach`). `None` when it cannot (the process is stopping).
    pub(crate) fn detach(&self) -> Option<Claims> {
        let limits = self.settings.detach_limits();
        self.registration.detach(self.history_bytes(), limits)
    }

    /// What the detached session keeps for a resume changed: the sum the limits bound follows.
    pub(crate) fn detached_size(&self) {
        let limits = self.settings.detach_limits();
        self.registration
            .detached_size(self.history_bytes(), limits);
    }

    /// The detached session is ending: no resume may take it any more.
    pub(crate) fn end_detached(&self) {
        self.registration.end_detached();
    }

    /// About how many bytes the session keeps for a resume: the instances' histories and the
    /// remembered answers.
    pub(crate) fn history_bytes(&self) -> usize {
        let diffs: usize = self.stores.iter().map(|store| store.versions.bytes()).sum();
        diffs + self.answers.bytes()
    }

    /// A fresh resume token of the session, when sessions are resumable.
    fn token(&self) -> Option<String> {
        let resume = &self.settings.resume;
        if !self.settings.resumable() {
            return None;
        }
        let life = self.settings.idle + resume.ttl;
        let expiry = crate::resume::unix_now().saturating_add(life.as_secs());
        Some(crate::resume::sign(&resume.key, self.session.id(), expiry))
    }

    /// Answers one text frame from the client.
    pub(crate) async fn on_text(&mut self, text: &str) -> Reaction {
        let message = ClientMessage::decode(text);
        let first = !self.started;
        if !matches!(message, None | Some(ClientMessage::Ping { .. })) {
            self.started = true;
        }
        match message {
            None => Reaction::Close(Close::malformed()),
            Some(ClientMessage::Ping { request }) => {
                let token = self.token();
                Reaction::Send(
                    ServerMessage::Pong {
                        store: None,
                        data: None,
                        request: &request,
                        session: None,
                        token: token.as_deref(),
                    }
                    .encode(),
                )
            }
            Some(ClientMessage::Resume {
                session,
                token,
                stores,
                request,
            }) => {
                let refusal = if !first {
                    Some("Resume must be the first message of a connection.")
                } else if !self.settings.resumable() {
                    Some("This server does not resume sessions.")
                } else {
                    let key = &self.settings.resume.key;
                    let now = crate::resume::unix_now();
                    crate::resume::verify(key, &session, &token, now)
                        .err()
                        .map(crate::resume::TokenError::message)
                };
                match refusal {
                    Some(error) => {
                        tracing::info!(error, "resume refused");
                        Reaction::Send(self.resume_refused(error, &request))
                    }
                    None => Reaction::Resume(Box::new(ResumeRequest {
                        session,
                        stores,
                        request,
                    })),
                }
            }
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
        let Some(entry) = self.settings.registry.get(name) else {
            return Reaction::Close(Close::store_not_defined(name));
        };
        if let Some(existing) = self
            .stores
            .iter()
            .find(|store| store.live.name() == entry.name())
        {
            return match self.join_answer(existing, request) {
                Ok(answer) => Reaction::Send(answer),
                Err(error) => self.error_answer(name, &error, request),
            };
        }
        if self.stores.len() >= self.settings.max_stores {
            let error = format!(
                "Store {name} not joined: this session already holds {} stores, the most allowed",
                self.stores.len()
            );
            return self.error_answer(name, &error, request);
        }
        let params = Params::new(params.unwrap_or_else(|| Value::Object(Default::default())));
        let joined = entry
            .join_within(self.session.clone(), params, self.settings.time_limit)
            .await;
        match joined {
            Ok(live) => {
                let mut joined = Joined {
                    live,
                    versions: Versions::new(),
                };
                match self.join_answer(&joined, request) {
                    Ok(answer) => {
                        tracing::debug!("joined");
                        self.registration
                            .joined(joined.live.name(), joined.live.key());
                        self.stores.push(joined);
                        Reaction::Send(answer)
                    }
                    Err(error) => {
                        // The client is told the join failed, so the store is not joined; init
                        // ran, so terminate runs.
                        joined.live.terminate().await;
                        self.error_answer(name, &error, request)
                    }
                }
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
        let position = self
            .stores
            .iter()
            .position(|store| store.live.name() == name);
        if position.is_none() && self.settings.registry.get(name).is_none() {
            return Reaction::Close(Close::store_not_defined(name));
        }
        if let Some(claimed) = claimed_session.filter(|claimed| *claimed != self.session.id()) {
            let error = format!(
                "Mutation refused: session {claimed:?} is not the session of this connection"
            );
            return self.error_answer(name, &error, request);
        }
        let Some(position) = position else {
            let error = format!("Store {name} is not joined in this session: join it first");
            return self.error_answer(name, &error, request);
        };
        // Remembered only when the session can be resumed: then the client may send it again.
        let (limits, limit) = (
            self.settings.history_limits(),
            self.settings.remembered_limit(),
        );
        let remembered_as = request.as_ref().filter(|_| limit > 0);
        let earlier = remembered_as.and_then(|id| self.answers.before(id, self.generation));
        // A request id remembered for another store is another request.
        if let Some(answer) = earlier.filter(|answer| answer.store == name) {
            tracing::debug!("mutation answered again: it ran on an earlier connection");
            return Reaction::Send(self.replay(answer, &self.stores[position], request));
        }
        let store = &mut self.stores[position];
        let result = store.live.mutate(&call.name, &call.data).await;
        let session = self.session.id();
        // The answer: the frame of an applied mutation, or an error's text and its message.
        let written = match result {
            Ok(applied) => {
                if !applied.diff.is_empty() {
                    store.versions.advance();
                }
                tracing::debug!(changes = applied.diff.len(), "mutation applied");
                let frame = MutationFrame {
                    store: name,
                    session,
                    diff: Json::Value(&applied.diff),
                    message: applied.reply.as_ref().map(Json::Value),
                    request: request.as_ref(),
                    epoch: Some(store.versions.epoch()),
                    version: Some(store.versions.version()),
                    replayed: false,
                }
                .encode();
                if !applied.diff.is_empty() {
                    // The diff's text, written once, is the answer's and the history's.
                    store.versions.keep(frame.diff(), limits);
                }
                Ok(frame)
            }
            Err(error) => {
                let error = error.to_string();
                tracing::debug!(%error, "mutation failed");
                let text = ServerMessage::Error {
                    store: name,
                    session,
                    error: &error,
                    request,
                    epoch: Some(store.versions.epoch()),
                    version: Some(store.versions.version()),
                    replayed: false,
                }
                .encode();
                Err((text, error))
            }
        };
        if let Some(id) = remembered_as {
            let outcome = match &written {
                Ok(frame) => Outcome::Reply(frame.message()),
                Err((_, error)) => Outcome::Error(error),
            };
            let answer = Answer {
                request: id,
                connection: self.generation,
                store: store.live.name(),
                version: store.versions.version(),
                outcome,
            };
            self.answers.remember(answer, limit);
        }
        Reaction::Send(match written {
            Ok(frame) => frame.text,
            Err((text, _)) => text,
        })
    }

    /// The answer, again, to a mutation answered on an earlier connection of the session.
    fn replay(&self, answer: &Remembered, store: &Joined, request: &Option<Value>) -> String {
        let epoch = Some(store.versions.epoch());
        match answer.outcome() {
            Outcome::Reply(reply) => {
                MutationFrame {
                    store: answer.store,
                    session: self.session.id(),
                    diff: Json::Text("[]"),
                    message: reply.map(Json::Text),
                    request: request.as_ref(),
                    epoch,
                    version: Some(answer.version),
                    replayed: true,
                }
                .encode()
                .text
            }
            Outcome::Error(error) => ServerMessage::Error {
                store: answer.store,
                session: self.session.id(),
                error,
                request,
                epoch,
                version: Some(answer.version),
                replayed: true,
            }
            .encode(),
        }
    }

    /// Runs a server-side mutation; the push to send, if the state changed.
    pub(crate) async fn on_command(&mut self, command: Box<Command>) -> Reaction {
        let Command { mutation, reply } = *command;
        let (store, name) = (mutation.store(), mutation.name());
        let span = tracing::info_span!("server_mutation", session = %self.session.id(), store, mutation = name);
        let limits = self.settings.history_limits();
        async move {
            let Some(instance) = self
                .stores
                .iter_mut()
                .find(|instance| instance.live.name() == store)
            else {
                if let Some(reply) = reply {
                    let _ = reply.send(Err(HubError::NotJoined {
                        session: self.session.id().to_owned(),
                        store,
                    }));
                }
                return Reaction::Nothing;
            };
            let result = instance.live.mutate(name, mutation.args()).await;
            let result = result.map(|applied| {
                // A change-less push would do nothing on the client: skip it (it matters most
                // when one server-side mutation reaches thousands of sessions).
                if applied.diff.is_empty() {
                    return (Reaction::Nothing, applied.reply);
                }
                instance.versions.advance();
                let push = MutationFrame {
                    store,
                    session: self.session.id(),
                    diff: Json::Value(&applied.diff),
                    message: None,
                    request: None,
                    epoch: Some(instance.versions.epoch()),
                    version: Some(instance.versions.version()),
                    replayed: false,
                }
                .encode();
                instance.versions.keep(push.diff(), limits);
                (Reaction::Send(push.text), applied.reply)
            });
            match result {
                Ok((push, answer)) => {
                    if let Some(reply) = reply {
                        let _ = reply.send(Ok(answer));
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
            store.live.terminate().await;
        }
        tracing::debug!(session = %self.session.id(), "session closed");
    }

    /// The join answer with `store`'s state, or why the state cannot be sent.
    fn join_answer(&self, store: &Joined, request: &Option<Value>) -> Result<String, String> {
        let state = state_of(store.live.as_ref())?;
        let token = self.token();
        Ok(ServerMessage::Join {
            store: store.live.name(),
            session: self.session.id(),
            data: &state,
            request,
            epoch: Some(store.versions.epoch()),
            version: Some(store.versions.version()),
            token: token.as_deref(),
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
                epoch: None,
                version: None,
                replayed: false,
            }
            .encode(),
        )
    }

    /// How the client catches up with the store it `held`.
    fn catchup(&self, held: &HeldStore) -> StoreCatchup<'_> {
        let Some(store) = self
            .stores
            .iter()
            .find(|store| store.live.name() == held.store)
        else {
            return StoreCatchup::NotHeld;
        };
        match store.versions.since(&held.epoch, held.version) {
            Catchup::Diff(diff) => StoreCatchup::Diff(store, diff),
            Catchup::State => match state_of(store.live.as_ref()) {
                Ok(state) => StoreCatchup::State(store, state),
                Err(_) => StoreCatchup::NotHeld,
            },
        }
    }

    /// The answer to a resume that was refused: the connection stays a session of its own.
    pub(crate) fn resume_refused(&self, error: &str, request: &Option<Value>) -> String {
        ServerMessage::Resume {
            session: self.session.id(),
            resumed: false,
            error: Some(error),
            token: None,
            request,
            stores: &[],
        }
        .encode()
    }

    /// This connection now serves the session it took back: the answer that brings the client
    /// up to date with each store it named.
    pub(crate) fn resumed(&mut self, request: &ResumeRequest) -> String {
        self.generation = self.generation.saturating_add(1);
        // What each store needs, owned first; the answer borrows it. A store named twice is
        // answered once, for the first: a long list of one name must not serialize its state
        // again and again.
        let mut named = HashSet::new();
        let catchups: Vec<(&str, StoreCatchup<'_>)> = request
            .stores
            .iter()
            .filter(|held| named.insert(held.store.as_str()))
            .map(|held| (held.store.as_str(), self.catchup(held)))
            .collect();
        let stores: Vec<ResumedStore<'_>> = catchups
            .iter()
            .map(|(name, catchup)| {
                let mut entry = ResumedStore {
                    store: name,
                    joined: None,
                    epoch: None,
                    version: None,
                    diff: None,
                    data: None,
                };
                let store = match catchup {
                    StoreCatchup::NotHeld => {
                        entry.joined = Some(false);
                        return entry;
                    }
                    StoreCatchup::Diff(store, diff) => {
                        entry.diff = Some(diff);
                        store
                    }
                    StoreCatchup::State(store, state) => {
                        entry.data = Some(state);
                        store
                    }
                };
                entry.epoch = Some(store.versions.epoch());
                entry.version = Some(store.versions.version());
                entry
            })
            .collect();
        let token = self.token();
        tracing::info!(session = %self.session.id(), "session resumed");
        ServerMessage::Resume {
            session: self.session.id(),
            resumed: true,
            error: None,
            token: token.as_deref(),
            request: &request.request,
            stores: &stores,
        }
        .encode()
    }
}

/// How a resuming client catches up with one store it names.
enum StoreCatchup<'a> {
    /// The session does not hold it (or its state cannot be sent: the client joins it and is
    /// told why).
    NotHeld,
    /// These changes bring the client's state to the instance's.
    Diff(&'a Joined, Box<RawValue>),
    /// The whole state.
    State(&'a Joined, Value),
}

impl Drop for Connection {
    /// The path nothing can skip: after a panic or a dropped task, each terminate still runs.
    /// A sync terminate finishes here; an async one that does not finish at once continues on
    /// the current runtime when there is one (it is dropped, with an error logged, when there
    /// is none, as while a runtime shuts down).
    fn drop(&mut self) {
        for store in std::mem::take(&mut self.stores) {
            let mut store = store.live;
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
