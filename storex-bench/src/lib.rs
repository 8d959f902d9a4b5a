//! storex-bench: a load generator for storex and the servers it measures.
//!
//! - [`server`]: the counter store, a bare actix-ws echo endpoint (the limit of the stack) and a
//!   control endpoint for server-side mutations; the `storex-bench-server` binary serves them.
//! - [`round_trip`]: N connections × M mutations at pipeline depth D, every answer verified, over
//!   a WebSocket or the event-stream transport ([`events`]: SSE for the server's frames, POST for
//!   the client's).
//! - [`sessions`]: N idle joined sessions (resident memory per session, join rate) and the
//!   fan-out of one server-side mutation to all of them, on one server or spread over several
//!   cluster nodes.
//! - [`sizes`]: round trips against a store of N rows, in a tracked `storex::List` and in a plain
//!   `Vec`: what a mutation of one row costs as the store grows.
//! - [`cluster`]: several nodes on one Redis (issue 11): a server-side mutation's latency to a
//!   session on another node, and the nodes' backplane counters.
//! - [`json_pairs`]: generated JSON states and edited pairs, shared by the fuzz and storex-runtime's
//!   property tests.
//! - [`services`]: a Redis server of its own on a free loopback port, for the cluster measures and
//!   tests (storex-runtime's tests include the file too).
//! - [`soak`]: N clients × M mutations with every socket killed at random moments and resumed,
//!   server-side mutations interleaved; nothing lost, nothing applied twice (issue 10).
//! - [`fuzz`]: generated frames (valid, truncated, mutated, deeply nested, forged resumes) through
//!   the session core over an in-memory transport, and generated state pairs through diff and
//!   apply; every frame answered or closed with a listed code, no panic (issue 10).
//!
//! The `storex-bench` binary starts the server as a child process (its resident memory is read
//! from `/proc/<pid>/status`) and reports every figure next to the echo measured in the same run.
//! See docs/BENCHMARKS.md.

pub mod client;
pub mod cluster;
pub mod events;
pub mod fuzz;
pub mod json_pairs;
pub mod round_trip;
pub mod server;
pub mod services;
pub mod sessions;
pub mod sizes;
pub mod soak;
pub mod stats;

/// The resident set of process `pid` in KiB (`VmRSS` of `/proc/<pid>/status`).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
}
