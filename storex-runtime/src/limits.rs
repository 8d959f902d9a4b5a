//! Limits on what clients may ask: a token bucket per connection for its mutations, and the
//! count of live connections, per process and per client address, that admission checks.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::time::Instant;

/// A token bucket's settings: tokens added per second, and how many it holds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Rate {
    pub(crate) per_second: f64,
    pub(crate) burst: f64,
}

/// Why the [`Gate`] let a connection not in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Full {
    /// The endpoint serves its most connections.
    Endpoint,
    /// The client's address holds its most.
    Address,
}

/// The answer to a mutation over the rate limit.
pub(crate) const TOO_MANY_MUTATIONS: &str = "Too many mutations.";

/// A token bucket: it starts full, refills at its rate, and each mutation takes one token.
#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    rate: Rate,
    tokens: f64,
    at: Instant,
}

impl TokenBucket {
    pub(crate) fn new(rate: Rate) -> Self {
        Self {
            rate,
            tokens: rate.burst,
            at: Instant::now(),
        }
    }

    /// Takes a token; `false` when there is none (the mutation is over the limit).
    pub(crate) fn take(&mut self) -> bool {
        self.take_at(Instant::now())
    }

    fn take_at(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.at = now;
        self.tokens = (self.tokens + elapsed * self.rate.per_second).min(self.rate.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The live connections of an endpoint (of every worker that serves one config), counted for
/// its caps.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    live: AtomicUsize,
    by_address: Mutex<HashMap<IpAddr, usize>>,
}

/// One live connection's place in the [`Gate`]: given back when dropped.
#[derive(Debug)]
pub(crate) struct Slot {
    gate: Arc<Gate>,
    address: Option<IpAddr>,
}

impl Gate {
    /// How many connections hold a slot.
    pub(crate) fn live(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }

    /// A slot for a new connection from `address`, or why not: the endpoint holds `max`
    /// connections, or that address holds `max_per_address`.
    pub(crate) fn enter(
        self: &Arc<Self>,
        address: Option<IpAddr>,
        max: usize,
        max_per_address: usize,
    ) -> Result<Slot, Full> {
        let taken = self
            .live
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |live| {
                (live < max).then_some(live + 1)
            });
        if taken.is_err() {
            tracing::warn!(max, "connection refused: the server is full");
            return Err(Full::Endpoint);
        }
        // From here on the slot gives its place back when dropped, whatever happens.
        let mut slot = Slot {
            gate: self.clone(),
            address: None,
        };
        if let Some(address) = address.filter(|_| max_per_address < usize::MAX) {
            let mut counts = self.by_address.lock().unwrap_or_else(|e| e.into_inner());
            let count = counts.entry(address).or_insert(0);
            if *count >= max_per_address {
                drop(counts);
                tracing::info!(%address, max = max_per_address, "connection refused: too many from one address");
                return Err(Full::Address);
            }
            *count += 1;
            slot.address = Some(address);
        }
        Ok(slot)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.gate.live.fetch_sub(1, Ordering::AcqRel);
        if let Some(address) = self.address {
            let mut counts = self
                .gate
                .by_address
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if let Some(count) = counts.get_mut(&address) {
                *count -= 1;
                if *count == 0 {
                    counts.remove(&address);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let mut bucket = TokenBucket::new(Rate {
            per_second: 2.0,
            burst: 3.0,
        });
        let start = bucket.at;
        assert!((0..3).all(|_| bucket.take_at(start)), "the burst");
        assert!(!bucket.take_at(start), "over the burst");
        let half = start + Duration::from_millis(500);
        assert!(bucket.take_at(half), "one token after half a second at 2/s");
        assert!(!bucket.take_at(half));
        // A long pause refills to the burst, no further.
        let later = half + Duration::from_secs(60);
        assert!((0..3).all(|_| bucket.take_at(later)));
        assert!(!bucket.take_at(later));
    }

    #[test]
    fn the_gate_caps_the_process_and_each_address() {
        let gate = Arc::new(Gate::default());
        let enter = |address: Option<IpAddr>| gate.enter(address, 3, 2);
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let a1 = enter(Some(a)).unwrap();
        let a2 = enter(Some(a)).unwrap();
        assert_eq!(enter(Some(a)).unwrap_err(), Full::Address);
        assert_eq!(gate.live(), 2, "a refused request holds no slot");
        let b1 = enter(Some(b)).unwrap();
        assert_eq!(enter(Some(b)).unwrap_err(), Full::Endpoint);
        assert_eq!(enter(None).unwrap_err(), Full::Endpoint);
        drop(a1);
        let unknown = enter(None).unwrap();
        assert_eq!(enter(Some(b)).unwrap_err(), Full::Endpoint);
        drop((a2, b1, unknown));
        assert_eq!(gate.live(), 0);
        assert!(gate.by_address.lock().unwrap().is_empty(), "counts go");
        let _again = [enter(Some(a)).unwrap(), enter(Some(a)).unwrap()];
    }
}
