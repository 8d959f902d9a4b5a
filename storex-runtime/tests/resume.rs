//! Sessions that outlive their connections (PROTOCOL.md, "Versions and resume"), over real
//! sockets: versions on every frame that carries state, detached sessions and their limits,
//! the resume exchange and each way it is refused, and mutations answered once.

#![allow(clippy::expect_used)]

mod common;

use std::time::Duration;

use common::stores::{counter_diff, counter_inits, terminated, Counter};
use common::{eventually, within, Client, Closed, TestServer, PATIENCE};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use storex::Config;

const COUNTER: &str = "Test.Counter";
const OTHER: &str = "Test.Other";
const KEY: &[u8] = b"the resume key of these tests, 32+ bytes";

/// Waits until the server holds `count` detached sessions.
async fn detached(server: &TestServer, count: usize) {
    eventually(&format!("{count} detached sessions"), || {
        server.hub.detached().sessions == count
    })
    .await;
}

/// What a client holds of a store: epoch and version.
fn held(answer: &Value) -> (String, u64) {
    let epoch = answer["epoch"].as_str().expect("an epoch").to_owned();
    let version = answer["version"].as_u64().expect("a version");
    (epoch, version)
}

fn resume(session: &str, token: &str, stores: Value, request: &str) -> Value {
    json!({"type": "resume", "session": session, "token": token, "stores": stores, "request": request})
}

/// The stores of a resume that holds Counter at `epoch` and `version`.
fn holding_counter(epoch: &str, version: u64) -> Value {
    json!([{"store": COUNTER, "epoch": epoch, "version": version}])
}

/// A token signed with `KEY` for `session`, valid until `expiry`, as the server makes them.
fn token_with(session: &str, expiry: u64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(KEY).expect("any key length");
    mac.update(format!("storex-resume\n{expiry}\n{session}").as_bytes());
    let tag = mac.finalize().into_bytes();
    let hex: String = tag.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("{expiry}.{hex}")
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

/// A client that joined Counter with `params`: the client, the join answer, its session and its
/// resume token.
async fn join_counter(server: &TestServer, params: Value) -> (Client, Value, String, String) {
    let mut client = server.connect().await;
    let joined = client.join(COUNTER, params).await;
    let session = client.session.clone().expect("a session");
    let token = joined["token"].as_str().expect("a token").to_owned();
    (client, joined, session, token)
}

/// A new connection whose first message resumes `session`.
async fn resume_on(
    server: &TestServer,
    session: &str,
    token: &str,
    stores: Value,
    request: &str,
) -> Client {
    let mut client = server.connect().await;
    client
        .send_json(&resume(session, token, stores, request))
        .await;
    client
}

/// The answer to a resume, which took the session back.
async fn resumed(client: &mut Client) -> Value {
    let answer = client.recv().await;
    assert_eq!(answer["resumed"], true, "{answer}");
    answer
}

/// A mutation frame with an explicit request id.
fn commit(session: &str, name: &str, args: Value, request: &str) -> Value {
    json!({"type": "mutation", "store": COUNTER, "session": session,
           "data": {"name": name, "data": args}, "request": request})
}

#[actix_rt::test]
async fn every_frame_that_carries_state_carries_its_epoch_and_version() {
    let server = TestServer::start(Config::default());
    let mut client = server.connect().await;
    let joined = client.join(COUNTER, json!({})).await;
    let (epoch, version) = held(&joined);
    assert_eq!(version, 0);
    assert_eq!(epoch.len(), 16);
    assert!(epoch.bytes().all(|b| b.is_ascii_hexdigit()));
    let token = joined["token"].as_str().expect("a token");
    let (expiry, tag) = token.split_once('.').expect("EXPIRY.MAC");
    let expiry: u64 = expiry.parse().expect("a Unix time");
    // Issued now, for the idle timeout (60 s) plus the resume TTL (120 s).
    assert!((unix_now() + 170..=unix_now() + 190).contains(&expiry));
    assert_eq!(tag.len(), 64);

    let answer = client.commit(COUNTER, "increase", json!([])).await;
    assert_eq!(held(&answer), (epoch.clone(), 1));
    // A mutation that changes nothing keeps the version.
    let answer = client.commit(COUNTER, "set", json!([1])).await;
    assert_eq!(
        (answer["diff"].clone(), held(&answer)),
        (json!([]), (epoch.clone(), 1))
    );
    // An error answer carries the unchanged version.
    let answer = client.commit(COUNTER, "set", json!([-1])).await;
    assert_eq!(answer["type"], "error");
    assert_eq!(held(&answer), (epoch.clone(), 1));
    // A push carries the version it leads to.
    server
        .hub
        .mutate(storex::mutation!(Counter, "increase"))
        .expect("a push");
    let push = client.recv().await;
    assert_eq!(push["diff"], counter_diff(2));
    assert_eq!(held(&push), (epoch.clone(), 2));
    // Joining again answers the same instance at its version.
    let again = client.join(COUNTER, json!({})).await;
    assert_eq!(
        (again["data"]["counter"].clone(), held(&again)),
        (json!(2), (epoch, 2))
    );
    // Another instance has another epoch.
    let mut other = server.connect().await;
    let other = other.join(COUNTER, json!({})).await;
    assert_ne!(held(&other).0, held(&again).0);
}

#[actix_rt::test]
async fn a_dropped_connection_detaches_the_session_and_a_resume_brings_back_what_was_missed() {
    let server = TestServer::start(Config::default());
    let (mut client, _, session, token) = join_counter(&server, json!({"start": 5})).await;
    let answer = client.commit(COUNTER, "increase", json!([])).await;
    let (epoch, version) = held(&answer);
    assert_eq!(version, 1);
    drop(client); // no close frame: the network dropped

    detached(&server, 1).await;
    assert_eq!(server.hub.session_count(), 1);
    assert!(!terminated(&session));
    // Server-side mutations keep applying to the detached instance.
    let reached = server
        .hub
        .mutate_key("no such key", storex::mutation!(Counter, "increase"));
    assert_eq!(reached, Ok(0));
    server
        .hub
        .mutate_session(&session, storex::mutation!(Counter, "set", 10))
        .await
        .expect("the detached session runs it");
    assert!(server.hub.detached().history_bytes > 0);

    let stores = holding_counter(&epoch, version);
    let mut client = resume_on(&server, &session, &token, stores, "r1").await;
    let answer = resumed(&mut client).await;
    assert_eq!(answer["type"], "resume", "{answer}");
    assert_eq!(answer["session"], json!(session));
    assert_eq!(answer["request"], "r1");
    assert!(answer["token"].as_str().is_some());
    assert_eq!(
        answer["stores"],
        json!([{"store": COUNTER, "epoch": epoch, "version": 2, "diff": counter_diff(10)}])
    );
    assert_eq!(server.hub.detached().sessions, 0);
    assert_eq!(server.hub.session_count(), 1, "the fresh session is gone");
    // The session goes on over the new connection, with its old id; init ran once.
    let answer = client.commit(COUNTER, "increase", json!([])).await;
    assert_eq!(answer["session"], json!(session));
    assert_eq!(answer["diff"], counter_diff(11));
    assert_eq!(held(&answer), (epoch, 3));
    assert_eq!(counter_inits(&session), 1);
    // It can be dropped and resumed again.
    drop(client);
    detached(&server, 1).await;
    let token = answer_token(&answer, &token);
    let mut client = resume_on(&server, &session, &token, json!([]), "r2").await;
    resumed(&mut client).await;
}

/// The newest token a client would hold: answers to mutations carry none.
fn answer_token(answer: &Value, older: &str) -> String {
    answer["token"].as_str().unwrap_or(older).to_owned()
}

#[actix_rt::test]
async fn a_client_past_the_history_or_of_another_epoch_gets_the_whole_state() {
    let server = TestServer::start(Config::default().history(2, 1024));
    let (mut client, joined, session, token) = join_counter(&server, json!({})).await;
    let (epoch, _) = held(&joined);
    for _ in 0..3 {
        client.commit(COUNTER, "increase", json!([])).await;
    }
    drop(client);
    detached(&server, 1).await;

    // Version 0: three diffs ago, beyond the two kept.
    let stores = json!([
        {"store": COUNTER, "epoch": epoch, "version": 0},
        {"store": OTHER, "epoch": "x", "version": 0},
    ]);
    let mut client = resume_on(&server, &session, &token, stores, "r").await;
    let answer = resumed(&mut client).await;
    assert_eq!(
        answer["stores"],
        json!([
            {"store": COUNTER, "epoch": epoch, "version": 3, "data": {"counter": 3, "blob": ""}},
            {"store": OTHER, "joined": false},
        ])
    );
    // One diff ago is in the history; another epoch is not.
    let token = answer["token"].as_str().expect("a token").to_owned();
    drop(client);
    detached(&server, 1).await;
    let stores = holding_counter(&epoch, 2);
    let mut client = resume_on(&server, &session, &token, stores, "r").await;
    let answer = client.recv().await;
    assert_eq!(answer["stores"][0]["diff"], counter_diff(3));
    let token = answer["token"].as_str().expect("a token").to_owned();
    drop(client);
    detached(&server, 1).await;
    let stores = holding_counter("0123456789abcdef", 3);
    let mut client = resume_on(&server, &session, &token, stores, "r").await;
    let answer = client.recv().await;
    assert_eq!(answer["stores"][0]["data"]["counter"], 3, "{answer}");
}

/// A server with a known resume key and a dropped session to resume: the server, the session
/// id, its token and the client's epoch.
async fn detached_session(config: Config) -> (TestServer, String, String, String) {
    let server = TestServer::start(config.resume_key(KEY));
    let (client, joined, session, token) = join_counter(&server, json!({"start": 7})).await;
    drop(client);
    detached(&server, 1).await;
    (server, session, token, held(&joined).0)
}

/// Sends a resume as a new connection's first message; the refusal's error. The connection is a
/// fresh session: a join runs init and gives a fresh state.
async fn refused(server: &TestServer, session: &str, token: &str, epoch: &str) -> String {
    let stores = holding_counter(epoch, 0);
    let mut client = resume_on(server, session, token, stores, "r").await;
    let answer = client.recv().await;
    assert_eq!(answer["type"], "resume", "{answer}");
    assert_eq!(answer["resumed"], false, "{answer}");
    assert_eq!(answer["request"], "r");
    assert!(answer.get("stores").is_none() && answer.get("token").is_none());
    let own = answer["session"]
        .as_str()
        .expect("the connection's own session");
    assert_ne!(own, session);
    let joined = client.join(COUNTER, json!({})).await;
    assert_eq!(joined["session"], own);
    assert_eq!(
        joined["data"]["counter"], 0,
        "a fresh state, not the other session's"
    );
    assert_eq!(counter_inits(own), 1);
    let error = answer["error"].as_str().expect("why").to_owned();
    // Closed, not dropped: its session ends instead of waiting beside the tests' ones.
    client.close().await;
    error
}

#[actix_rt::test]
async fn forged_expired_and_other_session_tokens_get_a_fresh_session() {
    let (server, session, token, epoch) = detached_session(Config::default()).await;
    let (expiry, _) = token.split_once('.').expect("EXPIRY.MAC");
    let invalid = "The resume token is not valid for this session.";
    for forged in [
        format!("{expiry}.{}", "0".repeat(64)),
        format!(
            "{}.{}",
            expiry.parse::<u64>().expect("a time") + 1,
            &token[expiry.len() + 1..]
        ),
        "garbage".to_owned(),
        String::new(),
    ] {
        assert_eq!(refused(&server, &session, &forged, &epoch).await, invalid);
    }
    // A real token, but for another session.
    let mut other = server.connect().await;
    let other_token = other.join(COUNTER, json!({})).await["token"]
        .as_str()
        .expect("a token")
        .to_owned();
    assert_eq!(
        refused(&server, &session, &other_token, &epoch).await,
        invalid
    );
    // A token signed with the key whose time has passed.
    let expired = token_with(&session, unix_now() - 1);
    assert_eq!(
        refused(&server, &session, &expired, &epoch).await,
        "The resume token has expired."
    );
    // After all that the session is still detached, and its real token takes it back.
    assert_eq!(server.hub.detached().sessions, 1);
    let mut client = resume_on(&server, &session, &token, json!([]), "r").await;
    resumed(&mut client).await;
}

#[actix_rt::test]
async fn a_session_attached_to_another_connection_is_not_handed_over() {
    let server = TestServer::start(Config::default());
    let (mut owner, joined, session, token) = join_counter(&server, json!({"start": 3})).await;
    let started = std::time::Instant::now();
    // The owner is alive: it reads its socket, so it answers the server's ping (as a browser
    // does by itself).
    let epoch = held(&joined).0;
    let error = tokio::select! {
        error = refused(&server, &session, &token, &epoch) => error,
        frame = owner.next() => panic!("the owner got {frame:?}"),
    };
    assert_eq!(
        error,
        format!("Session {session} is attached to another connection.")
    );
    // After the grace of two seconds.
    assert!(started.elapsed() >= Duration::from_secs(2));
    // The owner still has it.
    let answer = owner.commit(COUNTER, "increase", json!([])).await;
    assert_eq!(answer["diff"], counter_diff(4));
}

#[actix_rt::test]
async fn a_resume_right_after_the_drop_waits_for_the_server_to_notice_it() {
    let server = TestServer::start(Config::default());
    for _ in 0..5 {
        let (client, _, session, token) = join_counter(&server, json!({})).await;
        // No waiting for the server to see the drop.
        drop(client);
        let mut client = resume_on(&server, &session, &token, json!([]), "r").await;
        resumed(&mut client).await;
        client.close().await;
    }
}

#[actix_rt::test]
async fn a_resume_must_be_the_first_message_and_needs_resume_enabled() {
    let (server, session, token, epoch) = detached_session(Config::default()).await;
    let mut client = server.connect().await;
    client.join(COUNTER, json!({})).await;
    client
        .send_json(&resume(&session, &token, holding_counter(&epoch, 0), "r"))
        .await;
    let answer = client.recv().await;
    assert_eq!(answer["resumed"], false);
    assert_eq!(
        answer["error"],
        "Resume must be the first message of a connection."
    );
    // A ping before it is fine.
    let mut client = server.connect().await;
    client
        .send_json(&json!({"type": "ping", "request": "p"}))
        .await;
    assert_eq!(client.recv().await["type"], "pong");
    client
        .send_json(&resume(&session, &token, json!([]), "r"))
        .await;
    resumed(&mut client).await;

    let server = TestServer::start(Config::default().resume_ttl(Duration::ZERO));
    let mut client = server.connect().await;
    let joined = client.join(COUNTER, json!({})).await;
    assert!(joined.get("token").is_none());
    let session = client.session.clone().expect("a session");
    drop(client);
    eventually("the session ends with its connection", || {
        terminated(&session)
    })
    .await;
    let mut client = resume_on(&server, &session, "1.00", json!([]), "r").await;
    let answer = client.recv().await;
    assert_eq!(answer["error"], "This server does not resume sessions.");
}

#[actix_rt::test]
async fn a_detached_session_ends_when_its_time_is_up() {
    let ttl = Duration::from_millis(300);
    let (server, session, token, epoch) = detached_session(Config::default().resume_ttl(ttl)).await;
    eventually("terminate ran", || terminated(&session)).await;
    assert_eq!(server.hub.session_count(), 0);
    let held = server.hub.detached();
    assert_eq!((held.sessions, held.history_bytes), (0, 0));
    let error = refused(&server, &session, &token, &epoch).await;
    assert_eq!(
        error,
        format!("Session {session} cannot be resumed: it has ended.")
    );
}

#[actix_rt::test]
async fn a_close_from_the_client_ends_the_session_at_once() {
    let server = TestServer::start(Config::default());
    let (client, _, session, _) = join_counter(&server, json!({})).await;
    client.close().await;
    eventually("terminate ran", || terminated(&session)).await;
    assert_eq!(server.hub.detached().sessions, 0);
    assert_eq!(server.hub.session_count(), 0);
}

#[actix_rt::test]
async fn a_session_without_stores_is_not_kept() {
    let server = TestServer::start(Config::default());
    let client = server.connect().await;
    server.wait_for_sessions(1).await;
    drop(client);
    // The count includes detached sessions: at 0 the session ended instead of detaching.
    server.wait_for_sessions(0).await;
}

#[actix_rt::test]
async fn the_oldest_detached_sessions_go_first_past_the_count_limit() {
    let server = TestServer::start(Config::default().max_detached(2, usize::MAX));
    let mut sessions = Vec::new();
    for n in 0..3 {
        let (client, _, session, token) = join_counter(&server, json!({})).await;
        sessions.push((session, token));
        drop(client);
        detached(&server, (n + 1).min(2)).await;
    }
    eventually("the oldest terminated", || terminated(&sessions[0].0)).await;
    assert!(!terminated(&sessions[1].0) && !terminated(&sessions[2].0));
    let error = refused(&server, &sessions[0].0, &sessions[0].1, "x").await;
    assert_eq!(
        error,
        format!("Session {} cannot be resumed: it has ended.", sessions[0].0)
    );
    for (session, token) in &sessions[1..] {
        let mut client = resume_on(&server, session, token, json!([]), "r").await;
        resumed(&mut client).await;
    }
}

#[actix_rt::test]
async fn the_oldest_detached_sessions_go_first_past_the_byte_limit() {
    // Each session keeps one diff of about 1 KiB: two fit in 3 KiB, three do not.
    let server = TestServer::start(
        Config::default()
            .history(8, 4096)
            .max_detached(100, 3 * 1024),
    );
    let mut sessions = Vec::new();
    for n in 0..3 {
        let (mut client, _, session, _) = join_counter(&server, json!({})).await;
        client.commit(COUNTER, "blob", json!([1000])).await;
        sessions.push(session);
        drop(client);
        detached(&server, (n + 1).min(2)).await;
    }
    eventually("the oldest terminated", || terminated(&sessions[0])).await;
    assert!(!terminated(&sessions[1]) && !terminated(&sessions[2]));
    let held = server.hub.detached();
    assert!(
        held.history_bytes <= 3 * 1024 && held.history_bytes > 2000,
        "{held:?}"
    );

    // A server-side mutation that grows a detached session's history evicts the oldest too.
    server
        .hub
        .mutate_session(&sessions[2], storex::mutation!(Counter, "blob", 1001))
        .await
        .expect("the detached session runs it");
    eventually("the next oldest terminated", || terminated(&sessions[1])).await;
    assert!(!terminated(&sessions[2]));
}

#[actix_rt::test]
async fn a_mutation_sent_again_after_a_resume_is_answered_again_not_run_again() {
    let server = TestServer::start(Config::default());
    let (mut client, joined, session, token) = join_counter(&server, json!({})).await;
    let epoch = held(&joined).0;
    // Four mutations whose answers are lost to the client: it drops right after they come.
    let lost = [
        ("increase", json!([]), "m1"),
        ("decrease", json!([]), "m2"),
        ("set", json!([-5]), "m3"),
        ("increase", json!([]), "m4"),
    ];
    for (name, args, request) in &lost {
        client
            .send_json(&commit(&session, name, args.clone(), request))
            .await;
    }
    // The server has run all four once their answers are out.
    for _ in 0..4 {
        client.recv().await;
    }
    drop(client);
    detached(&server, 1).await;

    let stores = holding_counter(&epoch, 0);
    let mut client = resume_on(&server, &session, &token, stores, "r").await;
    let answer = client.recv().await;
    assert_eq!(answer["stores"][0]["version"], 3, "{answer}");
    // Sent again with the same ids, and one new.
    for (name, args, request) in lost.into_iter().chain([("increase", json!([]), "m5")]) {
        client
            .send_json(&commit(&session, name, args, request))
            .await;
    }
    let m1 = client.recv().await;
    assert_eq!(
        m1,
        json!({"type": "mutation", "store": COUNTER, "session": session, "diff": [],
               "request": "m1", "epoch": epoch, "version": 1, "replayed": true})
    );
    let m2 = client.recv().await;
    assert_eq!(
        (
            m2["message"].clone(),
            m2["version"].clone(),
            m2["replayed"].clone()
        ),
        (json!("message"), json!(2), json!(true))
    );
    let m3 = client.recv().await;
    assert_eq!(m3["type"], "error");
    assert_eq!(m3["error"], "-5 is below zero");
    assert_eq!(m3["replayed"], true);
    let m4 = client.recv().await;
    assert_eq!(
        (m4["version"].clone(), m4["replayed"].clone()),
        (json!(3), json!(true))
    );
    let m5 = client.recv().await;
    assert_eq!(m5["diff"], counter_diff(2), "{m5}");
    assert_eq!(m5.get("replayed"), None);
    assert_eq!(m5["version"], 4);
    // Counted once each: +1 -1 (error) +1, then +1.
    let state = client.join(COUNTER, json!({})).await;
    assert_eq!(state["data"]["counter"], 2);
}

#[actix_rt::test]
async fn a_mutation_answered_again_takes_no_token_of_the_rate_limit() {
    // Two mutations for the whole test: both run before the drop; sent again after the resume,
    // they are answered again, not refused; a new one is over the limit.
    let server = TestServer::start(Config::default().mutation_rate(0.001, 2));
    let (mut client, joined, session, token) = join_counter(&server, json!({})).await;
    let epoch = held(&joined).0;
    for request in ["m1", "m2"] {
        client
            .send_json(&commit(&session, "increase", json!([]), request))
            .await;
        assert_eq!(client.recv().await["type"], "mutation");
    }
    drop(client);
    detached(&server, 1).await;

    let stores = holding_counter(&epoch, 0);
    let mut client = resume_on(&server, &session, &token, stores, "r").await;
    resumed(&mut client).await;
    for (request, version) in [("m1", 1), ("m2", 2)] {
        client
            .send_json(&commit(&session, "increase", json!([]), request))
            .await;
        let answer = client.recv().await;
        assert_eq!(
            (answer["replayed"].clone(), answer["version"].clone()),
            (json!(true), json!(version)),
            "{answer}"
        );
    }
    client
        .send_json(&commit(&session, "increase", json!([]), "m3"))
        .await;
    let answer = client.recv().await;
    assert_eq!(answer["error"], "Too many mutations.", "{answer}");
}

#[actix_rt::test]
async fn a_request_id_remembered_for_another_store_is_a_new_request() {
    let server = TestServer::start(Config::default());
    let (mut client, joined, session, token) = join_counter(&server, json!({})).await;
    client.join("Test.Other", json!({})).await;
    client
        .send_json(&commit(&session, "increase", json!([]), "m1"))
        .await;
    client.recv().await;
    drop(client);
    detached(&server, 1).await;

    let stores = holding_counter(&held(&joined).0, 1);
    let mut client = resume_on(&server, &session, &token, stores, "r").await;
    resumed(&mut client).await;
    // The same id, for the other store: it runs.
    client
        .send_json(
            &json!({"type": "mutation", "store": "Test.Other", "session": session,
                           "data": {"name": "set", "data": [9]}, "request": "m1"}),
        )
        .await;
    let answer = client.recv().await;
    assert_eq!(answer["store"], "Test.Other", "{answer}");
    assert_eq!(answer["diff"], json!([{"a": "u", "p": ["value"], "t": 9}]));
    assert_eq!(answer.get("replayed"), None);
}

#[actix_rt::test]
async fn a_store_named_twice_in_a_resume_is_answered_once() {
    let server = TestServer::start(Config::default());
    let (client, _, session, token) = join_counter(&server, json!({"start": 4})).await;
    drop(client);
    detached(&server, 1).await;
    // Of another epoch: each entry would need the whole state.
    let stale = json!({"store": COUNTER, "epoch": "another", "version": 0});
    let unknown = json!({"store": "Test.Nope", "epoch": "e", "version": 0});
    let stores = json!([stale, unknown, stale, stale, unknown]);
    let mut client = resume_on(&server, &session, &token, stores, "r").await;
    let answer = resumed(&mut client).await;
    let answered = answer["stores"].as_array().expect("stores");
    assert_eq!(answered.len(), 2, "{answer}");
    assert_eq!(answered[0]["store"], COUNTER);
    assert_eq!(answered[0]["data"]["counter"], 4);
    assert_eq!(answered[1], json!({"store": "Test.Nope", "joined": false}));
}

#[actix_rt::test]
async fn a_request_id_repeated_on_one_connection_is_a_new_request() {
    let server = TestServer::start(Config::default());
    let (mut client, _, session, _) = join_counter(&server, json!({})).await;
    for expected in 1..=3 {
        client
            .send_json(&commit(&session, "increase", json!([]), "same"))
            .await;
        let answer = client.recv().await;
        assert_eq!(answer["diff"], counter_diff(expected));
    }
}

#[actix_rt::test]
async fn a_graceful_stop_ends_detached_sessions_too() {
    let (server, session, _token, _epoch) = detached_session(Config::default()).await;
    tokio::time::timeout(PATIENCE, server.hub.stop())
        .await
        .expect("the stop finishes");
    assert!(terminated(&session));
    assert_eq!(server.hub.session_count(), 0);
}

#[actix_rt::test]
async fn an_idle_connection_is_closed_and_its_session_waits() {
    let server = TestServer::start(Config::default().idle_timeout(Duration::from_millis(300)));
    let (mut client, _, session, token) = join_counter(&server, json!({})).await;
    assert_eq!(
        client.next().await,
        Err(Closed::Frame(1000, "Idle timeout.".into()))
    );
    detached(&server, 1).await;
    let mut client = resume_on(&server, &session, &token, json!([]), "r").await;
    resumed(&mut client).await;
}

#[actix_rt::test]
async fn a_mutation_running_when_the_connection_drops_finishes_and_is_answered_once() {
    let server = TestServer::start(Config::default());
    let (mut client, joined, session, token) = join_counter(&server, json!({})).await;
    // An async mutation (20 ms), and the connection drops while it runs.
    client
        .send_json(&commit(&session, "slow_set", json!([42]), "slow"))
        .await;
    drop(client);
    detached(&server, 1).await;

    let stores = holding_counter(&held(&joined).0, 0);
    let mut client = resume_on(&server, &session, &token, stores, "r").await;
    let answer = client.recv().await;
    assert_eq!(answer["stores"][0]["diff"], counter_diff(42), "{answer}");
    client
        .send_json(&commit(&session, "slow_set", json!([42]), "slow"))
        .await;
    let again = client.recv().await;
    assert_eq!(again["replayed"], true, "{again}");
    assert_eq!(again["message"], 42);
    assert_eq!(again["version"], 1);
}

#[actix_rt::test]
async fn a_resume_waits_for_a_dropped_connection_to_finish_its_long_mutation() {
    let server = TestServer::start(Config::default());
    let (mut client, joined, session, token) = join_counter(&server, json!({})).await;
    // Longer than the two-second grace given to a session still attached.
    client
        .send_json(&commit(&session, "sleep_set", json!([2500, 9]), "long"))
        .await;
    drop(client);
    let started = std::time::Instant::now();
    let stores = holding_counter(&held(&joined).0, 0);
    let mut client = resume_on(&server, &session, &token, stores, "r").await;
    let answer = resumed(&mut client).await;
    assert!(started.elapsed() >= Duration::from_millis(2000));
    assert_eq!(answer["stores"][0]["diff"], counter_diff(9));
    client
        .send_json(&commit(&session, "sleep_set", json!([2500, 9]), "long"))
        .await;
    let again = client.recv().await;
    assert_eq!(
        (again["replayed"].clone(), again["message"].clone()),
        (json!(true), json!(9))
    );
}

#[actix_rt::test]
async fn a_connection_dropped_right_after_its_resume_lets_the_session_go_again() {
    let server = TestServer::start(Config::default());
    let (client, joined, session, token) = join_counter(&server, json!({"start": 1})).await;
    drop(client);
    detached(&server, 1).await;
    let epoch = held(&joined).0;
    // Each time: a resume, and the connection drops before the answer is read.
    for _ in 0..5 {
        let stores = holding_counter(&epoch, 0);
        drop(resume_on(&server, &session, &token, stores, "r").await);
        detached(&server, 1).await;
    }
    let stores = holding_counter(&epoch, 0);
    let mut client = resume_on(&server, &session, &token, stores, "r").await;
    let answer = resumed(&mut client).await;
    assert_eq!(answer["stores"][0]["diff"], json!([]));
}

#[actix_rt::test]
async fn a_connection_that_does_not_answer_the_ping_loses_its_session_to_a_resume() {
    let server = TestServer::start(Config::default());
    // The owner's network is gone without a word (a Wi-Fi blip): its socket is open, but
    // nothing reads it, so the server's ping is not answered.
    let (owner, joined, session, token) = join_counter(&server, json!({"start": 3})).await;
    let started = std::time::Instant::now();
    let stores = holding_counter(&held(&joined).0, 0);
    let mut client = resume_on(&server, &session, &token, stores, "r").await;
    let answer = resumed(&mut client).await;
    assert!(
        // A second to show a sign of life, within the two seconds a resume waits.
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(answer["stores"][0]["diff"], json!([]));
    let answer = client.commit(COUNTER, "increase", json!([])).await;
    assert_eq!(answer["diff"], counter_diff(4));
    drop(owner);
}

#[actix_rt::test]
async fn a_resume_whose_client_goes_while_it_waits_ends_at_once() {
    let server = TestServer::start(Config::default());
    let (mut owner, joined, session, token) = join_counter(&server, json!({})).await;
    let stores = holding_counter(&held(&joined).0, 0);
    let check = async {
        // The owner answers the ping, so this resume waits out its grace of two seconds...
        let waiting = resume_on(&server, &session, &token, stores, "r").await;
        server.wait_for_sessions(2).await;
        // ...unless its own client goes: then it ends at once (it must not take the session
        // later from a newer connection).
        drop(waiting);
        within(
            Duration::from_secs(1),
            "the resume of a gone client ends",
            || server.hub.session_count() == 1,
        )
        .await;
    };
    tokio::select! {
        () = check => {}
        frame = owner.next() => panic!("the owner got {frame:?}"),
    }
    let answer = owner.commit(COUNTER, "increase", json!([])).await;
    assert_eq!(answer["diff"], counter_diff(1));
}
