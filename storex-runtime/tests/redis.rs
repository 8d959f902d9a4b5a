//! The Redis backplane against a real Redis server (started by each test on a free loopback
//! port, persistence off, killed by PID): two nodes in one process, real WebSocket clients.
//! Every target kind crosses nodes exactly once, requests find their session or say it is
//! nowhere, a node listens only to what its sessions need, and Redis trouble (killed, restarted,
//! frozen) costs the other nodes' deliveries, never a panic, never unbounded buffering.
//! The three-process cluster is in storex-bench/tests/cluster.rs.
#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "../../storex-bench/src/services.rs"]
#[allow(dead_code)]
mod services;

use std::time::Duration;

use common::stores::{counter_diff, Counter};
use common::{eventually, within, Client, TestServer};
use serde_json::{json, Value};
use services::RedisServer;
use storex::redis::{RedisBackplane, RedisOptions};
use storex::{Config, HubError, MutationError, RawMutation, Target};

const COUNTER: &str = "Test.Counter";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// One node: a server whose hub publishes through Redis, and a handle on its backplane.
struct Node {
    server: TestServer,
    backplane: RedisBackplane,
}

impl Node {
    async fn start(
        redis: &RedisServer,
        options: impl FnOnce(RedisOptions) -> RedisOptions,
    ) -> Self {
        let backplane = RedisBackplane::new(options(RedisOptions::new(redis.url())))
            .expect("a Redis backplane");
        backplane
            .ready(common::PATIENCE)
            .await
            .expect("connected to Redis");
        let server = TestServer::start(Config::default().backplane(backplane.clone()));
        Self { server, backplane }
    }

    async fn client(&self, params: Value) -> Client {
        let mut client = self.server.connect().await;
        let answer = client.join(COUNTER, params).await;
        assert_eq!(answer["type"], "join", "{answer}");
        client
    }
}

async fn two_nodes(redis: &RedisServer) -> (Node, Node) {
    (
        Node::start(redis, |options| options).await,
        Node::start(redis, |options| options).await,
    )
}

fn start_redis() -> RedisServer {
    RedisServer::start().unwrap_or_else(|error| panic!("{error}"))
}

/// A plain Redis connection, for what the test asks or publishes itself.
fn redis_connection(redis: &RedisServer) -> redis::Connection {
    redis::Client::open(redis.url())
        .and_then(|client| client.get_connection())
        .expect("a Redis connection")
}

/// How many connections listen on `channel` now.
fn listeners(redis: &RedisServer, channel: &str) -> usize {
    let mut connection = redis_connection(redis);
    let counts: Vec<(String, usize)> = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg(channel)
        .query(&mut connection)
        .expect("PUBSUB NUMSUB");
    counts.first().map_or(0, |(_, count)| *count)
}

/// Waits until `count` nodes listen on `channel`.
async fn wait_listeners(redis: &RedisServer, channel: &str, count: usize) {
    let what = format!("{count} node(s) listening on {channel}");
    eventually(&what, || listeners(redis, channel) == count).await;
}

fn store_channel() -> String {
    format!("storex:store:{COUNTER}")
}

fn key_channel(key: &str) -> String {
    format!("storex:key:{COUNTER}:{key}")
}

/// The next frame is a push of Test.Counter whose counter is now `value`.
async fn expect_push(client: &mut Client, value: i64) {
    let push = client.recv().await;
    assert_eq!(push["type"], "mutation", "{push}");
    assert_eq!(push["diff"], counter_diff(value), "{push}");
    assert!(push.get("request").is_none_or(Value::is_null), "{push}");
}

fn raw(name: &str, args: Vec<Value>) -> RawMutation {
    RawMutation::new(COUNTER, name, args).expect("a mutation of Test.Counter")
}

fn session(client: &Client) -> String {
    client.session.clone().expect("a joined client")
}

// ---------------------------------------------------------------------------------------------
// Delivery
// ---------------------------------------------------------------------------------------------

#[actix_rt::test]
async fn every_target_kind_reaches_the_other_node_exactly_once() {
    let redis = start_redis();
    let (a, b) = two_nodes(&redis).await;
    let mut on_a = a.client(json!({"key": "red"})).await;
    let mut red_on_b = b.client(json!({"key": "red", "start": 10})).await;
    let mut blue_on_b = b.client(json!({"key": "blue", "start": 20})).await;
    wait_listeners(&redis, &store_channel(), 2).await;
    wait_listeners(&redis, &key_channel("red"), 2).await;
    wait_listeners(&redis, &key_channel("blue"), 1).await;

    // the whole store: the count is this node's sessions; every session runs it once
    assert_eq!(
        a.server.hub.mutate(storex::mutation!(Counter, "increase")),
        Ok(1)
    );
    expect_push(&mut on_a, 1).await;
    expect_push(&mut red_on_b, 11).await;
    expect_push(&mut blue_on_b, 21).await;

    // one key, from the node without such sessions: only the red ones
    assert_eq!(
        b.server
            .hub
            .mutate_key("red", storex::mutation!(Counter, "set", 5)),
        Ok(1)
    );
    expect_push(&mut on_a, 5).await;
    expect_push(&mut red_on_b, 5).await;

    // one session, on the other node
    let target = Target::Session(session(&blue_on_b));
    assert_eq!(a.server.hub.send(target, raw("set", vec![json!(7)])), Ok(0));
    expect_push(&mut blue_on_b, 7).await;

    for client in [&mut on_a, &mut red_on_b, &mut blue_on_b] {
        client.expect_quiet().await;
    }
    // the publishing node skipped its own messages: it received only the other node's
    let (stats_a, stats_b) = (a.backplane.stats(), b.backplane.stats());
    assert_eq!(
        (stats_a.received, stats_b.received),
        (1, 2),
        "{stats_a:?} {stats_b:?}"
    );
    assert_eq!((stats_a.rejected, stats_b.rejected), (0, 0));
}

#[actix_rt::test]
async fn a_request_runs_in_the_session_on_the_other_node_and_answers_its_reply() {
    let redis = start_redis();
    let (a, b) = two_nodes(&redis).await;
    let mut on_b = b.client(json!({"start": 3})).await;
    let id = session(&on_b);

    let reply = a.server.hub.request(&id, raw("decrease", vec![])).await;
    assert_eq!(reply, Ok(Some(json!("message"))));
    expect_push(&mut on_b, 2).await;

    // the mutation's error crosses as the same error; the state is unchanged
    let refused = a.server.hub.request(&id, raw("set", vec![json!(-1)])).await;
    assert_eq!(
        refused,
        Err(HubError::Mutation(MutationError::Refused(
            "-1 is below zero".into()
        )))
    );
    // a session that has not joined the store
    let other = RawMutation::new("Test.Other", "set", vec![json!(1)]).expect("Test.Other set");
    let not_joined = a.server.hub.request(&id, other).await;
    assert_eq!(
        not_joined,
        Err(HubError::NotJoined {
            session: id.clone(),
            store: "Test.Other"
        })
    );
    on_b.expect_quiet().await;
}

#[actix_rt::test]
async fn a_session_that_is_nowhere_is_said_so_without_waiting_for_the_time_limit() {
    let redis = start_redis();
    let (a, _b) = two_nodes(&redis).await;
    // another program watching every channel (as `redis-cli psubscribe 'storex:*'` does) hears
    // the request too, and will never answer it
    let mut watcher = redis_connection(&redis);
    let mut watching = watcher.as_pubsub();
    watching.psubscribe("storex:*").expect("PSUBSCRIBE");
    let started = std::time::Instant::now();
    let answer = a
        .server
        .hub
        .request("nobody", raw("increase", vec![]))
        .await;
    assert_eq!(answer, Err(HubError::NoSession("nobody".into())));
    // every node answered (the other "absent"; this one knows): no time limit was waited for
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[actix_rt::test]
async fn a_node_listens_to_a_store_or_key_while_it_has_sessions_of_it() {
    let redis = start_redis();
    let a = Node::start(&redis, |options| options).await;
    wait_listeners(&redis, "storex:sessions", 1).await;
    assert_eq!(listeners(&redis, &store_channel()), 0);

    let first = a.client(json!({"key": "k"})).await;
    let second = a.client(json!({"key": "k"})).await;
    wait_listeners(&redis, &store_channel(), 1).await;
    wait_listeners(&redis, &key_channel("k"), 1).await;

    first.close().await;
    a.server.wait_for_sessions(1).await;
    // still one session of the store and key: still listening
    assert_eq!(listeners(&redis, &store_channel()), 1);
    second.close().await;
    wait_listeners(&redis, &store_channel(), 0).await;
    wait_listeners(&redis, &key_channel("k"), 0).await;
    assert_eq!(
        a.backplane.stats().subscriptions,
        2,
        "the shared and the node's own channel"
    );
}

#[actix_rt::test]
async fn a_message_this_node_cannot_run_is_counted_and_skipped() {
    let redis = start_redis();
    let a = Node::start(&redis, |options| options).await;
    let mut client = a.client(json!({})).await;
    wait_listeners(&redis, &store_channel(), 1).await;
    let mut connection = redis_connection(&redis);
    // a node of a newer version, with a mutation this one does not have; and something else
    let newer = json!({"mutate": {"from": "newer", "target": "store",
        "mutation": {"store": COUNTER, "name": "reset_all", "args": []}}});
    for payload in [newer.to_string(), "hello".to_owned()] {
        let _: usize = redis::cmd("PUBLISH")
            .arg(store_channel())
            .arg(payload)
            .query(&mut connection)
            .expect("PUBLISH");
    }
    eventually("two rejected messages", || {
        a.backplane.stats().rejected == 2
    })
    .await;
    client.expect_quiet().await;
}

// ---------------------------------------------------------------------------------------------
// Redis trouble
// ---------------------------------------------------------------------------------------------

#[actix_rt::test]
async fn redis_killed_and_restarted_under_load_costs_only_the_other_nodes_deliveries() {
    let mut redis = start_redis();
    let fast = |options: RedisOptions| {
        options.reconnect_backoff(Duration::from_millis(20), Duration::from_millis(200))
    };
    let a = Node::start(&redis, fast).await;
    let b = Node::start(&redis, fast).await;
    let mut on_a = a.client(json!({})).await;
    let mut on_b = b.client(json!({})).await;
    wait_listeners(&redis, &store_channel(), 2).await;

    // load: node a mutates every instance while Redis goes away and comes back
    let hub = a.server.hub.clone();
    let increase = || hub.mutate(storex::mutation!(Counter, "increase"));
    let mut value = 0;
    for _ in 0..50 {
        assert_eq!(increase(), Ok(1));
        value += 1;
        expect_push(&mut on_a, value).await;
        expect_push(&mut on_b, value).await;
    }
    redis.kill();
    // until node a notices, a publish may still be queued (and then counted as lost); after,
    // publishing answers the error at once. Local delivery goes on throughout.
    let mut refused = None;
    for _ in 0..1000 {
        value += 1;
        match increase() {
            Ok(1) => {}
            Err(HubError::Backplane(message)) => {
                refused = Some(message);
            }
            other => panic!("{other:?}"),
        }
        expect_push(&mut on_a, value).await;
        if refused.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let refused = refused.expect("publishing is refused while Redis is down");
    assert!(refused.contains("unreachable"), "{refused}");
    assert!(!a.backplane.is_connected());
    let failures = a.backplane.stats().publish_failures;
    assert!(failures >= 1, "{failures}");

    redis.restart().expect("Redis starts again");
    a.backplane
        .ready(common::PATIENCE)
        .await
        .expect("a reconnects");
    b.backplane
        .ready(common::PATIENCE)
        .await
        .expect("b reconnects");
    wait_listeners(&redis, &store_channel(), 2).await;
    assert!(a.backplane.stats().reconnects >= 1);

    // b missed what was published while Redis was down, and nothing else: it applies the next
    // mutation on its own state, exactly once
    assert_eq!(increase(), Ok(1));
    expect_push(&mut on_a, value + 1).await;
    expect_push(&mut on_b, 51).await;
    on_a.expect_quiet().await;
    on_b.expect_quiet().await;
}

#[actix_rt::test]
async fn a_frozen_redis_fills_the_bounded_queue_and_then_is_given_up() {
    let redis = start_redis();
    let a = Node::start(&redis, |options| {
        options
            .queue_capacity(4)
            .command_timeout(Duration::from_millis(500))
    })
    .await;
    let mut on_a = a.client(json!({})).await;
    let pid = redis.pid().expect("Redis runs").to_string();
    signal("-STOP", &pid);
    let hub = a.server.hub.clone();
    let mut full = None;
    for value in 1..=600 {
        match hub.mutate(storex::mutation!(Counter, "increase")) {
            Ok(1) => {}
            Err(HubError::Backplane(message)) => {
                full = Some(message);
            }
            other => panic!("{other:?}"),
        }
        // delivered locally whatever Redis does
        expect_push(&mut on_a, value).await;
        if full.is_some() {
            break;
        }
    }
    let full = full.expect("the queue fills up");
    // the first batch waits for the frozen server's answer; four more fill the queue
    assert!(full.contains("is full (4 messages)"), "{full}");
    // the frozen server does not answer: the connection is given up within the command timeout
    eventually("the link to the frozen Redis is given up", || {
        !a.backplane.is_connected()
    })
    .await;
    signal("-CONT", &pid);
    a.backplane
        .ready(common::PATIENCE)
        .await
        .expect("reconnects");
    assert!(a.backplane.stats().publish_failures >= 1);
}

/// Sends `signal` to process `pid` with kill(1).
fn signal(signal: &str, pid: &str) {
    let status = std::process::Command::new("kill")
        .args([signal, pid])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill {signal} {pid}");
}

// ---------------------------------------------------------------------------------------------
// Durable sessions
// ---------------------------------------------------------------------------------------------

const DURABLE: &str = "Test.Durable";
const KEY: &[u8] = b"the cluster's resume key, shared by every node";

/// A durable store: saved in Redis, made again on another node.
#[derive(storex::Store, serde::Serialize, serde::Deserialize, Clone, Debug)]
#[store(name = "Test.Durable", durable)]
pub struct Journal {
    pub log: Vec<String>,
}

#[storex::mutations]
impl Journal {
    #[init]
    fn init() -> Self {
        Journal { log: Vec::new() }
    }

    #[mutation("add")]
    fn add(&mut self, entry: String) -> storex::Reply<usize> {
        self.log.push(entry);
        storex::Reply(self.log.len())
    }
}

/// A node whose sessions are durable in `redis` (and whose server-side mutations go through it).
async fn durable_node(redis: &RedisServer) -> Node {
    let backplane = RedisBackplane::new(RedisOptions::new(redis.url())).expect("a backplane");
    backplane
        .ready(common::PATIENCE)
        .await
        .expect("connected to Redis");
    let config = Config::default()
        .backplane(backplane.clone())
        .durable(backplane.sessions())
        .resume_key(KEY);
    let server = TestServer::start(config);
    Node { server, backplane }
}

fn session_key(session: &str) -> String {
    format!("storex:session:{session}")
}

/// The record's lease, if there is a record.
fn lease(redis: &RedisServer, session: &str) -> Option<u64> {
    let mut connection = redis_connection(redis);
    redis::cmd("HGET")
        .arg(session_key(session))
        .arg("lease")
        .query(&mut connection)
        .expect("HGET")
}

/// What a client holds after joining or committing: session, token, epoch, version.
struct Held {
    session: String,
    token: String,
    epoch: String,
    version: u64,
}

async fn join_journal(node: &Node) -> (Client, Held) {
    let mut client = node.server.connect().await;
    let joined = client.join(DURABLE, json!({})).await;
    let held = Held {
        session: session(&client),
        token: joined["token"].as_str().expect("a token").to_owned(),
        epoch: joined["epoch"].as_str().expect("an epoch").to_owned(),
        version: joined["version"].as_u64().expect("a version"),
    };
    (client, held)
}

async fn add(client: &mut Client, held: &Held, entry: &str, request: &str) -> Value {
    client
        .send_json(
            &json!({"type": "mutation", "store": DURABLE, "session": held.session,
            "data": {"name": "add", "data": [entry]}, "request": request}),
        )
        .await;
    let answer = client.recv().await;
    assert_eq!(answer["request"], request, "{answer}");
    answer
}

/// Resumes `held` on `node`, holding `version`; the connection and the resume's answer.
async fn resume_journal(node: &Node, held: &Held, version: u64) -> (Client, Value) {
    let mut client = node.server.connect().await;
    client
        .send_json(
            &json!({"type": "resume", "session": held.session, "token": held.token,
            "stores": [{"store": DURABLE, "epoch": held.epoch, "version": version}],
            "request": "again"}),
        )
        .await;
    let answer = client.recv().await;
    assert_eq!(answer["type"], "resume", "{answer}");
    client.session = Some(held.session.clone());
    (client, answer)
}

/// The store's state as a join of it (already joined: the state again) answers it.
async fn journal_state(client: &mut Client) -> Value {
    let answer = client.join(DURABLE, json!({})).await;
    answer["data"].clone()
}

#[actix_rt::test]
async fn a_durable_session_resumes_on_another_node_when_its_node_is_gone() {
    let redis = start_redis();
    let a = durable_node(&redis).await;
    let b = durable_node(&redis).await;
    let (mut client, mut held) = join_journal(&a).await;
    // more than a snapshot's worth of versions: the takeover replays a snapshot and diffs
    let total = 70;
    for n in 1..=total {
        let answer = add(&mut client, &held, &format!("m{n}"), &format!("r{n}")).await;
        assert_eq!(answer["message"], json!(n), "{answer}");
        held.version = answer["version"].as_u64().expect("a version");
    }
    // the last answer is lost with the node: the client holds the version before it
    held.version -= 1;
    a.server.handle.stop(false).await;
    drop(client);

    let (mut client, answer) = resume_journal(&b, &held, held.version).await;
    assert_eq!(answer["resumed"], true, "{answer}");
    let store = &answer["stores"][0];
    assert_eq!(store["version"], json!(total), "{answer}");
    assert_eq!(store["epoch"], json!(held.epoch), "{answer}");
    assert_eq!(
        store["diff"],
        json!([{"a": "i", "p": ["log", total - 1], "t": format!("m{total}")}]),
        "the missed diff, not the whole state: {answer}"
    );
    // the commit whose answer was lost is sent again: answered again, not run again
    let again = add(
        &mut client,
        &held,
        &format!("m{total}"),
        &format!("r{total}"),
    )
    .await;
    assert_eq!(again["replayed"], true, "{again}");
    assert_eq!(again["message"], json!(total), "{again}");
    let next = add(&mut client, &held, "after", "r-after").await;
    assert_eq!(next["version"], json!(total + 1), "{next}");
    let log: Vec<String> = (1..=total)
        .map(|n| format!("m{n}"))
        .chain(["after".to_owned()])
        .collect();
    assert_eq!(journal_state(&mut client).await, json!({"log": log}));
    assert_eq!(lease(&redis, &held.session), Some(2), "taken over once");
}

#[actix_rt::test]
async fn the_node_that_lost_a_durable_session_lets_it_go_without_writing_it() {
    let redis = start_redis();
    let a = durable_node(&redis).await;
    let b = durable_node(&redis).await;
    let (mut client, mut held) = join_journal(&a).await;
    let answer = add(&mut client, &held, "one", "r1").await;
    held.version = answer["version"].as_u64().expect("a version");
    // the connection drops without a close: node a keeps the session detached
    drop(client);
    eventually("the session detached on a", || {
        a.server.hub.detached().sessions == 1
    })
    .await;

    // the client comes back through the load balancer to node b
    let (mut client, answer) = resume_journal(&b, &held, held.version).await;
    assert_eq!(answer["resumed"], true, "{answer}");
    wait_listeners(&redis, &format!("storex:store:{DURABLE}"), 2).await;

    // a server-side mutation reaches both copies: a's is refused by the lease and ends, b's is
    // the session
    let reached = a
        .server
        .hub
        .mutate_by_name(DURABLE, "add", vec![json!("from the server")]);
    assert_eq!(reached, Ok(1), "a's stale copy was still there");
    let push = client.recv().await;
    assert_eq!(push["version"], json!(held.version + 1), "{push}");
    a.server.wait_for_sessions(0).await;
    client.expect_quiet().await;
    assert_eq!(
        journal_state(&mut client).await,
        json!({"log": ["one", "from the server"]})
    );
    assert_eq!(lease(&redis, &held.session), Some(2));
}

#[actix_rt::test]
async fn a_stopping_node_leaves_its_durable_sessions_to_the_others() {
    let redis = start_redis();
    let a = durable_node(&redis).await;
    let b = durable_node(&redis).await;
    let (mut client, mut held) = join_journal(&a).await;
    let answer = add(&mut client, &held, "before the deploy", "r1").await;
    held.version = answer["version"].as_u64().expect("a version");
    a.server.hub.stop().await;
    let (code, _) = client.closed().await;
    assert_eq!(code, 1001);
    assert_eq!(lease(&redis, &held.session), Some(1), "the record stays");

    let (mut client, answer) = resume_journal(&b, &held, held.version).await;
    assert_eq!(answer["resumed"], true, "{answer}");
    assert_eq!(answer["stores"][0]["diff"], json!([]), "{answer}");
    assert_eq!(
        journal_state(&mut client).await,
        json!({"log": ["before the deploy"]})
    );
}

#[actix_rt::test]
async fn a_durable_session_that_ends_deletes_its_record() {
    let redis = start_redis();
    let a = durable_node(&redis).await;
    let (mut client, held) = join_journal(&a).await;
    add(&mut client, &held, "x", "r1").await;
    assert_eq!(lease(&redis, &held.session), Some(1));
    client.close().await;
    eventually("the record deleted", || {
        lease(&redis, &held.session).is_none()
    })
    .await;
    // and a session that never was (or ended) cannot be resumed anywhere
    let (_client, answer) = resume_journal(&a, &held, 1).await;
    assert_eq!(answer["resumed"], false, "{answer}");
}

#[actix_rt::test]
async fn an_idle_node_keeps_its_connections() {
    let redis = start_redis();
    let a = Node::start(&redis, |options| options).await;
    // Both connections ping Redis after a second without traffic (the listening one in
    // subscribed mode, where the answer is not a plain PONG): two rounds of pings must not cost
    // a connection. There is no event to wait for here: the test watches two ping periods pass.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let stats = a.backplane.stats();
    assert!(stats.connected, "{stats:?}");
    assert_eq!(stats.reconnects, 0, "{stats:?}");
}

#[actix_rt::test]
async fn a_durable_session_is_written_again_whole_after_redis_lost_it() {
    let mut redis = start_redis();
    let a = durable_node(&redis).await;
    let b = durable_node(&redis).await;
    let (mut client, mut held) = join_journal(&a).await;
    add(&mut client, &held, "before", "r1").await;
    // Redis comes back empty (persistence is off): the record is gone
    redis.restart().expect("Redis starts again");
    a.backplane
        .ready(common::PATIENCE)
        .await
        .expect("a reconnects");
    b.backplane
        .ready(common::PATIENCE)
        .await
        .expect("b reconnects");
    // the next saves find no record (or fail while the writer reconnects): the session is
    // written again whole; the answers still come
    let mut n = 0;
    while lease(&redis, &held.session).is_none() {
        n += 1;
        assert!(n < 100, "the record was never written again");
        let answer = add(&mut client, &held, &format!("after {n}"), &format!("a{n}")).await;
        held.version = answer["version"].as_u64().expect("a version");
    }
    let log: Vec<String> = std::iter::once("before".to_owned())
        .chain((1..=n).map(|n| format!("after {n}")))
        .collect();
    drop(client);
    // and another node can take it over from what was written again
    let (mut client, answer) = resume_journal(&b, &held, held.version).await;
    assert_eq!(answer["resumed"], true, "{answer}");
    assert_eq!(journal_state(&mut client).await, json!({"log": log}));
}

#[actix_rt::test]
async fn durable_sessions_keep_the_backplane_thread_alive() {
    use storex::durable::SessionStore;
    let redis = start_redis();
    let backplane = RedisBackplane::new(RedisOptions::new(redis.url())).expect("a backplane");
    backplane
        .ready(common::PATIENCE)
        .await
        .expect("connected to Redis");
    let sessions = backplane.sessions();
    drop(backplane);
    // a config may hold the sessions longer than anyone holds the backplane
    let taken = sessions.take("nobody", Duration::from_secs(1)).await;
    assert_eq!(taken, Ok(None));
}

#[actix_rt::test]
async fn a_request_no_node_takes_ends_with_the_find_time_limit() {
    let redis = start_redis();
    let a = Node::start(&redis, |options| {
        options.request_timeouts(Duration::from_millis(300), Duration::from_secs(5))
    })
    .await;
    // a subscriber by name that is not a node: counted among the nodes, it never answers
    let mut silent = redis_connection(&redis);
    let mut listening = silent.as_pubsub();
    listening.subscribe("storex:sessions").expect("SUBSCRIBE");
    wait_listeners(&redis, "storex:sessions", 2).await;
    let answer = a
        .server
        .hub
        .request("nobody", raw("increase", vec![]))
        .await;
    let Err(HubError::Backplane(message)) = answer else {
        panic!("{answer:?}");
    };
    assert_eq!(
        message,
        "no node said it has session \"nobody\" within 300ms (0 of 1 nodes answered that they do not)"
    );
}

#[actix_rt::test]
async fn a_durable_record_expires_with_the_ttl_once_no_node_holds_it() {
    let redis = start_redis();
    let backplane = RedisBackplane::new(RedisOptions::new(redis.url())).expect("a backplane");
    backplane
        .ready(common::PATIENCE)
        .await
        .expect("connected to Redis");
    // the record lives idle + resume_ttl after its last write: 1.5 s here
    let config = Config::default()
        .backplane(backplane.clone())
        .durable(backplane.sessions())
        .idle_timeout(Duration::from_millis(1000))
        .resume_ttl(Duration::from_millis(500));
    let node = Node {
        server: TestServer::start(config),
        backplane,
    };
    let (mut client, held) = join_journal(&node).await;
    add(&mut client, &held, "x", "r1").await;
    let mut connection = redis_connection(&redis);
    let ttl: i64 = redis::cmd("PTTL")
        .arg(session_key(&held.session))
        .query(&mut connection)
        .expect("PTTL");
    assert!(ttl > 0 && ttl <= 1500, "{ttl} ms");
    // the node goes without a word: nobody extends the record any more, and it expires
    node.server.handle.stop(false).await;
    drop(client);
    within(Duration::from_secs(10), "the record expired", || {
        lease(&redis, &held.session).is_none()
    })
    .await;
    // gone by its TTL, not deleted by a node
    let stats: String = redis::cmd("INFO")
        .arg("stats")
        .query(&mut connection)
        .expect("INFO");
    assert!(
        stats.lines().any(|line| line == "expired_keys:1"),
        "{stats}"
    );
}
