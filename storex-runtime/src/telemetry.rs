//! What the core reports to the metrics, when there are any: one call per event, which costs
//! nothing without cargo feature `metrics` and one check without a [`Metrics`](crate::metrics::Metrics)
//! in the config.

use std::sync::Arc;

use tokio::time::Instant;

use crate::hooks::{MutationEvent, Source};
use crate::hub::Hub;
use crate::instance::{Applied, MutationError};
use crate::limits::Gate;

/// The metrics of an endpoint, if it has them.
#[derive(Debug, Clone, Default)]
pub(crate) struct Telemetry {
    #[cfg(feature = "metrics")]
    metrics: Option<crate::metrics::Metrics>,
}

/// Runs `$body` with the metrics `$m` when there are some; without the feature, only marks
/// the arguments used.
macro_rules! report {
    ($self:ident, $m:ident => $body:expr, $($used:expr),*) => {{
        #[cfg(feature = "metrics")]
        if let Some($m) = &$self.metrics {
            $body;
        }
        #[cfg(not(feature = "metrics"))]
        {
            let _ = ($self, $($used),*);
        }
    }};
}

/// Why a connection request was refused, as the metrics name it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum RefusedBy {
    Origin,
    ConnectHook,
    Full,
    Address,
    Stopping,
}

impl Telemetry {
    #[cfg(feature = "metrics")]
    pub(crate) fn new(metrics: crate::metrics::Metrics) -> Self {
        Self {
            metrics: Some(metrics),
        }
    }

    /// The start of a mutation, when its duration is measured.
    pub(crate) fn start(&self) -> Option<Instant> {
        #[cfg(feature = "metrics")]
        if self.metrics.is_some() {
            return Some(Instant::now());
        }
        None
    }

    /// An endpoint of `hub` and `gate` was made: the scrape reads them.
    pub(crate) fn watch(&self, hub: &Hub, gate: &Arc<Gate>) {
        report!(self, m => m.watch(hub, gate), hub, gate);
    }

    pub(crate) fn refused(&self, by: RefusedBy) {
        let reason = match by {
            RefusedBy::Origin => "origin",
            RefusedBy::ConnectHook => "connect_hook",
            RefusedBy::Full => "full",
            RefusedBy::Address => "address",
            RefusedBy::Stopping => "stopping",
        };
        report!(self, m => m.refused(reason), reason);
    }

    /// A join of registered store `store` succeeded (`ok`) or was refused.
    pub(crate) fn joined(&self, store: &'static str, ok: bool) {
        report!(self, m => m.joined(store, ok), store, ok);
    }

    /// A mutation ran (or a hook refused it: `refused`) and ended with `result`.
    pub(crate) fn mutation(
        &self,
        event: &MutationEvent<'_>,
        result: &Result<Applied, MutationError>,
        refused: bool,
        started: Option<Instant>,
    ) {
        report!(
            self,
            m => m.mutation(
                event.store,
                source(event.source),
                outcome(result, refused),
                started.map(|started| started.elapsed()),
            ),
            event,
            result,
            refused,
            started
        );
    }

    /// A client's mutation of registered store `store` was over the rate limit.
    pub(crate) fn limited(&self, store: &'static str) {
        report!(self, m => m.mutation(store, "client", "limited", None), store);
    }

    /// A push of `store` is on its way to a client.
    pub(crate) fn pushed(&self, store: &'static str) {
        report!(self, m => m.pushed(store), store);
    }

    /// The server sent a close frame with `code`.
    pub(crate) fn closed(&self, code: u16) {
        report!(self, m => m.closed(code), code);
    }

    /// The client ended the connection: it closed (`closed`), or it went without a close.
    pub(crate) fn disconnected(&self, closed: bool) {
        let reason = if closed { "client_closed" } else { "lost" };
        report!(self, m => m.disconnected(reason), reason);
    }

    /// A session's inbox of server-side mutations overflowed: the session ends.
    pub(crate) fn overflowed(&self) {
        report!(self, m => m.overflowed(),);
    }
}

/// A mutation's outcome as the metrics label it.
#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
fn outcome(result: &Result<Applied, MutationError>, refused: bool) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(_) if refused => "refused",
        Err(MutationError::Panicked { .. }) => "panic",
        Err(MutationError::TimedOut { .. }) => "timeout",
        Err(MutationError::Refused(_) | MutationError::Unserializable { .. }) => "error",
    }
}

#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
fn source(source: Source) -> &'static str {
    match source {
        Source::Client => "client",
        Source::Server => "server",
    }
}
