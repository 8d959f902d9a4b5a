//! What the benches share: the items their states hold, and criterion's figures of this run,
//! read back for the summary lines.

#![allow(dead_code)] // each bench uses a part of it

use std::future::Future;
use std::path::PathBuf;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::SystemTime;

use serde::Serialize;
use serde_json::Value;

/// Criterion's mean estimate of one benchmark (`group/bench`) of this run, in nanoseconds:
/// `None` when it did not run this time (a filter, or `cargo test`'s single pass), so that a
/// stale figure is never shown.
pub fn mean_ns(id: &str, started: SystemTime) -> Option<f64> {
    let home = std::env::var_os("CRITERION_HOME")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("CARGO_TARGET_DIR").map(|dir| PathBuf::from(dir).join("criterion"))
        })
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/criterion"));
    let path = home.join(id).join("new/estimates.json");
    if std::fs::metadata(&path).ok()?.modified().ok()? < started {
        return None;
    }
    let estimates: Value = serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
    estimates["mean"]["point_estimate"].as_f64()
}

/// One item of a benched state: 5 fields.
#[derive(Debug, Clone, Serialize, storex::Diff)]
pub struct Item {
    pub id: u64,
    pub title: String,
    pub done: bool,
    pub tags: Vec<String>,
    pub score: f64,
}

/// `count` items, each a little different.
pub fn items(count: u64) -> impl Iterator<Item = Item> {
    (0..count).map(|id| Item {
        id,
        title: format!("Item number {id}"),
        done: id % 3 == 0,
        tags: (0..id % 4).map(|tag| format!("tag-{tag}")).collect(),
        score: id as f64 * 0.5,
    })
}

/// The value of a future that is ready when first polled (a sync mutation's step or commit).
pub fn now<T>(future: impl Future<Output = T>) -> T {
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(value) => value,
        Poll::Pending => panic!("a sync mutation is ready at once"),
    }
}
