//! The benchmark server: the counter store at `/storex`, the echo at `/echo`, the fan-out trigger
//! at `POST /bench/mutate`. Prints `LISTENING <addr>` once bound.
//!
//! `storex-bench-server [--addr 127.0.0.1:0] [--workers N]`
//!
//! The resume settings come from the environment (see `Tuning`): `STOREX_BENCH_RESUME_TTL_MS`,
//! `STOREX_BENCH_HISTORY=DIFFS,BYTES`, `STOREX_BENCH_MAX_DETACHED=SESSIONS,BYTES`,
//! `STOREX_BENCH_REMEMBERED_REQUESTS`. `STOREX_BENCH_LOG=info` (or `debug`, `trace`) writes the
//! runtime's log to standard error.

use std::io::Write;

use storex_bench::server::{bind_tuned, ServerOptions, Tuning};

fn main() -> std::io::Result<()> {
    let mut options = ServerOptions {
        addr: ([127, 0, 0, 1], 0).into(),
        workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_default();
        let invalid = |what: &str| std::io::Error::other(format!("{flag}: {what}: {value:?}"));
        match flag.as_str() {
            "--addr" => options.addr = value.parse().map_err(|_| invalid("not an address"))?,
            "--workers" => options.workers = value.parse().map_err(|_| invalid("not a count"))?,
            _ => return Err(invalid("unknown flag")),
        }
    }
    if !options.addr.ip().is_loopback() {
        return Err(std::io::Error::other(
            "the benchmark server listens on loopback only",
        ));
    }
    let tuning = Tuning::from_env().map_err(std::io::Error::other)?;
    if let Ok(level) = std::env::var("STOREX_BENCH_LOG") {
        let level: tracing::Level = level.parse().map_err(|_| {
            std::io::Error::other(format!("STOREX_BENCH_LOG: not a level: {level}"))
        })?;
        tracing_subscriber::fmt()
            .with_max_level(level)
            .with_writer(std::io::stderr)
            .init();
    }
    actix_web::rt::System::new().block_on(async move {
        let (server, addr) = bind_tuned(&options, &tuning)?;
        let mut stdout = std::io::stdout();
        writeln!(stdout, "LISTENING {addr}")?;
        stdout.flush()?;
        server.await
    })
}
