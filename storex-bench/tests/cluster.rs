//! Several `storex-bench-server` processes on one real Redis (`--redis URL`), real WebSocket
//! clients on each: every kind of server-side mutation reaches exactly the sessions it is for,
//! on every node, exactly once (the node that publishes does not run it again when Redis brings
//! it back); one-session requests find the node that has the session and bring its reply back;
//! a request for a session that is nowhere is answered "no such session" as soon as every node
//! said so.
//!
//! Every test owns its Redis and its nodes (killed by PID when it ends). Nothing is timed by a
//! sleep: each wait is for a condition, with a bound.
//!
//! Exactly once, without waiting "long enough": after each mutation, a fence. When Redis has
//! carried the mutation (its publisher counted it published), a node that has no session (the
//! fence node) publishes a store-wide `say` of a new text. Every session receives the fence
//! through its node's listener, which reads what Redis sends in the order Redis ran it: behind
//! the mutation, and behind the publisher's own copy of it coming back. A session's pushes up to
//! its fence are then all it will ever get of the mutation: a second run, or a run where it does
//! not belong, would be among them.

// A test states what it expects by panicking on anything else.
#![allow(clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use serde_json::{json, Value};
use storex_bench::client::{self, Socket};
use storex_bench::server::{ClusterMutated, ClusterRequested, ClusterStats, ROOM_STORE};
use storex_bench::services::RedisServer;

use common::{runtime, ServerProcess};

/// The bound of every wait for a condition (a loaded 2-core machine, debug builds).
const PATIENCE: Duration = Duration::from_secs(20);

/// How long a request waits for a node to say it has the session (RedisOptions' default).
const FIND_TIMEOUT: Duration = Duration::from_secs(2);

// ---------------------------------------------------------------------------------------------
// The cluster
// ---------------------------------------------------------------------------------------------

/// A Redis server and the nodes on it. The nodes go first when it is dropped.
struct Cluster {
    nodes: Vec<SocketAddr>,
    _processes: Vec<ServerProcess>,
    redis: RedisServer,
}

impl Cluster {
    /// Redis and `count` nodes, started together.
    fn start(count: usize) -> Self {
        let redis = RedisServer::start().expect("start redis-server");
        let url = redis.url();
        let mut processes: Vec<ServerProcess> = (0..count)
            .map(|_| ServerProcess::spawn(&["--workers", "1", "--redis", &url]))
            .collect();
        let nodes = processes.iter_mut().map(ServerProcess::addr).collect();
        Self {
            nodes,
            _processes: processes,
            redis,
        }
    }

    fn node(&self, index: usize) -> SocketAddr {
        self.nodes[index]
    }

    /// A connection to Redis, to ask who listens where.
    async fn redis(&self) -> MultiplexedConnection {
        redis::Client::open(self.redis.url())
            .expect("a Redis URL")
            .get_multiplexed_async_connection()
            .await
            .expect("connect to the test's Redis")
    }
}

/// Waits until `listeners` nodes listen to `channel` (the subscriptions are made after a node's
/// first session of a store or key joins, on the node's own time).
async fn wait_for_listeners(redis: &mut MultiplexedConnection, channel: &str, listeners: usize) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let counts: Vec<(String, usize)> = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(channel)
            .query_async(redis)
            .await
            .expect("PUBSUB NUMSUB");
        let now = counts.first().map_or(0, |(_, count)| *count);
        if now == listeners {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{channel}: {now} listener(s) after {PATIENCE:?}, expected {listeners}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn stats(node: SocketAddr) -> ClusterStats {
    let answer = client::http(node, "GET", "/bench/cluster/stats")
        .await
        .unwrap_or_else(|error| panic!("stats of {node}: {error}"));
    serde_json::from_value(answer).expect("a ClusterStats")
}

/// Waits until `node` has published `count` messages in all (Redis ran their PUBLISH).
async fn wait_published(node: SocketAddr, count: u64) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let published = stats(node).await.redis.published;
        if published >= count {
            assert_eq!(published, count, "{node} published more than expected");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{node} published {published} message(s) after {PATIENCE:?}, expected {count}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Percent-encodes a query value.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(byte).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

/// Whom a server-side mutation is for.
enum To<'a> {
    Store,
    Key(&'a str),
    Session(&'a str),
}

/// `POST /bench/cluster/mutate` on `node`: mutation `name` of Bench.Room with `args`.
async fn mutate(node: SocketAddr, to: To<'_>, name: &str, args: Value) -> ClusterMutated {
    let target = match to {
        To::Store => "target=store".to_owned(),
        To::Key(key) => format!("target=key&key={}", encode(key)),
        To::Session(session) => format!("target=session&session={}", encode(session)),
    };
    let path = format!(
        "/bench/cluster/mutate?{target}&name={name}&args={}",
        encode(&args.to_string())
    );
    let answer = client::http(node, "POST", &path)
        .await
        .unwrap_or_else(|error| panic!("{path} on {node}: {error}"));
    serde_json::from_value(answer).expect("a ClusterMutated")
}

/// `mutate` that must succeed; how many of `node`'s sessions it reached.
async fn send(node: SocketAddr, to: To<'_>, name: &str, args: Value) -> usize {
    let answer = mutate(node, to, name, args).await;
    match answer.reached {
        Some(reached) => reached,
        None => panic!("mutation {name} from {node} failed: {answer:?}"),
    }
}

/// `POST /bench/cluster/request` on `node`: mutation `name` of `store` in session `session`; the
/// answer and how long the whole exchange took.
async fn request(
    node: SocketAddr,
    session: &str,
    store: &str,
    name: &str,
    args: Value,
) -> (ClusterRequested, Duration) {
    let path = format!(
        "/bench/cluster/request?session={}&store={}&name={name}&args={}",
        encode(session),
        encode(store),
        encode(&args.to_string())
    );
    let started = Instant::now();
    let answer = client::http(node, "POST", &path)
        .await
        .unwrap_or_else(|error| panic!("{path} on {node}: {error}"));
    let answer = serde_json::from_value(answer).expect("a ClusterRequested");
    (answer, started.elapsed())
}

// ---------------------------------------------------------------------------------------------
// The clients
// ---------------------------------------------------------------------------------------------

/// A WebSocket client that joined Bench.Room on one node, with the state its pushes built.
struct Member {
    label: &'static str,
    socket: Socket,
    session: String,
    state: Value,
    /// What its `said` must be: the test appends what each mutation should bring it.
    expected: Vec<String>,
}

impl Member {
    async fn join(label: &'static str, node: SocketAddr, room: &str) -> Self {
        let mut socket = client::connect(node, "/storex", None)
            .await
            .unwrap_or_else(|error| panic!("{label}: {error}"));
        let join =
            json!({"type": "join", "store": ROOM_STORE, "data": {"room": room}, "request": 1});
        client::feed(&mut socket, join.to_string())
            .await
            .expect("send the join");
        client::flush(&mut socket).await.expect("send the join");
        let text = client::next_text(&mut socket)
            .await
            .unwrap_or_else(|error| panic!("{label}'s join: {error}"));
        let answer: Value = serde_json::from_str(&text).expect("a JSON join answer");
        assert_eq!(answer["type"], "join", "{label}: {text}");
        assert_eq!(answer["store"], ROOM_STORE, "{label}: {text}");
        assert_eq!(
            answer["data"],
            json!({"room": room, "said": [], "bumps": 0}),
            "{label}: {text}"
        );
        let session = answer["session"]
            .as_str()
            .expect("the join answer names the session")
            .to_owned();
        Self {
            label,
            socket,
            session,
            state: answer["data"].clone(),
            expected: Vec::new(),
        }
    }

    /// The next frame: a push of this session's Bench.Room, applied to the state.
    async fn next_push(&mut self) -> Value {
        let label = self.label;
        let text = client::next_text(&mut self.socket)
            .await
            .unwrap_or_else(|error| panic!("{label}: {error}"));
        let push: Value = serde_json::from_str(&text).expect("a JSON frame");
        assert_eq!(push["type"], "mutation", "{label}: expected a push: {text}");
        assert_eq!(push["store"], ROOM_STORE, "{label}: {text}");
        assert_eq!(push["session"], json!(self.session), "{label}: {text}");
        assert!(
            push.get("request").is_none_or(Value::is_null),
            "{label}: {text}"
        );
        client::apply_diff(&mut self.state, &push)
            .unwrap_or_else(|error| panic!("{label}: {error}"));
        push
    }

    /// Reads pushes up to the one that says `fence`; what it was said by then must be exactly
    /// what it expects, then the fence.
    async fn read_to_fence(&mut self, fence: &str) {
        loop {
            self.next_push().await;
            let last = self.state["said"]
                .as_array()
                .and_then(|said| said.last())
                .and_then(Value::as_str);
            if last == Some(fence) {
                break;
            }
        }
        self.expected.push(fence.to_owned());
        assert_eq!(
            self.state["said"],
            json!(self.expected),
            "{}: what its pushes said up to {fence:?}",
            self.label
        );
    }

    /// Nothing waits for it: the answer to a ping is its next frame.
    async fn expect_quiet(&mut self) {
        let label = self.label;
        let ping = json!({"type": "ping", "request": "quiet?"}).to_string();
        client::feed(&mut self.socket, ping).await.expect("ping");
        client::flush(&mut self.socket).await.expect("ping");
        let text = client::next_text(&mut self.socket)
            .await
            .unwrap_or_else(|error| panic!("{label}: {error}"));
        let frame: Value = serde_json::from_str(&text).expect("a JSON frame");
        assert_eq!(
            frame["type"], "pong",
            "{label}: expected no push, got {text}"
        );
        assert_eq!(frame["request"], "quiet?", "{label}: {text}");
    }
}

/// The members that should receive a mutation: by label.
fn expect(members: &mut [Member], labels: &[&str], text: &str) {
    for label in labels {
        let member = members
            .iter_mut()
            .find(|member| member.label == *label)
            .unwrap_or_else(|| panic!("no member {label}"));
        member.expected.push(text.to_owned());
    }
}

fn session_of<'a>(members: &'a [Member], label: &str) -> &'a str {
    &members
        .iter()
        .find(|member| member.label == label)
        .unwrap_or_else(|| panic!("no member {label}"))
        .session
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

const A: usize = 0;
const B: usize = 1;
const C: usize = 2;
/// The fence node: no session ever joins it.
const FENCE: usize = 3;

#[test]
fn every_target_reaches_exactly_its_sessions_once_on_every_node() {
    let cluster = Cluster::start(4);
    let (a, b, c, fence_node) = (
        cluster.node(A),
        cluster.node(B),
        cluster.node(C),
        cluster.node(FENCE),
    );
    runtime().block_on(async {
        let mut redis = cluster.redis().await;
        // r1 on every node, r2 on A and B, r3 on B and C.
        let mut members = vec![
            Member::join("a1", a, "r1").await,
            Member::join("a2", a, "r2").await,
            Member::join("b1", b, "r1").await,
            Member::join("b2", b, "r2").await,
            Member::join("b3", b, "r3").await,
            Member::join("c1", c, "r1").await,
            Member::join("c3", c, "r3").await,
        ];
        wait_for_listeners(&mut redis, "storex:store:Bench.Room", 3).await;
        wait_for_listeners(&mut redis, "storex:key:Bench.Room:r1", 3).await;
        wait_for_listeners(&mut redis, "storex:key:Bench.Room:r2", 2).await;
        wait_for_listeners(&mut redis, "storex:key:Bench.Room:r3", 2).await;
        // Every node listens to the sessions channel from its start.
        wait_for_listeners(&mut redis, "storex:sessions", 4).await;

        // What each node says of itself: one id each; two fixed channels (the sessions' and
        // its own), plus the store's and each of its keys.
        let mut ids = Vec::new();
        for (node, channels, sessions) in [(a, 5, 2), (b, 6, 3), (c, 5, 2), (fence_node, 2, 0)] {
            let stats = stats(node).await;
            assert!(stats.redis.connected, "{stats:?}");
            assert_eq!(stats.redis.subscriptions, channels, "{node}: {stats:?}");
            assert_eq!(stats.sessions, sessions, "{node}: {stats:?}");
            assert_eq!(stats.redis.published, 0, "{node}: {stats:?}");
            ids.push(stats.node);
        }
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 4, "each node has its own id: {ids:?}");

        let all = ["a1", "a2", "b1", "b2", "b3", "c1", "c3"];
        let b2 = session_of(&members, "b2").to_owned();
        let a1 = session_of(&members, "a1").to_owned();
        // (publisher, target, whom it reaches, how many of the publisher's own sessions, whether
        // it goes through Redis)
        let steps: Vec<(usize, To<'_>, Vec<&str>, usize, bool)> = vec![
            // The whole store from A: A's sessions once (locally, not again from Redis), B's and
            // C's once.
            (A, To::Store, all.to_vec(), 2, true),
            (C, To::Key("r1"), vec!["a1", "b1", "c1"], 1, true),
            // A key the publisher has no session of.
            (A, To::Key("r3"), vec!["b3", "c3"], 0, true),
            (B, To::Key("r2"), vec!["a2", "b2"], 1, true),
            (A, To::Key("nobody"), vec![], 0, true),
            // A session on another node: only it.
            (C, To::Session(&b2), vec!["b2"], 0, true),
            // A session on the publisher: only it, and nothing goes to Redis.
            (A, To::Session(&a1), vec!["a1"], 1, false),
            (B, To::Session("no-such-session-anywhere"), vec![], 0, true),
            (C, To::Store, all.to_vec(), 2, true),
        ];
        let mut published = [0u64; 4];
        for (step, (publisher, to, reaches, local, through_redis)) in steps.into_iter().enumerate()
        {
            let text = format!("step {step}");
            let what = match &to {
                To::Store => "the store".to_owned(),
                To::Key(key) => format!("key {key}"),
                To::Session(session) => format!("session {session}"),
            };
            let node = cluster.node(publisher);
            let reached = send(node, to, "say", json!([text])).await;
            assert_eq!(reached, local, "step {step} ({what}): sessions of {node}");
            expect(&mut members, &reaches, &text);
            if through_redis {
                published[publisher] += 1;
            }
            // The mutation has gone through Redis: the fence comes behind it everywhere.
            wait_published(node, published[publisher]).await;
            let fence = format!("fence {step}");
            let reached = send(fence_node, To::Store, "say", json!([fence])).await;
            assert_eq!(reached, 0, "the fence node has no session");
            published[FENCE] += 1;
            for member in &mut members {
                member.read_to_fence(&fence).await;
            }
        }
        for member in &mut members {
            member.expect_quiet().await;
        }
        for (index, node) in cluster.nodes.iter().enumerate() {
            let stats = stats(*node).await;
            assert_eq!(stats.redis.published, published[index], "{node}: {stats:?}");
            assert_eq!(
                (
                    stats.redis.publish_failures,
                    stats.redis.rejected,
                    stats.redis.reconnects
                ),
                (0, 0, 0),
                "{node}: {stats:?}"
            );
        }
    });
}

#[test]
fn one_session_requests_find_their_node_and_a_missing_session_is_answered_at_once() {
    let cluster = Cluster::start(3);
    let (a, b, c) = (cluster.node(A), cluster.node(B), cluster.node(C));
    runtime().block_on(async {
        let mut redis = cluster.redis().await;
        let mut members = vec![
            Member::join("a1", a, "r1").await,
            Member::join("b1", b, "r1").await,
        ];
        // Requests travel on the channel every node listens to from its start.
        wait_for_listeners(&mut redis, "storex:sessions", 3).await;
        let b1 = members[1].session.clone();

        // A session on another node: its reply comes back, and its client sees the change.
        for (node, bumps) in [(a, 1), (c, 2), (b, 3)] {
            let (answer, _) = request(node, &b1, ROOM_STORE, "bump", json!([])).await;
            assert_eq!(answer.reply, Some(json!(bumps)), "from {node}: {answer:?}");
            assert_eq!(answer.error, None, "from {node}: {answer:?}");
            members[1].next_push().await;
            assert_eq!(members[1].state["bumps"], bumps);
        }

        // A mutation without a reply: `null`, and the change reaches the client.
        let (answer, _) = request(c, &members[0].session, ROOM_STORE, "say", json!(["hi"])).await;
        assert_eq!((answer.reply, answer.error), (None, None));
        members[0].next_push().await;
        assert_eq!(members[0].state["said"], json!(["hi"]));

        // Errors cross nodes with their kind.
        let (answer, _) = request(a, &b1, ROOM_STORE, "fail", json!(["not today"])).await;
        assert_eq!(answer.kind.as_deref(), Some("mutation"), "{answer:?}");
        assert!(
            answer
                .error
                .as_deref()
                .is_some_and(|e| e.contains("not today")),
            "{answer:?}"
        );
        let (answer, _) = request(c, &b1, "Bench.Counter", "increase", json!([])).await;
        assert_eq!(answer.kind.as_deref(), Some("not_joined"), "{answer:?}");
        let (answer, _) = request(a, &b1, ROOM_STORE, "no-such-mutation", json!([])).await;
        assert_eq!(answer.kind.as_deref(), Some("name"), "{answer:?}");

        // A session that is nowhere: every other node says it does not have it, and the answer
        // comes then, not when the find timeout ends it (that would be a `backplane` error).
        for node in [a, b, c] {
            let (answer, took) = request(node, "nobody-here", ROOM_STORE, "bump", json!([])).await;
            assert_eq!(
                answer.kind.as_deref(),
                Some("no_session"),
                "from {node}: {answer:?}"
            );
            assert_eq!(
                answer.error.as_deref(),
                Some(r#"no live session has the id "nobody-here""#)
            );
            assert!(
                took < FIND_TIMEOUT && Duration::from_micros(answer.elapsed_us) < FIND_TIMEOUT,
                "from {node}: answered in {took:?} ({} µs in the hub)",
                answer.elapsed_us
            );
        }

        // The failed mutations changed nothing, and nothing else was pushed.
        assert_eq!(members[1].state["bumps"], 3);
        for member in &mut members {
            member.expect_quiet().await;
        }
        for node in &cluster.nodes {
            let stats = stats(*node).await;
            assert_eq!(
                (stats.redis.publish_failures, stats.redis.rejected),
                (0, 0),
                "{node}: {stats:?}"
            );
        }
    });
}

#[test]
fn a_node_started_with_a_bad_redis_url_exits_and_says_why() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_storex-bench-server"))
        .args(["--redis", "http://127.0.0.1:6379/"])
        .output()
        .expect("run storex-bench-server");
    assert!(!output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("is not a Redis URL"), "{stderr}");
    assert!(output.stdout.is_empty(), "it never listened: {output:?}");
}
