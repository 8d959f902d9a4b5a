//! What the benches share: criterion's figures of this run, read back for the summary lines.

use std::path::PathBuf;
use std::time::SystemTime;

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
