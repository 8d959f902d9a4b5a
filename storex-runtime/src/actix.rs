//! actix-web integration: one scope serves the WebSocket endpoint, the HTTP join and the client.
//!
//! This is the only module that names actix-web or actix-ws.

use std::pin::pin;

use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use actix_ws::{AggregatedMessage, AggregatedMessageStream, CloseReason, ProtocolError};
use serde_json::{json, Value};
use tracing::Instrument;

use crate::config::{Config, ConnectRequest};
use crate::hub::Inbox;
use crate::protocol::{Close, CloseCode};
use crate::registry::{Registry, RegistryError};
use crate::session::{Connection, Reaction};
use crate::store::{Extensions, Params, Session};

/// The actix-web scope of a storex endpoint, at `config`'s path (a `&str` is a path with
/// every other setting at its default):
/// - a WebSocket upgrade at the path speaks the Storex protocol;
/// - `GET <path>?store=S&params=JSON` without an upgrade joins over HTTP (server-side rendering).
///
/// ```no_run
/// use actix_web::{App, HttpServer};
///
/// # async fn run() -> std::io::Result<()> {
/// let config = storex::Config::new("/storex");
/// let hub = config.hub().clone(); // for server-side mutations
/// HttpServer::new(move || App::new().service(storex::actix::scope(config.clone())))
///     .bind(("127.0.0.1", 8080))?
///     .run()
///     .await
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
    let config = config.into();
    let registry = Registry::global()?;
    let hub = config.hub.clone();
    let endpoint = web::Data::new(Endpoint { config, registry });
    Ok(web::scope(&endpoint.config.path.clone())
        .app_data(endpoint)
        .app_data(web::Data::new(hub))
        .route("", web::get().to(entry))
        .route("/", web::get().to(entry))
        .route("/storex.js", web::get().to(client_js)))
}

/// The browser client, `<path>/storex.js`: an ES module, revalidated by its ETag.
async fn client_js(request: HttpRequest) -> HttpResponse {
    let etag = crate::client::etag();
    let matches = request
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|tags| {
            tags.split(',')
                .any(|tag| tag.trim() == etag || tag.trim() == "*")
        });
    let mut response = if matches {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, "public, max-age=0, must-revalidate"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"));
    if matches {
        response.finish()
    } else {
        response
            .content_type("text/javascript; charset=utf-8")
            .body(crate::client::SOURCE)
    }
}

struct Endpoint {
    config: Config,
    registry: &'static Registry,
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
    if is_upgrade && !endpoint.config.origin_allowed(connect.header("origin")) {
        tracing::info!(
            origin = connect.header("origin"),
            "connection refused: origin not allowed"
        );
        return plain(
            StatusCode::FORBIDDEN,
            "This origin may not connect to this storex endpoint.",
        );
    }
    let extensions = match &endpoint.config.on_connect {
        None => Extensions::new(),
        Some(hook) => match hook(&connect) {
            Ok(extensions) => extensions,
            Err(refusal) => {
                tracing::info!(
                    status = refusal.status,
                    "connection refused by the connect hook"
                );
                // A refusal is an error status: anything else would read as a success.
                let status = StatusCode::from_u16(refusal.status)
                    .ok()
                    .filter(|status| status.is_client_error() || status.is_server_error())
                    .unwrap_or(StatusCode::FORBIDDEN);
                return plain(status, refusal.message);
            }
        },
    };
    if is_upgrade {
        websocket(&request, body, &endpoint, extensions)
    } else {
        http_join(&connect, &endpoint, extensions).await
    }
}

fn plain(status: StatusCode, message: impl Into<String>) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/plain; charset=utf-8")
        .body(message.into())
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

/// `GET <path>?store=S&params=JSON`: init once, answer the state (PROTOCOL.md, HTTP join).
async fn http_join(
    connect: &ConnectRequest,
    endpoint: &Endpoint,
    extensions: Extensions,
) -> HttpResponse {
    const SESSION: &str = "SSR";
    let store = connect.query("store").unwrap_or_default().to_owned();
    let refuse = |error: String| {
        HttpResponse::BadRequest()
            .json(json!({"type": "error", "session": SESSION, "store": store, "error": error}))
    };
    if store.is_empty() {
        return refuse(Close::store_not_set().reason);
    }
    let Some(entry) = endpoint.registry.get(&store) else {
        return refuse(format!(
            "Store '{store}' is not defined or can't be compiled."
        ));
    };
    let params = match connect.query("params").map(serde_json::from_str::<Value>) {
        None => Value::Object(Default::default()),
        Some(Ok(params)) => params,
        Some(Err(error)) => {
            return refuse(format!("The params query parameter is not JSON: {error}"))
        }
    };
    let session = Session::with_extensions(SESSION, extensions);
    let span = tracing::info_span!("http_join", store = %store);
    match entry
        .join(session, Params::new(params))
        .instrument(span)
        .await
    {
        Ok(mut instance) => {
            let state = instance.state();
            instance.terminate().await;
            match state {
                Ok(state) => HttpResponse::Ok().json(
                    json!({"type": "join", "session": SESSION, "store": store, "data": state}),
                ),
                Err(error) => refuse(format!(
                    "The state of store {store} cannot be serialized: {error}"
                )),
            }
        }
        Err(error) => refuse(error.to_string()),
    }
}

fn websocket(
    request: &HttpRequest,
    body: web::Payload,
    endpoint: &Endpoint,
    extensions: Extensions,
) -> HttpResponse {
    let config = &endpoint.config;
    let Some((connection, inbox)) = Connection::open(config, endpoint.registry, extensions) else {
        tracing::error!("the session id generator repeats ids of live sessions");
        return plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "No session id available; try again.",
        );
    };
    let (response, socket, stream) = match actix_ws::handle(request, body) {
        Ok(parts) => parts,
        Err(error) => {
            config.hub.close(connection.id());
            return error.error_response();
        }
    };
    let stream = stream
        .max_frame_size(config.max_frame_size)
        .aggregate_continuations()
        .max_continuation_size(config.max_frame_size);
    let span = tracing::info_span!("connection", session = %connection.id());
    span.in_scope(|| tracing::info!(peer = ?request.peer_addr(), "connected"));
    let limits = Limits {
        idle: config.idle_timeout,
        send: config.send_timeout,
    };
    let task = serve(connection, inbox, socket, stream, limits).instrument(span);
    actix_web::rt::spawn(task);
    response
}

#[derive(Clone, Copy)]
struct Limits {
    idle: std::time::Duration,
    send: std::time::Duration,
}

/// The connection's task: it owns the session's stores and answers frames and commands in order.
async fn serve(
    mut connection: Connection,
    mut inbox: Inbox,
    mut socket: actix_ws::Session,
    mut stream: AggregatedMessageStream,
    limits: Limits,
) {
    let idle = tokio::time::sleep(limits.idle);
    let mut idle = pin!(idle);
    let close = loop {
        let reaction = tokio::select! {
            frame = stream.recv() => {
                idle.as_mut().reset(tokio::time::Instant::now() + limits.idle);
                match frame {
                    // Boxed (here and for commands): the state of a join or a mutation
                    // would otherwise be part of every idle session's task (~200 bytes each).
                    Some(Ok(AggregatedMessage::Text(text))) => Box::pin(connection.on_text(&text)).await,
                    Some(Ok(AggregatedMessage::Binary(_))) => Reaction::Close(Close::malformed()),
                    Some(Ok(AggregatedMessage::Ping(bytes))) => {
                        if socket.pong(&bytes).await.is_err() {
                            break None;
                        }
                        continue;
                    }
                    Some(Ok(AggregatedMessage::Pong(_))) => continue,
                    Some(Ok(AggregatedMessage::Close(reason))) => {
                        tracing::info!(code = ?reason.as_ref().map(|r| u16::from(r.code)), "client closed");
                        break Some(None);
                    }
                    Some(Err(error)) => Reaction::Close(protocol_close(&error)),
                    None => break None,
                }
            }
            command = inbox.commands.recv() => match command {
                Some(command) => match Box::pin(connection.on_command(command)).await {
                    Some(push) => Reaction::Send(push),
                    None => continue,
                },
                None => break Some(None),
            },
            () = inbox.overloaded.notified() => {
                tracing::warn!("closing a session that does not keep up with its pushes");
                Reaction::Close(Close::new(CloseCode::POLICY, "Too many pending messages: the client does not read."))
            }
            () = &mut idle => {
                tracing::info!("closing an idle connection");
                Reaction::Close(Close::new(CloseCode::NORMAL, "Idle timeout."))
            }
        };
        match reaction {
            Reaction::Send(text) => {
                match tokio::time::timeout(limits.send, socket.text(text)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_closed)) => break None,
                    Err(_elapsed) => {
                        tracing::warn!("dropping a connection whose client does not read");
                        break None;
                    }
                }
            }
            Reaction::Close(close) => break Some(Some(close)),
        }
    };
    if let Some(close) = close {
        if let Some(close) = &close {
            tracing::info!(code = close.code, reason = %close.reason, "closing");
        }
        let reason = close.map(|close| CloseReason {
            code: close.code.into(),
            description: Some(close.reason),
        });
        let _ = tokio::time::timeout(limits.send, socket.close(reason)).await;
    }
    connection.close().await;
    tracing::info!("disconnected");
}

fn protocol_close(error: &ProtocolError) -> Close {
    match error {
        ProtocolError::Overflow => Close::new(CloseCode::TOO_BIG, "Frame too large."),
        // actix-ws reports an over-long run of continuation frames as an I/O error.
        ProtocolError::Io(io) if io.to_string().contains("maximum continuation size") => {
            Close::new(CloseCode::TOO_BIG, "Message too large.")
        }
        other => Close::new(1002, format!("Protocol error: {other}")),
    }
}
