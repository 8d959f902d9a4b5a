//! What the WebSocket tests share: stores, a real server on a loopback port, a real client.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod stores;

use std::net::SocketAddr;
use std::time::Duration;

use actix_web::{App, HttpServer};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use storex::{Config, Hub};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a test waits for a frame that must come.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// Waits (polling) until `condition` holds; panics, naming `what`, when it does not within
/// `limit`.
pub async fn within(limit: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits until `condition` holds, for at most the patience.
pub async fn eventually(what: &str, condition: impl FnMut() -> bool) {
    within(PATIENCE, what, condition).await;
}

/// A storex server on 127.0.0.1 and an ephemeral port.
pub struct TestServer {
    pub addr: SocketAddr,
    pub hub: Hub,
    pub handle: actix_web::dev::ServerHandle,
}

impl TestServer {
    /// Starts a server with `config`; call inside an actix system (`#[actix_rt::test]`).
    pub fn start(config: Config) -> Self {
        let hub = config.hub().clone();
        let server =
            HttpServer::new(move || App::new().service(storex::actix::scope(config.clone())))
                .workers(2)
                .disable_signals()
                .bind(("127.0.0.1", 0))
                .expect("bind a loopback port");
        let addr = server.addrs()[0];
        let server = server.run();
        let handle = server.handle();
        actix_rt::spawn(server);
        Self { addr, hub, handle }
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/storex", self.addr)
    }

    pub fn http_url(&self, query: &str) -> String {
        format!("http://{}/storex?{query}", self.addr)
    }

    /// A client connected to the endpoint.
    pub async fn connect(&self) -> Client {
        Client::connect(&self.ws_url(), &[]).await.expect("connect")
    }

    /// Waits until the hub holds `count` sessions.
    pub async fn wait_for_sessions(&self, count: usize) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while self.hub.session_count() != count {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the hub holds {} sessions, expected {count}",
                self.hub.session_count()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// A WebSocket client speaking the protocol, one JSON object per frame.
pub struct Client {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_request: u64,
    pub session: Option<String>,
}

/// What a client saw instead of a text frame.
#[derive(Debug, PartialEq, Eq)]
pub enum Closed {
    /// A close frame with this code and reason.
    Frame(u16, String),
    /// The connection ended without a close frame.
    Dropped,
}

impl Client {
    /// Connects to `url` with extra request headers.
    pub async fn connect(
        url: &str,
        headers: &[(&'static str, &str)],
    ) -> Result<Self, tokio_tungstenite::tungstenite::Error> {
        let mut request = url.into_client_request()?;
        for (name, value) in headers {
            request
                .headers_mut()
                .insert(*name, HeaderValue::from_str(value).expect("header value"));
        }
        let (socket, _response) = tokio_tungstenite::connect_async(request).await?;
        Ok(Self {
            socket,
            next_request: 0,
            session: None,
        })
    }

    fn request_id(&mut self) -> String {
        self.next_request += 1;
        format!("r{}", self.next_request)
    }

    pub async fn send_text(&mut self, text: impl Into<String>) {
        self.socket
            .send(Message::Text(text.into().into()))
            .await
            .expect("send a frame");
    }

    pub async fn send_json(&mut self, value: &Value) {
        self.send_text(value.to_string()).await;
    }

    /// The next text frame as JSON (pings and pongs skipped); panics on close or timeout.
    pub async fn recv(&mut self) -> Value {
        match self.next().await {
            Ok(value) => value,
            Err(closed) => panic!("expected a frame, the connection closed: {closed:?}"),
        }
    }

    /// The next text frame, or how the connection closed.
    pub async fn next(&mut self) -> Result<Value, Closed> {
        loop {
            let frame = tokio::time::timeout(PATIENCE, self.socket.next())
                .await
                .expect("a frame within the patience");
            match frame {
                Some(Ok(Message::Text(text))) => {
                    return Ok(serde_json::from_str(&text).expect("a JSON frame"));
                }
                Some(Ok(Message::Close(frame))) => {
                    return Err(match frame {
                        Some(frame) => Closed::Frame(frame.code.into(), frame.reason.to_string()),
                        None => Closed::Frame(1005, String::new()),
                    })
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                Some(Ok(Message::Binary(_))) => panic!("the server sent a binary frame"),
                Some(Err(_)) | None => return Err(Closed::Dropped),
            }
        }
    }

    /// Expects the server to close the connection; its code and reason.
    pub async fn closed(&mut self) -> (u16, String) {
        match self.next().await {
            Err(Closed::Frame(code, reason)) => (code, reason),
            other => panic!("expected a close frame, got {other:?}"),
        }
    }

    /// Joins `store` with `params`; the answer.
    pub async fn join(&mut self, store: &str, params: Value) -> Value {
        let request = self.request_id();
        self.send_json(
            &json!({"type": "join", "store": store, "data": params, "request": request}),
        )
        .await;
        let answer = self.recv().await;
        assert_eq!(
            answer["request"],
            json!(request),
            "answer to another request: {answer}"
        );
        if let Some(session) = answer["session"].as_str() {
            self.session = Some(session.to_owned());
        }
        answer
    }

    /// Commits mutation `name` of `store` with `args`; the answer.
    pub async fn commit(&mut self, store: &str, name: &str, args: Value) -> Value {
        let request = self.request_id();
        let message = json!({
            "type": "mutation", "store": store, "session": self.session,
            "data": {"name": name, "data": args}, "request": request,
        });
        self.send_json(&message).await;
        let answer = self.recv().await;
        assert_eq!(
            answer["request"],
            json!(request),
            "answer to another request: {answer}"
        );
        answer
    }

    /// Nothing is waiting for this client: the answer to its ping is its next frame.
    pub async fn expect_quiet(&mut self) {
        self.send_json(&json!({"type": "ping", "request": "quiet?"}))
            .await;
        let frame = self.recv().await;
        assert_eq!(frame["type"], "pong", "expected no push, got {frame}");
        assert_eq!(frame["request"], "quiet?", "{frame}");
    }

    /// Sends a close frame and waits for the server's.
    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
        while let Ok(Some(Ok(_))) = tokio::time::timeout(PATIENCE, self.socket.next()).await {}
    }

    pub async fn send_raw(&mut self, message: Message) {
        self.socket.send(message).await.expect("send a frame");
    }
}

/// An HTTP GET of `url` with extra headers: status and body text.
pub async fn http_get_text(url: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut request = awc::Client::new().get(url);
    for (name, value) in headers {
        request = request.insert_header((*name, *value));
    }
    let mut response = request.send().await.expect("an HTTP answer");
    let body = response.body().await.expect("a body");
    (
        response.status().as_u16(),
        String::from_utf8_lossy(&body).into_owned(),
    )
}

/// An HTTP GET of `url`: status and JSON body (a string when it is not JSON).
pub async fn http_get(url: &str) -> (u16, Value) {
    let (status, body) = http_get_text(url, &[]).await;
    (
        status,
        serde_json::from_str(&body).unwrap_or(Value::String(body)),
    )
}
