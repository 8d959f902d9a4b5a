//! Configuration of a storex endpoint: its path, limits and hooks, and its hub.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use crate::backplane::Backplane;
use crate::durable::SessionStore;
use crate::hooks::{Hooks, MutationEvent, MutationOutcome};
use crate::hub::Hub;
use crate::limits::{Gate, Rate};
use crate::resume::ResumeSettings;
use crate::sse::Streams;
use crate::store::{Extensions, Store};
use crate::telemetry::Telemetry;

/// The default path of the endpoint (PROTOCOL.md).
pub const DEFAULT_PATH: &str = "/storex";

type SessionIdFn = dyn Fn() -> String + Send + Sync;
type ConnectFn = dyn Fn(&ConnectRequest) -> Result<Extensions, Refusal> + Send + Sync;
type AddressFn = dyn Fn(&ConnectRequest) -> Option<IpAddr> + Send + Sync;

/// How a storex endpoint behaves. Every value has a sensible default; each `Config::new` has its
/// own [`Hub`] (reach it with [`Config::hub`] to mutate stores from server code). Clones share
/// that hub, and the count of live connections the caps apply to: clone a config for each
/// worker of one server, not for a second, separate server.
///
/// ```
/// use std::time::Duration;
/// let config = storex::Config::new("/storex")
///     .idle_timeout(Duration::from_secs(60))
///     .max_frame_size(64 * 1024)
///     .max_stores_per_session(16)
///     .allowed_origins(["https://example.com"]);
/// let hub = config.hub().clone();
/// # let _ = hub;
/// ```
#[derive(Clone)]
pub struct Config {
    pub(crate) path: String,
    pub(crate) max_frame_size: usize,
    pub(crate) idle_timeout: Duration,
    pub(crate) send_timeout: Duration,
    pub(crate) inbox_capacity: usize,
    pub(crate) max_stores_per_session: usize,
    pub(crate) time_limit: Duration,
    pub(crate) session_id: Arc<SessionIdFn>,
    pub(crate) on_connect: Option<Arc<ConnectFn>>,
    pub(crate) origins: Origins,
    pub(crate) hub: Hub,
    pub(crate) resume: ResumeSettings,
    pub(crate) durable: Option<Arc<dyn SessionStore>>,
    pub(crate) hooks: Hooks,
    pub(crate) mutation_rate: Option<Rate>,
    pub(crate) max_connections: usize,
    pub(crate) max_connections_per_address: usize,
    pub(crate) client_address: Arc<AddressFn>,
    /// The live connections of every endpoint made from this config and its clones.
    pub(crate) gate: Arc<Gate>,
    /// The open event streams of every endpoint made from this config and its clones.
    pub(crate) streams: Arc<Streams>,
    pub(crate) event_stream_heartbeat: Duration,
    pub(crate) telemetry: Telemetry,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("path", &self.path)
            .field("max_frame_size", &self.max_frame_size)
            .field("idle_timeout", &self.idle_timeout)
            .field("send_timeout", &self.send_timeout)
            .field("inbox_capacity", &self.inbox_capacity)
            .field("max_stores_per_session", &self.max_stores_per_session)
            .field("time_limit", &self.time_limit)
            .field("on_connect", &self.on_connect.is_some())
            .field("origins", &self.origins)
            .field("resume", &self.resume)
            .field("durable", &self.durable)
            .field("hooks", &self.hooks)
            .field("mutation_rate", &self.mutation_rate)
            .field("max_connections", &self.max_connections)
            .field(
                "max_connections_per_address",
                &self.max_connections_per_address,
            )
            .field("event_stream_heartbeat", &self.event_stream_heartbeat)
            .finish_non_exhaustive()
    }
}

impl Default for Config {
    fn default() -> Self {
        Self::new(DEFAULT_PATH)
    }
}

impl From<&str> for Config {
    fn from(path: &str) -> Self {
        Self::new(path)
    }
}

impl Config {
    /// The defaults, served at `path`: frames up to 64 KiB, idle timeout 60 s (the client pings
    /// every 30 s), 10 s to hand a frame to a client that does not read, 256 queued server-side
    /// mutations per session, 32 stores per session, 30 s for init and async mutations,
    /// 21-character random session ids, pages of the request's own host only
    /// ([`allowed_origins`](Self::allowed_origins)), no connect hook, no mutation hooks, no
    /// rate limit and no cap on connections, one process
    /// ([`InProcess`](crate::backplane::InProcess)).
    pub fn new(path: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            max_frame_size: 64 * 1024,
            idle_timeout: Duration::from_secs(60),
            send_timeout: Duration::from_secs(10),
            inbox_capacity: 256,
            max_stores_per_session: 32,
            time_limit: crate::instance::DEFAULT_TIME_LIMIT,
            session_id: Arc::new(random_session_id),
            on_connect: None,
            origins: Origins::SameHost,
            hub: Hub::new(),
            resume: ResumeSettings::default(),
            durable: None,
            hooks: Hooks::default(),
            mutation_rate: None,
            max_connections: usize::MAX,
            max_connections_per_address: usize::MAX,
            client_address: Arc::new(|request: &ConnectRequest| {
                request.peer().map(|peer| peer.ip())
            }),
            gate: Arc::default(),
            streams: Arc::default(),
            event_stream_heartbeat: Duration::from_secs(15),
            telemetry: Telemetry::default(),
        }
    }

    /// The path the endpoint is mounted at.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The hub of this endpoint's sessions, for server-side mutations.
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// The largest frame a client may send; a larger one closes its socket with 1009.
    pub fn max_frame_size(mut self, bytes: usize) -> Self {
        self.max_frame_size = bytes;
        self
    }

    /// How long a socket may stay silent (no frame, not even a ping) before the server closes it.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// How long the server waits to hand a frame to a client that does not read before it drops
    /// the connection (the client re-joins with a fresh state when it reconnects).
    pub fn send_timeout(mut self, timeout: Duration) -> Self {
        self.send_timeout = timeout;
        self
    }

    /// How many server-side mutations may wait for one session; past that the session is
    /// considered stuck and closed with 1008.
    pub fn inbox_capacity(mut self, capacity: usize) -> Self {
        self.inbox_capacity = capacity.max(1);
        self
    }

    /// How many stores one connection may join.
    pub fn max_stores_per_session(mut self, max: usize) -> Self {
        self.max_stores_per_session = max;
        self
    }

    /// How long an async init, mutation or terminate may run. Past it, a join or a mutation is
    /// answered with an error (a mutation's state is rolled back) and a terminate is abandoned.
    ///
    /// A sync mutation cannot be interrupted: it runs on the worker thread that serves its
    /// connection, so it must not block (make it `async fn` and await the slow part).
    pub fn time_limit(mut self, limit: Duration) -> Self {
        self.time_limit = limit;
        self
    }

    /// Server-side mutations travel through `backplane` (to other nodes, say): this endpoint
    /// gets a new [`Hub`] over it. Set it before taking [`hub`](Self::hub).
    pub fn backplane(mut self, backplane: impl Backplane) -> Self {
        self.hub = Hub::with_backplane(backplane);
        self
    }

    /// How long a session whose connection dropped (without a close from its client) waits for
    /// the client to resume it (PROTOCOL.md, "Versions and resume"): its stores stay alive and
    /// server-side mutations keep applying to them; then `terminate` runs. Default 2 minutes;
    /// `Duration::ZERO` ends sessions with their connections, as Storex does.
    pub fn resume_ttl(mut self, ttl: Duration) -> Self {
        self.resume.ttl = ttl;
        self
    }

    /// The key resume tokens are signed with (HMAC-SHA256). By default a random key made once
    /// per process, so a restarted server accepts no old token; servers behind one load
    /// balancer that share sessions share a key. Use at least 32 random bytes.
    pub fn resume_key(mut self, key: impl AsRef<[u8]>) -> Self {
        self.resume.key = key.as_ref().into();
        self
    }

    /// The most detached sessions kept at once (default 10,000) and the most bytes of history
    /// they hold together (default 64 MiB): past either, the oldest detached sessions end first.
    pub fn max_detached(mut self, sessions: usize, bytes: usize) -> Self {
        self.resume.max_detached = sessions;
        self.resume.max_detached_bytes = bytes;
        self
    }

    /// How many diffs (default 64) and bytes of diffs (default 16 KiB) each store instance keeps
    /// for clients that resume: a client that missed more gets the whole state instead.
    pub fn history(mut self, diffs: usize, bytes: usize) -> Self {
        self.resume.history_len = diffs;
        self.resume.history_bytes = bytes;
        self
    }

    /// Durable sessions: every change of a session's durable stores (`#[store(durable)]`) is
    /// saved in `store` before its answer or push is sent, so that a client whose node died or
    /// was stopped resumes on another node with the same state and its missed diffs, and a
    /// commit it sends again runs once (see [`durable`](crate::durable)). Needs sessions that
    /// resume (a `resume_ttl` above zero) and one `resume_key` for every node. On a graceful stop
    /// ([`Hub::stop`]) durable sessions are left to the other nodes: their `terminate` does not
    /// run and their records stay.
    pub fn durable(mut self, store: impl SessionStore) -> Self {
        self.durable = Some(Arc::new(store));
        self
    }

    /// How many mutation answers each session remembers (default 256), so that a mutation sent
    /// again after a resume is answered again instead of running twice.
    pub fn remembered_requests(mut self, answers: usize) -> Self {
        self.resume.remembered_requests = answers;
        self
    }

    /// How session ids are made (Storex's `session_id_library`). Ids must be unique and
    /// unguessable.
    pub fn session_id(mut self, generate: impl Fn() -> String + Send + Sync + 'static) -> Self {
        self.session_id = Arc::new(generate);
        self
    }

    /// How often a quiet event stream (the fallback transport of clients without a WebSocket,
    /// the [`sse`](crate::sse) module) gets an SSE comment: 15 s by default. A client that went
    /// away without a word is noticed when a write to it fails, so within about two periods;
    /// the comments also keep proxies that end quiet responses from ending the stream.
    pub fn event_stream_heartbeat(mut self, period: Duration) -> Self {
        self.event_stream_heartbeat = period;
        self
    }

    /// A check run on every connection request (the WebSocket upgrade and the HTTP join) before
    /// anything else: refuse it, or attach values that init and mutations read through
    /// [`Session::get`](crate::Session::get).
    pub fn on_connect(
        mut self,
        hook: impl Fn(&ConnectRequest) -> Result<Extensions, Refusal> + Send + Sync + 'static,
    ) -> Self {
        self.on_connect = Some(Arc::new(hook));
        self
    }

    /// Counts what the endpoint does in `metrics` (cargo feature `metrics`; see
    /// [`metrics`](crate::metrics) for what is counted and how to serve it).
    #[cfg(feature = "metrics")]
    pub fn metrics(mut self, metrics: crate::metrics::Metrics) -> Self {
        self.telemetry = Telemetry::new(metrics);
        self
    }

    /// A hook run before every mutation of every store, a client's and server code's alike
    /// (see [`hooks`](crate::hooks)): it sees the session, the store, the mutation's name and
    /// arguments, and refuses the mutation by returning an error, whose text is the error answer
    /// (a server-side mutation's caller gets it as [`MutationError::Refused`](crate::MutationError::Refused)).
    /// For authorization, validation, auditing. Hooks run in the order they were added.
    ///
    /// ```
    /// use storex::hooks::Source;
    /// let config = storex::Config::new("/storex").before_mutation(|event| {
    ///     if event.source() == Source::Client && event.name().starts_with("admin_") {
    ///         return Err("Only the server may do that.".into());
    ///     }
    ///     Ok(())
    /// });
    /// # let _ = config;
    /// ```
    pub fn before_mutation(
        mut self,
        hook: impl Fn(&MutationEvent<'_>) -> Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        self.hooks.add_before(None, hook);
        self
    }

    /// [`before_mutation`](Self::before_mutation) for the mutations of store `S` only.
    pub fn before_mutation_of<S: Store>(
        mut self,
        hook: impl Fn(&MutationEvent<'_>) -> Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        self.hooks.add_before(Some(S::NAME), hook);
        self
    }

    /// A hook run after every mutation of every store (client's and server code's, and those a
    /// before hook refused): it sees the mutation and what it did, its diff and reply or its
    /// error. For logging, analytics. It runs before the answer or push is sent.
    ///
    /// ```
    /// let config = storex::Config::new("/storex").after_mutation(|event, outcome| {
    ///     tracing::info!(store = event.store(), mutation = event.name(), applied = outcome.is_applied(), "mutation");
    /// });
    /// # let _ = config;
    /// ```
    pub fn after_mutation(
        mut self,
        hook: impl Fn(&MutationEvent<'_>, &MutationOutcome<'_>) + Send + Sync + 'static,
    ) -> Self {
        self.hooks.add_after(None, hook);
        self
    }

    /// [`after_mutation`](Self::after_mutation) for the mutations of store `S` only.
    pub fn after_mutation_of<S: Store>(
        mut self,
        hook: impl Fn(&MutationEvent<'_>, &MutationOutcome<'_>) + Send + Sync + 'static,
    ) -> Self {
        self.hooks.add_after(Some(S::NAME), hook);
        self
    }

    /// Limits each connection to `per_second` mutations a second on average, with bursts of up
    /// to `burst` (a token bucket that starts full). A mutation over the limit is not run: it is
    /// answered with the error "Too many mutations." and the connection stays open. Server-side
    /// mutations are not limited. Off by default.
    ///
    /// # Panics
    /// When `per_second` is not a positive number or `burst` is zero.
    pub fn mutation_rate(mut self, per_second: f64, burst: u32) -> Self {
        assert!(
            per_second.is_finite() && per_second > 0.0,
            "Config::mutation_rate: the rate must be a positive number of mutations per second, \
             not {per_second}"
        );
        assert!(
            burst > 0,
            "Config::mutation_rate: the burst must allow at least one mutation"
        );
        self.mutation_rate = Some(Rate {
            per_second,
            burst: f64::from(burst),
        });
        self
    }

    /// The most live connections this endpoint serves at once; past it, a new one is refused
    /// with 503 before the upgrade (the client retries later). No cap by default.
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = max;
        self
    }

    /// The most live connections from one client address
    /// ([`client_address`](Self::client_address)); past it, a new one is refused with 429 before
    /// the upgrade. No cap by default. A request whose address is unknown is not capped by it.
    pub fn max_connections_per_address(mut self, max: usize) -> Self {
        self.max_connections_per_address = max;
        self
    }

    /// How the client's address is read from a request, for
    /// [`max_connections_per_address`](Self::max_connections_per_address). By default the
    /// peer's IP. Behind a proxy every peer is the proxy: read the header it sets instead (only
    /// from a proxy you trust to set it).
    ///
    /// ```
    /// let config = storex::Config::new("/storex").client_address(|request| {
    ///     request.header("x-real-ip")?.parse().ok()
    /// });
    /// # let _ = config;
    /// ```
    pub fn client_address(
        mut self,
        address: impl Fn(&ConnectRequest) -> Option<IpAddr> + Send + Sync + 'static,
    ) -> Self {
        self.client_address = Arc::new(address);
        self
    }

    /// Accept requests only from pages of these origins (`scheme://host[:port]`, compared as
    /// written) instead of the default; any other `Origin` is refused with 403.
    ///
    /// By default a page may connect only to its own host: the `Origin`'s host and port must be
    /// those of the request's `Host` header (case-insensitively; a port left out is the scheme's
    /// default, 80 or 443), and an `Origin` that is not `scheme://host[:port]` (such as `null`)
    /// is refused. Behind a proxy, pass the client's `Host` on, or list the origins here.
    ///
    /// Under every policy a request without an `Origin` header (not a browser) is accepted; the
    /// policy applies to the WebSocket upgrade and to the HTTP join.
    pub fn allowed_origins<I, S>(mut self, origins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.origins = Origins::List(origins.into_iter().map(Into::into).collect());
        self
    }

    /// Accept requests from pages of any origin: for development, or when a proxy in front of
    /// the server checks origins. Otherwise any site's pages could connect with the user's
    /// cookies.
    pub fn any_origin(mut self) -> Self {
        self.origins = Origins::Any;
        self
    }

    /// Whether the `Origin` policy admits `request` (see [`allowed_origins`](Self::allowed_origins)).
    pub(crate) fn origin_allowed(&self, request: &ConnectRequest) -> bool {
        let Some(origin) = request.header("origin") else {
            return true;
        };
        match &self.origins {
            Origins::SameHost => request
                .header("host")
                .is_some_and(|host| same_host(origin, host)),
            Origins::List(allowed) => allowed.iter().any(|allowed| allowed == origin),
            Origins::Any => true,
        }
    }
}

/// Which pages may connect (the `Origin` policy).
#[derive(Debug, Clone)]
pub(crate) enum Origins {
    /// Pages of the request's `Host` (the default).
    SameHost,
    /// Pages of these origins.
    List(Arc<[String]>),
    /// Any page.
    Any,
}

/// Whether `origin` (`scheme://host[:port]`) names the host and port of `host` (a `Host` header,
/// `host[:port]`), case-insensitively; a port left out is the scheme's default.
fn same_host(origin: &str, host: &str) -> bool {
    let Some((scheme, authority)) = origin.split_once("://") else {
        return false;
    };
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        _ => None,
    };
    let valid_scheme = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    match (
        valid_scheme,
        split_host_port(authority),
        split_host_port(host),
    ) {
        (true, Some((origin_host, origin_port)), Some((host, host_port))) => {
            origin_host.eq_ignore_ascii_case(host)
                && origin_port.or(default_port) == host_port.or(default_port)
        }
        _ => false,
    }
}

/// `host[:port]` split in two (an IPv6 host keeps its brackets); `None` when it is not one:
/// empty, with user info, a path or a space, or a port that is not a number.
fn split_host_port(authority: &str) -> Option<(&str, Option<u16>)> {
    if authority.is_empty()
        || authority.contains(|c: char| {
            matches!(c, '/' | '?' | '#' | '@' | '\\') || c.is_whitespace() || c.is_control()
        })
    {
        return None;
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => {
            if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            (host, Some(port.parse().ok()?))
        }
        _ => (authority, None),
    };
    (!host.is_empty()).then_some((host, port))
}

/// A 21-character id of URL-safe characters from the thread's cryptographic generator
/// (126 bits, as a Nanoid).
pub fn random_session_id() -> String {
    const ALPHABET: &[u8; 64] = b"useandom-26T198340PX75pxJACKVERYMINDBUSHWOLF_GQZbfghjklqvwyzrict";
    let mut bytes = [0u8; 21];
    rand::fill(&mut bytes);
    bytes
        .iter()
        .map(|byte| ALPHABET[usize::from(byte & 63)] as char)
        .collect()
}

/// A connection request as the connect hook sees it: headers, cookies, query and peer.
#[derive(Debug, Clone, Default)]
pub struct ConnectRequest {
    headers: Vec<(String, String)>,
    query: Vec<(String, String)>,
    peer: Option<SocketAddr>,
}

impl ConnectRequest {
    /// A request with these headers (any case), query pairs (decoded) and peer address.
    pub fn new(
        headers: Vec<(String, String)>,
        query: Vec<(String, String)>,
        peer: Option<SocketAddr>,
    ) -> Self {
        let headers = headers
            .into_iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), value));
        Self {
            headers: headers.collect(),
            query,
            peer,
        }
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(header, _)| header.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The value of cookie `name`, from the `Cookie` headers.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .filter(|(header, _)| header == "cookie")
            .flat_map(|(_, value)| value.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(cookie, _)| *cookie == name)
            .map(|(_, value)| value)
    }

    /// The first value of query parameter `name`, decoded.
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The address of the peer, when known.
    pub fn peer(&self) -> Option<SocketAddr> {
        self.peer
    }
}

/// A connect hook's refusal: the HTTP status and the message sent back instead of the upgrade.
/// A status that is not a 4xx or 5xx error is sent as 403.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// 401, 403 or another 4xx status.
    pub status: u16,
    /// Why, in words for the client.
    pub message: String,
}

impl Refusal {
    /// 401 Unauthorized with `message`.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self {
            status: 401,
            message: message.into(),
        }
    }

    /// 403 Forbidden with `message`.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self {
            status: 403,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_are_21_url_safe_characters_and_differ() {
        let a = random_session_id();
        let b = random_session_id();
        assert_eq!(a.len(), 21);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-'));
        assert_ne!(a, b);
    }

    #[test]
    fn reads_headers_cookies_and_query() {
        let request = ConnectRequest::new(
            vec![
                ("Cookie".into(), "a=1; token=abc.def".into()),
                ("Origin".into(), "http://x".into()),
            ],
            vec![("token".into(), "q".into())],
            None,
        );
        assert_eq!(request.header("origin"), Some("http://x"));
        assert_eq!(request.cookie("token"), Some("abc.def"));
        assert_eq!(request.cookie("b"), None);
        assert_eq!(request.query("token"), Some("q"));
    }

    #[test]
    fn origins() {
        let request = |origin: Option<&str>, host: Option<&str>| {
            let headers = [("Origin", origin), ("Host", host)]
                .into_iter()
                .filter_map(|(name, value)| Some((name.to_owned(), value?.to_owned())))
                .collect();
            ConnectRequest::new(headers, vec![], None)
        };
        let allowed = |config: &Config, origin: &str, host: &str| {
            config.origin_allowed(&request(Some(origin), Some(host)))
        };

        let same_host = Config::default();
        for (origin, host) in [
            ("http://app.test", "app.test"),
            ("HTTP://App.Test:8080", "app.TEST:8080"),
            ("http://app.test", "app.test:80"),
            ("http://app.test:80", "app.test"),
            ("https://app.test", "app.test"),
            ("https://app.test:443", "app.test:443"),
            ("http://127.0.0.1:8080", "127.0.0.1:8080"),
            ("http://[::1]:8080", "[::1]:8080"),
        ] {
            assert!(allowed(&same_host, origin, host), "{origin} on {host}");
        }
        for (origin, host) in [
            ("http://evil.test", "app.test"),
            ("http://app.test.evil.test", "app.test"),
            ("http://app.test:8081", "app.test:8080"),
            ("http://app.test", "app.test:8080"),
            ("https://app.test", "app.test:80"),
            ("http://app.test:443", "app.test"),
            ("null", "app.test"),
            ("app.test", "app.test"),
            ("http://", "app.test"),
            ("http://app.test/", "app.test"),
            ("http://user@app.test", "app.test"),
            ("http://app.test:", "app.test"),
            ("http://app.test:http", "app.test"),
            ("http://app.test:99999", "app.test"),
            ("1http://app.test", "app.test"),
        ] {
            assert!(!allowed(&same_host, origin, host), "{origin} on {host}");
        }
        assert!(
            !same_host.origin_allowed(&request(Some("http://app.test"), None)),
            "no Host to compare with"
        );
        assert!(same_host.origin_allowed(&request(None, Some("app.test"))));
        assert!(same_host.origin_allowed(&request(None, None)));

        let listed = Config::default().allowed_origins(["http://good"]);
        assert!(allowed(&listed, "http://good", "app.test"));
        assert!(!allowed(&listed, "http://evil", "app.test"));
        assert!(
            !allowed(&listed, "http://app.test", "app.test"),
            "only the list"
        );
        assert!(listed.origin_allowed(&request(None, Some("app.test"))));

        let any = Config::default().any_origin();
        assert!(allowed(&any, "http://evil", "app.test"));
        assert!(allowed(&any, "null", "app.test"));
        assert!(any.origin_allowed(&request(Some("null"), None)));
    }
}
