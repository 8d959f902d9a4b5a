//! What the example servers share: their command line (`--port N`, `PORT`) and their startup
//! (the page at `/`, the storex endpoint and client at `/storex`, the app's own routes).
//!
//! Each binary in `src/bin/` holds one store and its page; this crate's lib holds nothing about
//! stores, so each binary registers only its own.

use std::io::Write;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use actix_web::{web, App, HttpResponse, HttpServer};

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
    let args = std::env::args().skip(1);
    if std::env::args().any(|arg| arg == "-h" || arg == "--help") {
        println!(
            "usage: {} [--port N]   (or PORT=N; default {DEFAULT_PORT}; 0 picks a free port)",
            example.name
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
    match actix_web::rt::System::new().block_on(serve(example, config, options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{}: {error}", example.name);
            ExitCode::FAILURE
        }
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
