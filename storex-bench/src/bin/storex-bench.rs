//! The load generator: starts `storex-bench-server` as a child process and measures round trips
//! (storex and echo, alternated, in the same run), idle sessions and fan-out. Reports; never fails
//! on a timing, only on a wrong or missing answer.
//!
//! ```text
//! storex-bench [--scenario all|round-trip|sessions] [--connections 100] [--mutations 1000]
//!              [--depths 1,16] [--rounds 3] [--sessions 10000] [--concurrency 256] [--sources 16]
//!              [--no-fan-out] [--server-workers 2] [--client-threads 2] [--server-env KEY=VALUE]…
//!              [--server-bin PATH]
//! ```

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use storex_bench::round_trip::{self, RoundTrip, RoundTripReport, Target};
use storex_bench::sessions::{self, Sessions};
use storex_bench::stats::ms;

#[derive(Debug, Clone)]
struct Options {
    scenario: String,
    connections: usize,
    mutations: u64,
    depths: Vec<usize>,
    rounds: usize,
    sessions: usize,
    concurrency: usize,
    sources: u8,
    fan_out: bool,
    server_workers: usize,
    client_threads: usize,
    server_env: Vec<(String, String)>,
    server_bin: Option<PathBuf>,
}

fn parse() -> Result<Options, String> {
    let mut options = Options {
        scenario: "all".into(),
        connections: 100,
        mutations: 1_000,
        depths: vec![1, 16],
        rounds: 3,
        sessions: 10_000,
        concurrency: 256,
        sources: 16,
        fan_out: true,
        server_workers: 2,
        client_threads: 2,
        server_env: Vec::new(),
        server_bin: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--no-fan-out" {
            options.fan_out = false;
            continue;
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = |value: &str| {
            value
                .parse::<usize>()
                .map_err(|_| format!("{flag}: not a number: {value}"))
        };
        match flag.as_str() {
            "--scenario" => options.scenario = value,
            "--connections" => options.connections = number(&value)?,
            "--mutations" => options.mutations = number(&value)? as u64,
            "--depths" => {
                options.depths = value.split(',').map(number).collect::<Result<_, _>>()?
            }
            "--rounds" => options.rounds = number(&value)?.max(1),
            "--sessions" => options.sessions = number(&value)?,
            "--concurrency" => options.concurrency = number(&value)?,
            "--sources" => {
                options.sources = u8::try_from(number(&value)?.min(250)).unwrap_or(250);
            }
            "--server-workers" => options.server_workers = number(&value)?,
            "--client-threads" => options.client_threads = number(&value)?.max(1),
            "--server-env" => {
                let (key, value) = value
                    .split_once('=')
                    .ok_or_else(|| format!("--server-env KEY=VALUE, got {value}"))?;
                options.server_env.push((key.into(), value.into()));
            }
            "--server-bin" => options.server_bin = Some(value.into()),
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if !["all", "round-trip", "sessions"].contains(&options.scenario.as_str()) {
        return Err(format!("unknown scenario {}", options.scenario));
    }
    Ok(options)
}

/// The server child; killed when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn start(options: &Options) -> Result<Self, String> {
        let bin = match &options.server_bin {
            Some(bin) => bin.clone(),
            None => std::env::current_exe()
                .map_err(|e| format!("this binary's path: {e}"))?
                .with_file_name("storex-bench-server"),
        };
        let mut child = Command::new(&bin)
            .args(["--addr", "127.0.0.1:0"])
            .args(["--workers", &options.server_workers.to_string()])
            .envs(options.server_env.iter().cloned())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| {
                format!(
                    "start {}: {e} (build it: cargo build --release -p storex-bench)",
                    bin.display()
                )
            })?;
        let mut line = String::new();
        if let Some(stdout) = child.stdout.take() {
            let _ = BufReader::new(stdout).read_line(&mut line);
        }
        let addr = line
            .trim()
            .strip_prefix("LISTENING ")
            .and_then(|addr| addr.parse().ok());
        match addr {
            Some(addr) => Ok(Self { child, addr }),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                Err(format!("the server did not say where it listens: {line:?}"))
            }
        }
    }

    fn rss_kib(&self) -> Option<u64> {
        storex_bench::rss_kib(self.child.id())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|line| line.strip_prefix("model name"))
                .map(|name| name.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{cores} cores, {cpu}")
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

async fn round_trips(options: &Options) -> Result<(), String> {
    let server = Server::start(options)?;
    println!(
        "## Round trips: {} connections × {} mutations, storex vs echo alternated, {} rounds",
        options.connections, options.mutations, options.rounds
    );
    println!();
    println!("| round | depth | target | answers/s | p50 | p99 | max |");
    println!("|---|---|---|---|---|---|---|");
    let mut reports: Vec<(usize, RoundTripReport)> = Vec::new();
    for round in 1..=options.rounds {
        for &depth in &options.depths {
            // Alternate which target goes first, so that drift of the machine hits both alike.
            let targets = if round % 2 == 1 {
                [Target::Echo, Target::Storex]
            } else {
                [Target::Storex, Target::Echo]
            };
            for target in targets {
                let measure = RoundTrip {
                    target,
                    connections: options.connections,
                    mutations: options.mutations,
                    depth,
                };
                let report = round_trip::run(server.addr, measure).await?;
                println!(
                    "| {round} | {depth} | {} | {:.0} | {} | {} | {} |",
                    target.name(),
                    report.throughput(),
                    ms(report.latency.p50),
                    ms(report.latency.p99),
                    ms(report.latency.max)
                );
                reports.push((round, report));
            }
        }
    }
    println!();
    println!("| depth | storex answers/s | echo answers/s | throughput ratio (median of rounds) | storex p99 | echo p99 | p99 ratio |");
    println!("|---|---|---|---|---|---|---|");
    for &depth in &options.depths {
        let of = |target: Target| -> Vec<&RoundTripReport> {
            reports
                .iter()
                .filter(|(_, r)| r.measure.depth == depth && r.measure.target == target)
                .map(|(_, r)| r)
                .collect()
        };
        let (storex, echo) = (of(Target::Storex), of(Target::Echo));
        let ratios = storex
            .iter()
            .zip(&echo)
            .map(|(s, e)| s.throughput() / e.throughput())
            .collect();
        let p99_ratios = storex
            .iter()
            .zip(&echo)
            .map(|(s, e)| s.latency.p99.as_secs_f64() / e.latency.p99.as_secs_f64().max(1e-9))
            .collect();
        let throughput =
            |r: &[&RoundTripReport]| median(r.iter().map(|r| r.throughput()).collect());
        let p99 = |r: &[&RoundTripReport]| {
            median(
                r.iter()
                    .map(|r| r.latency.p99.as_secs_f64() * 1e3)
                    .collect(),
            )
        };
        println!(
            "| {depth} | {:.0} | {:.0} | {:.0} % | {:.2} ms | {:.2} ms | {:.2}× |",
            throughput(&storex),
            throughput(&echo),
            median(ratios) * 100.0,
            p99(&storex),
            p99(&echo),
            median(p99_ratios)
        );
    }
    println!();
    Ok(())
}

async fn idle_sessions(options: &Options) -> Result<(), String> {
    let server = Server::start(options)?;
    // One warm-up session, so that the figure is per session and not the first one's setup.
    let warm_up = Sessions {
        sessions: 1,
        concurrency: 1,
        sources: 0,
        fan_out: false,
        echo: false,
    };
    sessions::run(server.addr, warm_up, || None).await?;
    let measure = Sessions {
        sessions: options.sessions,
        concurrency: options.concurrency,
        sources: options.sources,
        fan_out: options.fan_out,
        echo: false,
    };
    let report = sessions::run(server.addr, measure, || server.rss_kib()).await?;
    drop(server);
    // The limit: the same connections to the echo endpoint of a fresh server.
    let echo_server = Server::start(options)?;
    let echo_measure = Sessions {
        echo: true,
        ..measure
    };
    sessions::run(
        echo_server.addr,
        Sessions {
            sessions: 1,
            concurrency: 1,
            sources: 0,
            fan_out: false,
            ..echo_measure
        },
        || None,
    )
    .await?;
    let echo = sessions::run(echo_server.addr, echo_measure, || echo_server.rss_kib()).await?;
    drop(echo_server);
    println!(
        "## Sessions: {} idle joined sessions ({} connecting at once, from {} source addresses)",
        report.joined, options.concurrency, options.sources
    );
    println!();
    println!("| figure | storex | echo (the limit) | ratio |");
    println!("|---|---|---|---|");
    let rss = |r: &sessions::SessionsReport| {
        r.rss_kib.map_or("?".into(), |(before, after)| {
            format!("{before} KiB / {after} KiB")
        })
    };
    println!(
        "| server RSS before / after | {} | {} | |",
        rss(&report),
        rss(&echo)
    );
    if let (Some(storex), Some(limit)) = (report.rss_per_session(), echo.rss_per_session()) {
        println!(
            "| resident per connection | {:.2} KiB | {:.2} KiB | {:.2}× |",
            storex / 1024.0,
            limit / 1024.0,
            storex / limit.max(1.0)
        );
    }
    println!(
        "| joins/s (connect + upgrade + join) | {:.0} | {:.0} | {:.0} % |",
        report.join_rate(),
        echo.join_rate(),
        report.join_rate() / echo.join_rate().max(1e-9) * 100.0
    );
    if let (Some(storex), Some(limit)) = (&report.fan_out, &echo.fan_out) {
        println!(
            "| fan-out: reached / pushes received | {} / {} | {} / {} | |",
            storex.reached, storex.pushes, limit.reached, limit.pushes
        );
        for (name, storex, limit) in [
            ("p50", storex.latency.p50, limit.latency.p50),
            ("p99", storex.latency.p99, limit.latency.p99),
            ("max", storex.latency.max, limit.latency.max),
        ] {
            println!(
                "| fan-out {name} | {} | {} | {:.2}× |",
                ms(storex),
                ms(limit),
                storex.as_secs_f64() / limit.as_secs_f64().max(1e-9)
            );
        }
    }
    println!();
    Ok(())
}

fn main() {
    let options = match parse() {
        Ok(options) => options,
        Err(error) => {
            eprintln!("storex-bench: {error}");
            std::process::exit(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(options.client_threads)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("storex-bench: the client runtime: {error}");
            std::process::exit(1);
        }
    };
    println!("# storex-bench");
    println!();
    println!(
        "Machine: {}. Server: {} workers{}; client: {} threads.",
        machine(),
        options.server_workers,
        options
            .server_env
            .iter()
            .map(|(k, v)| format!(", {k}={v}"))
            .collect::<String>(),
        options.client_threads
    );
    println!();
    let outcome = runtime.block_on(async {
        if options.scenario != "sessions" {
            round_trips(&options).await?;
        }
        if options.scenario != "round-trip" {
            idle_sessions(&options).await?;
        }
        Ok::<_, String>(())
    });
    if let Err(error) = outcome {
        eprintln!("storex-bench: a measure failed its verification: {error}");
        std::process::exit(1);
    }
}
