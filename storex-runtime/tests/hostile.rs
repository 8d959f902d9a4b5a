//! Limits and hostile input: oversized frames, idle sockets, clients that do not read, too many
//! stores, panics in init and mutations, frames that break the WebSocket rules — the server stays
//! up and other sessions are unharmed.
#![allow(clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{TestServer, PATIENCE};
use serde_json::json;
use storex::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const COUNTER: &str = "Test.Counter";

#[actix_rt::test]
async fn an_oversized_frame_closes_with_1009_and_harms_no_one() {
    let server = TestServer::start(Config::default().max_frame_size(1024));
    let mut bystander = server.connect().await;
    bystander.join(COUNTER, json!({})).await;

    let mut client = server.connect().await;
    client.join(COUNTER, json!({})).await;
    let huge = json!({"type": "ping", "request": "x".repeat(4096)});
    client.send_json(&huge).await;
    assert_eq!(client.closed().await.0, 1009);

    // the server still serves new and old connections
    let mut again = server.connect().await;
    assert_eq!(again.join(COUNTER, json!({})).await["type"], "join");
    assert_eq!(
        bystander.commit(COUNTER, "increase", json!([])).await["type"],
        "mutation"
    );
}

#[actix_rt::test]
async fn a_frame_within_the_limit_is_served() {
    let server = TestServer::start(Config::default().max_frame_size(1024));
    let mut client = server.connect().await;
    client
        .send_json(&json!({"type": "ping", "request": "x".repeat(900)}))
        .await;
    assert_eq!(client.recv().await["type"], "pong");
}

#[actix_rt::test]
async fn a_silent_socket_is_closed_after_the_idle_timeout() {
    const IDLE: Duration = Duration::from_millis(1000);
    // Without resume, so that the idle session ends (with it, it waits: see resume.rs).
    let config = Config::default()
        .idle_timeout(IDLE)
        .resume_ttl(Duration::ZERO);
    let server = TestServer::start(config);
    let mut silent = server.connect().await;
    // Before the silent client's last frame: it cannot be closed sooner than IDLE after this.
    let started = std::time::Instant::now();
    silent.join(COUNTER, json!({})).await;
    let mut chatty = server.connect().await;
    chatty.join(COUNTER, json!({})).await;
    // The chatty client pings ten times per idle period (a margin a loaded machine keeps) for
    // longer than the period, and stays.
    let pinger = async {
        for i in 0..15 {
            tokio::time::sleep(IDLE / 10).await;
            chatty
                .send_json(&json!({"type": "ping", "request": i}))
                .await;
            assert_eq!(chatty.recv().await["type"], "pong");
        }
    };
    let (closed, ()) = tokio::join!(silent.closed(), pinger);
    assert_eq!(closed, (1000, "Idle timeout.".to_owned()));
    assert!(started.elapsed() >= IDLE);
    server.wait_for_sessions(1).await;
    assert_eq!(
        server.hub.sessions_of(COUNTER),
        vec![chatty.session.clone().unwrap()]
    );
}

#[actix_rt::test]
async fn a_client_that_does_not_read_is_dropped_with_its_backlog() {
    // Without resume: the sleeper's session ends with its connection (with resume it would wait,
    // keeping up with its commands now that nothing is sent: tests/resume.rs).
    let config = Config::default()
        .send_timeout(Duration::from_millis(500))
        .inbox_capacity(8)
        .resume_ttl(Duration::ZERO);
    let server = TestServer::start(config);
    let mut reader = server.connect().await;
    reader.join(COUNTER, json!({})).await;
    let mut sleeper = server.connect().await;
    sleeper.join(COUNTER, json!({})).await;
    server.wait_for_sessions(2).await;

    // Each server-side mutation pushes a ~64 KiB diff to both sessions; the reader reads each
    // push before the next mutation, the sleeper reads nothing.
    let mut pushes = 0;
    for i in 0..200usize {
        server
            .hub
            .mutate(storex::mutation!(
                common::stores::Counter,
                "blob",
                65_536 + i
            ))
            .expect("the argument serializes");
        let push = reader.recv().await;
        assert_eq!(push["type"], "mutation");
        assert_eq!(
            push["diff"][0]["t"].as_str().map(str::len),
            Some(65_536 + i)
        );
        pushes += 1;
    }
    assert_eq!(pushes, 200, "the reading client received every push");
    // The sleeper's session is closed (outbound queue full beyond the send timeout, or more
    // pending commands than its inbox holds), and what was queued for it goes with it.
    server.wait_for_sessions(1).await;
    assert_eq!(
        server.hub.sessions_of(COUNTER),
        vec![reader.session.clone().unwrap()]
    );
    // What the sleeper finally reads ends in a close or a dropped connection, never more than
    // the frames that were queued before the server gave up on it.
    let mut frames = 0;
    while sleeper.next().await.is_ok() {
        frames += 1;
    }
    assert!(frames < 200, "the sleeper got {frames} frames");
}

#[actix_rt::test]
async fn the_number_of_stores_per_session_is_capped() {
    let server = TestServer::start(Config::default().max_stores_per_session(1));
    let mut client = server.connect().await;
    assert_eq!(client.join(COUNTER, json!({})).await["type"], "join");
    let answer = client.join("Test.Other", json!({})).await;
    assert_eq!(answer["type"], "error");
    assert_eq!(
        answer["error"],
        "Store Test.Other not joined: this session already holds 1 stores, the most allowed"
    );
    // joining the store it holds is still fine
    assert_eq!(client.join(COUNTER, json!({})).await["type"], "join");
}

#[actix_rt::test]
async fn a_panicking_mutation_answers_an_error_and_harms_no_one() {
    let server = TestServer::start(Config::default());
    let mut bystander = server.connect().await;
    bystander.join(COUNTER, json!({})).await;
    let mut client = server.connect().await;
    client.join(COUNTER, json!({"start": 4})).await;

    let answer = client.commit(COUNTER, "panic", json!([])).await;
    assert_eq!(answer["type"], "error");
    assert_eq!(
        answer["error"],
        "mutation \"panic\" of store Test.Counter failed unexpectedly (it panicked)"
    );
    // the state is as before, the connection goes on, the bystander too
    let answer = client.commit(COUNTER, "increase", json!([])).await;
    assert_eq!(
        answer["diff"],
        json!([{"a": "u", "p": ["counter"], "t": 5}])
    );
    assert_eq!(
        bystander.commit(COUNTER, "increase", json!([])).await["diff"][0]["t"],
        1
    );
}

#[actix_rt::test]
async fn a_panicking_init_answers_an_error() {
    let server = TestServer::start(Config::default());
    let mut client = server.connect().await;
    let answer = client.join("Test.PanicInit", json!({})).await;
    assert_eq!(answer["type"], "error");
    assert_eq!(
        answer["error"],
        "init of store Test.PanicInit failed unexpectedly (it panicked)"
    );
    assert_eq!(client.join(COUNTER, json!({})).await["type"], "join");
}

#[actix_rt::test]
async fn garbage_after_a_join_still_cleans_up() {
    let server = TestServer::start(Config::default());
    let mut client = server.connect().await;
    client.join(COUNTER, json!({})).await;
    client.send_text("\u{0}\u{1}garbage").await;
    assert_eq!(client.closed().await.0, 1007);
    server.wait_for_sessions(0).await;
}

/// A WebSocket client that writes its frames byte by byte, as a conformance probe does: it can
/// send what a WebSocket library refuses to (text that is not UTF-8, reserved bits and opcodes).
struct RawSocket {
    stream: TcpStream,
}

/// A frame's first byte: FIN, the three reserved bits, the opcode.
const FIN: u8 = 0x80;
const RSV1: u8 = 0x40;
const CONTINUATION: u8 = 0x0;
const TEXT: u8 = 0x1;
const CLOSE: u8 = 0x8;

impl RawSocket {
    /// Connects to `server`'s endpoint and completes the WebSocket handshake.
    async fn connect(server: &TestServer) -> Self {
        let mut stream = TcpStream::connect(server.addr).await.expect("connect");
        let handshake = format!(
            "GET /storex HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
            server.addr
        );
        stream
            .write_all(handshake.as_bytes())
            .await
            .expect("send the handshake");
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let byte = tokio::time::timeout(PATIENCE, stream.read_u8())
                .await
                .expect("the handshake's answer within the patience")
                .expect("the handshake's answer");
            head.push(byte);
        }
        let head = String::from_utf8_lossy(&head);
        assert!(head.starts_with("HTTP/1.1 101"), "not upgraded: {head}");
        Self { stream }
    }

    /// Sends one frame with the first byte `first` and `payload` (under 126 bytes), masked as
    /// a client's frame must be unless `masked` is false.
    async fn send(&mut self, first: u8, payload: &[u8], masked: bool) {
        let length = u8::try_from(payload.len())
            .ok()
            .filter(|length| *length < 126)
            .expect("a short payload");
        let mask: [u8; 4] = if masked {
            [0x37, 0xfa, 0x21, 0x3d]
        } else {
            [0; 4]
        };
        let mut frame = vec![first, if masked { 0x80 | length } else { length }];
        if masked {
            frame.extend_from_slice(&mask);
        }
        frame.extend(
            payload
                .iter()
                .zip(mask.iter().cycle())
                .map(|(byte, key)| byte ^ key),
        );
        self.stream.write_all(&frame).await.expect("send a frame");
    }

    /// The next frame from the server: its opcode and payload.
    async fn next(&mut self) -> (u8, Vec<u8>) {
        let frame = async {
            let first = self.stream.read_u8().await?;
            let second = self.stream.read_u8().await?;
            assert_eq!(second & 0x80, 0, "a server's frame is not masked");
            let length = match second & 0x7f {
                126 => usize::from(self.stream.read_u16().await?),
                127 => usize::try_from(self.stream.read_u64().await?).expect("a length"),
                length => usize::from(length),
            };
            let mut payload = vec![0; length];
            self.stream.read_exact(&mut payload).await?;
            Ok::<_, std::io::Error>((first & 0x0f, payload))
        };
        tokio::time::timeout(PATIENCE, frame)
            .await
            .expect("a frame within the patience")
            .expect("a frame")
    }

    /// Expects the server to close: the close frame's code and reason.
    async fn closed(&mut self) -> (u16, String) {
        let (opcode, payload) = self.next().await;
        assert_eq!(opcode, CLOSE, "expected a close frame, got {payload:?}");
        assert!(payload.len() >= 2, "a close frame without a code");
        let code = u16::from_be_bytes([payload[0], payload[1]]);
        let reason = String::from_utf8(payload[2..].to_vec()).expect("a UTF-8 reason");
        (code, reason)
    }
}

#[actix_rt::test]
async fn the_raw_client_speaks_the_protocol() {
    // The control for the tests below: the same frames with valid UTF-8 are served, also a
    // message whose fragments split a character.
    let server = TestServer::start(Config::default());
    let mut socket = RawSocket::connect(&server).await;
    socket
        .send(FIN | TEXT, br#"{"type":"ping","request":"one"}"#, true)
        .await;
    let (opcode, payload) = socket.next().await;
    assert_eq!(opcode, TEXT);
    let pong: serde_json::Value = serde_json::from_slice(&payload).expect("JSON");
    assert_eq!(
        (&pong["type"], &pong["request"]),
        (&json!("pong"), &json!("one"))
    );

    let message = r#"{"type":"ping","request":"été"}"#.as_bytes();
    let split = message.iter().position(|byte| *byte == 0xc3).expect("é") + 1;
    socket.send(TEXT, &message[..split], true).await;
    socket
        .send(FIN | CONTINUATION, &message[split..], true)
        .await;
    let (opcode, payload) = socket.next().await;
    assert_eq!(opcode, TEXT);
    let pong: serde_json::Value = serde_json::from_slice(&payload).expect("JSON");
    assert_eq!(pong["request"], "été");
}

#[actix_rt::test]
async fn a_text_frame_that_is_not_utf8_closes_with_1007() {
    let server = TestServer::start(Config::default());
    let malformed = (1007, "Payload is malformed.".to_owned());

    let mut client = RawSocket::connect(&server).await;
    client
        .send(FIN | TEXT, b"{\"type\":\"ping\xff\xfe\"}", true)
        .await;
    assert_eq!(client.closed().await, malformed);

    // A message of continuation frames that ends in the middle of a character.
    let mut client = RawSocket::connect(&server).await;
    client.send(TEXT, b"{\"type\":", true).await;
    client.send(FIN | CONTINUATION, b"\"ping\xc3", true).await;
    assert_eq!(client.closed().await, malformed);

    server.wait_for_sessions(0).await;
    let mut again = server.connect().await;
    assert_eq!(again.join(COUNTER, json!({})).await["type"], "join");
}

#[actix_rt::test]
async fn a_websocket_protocol_violation_closes_with_1002_and_a_fixed_reason() {
    let server = TestServer::start(Config::default());
    let violation = (1002, "Protocol error.".to_owned());
    let ping = br#"{"type":"ping","request":"x"}"#;
    let cases: [(&str, u8, bool); 3] = [
        ("a reserved opcode", FIN | 0x3, true),
        ("a reserved bit", FIN | RSV1 | TEXT, true),
        ("an unmasked frame", FIN | TEXT, false),
    ];
    for (case, first, masked) in cases {
        let mut client = RawSocket::connect(&server).await;
        client.send(first, ping, masked).await;
        assert_eq!(client.closed().await, violation, "{case}");
    }
    server.wait_for_sessions(0).await;
}
