//! The Redis backplane: a thread of its own runs two connections to Redis, one that publishes
//! (pipelined, from a bounded queue) and one that listens (the channels this node's sessions
//! need), and answers other nodes' requests for the sessions it has.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::{MultiplexedConnection, PubSubSink};
use redis::AsyncConnectionConfig;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot, watch, Notify};

use super::sessions::RedisSessions;
use super::wire::{self, Inbound, Outbound, OwnedTarget, WireError, WireMutation, WireTarget};
use super::{lock, Backoff, RedisError, RedisOptions, Thread};
use crate::backplane::{Backplane, HubError, LocalSessions, RawMutation, Target, Topic};
use crate::store::BoxFuture;

/// The most publishes sent in one pipelined batch.
const BATCH: usize = 512;
/// How often an idle connection is pinged, so that a dead one is noticed without traffic.
const PING_EVERY: Duration = Duration::from_secs(1);

/// A [`Backplane`] over Redis pub/sub: server-side mutations of every kind (a whole store, a
/// key, one session with its reply) reach the matching sessions of every node, each exactly
/// once while Redis is up. Cheap to clone: clones share the connections, so keep one to read
/// [`stats`](Self::stats) after passing another to [`Config::backplane`](crate::Config::backplane).
///
/// One backplane serves one hub. Its work runs on a thread of its own (`storex-redis`), which
/// ends when the last clone is dropped.
#[derive(Clone)]
pub struct RedisBackplane {
    handle: Arc<Handle>,
}

/// What the clones share.
struct Handle {
    shared: Arc<Shared>,
    thread: Arc<Thread>,
    /// The durable sessions on the same thread and server, once asked for.
    sessions: OnceLock<RedisSessions>,
}

/// Counters of a [`RedisBackplane`]'s work since it started (serializable, for a metrics or
/// health endpoint).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct RedisStats {
    /// Whether both connections are up (publishing and listening).
    pub connected: bool,
    /// Messages published (mutations, requests and their answers).
    pub published: u64,
    /// Messages that could not be published: Redis was unreachable, the queue was full, or the
    /// connection failed while they were on their way. Each is also a logged warning or an
    /// error answered to the caller.
    pub publish_failures: u64,
    /// Messages received from other nodes.
    pub received: u64,
    /// Messages received that this node could not run: not a storex message, or a store or
    /// mutation this node's program does not have (a node of another version, during a deploy).
    pub rejected: u64,
    /// Connections made again after one was lost.
    pub reconnects: u64,
    /// The channels this node listens to now.
    pub subscriptions: usize,
}

impl fmt::Debug for RedisBackplane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shared = &self.handle.shared;
        f.debug_struct("RedisBackplane")
            .field("server", &shared.server)
            .field("prefix", &shared.options.prefix)
            .field("node", &shared.node)
            .field("connected", &shared.link.borrow().connected())
            .finish()
    }
}

/// The state of the two connections.
#[derive(Debug, Clone, Default)]
struct Link {
    publishing: bool,
    listening: bool,
    /// Why the last connection failed, for the errors answered while it is down.
    error: Option<String>,
}

impl Link {
    fn connected(&self) -> bool {
        self.publishing && self.listening
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Publisher,
    Listener,
}

/// One message waiting to be published.
struct Outgoing {
    channel: Arc<str>,
    payload: String,
    /// The request it asks, when it is one: the number of nodes that received it is reported.
    request: Option<u64>,
}

/// A one-session request waiting for the other nodes' answers.
struct Pending {
    session: String,
    store: &'static str,
    reply: oneshot::Sender<Result<Option<Value>, HubError>>,
    /// How many other nodes received the request (known once it is published).
    receivers: Option<usize>,
    absent: usize,
    /// The node that has the session, once it said so.
    taken: Option<String>,
}

#[derive(Default)]
struct Counters {
    published: AtomicU64,
    publish_failures: AtomicU64,
    received: AtomicU64,
    rejected: AtomicU64,
    reconnects: AtomicU64,
    subscriptions: AtomicUsize,
}

/// The channels this node should listen to, and which of them changed since the listener last
/// looked (so that it subscribes or unsubscribes only those).
#[derive(Default)]
struct Wanted {
    channels: HashSet<Arc<str>>,
    changed: HashSet<Arc<str>>,
}

struct Shared {
    options: RedisOptions,
    client: redis::Client,
    /// The server's address, without credentials, for messages.
    server: String,
    /// This node's id: random, so that a restarted node is another node.
    node: Box<str>,
    /// The channel every node listens to for one-session mutations and requests.
    sessions_channel: Arc<str>,
    /// The channel this node listens to for answers to its requests.
    node_channel: Arc<str>,
    local: OnceLock<LocalSessions>,
    queue: mpsc::Sender<Outgoing>,
    link: watch::Sender<Link>,
    wanted: Mutex<Wanted>,
    wanted_changed: Notify,
    pending: Mutex<HashMap<u64, Pending>>,
    next_request: AtomicU64,
    counters: Counters,
    runtime: tokio::runtime::Handle,
}

impl RedisBackplane {
    /// Starts a backplane to the Redis server of `options`. It connects in the background (see
    /// [`ready`](Self::ready)) and reconnects by itself. An invalid URL is an error here.
    pub fn new(options: RedisOptions) -> Result<Self, RedisError> {
        let client =
            redis::Client::open(options.url.as_str()).map_err(|error| RedisError::Url {
                url: super::without_credentials(&options.url),
                reason: error.to_string(),
            })?;
        let server = client.get_connection_info().addr().to_string();
        let (runtime, stop) = start_thread()?;
        let (queue, outgoing) = mpsc::channel(options.queue_capacity);
        let node: Box<str> = format!("{:016x}", rand::random::<u64>()).into();
        let prefix = &options.prefix;
        let shared = Arc::new(Shared {
            sessions_channel: format!("{prefix}:sessions").into(),
            node_channel: format!("{prefix}:node:{node}").into(),
            client,
            server,
            node,
            local: OnceLock::new(),
            queue,
            link: watch::Sender::new(Link::default()),
            wanted: Mutex::default(),
            wanted_changed: Notify::new(),
            pending: Mutex::default(),
            next_request: AtomicU64::new(1),
            counters: Counters::default(),
            runtime,
            options,
        });
        shared.runtime.spawn(publisher(shared.clone(), outgoing));
        shared.runtime.spawn(listener(shared.clone()));
        Ok(Self {
            handle: Arc::new(Handle {
                shared,
                thread: Arc::new(Thread::new(stop)),
                sessions: OnceLock::new(),
            }),
        })
    }

    /// Waits until both connections are up, at most `within`.
    pub async fn ready(&self, within: Duration) -> Result<(), RedisError> {
        let shared = &self.handle.shared;
        let mut link = shared.link.subscribe();
        let waited = tokio::time::timeout(within, link.wait_for(Link::connected)).await;
        match waited {
            Ok(Ok(_)) => Ok(()),
            _ => Err(RedisError::Unreachable {
                server: shared.server.clone(),
                reason: shared
                    .link
                    .borrow()
                    .error
                    .clone()
                    .unwrap_or_else(|| format!("no connection was made within {within:?}")),
            }),
        }
    }

    /// Durable sessions saved in the same Redis (see [`Config::durable`](crate::Config::durable)):
    /// they run on the backplane's thread, with a connection of their own. Every call answers
    /// the same sessions.
    pub fn sessions(&self) -> RedisSessions {
        let shared = &self.handle.shared;
        self.handle
            .sessions
            .get_or_init(|| {
                RedisSessions::start(
                    &shared.options,
                    shared.client.clone(),
                    shared.server.clone(),
                    &shared.runtime,
                    self.handle.thread.clone(),
                )
            })
            .clone()
    }

    /// Whether both connections are up now.
    pub fn is_connected(&self) -> bool {
        self.handle.shared.link.borrow().connected()
    }

    /// This node's id in the cluster (random, new with every start).
    pub fn node(&self) -> &str {
        &self.handle.shared.node
    }

    /// What the backplane has done so far.
    pub fn stats(&self) -> RedisStats {
        let shared = &self.handle.shared;
        let counters = &shared.counters;
        RedisStats {
            connected: shared.link.borrow().connected(),
            published: counters.published.load(Ordering::Relaxed),
            publish_failures: counters.publish_failures.load(Ordering::Relaxed),
            received: counters.received.load(Ordering::Relaxed),
            rejected: counters.rejected.load(Ordering::Relaxed),
            reconnects: counters.reconnects.load(Ordering::Relaxed),
            subscriptions: counters.subscriptions.load(Ordering::Relaxed),
        }
    }

    /// The channel of `topic`'s mutations.
    fn channel(&self, topic: &Topic) -> Arc<str> {
        let prefix = &self.handle.shared.options.prefix;
        match topic {
            Topic::Store(store) => store_channel(prefix, store),
            Topic::Key(store, key) => key_channel(prefix, store, key),
        }
    }

    fn want(&self, topic: &Topic, listen: bool) {
        let channel = self.channel(topic);
        let shared = &self.handle.shared;
        {
            let mut wanted = lock(&shared.wanted);
            if listen {
                wanted.channels.insert(channel.clone());
            } else {
                wanted.channels.remove(&channel);
            }
            wanted.changed.insert(channel);
        }
        shared.wanted_changed.notify_one();
    }
}

fn store_channel(prefix: &str, store: &str) -> Arc<str> {
    format!("{prefix}:store:{store}").into()
}

fn key_channel(prefix: &str, store: &str, key: &str) -> Arc<str> {
    // A store name with a colon could make two channels' names equal; the message says its
    // store and key, and the receiving node delivers by those, so that would only cost traffic.
    format!("{prefix}:key:{store}:{key}").into()
}

/// Starts the backplane's thread and its runtime: the runtime's handle, and the sender that
/// stops them.
fn start_thread() -> Result<(tokio::runtime::Handle, oneshot::Sender<()>), RedisError> {
    let (stop, stopped) = oneshot::channel::<()>();
    let (handle_sender, handle) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("storex-redis".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            match runtime {
                Ok(runtime) => {
                    let _ = handle_sender.send(Ok(runtime.handle().clone()));
                    // Runs the backplane's tasks until the last clone is dropped; dropping the
                    // runtime then cancels them and closes the connections.
                    let _ = runtime.block_on(stopped);
                }
                Err(error) => {
                    let _ = handle_sender.send(Err(error.to_string()));
                }
            }
        })
        .map_err(|error| RedisError::Thread(error.to_string()))?;
    match handle.recv() {
        Ok(Ok(handle)) => Ok((handle, stop)),
        Ok(Err(error)) => Err(RedisError::Thread(error)),
        Err(_) => Err(RedisError::Thread("it ended before it started".into())),
    }
}

impl Backplane for RedisBackplane {
    fn publish_failures(&self) -> Option<u64> {
        Some(self.stats().publish_failures)
    }

    fn attach(&self, local: &LocalSessions) {
        if self.handle.shared.local.set(local.clone()).is_err() {
            tracing::error!(
                "a RedisBackplane serves one hub: it was given to a second one, whose sessions \
                 will not receive other nodes' mutations; make one backplane per hub"
            );
        }
    }

    fn publish(
        &self,
        local: &LocalSessions,
        target: &Target,
        mutation: &RawMutation,
    ) -> Result<usize, HubError> {
        let delivered = local.deliver(target, mutation);
        let shared = &self.handle.shared;
        let channel = match target {
            // A session lives on one node: when it is here, nobody else needs to hear of it.
            Target::Session(id) if local.contains(id) => return Ok(delivered),
            Target::Session(_) => shared.sessions_channel.clone(),
            Target::Key(key) => key_channel(&shared.options.prefix, mutation.store(), key),
            Target::Store => store_channel(&shared.options.prefix, mutation.store()),
        };
        let payload = wire::encode(&Outbound::Mutate {
            from: &shared.node,
            target: WireTarget::from(target),
            mutation: WireMutation::from(mutation),
        });
        shared.enqueue(Outgoing {
            channel,
            payload,
            request: None,
        })?;
        Ok(delivered)
    }

    fn request(
        &self,
        local: &LocalSessions,
        session: String,
        mutation: RawMutation,
    ) -> BoxFuture<'static, Result<Option<Value>, HubError>> {
        let local = local.clone();
        if local.contains(&session) {
            return Box::pin(async move { local.request(&session, mutation).await });
        }
        let shared = self.handle.shared.clone();
        let answer = shared.ask(session, &mutation);
        Box::pin(async move {
            match answer {
                Ok(answer) => answer.await.unwrap_or_else(|_| {
                    Err(HubError::Backplane(
                        "the Redis backplane stopped before the answer came".into(),
                    ))
                }),
                Err(error) => Err(error),
            }
        })
    }

    fn subscribe(&self, topic: &Topic) {
        self.want(topic, true);
    }

    fn unsubscribe(&self, topic: &Topic) {
        self.want(topic, false);
    }
}

impl Shared {
    fn local(&self) -> Option<&LocalSessions> {
        self.local.get()
    }

    /// Queues a message for the publisher, or says why it cannot go.
    fn enqueue(&self, outgoing: Outgoing) -> Result<(), HubError> {
        let refused = |reason: String| {
            self.counters
                .publish_failures
                .fetch_add(1, Ordering::Relaxed);
            Err(HubError::Backplane(reason))
        };
        if !self.link.borrow().publishing {
            let why = self.link.borrow().error.clone();
            return refused(format!(
                "Redis at {} is unreachable ({}); the mutation reached only this node's sessions",
                self.server,
                why.as_deref().unwrap_or("not connected yet"),
            ));
        }
        match self.queue.try_send(outgoing) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => refused(format!(
                "the queue to Redis at {} is full ({} messages): Redis is slower than the \
                 mutations; the mutation reached only this node's sessions",
                self.server, self.options.queue_capacity
            )),
            Err(mpsc::error::TrySendError::Closed(_)) => {
                refused("the Redis backplane has stopped".into())
            }
        }
    }

    /// Publishes a request for session `session` and returns where its answer will come.
    fn ask(
        self: &Arc<Self>,
        session: String,
        mutation: &RawMutation,
    ) -> Result<oneshot::Receiver<Result<Option<Value>, HubError>>, HubError> {
        if !self.link.borrow().listening {
            // The answers would come on this node's channel, which nobody listens to now.
            let why = self.link.borrow().error.clone();
            return Err(HubError::Backplane(format!(
                "Redis at {} is unreachable ({}); session {session:?} is not on this node",
                self.server,
                why.as_deref().unwrap_or("not connected yet"),
            )));
        }
        let id = self.next_request.fetch_add(1, Ordering::Relaxed);
        let payload = wire::encode(&Outbound::Request {
            from: &self.node,
            id,
            session: &session,
            mutation: WireMutation::from(mutation),
        });
        let (reply, answer) = oneshot::channel();
        lock(&self.pending).insert(
            id,
            Pending {
                session,
                store: mutation.store(),
                reply,
                receivers: None,
                absent: 0,
                taken: None,
            },
        );
        let queued = self.enqueue(Outgoing {
            channel: self.sessions_channel.clone(),
            payload,
            request: Some(id),
        });
        if let Err(error) = queued {
            lock(&self.pending).remove(&id);
            return Err(error);
        }
        self.runtime.spawn(expire(self.clone(), id));
        Ok(answer)
    }

    /// Ends request `id` with `result`, if it still waits.
    fn answer(&self, id: u64, result: impl FnOnce(&Pending) -> Result<Option<Value>, HubError>) {
        let pending = lock(&self.pending).remove(&id);
        if let Some(pending) = pending {
            let result = result(&pending);
            let _ = pending.reply.send(result);
        }
    }

    /// Updates request `id` and ends it with "no such session" when every node said it does not
    /// have it.
    fn count_absent(&self, id: u64, update: impl FnOnce(&mut Pending)) {
        let mut pending = lock(&self.pending);
        let Some(entry) = pending.get_mut(&id) else {
            return;
        };
        update(entry);
        let nowhere = entry.taken.is_none() && entry.receivers.is_some_and(|n| entry.absent >= n);
        if nowhere {
            if let Some(entry) = pending.remove(&id) {
                drop(pending);
                let _ = entry.reply.send(Err(HubError::NoSession(entry.session)));
            }
        }
    }

    fn link_up(&self, side: Side) {
        let mut reconnected = false;
        self.link.send_modify(|link| {
            match side {
                Side::Publisher => link.publishing = true,
                Side::Listener => link.listening = true,
            }
            if link.connected() {
                reconnected = link.error.take().is_some();
            }
        });
        if self.link.borrow().connected() {
            tracing::info!(server = %self.server, node = %self.node, "storex: connected to Redis");
        }
        if reconnected {
            self.counters.reconnects.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn link_down(&self, side: Side, error: &str) {
        let mut was_up = false;
        self.link.send_modify(|link| {
            let up = match side {
                Side::Publisher => &mut link.publishing,
                Side::Listener => &mut link.listening,
            };
            was_up = *up;
            *up = false;
            link.error = Some(error.to_owned());
        });
        if side == Side::Listener {
            // Their answers were on their way to a subscription that is gone: and a count of
            // the nodes made while it was gone would be one short.
            self.fail_pending(error);
        }
        if was_up {
            tracing::warn!(
                server = %self.server,
                "storex: the Redis connection ({side:?}) was lost: {error}; mutations reach only \
                 this node's sessions until it is back"
            );
        } else {
            tracing::debug!(server = %self.server, "storex: Redis ({side:?}) still unreachable: {error}");
        }
    }

    /// Ends every request still waiting, with `why`.
    fn fail_pending(&self, why: &str) {
        let pending: Vec<Pending> = lock(&self.pending)
            .drain()
            .map(|(_, entry)| entry)
            .collect();
        for entry in pending {
            let _ = entry.reply.send(Err(HubError::Backplane(format!(
                "the connection to Redis at {} was lost while the request for session {:?} \
                 waited: {why}",
                self.server, entry.session
            ))));
        }
    }

    /// A message from another node.
    fn on_message(self: &Arc<Self>, payload: &[u8]) {
        let message = match wire::decode(payload) {
            Ok(message) => message,
            Err(error) => {
                self.reject(format_args!("a message that is not storex's ({error})"));
                return;
            }
        };
        if message.from() == &*self.node {
            // Its own: delivered locally when it was published.
            return;
        }
        self.counters.received.fetch_add(1, Ordering::Relaxed);
        let Some(local) = self.local() else {
            return;
        };
        match message {
            Inbound::Mutate {
                target, mutation, ..
            } => {
                if let OwnedTarget::Session(id) = &target {
                    if !local.contains(id) {
                        return;
                    }
                }
                match mutation.check() {
                    Ok(mutation) => {
                        local.deliver(&Target::from(target), &mutation);
                    }
                    Err(error) => {
                        self.reject(format_args!("a mutation this node cannot run ({error})"))
                    }
                }
            }
            Inbound::Request {
                from,
                id,
                session,
                mutation,
            } => self.on_request(local, from, id, session, mutation.check()),
            Inbound::Taken { from, id } => self.count_absent(id, |entry| entry.taken = Some(from)),
            Inbound::Absent { id, .. } => self.count_absent(id, |entry| entry.absent += 1),
            Inbound::Reply { id, result, .. } => self.answer(id, |pending| {
                result.map_err(|error| error.into_hub(&pending.session, pending.store))
            }),
        }
    }

    /// Another node asks for a session's reply: answer whether it is here, and then the reply.
    fn on_request(
        self: &Arc<Self>,
        local: &LocalSessions,
        from: String,
        id: u64,
        session: String,
        mutation: Result<RawMutation, crate::mutation::NameError>,
    ) {
        let to: Arc<str> = format!("{}:node:{from}", self.options.prefix).into();
        if !local.contains(&session) {
            self.send(
                &to,
                &Outbound::Absent {
                    from: &self.node,
                    id,
                },
            );
            return;
        }
        self.send(
            &to,
            &Outbound::Taken {
                from: &self.node,
                id,
            },
        );
        let shared = self.clone();
        let local = local.clone();
        self.runtime.spawn(async move {
            let result = match mutation {
                Ok(mutation) => local.request(&session, mutation).await,
                Err(error) => Err(HubError::Name(error)),
            };
            let result = match &result {
                Ok(reply) => Ok(reply.as_ref()),
                Err(error) => Err(WireError::from_hub(error)),
            };
            shared.send(
                &to,
                &Outbound::Reply {
                    from: &shared.node,
                    id,
                    result,
                },
            );
        });
    }

    /// Publishes an answer to another node; one that cannot go is logged (the asking node's
    /// time limit answers its caller).
    fn send(&self, channel: &Arc<str>, message: &Outbound<'_>) {
        let outgoing = Outgoing {
            channel: channel.clone(),
            payload: wire::encode(message),
            request: None,
        };
        if let Err(error) = self.enqueue(outgoing) {
            tracing::warn!("storex: an answer to another node's request was not sent: {error}");
        }
    }

    fn reject(&self, what: fmt::Arguments<'_>) {
        self.counters.rejected.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(server = %self.server, "storex: ignored {what} received from Redis");
    }

    /// Takes what the listener must subscribe to and unsubscribe from; after a reconnection,
    /// everything wanted.
    fn take_changes(
        &self,
        current: &HashSet<Arc<str>>,
        all: bool,
    ) -> (Vec<Arc<str>>, Vec<Arc<str>>) {
        let mut wanted = lock(&self.wanted);
        let changed: Vec<Arc<str>> = if all {
            wanted.changed.clear();
            wanted.channels.iter().cloned().collect()
        } else {
            wanted.changed.drain().collect()
        };
        let mut add = Vec::new();
        let mut remove = Vec::new();
        for channel in changed {
            match (
                wanted.channels.contains(&channel),
                current.contains(&channel),
            ) {
                (true, false) => add.push(channel),
                (false, true) => remove.push(channel),
                _ => {}
            }
        }
        (add, remove)
    }
}

/// Ends request `id` when no node took it in time, or when the node that took it did not reply
/// in time.
async fn expire(shared: Arc<Shared>, id: u64) {
    let find = shared.options.request_timeout;
    tokio::time::sleep(find).await;
    let taken = match lock(&shared.pending).get(&id) {
        None => return,
        Some(pending) => pending.taken.clone(),
    };
    let Some(node) = taken else {
        shared.answer(id, |pending| {
            let heard = pending.absent;
            let asked = pending
                .receivers
                .map_or_else(|| "the other".to_owned(), |n| n.to_string());
            Err(HubError::Backplane(format!(
                "no node said it has session {:?} within {find:?} ({heard} of {asked} nodes \
                 answered that they do not)",
                pending.session
            )))
        });
        return;
    };
    let reply = shared.options.reply_timeout;
    tokio::time::sleep(reply.saturating_sub(find)).await;
    shared.answer(id, |pending| {
        Err(HubError::Backplane(format!(
            "node {node} has session {:?} but did not send the mutation's reply within {reply:?}",
            pending.session
        )))
    });
}

/// Connects the publishing connection.
async fn connect(shared: &Shared) -> Result<MultiplexedConnection, String> {
    let timeout = shared.options.command_timeout;
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout));
    shared
        .client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .map_err(|error| error.to_string())
}

/// The publishing task: batches what is queued into one pipeline per round trip.
async fn publisher(shared: Arc<Shared>, mut queue: mpsc::Receiver<Outgoing>) {
    let mut backoff = Backoff::new(&shared.options);
    loop {
        let mut connection = match connect(&shared).await {
            Ok(connection) => connection,
            Err(error) => {
                shared.link_down(Side::Publisher, &error);
                fail_queued(&shared, &mut queue);
                tokio::time::sleep(backoff.next()).await;
                continue;
            }
        };
        backoff.reset();
        shared.link_up(Side::Publisher);
        let error = publish_until_lost(&shared, &mut queue, &mut connection).await;
        shared.link_down(Side::Publisher, &error);
        fail_queued(&shared, &mut queue);
        tokio::time::sleep(backoff.next()).await;
    }
}

/// Publishes batches until the connection fails; why it failed.
async fn publish_until_lost(
    shared: &Shared,
    queue: &mut mpsc::Receiver<Outgoing>,
    connection: &mut MultiplexedConnection,
) -> String {
    let mut batch: Vec<Outgoing> = Vec::with_capacity(BATCH);
    loop {
        let first = tokio::select! {
            first = queue.recv() => first,
            () = tokio::time::sleep(PING_EVERY) => {
                let pong: Result<String, _> = redis::cmd("PING").query_async(connection).await;
                match pong {
                    Ok(_) => continue,
                    Err(error) => return error.to_string(),
                }
            }
        };
        let Some(first) = first else {
            // Never: `Shared` keeps a sender. The task ends with the thread's runtime.
            std::future::pending::<()>().await;
            return String::new();
        };
        batch.push(first);
        while batch.len() < BATCH {
            match queue.try_recv() {
                Ok(outgoing) => batch.push(outgoing),
                Err(_) => break,
            }
        }
        // Requests go out one by one, each with the count of nodes that hear it; the rest in
        // one pipeline.
        let (requests, plain): (Vec<Outgoing>, Vec<Outgoing>) = batch
            .drain(..)
            .partition(|outgoing| outgoing.request.is_some());
        if !plain.is_empty() {
            let mut pipe = redis::pipe();
            for outgoing in &plain {
                pipe.cmd("PUBLISH")
                    .arg(&*outgoing.channel)
                    .arg(outgoing.payload.as_bytes());
            }
            if let Err(error) = pipe.query_async::<Vec<usize>>(connection).await {
                let error = error.to_string();
                fail(shared, plain.into_iter().chain(requests), &error);
                return error;
            }
            shared
                .counters
                .published
                .fetch_add(plain.len() as u64, Ordering::Relaxed);
        }
        let mut requests = requests.into_iter();
        while let Some(request) = requests.next() {
            if let Err(error) = publish_request(shared, connection, &request).await {
                fail(shared, std::iter::once(request).chain(requests), &error);
                return error;
            }
        }
    }
}

/// Publishes a request together with the number of nodes listening on its channel, in one
/// transaction: the nodes subscribe to it by name, so the count leaves out other programs'
/// pattern subscriptions (a `PSUBSCRIBE storex:*` left open for debugging), which would
/// never answer. Every node that hears it answers, so when all of them say "absent" the
/// session is nowhere.
async fn publish_request(
    shared: &Shared,
    connection: &mut MultiplexedConnection,
    request: &Outgoing,
) -> Result<(), String> {
    let mut pipe = redis::pipe();
    pipe.atomic()
        .cmd("PUBSUB")
        .arg("NUMSUB")
        .arg(&*request.channel)
        .cmd("PUBLISH")
        .arg(&*request.channel)
        .arg(request.payload.as_bytes())
        .ignore();
    let (listening,): (Vec<(String, usize)>,) = pipe
        .query_async(connection)
        .await
        .map_err(|error| error.to_string())?;
    shared.counters.published.fetch_add(1, Ordering::Relaxed);
    let nodes = listening.first().map_or(0, |(_, count)| *count);
    if let Some(id) = request.request {
        // This node listens on the channel too (a request is sent only while it does) and
        // ignores its own request.
        let others = nodes.saturating_sub(1);
        shared.count_absent(id, |entry| entry.receivers = Some(others));
    }
    Ok(())
}

/// Counts as failed what is queued while the connection is down (and ends the requests among
/// them), so that nothing stale goes out when it is back.
fn fail_queued(shared: &Shared, queue: &mut mpsc::Receiver<Outgoing>) {
    let mut lost = Vec::new();
    while let Ok(outgoing) = queue.try_recv() {
        lost.push(outgoing);
    }
    if !lost.is_empty() {
        let why = shared.link.borrow().error.clone().unwrap_or_default();
        fail(shared, lost.into_iter(), &why);
    }
}

fn fail(shared: &Shared, lost: impl Iterator<Item = Outgoing>, why: &str) {
    let mut count = 0u64;
    for outgoing in lost {
        count += 1;
        if let Some(id) = outgoing.request {
            shared.answer(id, |_| {
                Err(HubError::Backplane(format!(
                    "the request could not be sent to Redis at {}: {why}",
                    shared.server
                )))
            });
        }
    }
    shared
        .counters
        .publish_failures
        .fetch_add(count, Ordering::Relaxed);
    tracing::warn!(
        server = %shared.server,
        "storex: {count} message(s) to other nodes were lost with the Redis connection: {why}"
    );
}

/// The listening task: subscribes to what this node's sessions need and handles what arrives.
async fn listener(shared: Arc<Shared>) {
    let mut backoff = Backoff::new(&shared.options);
    loop {
        let error = listen_until_lost(&shared, &mut backoff).await;
        shared.counters.subscriptions.store(0, Ordering::Relaxed);
        shared.link_down(Side::Listener, &error);
        tokio::time::sleep(backoff.next()).await;
    }
}

/// Connects, subscribes, and handles messages until the connection fails; why it failed.
async fn listen_until_lost(shared: &Arc<Shared>, backoff: &mut Backoff) -> String {
    let timeout = shared.options.command_timeout;
    let within = |what: &str| format!("Redis did not answer the {what} within {timeout:?}");
    let pubsub = match tokio::time::timeout(timeout, shared.client.get_async_pubsub()).await {
        Ok(Ok(pubsub)) => pubsub,
        Ok(Err(error)) => return error.to_string(),
        Err(_) => return within("connection"),
    };
    let (mut sink, mut stream) = pubsub.split();
    let fixed = [shared.sessions_channel.clone(), shared.node_channel.clone()];
    let mut current: HashSet<Arc<str>> = HashSet::new();
    if let Err(error) = change(&mut sink, &fixed, true, timeout).await {
        return error;
    }
    let mut all = true;
    loop {
        let (add, remove) = shared.take_changes(&current, all);
        if let Err(error) = change(&mut sink, &add, true, timeout).await {
            return error;
        }
        if let Err(error) = change(&mut sink, &remove, false, timeout).await {
            return error;
        }
        current.extend(add);
        for channel in &remove {
            current.remove(channel);
        }
        shared
            .counters
            .subscriptions
            .store(current.len() + fixed.len(), Ordering::Relaxed);
        if all {
            all = false;
            backoff.reset();
            shared.link_up(Side::Listener);
        }
        tokio::select! {
            message = stream.next() => match message {
                Some(message) => shared.on_message(message.get_payload_bytes()),
                None => return "the connection closed".into(),
            },
            () = shared.wanted_changed.notified() => {}
            () = tokio::time::sleep(PING_EVERY) => {
                // Subscribed, Redis answers a ping with ["pong", ""]: any answer will do.
                match tokio::time::timeout(timeout, sink.ping::<redis::Value>()).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(error)) => return error.to_string(),
                    Err(_) => return within("ping"),
                }
            }
        }
    }
}

/// Subscribes to (or unsubscribes from) `channels`, within `timeout`.
async fn change(
    sink: &mut PubSubSink,
    channels: &[Arc<str>],
    subscribe: bool,
    timeout: Duration,
) -> Result<(), String> {
    if channels.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = channels.iter().map(|channel| &**channel).collect();
    let done = if subscribe {
        tokio::time::timeout(timeout, sink.subscribe(&names)).await
    } else {
        tokio::time::timeout(timeout, sink.unsubscribe(&names)).await
    };
    match done {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err(format!(
            "Redis did not confirm a subscription change within {timeout:?}"
        )),
    }
}
