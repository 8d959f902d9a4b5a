//! Rate limits and connection caps over real sockets: mutations over a connection's budget are
//! answered "Too many mutations." and the connection stays; connections past a cap are refused
//! with a clean HTTP status before the upgrade, and their place frees when one ends.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Client, TestServer, PATIENCE};
use serde_json::{json, Value};
use storex::Config;
use tokio_tungstenite::tungstenite::Error as WsError;

const COUNTER: &str = "Test.Counter";

/// The HTTP status a refused connection got, or `None` when it was accepted.
async fn refused_with(url: &str, headers: &[(&'static str, &str)]) -> Option<u16> {
    match Client::connect(url, headers).await {
        Ok(_client) => None,
        Err(WsError::Http(response)) => Some(response.status().as_u16()),
        Err(other) => panic!("expected an HTTP refusal or an upgrade, got {other}"),
    }
}

/// Connects, retrying while the server refuses with `status` (a place frees shortly).
async fn connect_once_freed(url: &str, headers: &[(&'static str, &str)], status: u16) -> Client {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        match Client::connect(url, headers).await {
            Ok(client) => return client,
            Err(WsError::Http(response)) if response.status().as_u16() == status => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "no place freed within {PATIENCE:?}"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(other) => panic!("unexpected: {other}"),
        }
    }
}

#[actix_rt::test]
async fn mutations_over_the_rate_are_answered_an_error_and_the_connection_stays() {
    // A token every two seconds, three at once: the five mutations below arrive within a
    // fraction of that, so exactly three run.
    let server = TestServer::start(Config::default().mutation_rate(0.5, 3));
    let mut client = server.connect().await;
    client.join(COUNTER, json!({})).await;
    let session = client.session.clone();
    for request in 0..5 {
        client
            .send_json(&json!({
                "type": "mutation", "store": COUNTER, "session": session,
                "data": {"name": "increase", "data": []}, "request": request,
            }))
            .await;
    }
    let mut answers = Vec::new();
    for _ in 0..5 {
        answers.push(client.recv().await);
    }
    let kinds: Vec<&Value> = answers.iter().map(|answer| &answer["type"]).collect();
    assert_eq!(
        kinds,
        ["mutation", "mutation", "mutation", "error", "error"],
        "{answers:?}"
    );
    for answer in &answers[3..] {
        assert_eq!(answer["error"], "Too many mutations.", "{answer}");
        assert_eq!(answer["store"], COUNTER);
    }
    let requests: Vec<&Value> = answers.iter().map(|answer| &answer["request"]).collect();
    assert_eq!(requests, [0, 1, 2, 3, 4], "each answer to its request");
    assert_eq!(answers[2]["diff"], common::stores::counter_diff(3));

    // The connection is still open, and a token comes back within two seconds.
    client.expect_quiet().await;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let answer = loop {
        let answer = client.commit(COUNTER, "increase", json!([])).await;
        if answer["type"] == "mutation" {
            break answer;
        }
        assert_eq!(answer["error"], "Too many mutations.", "{answer}");
        assert!(tokio::time::Instant::now() < deadline, "no token came back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        answer["diff"],
        common::stores::counter_diff(4),
        "the refused ones did not run"
    );
    // Joins and pings are not mutations: they are not limited.
    client.join("Test.Other", json!({})).await;
}

#[actix_rt::test]
async fn server_side_mutations_are_not_limited() {
    let server = TestServer::start(Config::default().mutation_rate(0.001, 1));
    let mut client = server.connect().await;
    client.join(COUNTER, json!({})).await;
    let session = client.session.clone().unwrap();
    for value in 1..=3 {
        let reply = server
            .hub
            .mutate_session(
                &session,
                storex::mutation!(common::stores::Counter, "set", value),
            )
            .await;
        assert_eq!(reply, Ok(None));
        assert_eq!(
            client.recv().await["diff"],
            common::stores::counter_diff(value)
        );
    }
    let answer = client.commit(COUNTER, "increase", json!([])).await;
    assert_eq!(answer["diff"], common::stores::counter_diff(4), "{answer}");
    let answer = client.commit(COUNTER, "increase", json!([])).await;
    assert_eq!(answer["error"], "Too many mutations.", "{answer}");
}

#[actix_rt::test]
async fn connections_past_the_process_cap_are_refused_with_503_until_one_ends() {
    let server = TestServer::start(Config::default().max_connections(2));
    let url = server.ws_url();
    let mut first = server.connect().await;
    let second = server.connect().await;
    assert_eq!(refused_with(&url, &[]).await, Some(503));
    assert_eq!(refused_with(&url, &[]).await, Some(503), "still full");
    // The ones in are served as usual.
    first.join(COUNTER, json!({})).await;

    second.close().await;
    let mut third = connect_once_freed(&url, &[], 503).await;
    third.join(COUNTER, json!({})).await;
    assert_eq!(refused_with(&url, &[]).await, Some(503));
}

#[actix_rt::test]
async fn a_session_waiting_for_its_client_holds_no_place() {
    // Sessions resume (the default): the one whose socket dropped waits for its client, but
    // its connection's place is free at once.
    let server = TestServer::start(Config::default().max_connections(1));
    let url = server.ws_url();
    let mut first = server.connect().await;
    first.join(COUNTER, json!({})).await;
    assert_eq!(refused_with(&url, &[]).await, Some(503));
    drop(first); // the TCP connection ends without a close frame
    let mut second = connect_once_freed(&url, &[], 503).await;
    second.join(COUNTER, json!({})).await;
    assert_eq!(
        server.hub.detached().sessions,
        1,
        "the first session still waits for a resume"
    );
}

#[actix_rt::test]
async fn connections_past_the_address_cap_are_refused_with_429() {
    // Every test client is 127.0.0.1: the address is read from a header, as behind a proxy.
    let config = Config::default()
        .max_connections_per_address(2)
        .client_address(|request| request.header("x-client")?.parse().ok());
    let server = TestServer::start(config);
    let url = server.ws_url();
    let a = [("x-client", "10.0.0.1")];
    let b = [("x-client", "10.0.0.2")];
    let a1 = Client::connect(&url, &a).await.unwrap();
    let _a2 = Client::connect(&url, &a).await.unwrap();
    assert_eq!(refused_with(&url, &a).await, Some(429));
    let mut b1 = Client::connect(&url, &b).await.unwrap();
    b1.join(COUNTER, json!({})).await;
    // Without an address (the header is missing) a request is not capped by address.
    let _unknown = [
        Client::connect(&url, &[]).await.unwrap(),
        Client::connect(&url, &[]).await.unwrap(),
        Client::connect(&url, &[]).await.unwrap(),
    ];
    a1.close().await;
    let _a3 = connect_once_freed(&url, &a, 429).await;
    assert_eq!(refused_with(&url, &a).await, Some(429));
}
