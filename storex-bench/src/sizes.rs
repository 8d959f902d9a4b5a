//! Round trips against a store of N rows (issue "Mutations that cost what they change"): N
//! connections each join `Bench.Table` (rows in a tracked [`storex::List`]) or `Bench.TableVec`
//! (the same rows in a plain `Vec`) with `{"items": N}`, wait at a barrier, then commit M `touch`
//! each, with D of them in flight, at indexes spread over the whole table. Every answer is
//! verified: it answers the oldest request in flight, and its diff is exactly one change, the
//! update of `["items", i, "touches"]` to one more than the client counted for row `i` (`i` the
//! index modulo N, as the server computes it); a ping after the last answer must be answered
//! next. The join answer is verified too: N rows, each `Row::new(i)`.
//!
//! Throughput = answers / (last answer − first send); latency = send → answer of each request,
//! as in [`crate::round_trip`]. The scenario (`storex-bench --scenario sizes`) alternates the sizes
//! and both stores in one run and reports each size's throughput as a ratio to the smallest
//! size's with the tracked list.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{json, Value};
use storex::diff::{Change, PathSegment};
use tokio::sync::Barrier;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::client::{self, Socket};
use crate::round_trip::{gather, span, CpuClock, CpuWindow};
use crate::server::{touched, Row, MAX_TABLE_ITEMS, TABLE_STORE, TABLE_VEC_STORE};
use crate::stats::Percentiles;

/// Which of the two table stores the connections join.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// `Bench.Table`: the rows in a tracked `storex::List`.
    List,
    /// `Bench.TableVec`: the rows in a plain `Vec`, copied and diffed whole by every mutation.
    Vec,
}

impl Table {
    /// The store's name.
    pub fn store(self) -> &'static str {
        match self {
            Table::List => TABLE_STORE,
            Table::Vec => TABLE_VEC_STORE,
        }
    }

    /// The name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Table::List => "List",
            Table::Vec => "Vec",
        }
    }
}

/// One measure: connections × mutations against a table of `items` rows.
#[derive(Debug, Clone, Copy)]
pub struct TableRoundTrip {
    /// List or Vec.
    pub table: Table,
    /// The rows each connection's instance holds (1 to [`MAX_TABLE_ITEMS`]).
    pub items: u64,
    /// How many connections.
    pub connections: usize,
    /// `touch` mutations per connection.
    pub mutations: u64,
    /// How many requests each connection keeps in flight.
    pub depth: usize,
}

/// What a table measure found. Every answer was verified, or the measure is an error.
#[derive(Debug, Clone)]
pub struct TableReport {
    /// The measure.
    pub measure: TableRoundTrip,
    /// Answers received and verified.
    pub answers: u64,
    /// From the first request sent to the last answer received.
    pub elapsed: Duration,
    /// From each request's send to its answer.
    pub latency: Percentiles,
    /// From the first connect to the last verified join answer (not part of the throughput).
    pub joins: Duration,
    /// What the clock given to [`run`] counted from the moment every connection had joined to
    /// the moment every connection had its last answer (before any closed).
    pub cpu: Option<Duration>,
}

impl TableReport {
    /// Answers per second.
    pub fn throughput(&self) -> f64 {
        self.answers as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// The join message of a table of `items` rows.
pub fn join_message(table: Table, items: u64) -> String {
    format!(
        r#"{{"type":"join","store":"{}","data":{{"items":{items}}},"request":0}}"#,
        table.store()
    )
}

/// The message committing `touch(index)` with request id `request`.
pub fn touch_message(table: Table, session: &str, index: u64, request: u64) -> String {
    format!(
        r#"{{"type":"mutation","store":"{}","session":"{session}","data":{{"name":"touch","data":[{index}]}},"request":{request}}}"#,
        table.store()
    )
}

/// The index connection `connection` touches with its request `request`: spread over all of
/// u64 (splitmix64), so that the rows touched are spread over the whole table.
pub fn touch_index(connection: usize, request: u64) -> u64 {
    let mut z = (((connection as u64) << 40) ^ request).wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Opens a WebSocket to the storex endpoint whose messages may be as large as a join answer of
/// [`MAX_TABLE_ITEMS`] rows (tungstenite's default limits are 16 MiB a frame, 64 MiB a
/// message; a million rows are about 75 MB of JSON). The read buffer is the 4 KiB of
/// [`client::connect`]: tungstenite zeroes up to that much of it before every read, and after a
/// large join answer its capacity would allow a larger one to be zeroed per answer.
pub async fn connect(server: SocketAddr) -> Result<Socket, String> {
    let config = WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .max_frame_size(None)
        .max_message_size(None);
    client::connect_with(server, "/storex", None, config).await
}

#[derive(Deserialize)]
struct JoinAnswer {
    #[serde(rename = "type")]
    kind: String,
    store: String,
    session: String,
    request: Value,
    data: TableState,
}

#[derive(Deserialize)]
struct TableState {
    items: Vec<Row>,
}

/// Joins `table` with `items` rows; the session id. Verifies the answer: every row is
/// `Row::new(i)`.
pub async fn join(socket: &mut Socket, table: Table, items: u64) -> Result<String, String> {
    client::feed(socket, join_message(table, items)).await?;
    client::flush(socket).await?;
    let text = client::next_text(socket).await?;
    let excerpt = || text.chars().take(300).collect::<String>();
    let answer: JoinAnswer = serde_json::from_str(&text)
        .map_err(|e| format!("join answer of {}: {e}: {}", table.store(), excerpt()))?;
    if answer.kind != "join" || answer.request != 0 || answer.store != table.store() {
        return Err(format!("unexpected join answer: {}", excerpt()));
    }
    if answer.data.items.len() as u64 != items {
        return Err(format!(
            "{} joined with {} rows, asked for {items}",
            table.store(),
            answer.data.items.len()
        ));
    }
    for (id, row) in (0..).zip(&answer.data.items) {
        if *row != Row::new(id) {
            return Err(format!("row {id} of the join answer is {row:?}"));
        }
    }
    Ok(answer.session)
}

/// Checks that `answer` is the answer to request `request` of `session` and that its diff is
/// exactly one change: `["items", position, "touches"]` updated to `touches`.
pub fn check_touch(
    answer: &Value,
    session: &str,
    request: u64,
    position: usize,
    touches: u64,
) -> Result<(), String> {
    if answer["request"] != request {
        return Err(format!(
            "expected the answer to request {request}, got {answer}"
        ));
    }
    if answer["type"] != "mutation" || answer["session"] != session {
        return Err(format!("not a mutation answer of this session: {answer}"));
    }
    let changes = client::changes(&answer["diff"])?;
    let path = [
        PathSegment::Key("items".into()),
        PathSegment::Index(position),
        PathSegment::Key("touches".into()),
    ];
    match changes.as_slice() {
        [Change::Update { path: at, value }] if *at == path && *value == json!(touches) => Ok(()),
        _ => Err(format!(
            "expected one change, items[{position}].touches = {touches}; got {answer}"
        )),
    }
}

struct Connection {
    answers: u64,
    started: Instant,
    finished: Instant,
    latencies: Vec<u64>,
    joined: Instant,
}

/// Runs one measure against `server`; with a `clock` (e.g. the server process's CPU, see
/// [`crate::round_trip::process_cpu_ns`]), the CPU time it counted during the measured part.
pub async fn run(
    server: SocketAddr,
    measure: TableRoundTrip,
    clock: Option<CpuClock>,
) -> Result<TableReport, String> {
    if !(1..=MAX_TABLE_ITEMS).contains(&measure.items) {
        return Err(format!(
            "a table holds 1 to {MAX_TABLE_ITEMS} rows, not {}",
            measure.items
        ));
    }
    let barrier = Arc::new(Barrier::new(measure.connections));
    let window = CpuWindow::new(clock, measure.connections);
    let first_connect = Instant::now();
    let tasks: Vec<_> = (0..measure.connections)
        .map(|number| {
            let (barrier, window) = (barrier.clone(), window.clone());
            tokio::spawn(connection(server, measure, number, barrier, window))
        })
        .collect();
    let connections = gather(tasks).await?;
    let elapsed = span(connections.iter().map(|c| (c.started, c.finished)));
    let joins = connections
        .iter()
        .map(|c| c.joined - first_connect)
        .max()
        .unwrap_or_default();
    let answers = connections.iter().map(|c| c.answers).sum();
    let expected = measure.mutations * measure.connections as u64;
    if answers != expected {
        return Err(format!("{answers} answers, expected {expected}"));
    }
    let mut latencies: Vec<u64> = connections.into_iter().flat_map(|c| c.latencies).collect();
    Ok(TableReport {
        measure,
        answers,
        elapsed,
        latency: Percentiles::of_nanos(&mut latencies),
        joins,
        cpu: window.and_then(|window| window.elapsed()),
    })
}

async fn connection(
    server: SocketAddr,
    measure: TableRoundTrip,
    number: usize,
    barrier: Arc<Barrier>,
    window: Option<Arc<CpuWindow>>,
) -> Result<Connection, String> {
    let mut socket = connect(server).await;
    let joined = match &mut socket {
        Ok(socket) => join(socket, measure.table, measure.items).await,
        Err(error) => Err(error.clone()),
    };
    let joined_at = Instant::now();
    // Everyone waits, even a connection that failed, so that the others are not stuck.
    let leader = barrier.wait().await.is_leader();
    if let (true, Some(window)) = (leader, &window) {
        window.started();
    }
    let outcome = match (socket, joined) {
        (Ok(mut socket), Ok(session)) => {
            let outcome = pipeline(&mut socket, measure, number, &session, joined_at).await;
            Ok((socket, outcome))
        }
        (Err(error), _) | (_, Err(error)) => Err(error),
    };
    // Everyone waits here too, a failed connection as well, when the CPU is read (closing a
    // session drops its table: not part of the measure).
    if let Some(window) = &window {
        window.finished().await;
    }
    let (mut socket, outcome) = outcome?;
    let _ = socket.close(None).await;
    outcome
}

async fn pipeline(
    socket: &mut Socket,
    measure: TableRoundTrip,
    number: usize,
    session: &str,
    joined: Instant,
) -> Result<Connection, String> {
    let total = measure.mutations;
    let len = usize::try_from(measure.items).map_err(|_| "too many rows for this machine")?;
    // What the client counts per row: the server's `touches` must follow it exactly.
    let mut touches = vec![0_u64; len];
    let mut in_flight: VecDeque<(u64, usize, Instant)> = VecDeque::with_capacity(measure.depth);
    let mut latencies = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    let mut next_request = 1;
    let send = |request: u64| {
        let index = touch_index(number, request);
        (
            touch_message(measure.table, session, index, request),
            touched(index, len),
        )
    };
    let started = Instant::now();
    while next_request <= total && in_flight.len() < measure.depth.max(1) {
        let (message, position) = send(next_request);
        client::feed(socket, message).await?;
        in_flight.push_back((next_request, position, Instant::now()));
        next_request += 1;
    }
    client::flush(socket).await?;
    let mut answers = 0;
    while let Some((request, position, sent)) = in_flight.pop_front() {
        let text = client::next_text(socket).await?;
        latencies.push(u64::try_from(sent.elapsed().as_nanos()).unwrap_or(u64::MAX));
        let answer: Value = serde_json::from_str(&text).map_err(|e| format!("answer: {e}"))?;
        let count = touches
            .get_mut(position)
            .ok_or_else(|| format!("row {position} of {len}"))?;
        *count += 1;
        check_touch(&answer, session, request, position, *count)?;
        answers += 1;
        if next_request <= total {
            let (message, position) = send(next_request);
            client::feed(socket, message).await?;
            client::flush(socket).await?;
            in_flight.push_back((next_request, position, Instant::now()));
            next_request += 1;
        }
    }
    let finished = Instant::now();
    // A fence: nothing may arrive between the last answer and the ping's answer.
    client::feed(socket, client::fence_message()).await?;
    client::flush(socket).await?;
    let text = client::next_text(socket).await?;
    let fence: Value = serde_json::from_str(&text).map_err(|e| format!("fence: {e}"))?;
    if fence["request"] != "fence" {
        return Err(format!("an extra frame after the last answer: {text}"));
    }
    Ok(Connection {
        answers,
        started,
        finished,
        latencies,
        joined,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn touch_indexes_spread_over_a_table() {
        let rows: std::collections::HashSet<usize> = (1..=1_000)
            .map(|request| touched(touch_index(3, request), 1_000))
            .collect();
        // 1,000 draws from 1,000 rows: about 632 distinct ones are expected.
        assert!(rows.len() > 500, "{} distinct rows", rows.len());
        assert_ne!(touch_index(0, 1), touch_index(1, 1));
    }

    #[test]
    fn a_touch_answer_is_one_change() {
        let answer = json!({
            "type": "mutation", "store": TABLE_STORE, "session": "s", "request": 7,
            "diff": [{"a": "u", "p": ["items", 12, "touches"], "t": 3}],
        });
        assert_eq!(check_touch(&answer, "s", 7, 12, 3), Ok(()));
        assert!(check_touch(&answer, "s", 7, 12, 2).is_err());
        assert!(check_touch(&answer, "s", 7, 11, 3).is_err());
        assert!(check_touch(&answer, "s", 8, 12, 3).is_err());
        let two = json!({
            "type": "mutation", "store": TABLE_STORE, "session": "s", "request": 7,
            "diff": [
                {"a": "u", "p": ["items", 12, "touches"], "t": 3},
                {"a": "u", "p": ["items", 12, "done"], "t": true},
            ],
        });
        assert!(check_touch(&two, "s", 7, 12, 3).is_err());
    }
}
