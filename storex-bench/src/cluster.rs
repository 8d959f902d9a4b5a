//! Several nodes on one Redis (issue 11): what the `cluster` scenario measures besides the
//! fan-out over several nodes ([`crate::sessions::run_on`]).
//!
//! - [`mutate_latency`]: one session of the counter on a node; `--samples` times in a row, a
//!   server-side mutation triggered on a node (the same one, or another: then the mutation
//!   reaches the session through Redis), and the time from the trigger to the push's arrival.
//!   Every push is verified (the session's, no request, the diff gives the next count), and a
//!   push more than one per trigger is an error.
//! - [`stats`], [`wait_for`]: a node's backplane counters (`GET /bench/cluster/stats`) and waiting
//!   for a condition on them (a node hears the others' mutations once Redis confirmed its
//!   subscription; it subscribes after its first session of a store joined, on its own time).

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{json, Value};

use crate::client::{self, Socket};
use crate::server::{unix_ns, ClusterStats, Triggered};
use crate::stats::Percentiles;

/// How long a second push to a session would take at most to show up (as in the fan-out).
const GRACE: Duration = Duration::from_millis(300);

/// The backplane's counters of cluster node `node`.
pub async fn stats(node: SocketAddr) -> Result<ClusterStats, String> {
    let answer = client::http(node, "GET", "/bench/cluster/stats")
        .await
        .map_err(|error| format!("{error} (is {node} a cluster node, --redis URL?)"))?;
    serde_json::from_value(answer).map_err(|error| format!("stats of {node}: {error}"))
}

/// Waits (within [`client::PATIENCE`]) until `node`'s counters satisfy `condition`; `what` says
/// what for, in the error. The counters that satisfied it.
pub async fn wait_for(
    node: SocketAddr,
    what: &str,
    condition: impl Fn(&ClusterStats) -> bool,
) -> Result<ClusterStats, String> {
    let deadline = tokio::time::Instant::now() + client::PATIENCE;
    loop {
        let now = stats(node).await?;
        if condition(&now) {
            return Ok(now);
        }
        if tokio::time::Instant::now() > deadline {
            return Err(format!(
                "{node} did not {what} within {:?}: {now:?}",
                client::PATIENCE
            ));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// What [`mutate_latency`] found.
#[derive(Debug, Clone)]
pub struct LatencyReport {
    /// Whether the session was on the trigger's node.
    pub local: bool,
    /// Pushes received and verified (one per trigger).
    pub pushes: usize,
    /// From each trigger (the Unix ns its node noted before `hub.mutate`) to its push's arrival.
    pub latency: Percentiles,
}

/// One session of the counter on `session_node`, then `samples` triggers in a row on `trigger`
/// (`POST /bench/mutate`), each waiting for its push before the next. Both must be cluster nodes
/// on one Redis, and `session_node` must have no session at the start; it has none again, and
/// listens to what it listened to before, when this returns. Verified: each trigger reaches the
/// trigger node's own sessions (1 when the session is there, else 0), each push is the session's
/// (no request) and its diff gives the next count, and no push comes more than once.
pub async fn mutate_latency(
    trigger: SocketAddr,
    session_node: SocketAddr,
    samples: usize,
) -> Result<LatencyReport, String> {
    let idle = stats(session_node).await?;
    if idle.sessions != 0 {
        return Err(format!(
            "{session_node} has {} sessions before the measure",
            idle.sessions
        ));
    }
    let mut socket = client::connect(session_node, "/storex", None).await?;
    let outcome = measure(
        &mut socket,
        trigger,
        session_node,
        samples,
        idle.redis.subscriptions,
    )
    .await;
    // A close frame: the session ends at once instead of waiting for a resume.
    let _ = socket.close(None).await;
    let report = outcome?;
    // The next measure starts on a node without the session and its subscription.
    wait_for(session_node, "drop the session and its channel", |now| {
        now.sessions == 0 && now.redis.subscriptions == idle.redis.subscriptions
    })
    .await?;
    Ok(report)
}

async fn measure(
    socket: &mut Socket,
    trigger: SocketAddr,
    session_node: SocketAddr,
    samples: usize,
    idle_subscriptions: usize,
) -> Result<LatencyReport, String> {
    let (session, mut state) = client::join(socket).await?;
    wait_for(session_node, "listen to the counter's channel", |now| {
        now.redis.subscriptions > idle_subscriptions
    })
    .await?;
    let local = trigger == session_node;
    let reachable = usize::from(local);
    let mut latencies = Vec::with_capacity(samples);
    for sample in 1..=samples {
        // The push may arrive before the trigger's answer: read both at once.
        let (answer, push) = tokio::join!(client::http(trigger, "POST", "/bench/mutate"), async {
            let text = client::next_text(socket).await?;
            Ok::<_, String>((unix_ns(), text))
        });
        let triggered: Triggered =
            serde_json::from_value(answer?).map_err(|e| format!("trigger answer: {e}"))?;
        if triggered.reached != reachable {
            return Err(format!(
                "trigger {sample} reached {} sessions on {trigger}, expected {reachable}",
                triggered.reached
            ));
        }
        let (at, text) = push?;
        let push: Value = serde_json::from_str(&text).map_err(|e| format!("push: {e}"))?;
        if push["type"] != "mutation" || push["session"] != session || !push["request"].is_null() {
            return Err(format!("not a push of this session: {text}"));
        }
        client::apply_diff(&mut state, &push)?;
        if state != json!({ "counter": sample }) {
            return Err(format!(
                "state {state} after push {sample} (a push lost or twice): {text}"
            ));
        }
        latencies.push(at.saturating_sub(triggered.trigger_unix_ns));
    }
    // A second push of the last trigger would arrive within the grace.
    match tokio::time::timeout(GRACE, client::next_text_unbounded(socket)).await {
        Err(_) => {}
        Ok(Ok(text)) => return Err(format!("a push after the last trigger's: {text}")),
        Ok(Err(error)) => return Err(error),
    }
    Ok(LatencyReport {
        local,
        pushes: latencies.len(),
        latency: Percentiles::of_nanos(&mut latencies),
    })
}
