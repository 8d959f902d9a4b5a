//! Round trips: N connections, each committing M mutations with D of them in flight, against the
//! storex endpoint or the echo endpoint; every answer verified.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use storex::diff::{Change, PathSegment};
use storex::protocol::ServerMessage;
use tokio::sync::Barrier;

use crate::client::{self, Frames, Socket};
use crate::events::{self, EventSocket};
use crate::stats::Percentiles;

/// What the connections talk to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The storex endpoint: join the counter, commit `increase`.
    Storex,
    /// The echo endpoint: the same frames, answered by frames of a storex answer's size.
    Echo,
    /// The storex endpoint over the event-stream transport (`GET /storex/sse`, `POST`s).
    Events,
}

impl Target {
    /// The name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Target::Storex => "storex",
            Target::Echo => "echo",
            Target::Events => "storex (event stream)",
        }
    }
}

/// One round-trip measure.
#[derive(Debug, Clone, Copy)]
pub struct RoundTrip {
    /// Storex or echo.
    pub target: Target,
    /// How many connections.
    pub connections: usize,
    /// Mutations per connection.
    pub mutations: u64,
    /// How many requests each connection keeps in flight.
    pub depth: usize,
}

/// What a round-trip measure found. Every answer was verified, or the measure is an error.
#[derive(Debug, Clone)]
pub struct RoundTripReport {
    /// The measure.
    pub measure: RoundTrip,
    /// Answers received and verified.
    pub answers: u64,
    /// From the first request sent to the last answer received.
    pub elapsed: Duration,
    /// From each request's send to its answer.
    pub latency: Percentiles,
    /// What the [`CpuClock`] given to [`run_with_cpu`] counted from the moment every connection
    /// had joined to the moment every connection had its last answer (before any closed).
    pub cpu: Option<Duration>,
}

impl RoundTripReport {
    /// Answers per second.
    pub fn throughput(&self) -> f64 {
        self.answers as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// The size of a storex answer to an `increase` (the echo pads to it): the runtime's own encoder,
/// with a counter and request id of `mutations`'s digits.
pub fn storex_answer_len(mutations: u64) -> usize {
    let value = json!(mutations);
    let diff = [Change::Update {
        path: vec![PathSegment::Key("counter".into())],
        value: value.clone(),
    }];
    ServerMessage::Mutation {
        store: crate::server::STORE,
        session: crate::server::FAKE_SESSION,
        diff: &diff,
        message: None,
        request: Some(&value),
        // An epoch is 16 characters; the version grows with the count of mutations.
        epoch: Some("0123456789abcdef"),
        version: Some(mutations),
        replayed: false,
    }
    .encode()
    .len()
}

/// A CPU clock in nanoseconds, e.g. the server process's ([`process_cpu_ns`]); `None` when it
/// cannot be read.
pub type CpuClock = Arc<dyn Fn() -> Option<u64> + Send + Sync>;

/// The CPU time the threads of process `pid` have run so far, in nanoseconds: the sum of the
/// first field of `/proc/<pid>/task/*/schedstat` (threads that ended are not counted). `None`
/// where it cannot be read.
pub fn process_cpu_ns(pid: u32) -> Option<u64> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut total = 0_u64;
    for task in tasks.flatten() {
        // A thread may end between the listing and the read: it no longer counts.
        let Ok(stat) = std::fs::read_to_string(task.path().join("schedstat")) else {
            continue;
        };
        total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(total)
}

/// A [`CpuClock`] read when every connection of a measure has joined and again when every one
/// has had its last answer: the CPU the measured part took.
pub struct CpuWindow {
    clock: CpuClock,
    start: OnceLock<Option<u64>>,
    end: OnceLock<Option<u64>>,
    /// Every connection waits here after its last answer (or its error), before it closes.
    done: tokio::sync::Barrier,
}

impl std::fmt::Debug for CpuWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CpuWindow")
            .field("start", &self.start)
            .field("end", &self.end)
            .finish_non_exhaustive()
    }
}

impl CpuWindow {
    /// A window over `connections` connections, or none without a clock.
    pub fn new(clock: Option<CpuClock>, connections: usize) -> Option<Arc<Self>> {
        clock.map(|clock| {
            Arc::new(CpuWindow {
                clock,
                start: OnceLock::new(),
                end: OnceLock::new(),
                done: tokio::sync::Barrier::new(connections),
            })
        })
    }

    /// Called by the leader of the barrier every connection passes once joined.
    pub fn started(&self) {
        let _ = self.start.set((self.clock)());
    }

    /// Called by every connection after its last answer: the last one to come reads the clock.
    pub async fn finished(&self) {
        if self.done.wait().await.is_leader() {
            let _ = self.end.set((self.clock)());
        }
    }

    /// The CPU time between the two readings.
    pub fn elapsed(&self) -> Option<Duration> {
        let start = (*self.start.get()?)?;
        let end = (*self.end.get()?)?;
        Some(Duration::from_nanos(end.saturating_sub(start)))
    }
}

struct Connection {
    answers: u64,
    started: Instant,
    finished: Instant,
    latencies: Vec<u64>,
}

/// Runs one measure against `server`.
pub async fn run(server: SocketAddr, measure: RoundTrip) -> Result<RoundTripReport, String> {
    run_with_cpu(server, measure, None).await
}

/// [`run`], with the CPU time `clock` counts during the measured part in the report.
pub async fn run_with_cpu(
    server: SocketAddr,
    measure: RoundTrip,
    clock: Option<CpuClock>,
) -> Result<RoundTripReport, String> {
    let barrier = Arc::new(Barrier::new(measure.connections));
    let window = CpuWindow::new(clock, measure.connections);
    let tasks: Vec<_> = (0..measure.connections)
        .map(|_| tokio::spawn(connection(server, measure, barrier.clone(), window.clone())))
        .collect();
    let connections = gather(tasks).await?;
    let elapsed = span(connections.iter().map(|c| (c.started, c.finished)));
    let answers = connections.iter().map(|c| c.answers).sum();
    let expected = measure.mutations * measure.connections as u64;
    if answers != expected {
        return Err(format!("{answers} answers, expected {expected}"));
    }
    let mut latencies: Vec<u64> = connections.into_iter().flat_map(|c| c.latencies).collect();
    Ok(RoundTripReport {
        measure,
        answers,
        elapsed,
        latency: Percentiles::of_nanos(&mut latencies),
        cpu: window.and_then(|window| window.elapsed()),
    })
}

async fn connection(
    server: SocketAddr,
    measure: RoundTrip,
    barrier: Arc<Barrier>,
    window: Option<Arc<CpuWindow>>,
) -> Result<Connection, String> {
    let mut socket = match measure.target {
        Target::Storex => client::connect(server, "/storex", None).await.map(Link::Ws),
        Target::Echo => {
            let path = format!("/echo?pad={}", storex_answer_len(measure.mutations));
            client::connect(server, &path, None).await.map(Link::Ws)
        }
        Target::Events => events::open(server, "/storex").await.map(Link::Events),
    };
    let joined = match &mut socket {
        Ok(socket) => match measure.target {
            Target::Storex | Target::Events => client::join(socket).await.map(Some),
            Target::Echo => Ok(None),
        },
        Err(error) => Err(error.clone()),
    };
    // Everyone waits, even a connection that failed, so that the others are not stuck.
    let leader = barrier.wait().await.is_leader();
    if let (true, Some(window)) = (leader, &window) {
        window.started();
    }
    let outcome = match (socket, joined) {
        (Ok(mut socket), Ok(joined)) => {
            let (session, state) = match joined {
                Some((session, state)) => (session, Some(state)),
                None => (crate::server::FAKE_SESSION.to_owned(), None),
            };
            let outcome = pipeline(&mut socket, measure, &session, state).await;
            Ok((socket, outcome))
        }
        (Err(error), _) | (_, Err(error)) => Err(error),
    };
    // Everyone waits here too, a failed connection as well, when the CPU is read.
    if let Some(window) = &window {
        window.finished().await;
    }
    let (socket, outcome) = outcome?;
    socket.close().await;
    outcome
}

/// A connection of either transport.
enum Link {
    Ws(Socket),
    Events(EventSocket),
}

impl Link {
    async fn close(self) {
        match self {
            Link::Ws(mut socket) => {
                let _ = socket.close(None).await;
            }
            Link::Events(socket) => socket.close().await,
        }
    }
}

impl Frames for Link {
    async fn queue(&mut self, text: String) -> Result<(), String> {
        match self {
            Link::Ws(socket) => socket.queue(text).await,
            Link::Events(socket) => socket.queue(text).await,
        }
    }

    async fn push_out(&mut self) -> Result<(), String> {
        match self {
            Link::Ws(socket) => socket.push_out().await,
            Link::Events(socket) => socket.push_out().await,
        }
    }

    async fn next_frame(&mut self) -> Result<String, String> {
        match self {
            Link::Ws(socket) => socket.next_frame().await,
            Link::Events(socket) => socket.next_frame().await,
        }
    }
}

async fn pipeline(
    socket: &mut impl Frames,
    measure: RoundTrip,
    session: &str,
    mut state: Option<Value>,
) -> Result<Connection, String> {
    let total = measure.mutations;
    let mut in_flight: VecDeque<(u64, Instant)> = VecDeque::with_capacity(measure.depth);
    let mut latencies = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    let mut next_request = 1;
    let started = Instant::now();
    while next_request <= total && in_flight.len() < measure.depth.max(1) {
        socket
            .queue(client::mutation_message(session, next_request))
            .await?;
        in_flight.push_back((next_request, Instant::now()));
        next_request += 1;
    }
    socket.push_out().await?;
    let mut answers = 0;
    while let Some((request, sent)) = in_flight.pop_front() {
        let text = socket.next_frame().await?;
        latencies.push(u64::try_from(sent.elapsed().as_nanos()).unwrap_or(u64::MAX));
        let answer: Value = serde_json::from_str(&text).map_err(|e| format!("answer: {e}"))?;
        // One session answers in order: the next answer must be the oldest request's.
        if answer["request"] != request {
            return Err(format!(
                "expected the answer to request {request}, got {text}"
            ));
        }
        if let Some(state) = &mut state {
            if answer["type"] != "mutation" || answer["session"] != session {
                return Err(format!("not a mutation answer of this session: {text}"));
            }
            client::apply_diff(state, &answer)?;
            if state["counter"] != request {
                return Err(format!(
                    "the counter is {} after request {request}",
                    state["counter"]
                ));
            }
        }
        answers += 1;
        if next_request <= total {
            socket
                .queue(client::mutation_message(session, next_request))
                .await?;
            socket.push_out().await?;
            in_flight.push_back((next_request, Instant::now()));
            next_request += 1;
        }
    }
    let finished = Instant::now();
    // A fence: nothing may arrive between the last answer and the ping's answer.
    socket.queue(client::fence_message()).await?;
    socket.push_out().await?;
    let text = socket.next_frame().await?;
    let fence: Value = serde_json::from_str(&text).map_err(|e| format!("fence: {e}"))?;
    if fence["request"] != "fence" {
        return Err(format!("an extra frame after the last answer: {text}"));
    }
    if let Some(state) = &state {
        if *state != json!({ "counter": total }) {
            return Err(format!("final state {state}, expected counter {total}"));
        }
    }
    Ok(Connection {
        answers,
        started,
        finished,
        latencies,
    })
}

/// Waits for every connection task: their results, or the first error (or panic) met.
pub(crate) async fn gather<T>(
    tasks: Vec<tokio::task::JoinHandle<Result<T, String>>>,
) -> Result<Vec<T>, String> {
    let mut done = Vec::with_capacity(tasks.len());
    let mut first_error = None;
    for task in tasks {
        match task.await {
            Ok(Ok(value)) => done.push(value),
            Ok(Err(error)) => {
                first_error.get_or_insert(error);
            }
            Err(panic) => {
                first_error.get_or_insert(format!("a connection task failed: {panic}"));
            }
        }
    }
    match first_error {
        Some(error) => Err(error),
        None => Ok(done),
    }
}

/// From the first start to the last finish of `(start, finish)` pairs; zero for none.
pub(crate) fn span(times: impl Iterator<Item = (Instant, Instant)>) -> Duration {
    let (mut first, mut last) = (None::<Instant>, None::<Instant>);
    for (started, finished) in times {
        first = Some(first.map_or(started, |first| first.min(started)));
        last = Some(last.map_or(finished, |last| last.max(finished)));
    }
    match (first, last) {
        (Some(first), Some(last)) => last - first,
        _ => Duration::ZERO,
    }
}
