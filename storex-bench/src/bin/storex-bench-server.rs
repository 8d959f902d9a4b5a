//! The benchmark server: the counter store at `/storex`, the echo at `/echo`, the fan-out trigger
//! at `POST /bench/mutate`. Prints `LISTENING <addr>` once bound.
//!
//! `storex-bench-server [--addr 127.0.0.1:0] [--workers N] [--redis URL]`
//!
//! `--redis redis://HOST:PORT/` makes it a cluster node: its hub's mutations reach the sessions
//! of every node on that Redis (`storex::redis::RedisBackplane`). It waits up to 10 s for Redis
//! before it binds, and exits with the reason when Redis cannot be reached.
//!
//! The resume settings come from the environment (see `Tuning`): `STOREX_BENCH_RESUME_TTL_MS`,
//! `STOREX_BENCH_HISTORY=DIFFS,BYTES`, `STOREX_BENCH_MAX_DETACHED=SESSIONS,BYTES`,
//! `STOREX_BENCH_REMEMBERED_REQUESTS`; a cluster's: `STOREX_BENCH_RESUME_KEY` (one for every
//! node), `STOREX_BENCH_DURABLE=1` (durable sessions in the `--redis` server). `STOREX_BENCH_LOG=info` (or `debug`, `trace`) writes the
//! runtime's log to standard error.

use std::io::Write;
use std::process::ExitCode;

use storex_bench::server::{bind_tuned, join_cluster, ServerOptions, Tuning, CLUSTER_READY};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("storex-bench-server: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> std::io::Result<()> {
    let mut options = ServerOptions {
        addr: ([127, 0, 0, 1], 0).into(),
        workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let mut redis = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_default();
        let invalid = |what: &str| std::io::Error::other(format!("{flag}: {what}: {value:?}"));
        match flag.as_str() {
            "--addr" => options.addr = value.parse().map_err(|_| invalid("not an address"))?,
            "--workers" => options.workers = value.parse().map_err(|_| invalid("not a count"))?,
            "--redis" if !value.is_empty() => redis = Some(value),
            _ => return Err(invalid("unknown flag")),
        }
    }
    if !options.addr.ip().is_loopback() {
        return Err(std::io::Error::other(
            "the benchmark server listens on loopback only",
        ));
    }
    let mut tuning = Tuning::from_env().map_err(std::io::Error::other)?;
    if let Ok(level) = std::env::var("STOREX_BENCH_LOG") {
        let level: tracing::Level = level.parse().map_err(|_| {
            std::io::Error::other(format!("STOREX_BENCH_LOG: not a level: {level}"))
        })?;
        tracing_subscriber::fmt()
            .with_max_level(level)
            .with_writer(std::io::stderr)
            .init();
    }
    if tuning.durable && redis.is_none() {
        return Err(std::io::Error::other(
            "STOREX_BENCH_DURABLE=1 keeps sessions in Redis: give the server --redis URL",
        ));
    }
    actix_web::rt::System::new().block_on(async move {
        if let Some(url) = redis {
            let backplane = join_cluster(&url, CLUSTER_READY)
                .await
                .map_err(std::io::Error::other)?;
            tuning.backplane = Some(backplane);
        }
        let (server, addr) = bind_tuned(&options, &tuning)?;
        let mut stdout = std::io::stdout();
        writeln!(stdout, "LISTENING {addr}")?;
        stdout.flush()?;
        server.await
    })
}
