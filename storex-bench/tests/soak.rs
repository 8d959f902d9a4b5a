//! The soak of issue 10 on a small scale (debug build), against a real server in this process:
//! 50 clients × 200 mutations, every socket killed at least twice without a close frame, ticks
//! from the server side in between. Asserts the checks, never a timing.

// A test states what it expects by panicking on anything else.
#![allow(clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use storex_bench::server::Tuning;
use storex_bench::soak::{self, Soak, SoakReport};

use common::start_server;

/// Runs `soak` against `server`.
fn soak_report(server: SocketAddr, soak: Soak) -> SoakReport {
    common::runtime()
        .block_on(soak::run(server, soak, || None))
        .expect("the control routes answer")
}

/// Runs `soak` against a server with `tuning`; every check must hold.
fn run(tuning: Tuning, soak: Soak) -> SoakReport {
    let report = soak_report(start_server(tuning), soak);
    let failed: Vec<_> = report
        .verdicts()
        .into_iter()
        .filter(|(_, held)| !held)
        .map(|(check, _)| check)
        .collect();
    assert!(
        failed.is_empty(),
        "failed checks: {failed:?}; {} clients failed, the first: {:#?}",
        report.failed_clients,
        report.failures
    );
    report
}

const TTL: Duration = Duration::from_secs(2);

fn tuning(history: Option<(usize, usize)>) -> Tuning {
    Tuning {
        resume_ttl: Some(TTL),
        history,
        ..Tuning::default()
    }
}

#[test]
fn fifty_clients_killed_twice_each_lose_nothing_and_apply_nothing_twice() {
    let soak = Soak {
        clients: 50,
        mutations: 200,
        kills: 2,
        window: 32,
        tick_every: Duration::from_millis(50),
        resume_ttl: TTL,
        sources: 4,
        concurrency: 50,
        seed: 50,
        reconnect_base: Duration::from_millis(100),
    };
    let report = run(tuning(None), soak);
    assert_eq!(report.clients_verified, 50);
    assert_eq!(report.acknowledged, 50 * 200);
    assert_eq!(
        (report.lost, report.duplicated, report.mismatches),
        (0, 0, 0)
    );
    assert!(report.min_kills_per_client >= 2);
    assert!(report.kills >= 100);
    assert_eq!(report.refused, 0);
    assert_eq!(
        report.resumed_with_diff + report.resumed_with_data,
        report.kills - report.kills_during_resume,
        "one accepted resume per kill, but for those killed during a resume"
    );
    assert!(report.ticks > 0, "ticks interleaved");
    assert_eq!(report.tick_shortfall, 0);
    let after = report.stats_after.expect("stats read");
    assert_eq!((after.sessions, after.detached), (0, 0));
}

/// A history of 4 diffs: most resumes miss more and get the whole state; nothing changes in
/// the checks.
#[test]
fn resumes_past_the_history_get_the_whole_state_and_lose_nothing() {
    let soak = Soak {
        clients: 20,
        mutations: 100,
        kills: 2,
        window: 16,
        tick_every: Duration::from_millis(20),
        resume_ttl: TTL,
        sources: 2,
        concurrency: 20,
        seed: 4,
        reconnect_base: Duration::from_millis(100),
    };
    let report = run(tuning(Some((4, 16 * 1024))), soak);
    assert_eq!(report.acknowledged, 20 * 100);
    assert!(report.resumed_with_data > 0, "the whole state was sent");
}

/// The control: a server that remembers no answer runs a mutation sent again after a resume a
/// second time, and the soak sees it. (Its checks are not vacuous.)
#[test]
fn without_remembered_answers_the_soak_finds_mutations_applied_twice() {
    let server = start_server(Tuning {
        remembered_requests: Some(0),
        ..tuning(None)
    });
    let soak = Soak {
        clients: 10,
        mutations: 100,
        kills: 2,
        window: 32,
        tick_every: Duration::from_millis(50),
        resume_ttl: TTL,
        sources: 0,
        concurrency: 10,
        seed: 2,
        reconnect_base: Duration::from_millis(100),
    };
    let report = soak_report(server, soak);
    assert!(report.duplicated > 0, "{:#?}", report.failures);
    assert!(!report.passed());
}
