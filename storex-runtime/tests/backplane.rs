//! The Backplane seam, proven against real servers and real WebSocket clients: two nodes
//! bridged in one process the way a Redis backplane would bridge them (commands cross, every
//! session runs a mutation exactly once, counts are local), requests routed to the node that
//! holds the session, the topics a backplane is told to listen to, the by-name API, and the
//! errors a backplane or an argument can cause.
//!
//! Every test owns its servers and its backplanes' state: nothing is shared between tests.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use common::stores::{counter_diff, Counter};
use common::{eventually, Client, TestServer};
use serde_json::{json, Value};
use storex::backplane::{Backplane, InProcess, LocalSessions, Topic};
use storex::{BoxFuture, Config, HubError, Mutations, NameError, RawMutation, Target};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::Message;

const COUNTER: &str = "Test.Counter";
const BAG: &str = "Backplane.Test.Bag";

/// A store whose mutation takes any JSON: the argument that cannot be serialized is the
/// caller's problem, not the store's.
#[derive(storex::Store, serde::Serialize, Clone, Debug)]
#[store(name = "Backplane.Test.Bag")]
pub struct Bag {
    pub count: usize,
}

#[storex::mutations]
impl Bag {
    #[init]
    fn init() -> Self {
        Bag { count: 0 }
    }

    #[mutation("put")]
    fn put(&mut self, label: String, item: Value) {
        let _ = (label, item);
        self.count += 1;
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The next frame is a push of Test.Counter whose counter is now `value`.
async fn expect_counter_push(client: &mut Client, value: i64) {
    let push = client.recv().await;
    assert_eq!(push["type"], "mutation", "{push}");
    assert_eq!(push["store"], COUNTER, "{push}");
    assert_eq!(push["session"], json!(client.session), "{push}");
    assert_eq!(push["diff"], counter_diff(value), "{push}");
    assert!(push.get("request").is_none_or(Value::is_null), "{push}");
}

/// Nothing is waiting for any of `clients`.
async fn expect_all_quiet<'a>(clients: impl IntoIterator<Item = &'a mut Client>) {
    for client in clients {
        client.expect_quiet().await;
    }
}

fn session(client: &Client) -> String {
    client
        .session
        .clone()
        .unwrap_or_else(|| panic!("the client has not joined a store"))
}

fn raw(store: &str, name: &str, args: Vec<Value>) -> RawMutation {
    RawMutation::new(store, name, args).unwrap_or_else(|error| panic!("{store} {name}: {error}"))
}

// ---------------------------------------------------------------------------------------------
// A bridge between nodes, the way a Redis backplane would connect them
// ---------------------------------------------------------------------------------------------

/// One message on the bus: who published it, whom it is for, what it runs.
type Envelope = (usize, Target, RawMutation);

/// What a node's listener did with one message of the bus.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Receipt {
    node: usize,
    origin: usize,
    /// `None`: the node's own message came back and was skipped (it delivered it when it
    /// published it); `Some(n)`: delivered to `n` of the node's sessions.
    delivered: Option<usize>,
}

fn receipt(node: usize, origin: usize, delivered: Option<usize>) -> Receipt {
    Receipt {
        node,
        origin,
        delivered,
    }
}

/// The "Redis server" of one test: a bus every node publishes to and listens on (a node hears
/// its own messages too), and the sessions of each node, for requests.
#[derive(Debug, Clone)]
struct Network {
    shared: Arc<NetworkShared>,
}

#[derive(Debug)]
struct NetworkShared {
    bus: broadcast::Sender<Envelope>,
    nodes: Mutex<Vec<(usize, LocalSessions)>>,
    receipts: Mutex<Vec<Receipt>>,
    /// Requests sent to another node: (from, to).
    forwarded: Mutex<Vec<(usize, usize)>>,
    /// Messages put on the bus, counted as they are sent (receipts come later).
    sent: AtomicUsize,
}

impl Network {
    fn new() -> Self {
        let (bus, _) = broadcast::channel(1024);
        Self {
            shared: Arc::new(NetworkShared {
                bus,
                nodes: Mutex::new(Vec::new()),
                receipts: Mutex::new(Vec::new()),
                forwarded: Mutex::new(Vec::new()),
                sent: AtomicUsize::new(0),
            }),
        }
    }

    /// The backplane of node `id`.
    fn node(&self, id: usize) -> Bridge {
        Bridge {
            id,
            network: self.clone(),
        }
    }

    fn receipts(&self) -> Vec<Receipt> {
        let mut receipts = lock(&self.shared.receipts).clone();
        receipts.sort();
        receipts
    }

    fn forwarded(&self) -> Vec<(usize, usize)> {
        lock(&self.shared.forwarded).clone()
    }

    /// How many messages were put on the bus.
    fn sent(&self) -> usize {
        self.shared.sent.load(Ordering::SeqCst)
    }

    /// Waits until the listeners have handled `count` messages in all, then expects no second
    /// push coming for any of `clients`.
    async fn settle<'a>(&self, count: usize, clients: impl IntoIterator<Item = &'a mut Client>) {
        self.wait_for_receipts(count).await;
        expect_all_quiet(clients).await;
    }

    /// Waits until the listeners have handled `count` messages in all.
    async fn wait_for_receipts(&self, count: usize) {
        eventually(&format!("{count} receipts on the bus"), || {
            lock(&self.shared.receipts).len() >= count
        })
        .await;
        assert_eq!(
            lock(&self.shared.receipts).len(),
            count,
            "{:?}",
            self.receipts()
        );
    }
}

/// A node's backplane: publishes deliver locally at once and go on the bus for the others;
/// the node's listener delivers what the others publish and skips its own messages.
#[derive(Debug)]
struct Bridge {
    id: usize,
    network: Network,
}

impl Backplane for Bridge {
    fn attach(&self, local: &LocalSessions) {
        let shared = &self.network.shared;
        lock(&shared.nodes).push((self.id, local.clone()));
        let mut listener = shared.bus.subscribe();
        let (node, local, network) = (self.id, local.clone(), self.network.clone());
        tokio::spawn(async move {
            loop {
                let (origin, target, mutation) = match listener.recv().await {
                    Ok(envelope) => envelope,
                    Err(broadcast::error::RecvError::Closed) => return,
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        panic!("node {node} missed {missed} messages")
                    }
                };
                let delivered = (origin != node).then(|| local.deliver(&target, &mutation));
                lock(&network.shared.receipts).push(Receipt {
                    node,
                    origin,
                    delivered,
                });
            }
        });
    }

    fn publish(
        &self,
        local: &LocalSessions,
        target: &Target,
        mutation: &RawMutation,
    ) -> Result<usize, HubError> {
        // Local sessions first: they are reached even when the bus is not.
        let here = local.deliver(target, mutation);
        self.network
            .shared
            .bus
            .send((self.id, target.clone(), mutation.clone()))
            .map_err(|_| HubError::Backplane("no node listens".into()))?;
        self.network.shared.sent.fetch_add(1, Ordering::SeqCst);
        Ok(here)
    }

    fn request(
        &self,
        local: &LocalSessions,
        session: String,
        mutation: RawMutation,
    ) -> BoxFuture<'static, Result<Option<Value>, HubError>> {
        if local.contains(&session) {
            let local = local.clone();
            return Box::pin(async move { local.request(&session, mutation).await });
        }
        let shared = &self.network.shared;
        let owner = lock(&shared.nodes)
            .iter()
            .find(|(id, sessions)| *id != self.id && sessions.contains(&session))
            .map(|(id, sessions)| (*id, sessions.clone()));
        let Some((owner, sessions)) = owner else {
            return Box::pin(async move { Err(HubError::NoSession(session)) });
        };
        lock(&shared.forwarded).push((self.id, owner));
        Box::pin(async move { sessions.request(&session, mutation).await })
    }
}

/// Two servers bridged to each other: node 0 and node 1.
fn two_nodes() -> (Network, TestServer, TestServer) {
    let network = Network::new();
    let a = TestServer::start(Config::default().backplane(network.node(0)));
    let b = TestServer::start(Config::default().backplane(network.node(1)));
    (network, a, b)
}

// ---------------------------------------------------------------------------------------------
// 1. Two nodes in one process
// ---------------------------------------------------------------------------------------------

#[actix_rt::test]
async fn a_store_mutation_reaches_every_node_once_and_counts_local_sessions() {
    let (network, a, b) = two_nodes();
    let mut on_a = a.connect().await;
    let mut on_b1 = b.connect().await;
    let mut on_b2 = b.connect().await;
    let mut outsider = b.connect().await;
    on_a.join(COUNTER, json!({})).await;
    on_b1.join(COUNTER, json!({"start": 10})).await;
    on_b2.join(COUNTER, json!({"start": 20})).await;
    outsider.join("Test.Other", json!({})).await;

    // node 0 counts its own session only
    assert_eq!(a.hub.mutate(storex::mutation!(Counter, "increase")), Ok(1));
    expect_counter_push(&mut on_a, 1).await;
    expect_counter_push(&mut on_b1, 11).await;
    expect_counter_push(&mut on_b2, 21).await;
    // once both listeners handled the message, no session has a second push coming
    network
        .settle(2, [&mut on_a, &mut on_b1, &mut on_b2, &mut outsider])
        .await;
    assert_eq!(
        network.receipts(),
        vec![
            // its own message came back to node 0, which did not deliver it again
            receipt(0, 0, None),
            receipt(1, 0, Some(2)),
        ]
    );

    // the other way round; the values show each session ran each mutation exactly once
    assert_eq!(b.hub.mutate(storex::mutation!(Counter, "increase")), Ok(2));
    expect_counter_push(&mut on_a, 2).await;
    expect_counter_push(&mut on_b1, 12).await;
    expect_counter_push(&mut on_b2, 22).await;
    network
        .settle(4, [&mut on_a, &mut on_b1, &mut on_b2, &mut outsider])
        .await;
    assert_eq!(
        network.receipts(),
        [
            receipt(0, 0, None),
            receipt(0, 1, Some(1)),
            receipt(1, 0, Some(2)),
            receipt(1, 1, None),
        ]
    );

    // by name, through the same seam
    assert_eq!(a.hub.mutate_by_name(COUNTER, "set", vec![json!(7)]), Ok(1));
    for client in [&mut on_a, &mut on_b1, &mut on_b2] {
        expect_counter_push(client, 7).await;
    }
    network
        .settle(6, [&mut on_a, &mut on_b1, &mut on_b2, &mut outsider])
        .await;
}

#[actix_rt::test]
async fn a_keyed_mutation_reaches_that_key_on_every_node_and_nothing_else() {
    let (network, a, b) = two_nodes();
    let mut tab_a = a.connect().await;
    let mut plain_a = a.connect().await;
    let mut tab_b = b.connect().await;
    let mut other_user_b = b.connect().await;
    let mut plain_b = b.connect().await;
    tab_a.join(COUNTER, json!({"key": "user_42"})).await;
    plain_a.join(COUNTER, json!({})).await;
    tab_b
        .join(COUNTER, json!({"key": "user_42", "start": 100}))
        .await;
    other_user_b.join(COUNTER, json!({"key": "user_7"})).await;
    plain_b.join(COUNTER, json!({})).await;

    assert_eq!(
        a.hub
            .mutate_key("user_42", storex::mutation!(Counter, "increase")),
        Ok(1)
    );
    expect_counter_push(&mut tab_a, 1).await;
    expect_counter_push(&mut tab_b, 101).await;
    network
        .settle(
            2,
            [
                &mut tab_a,
                &mut plain_a,
                &mut tab_b,
                &mut other_user_b,
                &mut plain_b,
            ],
        )
        .await;
    assert_eq!(
        network.receipts(),
        vec![receipt(0, 0, None), receipt(1, 0, Some(1))]
    );

    // from the other node, to a key it holds and one only the first node holds
    assert_eq!(
        b.hub
            .mutate_key("user_42", storex::mutation!(Counter, "increase")),
        Ok(1)
    );
    expect_counter_push(&mut tab_a, 2).await;
    expect_counter_push(&mut tab_b, 102).await;
    assert_eq!(
        b.hub
            .mutate_key("nobody", storex::mutation!(Counter, "increase")),
        Ok(0)
    );
    network
        .settle(
            6,
            [
                &mut tab_a,
                &mut plain_a,
                &mut tab_b,
                &mut other_user_b,
                &mut plain_b,
            ],
        )
        .await;
    assert_eq!(
        network.receipts(),
        [
            receipt(0, 0, None),
            receipt(0, 1, Some(0)),
            receipt(0, 1, Some(1)),
            receipt(1, 0, Some(1)),
            receipt(1, 1, None),
            receipt(1, 1, None),
        ]
    );
}

#[actix_rt::test]
async fn a_session_mutation_reaches_a_session_on_the_other_node() {
    let (network, a, b) = two_nodes();
    let mut on_a = a.connect().await;
    let mut on_b = b.connect().await;
    let mut other_b = b.connect().await;
    on_a.join(COUNTER, json!({})).await;
    on_b.join(COUNTER, json!({"start": 5})).await;
    other_b.join(COUNTER, json!({})).await;

    let increase = raw(COUNTER, "increase", vec![]);
    // no session of node 0 is reached: the count is 0, and node 1 delivers it
    assert_eq!(
        a.hub
            .send(Target::Session(session(&on_b)), increase.clone()),
        Ok(0)
    );
    expect_counter_push(&mut on_b, 6).await;
    network
        .settle(2, [&mut on_a, &mut on_b, &mut other_b])
        .await;
    assert_eq!(network.receipts()[1], receipt(1, 0, Some(1)));

    // the other way round
    assert_eq!(
        b.hub
            .send(Target::Session(session(&on_a)), increase.clone()),
        Ok(0)
    );
    expect_counter_push(&mut on_a, 1).await;
    // and to a local session: counted, not delivered again by the other node
    assert_eq!(
        b.hub
            .send(Target::Session(session(&on_b)), increase.clone()),
        Ok(1)
    );
    expect_counter_push(&mut on_b, 7).await;
    network
        .settle(6, [&mut on_a, &mut on_b, &mut other_b])
        .await;
    assert_eq!(
        network.receipts(),
        [
            receipt(0, 0, None),
            receipt(0, 1, Some(0)),
            receipt(0, 1, Some(1)),
            receipt(1, 0, Some(1)),
            receipt(1, 1, None),
            receipt(1, 1, None),
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// 2. Requests across the bridge
// ---------------------------------------------------------------------------------------------

#[actix_rt::test]
async fn a_request_runs_on_the_node_that_holds_the_session_and_returns_its_reply() {
    let (network, a, b) = two_nodes();
    let mut on_a = a.connect().await;
    let mut on_b = b.connect().await;
    let mut elsewhere_b = b.connect().await;
    on_a.join(COUNTER, json!({})).await;
    on_b.join(COUNTER, json!({})).await;
    elsewhere_b.join("Test.Other", json!({})).await;
    let on_b_id = session(&on_b);

    let reply = a
        .hub
        .mutate_session(&on_b_id, storex::mutation!(Counter, "decrease"))
        .await;
    assert_eq!(reply, Ok(Some(json!("message"))));
    expect_counter_push(&mut on_b, -1).await;
    assert_eq!(network.forwarded(), vec![(0, 1)]);

    let reply = a
        .hub
        .mutate_session(&on_b_id, storex::mutation!(Counter, "slow_set", 9))
        .await;
    assert_eq!(reply, Ok(Some(json!(9))));
    expect_counter_push(&mut on_b, 9).await;

    // the other node's errors come back as they are
    let refused = a
        .hub
        .mutate_session(&on_b_id, storex::mutation!(Counter, "set", -5))
        .await;
    assert_eq!(
        refused,
        Err(HubError::Mutation(storex::MutationError::Refused(
            "-5 is below zero".into()
        )))
    );
    let elsewhere = session(&elsewhere_b);
    let not_joined = a
        .hub
        .mutate_session(&elsewhere, storex::mutation!(Counter, "increase"))
        .await;
    assert_eq!(
        not_joined,
        Err(HubError::NotJoined {
            session: elsewhere,
            store: COUNTER
        })
    );

    // a session on no node
    let nowhere = a
        .hub
        .mutate_session("nowhere", storex::mutation!(Counter, "increase"))
        .await;
    assert_eq!(nowhere, Err(HubError::NoSession("nowhere".into())));

    // the other way round, and a local request that stays local
    let reply = b
        .hub
        .request(&session(&on_a), raw(COUNTER, "decrease", vec![]))
        .await;
    assert_eq!(reply, Ok(Some(json!("message"))));
    expect_counter_push(&mut on_a, -1).await;
    let reply = b
        .hub
        .request(&on_b_id, raw(COUNTER, "slow_set", vec![json!(3)]))
        .await;
    assert_eq!(reply, Ok(Some(json!(3))));
    expect_counter_push(&mut on_b, 3).await;
    assert_eq!(
        network.forwarded(),
        vec![(0, 1), (0, 1), (0, 1), (0, 1), (1, 0)]
    );

    // requests do not go on the bus (counted when sent: no listener needs to have run)
    assert_eq!(network.sent(), 0);
    assert_eq!(network.receipts(), vec![]);
    expect_all_quiet([&mut on_a, &mut on_b, &mut elsewhere_b]).await;
}

// ---------------------------------------------------------------------------------------------
// 3. Topics
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Event {
    Subscribe(Topic),
    Unsubscribe(Topic),
    Publish(Target, RawMutation),
}

/// InProcess, recording what the hub tells it.
#[derive(Debug, Clone, Default)]
struct Recording {
    events: Arc<Mutex<Vec<Event>>>,
}

impl Recording {
    fn events(&self) -> Vec<Event> {
        lock(&self.events).clone()
    }

    fn published(&self) -> Vec<Event> {
        self.events()
            .into_iter()
            .filter(|event| matches!(event, Event::Publish(..)))
            .collect()
    }

    fn topic_events(&self) -> Vec<Event> {
        self.events()
            .into_iter()
            .filter(|event| !matches!(event, Event::Publish(..)))
            .collect()
    }
}

impl Backplane for Recording {
    fn publish(
        &self,
        local: &LocalSessions,
        target: &Target,
        mutation: &RawMutation,
    ) -> Result<usize, HubError> {
        lock(&self.events).push(Event::Publish(target.clone(), mutation.clone()));
        InProcess.publish(local, target, mutation)
    }

    fn request(
        &self,
        local: &LocalSessions,
        session: String,
        mutation: RawMutation,
    ) -> BoxFuture<'static, Result<Option<Value>, HubError>> {
        InProcess.request(local, session, mutation)
    }

    fn subscribe(&self, topic: &Topic) {
        lock(&self.events).push(Event::Subscribe(topic.clone()));
    }

    fn unsubscribe(&self, topic: &Topic) {
        lock(&self.events).push(Event::Unsubscribe(topic.clone()));
    }
}

fn key_topic(store: &'static str, key: &str) -> Topic {
    Topic::Key(store, key.into())
}

#[actix_rt::test]
async fn the_backplane_is_told_which_stores_and_keys_this_node_has_sessions_of() {
    let recording = Recording::default();
    let server = TestServer::start(Config::default().backplane(recording.clone()));
    let store_topic = Topic::Store(COUNTER);
    let user_42 = key_topic(COUNTER, "user_42");

    let mut first = server.connect().await;
    let mut second = server.connect().await;
    let mut third = server.connect().await;
    // a connection that has joined nothing is no topic
    server.wait_for_sessions(3).await;
    assert_eq!(recording.events(), vec![]);

    first.join(COUNTER, json!({})).await;
    assert_eq!(
        recording.topic_events(),
        vec![Event::Subscribe(store_topic.clone())]
    );
    // the second session of the store: the store is no new topic, its key is
    second.join(COUNTER, json!({"key": "user_42"})).await;
    assert_eq!(
        recording.topic_events(),
        vec![
            Event::Subscribe(store_topic.clone()),
            Event::Subscribe(user_42.clone())
        ]
    );
    // neither is new for a third session of the same key; a join answered again is nothing new
    third.join(COUNTER, json!({"key": "user_42"})).await;
    third.join(COUNTER, json!({"key": "user_42"})).await;
    assert_eq!(recording.topic_events().len(), 2);
    // another store is another topic
    third.join("Test.Other", json!({})).await;
    assert_eq!(
        recording.topic_events()[2..],
        [Event::Subscribe(Topic::Store("Test.Other"))]
    );

    // sessions go; topics that other sessions still hold stay
    first.close().await;
    server.wait_for_sessions(2).await;
    second.close().await;
    server.wait_for_sessions(1).await;
    assert_eq!(
        recording.topic_events().len(),
        3,
        "{:?}",
        recording.events()
    );

    // the last session of each topic goes: every topic it held is released once
    third.close().await;
    server.wait_for_sessions(0).await;
    eventually("the unsubscriptions", || {
        recording.topic_events().len() >= 6
    })
    .await;
    let released: Vec<Event> = recording.topic_events()[3..].to_vec();
    assert_eq!(released.len(), 3, "{released:?}");
    for topic in [store_topic, user_42, Topic::Store("Test.Other")] {
        assert!(
            released.contains(&Event::Unsubscribe(topic.clone())),
            "{topic:?} not released: {released:?}"
        );
    }
    // a closed session's key is no topic any more: joining it again subscribes again
    let mut again = server.connect().await;
    again.join(COUNTER, json!({"key": "user_42"})).await;
    assert_eq!(
        recording.topic_events()[6..],
        [
            Event::Subscribe(Topic::Store(COUNTER)),
            Event::Subscribe(key_topic(COUNTER, "user_42"))
        ]
    );
    assert_eq!(recording.published(), vec![]);
}

// ---------------------------------------------------------------------------------------------
// 3b. Topic changes and the order they reach the backplane in
// ---------------------------------------------------------------------------------------------

/// A broker's view of one node: the topics it listens to, as the hub told it. Its first
/// unsubscription of Test.Counter is a slow round trip to the broker: it lasts until another
/// session subscribed to a key meanwhile, or 1 s (a hub that serializes its topic changes
/// makes the joining session wait instead; it must still end up listening to both topics).
#[derive(Debug, Clone, Default)]
struct SlowBroker {
    state: Arc<(Mutex<BrokerState>, Condvar)>,
}

#[derive(Debug, Default)]
struct BrokerState {
    events: Vec<Event>,
    listening: HashSet<Topic>,
    slowed: bool,
}

impl SlowBroker {
    fn state(&self) -> MutexGuard<'_, BrokerState> {
        lock(&self.state.0)
    }
}

impl Backplane for SlowBroker {
    fn publish(
        &self,
        local: &LocalSessions,
        target: &Target,
        mutation: &RawMutation,
    ) -> Result<usize, HubError> {
        InProcess.publish(local, target, mutation)
    }

    fn request(
        &self,
        local: &LocalSessions,
        session: String,
        mutation: RawMutation,
    ) -> BoxFuture<'static, Result<Option<Value>, HubError>> {
        InProcess.request(local, session, mutation)
    }

    fn subscribe(&self, topic: &Topic) {
        let mut state = self.state();
        state.events.push(Event::Subscribe(topic.clone()));
        state.listening.insert(topic.clone());
        self.state.1.notify_all();
    }

    fn unsubscribe(&self, topic: &Topic) {
        let mut state = self.state();
        state.events.push(Event::Unsubscribe(topic.clone()));
        state.listening.remove(topic);
        self.state.1.notify_all();
        if *topic == Topic::Store(COUNTER) && !state.slowed {
            state.slowed = true;
            let key_subscriptions = |state: &BrokerState| {
                state
                    .events
                    .iter()
                    .filter(|event| matches!(event, Event::Subscribe(Topic::Key(..))))
                    .count()
            };
            let _state = self
                .state
                .1
                .wait_timeout_while(state, Duration::from_secs(1), |state| {
                    key_subscriptions(state) < 2
                })
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }
}

/// A session leaving and one joining the same topics at the same time (on two workers, with a
/// slow backplane call in between) reach the backplane in the order they happened: otherwise
/// it would end up not listening to a key a live session holds, and `mutate_key` from another
/// node would no longer reach that session.
#[actix_rt::test]
async fn topic_changes_reach_the_backplane_in_the_order_they_happened() {
    let broker = SlowBroker::default();
    let server = TestServer::start(Config::default().backplane(broker.clone()));
    let user_42 = key_topic(COUNTER, "user_42");
    // the server has two workers and hands connections out in turn: the leaving session and
    // at least one of the joining ones run on different threads
    let mut leaving = server.connect().await;
    let mut joining = Vec::new();
    for _ in 0..3 {
        joining.push(server.connect().await);
    }
    leaving.join(COUNTER, json!({"key": "user_42"})).await;
    assert_eq!(
        broker.state().listening,
        HashSet::from([Topic::Store(COUNTER), user_42.clone()])
    );

    // the last session of both topics leaves; while the broker handles its first
    // unsubscription, other sessions join the same store and key
    leaving.send_raw(Message::Close(None)).await;
    eventually("the first unsubscription", || broker.state().slowed).await;
    let join =
        json!({"type": "join", "store": COUNTER, "data": {"key": "user_42"}, "request": "j"});
    for client in &mut joining {
        client.send_json(&join).await;
    }
    for client in &mut joining {
        let answer = client.recv().await;
        assert_eq!(answer["type"], "join", "{answer}");
    }
    server.wait_for_sessions(3).await;
    eventually("the leaving session's unsubscriptions", || {
        broker
            .state()
            .events
            .iter()
            .filter(|event| matches!(event, Event::Unsubscribe(_)))
            .count()
            == 2
    })
    .await;

    let state = broker.state();
    assert_eq!(server.hub.sessions_of(COUNTER).len(), 3);
    // three live sessions hold the store and the key: the backplane must listen to both
    assert_eq!(
        state.listening,
        HashSet::from([Topic::Store(COUNTER), user_42]),
        "the backplane was told, in this order: {:?}",
        state.events
    );
}

// ---------------------------------------------------------------------------------------------
// 4. The runtime-checked API
// ---------------------------------------------------------------------------------------------

#[actix_rt::test]
async fn mutations_by_name_are_checked_at_run_time_and_never_panic() {
    let recording = Recording::default();
    let server = TestServer::start(Config::default().backplane(recording.clone()));
    let mut client = server.connect().await;
    client.join(COUNTER, json!({})).await;

    assert_eq!(
        server.hub.mutate_by_name(COUNTER, "increase", vec![]),
        Ok(1)
    );
    expect_counter_push(&mut client, 1).await;
    assert_eq!(
        server.hub.mutate_by_name(COUNTER, "set", vec![json!(12)]),
        Ok(1)
    );
    expect_counter_push(&mut client, 12).await;
    let published = recording.published().len();

    // an unknown store
    let unknown_store = server.hub.mutate_by_name("Test.Nope", "increase", vec![]);
    assert_eq!(
        unknown_store,
        Err(HubError::Name(NameError::UnknownStore {
            store: "Test.Nope".into()
        }))
    );
    assert_eq!(
        unknown_store.unwrap_err().to_string(),
        r#"no store is named "Test.Nope""#
    );

    // an unknown mutation: the message lists the store's mutations
    let known: Vec<&'static str> = Counter::MUTATIONS.iter().map(|info| info.name).collect();
    assert!(known.contains(&"increase") && known.contains(&"slow_set"));
    let unknown_mutation = server.hub.mutate_by_name(COUNTER, "increse", vec![]);
    assert_eq!(
        unknown_mutation,
        Err(HubError::Name(NameError::UnknownMutation {
            store: COUNTER,
            mutation: "increse".into(),
            known: known.clone(),
        }))
    );
    let listed: Vec<String> = known.iter().map(|name| format!("{name:?}")).collect();
    assert_eq!(
        unknown_mutation.unwrap_err().to_string(),
        format!(
            r#"no mutation "increse" in store Test.Counter; its mutations are: {}"#,
            listed.join(", ")
        )
    );

    // a wrong number of arguments, both ways
    for args in [vec![], vec![json!(1), json!(2)]] {
        let given = args.len();
        let wrong = server.hub.mutate_by_name(COUNTER, "set", args);
        assert_eq!(
            wrong,
            Err(HubError::Name(NameError::WrongArity {
                store: COUNTER,
                mutation: "set",
                expected: 1,
                given,
            }))
        );
        assert_eq!(
            wrong.unwrap_err().to_string(),
            format!(r#"mutation "set" of store Test.Counter takes 1 argument(s), {given} given"#)
        );
    }

    // none of these reached the backplane or the client
    assert_eq!(recording.published().len(), published);
    client.expect_quiet().await;

    // RawMutation::new checks the same way
    assert_eq!(
        RawMutation::new("Test.Nope", "increase", vec![]),
        Err(NameError::UnknownStore {
            store: "Test.Nope".into()
        })
    );
    assert_eq!(
        RawMutation::new(COUNTER, "increse", vec![]),
        Err(NameError::UnknownMutation {
            store: COUNTER,
            mutation: "increse".into(),
            known,
        })
    );
    assert_eq!(
        RawMutation::new(COUNTER, "slow_set", vec![]),
        Err(NameError::WrongArity {
            store: COUNTER,
            mutation: "slow_set",
            expected: 1,
            given: 0
        })
    );
    let set = raw(COUNTER, "set", vec![json!(3)]);
    assert_eq!(
        (set.store(), set.name(), set.args()),
        (COUNTER, "set", &[json!(3)][..])
    );

    // a raw mutation sent to the store, and a request that answers the mutation's reply
    assert_eq!(server.hub.send(Target::Store, set), Ok(1));
    expect_counter_push(&mut client, 3).await;
    let id = session(&client);
    let reply = server
        .hub
        .request(&id, raw(COUNTER, "decrease", vec![]))
        .await;
    assert_eq!(reply, Ok(Some(json!("message"))));
    expect_counter_push(&mut client, 2).await;
    let reply = server
        .hub
        .request(&id, raw(COUNTER, "slow_set", vec![json!(40)]))
        .await;
    assert_eq!(reply, Ok(Some(json!(40))));
    expect_counter_push(&mut client, 40).await;
    // a mutation without a reply answers None; data of the wrong type is the mutation's error
    let reply = server
        .hub
        .request(&id, raw(COUNTER, "increase", vec![]))
        .await;
    assert_eq!(reply, Ok(None));
    expect_counter_push(&mut client, 41).await;
    let reply = server
        .hub
        .request(&id, raw(COUNTER, "set", vec![json!("ten")]))
        .await;
    assert!(matches!(reply, Err(HubError::Mutation(_))), "{reply:?}");
    let missing = server
        .hub
        .request("nope", raw(COUNTER, "increase", vec![]))
        .await;
    assert_eq!(missing, Err(HubError::NoSession("nope".into())));
    client.expect_quiet().await;
}

// ---------------------------------------------------------------------------------------------
// 5. A backplane that fails
// ---------------------------------------------------------------------------------------------

/// A backplane whose broker is down: publishing fails.
#[derive(Debug, Clone, Default)]
struct Down {
    attempts: Arc<Mutex<usize>>,
}

impl Backplane for Down {
    fn publish(
        &self,
        _local: &LocalSessions,
        _target: &Target,
        _mutation: &RawMutation,
    ) -> Result<usize, HubError> {
        *lock(&self.attempts) += 1;
        Err(HubError::Backplane("down".into()))
    }

    fn request(
        &self,
        _local: &LocalSessions,
        _session: String,
        _mutation: RawMutation,
    ) -> BoxFuture<'static, Result<Option<Value>, HubError>> {
        Box::pin(async { Err(HubError::Backplane("down".into())) })
    }
}

#[actix_rt::test]
async fn a_backplane_that_fails_is_an_error_value_not_a_panic() {
    let down = Down::default();
    let server = TestServer::start(Config::default().backplane(down.clone()));
    let mut client = server.connect().await;
    client.join(COUNTER, json!({})).await;
    let down_error = Err(HubError::Backplane("down".into()));

    let result = server.hub.mutate(storex::mutation!(Counter, "increase"));
    assert_eq!(result, down_error);
    assert_eq!(
        result.unwrap_err().to_string(),
        "the backplane could not send the mutation: down"
    );
    assert_eq!(
        server
            .hub
            .mutate_key("user_42", storex::mutation!(Counter, "increase")),
        down_error
    );
    assert_eq!(
        server.hub.mutate_by_name(COUNTER, "increase", vec![]),
        down_error
    );
    assert_eq!(
        server.hub.send(
            Target::Session(session(&client)),
            raw(COUNTER, "increase", vec![])
        ),
        down_error
    );
    let reply = server
        .hub
        .mutate_session(&session(&client), storex::mutation!(Counter, "decrease"))
        .await;
    assert_eq!(reply, Err(HubError::Backplane("down".into())));
    assert_eq!(*lock(&down.attempts), 4);

    // the server goes on: the client is served and got nothing
    client.expect_quiet().await;
    let answer = client.commit(COUNTER, "increase", json!([])).await;
    assert_eq!(answer["diff"], counter_diff(1));
}

// ---------------------------------------------------------------------------------------------
// 6. Arguments that cannot be serialized
// ---------------------------------------------------------------------------------------------

#[actix_rt::test]
async fn an_argument_that_cannot_be_serialized_is_an_error_naming_it_and_sends_nothing() {
    let recording = Recording::default();
    let server = TestServer::start(Config::default().backplane(recording.clone()));
    let mut client = server.connect().await;
    client.join(BAG, json!({})).await;
    let id = session(&client);

    // JSON object keys must be strings: a map keyed by tuples cannot be serialized
    let unserializable: HashMap<(i32, i32), i32> = HashMap::from([((1, 2), 3)]);
    let message_prefix =
        r#"argument 2 of mutation "put" of store Backplane.Test.Bag cannot be serialized: "#;
    let check = |result: Result<usize, HubError>| match result {
        Err(HubError::Arguments(message)) => {
            assert!(message.starts_with(message_prefix), "{message}");
            assert!(message.len() > message_prefix.len(), "{message}");
        }
        other => panic!("expected HubError::Arguments, got {other:?}"),
    };
    check(
        server
            .hub
            .mutate(storex::mutation!(Bag, "put", "label", unserializable)),
    );
    check(server.hub.mutate_key(
        "user_42",
        storex::mutation!(Bag, "put", "label", unserializable),
    ));
    let request = server
        .hub
        .mutate_session(&id, storex::mutation!(Bag, "put", "label", unserializable))
        .await;
    check(request.map(|_| 0));
    // the first argument is named when it is the one
    match server
        .hub
        .mutate(storex::mutation!(Bag, "put", unserializable, "label"))
    {
        Err(HubError::Arguments(message)) => assert!(
            message.starts_with(r#"argument 1 of mutation "put" of store Backplane.Test.Bag"#),
            "{message}"
        ),
        other => panic!("expected HubError::Arguments, got {other:?}"),
    }

    // nothing reached the backplane or the client
    assert_eq!(recording.published(), vec![]);
    client.expect_quiet().await;

    // the same mutation with an argument that serializes goes through
    let fine: HashMap<String, i32> = HashMap::from([("a".to_owned(), 1)]);
    assert_eq!(
        server
            .hub
            .mutate(storex::mutation!(Bag, "put", "label", fine)),
        Ok(1)
    );
    let push = client.recv().await;
    assert_eq!(push["store"], BAG, "{push}");
    assert_eq!(push["diff"], json!([{"a": "u", "p": ["count"], "t": 1}]));
    assert_eq!(
        recording.published(),
        vec![Event::Publish(
            Target::Store,
            raw(BAG, "put", vec![json!("label"), json!({"a": 1})])
        )]
    );
}
