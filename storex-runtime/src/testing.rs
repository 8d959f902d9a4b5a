//! A test kit: one store driven in a unit test, without a server or a socket.
//!
//! [`TestStore`] joins a store as a session would (with params, the values a connect hook
//! attaches, a session id), runs its mutations as a client commits them (by name with JSON
//! arguments, or typed through [`mutation!`](crate::mutation!)) and as server code sends them,
//! and shows what a client would see: the state, the last diff, the reply or the error, and the
//! exact frame a server-side mutation pushes. Attached to a [`Hub`], it is a live session of it:
//! code that calls [`Hub::mutate`], [`Hub::mutate_key`] or [`Hub::mutate_by_name`] (an admin
//! endpoint, a queue consumer, a mutation that tells other tabs) reaches it, and the test sees
//! what arrived with [`TestStore::next_from_hub`].
//!
//! Everything runs as the server runs it: the same join, the same transactions (a failed
//! mutation leaves the state as it was), the same error texts, the same frames. The methods
//! are async (a store's init and mutations may be); a test runs them on tokio, e.g. with
//! `#[tokio::test]` or `#[actix_web::test]`.
//!
//! ```
//! use serde_json::json;
//! use storex::testing::TestStore;
//! use storex::{Reply, Store};
//!
//! #[derive(Store, serde::Serialize, Clone)]
//! #[store(name = "Docs.Testing.Counter")]
//! pub struct Counter {
//!     counter: i64,
//! }
//!
//! #[storex::mutations]
//! impl Counter {
//!     #[init]
//!     fn init() -> Self {
//!         Counter { counter: 0 }
//!     }
//!
//!     #[mutation("set")]
//!     fn set(&mut self, number: i64) -> Result<Reply<i64>, String> {
//!         if number < 0 {
//!             return Err("The counter cannot go below zero.".into());
//!         }
//!         let before = std::mem::replace(&mut self.counter, number);
//!         Ok(Reply(before))
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let mut store = TestStore::<Counter>::join().await?;
//! assert_eq!(store.state_json()?, json!({"counter": 0}));
//!
//! // As a client commits it: by name, with the JSON arguments of its `data` array.
//! store.commit("set", [json!(10)]).await?;
//! assert_eq!(store.state().counter, 10);
//! assert_eq!(store.last_diff_json(), Some(json!([{"a": "u", "p": ["counter"], "t": 10}])));
//! assert_eq!(store.last_reply(), Some(&json!(0)));
//!
//! // An error answer leaves the state as it was.
//! let error = store.commit("set", [json!(-1)]).await.unwrap_err();
//! assert_eq!(error.to_string(), "The counter cannot go below zero.");
//! assert_eq!(store.state().counter, 10);
//!
//! // Typed: the name and the argument count are checked at compile time.
//! store.commit_typed(storex::mutation!(Counter, "set", 3)).await?;
//!
//! // What a server-side mutation pushes to the client.
//! let pushed = store.push(storex::mutation!(Counter, "set", 4)).await;
//! assert_eq!(
//!     pushed.message_json().map(|push| push["diff"].clone()),
//!     Some(json!([{"a": "u", "p": ["counter"], "t": 4}]))
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::config::{random_session_id, Config};
use crate::diff::Change;
use crate::history::Versions;
use crate::hooks::{Hooks, MutationEvent, Source};
use crate::hub::{Hub, Registration};
use crate::instance::{self, Applied, Instance, JoinError, LiveStore, MutationError};
use crate::local::{Command, HubError, Inbox, OpenError};
use crate::mutation::{Mutation, NameError, RawMutation};
use crate::protocol::{MutationFrame, ServerMessage};
use crate::store::{Extensions, Mutations, Params, Session};

/// How long [`TestStore::next_from_hub`] waits when no other bound is set.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(5);

/// How many mutations from the hub may wait for a test store (as [`Config::inbox_capacity`]'s
/// default; past it the hub treats the session as one that does not keep up).
///
/// [`Config::inbox_capacity`]: crate::Config::inbox_capacity
const INBOX_CAPACITY: usize = 256;

/// One instance of store `S` in a test, as one session holds it. Made by [`TestStore::join`]
/// or [`TestStore::joining`]. See [the module](self) for an example.
pub struct TestStore<S> {
    instance: Instance<S>,
    versions: Versions,
    last: Option<Result<Applied, MutationError>>,
    hub: Option<Attached>,
    wait: Duration,
    hooks: Hooks,
}

/// A test store's place in a hub: its registration (dropped, the hub forgets the session) and
/// its inbox.
struct Attached {
    _registration: Registration,
    inbox: Inbox,
}

impl<S: Mutations> fmt::Debug for TestStore<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestStore")
            .field("store", &S::NAME)
            .field("session", &self.session().id())
            .field("key", &self.key())
            .field("version", &self.version())
            .field("attached", &self.hub.is_some())
            .finish_non_exhaustive()
    }
}

/// How a [`TestStore`] joins: its params, its session, its time limit, its hub. Made by
/// [`TestStore::joining`]; [`join`](Self::join) runs the store's init.
///
/// ```
/// # use storex::Store;
/// # #[derive(Store, serde::Serialize, Clone)]
/// # #[store(name = "Docs.Joining.Room")]
/// # pub struct Room { name: String, user: String }
/// #[derive(Debug)]
/// struct User(String);
///
/// #[storex::mutations]
/// impl Room {
///     #[init]
///     fn init(session: &storex::Session, params: &storex::Params) -> Result<storex::Init<Self>, String> {
///         let user = session.get::<User>().ok_or("Sign in first.")?.0.clone();
///         let name: String = params.get("room").ok_or("Which room?")?;
///         Ok(storex::Init::with_key(Room { name: name.clone(), user }, name))
///     }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use storex::testing::TestStore;
///
/// let store = TestStore::<Room>::joining()
///     .params(serde_json::json!({"room": "lobby"}))
///     .extension(User("ada".into()))
///     .session_id("tab-1")
///     .join()
///     .await?;
/// assert_eq!((store.key(), store.session().id()), (Some("lobby"), "tab-1"));
///
/// // A refused join is the error a client would read.
/// let refused = TestStore::<Room>::joining().params(serde_json::json!({"room": "lobby"})).join().await;
/// assert_eq!(refused.unwrap_err().to_string(), "Sign in first.");
/// # Ok::<(), storex::testing::TestError>(())
/// # }).unwrap();
/// ```
#[must_use = "nothing joins until `join` is awaited"]
pub struct Joining<S> {
    params: Value,
    session_id: Option<String>,
    extensions: Extensions,
    time_limit: Option<Duration>,
    wait: Duration,
    hub: Option<Hub>,
    hooks: Hooks,
    store: PhantomData<fn() -> S>,
}

impl<S> fmt::Debug for Joining<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Joining")
            .field("params", &self.params)
            .field("session_id", &self.session_id)
            .field("extensions", &self.extensions)
            .field("time_limit", &self.time_limit)
            .field("wait", &self.wait)
            .field("hub", &self.hub)
            .field("hooks", &self.hooks)
            .finish()
    }
}

impl<S: Mutations> Joining<S> {
    /// The join's params, what a client sends as the join's `data` (default: `{}`).
    pub fn params(mut self, params: Value) -> Self {
        self.params = params;
        self
    }

    /// The session id (default: a random one, as a server gives).
    pub fn session_id(mut self, id: impl Into<String>) -> Self {
        self.session_id = Some(id.into());
        self
    }

    /// Attaches `value` to the session, as a connect hook does
    /// ([`Config::on_connect`](crate::Config::on_connect)); init and mutations read it with
    /// [`Session::get`].
    pub fn extension<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        self.extensions.insert(value);
        self
    }

    /// The session's values, all at once (replacing those given before).
    pub fn extensions(mut self, extensions: Extensions) -> Self {
        self.extensions = extensions;
        self
    }

    /// How long init, an async mutation or terminate may take, as
    /// [`Config::time_limit`](crate::Config::time_limit) (default: no limit). A limit needs
    /// tokio's timer.
    pub fn time_limit(mut self, limit: Duration) -> Self {
        self.time_limit = Some(limit);
        self
    }

    /// How long [`TestStore::next_from_hub`] waits for a mutation (default: [`DEFAULT_WAIT`]).
    pub fn wait(mut self, wait: Duration) -> Self {
        self.wait = wait;
        self
    }

    /// Makes the test store a live session of `hub`: server-side mutations sent through the hub
    /// (to the store, to the key init returned, to the session id) reach it, and
    /// [`TestStore::next_from_hub`] runs them. The hub counts it in
    /// [`Hub::session_count`]; dropping the test store ends the session. (A
    /// [`Hub::stop`] waits until it is dropped.)
    pub fn hub(mut self, hub: &Hub) -> Self {
        self.hub = Some(hub.clone());
        self
    }

    /// Runs the mutation hooks of `config` ([`Config::before_mutation`] and the like) around
    /// every mutation, as its endpoint does: a commit as a client's ([`Source::Client`]), a push
    /// or a mutation from the hub as server code's ([`Source::Server`]). A refusal is the
    /// mutation's error, [`MutationError::Refused`] with the hook's text.
    pub fn hooks(mut self, config: &Config) -> Self {
        self.hooks = config.hooks.clone();
        self
    }

    /// Runs the store's init, as a client's join does. A refusal, a panic or the time limit is
    /// [`TestError::Join`], with the text a client would read; a session id that the hub has
    /// already, or a hub that is stopping, is [`TestError::Attach`] (init does not run).
    pub async fn join(self) -> Result<TestStore<S>, TestError> {
        let id: Arc<str> = self.session_id.unwrap_or_else(random_session_id).into();
        let attached = match &self.hub {
            Some(hub) => {
                let (registration, inbox) =
                    hub.open(id.clone(), INBOX_CAPACITY)
                        .map_err(|error| TestError::Attach {
                            session: id.to_string(),
                            reason: match error {
                                OpenError::Taken => "the hub has a live session of this id",
                                OpenError::Stopping => "the hub is stopping",
                            },
                        })?;
                Some(Attached {
                    _registration: registration,
                    inbox,
                })
            }
            None => None,
        };
        let session = Session::with_extensions(id, self.extensions);
        let instance = instance::start::<S>(session, Params::new(self.params), self.time_limit)
            .await
            .map_err(TestError::Join)?;
        if let Some(attached) = &attached {
            attached._registration.joined(S::NAME, instance.key());
        }
        Ok(TestStore {
            instance,
            versions: Versions::new(),
            last: None,
            hub: attached,
            wait: self.wait,
            hooks: self.hooks,
        })
    }
}

impl<S: Mutations> TestStore<S> {
    /// How the store joins: params, session, time limit, hub (see [`Joining`]).
    pub fn joining() -> Joining<S> {
        Joining {
            params: Value::Object(Default::default()),
            session_id: None,
            extensions: Extensions::new(),
            time_limit: None,
            wait: DEFAULT_WAIT,
            hub: None,
            hooks: Hooks::default(),
            store: PhantomData,
        }
    }

    /// Joins with params `{}`, a random session id and no session values.
    pub async fn join() -> Result<Self, TestError> {
        Self::joining().join().await
    }

    /// The state.
    pub fn state(&self) -> &S {
        self.instance.typed()
    }

    /// The state as a client holds it: its JSON (the join answer's `data`).
    pub fn state_json(&self) -> Result<Value, serde_json::Error> {
        self.instance.state()
    }

    /// The key init returned ([`Init::with_key`](crate::Init::with_key)), if any.
    pub fn key(&self) -> Option<&str> {
        self.instance.key()
    }

    /// The session: its id and the values attached to it.
    pub fn session(&self) -> &Session {
        self.instance.session()
    }

    /// The params init was given.
    pub fn params(&self) -> &Params {
        self.instance.params()
    }

    /// The instance's epoch (PROTOCOL.md, "Versions and resume"): the `epoch` of its frames.
    pub fn epoch(&self) -> &str {
        self.versions.epoch()
    }

    /// The instance's version: how many mutations changed its state (the `version` of its
    /// frames).
    pub fn version(&self) -> u64 {
        self.versions.version()
    }

    /// The join answer a client receives: `{"type":"join","store":..,"session":..,"data":..}`
    /// with the instance's epoch and version, without the resume `token` a server signs.
    /// `request` is the id the client's join carried.
    pub fn join_message(&self, request: Option<Value>) -> Result<String, serde_json::Error> {
        let data = self.state_json()?;
        Ok(ServerMessage::Join {
            store: S::NAME,
            session: self.session().id(),
            data: &data,
            request: &request,
            epoch: Some(self.versions.epoch()),
            version: Some(self.versions.version()),
            token: None,
        }
        .encode())
    }

    /// Runs mutation `name` with `args` (the `data` array) as a client's commit does. The
    /// success is the answer's diff and reply; the error is the error answer's text (an unknown
    /// name, arguments that do not fit, a refusal, a panic...), and the state is then unchanged.
    pub async fn commit(
        &mut self,
        name: &str,
        args: impl IntoIterator<Item = Value>,
    ) -> Result<Applied, MutationError> {
        let args: Vec<Value> = args.into_iter().collect();
        let result = self.run(name, &args, Source::Client).await;
        self.last = Some(result.clone());
        result
    }

    /// [`commit`](Self::commit) of a mutation built by [`mutation!`](crate::mutation!), whose
    /// name and argument count are checked at compile time. An argument that could not be
    /// serialized is [`MutationError::Refused`] with serde's reason, and nothing runs.
    pub async fn commit_typed(&mut self, mutation: Mutation<S>) -> Result<Applied, MutationError> {
        let result = match mutation.args() {
            Ok(args) => self.run(mutation.name(), args, Source::Client).await,
            Err(reason) => Err(MutationError::Refused(reason.to_owned())),
        };
        self.last = Some(result.clone());
        result
    }

    /// Runs `mutation` as server code sends it ([`Hub::mutate`] and the like) and shows what
    /// this session's client would receive: the push frame, when the state changed. An
    /// argument that could not be serialized fails the mutation as in
    /// [`commit_typed`](Self::commit_typed).
    pub async fn push(&mut self, mutation: Mutation<S>) -> Pushed {
        match RawMutation::try_from(mutation) {
            Ok(mutation) => self.serve(mutation).await,
            Err(reason) => {
                let result = Err(MutationError::Refused(reason));
                self.last = Some(result.clone());
                Pushed {
                    mutation: None,
                    result,
                    message: None,
                }
            }
        }
    }

    /// [`push`](Self::push) of mutation `name` of store `store`, by name as
    /// [`Hub::mutate_by_name`] takes it: checked at run time against the program's stores. An
    /// unknown store or mutation, or a wrong argument count, is [`TestError::Name`] with the
    /// hub's message; another store than this one is [`TestError::OtherStore`].
    pub async fn push_by_name(
        &mut self,
        store: &str,
        name: &str,
        args: Vec<Value>,
    ) -> Result<Pushed, TestError> {
        let mutation = RawMutation::new(store, name, args)?;
        self.push_raw(mutation).await
    }

    /// [`push`](Self::push) of a mutation by name ([`RawMutation`], checked already); another
    /// store than this one is [`TestError::OtherStore`].
    pub async fn push_raw(&mut self, mutation: RawMutation) -> Result<Pushed, TestError> {
        if mutation.store() != S::NAME {
            return Err(TestError::OtherStore {
                expected: S::NAME,
                given: mutation.store(),
                mutation: mutation.name(),
            });
        }
        Ok(self.serve(mutation).await)
    }

    /// Waits for the next mutation the hub sends this session (see [`Joining::hub`]), runs it
    /// as a live session does, and shows what its client would receive; a caller waiting for
    /// its reply ([`Hub::mutate_session`], [`Hub::request`]) gets it. Waits at most the bound
    /// of [`Joining::wait`], with tokio's timer: nothing arriving is
    /// [`TestError::NothingArrived`].
    pub async fn next_from_hub(&mut self) -> Result<Pushed, TestError> {
        let wait = self.wait;
        let session = self.session().id().to_owned();
        let inbox = &mut self.hub.as_mut().ok_or(TestError::NoHub)?.inbox;
        let command = tokio::time::timeout(wait, inbox.commands.recv()).await;
        match command {
            Ok(Some(command)) => Ok(self.answer(command).await),
            // The test store holds its registration: the hub cannot close its inbox.
            Ok(None) | Err(_) => Err(TestError::NothingArrived {
                session,
                waited: wait,
            }),
        }
    }

    /// Runs every mutation the hub has sent this session and that waits, in order, without
    /// waiting for more; empty when none waits (or when the store is not attached to a hub).
    pub async fn queued_from_hub(&mut self) -> Vec<Pushed> {
        let mut pushed = Vec::new();
        loop {
            let Some(attached) = self.hub.as_mut() else {
                return pushed;
            };
            let Ok(command) = attached.inbox.commands.try_recv() else {
                return pushed;
            };
            pushed.push(self.answer(command).await);
        }
    }

    /// What the last mutation (committed or pushed) did: its diff and reply, or its error.
    pub fn last(&self) -> Option<&Result<Applied, MutationError>> {
        self.last.as_ref()
    }

    /// The diff of the last mutation, if it succeeded.
    pub fn last_diff(&self) -> Option<&[Change]> {
        match &self.last {
            Some(Ok(applied)) => Some(&applied.diff),
            _ => None,
        }
    }

    /// [`last_diff`](Self::last_diff) as the JSON of the frames' `diff`
    /// (`[{"a":"u","p":["counter"],"t":1}]`).
    pub fn last_diff_json(&self) -> Option<Value> {
        self.last_diff().map(diff_json)
    }

    /// The reply of the last mutation, if it succeeded with one (the answer's `message`).
    pub fn last_reply(&self) -> Option<&Value> {
        match &self.last {
            Some(Ok(applied)) => applied.reply.as_ref(),
            _ => None,
        }
    }

    /// The error of the last mutation, if it failed.
    pub fn last_error(&self) -> Option<&MutationError> {
        match &self.last {
            Some(Err(error)) => Some(error),
            _ => None,
        }
    }

    /// Runs the store's terminate, as the end of the session does, and ends the session.
    pub async fn terminate(mut self) {
        self.instance.terminate().await;
    }

    /// Runs a mutation; a changed state takes the next version, as in a session.
    async fn run(
        &mut self,
        name: &str,
        args: &[Value],
        source: Source,
    ) -> Result<Applied, MutationError> {
        let result = if self.hooks.is_empty() {
            self.instance.mutate(name, args).await
        } else {
            let session = self.instance.session().clone();
            let event = MutationEvent {
                session: &session,
                store: S::NAME,
                name,
                args,
                source,
            };
            let instance = &mut self.instance;
            let mutate = move || {
                let instance = instance;
                instance.mutate(name, args)
            };
            self.hooks.around(&event, mutate).await.0
        };
        if matches!(&result, Ok(applied) if !applied.diff.is_empty()) {
            self.versions.advance();
        }
        result
    }

    /// Runs a server-side mutation of this store and writes its push.
    async fn serve(&mut self, mutation: RawMutation) -> Pushed {
        let result = self
            .run(mutation.name(), mutation.args(), Source::Server)
            .await;
        self.last = Some(result.clone());
        // A change-less push is not sent, nor the failure of a server-side mutation.
        let message = match &result {
            Ok(applied) if !applied.diff.is_empty() => Some(
                MutationFrame::push(
                    S::NAME,
                    self.session().id(),
                    &applied.diff,
                    self.versions.epoch(),
                    self.versions.version(),
                )
                .encode()
                .text,
            ),
            _ => None,
        };
        Pushed {
            mutation: Some(mutation),
            result,
            message,
        }
    }

    /// Runs a mutation from the hub and answers the caller that waits for its reply.
    async fn answer(&mut self, command: Box<Command>) -> Pushed {
        let Command { mutation, reply } = *command;
        let (pushed, answer) = if mutation.store() == S::NAME {
            let pushed = self.serve(mutation).await;
            let answer = match &pushed.result {
                Ok(applied) => Ok(applied.reply.clone()),
                Err(error) => Err(HubError::Mutation(error.clone())),
            };
            (pushed, answer)
        } else {
            // A mutation for one session may name a store the session has not joined: a live
            // session answers so, and runs nothing.
            let error = HubError::NotJoined {
                session: self.session().id().to_owned(),
                store: mutation.store(),
            };
            let pushed = Pushed {
                mutation: Some(mutation),
                result: Err(MutationError::Refused(error.to_string())),
                message: None,
            };
            (pushed, Err(error))
        };
        if let Some(reply) = reply {
            // The caller may have stopped waiting.
            let _ = reply.send(answer);
        }
        pushed
    }
}

/// What a server-side mutation did in a [`TestStore`], and what its client would receive.
#[derive(Debug, Clone, PartialEq)]
pub struct Pushed {
    /// The mutation that ran (`None` when its arguments could not be serialized).
    pub mutation: Option<RawMutation>,
    /// Its diff and reply, or why it failed (the state is then unchanged).
    pub result: Result<Applied, MutationError>,
    /// The frame sent to the client (PROTOCOL.md: a `mutation` without `request`); `None` when
    /// nothing is sent: the mutation failed, or it changed nothing.
    pub message: Option<String>,
}

impl Pushed {
    /// The pushed frame, parsed.
    pub fn message_json(&self) -> Option<Value> {
        self.message
            .as_deref()
            .and_then(|text| serde_json::from_str(text).ok())
    }

    /// The diff, if the mutation succeeded.
    pub fn diff(&self) -> Option<&[Change]> {
        self.result.as_ref().ok().map(|applied| &applied.diff[..])
    }

    /// [`diff`](Self::diff) as JSON.
    pub fn diff_json(&self) -> Option<Value> {
        self.diff().map(diff_json)
    }
}

/// A diff as the JSON of the frames' `diff`.
fn diff_json(diff: &[Change]) -> Value {
    // A change is a map of string keys to JSON values: serializing it cannot fail.
    serde_json::to_value(diff).unwrap_or_default()
}

/// Why a [`TestStore`] could not do what a test asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TestError {
    /// The join failed: init refused it, panicked or took longer than the time limit.
    #[error(transparent)]
    Join(JoinError),
    /// The test store could not become a session of the hub.
    #[error("the test store cannot join the hub as session {session:?}: {reason}")]
    Attach {
        /// The session id.
        session: String,
        /// Why not.
        reason: &'static str,
    },
    /// The store or the mutation does not exist, or takes other arguments.
    #[error(transparent)]
    Name(#[from] NameError),
    /// The mutation is another store's.
    #[error("mutation {mutation:?} is of store {given}, not of this test store's {expected}")]
    OtherStore {
        /// The test store's store.
        expected: &'static str,
        /// The mutation's store.
        given: &'static str,
        /// The mutation's name.
        mutation: &'static str,
    },
    /// The test store is not a session of a hub.
    #[error(
        "this test store is not attached to a hub: join it with `TestStore::joining().hub(&hub)`"
    )]
    NoHub,
    /// No mutation from the hub arrived in time.
    #[error("no mutation from the hub reached session {session:?} within {waited:?}")]
    NothingArrived {
        /// The session id.
        session: String,
        /// How long the test store waited.
        waited: Duration,
    },
}
