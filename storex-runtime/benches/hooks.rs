//! The cost of mutation middleware: one commit of a small store (`increase`, one field) through
//! the test kit, which runs a config's hooks around each mutation as a session does:
//! - `none`: no hook (the baseline, measured in the same run);
//! - `empty_pair`: one before hook that lets everything through and one after hook that does
//!   nothing;
//! - `per_store_pair`: the same pair, added for this store only (`before_mutation_of`).
//!
//! `cargo bench -p storex-runtime --bench hooks`; the summary printed last gives each figure in
//! ns and its difference from the baseline.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a bench that cannot build its input has nothing to measure

use std::hint::black_box;
use std::time::SystemTime;

use criterion::{criterion_group, Criterion};
use serde::Serialize;
use storex::testing::TestStore;
use storex::{Config, Store};

mod support;
use support::{mean_ns, now};

const GROUP: &str = "hooks";

#[derive(Debug, Clone, Serialize, Store)]
#[store(name = "Bench.Hooks.Counter")]
struct Counter {
    counter: i64,
    label: String,
}

#[storex::mutations]
impl Counter {
    #[init]
    fn init() -> Self {
        Counter {
            counter: 0,
            label: "bench".into(),
        }
    }

    #[mutation("increase")]
    fn increase(&mut self) {
        self.counter += 1;
    }
}

const CASES: [&str; 3] = ["none", "empty_pair", "per_store_pair"];

fn config(case: &str) -> Config {
    let config = Config::default();
    match case {
        "none" => config,
        "empty_pair" => config.before_mutation(|_| Ok(())).after_mutation(|_, _| {}),
        _ => config
            .before_mutation_of::<Counter>(|_| Ok(()))
            .after_mutation_of::<Counter>(|_, _| {}),
    }
}

fn benches(c: &mut Criterion) {
    let mut group = c.benchmark_group(GROUP);
    for case in CASES {
        let mut store = now(TestStore::<Counter>::joining().hooks(&config(case)).join()).unwrap();
        let applied = now(store.commit("increase", [])).unwrap();
        assert_eq!(applied.diff.len(), 1, "one change per commit");
        group.bench_function(case, |b| {
            b.iter(|| now(store.commit(black_box("increase"), [])))
        });
    }
    group.finish();
}

fn report(started: SystemTime) {
    let figures: Vec<Option<f64>> = CASES
        .iter()
        .map(|case| mean_ns(&format!("{GROUP}/{case}"), started))
        .collect();
    let Some(base) = figures[0] else {
        println!("{GROUP}: the baseline did not run this time");
        return;
    };
    for (case, figure) in CASES.iter().zip(&figures) {
        match figure {
            Some(ns) => println!(
                "{GROUP}/{case}: {ns:.0} ns a commit ({:+.0} ns, {:.3}x the baseline)",
                ns - base,
                ns / base
            ),
            None => println!("{GROUP}/{case}: did not run this time"),
        }
    }
}

criterion_group!(hooks_benches, benches);

fn main() {
    let started = SystemTime::now();
    hooks_benches();
    Criterion::default().configure_from_args().final_summary();
    report(started);
}
