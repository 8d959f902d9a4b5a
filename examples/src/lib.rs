//! What the example servers share: their command line (`--port N`, `PORT`; for a node of a
//! cluster `--redis URL` and `--resume-key KEY`) and their startup (the page at `/`, the storex
//! endpoint and client at `/storex`, the app's own routes).
//!
//! Each binary in `src/bin/` holds one store and its page; this crate's lib holds nothing about
//! stores, so each binary registers only its own.

use std::fmt;
use std::future::Future;
use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::{web, App, HttpResponse, HttpServer};

pub mod types;

/// The port the examples listen on unless told otherwise.
pub const DEFAULT_PORT: u16 = 8080;

/// What the command line and the environment asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// The loopback port to listen on; 0 asks the system for a free one.
    pub port: u16,
}

impl Options {
    /// Reads `--port N` (or `--port=N`) from `args` (without the program name), else `PORT` from
    /// `env_port`, else [`DEFAULT_PORT`]. The flag wins over the variable.
    ///
    /// ```
    /// use storex_examples::Options;
    /// let args = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    /// assert_eq!(Options::parse(args(&[]), None), Ok(Options { port: 8080 }));
    /// assert_eq!(Options::parse(args(&[]), Some("0".into())), Ok(Options { port: 0 }));
    /// assert_eq!(Options::parse(args(&["--port", "9000"]), Some("1".into())), Ok(Options { port: 9000 }));
    /// assert_eq!(Options::parse(args(&["--port=9001"]), None), Ok(Options { port: 9001 }));
    /// assert!(Options::parse(args(&["--port", "x"]), None).is_err());
    /// assert!(Options::parse(args(&["--verbose"]), None).is_err());
    /// ```
    pub fn parse(
        args: impl IntoIterator<Item = String>,
        env_port: Option<String>,
    ) -> Result<Self, String> {
        let mut port = None;
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let value = match arg.strip_prefix("--port=") {
                Some(value) => value.to_owned(),
                None if arg == "--port" => args.next().ok_or("--port needs a number")?,
                None => return Err(format!("unknown argument {arg:?}")),
            };
            port = Some(parse_port(&value, "--port")?);
        }
        let port = match (port, env_port) {
            (Some(port), _) => port,
            (None, Some(value)) => parse_port(&value, "PORT")?,
            (None, None) => DEFAULT_PORT,
        };
        Ok(Self { port })
    }
}

fn parse_port(value: &str, source: &str) -> Result<u16, String> {
    value
        .trim()
        .parse()
        .map_err(|_| format!("{source} must be a port number (0-65535), not {value:?}"))
}

/// An example app: its page and what it adds to the server.
#[derive(Debug, Clone, Copy)]
pub struct Example {
    /// The program's name, for messages.
    pub name: &'static str,
    /// The HTML served at `/`.
    pub page: &'static str,
    /// The app's own routes (e.g. `/api/...`), registered next to the page and the endpoint.
    pub routes: fn(&mut web::ServiceConfig),
}

/// Parses the command line, starts the server on 127.0.0.1 with `config`, prints
/// `listening on http://127.0.0.1:PORT` (the real port) and serves until the process is stopped.
///
/// Every route can read the endpoint's [`storex::Hub`] as `web::Data<Hub>` to mutate stores.
pub fn run(example: Example, config: storex::Config) -> ExitCode {
    run_with(example, "", std::env::args().skip(1).collect(), || async {
        Ok(config)
    })
}

/// Like [`run`], for an example that reads more of its command line (it takes its own options
/// out of `args` and names them in `usage`, for `--help`) or needs to wait for something before
/// it serves: `make` builds the configuration inside the server's runtime, after `--port` was
/// read; an error from it is printed and ends the process with status 1.
pub fn run_with<F, Fut>(example: Example, usage: &str, args: Vec<String>, make: F) -> ExitCode
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<storex::Config, String>>,
{
    if args.iter().any(|arg| arg == "-h" || arg == "--help") {
        println!(
            "usage: {} [--port N]{}{usage}   (or PORT=N; default {DEFAULT_PORT}; 0 picks a free port)",
            example.name,
            if usage.is_empty() { "" } else { " " },
        );
        return ExitCode::SUCCESS;
    }
    let options = match Options::parse(args, std::env::var("PORT").ok()) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{}: {message}", example.name);
            return ExitCode::from(2);
        }
    };
    let served = actix_web::rt::System::new().block_on(async move {
        let config = make().await.map_err(std::io::Error::other)?;
        serve(example, config, options).await
    });
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{}: {error}", example.name);
            ExitCode::FAILURE
        }
    }
}

/// How long a node waits at start for Redis before it gives up.
pub const REDIS_WAIT: Duration = Duration::from_secs(10);

/// What makes an example a node of a cluster: `--redis URL` (or `REDIS_URL`) connects it to the
/// other nodes through a [`storex::redis::RedisBackplane`], and `--resume-key KEY` (or
/// `STOREX_RESUME_KEY`) signs resume tokens with a key every node shares. Without either, the
/// example is one process on its own, as before.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ClusterOptions {
    /// The Redis server the nodes meet at (`redis://host:port/`).
    pub redis: Option<String>,
    /// The key resume tokens are signed with ([`storex::Config::resume_key`]).
    pub resume_key: Option<String>,
}

impl fmt::Debug for ClusterOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterOptions")
            .field("redis", &self.redis)
            .field("resume_key", &self.resume_key.as_ref().map(|_| "(set)"))
            .finish()
    }
}

impl ClusterOptions {
    /// What `--help` says of these options.
    pub const USAGE: &'static str =
        "[--redis URL (or REDIS_URL)] [--resume-key KEY (or STOREX_RESUME_KEY)]";

    /// Takes `--redis URL` and `--resume-key KEY` (also `--redis=URL`, `--resume-key=KEY`) out
    /// of `args` and returns the rest; a flag wins over its variable (`env_redis`: `REDIS_URL`,
    /// `env_key`: `STOREX_RESUME_KEY`); an empty value is no value.
    ///
    /// ```
    /// use storex_examples::ClusterOptions;
    /// let args = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    /// let (cluster, rest) = ClusterOptions::parse(args(&["--port", "0", "--redis", "redis://127.0.0.1:6379/"]), None, Some("k".into())).unwrap();
    /// assert_eq!(cluster.redis.as_deref(), Some("redis://127.0.0.1:6379/"));
    /// assert_eq!(cluster.resume_key.as_deref(), Some("k"));
    /// assert_eq!(rest, args(&["--port", "0"]));
    /// let (cluster, rest) = ClusterOptions::parse(args(&["--resume-key=s3cret"]), Some("redis://r/".into()), None).unwrap();
    /// assert_eq!((cluster.redis.as_deref(), cluster.resume_key.as_deref()), (Some("redis://r/"), Some("s3cret")));
    /// assert!(rest.is_empty());
    /// assert_eq!(ClusterOptions::parse(args(&[]), Some(String::new()), None).unwrap().0, ClusterOptions::default());
    /// assert!(ClusterOptions::parse(args(&["--redis"]), None, None).is_err());
    /// assert!(ClusterOptions::parse(args(&["--resume-key", ""]), None, None).is_err());
    /// ```
    pub fn parse(
        args: impl IntoIterator<Item = String>,
        env_redis: Option<String>,
        env_key: Option<String>,
    ) -> Result<(Self, Vec<String>), String> {
        let mut redis = None;
        let mut resume_key = None;
        let mut rest = Vec::new();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let (slot, flag, inline) = if let Some(value) = arg.strip_prefix("--redis=") {
                (&mut redis, "--redis", Some(value.to_owned()))
            } else if arg == "--redis" {
                (&mut redis, "--redis", None)
            } else if let Some(value) = arg.strip_prefix("--resume-key=") {
                (&mut resume_key, "--resume-key", Some(value.to_owned()))
            } else if arg == "--resume-key" {
                (&mut resume_key, "--resume-key", None)
            } else {
                rest.push(arg);
                continue;
            };
            let value = match inline {
                Some(value) => value,
                None => args.next().ok_or_else(|| format!("{flag} needs a value"))?,
            };
            if value.trim().is_empty() {
                return Err(format!("{flag} needs a value, not an empty one"));
            }
            *slot = Some(value);
        }
        let set = |value: Option<String>| value.filter(|value| !value.trim().is_empty());
        let cluster = Self {
            redis: redis.or_else(|| set(env_redis)),
            resume_key: resume_key.or_else(|| set(env_key)),
        };
        Ok((cluster, rest))
    }

    /// Reads them from the process's command line (without the program's name) and environment.
    pub fn from_env() -> Result<(Self, Vec<String>), String> {
        Self::parse(
            std::env::args().skip(1),
            std::env::var("REDIS_URL").ok(),
            std::env::var("STOREX_RESUME_KEY").ok(),
        )
    }

    /// `config` with the resume key and, with `--redis`, the Redis backplane, once it is
    /// connected (at most `within`); an error says why Redis could not be used. Call it before
    /// anything clones `config.hub()`: the backplane comes with a hub of its own.
    pub async fn apply(
        &self,
        config: storex::Config,
        within: Duration,
    ) -> Result<storex::Config, String> {
        use storex::redis::{RedisBackplane, RedisOptions};
        let mut config = config;
        if let Some(key) = &self.resume_key {
            config = config.resume_key(key);
        }
        let Some(url) = &self.redis else {
            return Ok(config);
        };
        if self.resume_key.is_none() {
            eprintln!(
                "warning: --redis without --resume-key (or STOREX_RESUME_KEY): this node signs \
                 resume tokens with a key of its own, which the other nodes do not accept"
            );
        }
        let backplane =
            RedisBackplane::new(RedisOptions::new(url.as_str())).map_err(|e| e.to_string())?;
        backplane.ready(within).await.map_err(|error| {
            format!(
                "{error} (waited {within:?}); start redis-server or pass another --redis URL \
                 (REDIS_URL)"
            )
        })?;
        Ok(config.backplane(backplane))
    }
}

async fn serve(example: Example, config: storex::Config, options: Options) -> std::io::Result<()> {
    let hub = config.hub().clone();
    let routes_hub = web::Data::new(hub.clone());
    let page = example.page;
    let server = HttpServer::new(move || {
        App::new()
            .app_data(routes_hub.clone())
            .route("/", web::get().to(move || page_response(page)))
            .route("/style.css", web::get().to(stylesheet))
            .service(storex::actix::scope(config.clone()))
            .configure(example.routes)
    })
    .workers(2)
    // The stop is ours (below): the sessions first, then the server, which gives what is
    // still open (a page reconnecting meanwhile) one second.
    .disable_signals()
    .shutdown_timeout(1)
    .bind(("127.0.0.1", options.port))?;
    let port = server
        .addrs()
        .first()
        .map_or(options.port, |addr| addr.port());
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on http://127.0.0.1:{port}")?;
    stdout.flush()?;
    drop(stdout);
    let server = server.run();
    let handle = server.handle();
    actix_web::rt::spawn(async move {
        stop_requested().await;
        // A graceful stop: every session is closed with 1001 (its client reconnects) and its
        // terminate runs; then the server stops taking requests.
        hub.stop().await;
        handle.stop(true).await;
    });
    server.await
}

/// Ctrl-C or SIGTERM.
async fn stop_requested() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}

async fn page_response(page: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-cache"))
        .body(page)
}

/// The stylesheet the three pages share.
async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header(("Cache-Control", "no-cache"))
        .body(include_str!("../pages/style.css"))
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
        })
}

/// `text` trimmed, or why it is not acceptable: empty, or longer than `max` characters.
///
/// ```
/// use storex_examples::clean_text;
/// assert_eq!(clean_text("  milk ", 10, "A todo"), Ok("milk".to_owned()));
/// assert_eq!(clean_text("   ", 10, "A todo"), Err("A todo cannot be empty.".to_owned()));
/// assert!(clean_text("too long for this", 5, "A todo").is_err());
/// ```
pub fn clean_text(text: &str, max: usize, what: &str) -> Result<String, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err(format!("{what} cannot be empty."));
    }
    if text.chars().count() > max {
        return Err(format!("{what} may be at most {max} characters long."));
    }
    Ok(text.to_owned())
}
