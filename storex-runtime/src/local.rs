//! This process's live sessions, indexed by id, by store and by key, and the delivery of
//! server-side mutations into their inboxes. Every backplane ends here; nothing here is global
//! (each hub has its own).

use std::any::Any;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::mem::discriminant;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{mpsc, oneshot, Notify};

use crate::instance::MutationError;
use crate::mutation::{NameError, RawMutation, Target};

/// A server-side mutation on its way into one session's task.
#[derive(Debug)]
pub(crate) struct Command {
    pub(crate) mutation: RawMutation,
    /// Where to send the reply, when the caller waits for it.
    pub(crate) reply: Option<oneshot::Sender<Result<Option<Value>, HubError>>>,
}

/// Why a server-side mutation did not run or did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
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
    /// The store or the mutation does not exist, or takes other arguments.
    #[error(transparent)]
    Name(#[from] NameError),
    /// The mutation ran and failed; the state is unchanged.
    #[error(transparent)]
    Mutation(#[from] MutationError),
    /// The backplane could not carry the mutation to other nodes (this process's sessions may
    /// have received it).
    #[error("the backplane could not send the mutation: {0}")]
    Backplane(String),
}

/// A store, or a store's key, that this process has sessions of: what a backplane that reaches
/// other nodes needs to listen to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Topic {
    /// Every instance of a store.
    Store(&'static str),
    /// The instances of a store with one key.
    Key(&'static str, Box<str>),
}

/// The live sessions of this process. Cheap to clone: clones share the index.
///
/// A [`Backplane`](crate::backplane::Backplane) delivers mutations through it: into the inbox of
/// each matching session's task, never waiting (a full inbox closes that session instead).
#[derive(Clone, Default)]
pub struct LocalSessions {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    indexes: Mutex<Indexes>,
    /// Signalled when the last session goes.
    emptied: Notify,
    /// Signalled when a session's attachment changes (a resume may be waiting for it).
    changed: Notify,
}

impl fmt::Debug for LocalSessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalSessions")
            .field("sessions", &self.session_count())
            .finish()
    }
}

#[derive(Default)]
struct Indexes {
    /// Set once the process is stopping: sessions close, new ones are refused.
    stopping: bool,
    sessions: HashMap<Arc<str>, SessionEntry>,
    by_store: HashMap<&'static str, HashSet<Arc<str>>>,
    by_key: HashMap<(&'static str, Box<str>), HashSet<Arc<str>>>,
    /// The detached sessions, oldest first (by the order they detached in).
    detached: BTreeMap<u64, Arc<str>>,
    /// The history bytes the detached sessions hold together.
    detached_bytes: usize,
    /// The order number of the next session to detach.
    next_detach: u64,
}

/// A detached session, handed whole to the connection that resumes it. The core knows its type
/// (a connection and its inbox); the index only carries it.
pub(crate) type Handoff = Box<dyn Any + Send>;

/// Where a resuming connection asks a detached session's task to hand the session over.
pub(crate) type Claim = oneshot::Sender<oneshot::Sender<Handoff>>;

/// A detached session's task receives the resume of its session here; the channel closes when
/// the session is evicted.
pub(crate) type Claims = oneshot::Receiver<oneshot::Sender<Handoff>>;

/// How much detached sessions may hold together.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DetachLimits {
    pub(crate) sessions: usize,
    pub(crate) bytes: usize,
}

/// Whether a session's connection is there.
enum Attachment {
    /// A connection serves it.
    Attached,
    /// Its connection is gone; it finishes what it runs (or sends its close) and then detaches.
    Leaving,
    /// A resume took it from its detached task; the resuming connection is not serving it yet.
    Claimed,
    /// Its connection dropped; its task waits for a resume.
    Detached {
        order: u64,
        bytes: usize,
        claim: Claim,
    },
    /// It is ending (its time is up, or it was evicted): it cannot be resumed.
    Ending,
}

/// Why a session could not be claimed for a resume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClaimError {
    /// The session is not here, or is ending.
    Ended,
    /// A connection still serves it.
    Attached,
}

struct SessionEntry {
    // Boxed: a channel allocates its first block of 32 slots when it is made, so with 10,000 idle
    // sessions the slot size is resident memory.
    commands: mpsc::Sender<Box<Command>>,
    signal: Arc<Signal>,
    joined: Vec<(&'static str, Option<Box<str>>)>,
    attachment: Attachment,
    /// How many times it detached.
    detaches: u64,
}

impl SessionEntry {
    /// Whether the session holds an instance of `store`.
    fn has_joined(&self, store: &str) -> bool {
        self.joined.iter().any(|(joined, _)| *joined == store)
    }

    /// Where to send the session a command, and how to tell it that it fell behind.
    fn channel(&self) -> (mpsc::Sender<Box<Command>>, Arc<Signal>) {
        (self.commands.clone(), self.signal.clone())
    }
}

/// A session's side of the index: its inbox of commands, the signal that it fell behind, and
/// the signal that the process is stopping. Each session has its own signals, so waiting for
/// them contends with no other session.
#[derive(Debug)]
pub(crate) struct Inbox {
    pub(crate) commands: mpsc::Receiver<Box<Command>>,
    pub(crate) signal: Arc<Signal>,
}

/// What the hub tells a session's task besides commands: one wake-up and the reasons raised
/// since the task last looked. One per session, so that waiting for it contends with no other
/// session, and one in all, so that the task's loop registers one waiter, not three.
#[derive(Debug, Default)]
pub(crate) struct Signal {
    wake: Notify,
    raised: AtomicU8,
}

impl Signal {
    /// The session falls behind: a command could not be queued.
    pub(crate) const OVERLOADED: u8 = 1;
    /// The process is stopping.
    pub(crate) const STOP: u8 = 2;
    /// A resume wants the session: its connection must show it is alive, or let it go.
    pub(crate) const PROBE: u8 = 4;

    /// Raises `reason` and wakes the task (or lets it find the wake-up when it next waits).
    pub(crate) fn raise(&self, reason: u8) {
        self.raised.fetch_or(reason, Ordering::AcqRel);
        self.wake.notify_one();
    }

    /// Forgets `reason` if it was raised since the last look.
    pub(crate) fn lower(&self, reason: u8) {
        self.raised.fetch_and(!reason, Ordering::AcqRel);
    }

    /// Waits for a wake-up; the reasons raised since the last call (possibly none: a wake-up
    /// whose reasons an earlier call took).
    pub(crate) async fn next(&self) -> u8 {
        self.wake.notified().await;
        self.take()
    }

    /// The reasons raised since the last look, cleared.
    fn take(&self) -> u8 {
        self.raised.swap(0, Ordering::AcqRel)
    }
}

/// Why a session could not be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpenError {
    /// A live session has this id.
    Taken,
    /// The process is stopping.
    Stopping,
}

impl LocalSessions {
    fn lock(&self) -> MutexGuard<'_, Indexes> {
        // The index stays consistent even if a holder panicked: every update is one statement.
        self.shared
            .indexes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// How many sessions are live in this process.
    pub fn session_count(&self) -> usize {
        self.lock().sessions.len()
    }

    /// Whether session `id` lives in this process.
    pub fn contains(&self, id: &str) -> bool {
        self.lock().sessions.contains_key(id)
    }

    /// The ids of this process's sessions that hold an instance of store `store`, sorted.
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

    /// Queues `mutation` into every local session that `target` selects; the number of sessions
    /// it was queued to. A session whose inbox is full is told to close (its client does not
    /// keep up) instead of receiving it.
    pub fn deliver(&self, target: &Target, mutation: &RawMutation) -> usize {
        let store = mutation.store();
        // Collect the senders under the lock, send after it: no lock is held while sending.
        let senders: Vec<(mpsc::Sender<Box<Command>>, Arc<Signal>)> = {
            let indexes = self.lock();
            let in_set = |ids: Option<&HashSet<Arc<str>>>| {
                let ids = ids.into_iter().flatten();
                ids.filter_map(|id| indexes.sessions.get(id))
                    .map(SessionEntry::channel)
                    .collect()
            };
            match target {
                Target::Store => in_set(indexes.by_store.get(store)),
                Target::Key(key) => in_set(indexes.by_key.get(&(store, Box::from(key.as_str())))),
                Target::Session(id) => indexes
                    .sessions
                    .get(id.as_str())
                    .filter(|entry| entry.has_joined(store))
                    .map(SessionEntry::channel)
                    .into_iter()
                    .collect(),
            }
        };
        let mut sent = 0;
        for (sender, signal) in senders {
            let command = Box::new(Command {
                mutation: mutation.clone(),
                reply: None,
            });
            match sender.try_send(command) {
                Ok(()) => sent += 1,
                Err(mpsc::error::TrySendError::Full(_)) => signal.raise(Signal::OVERLOADED),
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        }
        sent
    }

    /// Runs `mutation` in local session `session` and answers its reply. A session that is not
    /// here is [`HubError::NoSession`].
    pub async fn request(
        &self,
        session: &str,
        mutation: RawMutation,
    ) -> Result<Option<Value>, HubError> {
        let (sender, signal) = {
            let indexes = self.lock();
            let entry = indexes
                .sessions
                .get(session)
                .ok_or_else(|| HubError::NoSession(session.into()))?;
            if !entry.has_joined(mutation.store()) {
                return Err(HubError::NotJoined {
                    session: session.into(),
                    store: mutation.store(),
                });
            }
            entry.channel()
        };
        let (reply, answer) = oneshot::channel();
        let command = Box::new(Command {
            mutation,
            reply: Some(reply),
        });
        match sender.try_send(command) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                signal.raise(Signal::OVERLOADED);
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

    /// Registers a live session; its commands arrive in the returned inbox.
    pub(crate) fn open(&self, id: Arc<str>, capacity: usize) -> Result<Inbox, OpenError> {
        let mut indexes = self.lock();
        if indexes.stopping {
            return Err(OpenError::Stopping);
        }
        if indexes.sessions.contains_key(&id) {
            return Err(OpenError::Taken);
        }
        let (commands, receiver) = mpsc::channel(capacity.max(1));
        let signal = Arc::new(Signal::default());
        let entry = SessionEntry {
            commands,
            signal: signal.clone(),
            joined: Vec::new(),
            attachment: Attachment::Attached,
            detaches: 0,
        };
        indexes.sessions.insert(id, entry);
        Ok(Inbox {
            commands: receiver,
            signal,
        })
    }

    /// Records that session `id` joined `store`, reachable by `key` if given; the topics this
    /// process had no session of before.
    pub(crate) fn joined(
        &self,
        id: &Arc<str>,
        store: &'static str,
        key: Option<&str>,
    ) -> Vec<Topic> {
        let mut indexes = self.lock();
        let Some(entry) = indexes.sessions.get_mut(id) else {
            return Vec::new();
        };
        entry.joined.push((store, key.map(Box::from)));
        let mut new = Vec::new();
        let ids = indexes.by_store.entry(store).or_default();
        if ids.is_empty() {
            new.push(Topic::Store(store));
        }
        ids.insert(id.clone());
        if let Some(key) = key {
            let ids = indexes.by_key.entry((store, key.into())).or_default();
            if ids.is_empty() {
                new.push(Topic::Key(store, key.into()));
            }
            ids.insert(id.clone());
        }
        new
    }

    /// Forgets session `id` everywhere; the topics this process no longer has a session of.
    pub(crate) fn remove(&self, id: &str) -> Vec<Topic> {
        let mut gone = Vec::new();
        let now_empty = {
            let mut indexes = self.lock();
            indexes.set_attachment(id, Attachment::Ending);
            let Some(entry) = indexes.sessions.remove(id) else {
                return gone;
            };
            for (store, key) in entry.joined {
                if remove_from(&mut indexes.by_store, &store, id) {
                    gone.push(Topic::Store(store));
                }
                if let Some(key) = key {
                    let key = (store, key);
                    if remove_from(&mut indexes.by_key, &key, id) {
                        gone.push(Topic::Key(key.0, key.1));
                    }
                }
            }
            indexes.sessions.is_empty()
        };
        if now_empty {
            self.shared.emptied.notify_waiters();
        }
        self.shared.changed.notify_waiters();
        gone
    }

    /// Tells every session to close and refuses new ones; done when the last one has gone.
    pub(crate) async fn stop(&self) {
        let stops: Vec<Arc<Signal>> = {
            let mut indexes = self.lock();
            indexes.stopping = true;
            let entries = indexes.sessions.values();
            entries.map(|entry| entry.signal.clone()).collect()
        };
        // A stored permit: a session busy with a mutation sees it when it is done.
        for stop in stops {
            stop.raise(Signal::STOP);
        }
        loop {
            let emptied = self.shared.emptied.notified();
            let mut emptied = std::pin::pin!(emptied);
            // Registered before the check, so a session leaving in between still wakes us.
            emptied.as_mut().enable();
            if self.session_count() == 0 {
                return;
            }
            emptied.await;
        }
    }

    /// Whether [`stop`](Self::stop) was called.
    pub(crate) fn is_stopping(&self) -> bool {
        self.lock().stopping
    }

    /// How many sessions are detached (waiting for their client to resume them), and the
    /// history bytes they hold together.
    pub fn detached(&self) -> (usize, usize) {
        let indexes = self.lock();
        (indexes.detached.len(), indexes.detached_bytes)
    }

    /// Marks session `id` detached, holding `bytes` of history; a resume of it arrives in the
    /// returned receiver. Detached sessions past `limits` are evicted, oldest first (this one
    /// too, if it alone is over): their receivers close. `None` when the session is not here or
    /// the process is stopping.
    pub(crate) fn detach(&self, id: &str, bytes: usize, limits: DetachLimits) -> Option<Claims> {
        let claims = {
            let mut indexes = self.lock();
            if indexes.stopping {
                return None;
            }
            let order = indexes.next_detach;
            let id: Arc<str> = indexes.sessions.get_key_value(id)?.0.clone();
            let (claim, claims) = oneshot::channel();
            indexes.next_detach += 1;
            indexes.detached.insert(order, id.clone());
            indexes.detached_bytes += bytes;
            if let Some(entry) = indexes.sessions.get_mut(&id) {
                entry.attachment = Attachment::Detached {
                    order,
                    bytes,
                    claim,
                };
                entry.detaches += 1;
            }
            indexes.evict(limits);
            claims
        };
        self.shared.changed.notify_waiters();
        Some(claims)
    }

    /// A detached session's history is now `bytes`; detached sessions past `limits` are evicted,
    /// oldest first.
    pub(crate) fn detached_size(&self, id: &str, bytes: usize, limits: DetachLimits) {
        let mut indexes = self.lock();
        let Some(entry) = indexes.sessions.get_mut(id) else {
            return;
        };
        if let Attachment::Detached { bytes: held, .. } = &mut entry.attachment {
            let before = std::mem::replace(held, bytes);
            indexes.detached_bytes = indexes.detached_bytes - before + bytes;
            indexes.evict(limits);
        }
    }

    /// Session `id` is ending while detached (its time is up): it can no longer be claimed.
    pub(crate) fn end_detached(&self, id: &str) {
        self.lock().set_attachment(id, Attachment::Ending);
        self.shared.changed.notify_waiters();
    }

    /// Session `id`'s connection is gone: it detaches once it has finished what it runs.
    pub(crate) fn leaving(&self, id: &str) {
        self.change(id, Attachment::Attached, Attachment::Leaving);
    }

    /// The connection that resumed session `id` serves it now.
    pub(crate) fn attached(&self, id: &str) {
        self.change(id, Attachment::Claimed, Attachment::Attached);
    }

    /// Session `id` goes from state `from` to `to` (when it is in `from`); a resume waiting for
    /// it looks again.
    fn change(&self, id: &str, from: Attachment, to: Attachment) {
        {
            let mut indexes = self.lock();
            let Some(entry) = indexes.sessions.get_mut(id) else {
                return;
            };
            if discriminant(&entry.attachment) != discriminant(&from) {
                return;
            }
            entry.attachment = to;
        }
        self.shared.changed.notify_waiters();
    }

    /// Takes detached session `id` for a resume: the returned claim reaches its task. A session
    /// still attached is probed and waited for up to `grace` (its connection may have dropped
    /// without the server noticing yet); one leaving (its connection is gone, it finishes what it
    /// runs) up to `patience`.
    pub(crate) async fn claim(
        &self,
        id: &str,
        grace: Duration,
        patience: Duration,
    ) -> Result<Claim, ClaimError> {
        let mut since = tokio::time::Instant::now();
        let mut seen = None;
        let mut waited = false;
        let mut probed = false;
        loop {
            let changed = self.shared.changed.notified();
            let mut changed = std::pin::pin!(changed);
            // Registered before the look, so a change in between still wakes us.
            changed.as_mut().enable();
            let deadline = {
                let mut indexes = self.lock();
                let indexes = &mut *indexes;
                let entry = indexes.sessions.get_mut(id).ok_or(ClaimError::Ended)?;
                // The session changed hands or state since the last look: the wait starts again.
                let now = (entry.detaches, discriminant(&entry.attachment));
                if seen.is_some_and(|seen| seen != now) {
                    since = tokio::time::Instant::now();
                    (waited, probed) = (false, false);
                }
                seen = Some(now);
                match &entry.attachment {
                    Attachment::Detached { .. } => {
                        // Taken out of the detached order; its task hands it over.
                        let claim = indexes.set_attachment(id, Attachment::Claimed);
                        return claim.ok_or(ClaimError::Ended);
                    }
                    Attachment::Ending => return Err(ClaimError::Ended),
                    _ if waited => return Err(ClaimError::Attached),
                    // Its connection is gone, or another resume is taking it over: either lets
                    // it go or holds it within the time it may take.
                    Attachment::Leaving | Attachment::Claimed => since + patience,
                    Attachment::Attached => {
                        // Its connection may be gone without the server knowing: it is asked
                        // (once in this state) to show it is alive, and lets the session go
                        // when it cannot.
                        if !std::mem::replace(&mut probed, true) {
                            entry.signal.raise(Signal::PROBE);
                        }
                        since + grace
                    }
                }
            };
            // Past the deadline, one last look: it may have detached or ended meanwhile.
            waited = tokio::time::timeout_at(deadline, changed).await.is_err();
        }
    }
}

impl Indexes {
    /// Ends detached sessions, oldest first, until they fit `limits`.
    fn evict(&mut self, limits: DetachLimits) {
        while self.detached.len() > limits.sessions || self.detached_bytes > limits.bytes {
            let Some((_, id)) = self.detached.pop_first() else {
                break;
            };
            tracing::info!(session = %id, "a detached session is evicted to stay within the limits");
            // Its claim is dropped: the task sees its receiver close and ends the session.
            self.set_attachment(&id, Attachment::Ending);
        }
    }

    /// Session `id` is in state `to` from now on. One that was detached leaves the detached
    /// order (and its bytes their sum): its claim, to hand it over or to drop.
    fn set_attachment(&mut self, id: &str, to: Attachment) -> Option<Claim> {
        let entry = self.sessions.get_mut(id)?;
        let Attachment::Detached {
            order,
            bytes,
            claim,
        } = std::mem::replace(&mut entry.attachment, to)
        else {
            return None;
        };
        self.detached.remove(&order);
        self.detached_bytes -= bytes;
        Some(claim)
    }
}

/// Removes `id` from the set at `key`; whether the set is gone (it was the last).
fn remove_from<K: std::hash::Hash + Eq>(
    index: &mut HashMap<K, HashSet<Arc<str>>>,
    key: &K,
    id: &str,
) -> bool {
    let Some(ids) = index.get_mut(key) else {
        return false;
    };
    ids.remove(id);
    if ids.is_empty() {
        index.remove(key);
        return true;
    }
    false
}
