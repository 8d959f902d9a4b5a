//! The hub: how server code mutates live stores. A typed front ([`Mutation<S>`], checked at
//! compile time) and a by-name one ([`RawMutation`], checked at run time) turn every mutation
//! into a [`Target`] and a raw mutation, which the hub's [`Backplane`] delivers. Each server has
//! its own hub; nothing here is global.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::Value;

use crate::backplane::{Backplane, InProcess};
use crate::local::{
    Claim, ClaimError, Claims, DetachLimits, HubError, Inbox, LocalSessions, OpenError, Topic,
};
use crate::mutation::{Mutation, RawMutation, Target};
use crate::store::Mutations;

/// The live sessions of one server, through which server code mutates stores. Cheap to clone:
/// clones share the sessions.
///
/// What a returned count means: the number of sessions **of this process** the mutation was
/// queued to. Each of them runs it in order with its other work, and a client receives a push
/// when its state changed. A mutation that then fails in a session is logged there and sends
/// nothing. With a backplane that reaches other nodes, their sessions are reached too and are
/// not counted.
///
/// ```
/// # use storex::Store;
/// # #[derive(Store, serde::Serialize, Clone)]
/// # #[store(name = "Docs.Hub.Counter")]
/// # pub struct Counter { counter: i64 }
/// # #[storex::mutations]
/// # impl Counter {
/// #     #[init] fn init() -> Self { Counter { counter: 0 } }
/// #     #[mutation("increase")] fn increase(&mut self) { self.counter += 1 }
/// #     #[mutation("set")] fn set(&mut self, n: i64) { self.counter = n }
/// # }
/// let hub = storex::Hub::new();
/// // every live instance of the store (names checked at compile time):
/// let reached = hub.mutate(storex::mutation!(Counter, "increase"))?;
/// assert_eq!(reached, 0); // no session has joined yet
/// // the instances whose init returned the key "user_42":
/// hub.mutate_key("user_42", storex::mutation!(Counter, "set", 10))?;
/// // by name, for names that come from outside the program (checked at run time):
/// hub.mutate_by_name("Docs.Hub.Counter", "set", vec![serde_json::json!(3)])?;
/// let error = hub.mutate_by_name("Docs.Hub.Counter", "sett", vec![]).unwrap_err();
/// assert_eq!(
///     error.to_string(),
///     r#"no mutation "sett" in store Docs.Hub.Counter; its mutations are: "increase", "set""#
/// );
/// # Ok::<(), storex::HubError>(())
/// ```
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

struct Inner {
    local: LocalSessions,
    backplane: Box<dyn Backplane>,
    /// Held from an index change to the backplane hearing of it, so that topic changes reach
    /// the backplane in the order they happened (a join on one worker and a close on another).
    topics: Mutex<()>,
}

impl fmt::Debug for Hub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hub")
            .field("sessions", &self.session_count())
            .field("backplane", &self.inner.backplane)
            .finish()
    }
}

impl Default for Hub {
    fn default() -> Self {
        Self::new()
    }
}

impl Hub {
    /// A hub of one process ([`InProcess`]).
    pub fn new() -> Self {
        Self::with_backplane(InProcess)
    }

    /// A hub whose mutations travel through `backplane` (to other nodes, say).
    pub fn with_backplane(backplane: impl Backplane) -> Self {
        let local = LocalSessions::default();
        backplane.attach(&local);
        Self {
            inner: Arc::new(Inner {
                local,
                backplane: Box::new(backplane),
                topics: Mutex::new(()),
            }),
        }
    }

    /// Whether `other` is this hub (a clone of it).
    #[cfg(feature = "metrics")]
    pub(crate) fn same(&self, other: &Hub) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// How many messages the backplane could not publish, when it publishes anywhere.
    #[cfg(feature = "metrics")]
    pub(crate) fn publish_failures(&self) -> Option<u64> {
        self.inner.backplane.publish_failures()
    }

    /// How many sessions are live in this process.
    pub fn session_count(&self) -> usize {
        self.inner.local.session_count()
    }

    /// The ids of this process's sessions that hold an instance of store `store`, sorted.
    pub fn sessions_of(&self, store: &str) -> Vec<String> {
        self.inner.local.sessions_of(store)
    }

    /// Runs `mutation` on every live instance of its store; each client whose state changed
    /// receives the diff. The count is explained on [`Hub`]. An argument that could not be
    /// serialized is [`HubError::Arguments`], and nothing is sent.
    pub fn mutate<S: Mutations>(&self, mutation: Mutation<S>) -> Result<usize, HubError> {
        self.send(Target::Store, raw(mutation)?)
    }

    /// Runs `mutation` on the instances whose init returned `key` (e.g. every tab of one user).
    pub fn mutate_key<S: Mutations>(
        &self,
        key: &str,
        mutation: Mutation<S>,
    ) -> Result<usize, HubError> {
        self.send(Target::Key(key.to_owned()), raw(mutation)?)
    }

    /// Runs `mutation` on session `session`'s instance and answers the mutation's reply.
    pub async fn mutate_session<S: Mutations>(
        &self,
        session: &str,
        mutation: Mutation<S>,
    ) -> Result<Option<Value>, HubError> {
        self.request(session, raw(mutation)?).await
    }

    /// Runs mutation `name` of store `store` with `args` on every live instance of the store,
    /// like Storex's `Storex.mutate(store, name, payload)`: for names that come from outside
    /// the program. An unknown store or mutation, or a wrong number of arguments, is
    /// [`HubError::Name`]. In code, prefer [`mutate`](Self::mutate), checked at compile time.
    pub fn mutate_by_name(
        &self,
        store: &str,
        name: &str,
        args: Vec<Value>,
    ) -> Result<usize, HubError> {
        self.send(Target::Store, RawMutation::new(store, name, args)?)
    }

    /// Sends a mutation by name to `target`'s sessions, without waiting for them.
    pub fn send(&self, target: Target, mutation: RawMutation) -> Result<usize, HubError> {
        self.inner
            .backplane
            .publish(&self.inner.local, &target, &mutation)
    }

    /// Runs a mutation by name in session `session` and answers its reply.
    pub async fn request(
        &self,
        session: &str,
        mutation: RawMutation,
    ) -> Result<Option<Value>, HubError> {
        let inner = &self.inner;
        inner
            .backplane
            .request(&inner.local, session.to_owned(), mutation)
            .await
    }

    /// A graceful stop: new connections are refused, every session of this process finishes
    /// what it is running, is closed with 1001 and runs its `terminate`. Done when the last one
    /// has gone (bounded by the time limit of what they run and the send timeout).
    pub async fn stop(&self) {
        self.inner.local.stop().await;
    }

    /// Whether [`stop`](Self::stop) was called.
    pub fn is_stopping(&self) -> bool {
        self.inner.local.is_stopping()
    }

    /// How many sessions of this process are detached (their connection dropped; they wait for
    /// their client to resume them), and the bytes of history they hold together.
    pub fn detached(&self) -> Detached {
        let (sessions, history_bytes) = self.inner.local.detached();
        Detached {
            sessions,
            history_bytes,
        }
    }

    /// Takes detached session `id` for a resume (see [`LocalSessions::claim`]).
    pub(crate) async fn claim(
        &self,
        id: &str,
        grace: Duration,
        patience: Duration,
    ) -> Result<Claim, ClaimError> {
        self.inner.local.claim(id, grace, patience).await
    }

    /// Session `id`'s connection is gone: it detaches once it has finished what it runs.
    pub(crate) fn leaving(&self, id: &str) {
        self.inner.local.leaving(id);
    }

    /// The connection that resumed session `id` serves it now.
    pub(crate) fn attached(&self, id: &str) {
        self.inner.local.attached(id);
    }

    /// Registers a session: its inbox, and the guard that forgets it when dropped.
    pub(crate) fn open(
        &self,
        id: Arc<str>,
        capacity: usize,
    ) -> Result<(Registration, Inbox), OpenError> {
        let inbox = self.inner.local.open(id.clone(), capacity)?;
        let registration = Registration {
            hub: self.clone(),
            id,
        };
        Ok((registration, inbox))
    }

    fn topics_lock(&self) -> MutexGuard<'_, ()> {
        // It guards no data: a panic while it was held leaves nothing inconsistent.
        self.inner
            .topics
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn tell(&self, topics: Vec<Topic>, subscribe: bool) {
        for topic in &topics {
            if subscribe {
                self.inner.backplane.subscribe(topic);
            } else {
                self.inner.backplane.unsubscribe(topic);
            }
        }
    }
}

/// A session's place in the hub. Dropping it forgets the session, whatever ended it: a normal
/// close, a panic, or its task being dropped.
pub(crate) struct Registration {
    hub: Hub,
    id: Arc<str>,
}

/// The detached sessions of a process (see [`Hub::detached`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Detached {
    /// How many sessions are detached.
    pub sessions: usize,
    /// The bytes of diffs and remembered answers they keep for their clients.
    pub history_bytes: usize,
}

impl Registration {
    /// The hub the session is registered with.
    pub(crate) fn hub(&self) -> &Hub {
        &self.hub
    }

    /// The session's connection dropped: it waits for a resume (see [`LocalSessions::detach`]).
    pub(crate) fn detach(&self, bytes: usize, limits: DetachLimits) -> Option<Claims> {
        self.hub.inner.local.detach(&self.id, bytes, limits)
    }

    /// The detached session now keeps `bytes` of history.
    pub(crate) fn detached_size(&self, bytes: usize, limits: DetachLimits) {
        self.hub.inner.local.detached_size(&self.id, bytes, limits);
    }

    /// The detached session is ending: no resume may take it any more.
    pub(crate) fn end_detached(&self) {
        self.hub.inner.local.end_detached(&self.id);
    }

    /// Records that the session joined `store`, reachable by `key` if given.
    pub(crate) fn joined(&self, store: &'static str, key: Option<&str>) {
        let _order = self.hub.topics_lock();
        let topics = self.hub.inner.local.joined(&self.id, store, key);
        self.hub.tell(topics, true);
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let _order = self.hub.topics_lock();
        let topics = self.hub.inner.local.remove(&self.id);
        self.hub.tell(topics, false);
    }
}

fn raw<S: Mutations>(mutation: Mutation<S>) -> Result<RawMutation, HubError> {
    RawMutation::try_from(mutation).map_err(HubError::Arguments)
}
