//! A storex endpoint without a web framework: admission (the `Origin` policy, the connect hook,
//! the session id), the HTTP join, and the start of a live connection. Transports call it (see
//! the `transport` module).

use std::sync::Arc;

use serde_json::Value;
use tracing::Instrument;

use crate::config::{Config, ConnectRequest, Refusal};
use crate::connection::{Connection, Settings};
use crate::driver::Limits;
use crate::hub::Hub;
use crate::instance::state_of;
use crate::limits::{Full, Slot};
use crate::local::{Inbox, OpenError};
use crate::protocol::{Close, ServerMessage};
use crate::registry::{Registry, RegistryError};
use crate::sse::{EventStream, Post, Streams};
use crate::store::{Extensions, Params, Session};
use crate::telemetry::RefusedBy;
use crate::transport::{Close as TransportClose, Disconnected, Incoming, Transport};

/// The transport-neutral side of a storex endpoint: its [`Config`], the program's stores, and
/// what every transport asks of them. Cheap to clone.
///
/// ```
/// use storex::{Endpoint, RequestKind};
///
/// let endpoint = Endpoint::new(storex::Config::new("/storex").allowed_origins(["https://app.example"]))?;
/// let request = storex::ConnectRequest::new(
///     vec![("Origin".into(), "https://evil.example".into())],
///     vec![],
///     None,
/// );
/// let refusal = endpoint.admit(&request, RequestKind::Connection).unwrap_err();
/// assert_eq!(refusal.status, 403);
/// # Ok::<(), storex::RegistryError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Endpoint {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    config: Config,
    settings: Arc<Settings>,
}

/// What a request asks for, as admission sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestKind {
    /// A live connection (a WebSocket upgrade, or an event stream).
    Connection,
    /// An HTTP join (a plain `GET`, for server-side rendering).
    HttpJoin,
}

/// The answer to an HTTP join: a status and a JSON body (PROTOCOL.md, HTTP join).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpAnswer {
    /// 200, or 400 with an error message.
    pub status: u16,
    /// The JSON text.
    pub body: String,
}

/// A session admitted and registered, not yet served: run it with [`serve`](Self::serve).
/// Dropping it unserved forgets the session.
#[derive(Debug)]
pub struct Accepted {
    connection: Connection,
    inbox: Inbox,
    limits: Limits,
    slot: Slot,
    streams: Arc<Streams>,
    heartbeat: std::time::Duration,
}

impl Accepted {
    /// The session's id.
    pub fn session_id(&self) -> &str {
        self.connection.id()
    }

    /// Serves the connection until it ends, then runs every `terminate` and forgets the session.
    pub async fn serve(self, transport: impl Transport) {
        // The connection's slot goes with its transport: a session that waits for a resume
        // after the socket went holds none.
        let transport = Counted {
            transport,
            _slot: self.slot,
        };
        crate::driver::drive(self.connection, self.inbox, transport, self.limits).await;
    }

    /// Serves the connection over an event stream (the `sse` module): the stream is the body of
    /// the `200` answer, and the future serves the connection until it ends (run it on a task,
    /// as [`serve`](Self::serve)). The client's `POST`s reach it through [`Endpoint::post`].
    pub fn serve_events(self) -> (EventStream, impl std::future::Future<Output = ()>) {
        let id = crate::config::random_session_id().into();
        let (body, transport) = self.streams.clone().open(id, self.heartbeat);
        (body, self.serve(transport))
    }
}

/// A transport that holds its connection's place under the caps until it is dropped.
struct Counted<T> {
    transport: T,
    _slot: Slot,
}

impl<T: Transport> Transport for Counted<T> {
    fn recv(&mut self) -> impl std::future::Future<Output = Incoming> {
        self.transport.recv()
    }

    fn send(
        &mut self,
        text: String,
    ) -> impl std::future::Future<Output = Result<(), Disconnected>> {
        self.transport.send(text)
    }

    fn close(&mut self, close: TransportClose) -> impl std::future::Future<Output = ()> {
        self.transport.close(close)
    }

    fn ping(&mut self) -> impl std::future::Future<Output = Result<bool, Disconnected>> {
        self.transport.ping()
    }
}

/// The answer to a request for an event stream that is not open.
fn no_stream() -> Refusal {
    Refusal {
        status: 404,
        message: "No open event stream has this id: it ended, or it is served by another server; \
                  open a new one."
            .into(),
    }
}

/// The session id of an HTTP join (Storex's).
const HTTP_SESSION: &str = "SSR";

impl Endpoint {
    /// The endpoint of `config` over every store of the program; an error when two stores
    /// share a name.
    pub fn new(config: impl Into<Config>) -> Result<Self, RegistryError> {
        let config: Config = config.into();
        let registry = Registry::global()?;
        if config.durable.is_some() && config.resume.ttl.is_zero() {
            tracing::warn!(
                "Config::durable has no effect while resume_ttl is zero: sessions end with their \
                 connections, so there is nothing to resume on another node"
            );
        }
        let settings = Arc::new(Settings {
            registry,
            max_stores: config.max_stores_per_session,
            time_limit: config.time_limit,
            idle: config.idle_timeout,
            send: config.send_timeout,
            resume: config.resume.clone(),
            inbox_capacity: config.inbox_capacity,
            durable: config.durable.clone(),
            hooks: config.hooks.clone(),
            telemetry: config.telemetry.clone(),
            mutation_rate: config.mutation_rate,
        });
        config.telemetry.watch(&config.hub, &config.gate);
        Ok(Self {
            shared: Arc::new(Shared { config, settings }),
        })
    }

    /// The endpoint's configuration.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// The endpoint's hub.
    pub fn hub(&self) -> &Hub {
        &self.shared.config.hub
    }

    /// Admits a request, or refuses it: a request from a page of an origin that is not allowed
    /// gets 403 (the `Origin` policy, [`Config::allowed_origins`]), then the connect hook decides
    /// (a refusal's status that is not an error status is sent as 403). What the hook attached
    /// is returned.
    pub fn admit(
        &self,
        request: &ConnectRequest,
        kind: RequestKind,
    ) -> Result<Extensions, Refusal> {
        self.check_origin(request, kind)?;
        let config = self.config();
        let Some(hook) = &config.on_connect else {
            return Ok(Extensions::new());
        };
        hook(request).map_err(|refusal| {
            config.telemetry.refused(RefusedBy::ConnectHook);
            tracing::info!(
                status = refusal.status,
                "connection refused by the connect hook"
            );
            // A refusal is an error status: anything else would read as a success.
            let status = if (400..=599).contains(&refusal.status) {
                refusal.status
            } else {
                403
            };
            Refusal {
                status,
                message: refusal.message,
            }
        })
    }

    /// The `Origin` policy ([`Config::allowed_origins`]): 403 for a page of an origin that is
    /// not allowed.
    fn check_origin(&self, request: &ConnectRequest, kind: RequestKind) -> Result<(), Refusal> {
        let config = self.config();
        if config.origin_allowed(request) {
            return Ok(());
        }
        tracing::info!(
            ?kind,
            origin = request.header("origin"),
            host = request.header("host"),
            "connection refused: origin not allowed"
        );
        config.telemetry.refused(RefusedBy::Origin);
        Err(Refusal::forbidden(
            "This origin may not connect to this storex endpoint.",
        ))
    }

    /// The CORS headers of an answer to `request` over plain HTTP (the event stream, its
    /// requests, the HTTP join): a page of another origin that the `Origin` policy admits (one
    /// of [`Config::allowed_origins`], or any with [`Config::any_origin`]) may read the answer
    /// with its credentials. None for a request without `Origin` or from an origin the policy
    /// refuses (that request is refused anyway).
    pub fn cors_headers(&self, request: &ConnectRequest) -> Vec<(&'static str, String)> {
        match request.header("origin") {
            Some(origin) if self.config().origin_allowed(request) => vec![
                ("access-control-allow-origin", origin.to_owned()),
                ("access-control-allow-credentials", "true".to_owned()),
                ("vary", "Origin".to_owned()),
            ],
            _ => Vec::new(),
        }
    }

    /// The answer to a CORS preflight (`OPTIONS`) of the event stream's requests: the headers
    /// that let an admitted origin send its `POST`s and `DELETE`, or 403 for one the `Origin`
    /// policy refuses.
    pub fn preflight(
        &self,
        request: &ConnectRequest,
    ) -> Result<Vec<(&'static str, String)>, Refusal> {
        self.check_origin(request, RequestKind::Connection)?;
        let mut headers = self.cors_headers(request);
        headers.extend([
            (
                "access-control-allow-methods",
                "GET, POST, DELETE".to_owned(),
            ),
            ("access-control-allow-headers", "content-type".to_owned()),
            ("access-control-max-age", "600".to_owned()),
        ]);
        Ok(headers)
    }

    /// How many live connections the endpoint serves now, with every endpoint of its config's
    /// clones (those [`accept`](Self::accept)ed and not ended: a session that waits for its
    /// client to resume it is not one).
    pub fn live_connections(&self) -> usize {
        self.config().gate.live()
    }

    /// Registers a session for an admitted live connection `request` (allocating its id);
    /// serve it with [`Accepted::serve`]. Refused with 503 when the endpoint serves its most
    /// connections ([`Config::max_connections`]), the server is stopping or the id generator
    /// keeps repeating ids of live sessions, and with 429 when the client's address holds its
    /// most ([`Config::max_connections_per_address`]).
    pub fn accept(
        &self,
        request: &ConnectRequest,
        extensions: Extensions,
    ) -> Result<Accepted, Refusal> {
        const ATTEMPTS: usize = 3;
        let config = self.config();
        let address = (config.client_address)(request);
        let slot = config
            .gate
            .enter(
                address,
                config.max_connections,
                config.max_connections_per_address,
            )
            .map_err(|full| match full {
                Full::Endpoint => {
                    config.telemetry.refused(RefusedBy::Full);
                    Refusal {
                        status: 503,
                        message: "This server has too many connections; try again later.".into(),
                    }
                }
                Full::Address => {
                    config.telemetry.refused(RefusedBy::Address);
                    Refusal {
                        status: 429,
                        message: "Too many connections from this address.".into(),
                    }
                }
            })?;
        let mut result = Err(OpenError::Taken);
        for _ in 0..ATTEMPTS {
            let id: Arc<str> = (config.session_id)().into();
            result = config
                .hub
                .open(id.clone(), config.inbox_capacity)
                .map(|opened| (id, opened));
            if !matches!(result, Err(OpenError::Taken)) {
                break;
            }
        }
        let (id, (registration, inbox)) = match result {
            Ok(opened) => opened,
            Err(OpenError::Stopping) => {
                config.telemetry.refused(RefusedBy::Stopping);
                return Err(Refusal {
                    status: 503,
                    message: "The server is stopping; try again.".into(),
                });
            }
            Err(OpenError::Taken) => {
                tracing::error!("the session id generator repeats ids of live sessions");
                return Err(Refusal {
                    status: 503,
                    message: "No session id available; try again.".into(),
                });
            }
        };
        let connection = Connection::new(
            Session::with_extensions(id, extensions),
            registration,
            self.shared.settings.clone(),
        );
        let limits = Limits {
            idle: config.idle_timeout,
            send: config.send_timeout,
            max_frame: config.max_frame_size,
            resumable: self.shared.settings.resumable(),
        };
        Ok(Accepted {
            connection,
            inbox,
            limits,
            slot,
            streams: config.streams.clone(),
            heartbeat: config.event_stream_heartbeat,
        })
    }

    /// A `POST` of the client's frames to the event stream `stream` (PROTOCOL.md, "The
    /// event-stream transport"): refused with 403 by the `Origin` policy (the connect hook ran
    /// when the stream opened: the stream's id is the credential), and with 404 when no open
    /// stream of this endpoint (or of its config's clones) has that id.
    pub fn post(&self, request: &ConnectRequest, stream: &str) -> Result<Post, Refusal> {
        self.check_origin(request, RequestKind::Connection)?;
        self.config()
            .streams
            .post(stream, self.config().max_frame_size)
            .ok_or_else(no_stream)
    }

    /// A `DELETE` of the event stream `stream`: the client's close (the session ends), refused
    /// as [`post`](Self::post) is.
    pub async fn close_stream(
        &self,
        request: &ConnectRequest,
        stream: &str,
    ) -> Result<(), Refusal> {
        self.check_origin(request, RequestKind::Connection)?;
        if self.config().streams.close(stream).await {
            Ok(())
        } else {
            Err(no_stream())
        }
    }

    /// `GET <path>?store=S&params=JSON`: runs init once (session `"SSR"`), then terminate, and
    /// answers the state (PROTOCOL.md, HTTP join).
    pub async fn http_join(&self, request: &ConnectRequest, extensions: Extensions) -> HttpAnswer {
        let store = request.query("store").unwrap_or_default();
        let refuse = |error: &str| HttpAnswer {
            status: 400,
            body: ServerMessage::HttpError {
                store,
                session: HTTP_SESSION,
                error,
            }
            .encode(),
        };
        if store.is_empty() {
            return refuse(&Close::store_not_set().reason);
        }
        let Some(entry) = self.shared.settings.registry.get(store) else {
            return refuse(&format!(
                "Store '{store}' is not defined or can't be compiled."
            ));
        };
        let params = match request.query("params").map(serde_json::from_str::<Value>) {
            None => Value::Object(Default::default()),
            Some(Ok(params)) => params,
            Some(Err(error)) => {
                return refuse(&format!("The params query parameter is not JSON: {error}"))
            }
        };
        let session = Session::with_extensions(HTTP_SESSION, extensions);
        let span = tracing::info_span!("http_join", store = %store);
        let joined = entry
            .join_within(session, Params::new(params), self.config().time_limit)
            .instrument(span)
            .await;
        let mut instance = match joined {
            Ok(instance) => instance,
            Err(error) => return refuse(&error.to_string()),
        };
        let state = state_of(instance.as_ref());
        instance.terminate().await;
        match state {
            Ok(state) => HttpAnswer {
                status: 200,
                body: ServerMessage::HttpJoin {
                    store,
                    session: HTTP_SESSION,
                    data: &state,
                }
                .encode(),
            },
            Err(error) => refuse(&error),
        }
    }
}
