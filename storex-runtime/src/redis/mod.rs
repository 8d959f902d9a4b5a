//! Several nodes on Redis (cargo feature `redis`): [`RedisBackplane`] carries server-side
//! mutations to the sessions of every node.
//!
//! ```no_run
//! # async fn run() -> Result<(), storex::redis::RedisError> {
//! use std::time::Duration;
//! use storex::redis::{RedisBackplane, RedisOptions};
//!
//! let backplane = RedisBackplane::new(RedisOptions::new("redis://127.0.0.1:6379/"))?;
//! // Optional: wait until the node is connected before serving (it connects in the background
//! // and reconnects by itself when Redis goes away).
//! backplane.ready(Duration::from_secs(5)).await?;
//! let config = storex::Config::new("/storex")
//!     .backplane(backplane.clone())
//!     // Resume tokens must verify on every node: one key for the cluster.
//!     .resume_key(std::env::var("STOREX_RESUME_KEY").unwrap_or_default());
//! // `hub.mutate(...)` on any node now reaches the sessions of every node.
//! let hub = config.hub().clone();
//! # let _ = hub; Ok(()) }
//! ```
//!
//! How it works (docs/ARCHITECTURE.md, "Several nodes"):
//! - each node listens on one channel per store (and per store and key) it has sessions of,
//!   subscribed with its first such session and dropped with its last, so a node receives only
//!   what concerns it; plus one channel every node shares for one-session mutations and requests,
//!   and one of its own for answers;
//! - a mutation is delivered to the local sessions first and then published; the node that
//!   published it skips it when it comes back, so no session runs it twice;
//! - Redis is optional at any moment: while it is unreachable, local delivery goes on and
//!   publishing answers [`HubError::Backplane`](crate::HubError::Backplane) at once (counted in
//!   [`RedisStats`]); the node reconnects with backoff and subscribes again.

mod backplane;
mod sessions;
mod wire;

use std::time::Duration;

pub use backplane::{RedisBackplane, RedisStats};
pub use sessions::RedisSessions;

/// How a [`RedisBackplane`] connects and how long it waits. Its `Debug` hides the URL's
/// credentials.
#[derive(Clone)]
pub struct RedisOptions {
    pub(crate) url: String,
    pub(crate) prefix: String,
    pub(crate) queue_capacity: usize,
    pub(crate) request_timeout: Duration,
    pub(crate) reply_timeout: Duration,
    pub(crate) command_timeout: Duration,
    pub(crate) backoff_min: Duration,
    pub(crate) backoff_max: Duration,
}

impl RedisOptions {
    /// Options for the Redis server at `url` (`redis://[user:password@]host:port[/db]`), with
    /// the defaults below.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            prefix: "storex".into(),
            queue_capacity: 4096,
            request_timeout: Duration::from_secs(2),
            reply_timeout: Duration::from_secs(60),
            command_timeout: Duration::from_secs(2),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
        }
    }

    /// The start of every channel name (default `storex`): apps that share a Redis server use
    /// different prefixes. Every node of one app must use the same.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How many messages may wait to be published (default 4,096). When the queue is full,
    /// publishing answers an error instead of buffering more.
    pub fn queue_capacity(mut self, messages: usize) -> Self {
        self.queue_capacity = messages.max(1);
        self
    }

    /// How long a one-session request to another node waits for the node that has the session
    /// to say so (default 2 s), and then for the mutation's reply (default 60 s; keep it above
    /// the endpoint's time limit, 30 s by default).
    pub fn request_timeouts(mut self, find: Duration, reply: Duration) -> Self {
        self.request_timeout = find;
        self.reply_timeout = reply;
        self
    }

    /// How long one exchange with Redis (connecting, a batch of publishes, a subscription, a
    /// ping) may take before the connection is taken for lost (default 2 s).
    pub fn command_timeout(mut self, timeout: Duration) -> Self {
        self.command_timeout = timeout;
        self
    }

    /// The waits between reconnection attempts: from `min`, doubling up to `max`, with jitter
    /// (default 100 ms to 5 s).
    pub fn reconnect_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.backoff_min = min;
        self.backoff_max = max.max(min);
        self
    }
}

impl std::fmt::Debug for RedisOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisOptions")
            .field("url", &without_credentials(&self.url))
            .field("prefix", &self.prefix)
            .field("queue_capacity", &self.queue_capacity)
            .field("request_timeout", &self.request_timeout)
            .field("reply_timeout", &self.reply_timeout)
            .field("command_timeout", &self.command_timeout)
            .field("backoff", &(self.backoff_min, self.backoff_max))
            .finish()
    }
}

/// `url` with its user and password (before the host's `@`) replaced by `***`.
pub(super) fn without_credentials(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***{}", &rest[at..]),
        None => url.to_owned(),
    }
}

/// Why a Redis backplane could not start or is not connected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RedisError {
    /// The URL is not a Redis URL.
    #[error(
        "{url:?} is not a Redis URL ({reason}); expected redis://[user:password@]host:port[/db]"
    )]
    Url {
        /// The URL given (without its credentials).
        url: String,
        /// What the Redis client said.
        reason: String,
    },
    /// The backplane's thread could not be started.
    #[error("the Redis backplane's thread could not start: {0}")]
    Thread(String),
    /// Redis could not be reached in time.
    #[error("Redis at {server} is not reachable: {reason}")]
    Unreachable {
        /// The server's address (without credentials).
        server: String,
        /// The last connection error, or that none was made in time.
        reason: String,
    },
}

/// The backplane's thread: it stops when the last holder goes (the backplane's clones and the
/// durable sessions made from it, which may outlive them in a config).
#[derive(Debug)]
struct Thread {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Thread {
    fn new(stop: tokio::sync::oneshot::Sender<()>) -> Self {
        Self { stop: Some(stop) }
    }
}

impl Drop for Thread {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Locks `mutex`. Every update under the backplane's locks is one statement: a panic leaves
/// them consistent.
fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Waits between reconnection attempts: doubling, capped, with jitter (so that the nodes of a
/// cluster do not all come back at the same instant).
#[derive(Debug)]
struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    fn new(options: &RedisOptions) -> Self {
        Self {
            min: options.backoff_min,
            max: options.backoff_max,
            next: options.backoff_min,
        }
    }

    /// The wait before the next attempt: between 75 % and 125 % of the current step.
    fn next(&mut self) -> Duration {
        let step = self.next;
        self.next = (self.next * 2).min(self.max);
        step.mul_f64(rand::random_range(0.75..1.25))
    }

    fn reset(&mut self) {
        self.next = self.min;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_show_no_credentials() {
        let options = RedisOptions::new("redis://app:s3cret@10.0.0.5:6379/2");
        let shown = format!("{options:?}");
        assert!(shown.contains("redis://***@10.0.0.5:6379/2"), "{shown}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert_eq!(
            without_credentials("redis://127.0.0.1/"),
            "redis://127.0.0.1/"
        );
        assert_eq!(without_credentials("not a url"), "not a url");
    }

    #[test]
    fn the_backoff_doubles_up_to_its_cap_with_jitter_and_starts_again_after_a_success() {
        let options = RedisOptions::new("redis://127.0.0.1/")
            .reconnect_backoff(Duration::from_millis(100), Duration::from_millis(350));
        let mut backoff = Backoff::new(&options);
        let steps: Vec<Duration> = (0..5).map(|_| backoff.next()).collect();
        for (wait, step) in steps.iter().zip([100, 200, 350, 350, 350]) {
            let step = Duration::from_millis(step);
            assert!(
                *wait >= step.mul_f64(0.75) && *wait <= step.mul_f64(1.25),
                "{steps:?}"
            );
        }
        backoff.reset();
        assert!(backoff.next() <= Duration::from_millis(125));
    }
}
