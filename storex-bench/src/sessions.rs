//! Idle sessions and fan-out: N connections each joined to the counter, the server's resident
//! memory per session and the join rate; then one server-side mutation and the time until every
//! session received its push, each exactly once.
//!
//! [`run_on`] spreads the sessions over several cluster nodes (session `i` on node `i % nodes`)
//! and triggers the mutation on the first one: every session of every node must get its push.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::{mpsc, watch, Semaphore};

use crate::client::{self, Socket};
use crate::server::{unix_ns, Triggered};
use crate::stats::Percentiles;

/// One sessions (and fan-out) measure.
#[derive(Debug, Clone, Copy)]
pub struct Sessions {
    /// How many connections, each joined to the counter.
    pub sessions: usize,
    /// How many connections are being opened at once.
    pub concurrency: usize,
    /// Source addresses 127.0.0.2 … 127.0.0.(1 + sources), used in turn; 0: the default address.
    pub sources: u8,
    /// Whether to trigger the server-side mutation once every session is joined.
    pub fan_out: bool,
    /// Connect to the echo endpoint instead (one frame answered, no store; the fan-out pushes a
    /// fixed frame through a channel into each session's task): the stack's own memory per
    /// connection, connection rate and fan-out, the limit of the storex figures.
    pub echo: bool,
}

/// What a sessions measure found.
#[derive(Debug, Clone)]
pub struct SessionsReport {
    /// The measure.
    pub measure: Sessions,
    /// Sessions joined (each join answer verified).
    pub joined: usize,
    /// From the first connect to the last join answer.
    pub join_elapsed: Duration,
    /// The server's resident set before the first connection and after the last join, in KiB.
    pub rss_kib: Option<(u64, u64)>,
    /// The fan-out, when measured.
    pub fan_out: Option<FanOutReport>,
}

impl SessionsReport {
    /// Joins per second (connect, WebSocket upgrade, join and its answer).
    pub fn join_rate(&self) -> f64 {
        self.joined as f64 / self.join_elapsed.as_secs_f64().max(1e-9)
    }

    /// Resident bytes per joined session.
    pub fn rss_per_session(&self) -> Option<f64> {
        let (before, after) = self.rss_kib?;
        Some(after.saturating_sub(before) as f64 * 1024.0 / self.joined.max(1) as f64)
    }
}

/// The fan-out of one server-side mutation.
#[derive(Debug, Clone)]
pub struct FanOutReport {
    /// How many sessions `hub.mutate` reached.
    pub reached: usize,
    /// How many pushes arrived (each session exactly one, verified).
    pub pushes: usize,
    /// From the trigger to each session's push.
    pub latency: Percentiles,
}

enum Event {
    Joined(Instant),
    Pushed,
    Failed(String),
}

/// Runs one measure against `server`; `rss_kib` reads the server's resident set (None when the
/// server shares this process).
pub async fn run(
    server: SocketAddr,
    measure: Sessions,
    rss_kib: impl Fn() -> Option<u64>,
) -> Result<SessionsReport, String> {
    run_on(&[server], measure, rss_kib).await
}

/// How many of `sessions` go to node `node` of `nodes` when session `i` goes to node `i % nodes`.
pub fn share(sessions: usize, nodes: usize, node: usize) -> usize {
    match nodes {
        0 => 0,
        _ if node >= nodes => 0,
        _ => (sessions + nodes - 1 - node) / nodes,
    }
}

/// [`run`] with the sessions spread over `servers` (session `i` on `servers[i % len]`), the
/// mutation triggered on `servers[0]`; `rss_kib` reads the first server's resident set. With more
/// than one server they must be cluster nodes on one Redis (`storex-bench-server --redis URL`)
/// without sessions of the counter: before the trigger, every node that has sessions must listen
/// to the counter's channel (`GET /bench/cluster/stats`). Every session must get exactly one push;
/// the trigger must report the first node's share of the sessions reached (a node counts its own).
pub async fn run_on(
    servers: &[SocketAddr],
    measure: Sessions,
    rss_kib: impl Fn() -> Option<u64>,
) -> Result<SessionsReport, String> {
    if servers.is_empty() {
        return Err("no server to connect to".into());
    }
    // What each node listens to before its first session of the counter.
    let mut idle_subscriptions = Vec::new();
    if servers.len() > 1 {
        for &server in servers {
            idle_subscriptions.push(crate::cluster::stats(server).await?.redis.subscriptions);
        }
    }
    let before = rss_kib();
    let (events, mut event) = mpsc::unbounded_channel();
    let (stop, stopped) = watch::channel(false);
    let opening = Arc::new(Semaphore::new(measure.concurrency.max(1)));
    // Only echo sessions of a fan-out register for the echo's broadcast.
    let path = match (measure.echo, measure.fan_out) {
        (false, _) => "/storex",
        (true, false) => "/echo",
        (true, true) => "/echo?fan_out=1",
    };
    let started = Instant::now();
    let tasks: Vec<_> = (0..measure.sessions)
        .map(|index| {
            tokio::spawn(session(
                servers[index % servers.len()],
                source_address(index, measure.sources),
                opening.clone(),
                events.clone(),
                stopped.clone(),
                measure.echo,
                path,
            ))
        })
        .collect();
    drop(events);
    let cluster = Cluster {
        servers,
        idle_subscriptions: &idle_subscriptions,
    };
    let outcome = measure_joined(&cluster, measure, &mut event, started, &rss_kib, before).await;
    let _ = stop.send(true);
    let mut pushes = Vec::new();
    let mut first_error = None;
    for task in tasks {
        match tokio::time::timeout(client::PATIENCE, task).await {
            Ok(Ok(Ok(received))) => pushes.extend(received),
            Ok(Ok(Err(error))) => {
                first_error.get_or_insert(error);
            }
            Ok(Err(panic)) => {
                first_error.get_or_insert(format!("a session task failed: {panic}"));
            }
            Err(_) => {
                first_error.get_or_insert("a session task did not stop".to_owned());
            }
        }
    }
    let (mut report, triggered) = outcome?;
    if let Some(error) = first_error {
        return Err(error);
    }
    if let Some(triggered) = triggered {
        // The trigger's node counts only its own sessions.
        let reachable = share(measure.sessions, servers.len(), 0);
        if pushes.len() != measure.sessions || triggered.reached != reachable {
            return Err(format!(
                "{} pushes after reaching {} sessions, expected {} pushes and {reachable} reached",
                pushes.len(),
                triggered.reached,
                measure.sessions
            ));
        }
        let mut latencies: Vec<u64> = pushes
            .iter()
            .map(|at| at.saturating_sub(triggered.trigger_unix_ns))
            .collect();
        report.fan_out = Some(FanOutReport {
            reached: triggered.reached,
            pushes: pushes.len(),
            latency: Percentiles::of_nanos(&mut latencies),
        });
    } else if !pushes.is_empty() {
        return Err(format!("{} pushes without a trigger", pushes.len()));
    }
    Ok(report)
}

/// Waits for every join, reads the memory, triggers the fan-out and waits for every push.
/// The source address of client `index`: 127.0.0.2 … 127.0.0.(1 + sources) in turn; `None`
/// (the default address) when `sources` is 0.
pub(crate) fn source_address(index: usize, sources: u8) -> Option<Ipv4Addr> {
    (sources > 0).then(|| {
        let offset = u8::try_from(index % usize::from(sources)).unwrap_or(0);
        Ipv4Addr::new(127, 0, 0, 2 + offset)
    })
}

/// The servers of a measure and, for a cluster, what each listened to before the sessions.
struct Cluster<'a> {
    servers: &'a [SocketAddr],
    /// Empty for one server.
    idle_subscriptions: &'a [usize],
}

async fn measure_joined(
    cluster: &Cluster<'_>,
    measure: Sessions,
    events: &mut mpsc::UnboundedReceiver<Event>,
    started: Instant,
    rss_kib: &impl Fn() -> Option<u64>,
    before: Option<u64>,
) -> Result<(SessionsReport, Option<Triggered>), String> {
    let deadline = tokio::time::Instant::now() + client::PATIENCE * 4;
    let mut joined = 0;
    let mut last_join = started;
    while joined < measure.sessions {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(Event::Joined(at))) => {
                joined += 1;
                last_join = last_join.max(at);
            }
            Ok(Some(Event::Failed(error))) => return Err(error),
            Ok(Some(Event::Pushed)) => return Err("a push before the trigger".into()),
            Ok(None) => return Err("the session tasks ended early".into()),
            Err(_) => return Err(format!("only {joined} of {} joined", measure.sessions)),
        }
    }
    let join_elapsed = last_join - started;
    // Let the server finish what the joins left (buffers handed back, tasks parked) before reading.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let nodes = cluster.servers.len();
    for (node, &server) in cluster.servers.iter().enumerate() {
        let live = client::http(server, "GET", "/bench/sessions").await?;
        let expected = if measure.echo {
            0
        } else {
            share(measure.sessions, nodes, node)
        };
        if live["sessions"] != json!(expected) {
            return Err(format!(
                "the server {server} holds {} sessions, expected {expected}",
                live["sessions"]
            ));
        }
        // A node hears the others' mutations once Redis confirmed its subscription.
        if let Some(&idle) = cluster.idle_subscriptions.get(node) {
            if !measure.echo && expected > 0 {
                crate::cluster::wait_for(server, "listen to the counter's channel", |stats| {
                    stats.redis.subscriptions > idle
                })
                .await?;
            }
        }
    }
    let rss = before.zip(rss_kib());
    let report = SessionsReport {
        measure,
        joined,
        join_elapsed,
        rss_kib: rss,
        fan_out: None,
    };
    if !measure.fan_out {
        return Ok((report, None));
    }
    let trigger = if measure.echo {
        "/bench/echo-broadcast"
    } else {
        "/bench/mutate"
    };
    let server = cluster
        .servers
        .first()
        .copied()
        .ok_or_else(|| "no server to trigger".to_owned())?;
    let answer = client::http(server, "POST", trigger).await?;
    let triggered: Triggered =
        serde_json::from_value(answer).map_err(|e| format!("trigger answer: {e}"))?;
    let mut pushed = 0;
    while pushed < measure.sessions {
        match tokio::time::timeout_at(deadline + client::PATIENCE, events.recv()).await {
            Ok(Some(Event::Pushed)) => pushed += 1,
            Ok(Some(Event::Failed(error))) => return Err(error),
            Ok(Some(Event::Joined(_))) => return Err("a join after all joined".into()),
            Ok(None) => return Err("the session tasks ended early".into()),
            Err(_) => return Err(format!("only {pushed} of {} pushes", measure.sessions)),
        }
    }
    // A second push to any session would arrive within this grace; the tasks count them.
    tokio::time::sleep(Duration::from_millis(300)).await;
    Ok((report, Some(triggered)))
}

/// One session: connect, join, then wait for pushes until told to stop. Returns when each push
/// arrived (unix ns); more than one push is an error.
async fn session(
    server: SocketAddr,
    source: Option<Ipv4Addr>,
    opening: Arc<Semaphore>,
    events: mpsc::UnboundedSender<Event>,
    mut stopped: watch::Receiver<bool>,
    echo: bool,
    path: &'static str,
) -> Result<Option<u64>, String> {
    let opened = {
        let _permit = opening
            .acquire()
            .await
            .map_err(|_| "the semaphore closed".to_owned())?;
        match client::connect(server, path, source).await {
            Ok(mut socket) if echo => echo_once(&mut socket).await.map(|()| {
                let state = json!({"counter": 0});
                (socket, crate::server::FAKE_SESSION.to_owned(), state)
            }),
            Ok(mut socket) => client::join(&mut socket)
                .await
                .map(|(session, state)| (socket, session, state)),
            Err(error) => Err(error),
        }
    };
    let (mut socket, session, state) = match opened {
        Ok(opened) => opened,
        Err(error) => {
            let _ = events.send(Event::Failed(error.clone()));
            return Err(error);
        }
    };
    let _ = events.send(Event::Joined(Instant::now()));
    let received = wait_for_pushes(&mut socket, &session, state, &mut stopped, &events).await;
    if let Err(error) = &received {
        let _ = events.send(Event::Failed(error.clone()));
    }
    // A close frame: the session ends at once instead of waiting for a resume.
    let _ = socket.close(None).await;
    received
}

/// The echo's stand-in for a join: one frame of a join's size, answered.
async fn echo_once(socket: &mut Socket) -> Result<(), String> {
    let message = client::join_message(0);
    client::feed(socket, message.clone()).await?;
    client::flush(socket).await?;
    let answer = client::next_text(socket).await?;
    if answer != message {
        return Err(format!("the echo answered {answer}"));
    }
    Ok(())
}

async fn wait_for_pushes(
    socket: &mut Socket,
    session: &str,
    mut state: Value,
    stopped: &mut watch::Receiver<bool>,
    events: &mpsc::UnboundedSender<Event>,
) -> Result<Option<u64>, String> {
    let mut received = None;
    loop {
        tokio::select! {
            biased;
            _ = stopped.wait_for(|stop| *stop) => return Ok(received),
            frame = client::next_text_unbounded(socket) => {
                let at = unix_ns();
                let text = frame?;
                let push: Value =
                    serde_json::from_str(&text).map_err(|e| format!("push: {e}"))?;
                if push["type"] != "mutation"
                    || push["session"] != session
                    || !push["request"].is_null()
                {
                    return Err(format!("not a push of this session: {text}"));
                }
                if received.is_some() {
                    return Err(format!("a second push: {text}"));
                }
                client::apply_diff(&mut state, &push)?;
                if state != json!({"counter": 1}) {
                    return Err(format!("state {state} after the push"));
                }
                received = Some(at);
                let _ = events.send(Event::Pushed);
            }
        }
    }
}
