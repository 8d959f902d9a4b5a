//! actix-web integration (cargo feature `actix`, on by default): one scope serves the WebSocket
//! endpoint, the HTTP join and the client.
//!
//! A thin adapter: it turns actix's requests into the core's [`ConnectRequest`] and actix-ws's
//! socket into a [`Transport`]; every decision is the core's ([`Endpoint`]). This is the only
//! module that names actix-web or actix-ws.

use actix_web::http::StatusCode;
use actix_web::http::{header, Method};
use actix_web::{web, HttpRequest, HttpResponse};
use actix_ws::{AggregatedMessage, AggregatedMessageStream, CloseReason, ProtocolError};
use futures_util::{FutureExt, StreamExt};
use tracing::Instrument;

use crate::config::{Config, ConnectRequest, Refusal};
use crate::endpoint::{Accepted, Endpoint, RequestKind};
use crate::registry::RegistryError;
use crate::transport::{Close, CloseCode, Disconnected, Incoming, Transport};

/// The actix-web scope of a storex endpoint, at `config`'s path (a `&str` is a path with
/// every other setting at its default):
/// - a WebSocket upgrade at the path speaks the Storex protocol;
/// - `GET <path>?store=S&params=JSON` without an upgrade joins over HTTP (server-side rendering);
/// - `GET <path>/storex.js` is the browser client;
/// - `GET <path>/sse`, `POST <path>/sse/ID` and `DELETE <path>/sse/ID` are the event-stream
///   transport, for clients that cannot open a WebSocket (the [`sse`](crate::sse) module).
///
/// ```no_run
/// use actix_web::{App, HttpServer};
///
/// # async fn run() -> std::io::Result<()> {
/// let config = storex::Config::new("/storex");
/// let hub = config.hub().clone(); // for server-side mutations, and for a graceful stop
/// let server = HttpServer::new(move || App::new().service(storex::actix::scope(config.clone())))
///     .bind(("127.0.0.1", 8080))?
///     .run();
/// let handle = server.handle();
/// actix_web::rt::spawn(async move {
///     let _ = actix_web::rt::signal::ctrl_c().await;
///     hub.stop().await; // every session closed with 1001, every terminate run
///     handle.stop(true).await;
/// });
/// server.await
/// # }
/// ```
///
/// # Panics
/// At startup, when two stores are registered under one name (the message names both types);
/// [`try_scope`] returns that error instead.
pub fn scope(config: impl Into<Config>) -> actix_web::Scope {
    match try_scope(config) {
        Ok(scope) => scope,
        Err(error) => panic!("storex cannot start: {error}"),
    }
}

/// [`scope`], returning the registry's error instead of panicking.
pub fn try_scope(config: impl Into<Config>) -> Result<actix_web::Scope, RegistryError> {
    let endpoint = Endpoint::new(config)?;
    let path = endpoint.config().path().to_owned();
    let hub = endpoint.hub().clone();
    Ok(web::scope(&path)
        .app_data(web::Data::new(endpoint))
        .app_data(web::Data::new(hub))
        .route("", web::get().to(entry))
        .route("/", web::get().to(entry))
        .route("/storex.js", web::get().to(client_js))
        .route("/sse", web::get().to(events))
        .route("/sse/{stream}", web::post().to(post))
        .route("/sse/{stream}", web::delete().to(close_stream))
        .route("/sse/{stream}", web::method(Method::OPTIONS).to(preflight)))
}

/// The route that serves `metrics` to Prometheus (cargo feature `metrics`): mount it where it
/// scrapes, out of the public's reach (another port, or behind the proxy's access rules).
///
/// ```
/// use actix_web::App;
///
/// let metrics = storex::metrics::Metrics::new();
/// let config = storex::Config::new("/storex").metrics(metrics.clone());
/// let app = App::new()
///     .service(storex::actix::scope(config))
///     .route("/metrics", storex::actix::metrics(metrics));
/// # let _ = app;
/// ```
#[cfg(feature = "metrics")]
pub fn metrics(metrics: crate::metrics::Metrics) -> actix_web::Route {
    web::get().to(move || {
        let text = metrics.render();
        async move {
            HttpResponse::Ok()
                .content_type(crate::metrics::CONTENT_TYPE)
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .body(text)
        }
    })
}

/// The browser client, `<path>/storex.js`: an ES module, revalidated by its ETag.
async fn client_js(request: HttpRequest) -> HttpResponse {
    let fresh = request
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(crate::client::matches_etag);
    let mut response = if fresh {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::ETAG, crate::client::etag()))
        .insert_header((header::CACHE_CONTROL, "public, max-age=0, must-revalidate"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"));
    if fresh {
        response.finish()
    } else {
        response
            .content_type("text/javascript; charset=utf-8")
            .body(crate::client::SOURCE)
    }
}

async fn entry(
    request: HttpRequest,
    body: web::Payload,
    endpoint: web::Data<Endpoint>,
) -> HttpResponse {
    let connect = connect_request(&request);
    let is_upgrade = request
        .headers()
        .get(header::UPGRADE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.eq_ignore_ascii_case("websocket"));
    let kind = if is_upgrade {
        RequestKind::Connection
    } else {
        RequestKind::HttpJoin
    };
    let extensions = match endpoint.admit(&connect, kind) {
        Ok(extensions) => extensions,
        Err(refusal) => return with_cors(refused(refusal), &endpoint, &connect),
    };
    if !is_upgrade {
        let answer = endpoint.http_join(&connect, extensions).await;
        let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_REQUEST);
        let response = HttpResponse::build(status)
            .content_type("application/json")
            .body(answer.body);
        return with_cors(response, &endpoint, &connect);
    }
    let accepted = match endpoint.accept(&connect, extensions) {
        Ok(accepted) => accepted,
        Err(refusal) => return refused(refusal),
    };
    // On an error `accepted` is dropped, and the session with it.
    let (response, session, stream) = match actix_ws::handle(&request, body) {
        Ok(parts) => parts,
        Err(error) => return error.error_response(),
    };
    let max_frame = endpoint.config().max_frame_size;
    let stream = stream
        .max_frame_size(max_frame)
        .aggregate_continuations()
        .max_continuation_size(max_frame);
    let socket = WebSocket {
        session,
        stream,
        failed: false,
    };
    let span = connected(&accepted, &request, "websocket");
    actix_web::rt::spawn(accepted.serve(socket).instrument(span));
    response
}

/// Logs an accepted connection; the span its task runs in, named after its session.
fn connected(accepted: &Accepted, request: &HttpRequest, transport: &'static str) -> tracing::Span {
    let span = tracing::info_span!("connection", session = %accepted.session_id());
    span.in_scope(|| tracing::info!(peer = ?request.peer_addr(), transport, "connected"));
    span
}

/// `GET <path>/sse`: a live connection over an event stream, admitted as an upgrade is.
async fn events(request: HttpRequest, endpoint: web::Data<Endpoint>) -> HttpResponse {
    let connect = connect_request(&request);
    let accepted = endpoint
        .admit(&connect, RequestKind::Connection)
        .and_then(|extensions| endpoint.accept(&connect, extensions));
    let accepted = match accepted {
        Ok(accepted) => accepted,
        Err(refusal) => return with_cors(refused(refusal), &endpoint, &connect),
    };
    let span = connected(&accepted, &request, "event stream");
    let (body, serve) = accepted.serve_events();
    actix_web::rt::spawn(serve.instrument(span));
    let mut response = HttpResponse::Ok();
    response.content_type(crate::sse::CONTENT_TYPE);
    for header in crate::sse::HEADERS {
        response.insert_header(header);
    }
    let response = response
        .streaming(body.map(|event| Ok::<_, std::convert::Infallible>(web::Bytes::from(event))));
    with_cors(response, &endpoint, &connect)
}

/// `POST <path>/sse/ID`: the client's frames, one per line, handed over as the body arrives.
async fn post(
    request: HttpRequest,
    stream: web::Path<String>,
    body: web::Payload,
    endpoint: web::Data<Endpoint>,
) -> HttpResponse {
    let connect = origin_request(&request);
    let response = match endpoint.post(&connect, &stream) {
        Ok(post) => hand_over(post, body).await,
        Err(refusal) => refused(refusal),
    };
    with_cors(response, &endpoint, &connect)
}

async fn hand_over(mut post: crate::sse::Post, mut body: web::Payload) -> HttpResponse {
    while let Some(chunk) = body.next().await {
        let pushed = match chunk {
            Ok(chunk) => post.push(&chunk).await,
            // The request broke off: what came whole was handed over; the client, which got no
            // answer, takes the connection as lost and resumes.
            Err(error) => {
                tracing::debug!(%error, "a POST to an event stream broke off");
                return HttpResponse::BadRequest().finish();
            }
        };
        if let Err(error) = pushed {
            return post_refused(&error);
        }
    }
    match post.finish().await {
        Ok(()) => HttpResponse::NoContent().finish(),
        Err(error) => post_refused(&error),
    }
}

/// `DELETE <path>/sse/ID`: the client's close.
async fn close_stream(
    request: HttpRequest,
    stream: web::Path<String>,
    endpoint: web::Data<Endpoint>,
) -> HttpResponse {
    let connect = origin_request(&request);
    let response = match endpoint.close_stream(&connect, &stream).await {
        Ok(()) => HttpResponse::NoContent().finish(),
        Err(refusal) => refused(refusal),
    };
    with_cors(response, &endpoint, &connect)
}

/// `OPTIONS <path>/sse/ID`: the CORS preflight of a page of another origin, before its
/// `DELETE` (its `POST`s need none).
async fn preflight(request: HttpRequest, endpoint: web::Data<Endpoint>) -> HttpResponse {
    match endpoint.preflight(&origin_request(&request)) {
        Ok(headers) => {
            let mut response = HttpResponse::NoContent();
            for header in headers {
                response.insert_header(header);
            }
            response.finish()
        }
        Err(refusal) => refused(refusal),
    }
}

/// `response` with the CORS headers the endpoint gives `request` (a page of another origin the
/// policy admits reads the answer).
fn with_cors(
    mut response: HttpResponse,
    endpoint: &Endpoint,
    request: &ConnectRequest,
) -> HttpResponse {
    for (name, value) in endpoint.cors_headers(request) {
        if let Ok(value) = header::HeaderValue::from_str(&value) {
            response
                .headers_mut()
                .insert(header::HeaderName::from_static(name), value);
        }
    }
    response
}

fn post_refused(error: &crate::sse::PostError) -> HttpResponse {
    refused(Refusal {
        status: error.status(),
        message: error.to_string(),
    })
}

fn refused(refusal: Refusal) -> HttpResponse {
    let status = StatusCode::from_u16(refusal.status).unwrap_or(StatusCode::FORBIDDEN);
    HttpResponse::build(status)
        .content_type("text/plain; charset=utf-8")
        .body(refusal.message)
}

fn connect_request(request: &HttpRequest) -> ConnectRequest {
    let headers = request
        .headers()
        .iter()
        .filter_map(|(name, value)| {
            Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect();
    let query = web::Query::<Vec<(String, String)>>::from_query(request.query_string())
        .map(web::Query::into_inner)
        .unwrap_or_default();
    ConnectRequest::new(headers, query, request.peer_addr())
}

/// What the `Origin` policy reads of a request to an open stream (`Origin` and `Host`): the
/// connect hook ran when the stream opened, so the rest is not copied on every `POST`.
fn origin_request(request: &HttpRequest) -> ConnectRequest {
    let headers = [header::ORIGIN, header::HOST]
        .into_iter()
        .filter_map(|name| {
            let value = request.headers().get(&name)?.to_str().ok()?;
            Some((name.as_str().to_owned(), value.to_owned()))
        })
        .collect();
    ConnectRequest::new(headers, Vec::new(), request.peer_addr())
}

/// An actix-ws socket as a [`Transport`].
struct WebSocket {
    session: actix_ws::Session,
    stream: AggregatedMessageStream,
    /// Whether reading the connection failed (it dropped): what was read before still counts.
    failed: bool,
}

impl WebSocket {
    /// What the next message means; `None` to read on.
    async fn next(&mut self) -> Option<Incoming> {
        let message = if self.failed {
            // After the failure only what is already buffered: the stream would wait forever
            // for more.
            match self.stream.recv().now_or_never() {
                Some(message) => message,
                None => return Some(Incoming::Lost),
            }
        } else {
            self.stream.recv().await
        };
        let incoming = match message {
            Some(Ok(AggregatedMessage::Text(text))) => Incoming::Text(String::from(text)),
            Some(Ok(AggregatedMessage::Binary(_))) => Incoming::Binary,
            Some(Ok(AggregatedMessage::Ping(bytes))) => match self.session.pong(&bytes).await {
                Ok(()) => Incoming::Activity,
                Err(_closed) => Incoming::Lost,
            },
            Some(Ok(AggregatedMessage::Pong(_))) => Incoming::Activity,
            Some(Ok(AggregatedMessage::Close(reason))) => {
                tracing::debug!(code = ?reason.as_ref().map(|r| u16::from(r.code)), "close frame");
                Incoming::Closed
            }
            // The connection failed or ended in the middle of a frame: the network dropped.
            // actix-ws reports it before decoding the frames it had read whole: they are
            // served first.
            Some(Err(ProtocolError::Io(io))) if is_connection_failure(&io) => {
                tracing::debug!(error = %io, "the connection failed");
                if !self.failed {
                    self.failed = true;
                    return None;
                }
                Incoming::Lost
            }
            Some(Err(error)) => Incoming::Violation(protocol_close(&error)),
            None => Incoming::Lost,
        };
        Some(incoming)
    }
}

impl Transport for WebSocket {
    async fn recv(&mut self) -> Incoming {
        loop {
            if let Some(incoming) = self.next().await {
                return incoming;
            }
        }
    }

    async fn send(&mut self, text: String) -> Result<(), Disconnected> {
        self.session
            .text(text)
            .await
            .map_err(|_closed| Disconnected)
    }

    async fn ping(&mut self) -> Result<bool, Disconnected> {
        // It fails when actix has let the connection go (its writer failed, say), which the
        // reading side may never report.
        self.session
            .ping(b"")
            .await
            .map(|()| true)
            .map_err(|_closed| Disconnected)
    }

    async fn close(&mut self, close: Close) {
        let reason = CloseReason {
            code: close.code.into(),
            description: Some(close.reason),
        };
        let _ = self.session.clone().close(Some(reason)).await;
    }
}

/// The close for a frame actix-ws rejected. Its reason is a fixed sentence: the decoder's own
/// message goes to the log, never to the client.
fn protocol_close(error: &ProtocolError) -> Close {
    match error {
        ProtocolError::Overflow => Close::too_big(),
        // actix-ws reports an over-long run of continuation frames as an I/O error.
        ProtocolError::Io(io) if io.to_string().contains("maximum continuation size") => {
            Close::too_big()
        }
        ProtocolError::Io(io) if is_invalid_utf8(io) => {
            tracing::info!(error = %io, "a text message is not UTF-8");
            Close::malformed()
        }
        other => {
            tracing::info!(error = %other, "WebSocket protocol error");
            Close::new(CloseCode::PROTOCOL_ERROR, "Protocol error.")
        }
    }
}

/// Whether actix-ws failed to read the connection itself (an I/O error, or the stream ended in
/// the middle of a frame, as when a client's network drops): actix-ws wraps the payload's error.
fn is_connection_failure(io: &std::io::Error) -> bool {
    io.get_ref()
        .is_some_and(|inner| inner.is::<actix_web::error::PayloadError>())
}

/// Whether actix-ws rejected a text message that is not UTF-8: an `InvalidData` I/O error around
/// the `Utf8Error` (one frame) or around its message (continuation frames, reassembled). The
/// decoder's other `InvalidData` error, reserved bits set, is a protocol error.
fn is_invalid_utf8(io: &std::io::Error) -> bool {
    io.kind() == std::io::ErrorKind::InvalidData
        && io.get_ref().is_some_and(|inner| {
            inner.is::<std::str::Utf8Error>() || inner.to_string().contains("utf-8")
        })
}
