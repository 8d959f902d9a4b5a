//! Every message and close code of PROTOCOL.md, against a real server and real WebSocket clients.

mod common;

use std::sync::atomic::Ordering;

use common::stores::{counter_inits, terminated};
use common::TestServer;
use serde_json::json;
use storex::Config;
use tokio_tungstenite::tungstenite::Message;

const COUNTER: &str = "Test.Counter";

#[actix_rt::test]
async fn join_answers_the_state_with_the_session() {
    let server = TestServer::start(Config::default());
    let mut client = server.connect().await;
    let answer = client.join(COUNTER, json!({"start": 5})).await;
    assert_eq!(answer["type"], "join");
    assert_eq!(answer["store"], COUNTER);
    assert_eq!(answer["data"], json!({"counter": 5, "blob": ""}));
    let session = answer["session"].as_str().unwrap();
    assert_eq!(session.len(), 21);
    assert_eq!(server.hub.sessions_of(COUNTER), vec![session.to_owned()]);
}

#[actix_rt::test]
async fn joining_again_answers_the_existing_state_without_init() {
    let server = TestServer::start(Config::default());
    let mut client = server.connect().await;
    client.join(COUNTER, json!({})).await;
    let session = client.session.clone().expect("a session id");
    assert_eq!(counter_inits(&session), 1);
    client.commit(COUNTER, "increase", json!([])).await;
    let again = client.join(COUNTER, json!({"start": 100})).await;
    assert_eq!(again["data"]["counter"], 1);
    assert_eq!(counter_inits(&session), 1, "init ran again");
}

#[actix_rt::test]
async fn two_connections_are_two_sessions() {
    let server = TestServer::start(Config::default());
    let mut a = server.connect().await;
    let mut b = server.connect().await;
    a.join(COUNTER, json!({})).await;
    b.join(COUNTER, json!({})).await;
    assert_ne!(a.session, b.session);
    a.commit(COUNTER, "increase", json!([])).await;
    assert_eq!(b.join(COUNTER, json!({})).await["data"]["counter"], 0);
}

#[actix_rt::test]
async fn init_refusal_is_an_error_answer() {
    let server = TestServer::start(Config::default());
    let mut client = server.connect().await;
    let answer = client.join(COUNTER, json!({"refuse": true})).await;
    assert_eq!(answer["type"], "error");
    assert_eq!(answer["error"], "Unauthorized");
    assert_eq!(answer["store"], COUNTER);
    assert!(answer["session"].is_string());
}

#[actix_rt::test]
async fn join_without_a_store_closes_with_4000() {
    let server = TestServer::start(Config::default());
    for message in [
        json!({"type": "join", "request": "r"}),
        json!({"type": "join", "store": null}),
    ] {
        let mut client = server.connect().await;
        client.send_json(&message).await;
        assert_eq!(
            client.closed().await,
            (4000, "Store is not set.".to_owned())
        );
    }
}

#[actix_rt::test]
async fn unknown_store_closes_with_4001() {
    let server = TestServer::start(Config::default());
    let mut client = server.connect().await;
    client
        .send_json(&json!({"type": "join", "store": "Nope", "request": "r"}))
        .await;
    assert_eq!(
        client.closed().await,
        (
            4001,
            "Store 'Nope' is not defined or can't be compiled.".to_owned()
        )
    );

    let mut client = server.connect().await;
    let long = "Ä".repeat(200);
    client
        .send_json(&json!({"type": "join", "store": long, "request": "r"}))
        .await;
    let (code, reason) = client.closed().await;
    assert_eq!(code, 4001);
    assert!(
        reason.len() <= 123 && reason.starts_with("Store 'ÄÄ"),
        "{reason}"
    );
}

#[actix_rt::test]
async fn mutations_answer_diffs_replies_and_errors() {
    let server = TestServer::start(Config::default());
    let mut client = server.connect().await;
    client.join(COUNTER, json!({})).await;

    let answer = client.commit(COUNTER, "increase", json!([])).await;
    assert_eq!(answer["type"], "mutation");
    assert_eq!(
        answer["diff"],
        json!([{"a": "u", "p": ["counter"], "t": 1}])
    );
    assert_eq!(answer["session"], json!(client.session));
    assert!(answer.get("message").is_none());

    let answer = client.commit(COUNTER, "decrease", json!([])).await;
    assert_eq!(
        answer["diff"],
        json!([{"a": "u", "p": ["counter"], "t": 0}])
    );
    assert_eq!(answer["message"], "message");

    let answer = client.commit(COUNTER, "set", json!([10])).await;
    assert_eq!(
        answer["diff"],
        json!([{"a": "u", "p": ["counter"], "t": 10}])
    );

    let answer = client.commit(COUNTER, "slow_set", json!([3])).await;
    assert_eq!(answer["message"], 3);

    let answer = client.commit(COUNTER, "set", json!([-1])).await;
    assert_eq!(answer["type"], "error");
    assert_eq!(answer["error"], "-1 is below zero");

    let answer = client.commit(COUNTER, "increase", json!([])).await;
    assert_eq!(
        answer["diff"],
        json!([{"a": "u", "p": ["counter"], "t": 4}]),
        "state changed by an error"
    );
}

#[actix_rt::test]
async fn mutation_with_unknown_name_or_unfit_data_answers_storex_words() {
    let server = TestServer::start(Config::default());
    let mut client = server.connect().await;
    client.join(COUNTER, json!({})).await;
    let answer = client.commit(COUNTER, "not_existing", json!([])).await;
    assert_eq!(answer["type"], "error");
    assert_eq!(
        answer["error"],
        r#"No mutation matching "not_existing" with data [] in store Test.Counter"#
    );
    let answer = client.commit(COUNTER, "set", json!([1, 2])).await;
    assert_eq!(
        answer["error"],
        r#"No mutation matching "set" with data [1,2] in store Test.Counter"#
    );
    let answer = client.commit(COUNTER, "set", json!(["ten"])).await;
    let error = answer["error"].as_str().unwrap();
    assert!(
        error.starts_with(r#"No mutation matching "set" with data ["ten"] in store Test.Counter"#),
        "{error}"
    );
}

#[actix_rt::test]
async fn a_mutation_for_another_session_is_refused() {
    let server = TestServer::start(Config::default());
    let mut victim = server.connect().await;
    victim.join(COUNTER, json!({})).await;
    let mut attacker = server.connect().await;
    attacker.join(COUNTER, json!({})).await;
    attacker.session = victim.session.clone();
    let answer = attacker.commit(COUNTER, "set", json!([666])).await;
    assert_eq!(answer["type"], "error");
    assert!(answer["error"]
        .as_str()
        .unwrap()
        .contains("not the session of this connection"));
    assert_eq!(victim.join(COUNTER, json!({})).await["data"]["counter"], 0);
}

#[actix_rt::test]
async fn a_mutation_of_a_store_not_joined_is_an_error_answer() {
    let server = TestServer::start(Config::default());
    let mut client = server.connect().await;
    let answer = client.commit("Test.Other", "set", json!([1])).await;
    assert_eq!(answer["type"], "error");
    assert_eq!(
        answer["error"],
        "Store Test.Other is not joined in this session: join it first"
    );
    client
        .send_json(&json!({"type": "mutation", "data": {"name": "x", "data": []}}))
        .await;
    assert_eq!(client.closed().await.0, 4000);
    let mut client = server.connect().await;
    client
        .send_json(&json!({"type": "mutation", "store": "Nope", "data": {"name": "x", "data": []}}))
        .await;
    assert_eq!(client.closed().await.0, 4001);
}

#[actix_rt::test]
async fn ping_is_answered_by_pong() {
    let server = TestServer::start(Config::default());
    let mut client = server.connect().await;
    client
        .send_json(&json!({"type": "ping", "request": "p1"}))
        .await;
    let mut pong = client.recv().await;
    // A fresh resume token rides along (tests/resume.rs checks it); the rest is Storex's pong.
    let token = pong
        .as_object_mut()
        .and_then(|pong| pong.remove("token"))
        .expect("a resume token");
    assert!(token.as_str().is_some_and(|token| token.contains('.')));
    assert_eq!(
        pong,
        json!({"type": "pong", "store": null, "data": null, "request": "p1", "session": null})
    );
    // Without resume, the pong is exactly the original's.
    let server = TestServer::start(Config::default().resume_ttl(std::time::Duration::ZERO));
    let mut client = server.connect().await;
    client
        .send_json(&json!({"type": "ping", "request": "p1"}))
        .await;
    assert_eq!(
        client.recv().await,
        json!({"type": "pong", "store": null, "data": null, "request": "p1", "session": null})
    );
}

#[actix_rt::test]
async fn malformed_frames_close_with_1007() {
    let server = TestServer::start(Config::default());
    for text in [
        "not json",
        "[1,2]",
        r#"{"type":"dance"}"#,
        r#"{"type":"mutation","store":"Test.Counter"}"#,
    ] {
        let mut client = server.connect().await;
        client.send_text(text).await;
        assert_eq!(
            client.closed().await,
            (1007, "Payload is malformed.".to_owned()),
            "{text}"
        );
    }
    let mut client = server.connect().await;
    client.send_raw(Message::Binary(vec![1, 2, 3].into())).await;
    assert_eq!(client.closed().await.0, 1007);
}

#[actix_rt::test]
async fn several_stores_on_one_connection() {
    let server = TestServer::start(Config::default());
    let mut client = server.connect().await;
    client.join(COUNTER, json!({})).await;
    let other = client.join("Test.Other", json!({})).await;
    assert_eq!(other["data"], json!({"value": 7}));
    let answer = client.commit("Test.Other", "set", json!([8])).await;
    assert_eq!(answer["diff"], json!([{"a": "u", "p": ["value"], "t": 8}]));
    assert_eq!(answer["store"], "Test.Other");
}

#[actix_rt::test]
async fn disconnect_terminates_every_instance_and_forgets_the_session() {
    let server = TestServer::start(Config::default());
    let mut client = server.connect().await;
    client.join(COUNTER, json!({"key": "k"})).await;
    client.join("Test.Other", json!({})).await;
    let session = client.session.clone().unwrap();
    server.wait_for_sessions(1).await;
    client.close().await;
    server.wait_for_sessions(0).await;
    assert!(server.hub.sessions_of(COUNTER).is_empty());
    assert!(server.hub.sessions_of("Test.Other").is_empty());
    let deadline = std::time::Instant::now() + common::PATIENCE;
    while !terminated(&session) {
        assert!(
            std::time::Instant::now() < deadline,
            "terminate did not run"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

#[actix_rt::test]
async fn http_join_renders_the_state() {
    let server = TestServer::start(Config::default());
    let (status, body) =
        common::http_get(&server.http_url("store=Test.Counter&params=%7B%22start%22%3A3%7D")).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"type": "join", "session": "SSR", "store": "Test.Counter", "data": {"counter": 3, "blob": ""}})
    );
    let refused =
        common::http_get(&server.http_url("store=Test.Counter&params=%7B%22refuse%22%3Atrue%7D"))
            .await;
    assert_eq!(refused.0, 400);
    assert_eq!(
        refused.1,
        json!({"type": "error", "session": "SSR", "store": "Test.Counter", "error": "Unauthorized"})
    );
    let unknown = common::http_get(&server.http_url("store=Nope")).await;
    assert_eq!(unknown.0, 400);
    assert_eq!(
        unknown.1["error"],
        "Store 'Nope' is not defined or can't be compiled."
    );
    let bad_params = common::http_get(&server.http_url("store=Test.Counter&params=%7B")).await;
    assert_eq!(bad_params.0, 400);
    assert!(bad_params.1["error"].as_str().unwrap().contains("not JSON"));
    assert_eq!(server.hub.session_count(), 0);
}

#[actix_rt::test]
async fn closed_by_client_without_close_frame_is_cleaned_up() {
    // Without resume the session ends with its connection (tests/resume.rs: with it, it waits).
    let config = Config::default().resume_ttl(std::time::Duration::ZERO);
    let server = TestServer::start(config);
    let mut client = server.connect().await;
    client.join(COUNTER, json!({})).await;
    let session = client.session.clone().unwrap();
    drop(client);
    server.wait_for_sessions(0).await;
    assert!(terminated(&session));
}

#[actix_rt::test]
async fn ids_come_from_the_configured_generator() {
    let counter = std::sync::atomic::AtomicU64::new(0);
    let config = Config::default()
        .session_id(move || format!("custom-{}", counter.fetch_add(1, Ordering::SeqCst)));
    let server = TestServer::start(config);
    let mut client = server.connect().await;
    let answer = client.join(COUNTER, json!({})).await;
    assert!(answer["session"].as_str().unwrap().starts_with("custom-"));
}

#[actix_rt::test]
async fn the_client_is_served_with_its_content_type_and_etag() {
    let server = TestServer::start(Config::default());
    let url = format!("http://{}/storex/storex.js", server.addr);
    let mut response = awc::Client::new().get(&url).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let header = |response: &awc::ClientResponse<_>, name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    assert_eq!(
        header(&response, "content-type").as_deref(),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(
        header(&response, "cache-control").as_deref(),
        Some("public, max-age=0, must-revalidate")
    );
    let etag = header(&response, "etag").expect("an etag");
    let body = response.body().await.unwrap();
    assert_eq!(body, storex::client::SOURCE.as_bytes());

    let again = awc::Client::new()
        .get(&url)
        .insert_header(("if-none-match", etag))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status().as_u16(), 304);
}

#[actix_rt::test]
async fn a_generator_that_repeats_ids_is_refused_not_merged() {
    let server = TestServer::start(Config::default().session_id(|| "always-the-same".to_owned()));
    let mut first = server.connect().await;
    first.join(COUNTER, json!({})).await;
    let second = common::Client::connect(&server.ws_url(), &[]).await;
    match second {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 503)
        }
        Err(other) => panic!("expected a 503, got {other}"),
        Ok(_) => panic!("a second session with the same id was accepted"),
    }
    assert_eq!(
        first.commit(COUNTER, "increase", json!([])).await["diff"][0]["t"],
        1
    );
}

#[actix_rt::test]
async fn pipelined_mutations_of_one_session_run_in_order() {
    let server = TestServer::start(Config::default());
    let mut client = server.connect().await;
    client.join(COUNTER, json!({})).await;
    // Sent without waiting; the async one sleeps, and still nothing overtakes it.
    let commits = [
        ("slow_set", json!([10])),
        ("increase", json!([])),
        ("set", json!([3])),
        ("increase", json!([])),
    ];
    for (i, (name, args)) in commits.iter().enumerate() {
        let message = json!({
            "type": "mutation", "store": COUNTER, "session": client.session,
            "data": {"name": name, "data": args}, "request": format!("p{i}"),
        });
        client.send_json(&message).await;
    }
    for (i, expected) in [10, 11, 3, 4].into_iter().enumerate() {
        let answer = client.recv().await;
        assert_eq!(answer["request"], format!("p{i}"));
        assert_eq!(
            answer["diff"],
            json!([{"a": "u", "p": ["counter"], "t": expected}])
        );
    }
}
