//! Limits and hostile input: oversized frames, idle sockets, clients that do not read, too many
//! stores, panics in init and mutations — the server stays up and other sessions are unharmed.

mod common;

use std::time::Duration;

use common::TestServer;
use serde_json::json;
use storex::Config;

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
    let server = TestServer::start(Config::default().idle_timeout(IDLE));
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
    let config = Config::default()
        .send_timeout(Duration::from_millis(500))
        .inbox_capacity(8);
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
