//! A short run of the fuzz (issue 10) with a fixed seed: generated frames through the session
//! core over the in-memory transport, generated state pairs through diff and apply. Every frame
//! must be answered or closed with a code PROTOCOL.md lists, with no panic; every diff must apply
//! exactly. The full run (10^7 inputs) is `storex-bench --scenario fuzz`; see docs/BENCHMARKS.md.

use std::time::Duration;

use storex_bench::fuzz::{self, Fuzz, Kind};

#[test]
fn a_short_fuzz_finds_no_failure() {
    let fuzz = Fuzz {
        frames: 20_000,
        // proptest's generation is slow in a debug build: fewer pairs than frames.
        diffs: 6_000,
        seed: 20_251,
        workers: 2,
        patience: Duration::from_secs(20),
        max_failures: 5,
    };
    let report = fuzz::run(&fuzz);
    let failures: Vec<String> = report.failures.iter().map(ToString::to_string).collect();
    assert!(
        report.passed(),
        "{}\n{} panics; failures:\n{}",
        report.render(),
        report.panics,
        failures.join("\n")
    );

    // Everything asked for ran, and every kind of input was fed.
    assert!(report.frames.total() >= fuzz.frames, "{}", report.render());
    assert_eq!(report.diffs.total(), fuzz.diffs);
    for kind in Kind::ALL {
        if kind == Kind::ResumeExpired {
            // Its tokens expire at the next second: a short run may end before.
            continue;
        }
        assert!(
            report.frames.inputs[kind.index()] > 0,
            "no input of kind {:?}\n{}",
            kind,
            report.render()
        );
    }
    assert!(report.frames.resumed > 0, "{}", report.render());
    assert!(report.frames.versions_checked > 0, "{}", report.render());
    let codes = report.frames.by_code();
    for code in [1002, 1007, 1009, 4000, 4001] {
        assert!(
            codes.contains_key(&code),
            "no close {code}\n{}",
            report.render()
        );
    }
    assert!(report.diffs.changes > 0);
}
