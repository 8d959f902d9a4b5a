//! The load generator's client: WebSocket connections from chosen loopback source addresses,
//! the protocol messages of the counter store, and the verification of every answer.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use storex::diff::{Change, PathSegment};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::server::STORE;

/// A client WebSocket.
pub type Socket = WebSocketStream<TcpStream>;

/// How long the client waits for any one frame, connect or HTTP answer before it gives up.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Small buffers: tungstenite's defaults (128 KiB each, zeroed) made the client, not the
/// server, the bottleneck of 10,000 joins (page faults and memset in the client's profile).
fn socket_config() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(4 * 1024)
}

/// Opens a WebSocket to `server` at `path` (with its query), from `source` when given (spreading
/// source addresses over 127.0.0.x keeps thousands of connections clear of port exhaustion).
pub async fn connect(
    server: SocketAddr,
    path: &str,
    source: Option<Ipv4Addr>,
) -> Result<Socket, String> {
    connect_with(server, path, source, socket_config()).await
}

/// [`connect`] with another WebSocket configuration (larger messages, say).
pub async fn connect_with(
    server: SocketAddr,
    path: &str,
    source: Option<Ipv4Addr>,
    config: WebSocketConfig,
) -> Result<Socket, String> {
    let open = async {
        let socket = TcpSocket::new_v4().map_err(|e| format!("socket: {e}"))?;
        if let Some(source) = source {
            socket
                .bind(SocketAddr::from((source, 0)))
                .map_err(|e| format!("bind {source}: {e}"))?;
        }
        let stream = socket
            .connect(server)
            .await
            .map_err(|e| format!("connect {server}: {e}"))?;
        stream
            .set_nodelay(true)
            .map_err(|e| format!("nodelay: {e}"))?;
        let url = format!("ws://{server}{path}");
        let (socket, _response) =
            tokio_tungstenite::client_async_with_config(url, stream, Some(config))
                .await
                .map_err(|e| format!("WebSocket handshake: {e}"))?;
        Ok(socket)
    };
    tokio::time::timeout(PATIENCE, open)
        .await
        .map_err(|_| format!("no connection to {server} within {PATIENCE:?}"))?
}

/// The next text frame (pings and pongs skipped), within [`PATIENCE`].
pub async fn next_text(socket: &mut Socket) -> Result<String, String> {
    tokio::time::timeout(PATIENCE, next_text_unbounded(socket))
        .await
        .map_err(|_| format!("no frame within {PATIENCE:?}"))?
}

/// The next text frame (pings and pongs skipped), however long it takes.
pub async fn next_text_unbounded(socket: &mut Socket) -> Result<String, String> {
    loop {
        match socket.next().await {
            Some(Ok(Message::Text(text))) => return Ok(text.as_str().to_owned()),
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
            Some(Ok(Message::Binary(_))) => return Err("the server sent a binary frame".into()),
            Some(Ok(Message::Close(frame))) => {
                return Err(format!("closed by the server: {frame:?}"))
            }
            Some(Err(error)) => return Err(format!("socket error: {error}")),
            None => return Err("the connection ended".into()),
        }
    }
}

/// Queues a text frame without flushing it.
pub async fn feed(socket: &mut Socket, text: String) -> Result<(), String> {
    socket
        .feed(Message::Text(text.into()))
        .await
        .map_err(|e| format!("send: {e}"))
}

/// Writes the queued frames out.
pub async fn flush(socket: &mut Socket) -> Result<(), String> {
    socket.flush().await.map_err(|e| format!("flush: {e}"))
}

/// What the round trips need of a connection, whatever its transport: queue a frame, send what
/// is queued, read the next frame from the server.
pub trait Frames {
    /// Queues a text frame without sending it.
    fn queue(&mut self, text: String) -> impl std::future::Future<Output = Result<(), String>>;
    /// Sends what is queued.
    fn push_out(&mut self) -> impl std::future::Future<Output = Result<(), String>>;
    /// The next frame from the server, within [`PATIENCE`].
    fn next_frame(&mut self) -> impl std::future::Future<Output = Result<String, String>>;
}

impl Frames for Socket {
    fn queue(&mut self, text: String) -> impl std::future::Future<Output = Result<(), String>> {
        feed(self, text)
    }

    fn push_out(&mut self) -> impl std::future::Future<Output = Result<(), String>> {
        flush(self)
    }

    fn next_frame(&mut self) -> impl std::future::Future<Output = Result<String, String>> {
        next_text(self)
    }
}

/// The join message of the counter store.
pub fn join_message(request: u64) -> String {
    format!(r#"{{"type":"join","store":"{STORE}","data":{{}},"request":{request}}}"#)
}

/// The message committing `increase` with request id `request`.
pub fn mutation_message(session: &str, request: u64) -> String {
    format!(
        r#"{{"type":"mutation","store":"{STORE}","session":"{session}","data":{{"name":"increase","data":[]}},"request":{request}}}"#
    )
}

/// A ping with a request id that no mutation uses: its pong fences the answers before it.
pub fn fence_message() -> String {
    r#"{"type":"ping","request":"fence"}"#.to_owned()
}

/// Joins the counter store; its session id and state. Verifies the answer.
pub async fn join(socket: &mut impl Frames) -> Result<(String, Value), String> {
    socket.queue(join_message(0)).await?;
    socket.push_out().await?;
    let text = socket.next_frame().await?;
    let answer: Value = serde_json::from_str(&text).map_err(|e| format!("join answer: {e}"))?;
    if answer["type"] != "join" || answer["request"] != 0 || answer["store"] != STORE {
        return Err(format!("unexpected join answer: {text}"));
    }
    let session = answer["session"]
        .as_str()
        .ok_or_else(|| format!("join answer without session: {text}"))?
        .to_owned();
    let state = answer["data"].clone();
    if state != json!({"counter": 0}) {
        return Err(format!("unexpected initial state: {text}"));
    }
    Ok((session, state))
}

/// Reads a diff as the client's patch algorithm takes it.
pub fn changes(diff: &Value) -> Result<Vec<Change>, String> {
    let list = diff
        .as_array()
        .ok_or_else(|| format!("a diff that is not a list: {diff}"))?;
    list.iter()
        .map(|change| {
            let path = change["p"]
                .as_array()
                .ok_or_else(|| format!("a change without a path: {change}"))?
                .iter()
                .map(|segment| match segment {
                    Value::String(key) => Ok(PathSegment::Key(key.clone())),
                    Value::Number(index) => index
                        .as_u64()
                        .and_then(|index| usize::try_from(index).ok())
                        .map(PathSegment::Index)
                        .ok_or_else(|| format!("a bad index in {change}")),
                    _ => Err(format!("a bad path segment in {change}")),
                })
                .collect::<Result<Vec<_>, _>>()?;
            let value = change["t"].clone();
            match change["a"].as_str() {
                Some("u") => Ok(Change::Update { path, value }),
                Some("i") => Ok(Change::Insert { path, value }),
                Some("d") => Ok(Change::Delete { path }),
                _ => Err(format!("an unknown action in {change}")),
            }
        })
        .collect()
}

/// Applies an answer's or a push's diff to `state` with storex's patch algorithm.
pub fn apply_diff(state: &mut Value, answer: &Value) -> Result<(), String> {
    let changes = changes(&answer["diff"])?;
    storex::diff::apply(state, &changes).map_err(|e| format!("patch: {e} ({answer})"))
}

/// A plain HTTP/1.1 request to the benchmark server's control routes; the JSON body of a 200.
pub async fn http(server: SocketAddr, method: &str, path: &str) -> Result<Value, String> {
    let body = http_text(server, method, path).await?;
    serde_json::from_str(&body).map_err(|e| format!("{method} {path}: {e}: {body}"))
}

/// `GET path` of the benchmark server: the body of a 200, as text (the metrics, say).
pub async fn http_get_text(server: SocketAddr, path: &str) -> Result<String, String> {
    http_text(server, "GET", path).await
}

/// A plain HTTP/1.1 request; the body of a 200.
async fn http_text(server: SocketAddr, method: &str, path: &str) -> Result<String, String> {
    let exchange = async {
        let mut stream = TcpStream::connect(server)
            .await
            .map_err(|e| format!("connect {server}: {e}"))?;
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {server}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| format!("write: {e}"))?;
        let mut response = Vec::new();
        stream
            .read_to_end(&mut response)
            .await
            .map_err(|e| format!("read: {e}"))?;
        Ok::<_, String>(response)
    };
    let response = tokio::time::timeout(PATIENCE, exchange)
        .await
        .map_err(|_| format!("no answer to {method} {path} within {PATIENCE:?}"))??;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("not an HTTP answer: {text}"))?;
    if !head.starts_with("HTTP/1.1 200") {
        return Err(format!("{method} {path}: {head}"));
    }
    Ok(body.to_owned())
}
