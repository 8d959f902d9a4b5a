//! A node killed with SIGKILL under load, in durable mode: two `storex-bench-server` processes
//! on one real Redis (`--redis URL`, `STOREX_BENCH_DURABLE=1`, one resume key), clients on the
//! first committing with several mutations in flight; the first node is killed; every client
//! reconnects to the second (as a load balancer would send it), resumes its session there, sends
//! again what was not answered with the same request ids, and goes on. In the end each client's
//! state is exactly its acknowledged mutations, in order: none lost, none applied twice.

// A test states what it expects by panicking on anything else.
#![allow(clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use storex_bench::client::{self, Socket};
use storex_bench::server::SOAK_STORE;
use storex_bench::services::RedisServer;
use storex_bench::soak::value;

use common::{runtime, ServerProcess};

const CLIENTS: usize = 12;
const MUTATIONS: u64 = 80;
/// Mutations each client keeps in flight.
const WINDOW: u64 = 4;
/// The node dies once the clients have this many acknowledged mutations together.
const KILL_AFTER: u64 = CLIENTS as u64 * 25;
const PATIENCE: Duration = Duration::from_secs(30);
const RESUME_KEY: &str = "the failover test's cluster key";

fn node(redis: &RedisServer) -> ServerProcess {
    ServerProcess::spawn_with_env(
        &["--workers", "1", "--redis", &redis.url()],
        &[
            ("STOREX_BENCH_DURABLE", "1"),
            ("STOREX_BENCH_RESUME_KEY", RESUME_KEY),
        ],
    )
}

/// One client's view: its session, what it holds of the store, what is in flight.
struct Mirror {
    index: usize,
    session: String,
    token: String,
    epoch: String,
    version: u64,
    state: Value,
    /// Sent and not answered: request id → value.
    in_flight: BTreeMap<u64, u64>,
    next: u64,
    acknowledged: u64,
    resumed: bool,
}

impl Mirror {
    fn commit(&mut self, seq: u64) -> String {
        let n = value(self.index, seq);
        self.in_flight.insert(seq, n);
        json!({"type": "mutation", "store": SOAK_STORE, "session": self.session,
            "data": {"name": "append", "data": [n]}, "request": seq})
        .to_string()
    }

    /// Applies a frame that carries a diff (an answer, a push, a resume's store).
    fn apply(&mut self, frame: &Value) -> Result<(), String> {
        client::apply_diff(&mut self.state, frame)?;
        if let Some(version) = frame["version"].as_u64() {
            self.version = self.version.max(version);
        }
        Ok(())
    }
}

async fn send(socket: &mut Socket, text: String) -> Result<(), String> {
    client::feed(socket, text).await?;
    client::flush(socket).await
}

async fn next_json(socket: &mut Socket) -> Result<Value, String> {
    let text = client::next_text(socket).await?;
    serde_json::from_str(&text).map_err(|e| format!("{e}: {text}"))
}

/// Commits until every mutation is acknowledged; on a dead connection, resumes on `standby`.
async fn run_client(
    index: usize,
    first: SocketAddr,
    standby: SocketAddr,
    acked_total: Arc<AtomicU64>,
) -> Result<Mirror, String> {
    let mut socket = client::connect(first, "/storex", None).await?;
    send(
        &mut socket,
        json!({"type": "join", "store": SOAK_STORE, "data": {}, "request": 0}).to_string(),
    )
    .await?;
    let joined = next_json(&mut socket).await?;
    let mut mirror = Mirror {
        index,
        session: joined["session"].as_str().ok_or("a session")?.to_owned(),
        token: joined["token"].as_str().ok_or("a token")?.to_owned(),
        epoch: joined["epoch"].as_str().ok_or("an epoch")?.to_owned(),
        version: joined["version"].as_u64().ok_or("a version")?,
        state: joined["data"].clone(),
        in_flight: BTreeMap::new(),
        next: 1,
        acknowledged: 0,
        resumed: false,
    };
    while mirror.acknowledged < MUTATIONS {
        while mirror.next <= MUTATIONS && (mirror.in_flight.len() as u64) < WINDOW {
            let text = mirror.commit(mirror.next);
            mirror.next += 1;
            if send(&mut socket, text).await.is_err() {
                break;
            }
        }
        let frame = match next_json(&mut socket).await {
            Ok(frame) => frame,
            Err(_gone) => {
                socket = resume(&mut mirror, standby).await?;
                continue;
            }
        };
        if frame["type"] != "mutation" {
            return Err(format!("client {index}: {frame}"));
        }
        let seq = frame["request"]
            .as_u64()
            .ok_or_else(|| format!("client {index}: a push: {frame}"))?;
        mirror
            .in_flight
            .remove(&seq)
            .ok_or_else(|| format!("client {index}: an answer to no request in flight: {frame}"))?;
        mirror.apply(&frame)?;
        mirror.acknowledged += 1;
        acked_total.fetch_add(1, Ordering::Relaxed);
    }
    // The server's state is the mirror's: asked again on the same connection.
    send(
        &mut socket,
        json!({"type": "join", "store": SOAK_STORE, "data": {}, "request": "check"}).to_string(),
    )
    .await?;
    let check = next_json(&mut socket).await?;
    if check["data"] != mirror.state {
        return Err(format!(
            "client {index}: the server holds {} but the client {}",
            check["data"], mirror.state
        ));
    }
    Ok(mirror)
}

/// Resumes the session on `standby` and sends again what is in flight.
async fn resume(mirror: &mut Mirror, standby: SocketAddr) -> Result<Socket, String> {
    let mut socket = client::connect(standby, "/storex", None).await?;
    let request = json!({"type": "resume", "session": mirror.session, "token": mirror.token,
        "stores": [{"store": SOAK_STORE, "epoch": mirror.epoch, "version": mirror.version}],
        "request": "resume"});
    send(&mut socket, request.to_string()).await?;
    let answer = next_json(&mut socket).await?;
    if answer["resumed"] != true {
        return Err(format!(
            "client {}: the resume on the standby was refused: {answer}",
            mirror.index
        ));
    }
    mirror.resumed = true;
    let store = &answer["stores"][0];
    if let Some(data) = store.get("data").filter(|data| !data.is_null()) {
        mirror.state = data.clone();
    } else {
        mirror.apply(store)?;
    }
    if let Some(version) = store["version"].as_u64() {
        mirror.version = version;
    }
    let again: Vec<String> = mirror
        .in_flight
        .keys()
        .copied()
        .collect::<Vec<_>>()
        .into_iter()
        .map(|seq| mirror.commit(seq))
        .collect();
    for text in again {
        send(&mut socket, text).await?;
    }
    Ok(socket)
}

#[test]
fn a_node_killed_under_load_loses_no_acknowledged_mutation_of_a_durable_session() {
    let redis = RedisServer::start().expect("start redis-server");
    let mut first = node(&redis);
    let mut standby = node(&redis);
    let (first_addr, standby_addr) = (first.addr(), standby.addr());
    let acked_total = Arc::new(AtomicU64::new(0));
    let mirrors = runtime().block_on(async {
        let clients: Vec<_> = (0..CLIENTS)
            .map(|index| {
                tokio::spawn(run_client(
                    index,
                    first_addr,
                    standby_addr,
                    acked_total.clone(),
                ))
            })
            .collect();
        // Under load: the node dies while every client has mutations in flight.
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while acked_total.load(Ordering::Relaxed) < KILL_AFTER {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the clients did not reach {KILL_AFTER} acknowledged mutations"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        first.kill();
        let mut mirrors = Vec::new();
        for client in clients {
            let mirror = tokio::time::timeout(PATIENCE, client)
                .await
                .expect("every client finishes")
                .expect("the client task ran")
                .unwrap_or_else(|error| panic!("{error}"));
            mirrors.push(mirror);
        }
        mirrors
    });
    let mut moved = 0;
    for mirror in &mirrors {
        let expected: Vec<u64> = (1..=MUTATIONS)
            .map(|seq| value(mirror.index, seq))
            .collect();
        assert_eq!(
            mirror.state["mine"],
            json!(expected),
            "client {}: every acknowledged mutation once, in order",
            mirror.index
        );
        moved += usize::from(mirror.resumed);
    }
    // Every client was still committing when the node died (KILL_AFTER is below the total).
    assert_eq!(moved, CLIENTS, "every session resumed on the standby");
}
