//! The whole per-mutation machinery for a one-field change, at 100, 10,000 and 100,000 items
//! of 5 fields: the transaction's begin, the dispatch by name with its JSON argument, the
//! mutation, the diff, and the commit (`touch`) or the rollback (`touch_fail`, which writes the
//! same field and then answers an error). Two stores hold the same items:
//! - `tracked`: a `storex::List`, which records its writes (what a mutation costs now);
//! - `copied`: a plain `Vec`, copied before the mutation and diffed whole after it (what every
//!   mutation cost before tracked collections).
//!
//! `cargo bench -p storex-runtime --bench mutation`; the summary printed last gives each figure
//! in µs and, for each store, the ratio of each size to its 100-item figure.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a bench that cannot build its input has nothing to measure

use std::hint::black_box;
use std::time::{Duration, SystemTime};

use criterion::{criterion_group, BenchmarkId, Criterion};
use serde::Serialize;
use serde_json::{json, Value};
use storex::{List, LiveStore, Params, Registry, Session, Store};

mod support;
use support::{items, mean_ns, now, Item};

const GROUP: &str = "mutation";
const SIZES: [usize; 3] = [100, 10_000, 100_000];

#[derive(Debug, Clone, Serialize, Store)]
#[store(name = "Bench.Mutation.Tracked")]
struct Tracked {
    items: List<Item>,
}

#[storex::mutations]
impl Tracked {
    #[init]
    fn init(params: &Params) -> Self {
        Tracked {
            items: items(params.get("items").unwrap_or(0)).collect(),
        }
    }

    #[mutation("touch")]
    fn touch(&mut self, index: usize) {
        self.items[index].score += 1.0;
    }

    #[mutation("touch_fail")]
    fn touch_fail(&mut self, index: usize) -> Result<(), &'static str> {
        self.items[index].score += 1.0;
        Err("refused")
    }
}

#[derive(Debug, Clone, Serialize, Store)]
#[store(name = "Bench.Mutation.Copied")]
struct Copied {
    items: Vec<Item>,
}

#[storex::mutations]
impl Copied {
    #[init]
    fn init(params: &Params) -> Self {
        Copied {
            items: items(params.get("items").unwrap_or(0)).collect(),
        }
    }

    #[mutation("touch")]
    fn touch(&mut self, index: usize) {
        self.items[index].score += 1.0;
    }

    #[mutation("touch_fail")]
    fn touch_fail(&mut self, index: usize) -> Result<(), &'static str> {
        self.items[index].score += 1.0;
        Err("refused")
    }
}

fn join(store: &str, size: usize) -> Box<dyn LiveStore> {
    let entry = Registry::global().unwrap().get(store).unwrap();
    now(entry.join(Session::new("bench"), Params::new(json!({ "items": size })))).unwrap()
}

const STORES: [(&str, &str); 2] = [
    ("tracked", "Bench.Mutation.Tracked"),
    ("copied", "Bench.Mutation.Copied"),
];
const MUTATIONS: [&str; 2] = ["touch", "touch_fail"];

fn benches(c: &mut Criterion) {
    for (label, store) in STORES {
        let mut group = c.benchmark_group(format!("{GROUP}_{label}"));
        if label == "copied" {
            // Tens of milliseconds an iteration at 100,000 items: fewer samples.
            group.sample_size(10);
            group.measurement_time(Duration::from_secs(3));
        }
        for size in SIZES {
            let mut instance = join(store, size);
            let args = [Value::from(size / 2)];
            // Both stores must agree on what one touch changes, or the comparison means nothing.
            let applied = now(instance.mutate("touch", &args)).unwrap();
            assert_eq!(applied.diff.len(), 1, "{label}: one change per touch");
            assert!(now(instance.mutate("touch_fail", &args)).is_err());
            for mutation in MUTATIONS {
                group.bench_with_input(BenchmarkId::new(mutation, size), &size, |b, _| {
                    b.iter(|| now(instance.mutate(black_box(mutation), black_box(&args))))
                });
            }
        }
        group.finish();
    }
}

fn report(started: SystemTime) {
    for (label, _) in STORES {
        for mutation in MUTATIONS {
            let figures: Vec<Option<f64>> = SIZES
                .iter()
                .map(|size| mean_ns(&format!("{GROUP}_{label}/{mutation}/{size}"), started))
                .collect();
            let Some(base) = figures[0] else {
                println!("{GROUP}/{label}/{mutation}: did not run this time");
                continue;
            };
            let cells: Vec<String> = SIZES
                .iter()
                .zip(&figures)
                .map(|(size, figure)| match figure {
                    Some(ns) => format!("{size}: {:.2} µs ({:.2}x)", ns / 1000.0, ns / base),
                    None => format!("{size}: -"),
                })
                .collect();
            println!("{GROUP}/{label}/{mutation}: {}", cells.join(", "));
        }
    }
}

criterion_group!(mutation_benches, benches);

fn main() {
    let started = SystemTime::now();
    mutation_benches();
    Criterion::default().configure_from_args().final_summary();
    report(started);
}
