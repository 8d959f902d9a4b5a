//! The `cluster` scenario of the load generator on a tiny scale (debug build): a real Redis, two
//! node processes on it and one without; the fan-out over both nodes and the cross-node latency
//! measured by the scenario's own functions, every push verified and every count exact. Timings
//! are never asserted.

// A test states what it expects by panicking on anything else.
#![allow(clippy::expect_used)]

mod common;

use storex_bench::cluster;
use storex_bench::round_trip::{self, RoundTrip, Target};
use storex_bench::services::RedisServer;
use storex_bench::sessions::{self, Sessions};

use common::{runtime, ServerProcess};

#[test]
fn the_cluster_scenario_verifies_every_push() {
    let redis = RedisServer::start().expect("start redis-server");
    let url = redis.url();
    let mut first = ServerProcess::spawn(&["--workers", "1", "--redis", &url]);
    let mut second = ServerProcess::spawn(&["--workers", "1", "--redis", &url]);
    let mut alone = ServerProcess::spawn(&["--workers", "1"]);
    let (first, second, alone) = (first.addr(), second.addr(), alone.addr());
    runtime().block_on(async {
        // 21 sessions: 11 on the trigger's node, 10 on the other.
        let measure = Sessions {
            sessions: 21,
            concurrency: 4,
            sources: 3,
            fan_out: true,
            echo: false,
        };
        let report = sessions::run_on(&[first, second], measure, || None)
            .await
            .expect("every join and push over two nodes verified");
        assert_eq!(report.joined, 21);
        let fan_out = report.fan_out.expect("a fan-out");
        assert_eq!(fan_out.reached, 11, "the trigger's node counts its own");
        assert_eq!(fan_out.pushes, 21);
        assert_eq!(fan_out.latency.count, 21);

        let report = sessions::run(alone, measure, || None)
            .await
            .expect("every join and push on one node verified");
        let fan_out = report.fan_out.expect("a fan-out");
        assert_eq!(fan_out.reached, 21);
        assert_eq!(fan_out.pushes, 21);

        // Twice each, as the rounds do: each measure leaves its node as it found it.
        for _ in 0..2 {
            let remote = cluster::mutate_latency(first, second, 20)
                .await
                .expect("every push through Redis verified");
            assert!(!remote.local);
            assert_eq!(remote.pushes, 20);
            assert_eq!(remote.latency.count, 20);
            let local = cluster::mutate_latency(first, first, 20)
                .await
                .expect("every push on the trigger's node verified");
            assert!(local.local);
            assert_eq!(local.pushes, 20);
            assert_eq!(local.latency.count, 20);
        }
    });
    assert_eq!(sessions::share(21, 2, 0), 11);
    assert_eq!(sessions::share(21, 2, 1), 10);
    assert_eq!(sessions::share(1, 2, 1), 0);
    // The nodes are killed first, then Redis (locals drop in reverse order).
}

#[test]
fn the_durable_scenario_verifies_every_answer() {
    let redis = RedisServer::start().expect("start redis-server");
    let url = redis.url();
    let mut durable = ServerProcess::spawn_with_env(
        &["--workers", "1", "--redis", &url],
        &[("STOREX_BENCH_DURABLE", "1")],
    );
    let durable = durable.addr();
    runtime().block_on(async {
        for depth in [1, 8] {
            let measure = RoundTrip {
                target: Target::Storex,
                connections: 4,
                mutations: 40,
                depth,
            };
            let report = round_trip::run(durable, measure)
                .await
                .expect("every answer of a durable session verified");
            assert_eq!(report.latency.count, 4 * 40, "depth {depth}");
        }
    });
    let mut connection = redis::Client::open(url)
        .and_then(|client| client.get_connection())
        .expect("a Redis connection");
    // The sessions were saved: Redis ran the save script (at least once per session; a save
    // carries every change whose answer waited for it).
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut connection)
        .expect("INFO");
    let saves: u64 = info
        .lines()
        .find_map(|line| line.strip_prefix("cmdstat_evalsha:calls="))
        .and_then(|rest| rest.split(',').next())
        .and_then(|calls| calls.parse().ok())
        .unwrap_or(0);
    assert!(saves >= 8, "{saves} saves for 8 sessions:\n{info}");
    // The clients closed their sessions: every record they saved is deleted with them.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg("storex:session:*")
            .query(&mut connection)
            .expect("KEYS");
        if keys.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "records left after their sessions ended: {keys:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
