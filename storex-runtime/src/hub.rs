//! The hub: live sessions indexed by id, by store and by key, through which server code mutates
//! stores. Each server has its own hub; nothing here is global.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;
use tokio::sync::{mpsc, oneshot, Notify};

use crate::instance::MutationError;
use crate::mutation::Mutation;
use crate::store::Mutations;

/// A command from server code to one session's task.
#[derive(Debug)]
pub(crate) enum Command {
    /// Run a mutation on the session's instance of `store`; push the diff to the client.
    Mutate {
        store: &'static str,
        name: &'static str,
        args: Arc<[Value]>,
        /// Where to send the reply, when the caller waits for it.
        reply: Option<oneshot::Sender<Result<Option<Value>, HubError>>>,
    },
}

/// Why a server-side mutation did not run or did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HubError {
    /// No live session has this id.
    #[error("no live session has the id {0:?}")]
    NoSession(String),
    /// The session has not joined the store.
    #[error("session {session:?} has not joined store {store}")]
    NotJoined {
        /// The session id.
        session: String,
        /// The store's name.
        store: &'static str,
    },
    /// The session cannot take more commands: its client does not read (it is being closed).
    #[error("session {0:?} is not keeping up and is being closed")]
    Overloaded(String),
    /// The session ended before it answered.
    #[error("session {0:?} ended before the mutation ran")]
    Gone(String),
    /// An argument could not be serialized.
    #[error("{0}")]
    Arguments(String),
    /// The mutation ran and failed; the state is unchanged.
    #[error(transparent)]
    Mutation(#[from] MutationError),
}

/// The index of live sessions of one server. Cheap to clone: clones share the index.
///
/// Server code mutates stores through it (names checked at compile time by `storex::mutation!`):
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
/// // every live instance of the store:
/// let reached = hub.mutate(storex::mutation!(Counter, "increase"));
/// assert_eq!(reached, 0); // no session has joined yet
/// // the instances whose init returned the key "user_42":
/// hub.mutate_key("user_42", storex::mutation!(Counter, "set", 10));
/// ```
#[derive(Clone, Default)]
pub struct Hub {
    indexes: Arc<Mutex<Indexes>>,
}

impl fmt::Debug for Hub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hub")
            .field("sessions", &self.session_count())
            .finish()
    }
}

#[derive(Default)]
struct Indexes {
    sessions: HashMap<Arc<str>, SessionEntry>,
    by_store: HashMap<&'static str, HashSet<Arc<str>>>,
    by_key: HashMap<(&'static str, Box<str>), HashSet<Arc<str>>>,
}

struct SessionEntry {
    // Boxed: a channel allocates its first block of 32 slots when it is made, so with 10,000 idle
    // sessions the slot size is resident memory (a `Command` is 64 bytes, a box 8).
    commands: mpsc::Sender<Box<Command>>,
    overloaded: Arc<Notify>,
    joined: Vec<(&'static str, Option<Box<str>>)>,
}

/// A session's side of the hub: its inbox of commands, and the signal that it fell behind.
#[derive(Debug)]
pub(crate) struct Inbox {
    pub(crate) commands: mpsc::Receiver<Box<Command>>,
    pub(crate) overloaded: Arc<Notify>,
}

impl Hub {
    /// An empty hub.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many sessions are live.
    pub fn session_count(&self) -> usize {
        self.lock().sessions.len()
    }

    /// The ids of the sessions that hold an instance of store `name`.
    pub fn sessions_of(&self, store: &str) -> Vec<String> {
        let indexes = self.lock();
        let mut ids: Vec<String> = indexes
            .by_store
            .get(store)
            .map(|ids| ids.iter().map(|id| id.to_string()).collect())
            .unwrap_or_default();
        ids.sort_unstable();
        ids
    }

    fn lock(&self) -> MutexGuard<'_, Indexes> {
        // The index stays consistent even if a holder panicked: every update is one statement.
        self.indexes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers a live session; its commands arrive in the returned inbox. `None` when a live
    /// session already has this id (the id generator repeated itself).
    pub(crate) fn open(&self, id: Arc<str>, capacity: usize) -> Option<Inbox> {
        let mut indexes = self.lock();
        if indexes.sessions.contains_key(&id) {
            return None;
        }
        let (commands, receiver) = mpsc::channel(capacity.max(1));
        let overloaded = Arc::new(Notify::new());
        let joined = Vec::new();
        let entry = SessionEntry {
            commands,
            overloaded: overloaded.clone(),
            joined,
        };
        indexes.sessions.insert(id, entry);
        Some(Inbox {
            commands: receiver,
            overloaded,
        })
    }

    /// Records that session `id` joined `store`, reachable by `key` if given.
    pub(crate) fn joined(&self, id: &Arc<str>, store: &'static str, key: Option<&str>) {
        let mut indexes = self.lock();
        let Some(entry) = indexes.sessions.get_mut(id) else {
            return;
        };
        entry.joined.push((store, key.map(Box::from)));
        indexes
            .by_store
            .entry(store)
            .or_default()
            .insert(id.clone());
        if let Some(key) = key {
            indexes
                .by_key
                .entry((store, key.into()))
                .or_default()
                .insert(id.clone());
        }
    }

    /// Forgets session `id` everywhere.
    pub(crate) fn close(&self, id: &str) {
        let mut indexes = self.lock();
        let Some(entry) = indexes.sessions.remove(id) else {
            return;
        };
        for (store, key) in entry.joined {
            remove_from(&mut indexes.by_store, &store, id);
            if let Some(key) = key {
                remove_from(&mut indexes.by_key, &(store, key), id);
            }
        }
    }

    /// Runs `mutation` on every live instance of its store; each client receives the diff.
    /// Returns how many sessions it was sent to (a session that does not keep up is closed
    /// instead, and its client re-joins with a fresh state). A mutation whose arguments could not
    /// be serialized (see [`Mutation::args`]) is sent nowhere and logged as an error.
    pub fn mutate<S: Mutations>(&self, mutation: Mutation<S>) -> usize {
        self.broadcast(mutation, |indexes| indexes.by_store.get(S::NAME))
    }

    /// Runs `mutation` on the instances whose init returned `key` (e.g. every tab of one user).
    /// Returns how many sessions it was sent to.
    pub fn mutate_key<S: Mutations>(&self, key: &str, mutation: Mutation<S>) -> usize {
        let key = (S::NAME, Box::<str>::from(key));
        self.broadcast(mutation, |indexes| indexes.by_key.get(&key))
    }

    /// Runs `mutation` on session `session`'s instance and returns the mutation's reply.
    pub async fn mutate_session<S: Mutations>(
        &self,
        session: &str,
        mutation: Mutation<S>,
    ) -> Result<Option<Value>, HubError> {
        let args: Arc<[Value]> = mutation
            .args()
            .map_err(|e| HubError::Arguments(e.into()))?
            .into();
        let (sender, overloaded) = {
            let indexes = self.lock();
            let entry = indexes
                .sessions
                .get(session)
                .ok_or_else(|| HubError::NoSession(session.into()))?;
            if !entry.joined.iter().any(|(store, _)| *store == S::NAME) {
                return Err(HubError::NotJoined {
                    session: session.into(),
                    store: S::NAME,
                });
            }
            (entry.commands.clone(), entry.overloaded.clone())
        };
        let (reply, answer) = oneshot::channel();
        let command = Box::new(Command::Mutate {
            store: S::NAME,
            name: mutation.name(),
            args,
            reply: Some(reply),
        });
        match sender.try_send(command) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                overloaded.notify_one();
                return Err(HubError::Overloaded(session.into()));
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                return Err(HubError::Gone(session.into()))
            }
        }
        answer
            .await
            .unwrap_or_else(|_| Err(HubError::Gone(session.into())))
    }

    fn broadcast<S: Mutations>(
        &self,
        mutation: Mutation<S>,
        targets: impl FnOnce(&Indexes) -> Option<&HashSet<Arc<str>>>,
    ) -> usize {
        let args: Arc<[Value]> = match mutation.args() {
            Ok(args) => args.into(),
            Err(message) => {
                tracing::error!(store = S::NAME, mutation = mutation.name(), "{message}");
                return 0;
            }
        };
        // Collect the senders under the lock, send after it: no lock is held while sending.
        let senders: Vec<_> = {
            let indexes = self.lock();
            targets(&indexes)
                .into_iter()
                .flatten()
                .filter_map(|id| indexes.sessions.get(id))
                .map(|entry| (entry.commands.clone(), entry.overloaded.clone()))
                .collect()
        };
        let mut sent = 0;
        for (sender, overloaded) in senders {
            let command = Box::new(Command::Mutate {
                store: S::NAME,
                name: mutation.name(),
                args: args.clone(),
                reply: None,
            });
            match sender.try_send(command) {
                Ok(()) => sent += 1,
                Err(mpsc::error::TrySendError::Full(_)) => overloaded.notify_one(),
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        }
        sent
    }
}

fn remove_from<K: std::hash::Hash + Eq>(
    index: &mut HashMap<K, HashSet<Arc<str>>>,
    key: &K,
    id: &str,
) {
    if let Some(ids) = index.get_mut(key) {
        ids.remove(id);
        if ids.is_empty() {
            index.remove(key);
        }
    }
}
