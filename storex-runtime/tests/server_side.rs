//! Server-side mutations of all three kinds reach the right sessions and no others; separate
//! servers in one process do not see each other's sessions.

mod common;

use common::stores::Counter;
use common::TestServer;
use serde_json::json;
use storex::{Config, HubError};

const COUNTER: &str = "Test.Counter";

#[actix_rt::test]
async fn every_live_instance_receives_the_push() {
    let server = TestServer::start(Config::default());
    let mut a = server.connect().await;
    let mut b = server.connect().await;
    let mut outsider = server.connect().await;
    a.join(COUNTER, json!({})).await;
    b.join(COUNTER, json!({"start": 10})).await;
    outsider.join("Test.Other", json!({})).await;

    assert_eq!(
        server.hub.mutate(storex::mutation!(Counter, "increase")),
        Ok(2)
    );
    for (client, value) in [(&mut a, 1), (&mut b, 11)] {
        let push = client.recv().await;
        assert_eq!(push["type"], "mutation");
        assert_eq!(push["store"], COUNTER);
        assert_eq!(push["session"], json!(client.session));
        assert_eq!(
            push["diff"],
            json!([{"a": "u", "p": ["counter"], "t": value}])
        );
        assert!(push.get("request").is_none_or(|r| r.is_null()), "{push}");
    }
    // the outsider got nothing: its next frame is the answer to its own ping
    outsider
        .send_json(&json!({"type": "ping", "request": "p"}))
        .await;
    assert_eq!(outsider.recv().await["type"], "pong");
}

#[actix_rt::test]
async fn keyed_mutations_reach_only_that_key() {
    let server = TestServer::start(Config::default());
    let mut tab1 = server.connect().await;
    let mut tab2 = server.connect().await;
    let mut other_user = server.connect().await;
    tab1.join(COUNTER, json!({"key": "user_42"})).await;
    tab2.join(COUNTER, json!({"key": "user_42"})).await;
    other_user.join(COUNTER, json!({"key": "user_7"})).await;

    assert_eq!(
        server
            .hub
            .mutate_key("user_42", storex::mutation!(Counter, "set", 42)),
        Ok(2)
    );
    for tab in [&mut tab1, &mut tab2] {
        assert_eq!(
            tab.recv().await["diff"],
            json!([{"a": "u", "p": ["counter"], "t": 42}])
        );
    }
    other_user
        .send_json(&json!({"type": "ping", "request": "p"}))
        .await;
    assert_eq!(other_user.recv().await["type"], "pong");
    assert_eq!(
        server
            .hub
            .mutate_key("nobody", storex::mutation!(Counter, "increase")),
        Ok(0)
    );
}

#[actix_rt::test]
async fn a_session_mutation_returns_its_reply() {
    let server = TestServer::start(Config::default());
    let mut client = server.connect().await;
    let mut other = server.connect().await;
    client.join(COUNTER, json!({})).await;
    other.join(COUNTER, json!({})).await;
    let session = client.session.clone().unwrap();

    let reply = server
        .hub
        .mutate_session(&session, storex::mutation!(Counter, "decrease"))
        .await;
    assert_eq!(reply, Ok(Some(json!("message"))));
    assert_eq!(
        client.recv().await["diff"],
        json!([{"a": "u", "p": ["counter"], "t": -1}])
    );

    let reply = server
        .hub
        .mutate_session(&session, storex::mutation!(Counter, "slow_set", 9))
        .await;
    assert_eq!(reply, Ok(Some(json!(9))));
    assert_eq!(client.recv().await["diff"][0]["t"], 9);

    let refused = server
        .hub
        .mutate_session(&session, storex::mutation!(Counter, "set", -5))
        .await;
    assert_eq!(
        refused,
        Err(HubError::Mutation(storex::MutationError::Refused(
            "-5 is below zero".into()
        )))
    );

    // the other session saw none of it
    other
        .send_json(&json!({"type": "ping", "request": "p"}))
        .await;
    assert_eq!(other.recv().await["type"], "pong");
    assert_eq!(other.join(COUNTER, json!({})).await["data"]["counter"], 0);
}

#[actix_rt::test]
async fn session_mutation_errors_say_what_is_missing() {
    let server = TestServer::start(Config::default());
    let missing = server
        .hub
        .mutate_session("nope", storex::mutation!(Counter, "increase"))
        .await;
    assert_eq!(missing, Err(HubError::NoSession("nope".into())));

    let mut client = server.connect().await;
    client.join("Test.Other", json!({})).await;
    let session = client.session.clone().unwrap();
    let not_joined = server
        .hub
        .mutate_session(&session, storex::mutation!(Counter, "increase"))
        .await;
    assert_eq!(
        not_joined,
        Err(HubError::NotJoined {
            session,
            store: COUNTER
        })
    );
}

#[actix_rt::test]
async fn servers_in_one_process_are_separate() {
    let first = TestServer::start(Config::default());
    let second = TestServer::start(Config::default());
    let mut on_first = first.connect().await;
    let mut on_second = second.connect().await;
    on_first.join(COUNTER, json!({})).await;
    on_second.join(COUNTER, json!({})).await;

    assert_eq!(
        first.hub.mutate(storex::mutation!(Counter, "increase")),
        Ok(1)
    );
    assert_eq!(on_first.recv().await["diff"][0]["t"], 1);
    on_second
        .send_json(&json!({"type": "ping", "request": "p"}))
        .await;
    assert_eq!(on_second.recv().await["type"], "pong");
    let foreign = first
        .hub
        .mutate_session(
            on_second.session.as_deref().unwrap(),
            storex::mutation!(Counter, "increase"),
        )
        .await;
    assert!(matches!(foreign, Err(HubError::NoSession(_))));
}

#[actix_rt::test]
async fn a_server_side_mutation_that_changes_nothing_pushes_nothing() {
    let server = TestServer::start(Config::default());
    let mut client = server.connect().await;
    client.join(COUNTER, json!({"start": 5})).await;
    assert_eq!(
        server.hub.mutate(storex::mutation!(Counter, "set", 5)),
        Ok(1)
    );
    let session = client.session.clone().unwrap();
    // the reply still comes back to a session-targeted caller
    let reply = server
        .hub
        .mutate_session(&session, storex::mutation!(Counter, "set", 5))
        .await;
    assert_eq!(reply, Ok(None));
    assert_eq!(
        server.hub.mutate(storex::mutation!(Counter, "set", 6)),
        Ok(1)
    );
    // the first frame the client sees is the push of the real change
    assert_eq!(
        client.recv().await["diff"],
        json!([{"a": "u", "p": ["counter"], "t": 6}])
    );
}
