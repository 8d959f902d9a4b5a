//! The load generator on a tiny scale (debug build): every answer verified, counts exact, over
//! both transports.
//! Timings are never asserted.

// A test states what it expects by panicking on anything else.
#![allow(clippy::expect_used)]

mod common;

use storex_bench::round_trip::{self, RoundTrip, Target};
use storex_bench::server::Tuning;
use storex_bench::sessions::{self, Sessions};

use common::{runtime, start_server};

#[test]
fn round_trips_verify_every_answer() {
    let server = start_server(Tuning::default());
    runtime().block_on(async {
        for target in [Target::Storex, Target::Events, Target::Echo] {
            for depth in [1, 4] {
                let measure = RoundTrip {
                    target,
                    connections: 3,
                    mutations: 25,
                    depth,
                };
                let report = round_trip::run(server, measure)
                    .await
                    .unwrap_or_else(|e| panic!("{target:?} depth {depth}: {e}"));
                assert_eq!(report.answers, 75);
                assert_eq!(report.latency.count, 75);
            }
        }
    });
}

#[test]
fn sessions_and_fan_out_count_exactly() {
    let server = start_server(Tuning::default());
    runtime().block_on(async {
        let measure = Sessions {
            sessions: 20,
            concurrency: 4,
            sources: 3,
            fan_out: true,
            echo: false,
        };
        let report = sessions::run(server, measure, || None)
            .await
            .expect("every join and push verified");
        assert_eq!(report.joined, 20);
        let fan_out = report.fan_out.expect("a fan-out");
        assert_eq!(fan_out.reached, 20);
        assert_eq!(fan_out.pushes, 20);
        assert_eq!(fan_out.latency.count, 20);
        assert!(report.rss_kib.is_none());
        let echo = Sessions {
            echo: true,
            ..measure
        };
        let report = sessions::run(server, echo, || None)
            .await
            .expect("every echo and push verified");
        assert_eq!(report.joined, 20);
        let fan_out = report.fan_out.expect("a fan-out");
        assert_eq!(fan_out.reached, 20);
        assert_eq!(fan_out.pushes, 20);
    });
}

#[test]
fn the_echo_pads_to_a_storex_answer() {
    let len = round_trip::storex_answer_len(1_000);
    let answer = format!(
        r#"{{"type":"mutation","store":"Bench.Counter","session":"{}","diff":[{{"a":"u","p":["counter"],"t":1000}}],"request":1000,"epoch":"0123456789abcdef","version":1000}}"#,
        storex_bench::server::FAKE_SESSION
    );
    assert_eq!(len, answer.len());
}
