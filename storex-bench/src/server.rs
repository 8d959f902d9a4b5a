//! The server side of the benchmark: a counter store behind the storex endpoint, a bare actix-ws
//! echo endpoint (the limit of the stack: same sockets, same frames, no store work), and a control
//! endpoint that triggers a server-side mutation for the fan-out measure.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use actix_ws::AggregatedMessage;
use serde::{Deserialize, Serialize};
use serde_json::json;
use storex::{Config, Hub, Store};

/// The name clients join the counter by.
pub const STORE: &str = "Bench.Counter";

/// The session id the echo client puts in its frames: as long as a storex id, so the frames have
/// the same size in both targets.
pub const FAKE_SESSION: &str = "echo-echo-echo-echo-e";

/// The largest frame either endpoint accepts (the storex default).
const MAX_FRAME: usize = 64 * 1024;

/// The store of every measure: the Storex README's counter.
#[derive(Store, Serialize, Clone, Debug)]
#[store(name = "Bench.Counter")]
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
/// `GET /bench/sessions` (the hub's live session count).
pub fn bind(options: &ServerOptions) -> std::io::Result<(actix_web::dev::Server, SocketAddr)> {
    bind_tuned(options, &Tuning::default())
}

/// [`bind`] with the endpoint's resume settings changed by `tuning` (the soak's short TTL).
/// Also routes `POST /bench/soak/tick` (the soak's server-side mutation) and `GET /bench/stats`
/// (live and detached sessions).
pub fn bind_tuned(
    options: &ServerOptions,
    tuning: &Tuning,
) -> std::io::Result<(actix_web::dev::Server, SocketAddr)> {
    // Idle sessions must outlive a 10,000-session measure; everything else is the default.
    let config = tuning.apply(Config::new("/storex").idle_timeout(Duration::from_secs(600)));
    let hub = config.hub().clone();
    let echoes = web::Data::new(EchoSessions::default());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(hub.clone()))
            .app_data(echoes.clone())
            .service(storex::actix::scope(config.clone()))
            .route("/echo", web::get().to(echo))
            .route("/bench/mutate", web::post().to(mutate))
            .route("/bench/sessions", web::get().to(sessions))
            .route("/bench/soak/tick", web::post().to(soak_tick))
            .route("/bench/stats", web::get().to(stats))
            .route("/bench/echo-broadcast", web::post().to(echo_broadcast))
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
#[derive(Store, Serialize, Clone, Debug)]
#[store(name = "Bench.Soak")]
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
        })
    }

    /// `config` with these changes.
    pub fn apply(&self, mut config: Config) -> Config {
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
