//! The event-stream transport over real HTTP (PROTOCOL.md, "The event-stream transport"): the
//! session core of the WebSocket behind `GET <path>/sse` and `POST <path>/sse/ID`, with its
//! admission (the `Origin` policy, the connect hook, the caps), its limits and close codes, a
//! server-side push, the client's close, and a lost stream resumed over a WebSocket.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::pin::Pin;
use std::time::Duration;

use actix_web::web::Bytes;
use common::stores::Counter;
use common::{eventually, TestServer, PATIENCE};
use futures_util::{Stream, StreamExt};
use serde_json::{json, Value};
use storex::{Config, Extensions, Refusal};

const COUNTER: &str = "Test.Counter";

type Body = Pin<Box<dyn Stream<Item = Result<Bytes, awc::error::PayloadError>>>>;

/// A client of the event-stream transport: the stream it reads, the URL it posts to.
struct SseClient {
    body: Body,
    /// What was read of the stream and not yet taken as events.
    read: String,
    post_url: String,
    http: awc::Client,
    next_request: u64,
    session: Option<String>,
}

/// One event: its type (`message` when it names none) and data.
#[derive(Debug, PartialEq, Eq)]
struct Event {
    kind: String,
    data: String,
}

fn sse_url(server: &TestServer, query: &str) -> String {
    format!("http://{}/storex/sse?{query}", server.addr)
}

/// Opens a stream with extra headers; the refusal's status and text when it is refused.
async fn open_with(url: &str, headers: &[(&str, &str)]) -> Result<SseClient, (u16, String)> {
    let http = awc::Client::builder()
        .timeout(PATIENCE)
        .disable_redirects()
        .finish();
    let mut request = http.get(url).insert_header(("accept", "text/event-stream"));
    for (name, value) in headers {
        request = request.insert_header((*name, *value));
    }
    let mut response = request.send().await.expect("an HTTP answer");
    let status = response.status().as_u16();
    if status != 200 {
        let body = response.body().await.expect("a body");
        return Err((status, String::from_utf8_lossy(&body).into_owned()));
    }
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };
    assert_eq!(
        header("content-type").as_deref(),
        Some("text/event-stream; charset=utf-8")
    );
    assert_eq!(header("cache-control").as_deref(), Some("no-store"));
    assert_eq!(header("x-accel-buffering").as_deref(), Some("no"));
    let base = url.split('?').next().unwrap().to_owned();
    let mut client = SseClient {
        body: Box::pin(response),
        read: String::new(),
        post_url: String::new(),
        http: awc::Client::builder().timeout(PATIENCE).finish(),
        next_request: 0,
        session: None,
    };
    let opened = client.event().await.expect("the open event");
    assert_eq!(opened.kind, "open", "{opened:?}");
    let stream: Value = serde_json::from_str(&opened.data).unwrap();
    client.post_url = format!("{base}/{}", stream["stream"].as_str().unwrap());
    Ok(client)
}

async fn open(server: &TestServer) -> SseClient {
    open_with(&sse_url(server, ""), &[])
        .await
        .expect("a stream")
}

impl SseClient {
    /// The next event, or `None` when the stream ended.
    async fn event(&mut self) -> Option<Event> {
        loop {
            if let Some(end) = self.read.find("\n\n") {
                let block: String = self.read.drain(..end + 2).collect();
                let mut event = Event {
                    kind: "message".into(),
                    data: String::new(),
                };
                let mut lines = Vec::new();
                for line in block.lines() {
                    if let Some(kind) = line.strip_prefix("event: ") {
                        event.kind = kind.to_owned();
                    } else if let Some(data) = line.strip_prefix("data:") {
                        lines.push(data.strip_prefix(' ').unwrap_or(data));
                    }
                }
                event.data = lines.join("\n");
                return Some(event);
            }
            let chunk = tokio::time::timeout(PATIENCE, self.body.next())
                .await
                .expect("an event within the patience");
            match chunk {
                Some(Ok(bytes)) => self.read.push_str(std::str::from_utf8(&bytes).unwrap()),
                Some(Err(_)) | None => return None,
            }
        }
    }

    /// The next frame from the server, as JSON; pings are answered on the way.
    async fn recv(&mut self) -> Value {
        loop {
            let event = self
                .event()
                .await
                .expect("a frame, not the end of the stream");
            match event.kind.as_str() {
                "message" => return serde_json::from_str(&event.data).unwrap(),
                "ping" => assert_eq!(self.post("").await, 204),
                _ => panic!("expected a frame, got {event:?}"),
            }
        }
    }

    /// The `close` event's code and reason; the stream ends after it.
    async fn closed(&mut self) -> (u16, String) {
        let event = self.event().await.expect("a close event");
        assert_eq!(event.kind, "close", "{event:?}");
        let close: Value = serde_json::from_str(&event.data).unwrap();
        assert_eq!(self.event().await, None, "the stream ends after the close");
        (
            u16::try_from(close["code"].as_u64().unwrap()).unwrap(),
            close["reason"].as_str().unwrap().to_owned(),
        )
    }

    /// POSTs `body` (frames, one per line); the status.
    async fn post(&self, body: &str) -> u16 {
        self.post_with(body, &[]).await
    }

    async fn post_with(&self, body: &str, headers: &[(&str, &str)]) -> u16 {
        let mut request = self
            .http
            .post(&self.post_url)
            .content_type("text/plain;charset=UTF-8");
        for (name, value) in headers {
            request = request.insert_header((*name, *value));
        }
        let response = request.send_body(body.to_owned()).await.expect("an answer");
        response.status().as_u16()
    }

    fn request(&mut self) -> String {
        self.next_request += 1;
        format!("r{}", self.next_request)
    }

    fn join_frame(&mut self, store: &str, params: Value) -> Value {
        json!({"type": "join", "store": store, "data": params, "request": self.request()})
    }

    fn commit_frame(&mut self, name: &str, args: Value) -> Value {
        json!({"type": "mutation", "store": COUNTER, "session": self.session,
               "data": {"name": name, "data": args}, "request": self.request()})
    }

    async fn join(&mut self, params: Value) -> Value {
        let frame = self.join_frame(COUNTER, params);
        assert_eq!(self.post(&frame.to_string()).await, 204);
        let answer = self.recv().await;
        assert_eq!(answer["request"], frame["request"], "{answer}");
        self.session = answer["session"].as_str().map(str::to_owned);
        answer
    }

    async fn commit(&mut self, name: &str, args: Value) -> Value {
        let frame = self.commit_frame(name, args);
        assert_eq!(self.post(&frame.to_string()).await, 204);
        let answer = self.recv().await;
        assert_eq!(answer["request"], frame["request"], "{answer}");
        answer
    }
}

#[actix_rt::test]
async fn the_protocol_runs_over_the_stream_and_posts_answers_pipelined_and_pushes() {
    let server = TestServer::start(Config::default());
    let mut client = open(&server).await;
    let joined = client.join(json!({"start": 5})).await;
    assert_eq!(joined["type"], "join");
    assert_eq!(joined["data"]["counter"], 5);
    assert!(joined["token"].is_string(), "a resume token: {joined}");

    let answer = client.commit("decrease", json!([])).await;
    assert_eq!(
        answer["diff"],
        json!([{"a": "u", "p": ["counter"], "t": 4}])
    );
    assert_eq!(answer["message"], "message");
    let refused = client.commit("set", json!([-1])).await;
    assert_eq!(refused["error"], "-1 is below zero");

    // Three frames in one request, with CRLF and an empty line: answered in order.
    let frames: Vec<Value> = (0..3)
        .map(|_| client.commit_frame("increase", json!([])))
        .collect();
    let body = format!("{}\r\n\n{}\n{}", frames[0], frames[1], frames[2]);
    assert_eq!(client.post(&body).await, 204);
    for (frame, counter) in frames.iter().zip(5..) {
        let answer = client.recv().await;
        assert_eq!(answer["request"], frame["request"]);
        assert_eq!(answer["diff"][0]["t"], counter);
    }

    // A server-side mutation reaches the stream.
    assert_eq!(
        server.hub.mutate(storex::mutation!(Counter, "set", 42)),
        Ok(1)
    );
    let push = client.recv().await;
    assert_eq!(push["type"], "mutation");
    assert_eq!(push["diff"], json!([{"a": "u", "p": ["counter"], "t": 42}]));
    assert!(push.get("request").is_none(), "{push}");

    let pong = {
        assert_eq!(
            client
                .post(&json!({"type": "ping", "request": "p"}).to_string())
                .await,
            204
        );
        client.recv().await
    };
    assert_eq!(pong["type"], "pong");
}

#[actix_rt::test]
async fn admission_is_the_websockets_origin_policy_and_connect_hook() {
    let config = Config::default().on_connect(|request| {
        if request.query("token") == Some("letmein") {
            Ok(Extensions::new())
        } else {
            Err(Refusal {
                status: 401,
                message: "Sign in first.".into(),
            })
        }
    });
    let server = TestServer::start(config);
    // The hook sees the stream's query.
    assert_eq!(
        open_with(&sse_url(&server, "token=nope"), &[]).await.err(),
        Some((401, "Sign in first.".to_owned()))
    );
    let url = sse_url(&server, "token=letmein");
    let (status, _) = open_with(&url, &[("origin", "https://evil.example")])
        .await
        .err()
        .expect("refused");
    assert_eq!(status, 403);

    let own = format!("http://{}", server.addr);
    let mut client = open_with(&url, &[("origin", &own)])
        .await
        .expect("a stream");
    // The POST is held to the Origin policy too; the stream's id is its credential.
    let join = client.join_frame(COUNTER, json!({}));
    assert_eq!(
        client
            .post_with(&join.to_string(), &[("origin", "https://evil.example")])
            .await,
        403
    );
    assert_eq!(
        client
            .post_with(&join.to_string(), &[("origin", &own)])
            .await,
        204
    );
    assert_eq!(client.recv().await["type"], "join");

    // An id no stream has.
    let mut stranger = client.post_url.clone();
    stranger.truncate(stranger.rfind('/').unwrap() + 1);
    stranger.push_str("V1StGXR8_Z5jdHi6B-myT");
    let response = client.http.post(&stranger).send_body("{}").await.unwrap();
    assert_eq!(response.status().as_u16(), 404);
}

#[actix_rt::test]
async fn the_caps_and_the_rate_limit_hold_for_streams() {
    let config = Config::default().max_connections(1).mutation_rate(0.5, 2);
    let server = TestServer::start(config);
    let mut first = open(&server).await;
    // The stream holds the one place, against WebSockets and streams alike.
    assert_eq!(
        open_with(&sse_url(&server, ""), &[])
            .await
            .err()
            .map(|(status, _)| status),
        Some(503)
    );
    let refused = tokio_tungstenite::connect_async(server.ws_url()).await;
    assert!(refused.is_err(), "a WebSocket past the cap is refused");

    first.join(json!({})).await;
    first.commit("increase", json!([])).await;
    first.commit("increase", json!([])).await;
    let limited = first.commit("increase", json!([])).await;
    assert_eq!(limited["error"], "Too many mutations.");

    // The client's close ends the session and frees the place.
    assert_eq!(
        first
            .http
            .delete(&first.post_url)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        204
    );
    assert_eq!(first.event().await, None, "the stream ends");
    server.wait_for_sessions(0).await;
    // The place frees when the connection's task lets its stream go.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut second = loop {
        match open_with(&sse_url(&server, ""), &[]).await {
            Ok(client) => break client,
            Err((503, _)) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(other) => panic!("the place did not free: {other:?}"),
        }
    };
    second.join(json!({})).await;
}

#[actix_rt::test]
async fn close_codes_arrive_as_close_events() {
    let server = TestServer::start(Config::default().max_frame_size(256));
    let mut client = open(&server).await;
    let frame = client.join_frame("Nope.Store", json!({}));
    assert_eq!(client.post(&frame.to_string()).await, 204);
    assert_eq!(
        client.closed().await,
        (
            4001,
            "Store 'Nope.Store' is not defined or can't be compiled.".to_owned()
        )
    );
    // The stream is gone: its id finds nothing.
    assert_eq!(client.post("{}").await, 404);

    let mut client = open(&server).await;
    assert_eq!(client.post(&"x".repeat(300)).await, 413);
    assert_eq!(client.closed().await, (1009, "Frame too large.".to_owned()));

    let mut client = open(&server).await;
    assert_eq!(client.post("not json").await, 204);
    assert_eq!(
        client.closed().await,
        (1007, "Payload is malformed.".to_owned())
    );
}

#[actix_rt::test]
async fn the_idle_timeout_counts_empty_posts_as_signs_of_life() {
    let idle = Duration::from_millis(600);
    let server = TestServer::start(Config::default().idle_timeout(idle));
    let mut client = open(&server).await;
    client.join(json!({})).await;
    // Signs of life at a third of the limit, for twice the limit: the stream stays.
    let started = tokio::time::Instant::now();
    while started.elapsed() < idle * 2 {
        assert_eq!(client.post("").await, 204);
        tokio::time::sleep(idle / 3).await;
    }
    assert_eq!(
        client.commit("increase", json!([])).await["diff"][0]["t"],
        1
    );
    // Then silence: closed as a silent WebSocket is.
    assert_eq!(client.closed().await, (1000, "Idle timeout.".to_owned()));
}

#[actix_rt::test]
async fn a_lost_stream_detaches_its_session_and_a_websocket_resumes_it() {
    // The server notices a client gone without a word when a write fails: the heartbeat writes.
    let server =
        TestServer::start(Config::default().event_stream_heartbeat(Duration::from_millis(100)));
    let mut client = open(&server).await;
    let joined = client.join(json!({})).await;
    let session = client.session.clone().unwrap();
    let token = joined["token"].as_str().unwrap().to_owned();
    client.commit("increase", json!([])).await;
    let post_url = client.post_url.clone();
    drop(client); // the network drops: no DELETE, no close

    eventually("the session is detached", || {
        server.hub.detached().sessions == 1
    })
    .await;
    // Its stream is gone; its session is not.
    let response = awc::Client::new()
        .post(&post_url)
        .send_body("{}")
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 404);
    server
        .hub
        .mutate(storex::mutation!(Counter, "set", 7))
        .unwrap();

    let mut socket = server.connect().await;
    socket
        .send_json(
            &json!({"type": "resume", "session": session, "token": token,
            "stores": [{"store": COUNTER, "epoch": joined["epoch"], "version": 1}],
            "request": "r"}),
        )
        .await;
    let resumed = socket.recv().await;
    assert_eq!(resumed["resumed"], true, "{resumed}");
    assert_eq!(
        resumed["stores"][0]["diff"],
        json!([{"a": "u", "p": ["counter"], "t": 7}])
    );
}

#[actix_rt::test]
async fn a_resume_pings_the_stream_that_holds_the_session_and_a_live_one_keeps_it() {
    let server = TestServer::start(Config::default());
    let mut holder = open(&server).await;
    let joined = holder.join(json!({})).await;
    let session = holder.session.clone().unwrap();
    let token = joined["token"].as_str().unwrap().to_owned();

    let mut thief = open(&server).await;
    let resume = json!({"type": "resume", "session": session, "token": token,
        "stores": [], "request": "r"});
    assert_eq!(thief.post(&resume.to_string()).await, 204);
    // The holder is asked for a sign of life and gives it (recv answers the ping).
    let event = holder.event().await.expect("a ping");
    assert_eq!(event.kind, "ping");
    assert_eq!(holder.post("").await, 204);
    let refused = thief.recv().await;
    assert_eq!(refused["resumed"], false, "{refused}");
    assert_eq!(
        refused["error"],
        format!("Session {session} is attached to another connection.")
    );
    assert_eq!(
        holder.commit("increase", json!([])).await["diff"][0]["t"],
        1
    );
}

#[actix_rt::test]
async fn a_page_of_an_allowed_origin_may_read_the_answers_with_its_credentials() {
    const APP: &str = "https://app.example";
    let server = TestServer::start(Config::default().allowed_origins([APP]));
    let http = awc::Client::builder().timeout(PATIENCE).finish();
    let cors = |response: &awc::ClientResponse<_>| -> Vec<Option<String>> {
        [
            "access-control-allow-origin",
            "access-control-allow-credentials",
            "access-control-allow-methods",
        ]
        .iter()
        .map(|name| {
            response
                .headers()
                .get(*name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned)
        })
        .collect()
    };
    let allowed = |methods: Option<&str>| {
        vec![
            Some(APP.to_owned()),
            Some("true".to_owned()),
            methods.map(str::to_owned),
        ]
    };

    // The stream and the requests to it.
    let client = open_with(&sse_url(&server, ""), &[("origin", APP)])
        .await
        .expect("a stream");
    let response = http
        .post(&client.post_url)
        .insert_header(("origin", APP))
        .send_body("")
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 204);
    assert_eq!(cors(&response), allowed(None));
    // The DELETE's preflight.
    let preflight = |origin: &'static str| {
        http.request(actix_web::http::Method::OPTIONS, &client.post_url)
            .insert_header(("origin", origin))
            .insert_header(("access-control-request-method", "DELETE"))
            .send()
    };
    let response = preflight(APP).await.unwrap();
    assert_eq!(response.status().as_u16(), 204);
    assert_eq!(cors(&response), allowed(Some("GET, POST, DELETE")));
    let response = preflight("https://evil.example").await.unwrap();
    assert_eq!(response.status().as_u16(), 403);
    assert_eq!(cors(&response), [None, None, None]);
    // The HTTP join (and storex.js's probe) too; a refused origin gets no CORS headers.
    let join = format!(
        "{}&store={COUNTER}",
        sse_url(&server, "").replace("/sse?", "?")
    );
    let response = http
        .get(&join)
        .insert_header(("origin", APP))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(cors(&response), allowed(None));
    let response = http
        .get(&join)
        .insert_header(("origin", "https://evil.example"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 403);
    assert_eq!(cors(&response), [None, None, None]);
}
