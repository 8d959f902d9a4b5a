//! The server side of the benchmark: a counter store behind the storex endpoint, a bare actix-ws
//! echo endpoint (the limit of the stack: same sockets, same frames, no store work), and a control
//! endpoint that triggers a server-side mutation for the fan-out measure.
//!
//! A cluster node too: with a Redis backplane ([`join_cluster`], `storex-bench-server --redis
//! URL`), server-side mutations reach the sessions of every node. The keyed store [`Room`] and
//! the routes under `/bench/cluster/` (any target, one-session requests, the backplane's
//! counters) are what the cluster tests drive.
//!
//! The size measure's stores, [`Table`] and [`TableVec`] (`Bench.Table`, `Bench.TableVec`): N
//! rows of five fields (N from the join's params), a `touch` mutation that changes one field of
//! one row; the rows in a tracked [`storex::List`] in the first, in a plain `Vec` in the second.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use actix_ws::AggregatedMessage;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use storex::redis::{RedisBackplane, RedisOptions, RedisStats};
use storex::{Config, Hub, HubError, Init, Params, RawMutation, Reply, Store, Target};

/// The name clients join the counter by.
pub const STORE: &str = "Bench.Counter";

/// The session id the echo client puts in its frames: as long as a storex id, so the frames have
/// the same size in both targets.
pub const FAKE_SESSION: &str = "echo-echo-echo-echo-e";

/// The largest frame either endpoint accepts (the storex default).
const MAX_FRAME: usize = 64 * 1024;

/// The store of every measure: the Storex README's counter.
#[derive(Store, Serialize, Deserialize, Clone, Debug)]
#[store(name = "Bench.Counter", durable)]
pub struct Counter {
    /// The value `increase` adds one to.
    pub counter: i64,
}

#[storex::mutations]
impl Counter {
    #[init]
    fn init() -> Self {
        Counter { counter: 0 }
    }

    #[mutation("increase")]
    fn increase(&mut self) {
        self.counter += 1;
    }
}

/// The name clients join the table of tracked rows by (`{"items": N}`).
pub const TABLE_STORE: &str = "Bench.Table";

/// The name clients join the same table in a plain `Vec` by (`{"items": N}`).
pub const TABLE_VEC_STORE: &str = "Bench.TableVec";

/// The most rows a table may be joined with: a client cannot make the server build more.
pub const MAX_TABLE_ITEMS: u64 = 1_000_000;

/// One row of the size measure's tables: five small fields, of which `touch` changes one.
#[derive(storex::Diff, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Row {
    /// Its position when the table was made.
    pub id: u64,
    /// `item <id>`.
    pub title: String,
    /// True for even ids.
    pub done: bool,
    /// One tag.
    pub tags: Vec<String>,
    /// How many times `touch` reached this row.
    pub touches: u64,
}

impl Row {
    /// The row at position `id` of a new table.
    pub fn new(id: u64) -> Self {
        Row {
            id,
            title: format!("item {id}"),
            done: id.is_multiple_of(2),
            tags: vec!["bench".to_owned()],
            touches: 0,
        }
    }
}

/// The number of rows a table's join asks for: `{"items": N}`, N from 1 to [`MAX_TABLE_ITEMS`];
/// anything else refuses the join with a sentence that says what to send.
pub fn table_items(store: &str, params: &Params) -> Result<u64, String> {
    let expected = format!(r#"join {store} with {{"items": N}}, N from 1 to {MAX_TABLE_ITEMS}"#);
    let value = params
        .value()
        .get("items")
        .ok_or_else(|| format!("{expected}: items is missing"))?;
    value
        .as_u64()
        .filter(|items| (1..=MAX_TABLE_ITEMS).contains(items))
        .ok_or_else(|| format!("{expected}, not {value}"))
}

/// The position `touch(index)` changes in a table of `len` rows: `index % len`.
pub fn touched(index: u64, len: usize) -> usize {
    // `len` is at most MAX_TABLE_ITEMS, so the remainder fits any usize.
    usize::try_from(index % (len.max(1) as u64)).unwrap_or(0)
}

/// The size measure's store: N rows in a tracked [`storex::List`], so that a mutation's rollback
/// mark and diff cost the rows it wrote, not the table. Joined with `{"items": N}`.
#[derive(Store, Serialize, Clone, Debug)]
#[store(name = "Bench.Table")]
pub struct Table {
    /// The rows, `Row::new(0)` to `Row::new(N - 1)` at the join.
    pub items: storex::List<Row>,
}

#[storex::mutations]
impl Table {
    #[init]
    fn init(params: &Params) -> Result<Self, String> {
        let items = table_items(TABLE_STORE, params)?;
        Ok(Table {
            items: (0..items).map(Row::new).collect(),
        })
    }

    /// Adds one to `touches` of row `index % len`: one field of one row changes.
    #[mutation("touch")]
    fn touch(&mut self, index: u64) {
        let at = touched(index, self.items.len());
        self.items[at].touches += 1;
    }
}

/// [`Table`] with its rows in a plain `Vec`: every mutation copies the whole table for its
/// rollback and diffs it whole, which is what the size measure shows beside the tracked list.
/// Joined with `{"items": N}`.
#[derive(Store, Serialize, Clone, Debug)]
#[store(name = "Bench.TableVec")]
pub struct TableVec {
    /// The rows, `Row::new(0)` to `Row::new(N - 1)` at the join.
    pub items: Vec<Row>,
}

#[storex::mutations]
impl TableVec {
    #[init]
    fn init(params: &Params) -> Result<Self, String> {
        let items = table_items(TABLE_VEC_STORE, params)?;
        Ok(TableVec {
            items: (0..items).map(Row::new).collect(),
        })
    }

    /// Adds one to `touches` of row `index % len`, as [`Table`]'s `touch` does.
    #[mutation("touch")]
    fn touch(&mut self, index: u64) {
        let at = touched(index, self.items.len());
        if let Some(row) = self.items.get_mut(at) {
            row.touches += 1;
        }
    }
}

/// How the benchmark server runs.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Where to listen (a loopback address; port 0 picks a free one).
    pub addr: SocketAddr,
    /// actix worker threads (actix's default is one per core).
    pub workers: usize,
}

/// Binds the benchmark server; run the returned server inside an actix system.
/// Routes: `/storex` (the store), `/echo?pad=N` (echo), `POST /bench/mutate` (fan-out trigger),
/// `GET /bench/sessions` (the hub's live session count), and the cluster's routes (see
/// [`bind_tuned`]).
pub fn bind(options: &ServerOptions) -> std::io::Result<(actix_web::dev::Server, SocketAddr)> {
    bind_tuned(options, &Tuning::default())
}

/// [`bind`] with the endpoint's resume settings changed by `tuning` (the soak's short TTL).
/// Also routes `POST /bench/soak/tick` (the soak's server-side mutation) and `GET /bench/stats`
/// (live and detached sessions), and the cluster's routes (with or without a backplane; without
/// one, `stats` answers 404):
/// - `POST /bench/cluster/mutate?name=N[&store=S][&args=JSON][&target=store|key|session][&key=K]
///   [&session=ID]`: the mutation by name (store `Bench.Room` unless given, `args` a JSON array,
///   target `store` unless given); answers [`ClusterMutated`];
/// - `POST /bench/cluster/request?session=ID&name=N[&store=S][&args=JSON]`: runs it in that
///   session, wherever it lives, and answers [`ClusterRequested`] (its reply or its error);
/// - `GET /bench/cluster/stats`: the backplane's counters and this node's id ([`ClusterStats`]).
pub fn bind_tuned(
    options: &ServerOptions,
    tuning: &Tuning,
) -> std::io::Result<(actix_web::dev::Server, SocketAddr)> {
    // Idle sessions must outlive a 10,000-session measure; everything else is the default.
    let config = tuning.apply(Config::new("/storex").idle_timeout(Duration::from_secs(600)));
    let hub = config.hub().clone();
    let echoes = web::Data::new(EchoSessions::default());
    let cluster = web::Data::new(Cluster(tuning.backplane.clone()));
    let metrics = tuning.metrics.clone();
    let server = HttpServer::new(move || {
        let metrics_route = match &metrics {
            Some(metrics) => storex::actix::metrics(metrics.clone()),
            None => web::get().to(|| async { HttpResponse::NotFound().finish() }),
        };
        App::new()
            .app_data(web::Data::new(hub.clone()))
            .app_data(echoes.clone())
            .app_data(cluster.clone())
            .service(storex::actix::scope(config.clone()))
            .route("/echo", web::get().to(echo))
            .route("/bench/mutate", web::post().to(mutate))
            .route("/bench/sessions", web::get().to(sessions))
            .route("/bench/soak/tick", web::post().to(soak_tick))
            .route("/bench/stats", web::get().to(stats))
            .route("/bench/echo-broadcast", web::post().to(echo_broadcast))
            .route("/bench/cluster/mutate", web::post().to(cluster_mutate))
            .route("/bench/cluster/request", web::post().to(cluster_request))
            .route("/bench/cluster/stats", web::get().to(cluster_stats))
            .route("/metrics", metrics_route)
    })
    .workers(options.workers.max(1))
    .backlog(4096)
    .tcp_nodelay(true)
    .disable_signals()
    .bind(options.addr)?;
    let addr = server
        .addrs()
        .first()
        .copied()
        .ok_or_else(|| std::io::Error::other("the server bound no address"))?;
    Ok((server.run(), addr))
}

/// Nanoseconds since the Unix epoch: the clock both processes share for fan-out latencies.
pub fn unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| u64::try_from(since.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The fan-out trigger's answer.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Triggered {
    /// When `hub.mutate` was called.
    pub trigger_unix_ns: u64,
    /// How many sessions it reached.
    pub reached: usize,
}

async fn mutate(hub: web::Data<Hub>) -> HttpResponse {
    let trigger_unix_ns = unix_ns();
    let reached = match hub.mutate(storex::mutation!(Counter, "increase")) {
        Ok(reached) => reached,
        Err(error) => return HttpResponse::InternalServerError().body(error.to_string()),
    };
    HttpResponse::Ok().json(Triggered {
        trigger_unix_ns,
        reached,
    })
}

async fn sessions(hub: web::Data<Hub>) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "sessions": hub.session_count() }))
}

/// The echo sessions opened with `?fan_out=1`: the fan-out's limit pushes to them the way the
/// hub does (a bounded channel into each session's task, which writes the frame), with no store.
#[derive(Default)]
struct EchoSessions {
    inboxes: std::sync::Mutex<Vec<tokio::sync::mpsc::Sender<()>>>,
}

/// What the echo pushes: a storex push of the counter's first increase, byte for byte (an epoch
/// is 16 characters).
pub fn echo_push() -> String {
    format!(
        r#"{{"type":"mutation","store":"{STORE}","session":"{}","diff":[{{"a":"u","p":["counter"],"t":1}}],"epoch":"0123456789abcdef","version":1}}"#,
        FAKE_SESSION
    )
}

async fn echo_broadcast(echoes: web::Data<EchoSessions>) -> HttpResponse {
    let trigger_unix_ns = unix_ns();
    let inboxes: Vec<_> = echoes
        .inboxes
        .lock()
        .map(|inboxes| inboxes.clone())
        .unwrap_or_default();
    let reached = inboxes
        .iter()
        .filter(|inbox| inbox.try_send(()).is_ok())
        .count();
    HttpResponse::Ok().json(Triggered {
        trigger_unix_ns,
        reached,
    })
}

#[derive(Deserialize)]
struct EchoQuery {
    #[serde(default)]
    pad: usize,
    #[serde(default)]
    fan_out: u8,
}

/// Answers each text frame with itself, padded with spaces (still JSON) to `pad` bytes: a frame
/// of the size a storex answer has, with none of the store's work.
async fn echo(
    request: HttpRequest,
    body: web::Payload,
    query: web::Query<EchoQuery>,
    echoes: web::Data<EchoSessions>,
) -> HttpResponse {
    let (response, mut socket, stream) = match actix_ws::handle(&request, body) {
        Ok(parts) => parts,
        Err(error) => return HttpResponse::from_error(error),
    };
    let mut stream = stream
        .max_frame_size(MAX_FRAME)
        .aggregate_continuations()
        .max_continuation_size(MAX_FRAME);
    let pad = query.pad.min(MAX_FRAME);
    let (pushes, mut inbox) = tokio::sync::mpsc::channel(1);
    if query.fan_out == 1 {
        if let Ok(mut inboxes) = echoes.inboxes.lock() {
            inboxes.push(pushes);
        }
    } else {
        drop(pushes);
    }
    actix_web::rt::spawn(async move {
        loop {
            let message = tokio::select! {
                message = stream.recv() => match message {
                    Some(Ok(message)) => message,
                    _ => break,
                },
                Some(()) = inbox.recv() => {
                    if socket.text(echo_push()).await.is_err() {
                        return;
                    }
                    continue;
                }
            };
            match message {
                AggregatedMessage::Text(text) => {
                    let mut answer = String::with_capacity(pad.max(text.len()));
                    answer.push_str(&text);
                    let missing = pad.saturating_sub(answer.len());
                    answer.extend(std::iter::repeat_n(' ', missing));
                    if socket.text(answer).await.is_err() {
                        return;
                    }
                }
                AggregatedMessage::Ping(bytes) => {
                    if socket.pong(&bytes).await.is_err() {
                        return;
                    }
                }
                AggregatedMessage::Close(_) => break,
                AggregatedMessage::Binary(_) | AggregatedMessage::Pong(_) => {}
            }
        }
        let _ = socket.close(None).await;
    });
    response
}

/// The name soak clients join by.
pub const SOAK_STORE: &str = "Bench.Soak";

/// The soak's store: each client appends its own numbers; the soak driver ticks every instance
/// from the server side in between.
#[derive(Store, Serialize, Deserialize, Clone, Debug)]
#[store(name = "Bench.Soak", durable)]
pub struct Soak {
    /// The numbers `append` pushed, in the order the mutations ran.
    pub mine: Vec<u64>,
    /// How many server-side `tick`s reached this instance.
    pub ticks: u64,
}

#[storex::mutations]
impl Soak {
    #[init]
    fn init() -> Self {
        Soak {
            mine: Vec::new(),
            ticks: 0,
        }
    }

    #[mutation("append")]
    fn append(&mut self, n: u64) {
        self.mine.push(n);
    }

    #[mutation("tick")]
    fn tick(&mut self) {
        self.ticks += 1;
    }
}

/// Changes to the endpoint's resume settings; `None` keeps the runtime's default. The server
/// binary reads them from the environment ([`Tuning::from_env`]).
#[derive(Debug, Clone, Default)]
pub struct Tuning {
    /// `STOREX_BENCH_RESUME_TTL_MS`: how long a detached session waits for its client.
    pub resume_ttl: Option<Duration>,
    /// `STOREX_BENCH_HISTORY=DIFFS,BYTES`: the diffs kept per instance for a resume.
    pub history: Option<(usize, usize)>,
    /// `STOREX_BENCH_MAX_DETACHED=SESSIONS,BYTES`: the bounds of detached sessions.
    pub max_detached: Option<(usize, usize)>,
    /// `STOREX_BENCH_REMEMBERED_REQUESTS`: the mutation answers a session remembers (0 shows
    /// what the soak finds without them: mutations applied twice).
    pub remembered_requests: Option<usize>,
    /// The cluster's backplane (`--redis URL`, see [`join_cluster`]): server-side mutations
    /// reach the sessions of every node. `None`: this process only.
    pub backplane: Option<RedisBackplane>,
    /// `STOREX_BENCH_DURABLE=1`: sessions are durable in the backplane's Redis (the counter and
    /// the soak's store are `#[store(durable)]`); needs the backplane.
    pub durable: bool,
    /// `STOREX_BENCH_RESUME_KEY`: the resume key every node of a cluster shares.
    pub resume_key: Option<String>,
    /// `STOREX_BENCH_METRICS=1`: the endpoint counts in Prometheus metrics, served at
    /// `GET /metrics`.
    pub metrics: Option<storex::metrics::Metrics>,
}

impl Tuning {
    /// The tuning the environment asks for; an unreadable value is an error.
    pub fn from_env() -> Result<Self, String> {
        fn var(name: &str) -> Option<String> {
            std::env::var(name).ok().filter(|value| !value.is_empty())
        }
        fn pair(name: &str) -> Result<Option<(usize, usize)>, String> {
            var(name)
                .map(|value| {
                    value
                        .split_once(',')
                        .and_then(|(a, b)| Some((a.trim().parse().ok()?, b.trim().parse().ok()?)))
                        .ok_or_else(|| format!("{name}: expected N,BYTES, got {value:?}"))
                })
                .transpose()
        }
        let resume_ttl = var("STOREX_BENCH_RESUME_TTL_MS")
            .map(|value| {
                value
                    .parse()
                    .map(Duration::from_millis)
                    .map_err(|_| format!("STOREX_BENCH_RESUME_TTL_MS: not a number: {value:?}"))
            })
            .transpose()?;
        let remembered_requests = var("STOREX_BENCH_REMEMBERED_REQUESTS")
            .map(|value| {
                value.parse().map_err(|_| {
                    format!("STOREX_BENCH_REMEMBERED_REQUESTS: not a number: {value:?}")
                })
            })
            .transpose()?;
        Ok(Self {
            resume_ttl,
            history: pair("STOREX_BENCH_HISTORY")?,
            max_detached: pair("STOREX_BENCH_MAX_DETACHED")?,
            remembered_requests,
            backplane: None,
            durable: var("STOREX_BENCH_DURABLE").is_some_and(|value| value == "1"),
            resume_key: var("STOREX_BENCH_RESUME_KEY"),
            metrics: var("STOREX_BENCH_METRICS")
                .filter(|value| value == "1")
                .map(|_| storex::metrics::Metrics::new()),
        })
    }

    /// `config` with these changes. A backplane gives `config` a new hub: take the hub after.
    pub fn apply(&self, mut config: Config) -> Config {
        if let Some(backplane) = &self.backplane {
            config = config.backplane(backplane.clone());
            if self.durable {
                config = config.durable(backplane.sessions());
            }
        }
        if let Some(key) = &self.resume_key {
            config = config.resume_key(key);
        }
        if let Some(ttl) = self.resume_ttl {
            config = config.resume_ttl(ttl);
        }
        if let Some((diffs, bytes)) = self.history {
            config = config.history(diffs, bytes);
        }
        if let Some((sessions, bytes)) = self.max_detached {
            config = config.max_detached(sessions, bytes);
        }
        if let Some(answers) = self.remembered_requests {
            config = config.remembered_requests(answers);
        }
        if let Some(metrics) = &self.metrics {
            config = config.metrics(metrics.clone());
        }
        config
    }
}

async fn soak_tick(hub: web::Data<Hub>) -> HttpResponse {
    let trigger_unix_ns = unix_ns();
    match hub.mutate(storex::mutation!(Soak, "tick")) {
        Ok(reached) => HttpResponse::Ok().json(Triggered {
            trigger_unix_ns,
            reached,
        }),
        Err(error) => HttpResponse::InternalServerError().body(error.to_string()),
    }
}

/// The answer of `GET /bench/stats`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Stats {
    /// Live sessions (attached or detached).
    pub sessions: usize,
    /// Detached sessions (waiting for a resume).
    pub detached: usize,
    /// The bytes of history the detached sessions hold.
    pub detached_bytes: usize,
}

async fn stats(hub: web::Data<Hub>) -> HttpResponse {
    let detached = hub.detached();
    HttpResponse::Ok().json(Stats {
        sessions: hub.session_count(),
        detached: detached.sessions,
        detached_bytes: detached.history_bytes,
    })
}

/// The name clients join a room by.
pub const ROOM_STORE: &str = "Bench.Room";

/// The cluster tests' store: keyed by its room, so that server code can reach one room's
/// instances on every node. Joined with params `{"room": NAME}`.
#[derive(Store, Serialize, Clone, Debug)]
#[store(name = "Bench.Room")]
pub struct Room {
    /// The room it joined: its key.
    pub room: String,
    /// What `say` appended, in the order the mutations ran.
    pub said: Vec<String>,
    /// How many times `bump` ran.
    pub bumps: u64,
}

#[storex::mutations]
impl Room {
    #[init]
    fn init(params: &Params) -> Result<Init<Self>, String> {
        let room = params
            .get::<String>("room")
            .filter(|room| !room.is_empty())
            .ok_or_else(|| format!(r#"join {ROOM_STORE} with {{"room": NAME}}"#))?;
        let state = Room {
            room: room.clone(),
            said: Vec::new(),
            bumps: 0,
        };
        Ok(Init::with_key(state, room))
    }

    #[mutation("say")]
    fn say(&mut self, text: String) {
        self.said.push(text);
    }

    /// Adds one to `bumps` and replies the new count.
    #[mutation("bump")]
    fn bump(&mut self) -> Reply<u64> {
        self.bumps += 1;
        Reply(self.bumps)
    }

    /// Always fails with `why` (the state is unchanged): a mutation error for a request.
    #[mutation("fail")]
    fn fail(&mut self, why: String) -> Result<(), String> {
        Err(why)
    }
}

/// How long a node waits for Redis at start ([`join_cluster`]'s usual bound).
pub const CLUSTER_READY: Duration = Duration::from_secs(10);

/// A Redis backplane to `url`, connected within `within`; the error says what went wrong.
pub async fn join_cluster(url: &str, within: Duration) -> Result<RedisBackplane, String> {
    let backplane = RedisBackplane::new(RedisOptions::new(url))
        .map_err(|error| format!("--redis {url}: {error}"))?;
    backplane.ready(within).await.map_err(|error| {
        format!("--redis {url}: {error} (waited {within:?} at start; is redis-server running?)")
    })?;
    Ok(backplane)
}

/// The backplane of this node, when it is one.
struct Cluster(Option<RedisBackplane>);

/// The answer of `POST /bench/cluster/mutate`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterMutated {
    /// The sessions of this node the mutation was queued to (`None` on an error).
    pub reached: Option<usize>,
    /// The error's text: the backplane's may come after this node's sessions were reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The error's kind ([`error_kind`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// The answer of `POST /bench/cluster/request`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterRequested {
    /// The mutation's reply (`null` when it has none or it failed).
    pub reply: Option<Value>,
    /// The error's text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The error's kind ([`error_kind`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// How long the hub took to answer, in microseconds.
    pub elapsed_us: u64,
}

/// The answer of `GET /bench/cluster/stats`: [`storex::redis::RedisStats`] and this node's id.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterStats {
    /// This node's id in the cluster.
    pub node: String,
    /// Live sessions of this node.
    pub sessions: usize,
    /// The backplane's counters.
    #[serde(flatten)]
    pub redis: RedisStats,
}

/// A [`HubError`]'s kind, in snake case: `no_session`, `not_joined`, `overloaded`, `gone`,
/// `arguments`, `name`, `mutation`, `backplane` (or `other`).
pub fn error_kind(error: &HubError) -> &'static str {
    match error {
        HubError::NoSession(_) => "no_session",
        HubError::NotJoined { .. } => "not_joined",
        HubError::Overloaded(_) => "overloaded",
        HubError::Gone(_) => "gone",
        HubError::Arguments(_) => "arguments",
        HubError::Name(_) => "name",
        HubError::Mutation(_) => "mutation",
        HubError::Backplane(_) => "backplane",
        _ => "other",
    }
}

#[derive(Deserialize)]
struct MutationQuery {
    #[serde(default)]
    store: Option<String>,
    name: String,
    /// A JSON array.
    #[serde(default)]
    args: Option<String>,
}

impl MutationQuery {
    /// The mutation or the hub's error for a name that does not exist; the bad request's text
    /// for unreadable arguments.
    fn mutation(&self) -> Result<Result<RawMutation, HubError>, String> {
        let args = match self.args.as_deref() {
            None | Some("") => Vec::new(),
            Some(args) => serde_json::from_str::<Vec<Value>>(args)
                .map_err(|error| format!("args: not a JSON array: {error}"))?,
        };
        let store = self.store.as_deref().unwrap_or(ROOM_STORE);
        Ok(RawMutation::new(store, &self.name, args).map_err(HubError::from))
    }
}

#[derive(Deserialize)]
struct ClusterMutateQuery {
    #[serde(flatten)]
    mutation: MutationQuery,
    #[serde(default)]
    target: Option<String>,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    session: Option<String>,
}

async fn cluster_mutate(
    hub: web::Data<Hub>,
    query: web::Query<ClusterMutateQuery>,
) -> HttpResponse {
    let query = query.into_inner();
    let missing = |what: &str| HttpResponse::BadRequest().body(format!("{what} is missing"));
    let target = match query.target.as_deref().unwrap_or("store") {
        "store" => Target::Store,
        "key" => match query.key {
            Some(key) => Target::Key(key),
            None => return missing("key (target=key)"),
        },
        "session" => match query.session {
            Some(session) => Target::Session(session),
            None => return missing("session (target=session)"),
        },
        other => {
            return HttpResponse::BadRequest()
                .body(format!("target: store, key or session, not {other:?}"))
        }
    };
    let mutation = match query.mutation.mutation() {
        Ok(mutation) => mutation,
        Err(bad_request) => return HttpResponse::BadRequest().body(bad_request),
    };
    let answer = match mutation.and_then(|mutation| hub.send(target, mutation)) {
        Ok(reached) => ClusterMutated {
            reached: Some(reached),
            error: None,
            kind: None,
        },
        Err(error) => ClusterMutated {
            reached: None,
            kind: Some(error_kind(&error).to_owned()),
            error: Some(error.to_string()),
        },
    };
    HttpResponse::Ok().json(answer)
}

#[derive(Deserialize)]
struct ClusterRequestQuery {
    #[serde(flatten)]
    mutation: MutationQuery,
    session: String,
}

async fn cluster_request(
    hub: web::Data<Hub>,
    query: web::Query<ClusterRequestQuery>,
) -> HttpResponse {
    let mutation = match query.mutation.mutation() {
        Ok(mutation) => mutation,
        Err(bad_request) => return HttpResponse::BadRequest().body(bad_request),
    };
    let started = std::time::Instant::now();
    let result = match mutation {
        Ok(mutation) => hub.request(&query.session, mutation).await,
        Err(error) => Err(error),
    };
    let elapsed_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    let answer = match result {
        Ok(reply) => ClusterRequested {
            reply,
            error: None,
            kind: None,
            elapsed_us,
        },
        Err(error) => ClusterRequested {
            reply: None,
            kind: Some(error_kind(&error).to_owned()),
            error: Some(error.to_string()),
            elapsed_us,
        },
    };
    HttpResponse::Ok().json(answer)
}

async fn cluster_stats(hub: web::Data<Hub>, cluster: web::Data<Cluster>) -> HttpResponse {
    let Some(backplane) = &cluster.0 else {
        return HttpResponse::NotFound().body("not a cluster node: start it with --redis URL");
    };
    let stats = backplane.stats();
    HttpResponse::Ok().json(ClusterStats {
        node: backplane.node().to_owned(),
        sessions: hub.session_count(),
        redis: stats,
    })
}
