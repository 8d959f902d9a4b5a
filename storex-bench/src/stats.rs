//! Percentiles of latency samples.

use std::time::Duration;

/// The latency figures of one measure.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Percentiles {
    /// How many samples.
    pub count: usize,
    /// The median.
    pub p50: Duration,
    /// The 99th percentile.
    pub p99: Duration,
    /// The slowest.
    pub max: Duration,
}

impl Percentiles {
    /// The percentiles of `samples` in nanoseconds (sorted in place).
    pub fn of_nanos(samples: &mut [u64]) -> Self {
        samples.sort_unstable();
        let at = |fraction: f64| -> Duration {
            if samples.is_empty() {
                return Duration::ZERO;
            }
            // The nearest-rank percentile: the smallest sample with `fraction` of them at or below it.
            let rank = (fraction * samples.len() as f64).ceil() as usize;
            Duration::from_nanos(samples[rank.clamp(1, samples.len()) - 1])
        };
        Self {
            count: samples.len(),
            p50: at(0.50),
            p99: at(0.99),
            max: samples
                .last()
                .map_or(Duration::ZERO, |max| Duration::from_nanos(*max)),
        }
    }
}

/// A duration in milliseconds with two decimals, for the report.
pub fn ms(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1e3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let mut samples: Vec<u64> = (1..=100).rev().collect();
        let p = Percentiles::of_nanos(&mut samples);
        assert_eq!(p.count, 100);
        assert_eq!(p.p50, Duration::from_nanos(50));
        assert_eq!(p.p99, Duration::from_nanos(99));
        assert_eq!(p.max, Duration::from_nanos(100));
        assert_eq!(Percentiles::of_nanos(&mut []), Percentiles::default());
    }
}
