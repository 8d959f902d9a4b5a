//! The connection's life is traced — connect, join, mutation, close — and no state or argument
//! value reaches the log, even at the most detailed level.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::TestServer;
use serde_json::json;
use storex::Config;

/// Everything the subscriber writes, shared with the test.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }
}

#[actix_rt::test]
async fn a_connection_is_traced_without_its_values() {
    let captured = Captured::default();
    let writer = captured.clone();
    // Global: the server's workers run on their own threads.
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let server = TestServer::start(Config::default());
    let mut client = server.connect().await;
    client
        .join("Test.Counter", json!({"start": 987_654_321}))
        .await;
    let answer = client
        .commit("Test.Counter", "set", json!([24_681_357]))
        .await;
    assert_eq!(answer["diff"][0]["t"], 24_681_357);
    let session = client.session.clone().unwrap();
    client.close().await;
    server.wait_for_sessions(0).await;

    let log = captured.text();
    for expected in [
        "connected",
        "transport=\"websocket\"",
        &format!("connection{{session={session}}}"),
        "join{",
        "store=Test.Counter",
        "joined",
        "mutation{",
        "mutation=set",
        "mutation applied",
        "client closed",
        "disconnected",
    ] {
        assert!(log.contains(expected), "the log lacks {expected:?}:\n{log}");
    }
    for secret in ["987654321", "24681357"] {
        assert!(
            !log.contains(secret),
            "a value reached the log: {secret}\n{log}"
        );
    }
}
