//! 1,000 concurrent connections, each joining and mutating, every answer verified.

mod common;

use std::collections::HashSet;

use common::TestServer;
use futures_util::future::join_all;
use serde_json::json;
use storex::Config;

const CONNECTIONS: i64 = 1_000;
const MUTATIONS: i64 = 5;

#[actix_rt::test]
async fn a_thousand_connections_join_and_mutate() {
    let server = TestServer::start(Config::default());
    let clients = (0..CONNECTIONS).map(|i| {
        let server = &server;
        async move {
            let mut client = server.connect().await;
            let joined = client.join("Test.Counter", json!({"start": i * 10})).await;
            assert_eq!(joined["data"]["counter"], i * 10);
            for n in 1..=MUTATIONS {
                let answer = client.commit("Test.Counter", "increase", json!([])).await;
                assert_eq!(
                    answer["diff"],
                    json!([{"a": "u", "p": ["counter"], "t": i * 10 + n}])
                );
            }
            let answer = client.commit("Test.Counter", "decrease", json!([])).await;
            assert_eq!(answer["message"], "message");
            assert_eq!(answer["diff"][0]["t"], i * 10 + MUTATIONS - 1);
            client
        }
    });
    let clients = join_all(clients).await;
    let sessions: HashSet<_> = clients.iter().filter_map(|c| c.session.clone()).collect();
    assert_eq!(
        sessions.len(),
        CONNECTIONS as usize,
        "every connection has its own session"
    );
    server.wait_for_sessions(CONNECTIONS as usize).await;
    assert_eq!(
        server
            .hub
            .mutate(storex::mutation!(common::stores::Counter, "increase")),
        Ok(1_000)
    );
    // Dropped without a close frame: every session waits for a resume, until the server stops.
    drop(clients);
    let deadline = tokio::time::Instant::now() + common::PATIENCE;
    while server.hub.detached().sessions != CONNECTIONS as usize {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{:?} of {CONNECTIONS} sessions detached",
            server.hub.detached()
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    tokio::time::timeout(common::PATIENCE, server.hub.stop())
        .await
        .expect("the stop ends every detached session");
    server.wait_for_sessions(0).await;
}
