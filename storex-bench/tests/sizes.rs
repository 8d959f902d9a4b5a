//! The `sizes` scenario of the load generator on a tiny scale (debug build), and the table stores
//! it measures: a `touch` of one row answers a diff of exactly one change at that row, whatever
//! the table's size and whether its rows are a tracked `List` or a plain `Vec`; a bad size refuses
//! the join. Timings are never asserted.

// A test states what it expects by panicking on anything else.
#![allow(clippy::expect_used)]

mod common;

use std::sync::Arc;

use serde_json::{json, Value};
use storex_bench::client::{self, Socket};
use storex_bench::round_trip::{process_cpu_ns, CpuClock};
use storex_bench::server::{Tuning, TABLE_STORE, TABLE_VEC_STORE};
use storex_bench::sizes::{self, Table, TableRoundTrip};

use common::{runtime, start_server};

/// Sends `message` and parses the next text frame.
async fn ask(socket: &mut Socket, message: String) -> Value {
    client::feed(socket, message).await.expect("send");
    client::flush(socket).await.expect("flush");
    let text = client::next_text(socket).await.expect("an answer");
    serde_json::from_str(&text).expect("JSON")
}

fn join(store: &str, data: Value) -> String {
    json!({"type": "join", "store": store, "data": data, "request": 0}).to_string()
}

fn touch(store: &str, session: &str, index: u64, request: u64) -> String {
    json!({
        "type": "mutation", "store": store, "session": session,
        "data": {"name": "touch", "data": [index]}, "request": request,
    })
    .to_string()
}

#[test]
fn a_touch_is_one_change_at_its_row() {
    let server = start_server(Tuning::default());
    runtime().block_on(async {
        for store in [TABLE_STORE, TABLE_VEC_STORE] {
            let mut socket = client::connect(server, "/storex", None)
                .await
                .expect("connect");
            let joined = ask(&mut socket, join(store, json!({"items": 1000}))).await;
            assert_eq!(joined["type"], "join", "{joined}");
            let session = joined["session"].as_str().expect("a session").to_owned();
            let items = joined["data"]["items"].as_array().expect("rows");
            assert_eq!(items.len(), 1000);
            assert_eq!(
                items[234],
                json!({"id": 234, "title": "item 234", "done": true, "tags": ["bench"], "touches": 0})
            );
            // (index, the row it touches, that row's touches after it)
            let touches = [(1234, 234, 1), (234, 234, 2), (999, 999, 1), (5_000_000_007, 7, 1)];
            for (request, (index, row, count)) in (1..).zip(touches) {
                let answer = ask(&mut socket, touch(store, &session, index, request)).await;
                assert_eq!(answer["type"], "mutation", "{store}: {answer}");
                assert_eq!(answer["request"], request, "{store}: {answer}");
                assert_eq!(
                    answer["diff"],
                    json!([{"a": "u", "p": ["items", row, "touches"], "t": count}]),
                    "{store}: touch({index}) must change exactly items[{row}].touches: {answer}"
                );
                assert!(answer.get("message").is_none(), "no reply: {answer}");
            }
            let _ = socket.close(None).await;
        }
    });
}

#[test]
fn a_bad_size_refuses_the_join() {
    let server = start_server(Tuning::default());
    runtime().block_on(async {
        for store in [TABLE_STORE, TABLE_VEC_STORE] {
            for data in [
                json!({}),
                json!({"items": 0}),
                json!({"items": -3}),
                json!({"items": "many"}),
                json!({"items": 1.5}),
                json!({"items": 1_000_001}),
            ] {
                let mut socket = client::connect(server, "/storex", None)
                    .await
                    .expect("connect");
                let answer = ask(&mut socket, join(store, data.clone())).await;
                assert_eq!(answer["type"], "error", "{store} {data}: {answer}");
                let error = answer["error"].as_str().expect("an error message");
                assert!(
                    error.contains(&format!(
                        r#"join {store} with {{"items": N}}, N from 1 to 1000000"#
                    )),
                    "{store} {data}: {error}"
                );
                let _ = socket.close(None).await;
            }
        }
    });
}

#[test]
fn table_round_trips_verify_every_answer() {
    let server = start_server(Tuning::default());
    // The server runs in this process: its CPU is this process's.
    let clock: CpuClock = Arc::new(|| process_cpu_ns(std::process::id()));
    runtime().block_on(async {
        for table in [Table::List, Table::Vec] {
            for (items, depth) in [(1, 1), (10, 4), (1000, 1)] {
                let measure = TableRoundTrip {
                    table,
                    items,
                    connections: 3,
                    mutations: 30,
                    depth,
                };
                let report = sizes::run(server, measure, Some(clock.clone()))
                    .await
                    .unwrap_or_else(|e| panic!("{table:?} {items} rows, depth {depth}: {e}"));
                assert_eq!(report.answers, 90);
                assert_eq!(report.latency.count, 90);
                assert!(report.cpu.is_some(), "the CPU clock was read twice");
            }
        }
        let too_many = TableRoundTrip {
            table: Table::List,
            items: 1_000_001,
            connections: 1,
            mutations: 1,
            depth: 1,
        };
        assert!(sizes::run(server, too_many, None).await.is_err());
    });
}

/// The scenario as `storex-bench --scenario sizes` runs it (its own server process), tiny: every
/// row of both tables is in the report.
#[test]
fn the_sizes_scenario_reports_every_size_and_store() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_storex-bench"))
        .args(["--scenario", "sizes", "--sizes", "10,1000"])
        .args(["--connections", "2"])
        .args(["--mutations", "20", "--rounds", "2", "--depths", "1,4"])
        .args(["--vec-budget", "2000", "--server-workers", "1"])
        .args(["--server-bin", env!("CARGO_BIN_EXE_storex-bench-server")])
        .output()
        .expect("run storex-bench");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "storex-bench failed: {}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    // The Vec store commits min(20, max(10, 2000 / rows)) mutations per connection.
    assert!(
        stdout.contains("20 at 10 rows, 10 at 1000 rows"),
        "the bound of the Vec store is said:\n{stdout}"
    );
    let rows: Vec<&str> = stdout.lines().filter(|l| l.starts_with("| ")).collect();
    for depth in [1, 4] {
        // The summary: each store at each size, the ratio to the List at 10 rows.
        for (what, mutations) in [
            ("1 field (reference) | Counter", 20),
            ("10 | List", 20),
            ("10 | Vec", 20),
            ("1000 | List", 20),
            ("1000 | Vec", 10),
        ] {
            let prefix = format!("| {depth} | {what} | {mutations} | ");
            let found: Vec<&&str> = rows.iter().filter(|l| l.starts_with(&prefix)).collect();
            assert_eq!(found.len(), 1, "one summary row {prefix}…:\n{stdout}");
            assert!(found[0].ends_with(" % |"), "a ratio: {}", found[0]);
        }
        let base = format!("| {depth} | 10 | List | 20 | ");
        assert!(
            rows.iter()
                .any(|l| l.starts_with(&base) && l.ends_with("| 100 % |")),
            "the List at 10 rows is the base:\n{stdout}"
        );
        // Every round measured every store at every size.
        for round in [1, 2] {
            for (what, mutations) in [
                ("1 field | Counter", 20),
                ("10 | List", 20),
                ("10 | Vec", 20),
                ("1000 | List", 20),
                ("1000 | Vec", 10),
            ] {
                let prefix = format!("| {round} | {depth} | {what} | {mutations} | ");
                assert_eq!(
                    rows.iter().filter(|l| l.starts_with(&prefix)).count(),
                    1,
                    "one row {prefix}…:\n{stdout}"
                );
            }
        }
    }
}
