//! Prometheus metrics of storex endpoints (cargo feature `metrics`, with `prometheus-client`).
//!
//! Make one [`Metrics`], give it to the endpoint's config ([`Config::metrics`](crate::Config::metrics)),
//! and serve its text where Prometheus scrapes it: with actix-web,
//! [`actix::metrics`](crate::actix::metrics) is the route; elsewhere [`Metrics::render`] is the
//! body (content type [`CONTENT_TYPE`]).
//!
//! ```
//! # #[cfg(feature = "actix")] {
//! use actix_web::App;
//!
//! let metrics = storex::metrics::Metrics::new();
//! let config = storex::Config::new("/storex").metrics(metrics.clone());
//! let app = App::new()
//!     .service(storex::actix::scope(config))
//!     .route("/metrics", storex::actix::metrics(metrics));
//! # let _ = app;
//! # }
//! ```
//!
//! What it counts (every name starts with `storex_`):
//!
//! | metric | labels | what |
//! |---|---|---|
//! | `connections` (gauge) | | live connections |
//! | `sessions` (gauge) | | live sessions, those that wait for a resume included |
//! | `detached_sessions` (gauge) | | sessions that wait for their client to resume them |
//! | `connection_refusals_total` | `reason`: `origin`, `connect_hook`, `full`, `address`, `stopping` | connection requests refused at admission |
//! | `joins_total` | `store` | stores joined |
//! | `join_refusals_total` | `store` | joins refused (by init, its time limit, or the session's store limit) |
//! | `mutations_total` | `store`, `source` (`client`, `server`), `outcome` (`ok`, `error`, `panic`, `timeout`, `refused`: by a hook, `limited`: by the rate limit) | mutations |
//! | `mutation_duration_seconds` (histogram) | `store` | how long mutations took, hooks included |
//! | `pushes_total` | `store` | pushes sent (server-side mutations that changed a client's state) |
//! | `closes_total` | `code` | close frames the server sent, by code |
//! | `disconnects_total` | `reason`: `client_closed`, `lost` | connections the client ended |
//! | `inbox_overflows_total` | | sessions ended because their server-side mutations did not fit their inbox |
//! | `backplane_publish_failures_total` | | messages the backplane could not publish (a backplane that reaches other nodes, such as Redis) |
//!
//! Labels are bounded: a store label is a registered store's name (never a client's text), the
//! others are fixed words and the server's own close codes.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::hub::Hub;
use crate::limits::Gate;

/// The content type of [`Metrics::render`]'s text (Prometheus text format 0.0.4).
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

type Labels<const N: usize> = [(&'static str, &'static str); N];
type HistogramFamily = Family<Labels<1>, Histogram, fn() -> Histogram>;

/// The metrics of one or more storex endpoints. Cheap to clone: clones count together.
#[derive(Debug, Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Its own registry, when [`Metrics::new`] made it (then [`Metrics::render`] renders it).
    registry: Option<Registry>,
    refusals: Family<Labels<1>, Counter>,
    joins: Family<Labels<1>, Counter>,
    join_refusals: Family<Labels<1>, Counter>,
    mutations: Family<Labels<3>, Counter>,
    durations: HistogramFamily,
    pushes: Family<Labels<1>, Counter>,
    closes: Family<Labels<1>, Counter>,
    disconnects: Family<Labels<1>, Counter>,
    overflows: Counter,
    live: Arc<Live>,
}

/// What is read at each scrape: the endpoints' hubs and connection counts.
#[derive(Debug, Default)]
struct Live {
    endpoints: Mutex<Vec<(Hub, Arc<Gate>)>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Metrics in a registry of their own, which [`render`](Self::render) writes.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let mut metrics = Self::register_in(&mut registry);
        if let Some(inner) = Arc::get_mut(&mut metrics.inner) {
            inner.registry = Some(registry);
        }
        metrics
    }

    /// Metrics registered in the application's own `registry` (under the prefix `storex`),
    /// which the application renders with its other metrics; [`render`](Self::render) then
    /// writes nothing.
    pub fn register_in(registry: &mut Registry) -> Self {
        let registry = registry.sub_registry_with_prefix("storex");
        let live = Arc::new(Live::default());
        registry.register_collector(Box::new(live.clone()));
        let family = Family::<Labels<1>, Counter>::default;
        let inner = Inner {
            registry: None,
            refusals: family(),
            joins: family(),
            join_refusals: family(),
            mutations: Family::default(),
            durations: Family::new_with_constructor(|| {
                // 100 µs to about 3.3 s.
                Histogram::new(exponential_buckets(0.0001, 2.0, 16))
            }),
            pushes: family(),
            closes: family(),
            disconnects: family(),
            overflows: Counter::default(),
            live,
        };
        let by_label = [
            (
                "connection_refusals",
                "Connection requests refused at admission, by reason",
                &inner.refusals,
            ),
            ("joins", "Stores joined", &inner.joins),
            (
                "join_refusals",
                "Joins refused (init, its time limit, or the session's store limit)",
                &inner.join_refusals,
            ),
            (
                "pushes",
                "Pushes sent: server-side mutations that changed a client's state",
                &inner.pushes,
            ),
            (
                "closes",
                "Close frames the server sent, by code",
                &inner.closes,
            ),
            (
                "disconnects",
                "Connections their client ended (closed, or lost without a close)",
                &inner.disconnects,
            ),
        ];
        for (name, help, family) in by_label {
            registry.register(name, help, family.clone());
        }
        let mutations = "Mutations, by store, source and outcome";
        registry.register("mutations", mutations, inner.mutations.clone());
        let durations = "How long mutations took, hooks included";
        registry.register(
            "mutation_duration_seconds",
            durations,
            inner.durations.clone(),
        );
        let overflows =
            "Sessions ended because their server-side mutations did not fit their inbox";
        registry.register("inbox_overflows", overflows, inner.overflows.clone());
        Self {
            inner: Arc::new(inner),
        }
    }

    /// The metrics in the Prometheus text format ([`CONTENT_TYPE`]); empty for metrics
    /// registered in the application's registry ([`register_in`](Self::register_in)).
    pub fn render(&self) -> String {
        let mut text = String::new();
        if let Some(registry) = &self.inner.registry {
            // Writing to a String cannot fail.
            let _ = prometheus_client::encoding::prometheus_text::encode(&mut text, registry);
        }
        text
    }

    /// Reads `hub` and `gate` at each scrape (an endpoint of these metrics was made).
    pub(crate) fn watch(&self, hub: &Hub, gate: &Arc<Gate>) {
        let mut endpoints = self
            .inner
            .live
            .endpoints
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if !endpoints.iter().any(|(_, known)| Arc::ptr_eq(known, gate)) {
            endpoints.push((hub.clone(), gate.clone()));
        }
    }

    pub(crate) fn refused(&self, reason: &'static str) {
        self.inner
            .refusals
            .get_or_create(&[("reason", reason)])
            .inc();
    }

    pub(crate) fn joined(&self, store: &'static str, ok: bool) {
        let family = if ok {
            &self.inner.joins
        } else {
            &self.inner.join_refusals
        };
        family.get_or_create(&[("store", store)]).inc();
    }

    pub(crate) fn mutation(
        &self,
        store: &'static str,
        source: &'static str,
        outcome: &'static str,
        took: Option<Duration>,
    ) {
        let labels = [("store", store), ("source", source), ("outcome", outcome)];
        self.inner.mutations.get_or_create(&labels).inc();
        if let Some(took) = took {
            self.inner
                .durations
                .get_or_create(&[("store", store)])
                .observe(took.as_secs_f64());
        }
    }

    pub(crate) fn pushed(&self, store: &'static str) {
        self.inner.pushes.get_or_create(&[("store", store)]).inc();
    }

    pub(crate) fn closed(&self, code: u16) {
        self.inner
            .closes
            .get_or_create(&[("code", close_code_label(code))])
            .inc();
    }

    pub(crate) fn disconnected(&self, reason: &'static str) {
        self.inner
            .disconnects
            .get_or_create(&[("reason", reason)])
            .inc();
    }

    pub(crate) fn overflowed(&self) {
        self.inner.overflows.inc();
    }
}

/// A close code as a label: the codes the server sends, each its own word; any other is
/// `other` (the label stays bounded).
fn close_code_label(code: u16) -> &'static str {
    match code {
        1000 => "1000",
        1001 => "1001",
        1002 => "1002",
        1007 => "1007",
        1008 => "1008",
        1009 => "1009",
        1011 => "1011",
        4000 => "4000",
        4001 => "4001",
        _ => "other",
    }
}

impl Collector for Live {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let (mut connections, mut sessions, mut detached, mut failures) = (0, 0, 0, None);
        {
            let endpoints = self.endpoints.lock().unwrap_or_else(|e| e.into_inner());
            let mut hubs: Vec<&Hub> = Vec::new();
            for (hub, gate) in endpoints.iter() {
                connections += gate.live();
                // Endpoints of one config share a hub: each hub is counted once.
                if hubs.iter().any(|known| known.same(hub)) {
                    continue;
                }
                hubs.push(hub);
                sessions += hub.session_count();
                detached += hub.detached().sessions;
                if let Some(count) = hub.publish_failures() {
                    failures = Some(failures.unwrap_or(0) + count);
                }
            }
        }
        let gauges = [
            ("connections", "Live connections", connections),
            (
                "sessions",
                "Live sessions, those that wait for a resume included",
                sessions,
            ),
            (
                "detached_sessions",
                "Sessions that wait for their client to resume them",
                detached,
            ),
        ];
        for (name, help, value) in gauges {
            let gauge = ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX));
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        if let Some(failures) = failures {
            let counter = ConstCounter::new(failures);
            counter.encode(encoder.encode_descriptor(
                "backplane_publish_failures",
                "Messages the backplane could not publish",
                None,
                counter.metric_type(),
            )?)?;
        }
        Ok(())
    }
}
