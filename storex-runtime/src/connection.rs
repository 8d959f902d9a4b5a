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

use crate::durable::{
    self, DurableSession, Record, Saved, SavedAnswer, SessionStore, Snapshot, Taken,
};
use crate::history::{Answer, Answers, Catchup, HistoryLimits, Outcome, Remembered, Versions};
use crate::hooks::{Hooks, MutationEvent, Source};
use crate::hub::{Hub, Registration};
use crate::instance::{state_of, Applied, LiveStore, MutationError};
use crate::limits::TokenBucket;
use crate::local::{Claims, Command, DetachLimits, HubError, Inbox};
use crate::protocol::{
    ClientMessage, Close, HeldStore, Json, MutationCall, MutationFrame, ResumedStore, ServerMessage,
};
use crate::registry::Registry;
use crate::resume::ResumeSettings;
use crate::store::{Params, Session};
use crate::telemetry::Telemetry;

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
    /// The capacity of each session's inbox of server-side mutations.
    pub(crate) inbox_capacity: usize,
    /// Where durable sessions are saved, when they are.
    pub(crate) durable: Option<Arc<dyn SessionStore>>,
    /// What runs around every mutation.
    pub(crate) hooks: Hooks,
    /// Each connection's budget of mutations, when they are limited.
    pub(crate) mutation_rate: Option<crate::limits::Rate>,
    /// Where what happens is counted.
    pub(crate) telemetry: Telemetry,
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
    /// What init was given (saved with a durable instance).
    params: Params,
    /// Whether it is saved (a durable store in a durable session).
    durable: bool,
    /// The version of its last saved snapshot.
    base: u64,
}

impl Joined {
    /// Its snapshot as a durable session saves it, at its current version; `None` when the
    /// state does not serialize.
    fn snapshot(&mut self) -> Option<(String, String)> {
        let state = state_of(self.live.as_ref()).ok()?;
        let snapshot = Snapshot {
            key: self.live.key().map(str::to_owned),
            params: self.params.value().clone(),
            epoch: self.versions.epoch().to_owned(),
            base: self.versions.version(),
            state,
        };
        let text = serde_json::to_string(&snapshot).ok()?;
        self.base = self.versions.version();
        Some((durable::snapshot_field(self.live.name()), text))
    }
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
    /// Where the session is saved, when it is durable.
    durable: Option<DurableSession>,
    /// Another node holds the session now: this connection lets it go without ending it.
    moved: bool,
    /// The client's budget of mutations, when they are limited (it goes with the session to a
    /// connection that resumes it).
    bucket: Option<TokenBucket>,
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
        let durable = settings
            .durable
            .clone()
            .filter(|_| settings.resumable())
            .map(|store| durable_session(store, session.id(), 1, &settings));
        Self {
            session,
            stores: Vec::new(),
            registration,
            bucket: settings_bucket(&settings),
            settings,
            answers: Answers::default(),
            generation: 0,
            started: false,
            durable,
            moved: false,
        }
    }

    /// A durable session taken over from the record another node saved: its stores made again
    /// from their saved state, its versions, its remembered answers; registered with `hub`.
    pub(crate) fn restore(
        hub: &Hub,
        settings: Arc<Settings>,
        session: Session,
        taken: Taken,
    ) -> Result<(Self, Inbox), String> {
        let Some(store) = settings.durable.clone() else {
            return Err("this server does not keep durable sessions".into());
        };
        let record = Record::read(taken.fields)?;
        let id: Arc<str> = session.id().into();
        let (registration, inbox) = hub
            .open(id, settings.inbox_capacity)
            .map_err(|_| "the session is still ending on this server".to_owned())?;
        let mut durable = durable_session(store, session.id(), taken.lease, &settings);
        durable.next_answer = record.answers.last().map_or(0, |(seq, _)| seq + 1);
        let registry = settings.registry;
        let generation = record
            .answers
            .iter()
            .map(|(_, answer)| answer.c)
            .max()
            .map_or(1, |last| last.saturating_add(1));
        let answers = Answers::restored(
            record.answers.into_iter().map(|(_, answer)| answer),
            |name| registry.get(name).map(|entry| entry.name()),
        );
        let mut stores = Vec::new();
        for name in &record.order {
            let Some(entry) = registry.get(name) else {
                tracing::warn!(store = %name, "a saved store this program does not have is left out");
                continue;
            };
            let Some(snapshot) = record.snapshots.get(name) else {
                return Err(format!("the snapshot of store {name} is missing"));
            };
            let no_diffs = Vec::new();
            let diffs = record.diffs.get(name).unwrap_or(&no_diffs);
            let (state, version) = durable::replay(snapshot, diffs)?;
            let params = Params::new(snapshot.params.clone());
            let restored = entry.restore(
                session.clone(),
                params.clone(),
                snapshot.key.clone(),
                state,
                settings.time_limit,
            );
            let live = match restored {
                Some(Ok(live)) => live,
                Some(Err(error)) => return Err(error),
                None => {
                    tracing::warn!(store = %name, "a saved store that is not durable here is left out");
                    continue;
                }
            };
            let run = durable::leading_to(diffs, version);
            let versions =
                Versions::restored(&snapshot.epoch, version, run, settings.history_limits());
            registration.joined(entry.name(), live.key());
            stores.push(Joined {
                live,
                versions,
                params,
                durable: true,
                base: snapshot.base,
            });
        }
        let connection = Self {
            session,
            stores,
            registration,
            bucket: settings_bucket(&settings),
            settings,
            answers,
            generation,
            started: true,
            durable: Some(durable),
            moved: false,
        };
        Ok((connection, inbox))
    }

    /// Lets a durable session go from this process without ending it (no terminate; its record
    /// stays for a resume on any node, until its TTL); other sessions are closed.
    pub(crate) async fn let_go(mut self) {
        self.moved = self.durable.is_some();
        self.close().await;
    }

    /// Whether another node holds the session now (a save was refused): the connection lets it
    /// go without ending it.
    pub(crate) fn moved(&self) -> bool {
        self.moved
    }

    /// Whether a durable session has changes not saved yet: the answers that carry them wait
    /// for [`save`](Self::save).
    pub(crate) fn unsaved(&self) -> bool {
        self.durable.as_ref().is_some_and(|durable| {
            durable.resync || !durable.set.is_empty() || !durable.delete.is_empty()
        })
    }

    /// Saves what changed (a durable session) before the answers go. `false`: another node
    /// holds the session now (the connection closes with [`moved_away`]).
    pub(crate) async fn save(&mut self) -> bool {
        let Some(durable) = self.durable.as_mut() else {
            return true;
        };
        for attempt in 0..2 {
            if durable.resync {
                write_all(&mut self.stores, &self.answers, durable);
            }
            let Some(write) = durable.take_write() else {
                return true;
            };
            match durable.store.save(write).await {
                Ok(Saved::Stored) => {
                    durable.created = true;
                    durable.resync = false;
                    return true;
                }
                Ok(Saved::Fenced) => {
                    tracing::info!(session = %self.session.id(), "another node took the session over");
                    self.moved = true;
                    return false;
                }
                Ok(Saved::Missing) => {
                    // Expired, or deleted: everything is written again, once.
                    tracing::warn!(session = %self.session.id(), attempt, "a durable session's record was missing; writing it again");
                    durable.resync = true;
                }
                Err(error) => {
                    // The answer still goes (the server keeps serving without its store); the
                    // next save writes everything again.
                    tracing::warn!(session = %self.session.id(), %error, "a durable session could not be saved");
                    durable.resync = true;
                    return true;
                }
            }
        }
        true
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

    /// The endpoint's settings, shared.
    pub(crate) fn settings_arc(&self) -> Arc<Settings> {
        self.settings.clone()
    }

    /// The session (id and connect data).
    pub(crate) fn session(&self) -> &Session {
        &self.session
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
            self.settings.telemetry.joined(entry.name(), false);
            let error = format!(
                "Store {name} not joined: this session already holds {} stores, the most allowed",
                self.stores.len()
            );
            return self.error_answer(name, &error, request);
        }
        let params = Params::new(params.unwrap_or_else(|| Value::Object(Default::default())));
        let joined = entry
            .join_within(
                self.session.clone(),
                params.clone(),
                self.settings.time_limit,
            )
            .await;
        match joined {
            Ok(live) => {
                let mut joined = Joined {
                    live,
                    versions: Versions::new(),
                    params,
                    durable: self.durable.is_some() && entry.is_durable(),
                    base: 0,
                };
                match self.join_answer(&joined, request) {
                    Ok(answer) => {
                        tracing::debug!("joined");
                        self.settings.telemetry.joined(entry.name(), true);
                        self.registration
                            .joined(joined.live.name(), joined.live.key());
                        let saved = joined.durable;
                        self.stores.push(joined);
                        if let (true, Some(durable)) = (saved, self.durable.as_mut()) {
                            if let Some(joined) = self.stores.last_mut() {
                                if let Some((field, text)) = joined.snapshot() {
                                    durable.set(field, text);
                                }
                            }
                            save_order(&self.stores, durable);
                        }
                        // Saved by the driver before the answer goes (`save`).
                        Reaction::Send(answer)
                    }
                    Err(error) => {
                        // The client is told the join failed, so the store is not joined; init
                        // ran, so terminate runs.
                        joined.live.terminate().await;
                        self.settings.telemetry.joined(entry.name(), false);
                        self.error_answer(name, &error, request)
                    }
                }
            }
            Err(error) => {
                tracing::debug!(%error, "join refused");
                self.settings.telemetry.joined(entry.name(), false);
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
        // Only what runs takes a token: an answer given again above costs the client none (it
        // must get the outcome of what ran, not a refusal).
        if let Some(bucket) = self.bucket.as_mut() {
            if !bucket.take() {
                tracing::debug!("mutation over the rate limit");
                self.settings
                    .telemetry
                    .limited(self.stores[position].live.name());
                return self.error_answer(name, crate::limits::TOO_MANY_MUTATIONS, request);
            }
        }
        let store = &mut self.stores[position];
        let result = run_mutation(
            &self.settings,
            &self.session,
            &mut store.live,
            (call.name.as_str(), &call.data[..]),
            Source::Client,
        )
        .await;
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
                    if let (true, Some(durable)) = (store.durable, self.durable.as_mut()) {
                        saved_change(store, durable, frame.diff());
                    }
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
            if let (true, Some(durable)) = (store.durable, self.durable.as_mut()) {
                let mut key = String::new();
                crate::history::write_key(&mut key, id);
                let (failed, text) = match outcome {
                    Outcome::Reply(reply) => (false, reply.unwrap_or_default()),
                    Outcome::Error(error) => (true, error),
                };
                durable.answer(&SavedAnswer {
                    r: key,
                    c: self.generation,
                    s: answer.store.to_owned(),
                    v: answer.version,
                    f: failed,
                    t: text.to_owned(),
                });
            }
            self.answers.remember(answer, limit);
        }
        // Saved by the driver before the answer goes, with the answers of the frames that
        // were already waiting (`save`).
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
            let result = run_mutation(
                &self.settings,
                &self.session,
                &mut instance.live,
                (name, mutation.args()),
                Source::Server,
            )
            .await;
            let telemetry = &self.settings.telemetry;
            let result = result.map(|applied| {
                // A change-less push would do nothing on the client: skip it (it matters most
                // when one server-side mutation reaches thousands of sessions).
                if applied.diff.is_empty() {
                    return (Reaction::Nothing, applied.reply);
                }
                instance.versions.advance();
                telemetry.pushed(instance.live.name());
                let push = MutationFrame::push(
                    store,
                    self.session.id(),
                    &applied.diff,
                    instance.versions.epoch(),
                    instance.versions.version(),
                )
                .encode();
                instance.versions.keep(push.diff(), limits);
                if let (true, Some(durable)) = (instance.durable, self.durable.as_mut()) {
                    saved_change(instance, durable, push.diff());
                }
                (Reaction::Send(push.text), applied.reply)
            });
            if !self.save().await {
                if let Some(reply) = reply {
                    let _ = reply.send(Err(HubError::Gone(self.session.id().to_owned())));
                }
                return Reaction::Close(moved_away());
            }
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
        // A durable session lives on when another node holds it, or when this process stops
        // (a deploy): its instances go without terminate, its record stays for another node.
        if self.durable.is_some() && (self.moved || self.hub().is_stopping()) {
            tracing::debug!(session = %self.session.id(), "durable session left to another node");
            self.stores.clear();
            return;
        }
        // One at a time: if this task is dropped during a terminate, the stores not reached yet
        // are still in `self.stores`, and `Drop` terminates them.
        while !self.stores.is_empty() {
            let mut store = self.stores.remove(0);
            store.live.terminate().await;
        }
        if let Some(durable) = self.durable.as_ref().filter(|durable| durable.created) {
            durable.forget().await;
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

/// Runs mutation `name` of `live` with `args` between the endpoint's hooks, and counts it.
async fn run_mutation(
    settings: &Settings,
    session: &Session,
    live: &mut Box<dyn LiveStore>,
    (name, args): (&str, &[Value]),
    source: Source,
) -> Result<Applied, MutationError> {
    let event = MutationEvent {
        session,
        store: live.name(),
        name,
        args,
        source,
    };
    // The step is made only once the before hooks let it (a sync mutation runs as it is made).
    let mutate = move || {
        let live = live; // owned by the closure (`FnOnce`): the step borrows the instance
        live.mutate(name, args)
    };
    let started = settings.telemetry.start();
    let (result, refused) = settings.hooks.around(&event, mutate).await;
    settings
        .telemetry
        .mutation(&event, &result, refused, started);
    result
}

/// A fresh budget of mutations, when they are limited.
fn settings_bucket(settings: &Settings) -> Option<TokenBucket> {
    settings.mutation_rate.map(TokenBucket::new)
}

/// Puts a durable instance's new version in the next write: its diff, and every
/// [`SNAPSHOT_EVERY`](durable::SNAPSHOT_EVERY) versions its whole state.
fn saved_change(store: &mut Joined, durable: &mut DurableSession, diff: &str) {
    let version = store.versions.version();
    durable.diff(store.live.name(), version, diff);
    if version - store.base >= durable::SNAPSHOT_EVERY {
        if let Some((field, text)) = store.snapshot() {
            durable.set(field, text);
        }
    }
}

/// A durable session's saving side, with the endpoint's limits.
fn durable_session(
    store: Arc<dyn SessionStore>,
    id: &str,
    lease: u64,
    settings: &Settings,
) -> DurableSession {
    // The record outlives a dead node for as long as a detached session would wait.
    let ttl = settings.idle + settings.resume.ttl;
    DurableSession::new(
        store,
        id,
        lease,
        ttl,
        settings.remembered_limit(),
        settings.history_limits().len,
    )
}

/// Puts the whole session in the next write (after a failed save: the record may be missing
/// or behind): each durable store's snapshot at its version, the store order, the remembered
/// answers.
fn write_all(stores: &mut [Joined], answers: &Answers, durable: &mut DurableSession) {
    durable.set.clear();
    durable.delete.clear();
    durable.created = false;
    save_order(stores, durable);
    for store in stores.iter_mut().filter(|store| store.durable) {
        if let Some((field, text)) = store.snapshot() {
            durable.set(field, text);
        }
    }
    for answer in answers.iter() {
        durable.answer(&answer.saved());
    }
}

/// Puts the durable stores' join order in the next write (a takeover joins them in it).
fn save_order(stores: &[Joined], durable: &mut DurableSession) {
    let order: Vec<&str> = stores
        .iter()
        .filter(|store| store.durable)
        .map(|store| store.live.name())
        .collect();
    if let Ok(order) = serde_json::to_string(&order) {
        durable.set(durable::ORDER.to_owned(), order);
    }
}

/// The close of a connection whose session another node holds now: the client resumes there.
pub(crate) fn moved_away() -> Close {
    Close::new(
        crate::protocol::CloseCode::GOING_AWAY,
        "This session continues on another server.",
    )
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
