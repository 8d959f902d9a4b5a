//! The cost of one mutation's diff on a 10,000-item state with one field of one item changed:
//! the generated per-field diff, the naive baseline (serialize both states to `serde_json::Value`
//! and diff the trees), and the snapshot the runtime takes before every mutation (a clone), with
//! and without its drop.
//!
//! `cargo bench -p storex-runtime --bench diff`; the last line printed is baseline / generated.

#![allow(clippy::expect_used)] // a bench that cannot build its input has nothing to measure

use std::hint::black_box;
use std::time::SystemTime;

use criterion::{criterion_group, Criterion};
use serde::Serialize;

mod support;
use support::{items, mean_ns, Item};

const GROUP: &str = "diff_10k_items";
const ITEMS: u64 = 10_000;

#[derive(Debug, Clone, Serialize, storex::Diff)]
struct State {
    items: Vec<Item>,
}

fn state() -> State {
    State {
        items: items(ITEMS).collect(),
    }
}

fn benches(c: &mut Criterion) {
    let old = state();
    let mut new = old.clone();
    new.items[ITEMS as usize / 2].title.push_str(" (edited)");

    // Both sides must agree on what changed, or the comparison means nothing.
    let generated = storex::diff::diff(&old, &new).expect("the state serializes");
    let naive = baseline(&old, &new);
    assert_eq!(generated, naive);
    assert_eq!(generated.len(), 1);

    let mut group = c.benchmark_group(GROUP);
    group.bench_function("generated", |b| {
        b.iter(|| storex::diff::diff(black_box(&old), black_box(&new)))
    });
    group.bench_function("baseline", |b| {
        b.iter(|| baseline(black_box(&old), black_box(&new)))
    });
    group.bench_function("snapshot_clone", |b| {
        b.iter_with_large_drop(|| black_box(&old).clone())
    });
    group.bench_function("snapshot_clone_and_drop", |b| {
        b.iter(|| black_box(&old).clone())
    });
    group.finish();
}

/// The naive diff: both states as JSON trees, then the trees compared.
fn baseline(old: &State, new: &State) -> Vec<storex::Change> {
    let old = serde_json::to_value(old).expect("the state serializes");
    let new = serde_json::to_value(new).expect("the state serializes");
    storex::diff::diff(&old, &new).expect("a JSON value serializes")
}

fn report(started: SystemTime) {
    let figures = [
        "generated",
        "baseline",
        "snapshot_clone",
        "snapshot_clone_and_drop",
    ]
    .map(|bench| (bench, mean_ns(&format!("{GROUP}/{bench}"), started)));
    for (bench, mean) in figures {
        if let Some(mean) = mean {
            println!("{GROUP}/{bench}: mean {:.1} µs", mean / 1000.0);
        }
    }
    match (figures[0].1, figures[1].1) {
        (Some(generated), Some(baseline)) => println!(
            "{GROUP}: baseline / generated = {:.1}x (criterion means: {:.1} µs / {:.1} µs)",
            baseline / generated,
            baseline / 1000.0,
            generated / 1000.0
        ),
        _ => println!("{GROUP}: no ratio (generated and baseline did not both run this time)"),
    }
}

criterion_group!(diff_benches, benches);

fn main() {
    let started = SystemTime::now();
    diff_benches();
    Criterion::default().configure_from_args().final_summary();
    report(started);
}
