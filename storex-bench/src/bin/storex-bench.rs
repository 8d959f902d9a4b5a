//! The load generator: starts `storex-bench-server` as a child process and measures round trips
//! (storex and echo, alternated, in the same run), idle sessions and fan-out. Reports; never fails
//! on a timing, only on a wrong or missing answer.
//!
//! ```text
//! storex-bench [--scenario all|round-trip|sessions] [--connections 100] [--mutations 1000]
//!              [--depths 1,16] [--rounds 5] [--sessions 10000] [--concurrency 256] [--sources 16]
//!              [--no-fan-out] [--server-workers 2] [--client-threads 2] [--server-env KEY=VALUE]…
//!              [--server-bin PATH]
//! storex-bench --scenario soak [--clients 1000] [--mutations 1000] [--kills 3] [--window 32]
//!              [--tick-ms 50] [--ttl-ms 15000] [--reconnect-ms 500] [--seed 10] [--repeat 1]
//!              (and the server and client
//!              flags above; --repeat runs the soak again on the same server, seed + 1 …)
//! storex-bench --scenario fuzz [--inputs 10000000] [--seed 1] [--client-threads 2]
//! storex-bench --scenario cluster [--sessions 10000] [--rounds 3] [--samples 1000]
//!              (and --concurrency, --sources and the server and client flags above)
//! storex-bench --scenario durable [--connections 100] [--mutations 1000] [--depths 1,16]
//!              [--rounds 5] (and the server and client flags above)
//! storex-bench --scenario metrics [--connections 100] [--mutations 1000] [--depths 1,16]
//!              [--rounds 5] (and the server and client flags above)
//! storex-bench --scenario events [--connections 100] [--mutations 1000] [--depths 1,16]
//!              [--rounds 5] (and the server and client flags above)
//! storex-bench --scenario sizes [--sizes 100,10000,100000] [--connections 10] [--mutations 2000]
//!              [--depths 1] [--rounds 5] [--vec-budget 2000000] (and the server and client
//!              flags above)
//! ```
//!
//! The soak (issue 10) is not part of `all`: see `storex_bench::soak` and docs/BENCHMARKS.md.
//! Nor is the cluster (issue 11), which starts its own `redis-server` and two nodes on it
//! (`storex-bench-server --redis URL`): the fan-out to N sessions spread over both nodes against
//! one node without Redis holding them all, and the latency of a mutation triggered on node 1 to
//! a session on node 2 against one on node 1 (see `storex_bench::cluster`).
//! Nor is `durable` (issue 11): round trips against a node whose sessions are durable in Redis
//! (`STOREX_BENCH_DURABLE=1`: every change saved before its answer) and against the same node
//! without durability, alternated, on one `redis-server` of its own.
//! Nor is `metrics` (issue 14): round trips against a server that counts in Prometheus metrics
//! (`STOREX_BENCH_METRICS=1`) and against the same server without them, alternated.
//! Nor is `sizes` ("Mutations that cost what they change"): round trips against a store of N
//! rows for each N of `--sizes`, one `touch` (one field of one row) per mutation, the rows in a
//! tracked `storex::List` (`Bench.Table`) and in a plain `Vec` (`Bench.TableVec`), with the
//! counter as a reference, all alternated in one run on one server (see `storex_bench::sizes`).
//! Each size's throughput is reported as a ratio to the smallest size's with the `List`, the
//! median of the rounds' ratios. Every mutation of the `Vec` store copies and diffs every row, so
//! it commits only `min(M, max(10, vec-budget / N))` mutations per connection.
//! Nor is the fuzz (issue 10), which runs in this process (no server child; one worker per
//! client thread): see `storex_bench::fuzz`. It exits with 1 on any failure.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use storex_bench::cluster::{self, LatencyReport};
use storex_bench::fuzz::{self, Fuzz};
use storex_bench::round_trip::{self, CpuClock, RoundTrip, RoundTripReport, Target};
use storex_bench::services::RedisServer;
use storex_bench::sessions::{self, Sessions, SessionsReport};
use storex_bench::sizes::{self, Table, TableRoundTrip};
use storex_bench::soak::{self, Soak, SoakReport};
use storex_bench::stats::{ms, Percentiles};

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
    soak: Soak,
    soak_repeat: usize,
    fuzz_inputs: u64,
    fuzz_seed: u64,
    /// The cluster's cross-node latency: triggers per measure.
    samples: usize,
    /// The size measure's table sizes (rows per store instance).
    sizes: Vec<u64>,
    /// The size measure's bound on the `Vec` store: rows copied per connection per measure.
    vec_budget: u64,
}

fn parse() -> Result<Options, String> {
    let mut options = Options {
        scenario: "all".into(),
        connections: 100,
        mutations: 1_000,
        depths: vec![1, 16],
        rounds: 5,
        sessions: 10_000,
        concurrency: 256,
        sources: 16,
        fan_out: true,
        server_workers: 2,
        client_threads: 2,
        server_env: Vec::new(),
        server_bin: None,
        soak: Soak::default(),
        soak_repeat: 1,
        fuzz_inputs: 10_000_000,
        fuzz_seed: 1,
        samples: 1_000,
        sizes: vec![100, 10_000, 100_000],
        vec_budget: 2_000_000,
    };
    let mut soak_mutations = None;
    let mut rounds = None;
    let mut connections = None;
    let mut depths = None;
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
            "--connections" => connections = Some(number(&value)?),
            "--mutations" => {
                options.mutations = number(&value)? as u64;
                soak_mutations = Some(options.mutations);
            }
            "--depths" => {
                depths = Some(
                    value
                        .split(',')
                        .map(number)
                        .collect::<Result<Vec<_>, _>>()?,
                )
            }
            "--sizes" => {
                options.sizes = value
                    .split(',')
                    .map(|size| number(size).map(|size| size as u64))
                    .collect::<Result<_, _>>()?;
                let max = storex_bench::server::MAX_TABLE_ITEMS;
                if let Some(bad) = options.sizes.iter().find(|size| !(1..=max).contains(*size)) {
                    return Err(format!("--sizes: from 1 to {max} rows, not {bad}"));
                }
            }
            "--vec-budget" => options.vec_budget = number(&value)?.max(1) as u64,
            "--rounds" => rounds = Some(number(&value)?.max(1)),
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
            "--clients" => options.soak.clients = number(&value)?,
            "--kills" => {
                options.soak.kills = u32::try_from(number(&value)?).unwrap_or(u32::MAX);
            }
            "--window" => options.soak.window = number(&value)?.clamp(1, 256),
            "--tick-ms" => options.soak.tick_every = millis(number(&value)?),
            "--ttl-ms" => options.soak.resume_ttl = millis(number(&value)?),
            "--repeat" => options.soak_repeat = number(&value)?.max(1),
            "--reconnect-ms" => options.soak.reconnect_base = millis(number(&value)?),
            "--seed" => {
                options.soak.seed = number(&value)? as u64;
                options.fuzz_seed = options.soak.seed;
            }
            "--inputs" => options.fuzz_inputs = number(&value)? as u64,
            "--samples" => options.samples = number(&value)?.max(1),
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    let scenarios = [
        "all",
        "round-trip",
        "sessions",
        "soak",
        "fuzz",
        "cluster",
        "durable",
        "metrics",
        "events",
        "sizes",
    ];
    if !scenarios.contains(&options.scenario.as_str()) {
        return Err(format!("unknown scenario {}", options.scenario));
    }
    options.rounds = rounds.unwrap_or(if options.scenario == "cluster" { 3 } else { 5 });
    // The size measure's own defaults: 10 connections × 2,000 mutations at depth 1.
    let sizes = options.scenario == "sizes";
    options.connections = connections.unwrap_or(if sizes { 10 } else { 100 });
    options.depths = depths.unwrap_or(if sizes { vec![1] } else { vec![1, 16] });
    if sizes && soak_mutations.is_none() {
        options.mutations = 2_000;
    }
    options.soak.mutations = soak_mutations.unwrap_or(options.soak.mutations);
    options.soak.sources = options.sources;
    options.soak.concurrency = options.concurrency;
    Ok(options)
}

/// The server child; killed when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn start(options: &Options) -> Result<Self, String> {
        Self::start_with(options, &[])
    }

    /// [`Server::start`] with more arguments (`--redis URL`: a cluster node).
    fn start_with(options: &Options, extra: &[&str]) -> Result<Self, String> {
        let bin = match &options.server_bin {
            Some(bin) => bin.clone(),
            None => std::env::current_exe()
                .map_err(|e| format!("this binary's path: {e}"))?
                .with_file_name("storex-bench-server"),
        };
        let mut child = Command::new(&bin)
            .args(["--addr", "127.0.0.1:0"])
            .args(["--workers", &options.server_workers.to_string()])
            .args(extra)
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

/// One row of a table of paired sessions measures: each side's median over the rounds and the
/// median of the rounds' ratios (first / second).
fn paired_row(
    rounds: &[(SessionsReport, SessionsReport)],
    name: &str,
    unit: &str,
    decimals: usize,
    of: &dyn Fn(&SessionsReport) -> f64,
) {
    let first = median(rounds.iter().map(|(a, _)| of(a)).collect());
    let second = median(rounds.iter().map(|(_, b)| of(b)).collect());
    let ratio = median(
        rounds
            .iter()
            .map(|(a, b)| of(a) / of(b).max(1e-9))
            .collect(),
    );
    println!("| {name} | {first:.decimals$}{unit} | {second:.decimals$}{unit} | {ratio:.2}× |");
}

/// Two sides of round-trip measures, round by round: the medians of the rounds.
struct Comparison {
    /// Answers per second of each side.
    throughput: (f64, f64),
    /// The first side's throughput over the second's (the median of the rounds' ratios).
    ratio: f64,
    /// p99 latency of each side, in ms.
    p99_ms: (f64, f64),
    /// The first side's p99 over the second's.
    p99_ratio: f64,
}

impl Comparison {
    fn of(first: &[&RoundTripReport], second: &[&RoundTripReport]) -> Self {
        let pairs = || first.iter().zip(second);
        let throughput =
            |r: &[&RoundTripReport]| median(r.iter().map(|r| r.throughput()).collect());
        let p99 = |r: &[&RoundTripReport]| {
            median(
                r.iter()
                    .map(|r| r.latency.p99.as_secs_f64() * 1e3)
                    .collect(),
            )
        };
        Self {
            throughput: (throughput(first), throughput(second)),
            ratio: median(
                pairs()
                    .map(|(a, b)| a.throughput() / b.throughput())
                    .collect(),
            ),
            p99_ms: (p99(first), p99(second)),
            p99_ratio: median(
                pairs()
                    .map(|(a, b)| {
                        a.latency.p99.as_secs_f64() / b.latency.p99.as_secs_f64().max(1e-9)
                    })
                    .collect(),
            ),
        }
    }
}

/// `pair` in odd rounds, reversed in even ones: drift of the machine hits both sides alike.
fn alternated<T>(round: usize, mut pair: [T; 2]) -> [T; 2] {
    if round.is_multiple_of(2) {
        pair.reverse();
    }
    pair
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
            let targets = alternated(round, [Target::Echo, Target::Storex]);
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
        let c = Comparison::of(&storex, &echo);
        println!(
            "| {depth} | {:.0} | {:.0} | {:.0} % | {:.2} ms | {:.2} ms | {:.2}× |",
            c.throughput.0,
            c.throughput.1,
            c.ratio * 100.0,
            c.p99_ms.0,
            c.p99_ms.1,
            c.p99_ratio
        );
    }
    println!();
    Ok(())
}

/// Round trips with durable sessions against the same server without them, alternated: two
/// nodes on one Redis, the same binary and backplane, one saving every change before its
/// answer (`STOREX_BENCH_DURABLE=1`).
async fn durable_round_trips(options: &Options) -> Result<(), String> {
    let redis = RedisServer::start()?;
    let url = redis.url();
    let plain = Server::start_with(options, &["--redis", &url])?;
    let mut durable_options = options.clone();
    durable_options
        .server_env
        .push(("STOREX_BENCH_DURABLE".into(), "1".into()));
    let durable = Server::start_with(&durable_options, &["--redis", &url])?;
    paired_round_trips(
        options,
        ("Round trips with durable sessions", "durable vs not"),
        ("durable", &durable, Target::Storex),
        ("not durable", &plain, Target::Storex),
    )
    .await
}

/// Round trips with Prometheus metrics on against the same server without them, alternated:
/// two servers of the same binary, one counting every frame (`STOREX_BENCH_METRICS=1`). The
/// metrics server's own count of the mutations it answered is printed after, as a check that
/// it counted them.
async fn metrics_round_trips(options: &Options) -> Result<(), String> {
    let plain = Server::start(options)?;
    let mut metrics_options = options.clone();
    metrics_options
        .server_env
        .push(("STOREX_BENCH_METRICS".into(), "1".into()));
    let counted = Server::start(&metrics_options)?;
    paired_round_trips(
        options,
        ("Round trips with metrics", "metrics on vs off"),
        ("metrics on", &counted, Target::Storex),
        ("metrics off", &plain, Target::Storex),
    )
    .await?;
    let text = storex_bench::client::http_get_text(counted.addr, "/metrics").await?;
    let ok = text
        .lines()
        .filter(|line| {
            line.starts_with("storex_mutations_total{") && line.contains("outcome=\"ok\"")
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>();
    println!("The metrics server counted {ok:.0} mutations answered ok.");
    println!();
    Ok(())
}

/// Round trips over the event-stream transport (SSE for the answers, a POST for each batch of
/// mutations) against WebSocket round trips to the same server, alternated.
async fn event_stream_round_trips(options: &Options) -> Result<(), String> {
    let server = Server::start(options)?;
    paired_round_trips(
        options,
        (
            "Round trips over the event stream",
            "SSE + POST vs WebSocket, one server",
        ),
        ("event stream", &server, Target::Events),
        ("WebSocket", &server, Target::Storex),
    )
    .await
}

/// Round trips against two servers (or two transports), alternated round by round (which goes
/// first alternates too): a heading (`title` and what is compared, `versus`), a table of each
/// round, then the first's figures as a ratio to the second's.
async fn paired_round_trips(
    options: &Options,
    (title, versus): (&str, &str),
    first: (&str, &Server, Target),
    second: (&str, &Server, Target),
) -> Result<(), String> {
    println!(
        "## {title}: {} connections × {} mutations, {versus}, alternated, {} rounds",
        options.connections, options.mutations, options.rounds
    );
    println!();
    println!("| round | depth | server | answers/s | p50 | p99 | max |");
    println!("|---|---|---|---|---|---|---|");
    // (depth, the first?, report)
    let mut reports: Vec<(usize, bool, RoundTripReport)> = Vec::new();
    for round in 1..=options.rounds {
        for &depth in &options.depths {
            let order = alternated(round, [false, true]);
            for is_first in order {
                let (label, server, target) = if is_first { first } else { second };
                let measure = RoundTrip {
                    target,
                    connections: options.connections,
                    mutations: options.mutations,
                    depth,
                };
                let report = round_trip::run(server.addr, measure).await?;
                println!(
                    "| {round} | {depth} | {label} | {:.0} | {} | {} | {} |",
                    report.throughput(),
                    ms(report.latency.p50),
                    ms(report.latency.p99),
                    ms(report.latency.max)
                );
                reports.push((depth, is_first, report));
            }
        }
    }
    println!();
    let (a, b) = (first.0, second.0);
    println!(
        "| depth | {a} answers/s | {b} answers/s | ratio (median of rounds) | {a} p99 | {b} p99 |"
    );
    println!("|---|---|---|---|---|---|");
    for &depth in &options.depths {
        let of = |wanted: bool| -> Vec<&RoundTripReport> {
            reports
                .iter()
                .filter(|(d, is_first, _)| *d == depth && *is_first == wanted)
                .map(|(_, _, report)| report)
                .collect()
        };
        let c = Comparison::of(&of(true), &of(false));
        println!(
            "| {depth} | {:.0} | {:.0} | {:.0} % | {:.2} ms | {:.2} ms |",
            c.throughput.0,
            c.throughput.1,
            c.ratio * 100.0,
            c.p99_ms.0,
            c.p99_ms.1,
        );
    }
    println!();
    Ok(())
}

/// What one measure of the size scenario talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Subject {
    /// `Bench.Counter`: the smallest store, the reference.
    Counter,
    /// A table store of this many rows.
    Table(Table, u64),
}

/// One measure of the size scenario.
struct SizedReport {
    round: usize,
    depth: usize,
    what: Subject,
    /// Mutations per connection.
    mutations: u64,
    throughput: f64,
    latency: Percentiles,
    /// The server's CPU time per mutation, in µs.
    cpu_us: Option<f64>,
}

/// CPU time per answer, in µs.
fn cpu_per(cpu: Option<Duration>, answers: u64) -> Option<f64> {
    cpu.map(|cpu| cpu.as_secs_f64() * 1e6 / answers.max(1) as f64)
}

fn cpu_text(cpu_us: Option<f64>) -> String {
    cpu_us.map_or_else(|| "-".to_owned(), |us| format!("{us:.1} µs"))
}

/// The mutations per connection of a measure: `--mutations`, or for the `Vec` store, which copies
/// and diffs every row per mutation, `min(M, max(10, vec-budget / N))`.
fn sized_mutations(options: &Options, what: Subject) -> u64 {
    match what {
        Subject::Table(Table::Vec, items) => options
            .mutations
            .min((options.vec_budget / items.max(1)).max(10)),
        _ => options.mutations,
    }
}

/// Round trips against stores of N rows for each N of `--sizes`, a tracked `List` and a plain
/// `Vec` at each, and the counter as a reference, all on one server and alternated (the order of
/// the measures reversed every other round); each size's throughput as a ratio to the smallest
/// size's with the `List`, the median of the rounds' ratios.
async fn sizes_scenario(options: &Options) -> Result<(), String> {
    let server = Server::start(options)?;
    let pid = server.child.id();
    let clocks = || -> Option<CpuClock> { Some(Arc::new(move || round_trip::process_cpu_ns(pid))) };
    let mut sizes = options.sizes.clone();
    sizes.sort_unstable();
    sizes.dedup();
    let Some(&baseline) = sizes.first() else {
        return Err("--sizes: no size".into());
    };
    let mut order = vec![Subject::Counter];
    for &items in &sizes {
        order.push(Subject::Table(Table::List, items));
        order.push(Subject::Table(Table::Vec, items));
    }
    println!(
        "## Store sizes: {} connections × {} `touch` mutations (one field of one row each), depths {:?}, rows {}, `List` vs `Vec` vs the counter, alternated, {} rounds",
        options.connections,
        options.mutations,
        options.depths,
        sizes
            .iter()
            .map(|size| size.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        options.rounds
    );
    println!();
    println!(
        "Every mutation of the `Vec` store copies and diffs every row, so it commits min({}, max(10, {} / rows)) mutations per connection (`--vec-budget`, rows copied per connection per measure): {}.",
        options.mutations,
        options.vec_budget,
        sizes
            .iter()
            .map(|&items| format!(
                "{} at {items} rows",
                sized_mutations(options, Subject::Table(Table::Vec, items))
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!();
    println!("The server's CPU per mutation is its threads' CPU time (`/proc/<pid>/task/*/schedstat`) from the moment every connection had joined to the moment every one had its last answer, over the answers.");
    println!();
    println!("| round | depth | rows | store | mutations per connection | mutations/s | p50 | p99 | max | server CPU per mutation | joins (not measured) |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let mut reports: Vec<SizedReport> = Vec::new();
    for round in 1..=options.rounds {
        for &depth in &options.depths {
            let mut measures = order.clone();
            if round.is_multiple_of(2) {
                measures.reverse();
            }
            for what in measures {
                let mutations = sized_mutations(options, what);
                let (rows, store, throughput, latency, joins, cpu) = match what {
                    Subject::Counter => {
                        let measure = RoundTrip {
                            target: Target::Storex,
                            connections: options.connections,
                            mutations,
                            depth,
                        };
                        let report =
                            round_trip::run_with_cpu(server.addr, measure, clocks()).await?;
                        let rows = "1 field".to_owned();
                        let cpu = cpu_per(report.cpu, report.answers);
                        (
                            rows,
                            "Counter",
                            report.throughput(),
                            report.latency,
                            None,
                            cpu,
                        )
                    }
                    Subject::Table(table, items) => {
                        let measure = TableRoundTrip {
                            table,
                            items,
                            connections: options.connections,
                            mutations,
                            depth,
                        };
                        let report = sizes::run(server.addr, measure, clocks()).await?;
                        (
                            items.to_string(),
                            table.name(),
                            report.throughput(),
                            report.latency,
                            Some(report.joins),
                            cpu_per(report.cpu, report.answers),
                        )
                    }
                };
                println!(
                    "| {round} | {depth} | {rows} | {store} | {mutations} | {throughput:.0} | {} | {} | {} | {} | {} |",
                    ms(latency.p50),
                    ms(latency.p99),
                    ms(latency.max),
                    cpu_text(cpu),
                    joins.map_or_else(|| "-".to_owned(), ms),
                );
                reports.push(SizedReport {
                    round,
                    depth,
                    what,
                    mutations,
                    throughput,
                    latency,
                    cpu_us: cpu,
                });
            }
        }
    }
    println!();
    println!(
        "| depth | rows | store | mutations per connection | mutations/s | p50 | p99 | server CPU per mutation | throughput / `List` at {baseline} rows (median of the rounds' ratios) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for &depth in &options.depths {
        let base = Subject::Table(Table::List, baseline);
        let of = |what: Subject| -> Vec<&SizedReport> {
            reports
                .iter()
                .filter(|r| r.depth == depth && r.what == what)
                .collect()
        };
        let bases = of(base);
        for &what in &order {
            let rows = of(what);
            let Some(first) = rows.first() else {
                continue;
            };
            let ratio = median(
                rows.iter()
                    .filter_map(|r| {
                        let base = bases.iter().find(|b| b.round == r.round)?;
                        Some(r.throughput / base.throughput.max(1e-9))
                    })
                    .collect(),
            );
            let latency = |of: fn(&Percentiles) -> Duration| {
                median(
                    rows.iter()
                        .map(|r| of(&r.latency).as_secs_f64() * 1e3)
                        .collect(),
                )
            };
            let (rows_name, store) = match what {
                Subject::Counter => ("1 field (reference)".to_owned(), "Counter"),
                Subject::Table(table, items) => (items.to_string(), table.name()),
            };
            let cpus: Vec<f64> = rows.iter().filter_map(|r| r.cpu_us).collect();
            let cpu = (!cpus.is_empty()).then(|| median(cpus));
            println!(
                "| {depth} | {rows_name} | {store} | {} | {:.0} | {:.2} ms | {:.2} ms | {} | {:.0} % |",
                first.mutations,
                median(rows.iter().map(|r| r.throughput).collect()),
                latency(|p| p.p50),
                latency(|p| p.p99),
                cpu_text(cpu),
                ratio * 100.0
            );
        }
    }
    println!();
    Ok(())
}

/// One sessions measure on a fresh server (so that its memory is the sessions' alone), after
/// one warm-up session (so that the figure is per session, not the first one's setup).
async fn fresh_sessions(options: &Options, echo: bool) -> Result<SessionsReport, String> {
    let server = Server::start(options)?;
    let measure = Sessions {
        sessions: options.sessions,
        concurrency: options.concurrency,
        sources: options.sources,
        fan_out: options.fan_out,
        echo,
    };
    let warm_up = Sessions {
        sessions: 1,
        concurrency: 1,
        sources: 0,
        fan_out: false,
        ..measure
    };
    sessions::run(server.addr, warm_up, || None).await?;
    sessions::run(server.addr, measure, || server.rss_kib()).await
}

fn kib(report: &SessionsReport) -> f64 {
    report.rss_per_session().unwrap_or(0.0) / 1024.0
}

fn fan_out_ms(report: &SessionsReport, of: fn(&Percentiles) -> Duration) -> f64 {
    report
        .fan_out
        .as_ref()
        .map_or(0.0, |f| of(&f.latency).as_secs_f64() * 1e3)
}

async fn idle_sessions(options: &Options) -> Result<(), String> {
    println!(
        "## Sessions: {} idle joined sessions ({} connecting at once, from {} source addresses), storex vs echo, {} rounds",
        options.sessions, options.concurrency, options.sources, options.rounds
    );
    println!();
    println!("| round | target | resident per connection | joins/s | fan-out p50 | fan-out p99 | fan-out max |");
    println!("|---|---|---|---|---|---|---|");
    let mut rounds = Vec::new();
    for round in 1..=options.rounds {
        let order = alternated(round, [false, true]);
        let mut pair = [None, None];
        for echo in order {
            let report = fresh_sessions(options, echo).await?;
            let fan_out = |of: fn(&Percentiles) -> Duration| match report.fan_out {
                Some(_) => format!("{:.1} ms", fan_out_ms(&report, of)),
                None => "-".into(),
            };
            println!(
                "| {round} | {} | {:.2} KiB | {:.0} | {} | {} | {} |",
                if echo { "echo" } else { "storex" },
                kib(&report),
                report.join_rate(),
                fan_out(|p| p.p50),
                fan_out(|p| p.p99),
                fan_out(|p| p.max),
            );
            pair[usize::from(echo)] = Some(report);
        }
        if let [Some(storex), Some(echo)] = pair {
            rounds.push((storex, echo));
        }
    }
    println!();
    println!("| figure (median of rounds) | storex | echo (the limit) | storex / echo |");
    println!("|---|---|---|---|");
    let row = |name: &str, unit: &str, of: &dyn Fn(&SessionsReport) -> f64| {
        paired_row(&rounds, name, unit, 2, of);
    };
    row("resident per connection", " KiB", &kib);
    row("joins/s (connect + upgrade + join)", "", &|r| r.join_rate());
    if options.fan_out {
        row("fan-out p50", " ms", &|r| fan_out_ms(r, |p| p.p50));
        row("fan-out p99", " ms", &|r| fan_out_ms(r, |p| p.p99));
        row("fan-out max", " ms", &|r| fan_out_ms(r, |p| p.max));
    }
    println!();
    Ok(())
}

/// Redis and two cluster nodes on it (`--redis URL`); the nodes are killed first when dropped.
struct TwoNodes {
    nodes: [Server; 2],
    _redis: RedisServer,
}

impl TwoNodes {
    fn start(options: &Options) -> Result<Self, String> {
        let redis = RedisServer::start()?;
        let url = redis.url();
        let first = Server::start_with(options, &["--redis", &url])?;
        let second = Server::start_with(options, &["--redis", &url])?;
        Ok(Self {
            nodes: [first, second],
            _redis: redis,
        })
    }

    fn addrs(&self) -> [SocketAddr; 2] {
        [self.nodes[0].addr, self.nodes[1].addr]
    }
}

/// A duration in milliseconds with three decimals (the cross-node latencies are below one).
fn ms3(duration: Duration) -> String {
    format!("{:.3} ms", duration.as_secs_f64() * 1e3)
}

/// Several nodes on Redis (issue 11): the fan-out over two nodes, then the cross-node latency.
async fn cluster_scenario(options: &Options) -> Result<(), String> {
    cluster_fan_out(options).await?;
    cross_node_latency(options).await
}

/// The fan-out to N sessions spread over two nodes on a fresh Redis (every second session on
/// node 2, the mutation triggered on node 1) against one node without Redis holding them all;
/// fresh processes for each measure, which one goes first alternating by round.
async fn cluster_fan_out(options: &Options) -> Result<(), String> {
    let measure = Sessions {
        sessions: options.sessions,
        concurrency: options.concurrency,
        sources: options.sources,
        fan_out: true,
        echo: false,
    };
    println!(
        "## Several nodes: fan-out to {} sessions over 2 nodes on Redis (every second session on node 2, the mutation triggered on node 1) vs 1 node without Redis, {} rounds",
        options.sessions, options.rounds
    );
    println!();
    println!("| round | target | joins/s | reached on the trigger's node | pushes | fan-out p50 | fan-out p99 | fan-out max |");
    println!("|---|---|---|---|---|---|---|---|");
    let mut rounds = Vec::new();
    for round in 1..=options.rounds {
        let order = alternated(round, [true, false]);
        let mut pair = [None, None];
        for two in order {
            let report = if two {
                let nodes = TwoNodes::start(options)?;
                sessions::run_on(&nodes.addrs(), measure, || None).await?
            } else {
                let server = Server::start(options)?;
                sessions::run(server.addr, measure, || None).await?
            };
            let (reached, pushes) = report
                .fan_out
                .as_ref()
                .map_or((0, 0), |f| (f.reached, f.pushes));
            println!(
                "| {round} | {} | {:.0} | {reached} | {pushes} | {:.1} ms | {:.1} ms | {:.1} ms |",
                if two { "2 nodes + Redis" } else { "1 node" },
                report.join_rate(),
                fan_out_ms(&report, |p| p.p50),
                fan_out_ms(&report, |p| p.p99),
                fan_out_ms(&report, |p| p.max),
            );
            pair[usize::from(!two)] = Some(report);
        }
        if let [Some(two), Some(one)] = pair {
            rounds.push((two, one));
        }
    }
    println!();
    println!("| figure (median of rounds) | 2 nodes + Redis | 1 node | 2 nodes / 1 node |");
    println!("|---|---|---|---|");
    let row = |name: &str, unit: &str, decimals: usize, of: &dyn Fn(&SessionsReport) -> f64| {
        paired_row(&rounds, name, unit, decimals, of);
    };
    row("fan-out p50", " ms", 1, &|r| fan_out_ms(r, |p| p.p50));
    row("fan-out p99", " ms", 1, &|r| fan_out_ms(r, |p| p.p99));
    row("fan-out max", " ms", 1, &|r| fan_out_ms(r, |p| p.max));
    row("joins/s (connect + upgrade + join)", "", 0, &|r| {
        r.join_rate()
    });
    println!();
    Ok(())
}

/// A mutation triggered on node 1, `--samples` times in a row, to one session on node 2 (through
/// Redis) against one session on node 1 (the trigger's own node): the same two nodes and Redis
/// for every measure, which one goes first alternating by round.
async fn cross_node_latency(options: &Options) -> Result<(), String> {
    let nodes = TwoNodes::start(options)?;
    let [first, second] = nodes.addrs();
    println!(
        "## Several nodes: a mutation triggered on node 1, {} times in a row, to one session on node 2 (through Redis) vs on node 1 (no Redis hop), {} rounds",
        options.samples, options.rounds
    );
    println!();
    println!("| round | session on | pushes | p50 | p99 | max |");
    println!("|---|---|---|---|---|---|");
    let mut rounds: Vec<(LatencyReport, LatencyReport)> = Vec::new();
    for round in 1..=options.rounds {
        let order = alternated(round, [second, first]);
        let mut pair = [None, None];
        for on in order {
            let report = cluster::mutate_latency(first, on, options.samples).await?;
            println!(
                "| {round} | {} | {} | {} | {} | {} |",
                if report.local {
                    "node 1 (local)"
                } else {
                    "node 2 (through Redis)"
                },
                report.pushes,
                ms3(report.latency.p50),
                ms3(report.latency.p99),
                ms3(report.latency.max)
            );
            let slot = usize::from(report.local);
            pair[slot] = Some(report);
        }
        if let [Some(remote), Some(local)] = pair {
            rounds.push((remote, local));
        }
    }
    println!();
    println!("| figure (median of rounds) | node 2 (through Redis) | node 1 (local) | difference | node 2 / node 1 |");
    println!("|---|---|---|---|---|");
    for (name, of) in [
        (
            "p50",
            (|p: &Percentiles| p.p50) as fn(&Percentiles) -> Duration,
        ),
        ("p99", |p: &Percentiles| p.p99),
        ("max", |p: &Percentiles| p.max),
    ] {
        let secs = |r: &LatencyReport| of(&r.latency).as_secs_f64();
        let remote = median(rounds.iter().map(|(r, _)| secs(r)).collect());
        let local = median(rounds.iter().map(|(_, l)| secs(l)).collect());
        let difference = median(rounds.iter().map(|(r, l)| secs(r) - secs(l)).collect());
        let ratio = median(
            rounds
                .iter()
                .map(|(r, l)| secs(r) / secs(l).max(1e-9))
                .collect(),
        );
        println!(
            "| {name} | {:.3} ms | {:.3} ms | {:.3} ms | {ratio:.2}× |",
            remote * 1e3,
            local * 1e3,
            difference * 1e3
        );
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
    if options.scenario == "fuzz" {
        std::process::exit(fuzz_scenario(&options));
    }
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
        if options.scenario == "soak" {
            return soak_scenario(&options).await;
        }
        if options.scenario == "cluster" {
            return cluster_scenario(&options).await;
        }
        if options.scenario == "durable" {
            return durable_round_trips(&options).await;
        }
        if options.scenario == "metrics" {
            return metrics_round_trips(&options).await;
        }
        if options.scenario == "events" {
            return event_stream_round_trips(&options).await;
        }
        if options.scenario == "sizes" {
            return sizes_scenario(&options).await;
        }
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

fn millis(ms: usize) -> Duration {
    Duration::from_millis(ms as u64)
}

/// The soak on a fresh server with the soak's resume TTL: a warm-up soak of the same size first
/// (so that the baseline is the memory of a server that has served this load once: what the
/// allocator keeps after a first peak is not a leak), then the measured one, `--repeat` times (each
/// round's baseline is the memory the previous one left: growth from round to round would be a
/// leak).
async fn soak_scenario(options: &Options) -> Result<(), String> {
    let mut options = options.clone();
    let ttl_ms = options.soak.resume_ttl.as_millis().to_string();
    if !options
        .server_env
        .iter()
        .any(|(key, _)| key == "STOREX_BENCH_RESUME_TTL_MS")
    {
        options
            .server_env
            .push(("STOREX_BENCH_RESUME_TTL_MS".into(), ttl_ms));
    }
    let server = Server::start(&options)?;
    let started = std::time::Instant::now();
    let at_start = server.rss_kib();
    let measure = options.soak;
    println!(
        "## Soak: {} clients × {} mutations, {} kills each, window {}, a tick every {} ms, resume TTL {} ms, reconnect base {} ms, seed {}",
        measure.clients,
        measure.mutations,
        measure.kills,
        measure.window,
        measure.tick_every.as_millis(),
        measure.resume_ttl.as_millis(),
        measure.reconnect_base.as_millis(),
        measure.seed
    );
    println!();
    let warm_up = Soak {
        seed: measure.seed ^ 0x5eed,
        ..measure
    };
    let warmed = soak::run(server.addr, warm_up, || None).await?;
    if !warmed.passed() {
        print_soak(&warmed);
        return Err("the warm-up soak failed its checks".into());
    }
    let mut passed = true;
    let mut afters = Vec::new();
    for round in 0..options.soak_repeat {
        let measure = Soak {
            seed: measure.seed + round as u64,
            ..measure
        };
        if options.soak_repeat > 1 {
            println!("### Round {} (seed {})", round + 1, measure.seed);
            println!();
        }
        let report = soak::run(server.addr, measure, || server.rss_kib()).await?;
        print_soak(&report);
        passed &= report.passed();
        afters.extend(
            report
                .rss
                .map(|rss| format!("{:.1}", rss.after as f64 / 1024.0)),
        );
    }
    if options.soak_repeat > 1 {
        println!("Server RSS after each round: {} MiB.", afters.join(", "));
    }
    if let Some(at_start) = at_start {
        println!(
            "Server resident memory right after start: {:.1} MiB (the baseline above is after a warm-up soak of the same size).",
            at_start as f64 / 1024.0
        );
    }
    println!(
        "Wall time of the whole scenario (warm-up, soak, drain): {:.1} s.",
        started.elapsed().as_secs_f64()
    );
    println!();
    if passed {
        Ok(())
    } else {
        Err("the soak failed a check (see the report)".into())
    }
}

fn print_soak(report: &SoakReport) {
    let soak = &report.soak;
    let mib = |kib: u64| kib as f64 / 1024.0;
    println!("| figure | value |");
    println!("|---|---|");
    println!(
        "| clients verified | {} of {} |",
        report.clients_verified, soak.clients
    );
    println!(
        "| mutations acknowledged | {} of {} |",
        report.acknowledged,
        soak.clients as u64 * soak.mutations
    );
    println!(
        "| kills (no close frame) | {} ({} during a resume; at least {} per client) |",
        report.kills, report.kills_during_resume, report.min_kills_per_client
    );
    println!(
        "| resumes accepted | {} ({} with the missed diffs, {} with the whole state) |",
        report.resumed_with_diff + report.resumed_with_data,
        report.resumed_with_diff,
        report.resumed_with_data
    );
    println!("| resumes refused | {} |", report.refused);
    println!(
        "| resume (reconnect → answer) p50 / p99 / max | {} / {} / {} |",
        ms(report.resume_latency.p50),
        ms(report.resume_latency.p99),
        ms(report.resume_latency.max)
    );
    println!(
        "| mutations sent again / answered `replayed` | {} / {} |",
        report.resent, report.replayed
    );
    println!(
        "| server-side ticks / live pushes received / sessions a tick missed | {} / {} / {} |",
        report.ticks, report.pushes, report.tick_shortfall
    );
    println!("| stale frames skipped | {} |", report.stale);
    println!(
        "| lost / applied twice / mirror mismatches | {} / {} / {} |",
        report.lost, report.duplicated, report.mismatches
    );
    println!(
        "| wall time: all clients (connect → final check) | {:.1} s (mutations: {:.1} s, {:.0} acknowledged/s) |",
        report.elapsed.as_secs_f64(),
        report.mutation_phase.as_secs_f64(),
        report.acknowledged as f64 / report.mutation_phase.as_secs_f64().max(1e-9)
    );
    match (report.drained, report.stats_after) {
        (Some(drained), _) => println!(
            "| all sessions gone, from the last client's leaving | {:.1} s (TTL {:.1} s) |",
            drained.as_secs_f64(),
            soak.resume_ttl.as_secs_f64()
        ),
        (None, Some(stats)) => println!(
            "| sessions left after the TTL | {} ({} detached) |",
            stats.sessions, stats.detached
        ),
        (None, None) => println!("| sessions left after the TTL | unknown |"),
    }
    if let Some(rss) = report.rss {
        println!(
            "| server RSS baseline / peak / after | {:.1} / {:.1} / {:.1} MiB |",
            mib(rss.baseline),
            mib(rss.peak),
            mib(rss.after)
        );
        println!(
            "| RSS after / baseline | {:.1} % ({}) |",
            rss.ratio() * 100.0,
            if rss.recovered() {
                "within 10 %"
            } else {
                "NOT within 10 %"
            }
        );
    }
    println!();
    for (check, held) in report.verdicts() {
        println!("- {} {check}", if held { "ok:" } else { "FAILED:" });
    }
    if report.failed_clients > 0 {
        println!();
        println!(
            "{} clients failed; the first errors:",
            report.failed_clients
        );
        for failure in &report.failures {
            println!("- {failure}");
        }
    }
    println!();
}

/// The fuzz, in this process: its report, every failure with its reproduction; 1 on a failure.
fn fuzz_scenario(options: &Options) -> i32 {
    let fuzz = Fuzz {
        workers: options.client_threads,
        ..Fuzz::new(options.fuzz_inputs, options.fuzz_seed)
    };
    println!("# storex-bench");
    println!();
    println!(
        "Machine: {}. Fuzz: {} frame inputs and {} diff inputs, seed {}, {} workers (each a current-thread runtime serving its own connections).",
        machine(),
        fuzz.frames,
        fuzz.diffs,
        fuzz.seed,
        fuzz.workers
    );
    println!();
    let report = fuzz::run(&fuzz);
    print!("{}", report.render());
    println!();
    for failure in &report.failures {
        eprintln!("{failure}");
    }
    if report.passed() {
        println!("Fuzz passed: every frame answered or closed with a listed code, no panic, every diff applied exactly.");
        0
    } else {
        eprintln!(
            "storex-bench: the fuzz failed: {} failures, {} panics (rerun with --seed {} to see them again)",
            report.failures.len(),
            report.panics,
            fuzz.seed
        );
        1
    }
}
