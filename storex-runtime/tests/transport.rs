//! The transport seam and the connection lifecycle, without a socket: an in-memory
//! [`Transport`] driven by the core ([`Endpoint`], [`Accepted::serve`]), and what the core must
//! do whatever the transport: frame rules, idle limit, time limits with rollback, answers in
//! order, inbox overload, graceful stop, teardown that nothing skips, admission and HTTP join.
//!
//! Each test has its own `Config` (so its own hub); what instances did is recorded under a
//! token of the test's own (see `common/lifecycle_stores.rs`). Servers run on a `LocalSet` of a
//! current-thread runtime (the driver's future is not `Send`); time is real, with wide margins.

#![allow(clippy::expect_used)]

#[path = "common/lifecycle_stores.rs"]
mod lifecycle_stores;

use std::future::Future;
use std::time::Duration;

use lifecycle_stores::{events, Fragile, Lifecycle};
use serde_json::{json, Value};
use storex::transport::{Close, CloseCode, Disconnected, Incoming, Transport};
use storex::{
    Accepted, Config, ConnectRequest, Endpoint, Extensions, HubError, MutationError, Refusal,
    RequestKind,
};
use tokio::sync::mpsc::{self, error::TryRecvError, UnboundedReceiver, UnboundedSender};
use tokio::task::{JoinHandle, LocalSet};
use tokio::time::Instant;

/// How long a test waits for something that must happen.
const PATIENCE: Duration = Duration::from_secs(10);

const LIFECYCLE: &str = "Transport.Lifecycle";
const FRAGILE: &str = "Transport.Fragile";
const MINEFIELD: &str = "Transport.Minefield";
const SLOW_GOODBYE: &str = "Transport.SlowGoodbye";
const SLOW_HELLO: &str = "Transport.SlowHello";

// ---------------------------------------------------------------------------------------------
// The in-memory transport and its client.

/// What the server did to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Out {
    Text(String),
    Closed(Close),
}

/// The server's side: frames from the client in, frames to the client out. While `stalled`,
/// `send` and `close` never finish (a client that does not read).
struct MemoryTransport {
    incoming: UnboundedReceiver<Incoming>,
    outgoing: UnboundedSender<Out>,
    stalled: bool,
}

impl Transport for MemoryTransport {
    async fn recv(&mut self) -> Incoming {
        // Cancel-safe: `mpsc::UnboundedReceiver::recv` loses nothing when dropped unfinished.
        self.incoming.recv().await.unwrap_or(Incoming::Closed)
    }

    async fn send(&mut self, text: String) -> Result<(), Disconnected> {
        if self.stalled {
            std::future::pending::<()>().await;
        }
        self.outgoing
            .send(Out::Text(text))
            .map_err(|_| Disconnected)
    }

    async fn close(&mut self, close: Close) {
        if self.stalled {
            std::future::pending::<()>().await;
        }
        let _ = self.outgoing.send(Out::Closed(close));
    }
}

/// The client's side of one connection.
struct Client {
    to_server: UnboundedSender<Incoming>,
    from_server: UnboundedReceiver<Out>,
    session: String,
    next_request: u64,
}

fn memory_pair(session: &str, stalled: bool) -> (MemoryTransport, Client) {
    let (to_server, incoming) = mpsc::unbounded_channel();
    let (outgoing, from_server) = mpsc::unbounded_channel();
    let transport = MemoryTransport {
        incoming,
        outgoing,
        stalled,
    };
    let client = Client {
        to_server,
        from_server,
        session: session.to_owned(),
        next_request: 0,
    };
    (transport, client)
}

/// Accepts a connection on `endpoint` and serves it on the current `LocalSet`.
fn connect(endpoint: &Endpoint) -> (Client, JoinHandle<()>) {
    let accepted = endpoint
        .accept(&storex::ConnectRequest::default(), Extensions::new())
        .expect("the endpoint accepts a connection");
    let (transport, client) = memory_pair(accepted.session_id(), false);
    (client, tokio::task::spawn_local(accepted.serve(transport)))
}

/// Accepts a connection without serving it yet.
fn accept(endpoint: &Endpoint, stalled: bool) -> (Accepted, MemoryTransport, Client) {
    let accepted = endpoint
        .accept(&storex::ConnectRequest::default(), Extensions::new())
        .expect("the endpoint accepts a connection");
    let (transport, client) = memory_pair(accepted.session_id(), stalled);
    (accepted, transport, client)
}

impl Client {
    fn request_id(&mut self) -> String {
        self.next_request += 1;
        format!("r{}", self.next_request)
    }

    /// Sends something as the client.
    fn send(&self, incoming: Incoming) {
        self.to_server
            .send(incoming)
            .expect("the server still reads the connection");
    }

    fn send_json(&self, message: &Value) {
        self.send(Incoming::Text(message.to_string()));
    }

    /// Sends a join of `store`; its request id.
    fn send_join(&mut self, store: &str, params: Value) -> String {
        let request = self.request_id();
        self.send_json(
            &json!({"type": "join", "store": store, "data": params, "request": request}),
        );
        request
    }

    /// Sends a commit of mutation `name` of `store`; its request id.
    fn send_commit(&mut self, store: &str, name: &str, args: Value) -> String {
        let request = self.request_id();
        self.send_json(&json!({
            "type": "mutation", "store": store, "session": self.session,
            "data": {"name": name, "data": args}, "request": request,
        }));
        request
    }

    /// Sends a ping; its request id.
    fn send_ping(&mut self) -> String {
        let request = self.request_id();
        self.send_json(&json!({"type": "ping", "request": request}));
        request
    }

    /// The next thing the server did; panics when nothing comes within the patience or the
    /// connection ended without a close.
    async fn next(&mut self) -> Out {
        match tokio::time::timeout(PATIENCE, self.from_server.recv()).await {
            Ok(Some(out)) => out,
            Ok(None) => panic!("the connection ended without a frame or a close"),
            Err(_) => panic!("nothing from the server within {PATIENCE:?}"),
        }
    }

    /// The next text frame, as JSON, without the fields that serve a resume (`epoch`,
    /// `version`, `token`: tests/resume.rs checks those).
    async fn recv(&mut self) -> Value {
        match self.next().await {
            Out::Text(text) => {
                let mut frame: Value = serde_json::from_str(&text).expect("a JSON frame");
                if let Some(fields) = frame.as_object_mut() {
                    for resume_field in ["epoch", "version", "token"] {
                        fields.remove(resume_field);
                    }
                }
                frame
            }
            Out::Closed(close) => panic!("expected a frame, the server closed: {close:?}"),
        }
    }

    /// Expects the server to close; its close.
    async fn closed(&mut self) -> Close {
        match self.next().await {
            Out::Closed(close) => close,
            Out::Text(text) => panic!("expected a close, got the frame {text}"),
        }
    }

    /// Expects the connection to end (the transport dropped) with nothing more sent.
    async fn ended(&mut self) {
        match tokio::time::timeout(PATIENCE, self.from_server.recv()).await {
            Ok(None) => {}
            Ok(Some(out)) => panic!("expected the connection to end, got {out:?}"),
            Err(_) => panic!("the connection did not end within {PATIENCE:?}"),
        }
    }

    /// Expects the connection to end with nothing more sent, and its serving task to finish
    /// normally.
    async fn ended_with_its_task(&mut self, server: JoinHandle<()>) {
        self.ended().await;
        server.await.expect("the serving task ends normally");
    }

    /// Asserts that the server has sent nothing so far.
    fn assert_silent(&mut self) {
        match self.from_server.try_recv() {
            Err(TryRecvError::Empty) => {}
            other => panic!("expected nothing from the server, got {other:?}"),
        }
    }

    async fn join(&mut self, store: &str, params: Value) -> Value {
        let request = self.send_join(store, params);
        let answer = self.recv().await;
        assert_eq!(
            answer["request"],
            json!(request),
            "another answer: {answer}"
        );
        answer
    }

    async fn commit(&mut self, store: &str, name: &str, args: Value) -> Value {
        let request = self.send_commit(store, name, args);
        let answer = self.recv().await;
        assert_eq!(
            answer["request"],
            json!(request),
            "another answer: {answer}"
        );
        answer
    }

    async fn ping(&mut self) {
        let request = self.send_ping();
        assert_eq!(self.recv().await, pong(&request));
    }

    /// Commits `set_then_hang(value)` of the Lifecycle instance joined with `token`, and waits
    /// until it has started (it changes the state, then never finishes); its request id.
    async fn hang_a_mutation(&mut self, token: &str, value: i64) -> String {
        let request = self.send_commit(LIFECYCLE, "set_then_hang", json!([value]));
        event(token, &format!("started set_then_hang {value}")).await;
        request
    }
}

// ---------------------------------------------------------------------------------------------
// Expected frames and waiting.

fn join_answer(session: &str, store: &str, data: Value, request: &str) -> Value {
    json!({"type": "join", "store": store, "session": session, "data": data, "request": request})
}

fn mutation_answer(session: &str, store: &str, diff: Value, request: &str) -> Value {
    json!({"type": "mutation", "store": store, "session": session, "diff": diff, "request": request})
}

fn error_answer(session: &str, store: &str, error: &str, request: &str) -> Value {
    json!({"type": "error", "store": store, "session": session, "error": error, "request": request})
}

/// A push: a mutation frame without a request.
fn push(session: &str, store: &str, diff: Value) -> Value {
    json!({"type": "mutation", "store": store, "session": session, "diff": diff})
}

fn pong(request: &str) -> Value {
    json!({"type": "pong", "store": null, "data": null, "request": request, "session": null})
}

fn set_value(value: i64) -> Value {
    json!([{"a": "u", "p": ["value"], "t": value}])
}

/// Runs a test's body on a `LocalSet`, where `spawn_local` serves connections.
async fn local<F: Future>(body: F) -> F::Output {
    LocalSet::new().run_until(body).await
}

/// Waits (polling, at most the patience) until `condition` holds.
async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !condition() {
        assert!(Instant::now() < deadline, "not within {PATIENCE:?}: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits until `token`'s instances recorded `event`.
async fn event(token: &str, event: &str) {
    eventually(
        &format!("{token:?} records {event:?} (it has {:?})", events(token)),
        || events(token).iter().any(|seen| seen == event),
    )
    .await;
}

/// Asserts that at least `limit` passed since `started`: what `happened` did not come early.
fn assert_not_before(started: Instant, limit: Duration, happened: &str) {
    let elapsed = started.elapsed();
    assert!(
        elapsed >= limit,
        "{happened} after {elapsed:?}, before {limit:?}"
    );
}

/// Aborts the serving task and waits until it has ended, cancelled.
async fn abort(server: JoinHandle<()>) {
    server.abort();
    let aborted = tokio::time::timeout(PATIENCE, server)
        .await
        .expect("the aborted task ends");
    assert!(aborted.expect_err("it was aborted").is_cancelled());
}

fn endpoint(config: Config) -> Endpoint {
    Endpoint::new(config).expect("the test binary's store names are unique")
}

// ---------------------------------------------------------------------------------------------
// 1. A whole session.

#[tokio::test]
async fn a_session_runs_over_the_in_memory_transport_from_join_to_teardown() {
    local(async {
        let endpoint = endpoint(Config::default());
        let hub = endpoint.hub().clone();
        let (mut client, server) = connect(&endpoint);
        let id = client.session.clone();
        assert_eq!(id.len(), 21, "a default session id: {id}");
        assert_eq!(hub.session_count(), 1, "accepting registers the session");

        let request = client.send_join(LIFECYCLE, json!({"token": "t1-full", "start": 3}));
        assert_eq!(
            client.recv().await,
            join_answer(&id, LIFECYCLE, json!({"value": 3}), &request)
        );
        assert_eq!(hub.sessions_of(LIFECYCLE), vec![id.clone()]);

        let request = client.send_commit(LIFECYCLE, "set", json!([10]));
        assert_eq!(
            client.recv().await,
            mutation_answer(&id, LIFECYCLE, set_value(10), &request)
        );

        assert_eq!(hub.mutate(storex::mutation!(Lifecycle, "increase")), Ok(1));
        assert_eq!(
            client.recv().await,
            push(&id, LIFECYCLE, set_value(11)),
            "a push has no request"
        );

        // The client goes: no close is sent back, the instance terminates, the hub forgets it.
        client.send(Incoming::Closed);
        client.ended_with_its_task(server).await;
        assert_eq!(hub.session_count(), 0);
        assert!(hub.sessions_of(LIFECYCLE).is_empty());
        assert_eq!(events("t1-full"), ["init 3", "terminate 11"]);
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// 2. Frame rules, whatever the transport.

/// Sends `incoming` on a fresh connection of `config`; how the server closed.
async fn close_after(config: Config, incoming: Incoming) -> Close {
    let endpoint = endpoint(config);
    let (mut client, server) = connect(&endpoint);
    client.send(incoming);
    let close = client.closed().await;
    client.ended_with_its_task(server).await;
    assert_eq!(endpoint.hub().session_count(), 0);
    close
}

#[tokio::test]
async fn a_binary_frame_closes_with_1007() {
    local(async {
        let close = close_after(Config::default(), Incoming::Binary).await;
        assert_eq!(close, Close::new(1007, "Payload is malformed."));
    })
    .await;
}

#[tokio::test]
async fn malformed_json_closes_with_1007() {
    local(async {
        for text in [
            "{\"type\": \"ping\"",
            "not json",
            "{\"type\": \"dance\"}",
            "[]",
        ] {
            let close = close_after(Config::default(), Incoming::Text(text.into())).await;
            assert_eq!(
                close,
                Close::new(1007, "Payload is malformed."),
                "for {text}"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn a_text_over_the_frame_limit_closes_with_1009_and_one_at_it_is_answered() {
    local(async {
        let ping = json!({"type": "ping", "request": "r1"}).to_string();
        // (Two configs: a cloned `Config` shares its hub.)
        let config = || Config::default().max_frame_size(ping.len());

        // Exactly at the limit: answered.
        let endpoint = endpoint(config());
        let (mut client, _server) = connect(&endpoint);
        client.send(Incoming::Text(ping.clone()));
        assert_eq!(client.recv().await, pong("r1"));

        // One byte over: closed.
        let over = format!("{ping} ");
        let close = close_after(config(), Incoming::Text(over)).await;
        assert_eq!(close, Close::new(1009, "Frame too large."));
    })
    .await;
}

#[tokio::test]
async fn a_transport_violation_closes_with_its_own_code_and_reason() {
    local(async {
        let violation = Close::new(CloseCode::PROTOCOL_ERROR, "Protocol error: masked frame");
        let close = close_after(Config::default(), Incoming::Violation(violation.clone())).await;
        assert_eq!(close, violation);
    })
    .await;
}

#[tokio::test]
async fn the_idle_limit_closes_with_1000_and_activity_resets_it() {
    local(async {
        let idle = Duration::from_millis(1000);
        let endpoint = endpoint(Config::default().idle_timeout(idle));

        // A silent client is closed after the idle limit, not before.
        let started = Instant::now();
        let (mut silent, _server) = connect(&endpoint);
        assert_eq!(silent.closed().await, Close::new(1000, "Idle timeout."));
        assert_not_before(started, idle, "closed");
        silent.ended().await;

        // A client that only shows it is there (WebSocket pings) for three idle limits stays.
        let (mut present, _server) = connect(&endpoint);
        let started = Instant::now();
        while started.elapsed() < 3 * idle {
            present.send(Incoming::Activity);
            tokio::time::sleep(idle / 5).await;
        }
        present.assert_silent();
        present.ping().await;
        // Then silence closes it, an idle limit after its last frame.
        let last = Instant::now();
        assert_eq!(present.closed().await, Close::new(1000, "Idle timeout."));
        assert_not_before(last, idle, "closed");
        eventually("both sessions gone", || endpoint.hub().session_count() == 0).await;
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// 3.–6. A mutation that hangs.

#[tokio::test]
async fn a_hung_init_times_out_and_the_store_is_not_joined() {
    local(async {
        let limit = Duration::from_millis(200);
        let endpoint = endpoint(Config::default().time_limit(limit));
        let hub = endpoint.hub().clone();
        let (mut client, _server) = connect(&endpoint);
        let id = client.session.clone();

        let started = Instant::now();
        let join = client.send_join(SLOW_HELLO, json!({"token": "t3-slow-init"}));
        event("t3-slow-init", "slow init started").await;
        // A ping sent while init hangs is answered after the join's answer.
        let ping = client.send_ping();
        let answer = client.recv().await;
        assert_not_before(started, limit, "answered");
        assert_eq!(
            answer,
            error_answer(
                &id,
                SLOW_HELLO,
                "init of store Transport.SlowHello did not finish within 200ms",
                &join
            )
        );
        assert_eq!(client.recv().await, pong(&ping));
        assert_eq!(hub.sessions_of(SLOW_HELLO), Vec::<String>::new());
        // The connection goes on.
        let joined = client
            .join(LIFECYCLE, json!({"token": "t3-after-slow-init"}))
            .await;
        assert_eq!(joined["type"], "join", "{joined}");
    })
    .await;
}

#[tokio::test]
async fn a_hung_mutation_times_out_rolls_back_and_answers_stay_in_order() {
    local(async {
        let limit = Duration::from_millis(200);
        let endpoint = endpoint(Config::default().time_limit(limit));
        let (mut client, _server) = connect(&endpoint);
        let id = client.session.clone();
        client
            .join(LIFECYCLE, json!({"token": "t3-timeout", "start": 1}))
            .await;

        let started = Instant::now();
        let hung = client.hang_a_mutation("t3-timeout", 5).await;
        // A ping sent while the mutation hangs is answered after the mutation's answer.
        let ping = client.send_ping();
        let answer = client.recv().await;
        assert_not_before(started, limit, "answered");
        assert_eq!(
            answer,
            error_answer(
                &id,
                LIFECYCLE,
                "mutation \"set_then_hang\" of store Transport.Lifecycle did not finish within \
                 200ms; the state is unchanged",
                &hung
            )
        );
        assert_eq!(client.recv().await, pong(&ping));

        // The state is the one before the mutation.
        let rejoin = client.join(LIFECYCLE, json!({"token": "t3-timeout"})).await;
        assert_eq!(rejoin["data"], json!({"value": 1}));
        let increase = client.commit(LIFECYCLE, "increase", json!([])).await;
        assert_eq!(increase["diff"], set_value(2));
        // The connection goes on.
        client.ping().await;
    })
    .await;
}

#[tokio::test]
async fn a_client_closing_during_a_hung_mutation_ends_the_session_at_once() {
    local(async {
        let endpoint = endpoint(Config::default().time_limit(Duration::from_secs(3600)));
        let hub = endpoint.hub().clone();
        let (mut client, server) = connect(&endpoint);
        client
            .join(LIFECYCLE, json!({"token": "t4-close", "start": 7}))
            .await;
        client.hang_a_mutation("t4-close", 8).await;

        client.send(Incoming::Closed);
        // Well before the hour: the mutation is dropped (rolled back), terminate sees 7.
        client.ended().await;
        tokio::time::timeout(PATIENCE, server)
            .await
            .expect("the serving task ends promptly")
            .expect("the serving task ends normally");
        assert_eq!(hub.session_count(), 0);
        assert_eq!(
            events("t4-close"),
            ["init 7", "started set_then_hang 8", "terminate 7"]
        );
    })
    .await;
}

#[tokio::test]
async fn the_idle_limit_closes_a_connection_whose_mutation_hangs() {
    local(async {
        let idle = Duration::from_millis(300);
        // Without resume: the session ends with its connection (tests/resume.rs has the rest).
        let config = Config::default()
            .time_limit(Duration::from_secs(3600))
            .idle_timeout(idle)
            .resume_ttl(Duration::ZERO);
        let endpoint = endpoint(config);
        let (mut client, _server) = connect(&endpoint);
        client.join(LIFECYCLE, json!({"token": "t5-idle"})).await;
        let started = Instant::now();
        client.hang_a_mutation("t5-idle", 4).await;

        assert_eq!(client.closed().await, Close::new(1000, "Idle timeout."));
        assert_not_before(started, idle, "closed");
        client.ended().await;
        eventually("the session is gone", || {
            endpoint.hub().session_count() == 0
        })
        .await;
        assert_eq!(
            events("t5-idle"),
            ["init 0", "started set_then_hang 4", "terminate 0"]
        );
    })
    .await;
}

#[tokio::test]
async fn inbox_overload_closes_a_connection_whose_mutation_hangs() {
    local(async {
        let config = Config::default()
            .time_limit(Duration::from_secs(3600))
            .inbox_capacity(1)
            .resume_ttl(Duration::ZERO);
        let endpoint = endpoint(config);
        let hub = endpoint.hub().clone();
        let (mut client, _server) = connect(&endpoint);
        client
            .join(LIFECYCLE, json!({"token": "t5-overload"}))
            .await;
        client.hang_a_mutation("t5-overload", 6).await;

        // The first waits in the inbox; the second finds it full.
        assert_eq!(hub.mutate(storex::mutation!(Lifecycle, "increase")), Ok(1));
        assert_eq!(hub.mutate(storex::mutation!(Lifecycle, "increase")), Ok(0));
        assert_eq!(
            client.closed().await,
            Close::new(1008, "Too many pending messages: the client does not read.")
        );
        client.ended().await;
        eventually("the session is gone", || hub.session_count() == 0).await;
        // Neither the hung mutation nor the queued ones changed the state terminate sees.
        assert_eq!(
            events("t5-overload"),
            ["init 0", "started set_then_hang 6", "terminate 0"]
        );
    })
    .await;
}

#[tokio::test]
async fn mutate_session_answers_timed_out_instead_of_waiting_forever() {
    local(async {
        let limit = Duration::from_millis(200);
        let endpoint = endpoint(Config::default().time_limit(limit));
        let hub = endpoint.hub().clone();
        let (mut client, _server) = connect(&endpoint);
        let id = client.session.clone();
        client
            .join(LIFECYCLE, json!({"token": "t6-session", "start": 2}))
            .await;

        let answer = tokio::time::timeout(
            PATIENCE,
            hub.mutate_session(&id, storex::mutation!(Lifecycle, "set_then_hang", 9)),
        )
        .await
        .expect("mutate_session answers within the patience");
        assert_eq!(
            answer,
            Err(HubError::Mutation(MutationError::TimedOut {
                store: LIFECYCLE,
                mutation: "set_then_hang".into(),
                limit,
            }))
        );
        // No push was sent (nothing changed), the state is as before, the session goes on.
        client.assert_silent();
        assert_eq!(
            hub.mutate_session(&id, storex::mutation!(Lifecycle, "increase"))
                .await,
            Ok(None)
        );
        assert_eq!(client.recv().await, push(&id, LIFECYCLE, set_value(3)));
    })
    .await;
}

#[tokio::test]
async fn a_push_queued_behind_a_hung_mutation_applies_to_the_rolled_back_state() {
    local(async {
        let endpoint = endpoint(Config::default().time_limit(Duration::from_millis(200)));
        let hub = endpoint.hub().clone();
        let (mut client, _server) = connect(&endpoint);
        let id = client.session.clone();
        client
            .join(LIFECYCLE, json!({"token": "t3-push", "start": 1}))
            .await;
        let hung = client.hang_a_mutation("t3-push", 40).await;

        assert_eq!(hub.mutate(storex::mutation!(Lifecycle, "increase")), Ok(1));
        let answer = client.recv().await;
        assert_eq!(
            (&answer["type"], &answer["request"]),
            (&json!("error"), &json!(hung))
        );
        assert_eq!(
            client.recv().await,
            push(&id, LIFECYCLE, set_value(2)),
            "the push comes after the answer and starts from the value before the hung mutation"
        );
    })
    .await;
}

#[tokio::test]
async fn mutate_session_answers_gone_when_the_session_ends_before_running_it() {
    local(async {
        let endpoint = endpoint(Config::default().time_limit(Duration::from_secs(3600)));
        let hub = endpoint.hub().clone();
        let (mut client, _server) = connect(&endpoint);
        let id = client.session.clone();
        client.join(LIFECYCLE, json!({"token": "t6-gone"})).await;
        client.hang_a_mutation("t6-gone", 1).await;

        // Queued behind the hung mutation (the first poll queues it); then the client goes.
        let mut waiting =
            std::pin::pin!(hub.mutate_session(&id, storex::mutation!(Lifecycle, "increase")));
        assert!(futures_util::poll!(waiting.as_mut()).is_pending());
        client.send(Incoming::Closed);
        let answer = tokio::time::timeout(PATIENCE, waiting)
            .await
            .expect("mutate_session answers when the session ends");
        assert_eq!(answer, Err(HubError::Gone(id.clone())));
        client.ended().await;
        assert_eq!(
            events("t6-gone"),
            ["init 0", "started set_then_hang 1", "terminate 0"]
        );
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// 7. Graceful stop.

#[tokio::test]
async fn a_graceful_stop_closes_every_session_with_1001_and_refuses_new_ones() {
    local(async {
        let endpoint = endpoint(Config::default());
        let hub = endpoint.hub().clone();
        let (mut a, server_a) = connect(&endpoint);
        let (mut b, server_b) = connect(&endpoint);
        a.join(LIFECYCLE, json!({"token": "t7-stop-a", "start": 1}))
            .await;
        b.join(LIFECYCLE, json!({"token": "t7-stop-b", "start": 2}))
            .await;
        assert_eq!(hub.session_count(), 2);

        tokio::time::timeout(PATIENCE, hub.stop())
            .await
            .expect("the stop completes");
        assert!(hub.is_stopping());
        assert_eq!(hub.session_count(), 0);
        for client in [&mut a, &mut b] {
            assert_eq!(
                client.closed().await,
                Close::new(1001, "The server is stopping.")
            );
            client.ended().await;
        }
        server_a.await.expect("the serving task ends normally");
        server_b.await.expect("the serving task ends normally");
        assert_eq!(events("t7-stop-a"), ["init 1", "terminate 1"]);
        assert_eq!(events("t7-stop-b"), ["init 2", "terminate 2"]);

        let refusal = endpoint
            .accept(&storex::ConnectRequest::default(), Extensions::new())
            .expect_err("no new session while stopping");
        assert_eq!(refusal.status, 503);
        assert_eq!(hub.session_count(), 0);
    })
    .await;
}

#[tokio::test]
async fn a_graceful_stop_lets_a_hung_mutation_run_into_its_time_limit_first() {
    local(async {
        let limit = Duration::from_millis(200);
        let endpoint = endpoint(Config::default().time_limit(limit));
        let hub = endpoint.hub().clone();
        let (mut client, _server) = connect(&endpoint);
        let id = client.session.clone();
        client
            .join(LIFECYCLE, json!({"token": "t7-stop-hung", "start": 1}))
            .await;
        // Before the mutation starts: its time limit runs out after this instant.
        let started = Instant::now();
        let hung = client.hang_a_mutation("t7-stop-hung", 2).await;

        tokio::time::timeout(PATIENCE, hub.stop())
            .await
            .expect("the stop completes, bounded by the time limit");
        assert_not_before(started, limit, "the stop completed");
        // What was running is finished (and answered) first, then the session is closed.
        let answer = client.recv().await;
        assert_eq!(answer["type"], "error", "{answer}");
        assert_eq!(answer["request"], json!(hung));
        assert_eq!(answer["session"], json!(id));
        assert_eq!(
            client.closed().await,
            Close::new(1001, "The server is stopping.")
        );
        client.ended().await;
        assert_eq!(
            events("t7-stop-hung"),
            ["init 1", "started set_then_hang 2", "terminate 1"]
        );
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// 8. Teardown nothing skips, and panics.

#[tokio::test]
async fn aborting_the_serving_task_during_a_hung_mutation_tears_the_session_down() {
    local(async {
        let endpoint = endpoint(Config::default().time_limit(Duration::from_secs(3600)));
        let hub = endpoint.hub().clone();
        let (mut client, server) = connect(&endpoint);
        client
            .join(LIFECYCLE, json!({"token": "t8-abort", "start": 5}))
            .await;
        client.hang_a_mutation("t8-abort", 50).await;

        abort(server).await;
        assert_eq!(hub.session_count(), 0);
        assert!(hub.sessions_of(LIFECYCLE).is_empty());
        // The sync terminate ran in the drop, on the rolled-back state.
        assert_eq!(
            events("t8-abort"),
            ["init 5", "started set_then_hang 50", "terminate 5"]
        );
        // Nothing was sent: the transport was dropped.
        client.ended().await;
    })
    .await;
}

#[tokio::test]
async fn dropping_the_serve_future_tears_the_session_down_at_once() {
    local(async {
        let endpoint = endpoint(Config::default());
        let hub = endpoint.hub().clone();
        let (accepted, transport, mut client) = accept(&endpoint, false);
        let serve = accepted.serve(transport);
        tokio::select! {
            () = serve => panic!("the connection ended by itself"),
            answer = client.join(LIFECYCLE, json!({"token": "t8-drop", "start": 4})) => {
                assert_eq!(answer["data"], json!({"value": 4}));
            }
        }
        // `serve` is dropped: no await in between.
        assert_eq!(hub.session_count(), 0);
        assert_eq!(events("t8-drop"), ["init 4", "terminate 4"]);
        client.ended().await;
    })
    .await;
}

#[tokio::test]
async fn an_unserved_accepted_connection_forgets_its_session_when_dropped() {
    local(async {
        let endpoint = endpoint(Config::default());
        let (accepted, _transport, _client) = accept(&endpoint, false);
        assert_eq!(endpoint.hub().session_count(), 1);
        drop(accepted);
        assert_eq!(endpoint.hub().session_count(), 0);
    })
    .await;
}

/// When the task is dropped during an async terminate, the stores after it still terminate:
/// `Connection::close` takes them out one at a time, so `Drop for Connection` finds the rest.
#[tokio::test]
async fn a_task_dropped_during_an_async_terminate_still_terminates_the_other_stores() {
    local(async {
        let endpoint = endpoint(Config::default().time_limit(Duration::from_secs(3600)));
        let hub = endpoint.hub().clone();
        let (mut client, server) = connect(&endpoint);
        client
            .join(SLOW_GOODBYE, json!({"token": "t8-slow-goodbye"}))
            .await;
        client
            .join(LIFECYCLE, json!({"token": "t8-after-slow", "start": 3}))
            .await;

        client.send(Incoming::Closed);
        event("t8-slow-goodbye", "slow terminate started").await;
        abort(server).await;
        assert_eq!(hub.session_count(), 0);
        assert_eq!(
            events("t8-after-slow"),
            ["init 3", "terminate 3"],
            "the store joined after the one whose terminate was cut short was never terminated"
        );
    })
    .await;
}

/// A join answered with an error (the state does not serialize) keeps no instance: the session
/// is not among the store's sessions and gets no pushes of a store it never got the state of.
#[tokio::test]
async fn a_join_answered_with_an_error_leaves_the_store_unjoined() {
    local(async {
        let endpoint = endpoint(Config::default());
        let hub = endpoint.hub().clone();
        let (mut client, _server) = connect(&endpoint);
        let answer = client.join(FRAGILE, json!({"lit": true})).await;
        assert_eq!(answer["type"], "error", "{answer}");
        assert_eq!(
            hub.sessions_of(FRAGILE),
            Vec::<String>::new(),
            "a session whose join was refused holds no instance of the store"
        );
        assert_eq!(
            hub.mutate(storex::mutation!(Fragile, "increase")),
            Ok(0),
            "a server-side mutation reaches no session that did not join"
        );
    })
    .await;
}

#[tokio::test]
async fn a_state_that_cannot_serialize_after_a_mutation_answers_an_error_and_rolls_back() {
    local(async {
        let endpoint = endpoint(Config::default());
        let (mut client, server) = connect(&endpoint);
        let id = client.session.clone();
        let joined = client.join(FRAGILE, json!({"token": "t8-fragile"})).await;
        assert_eq!(joined["data"], json!({"value": 0, "fuse": false}));

        let request = client.send_commit(FRAGILE, "light", json!([]));
        let ping = client.send_ping();
        assert_eq!(
            client.recv().await,
            error_answer(
                &id,
                FRAGILE,
                "mutation \"light\" of store Transport.Fragile failed unexpectedly (it panicked)",
                &request
            )
        );
        assert_eq!(client.recv().await, pong(&ping));

        // Rolled back: the state serializes, and the value is the old one.
        let rejoin = client.join(FRAGILE, json!({})).await;
        assert_eq!(rejoin["data"], json!({"value": 0, "fuse": false}));
        let increase = client.commit(FRAGILE, "increase", json!([])).await;
        assert_eq!(increase["diff"], set_value(1));

        client.send(Incoming::Closed);
        client.ended_with_its_task(server).await;
        assert_eq!(events("t8-fragile"), ["terminate 1"]);
    })
    .await;
}

#[tokio::test]
async fn a_join_whose_state_cannot_serialize_answers_an_error() {
    local(async {
        let endpoint = endpoint(Config::default());
        let (mut client, _server) = connect(&endpoint);
        let id = client.session.clone();
        let request = client.send_join(FRAGILE, json!({"token": "t8-lit", "lit": true}));
        assert_eq!(
            client.recv().await,
            error_answer(
                &id,
                FRAGILE,
                "The state of store Transport.Fragile cannot be serialized: serializing it panicked",
                &request
            )
        );
        // The connection goes on.
        client.ping().await;
        let joined = client.join(LIFECYCLE, json!({})).await;
        assert_eq!(joined["data"], json!({"value": 0}));
    })
    .await;
}

#[tokio::test]
async fn a_panic_outside_the_guards_closes_only_its_connection_with_1011() {
    local(async {
        let endpoint = endpoint(Config::default().time_limit(Duration::from_millis(200)));
        let hub = endpoint.hub().clone();
        let (mut bystander, _bystander_server) = connect(&endpoint);
        bystander
            .join(MINEFIELD, json!({"token": "t8-bystander"}))
            .await;
        let (mut client, server) = connect(&endpoint);
        client.join(MINEFIELD, json!({"token": "t8-mine"})).await;

        // The mutation arms the live state's mine and hangs; at the time limit the rollback
        // drops the armed mine, outside the guards around the mutation itself.
        client.send_commit(MINEFIELD, "arm_then_hang", json!([]));
        assert_eq!(client.closed().await, Close::new(1011, "Internal error."));
        client.ended_with_its_task(server).await;
        assert_eq!(events("t8-mine"), ["armed", "terminate 0 armed=false"]);

        // The other connection goes on.
        assert_eq!(hub.session_count(), 1);
        bystander.ping().await;
        assert_eq!(hub.sessions_of(MINEFIELD), vec![bystander.session.clone()]);
    })
    .await;
}

#[tokio::test]
async fn a_client_that_does_not_read_is_dropped_after_the_send_timeout() {
    local(async {
        let send = Duration::from_millis(200);
        let config = Config::default()
            .send_timeout(send)
            .resume_ttl(Duration::ZERO);
        let endpoint = endpoint(config);
        let hub = endpoint.hub().clone();
        let (accepted, transport, mut client) = accept(&endpoint, true);
        let server = tokio::task::spawn_local(accepted.serve(transport));
        let started = Instant::now();
        client.send_join(LIFECYCLE, json!({"token": "t-stalled", "start": 1}));
        // The answer cannot be handed over: the connection is dropped without a close.
        client.ended().await;
        assert_not_before(started, send, "dropped");
        server.await.expect("the serving task ends normally");
        assert_eq!(hub.session_count(), 0);
        assert_eq!(events("t-stalled"), ["init 1", "terminate 1"]);
    })
    .await;
}

#[tokio::test]
async fn a_close_the_transport_cannot_deliver_is_bounded_by_the_send_timeout() {
    local(async {
        let config = Config::default()
            .send_timeout(Duration::from_millis(200))
            .idle_timeout(Duration::from_millis(200));
        let endpoint = endpoint(config);
        let (accepted, transport, mut client) = accept(&endpoint, true);
        let server = tokio::task::spawn_local(accepted.serve(transport));
        // The idle limit closes it; the close never goes through; the session ends anyway.
        client.ended_with_its_task(server).await;
        assert_eq!(endpoint.hub().session_count(), 0);
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// 9. Admission and the HTTP join.

fn request(headers: &[(&str, &str)], query: &[(&str, &str)]) -> ConnectRequest {
    let pairs = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
    };
    ConnectRequest::new(pairs(headers), pairs(query), None)
}

#[tokio::test]
async fn admission_refuses_other_origins_and_sends_non_error_refusals_as_403() {
    let endpoint = endpoint(Config::default().allowed_origins(["https://app.example"]));
    let evil = request(&[("Origin", "https://evil.example")], &[]);
    let refusal = endpoint
        .admit(&evil, RequestKind::Connection)
        .expect_err("another origin is refused");
    assert_eq!(refusal.status, 403);
    let good = request(&[("Origin", "https://app.example")], &[]);
    assert!(endpoint.admit(&good, RequestKind::Connection).is_ok());
    assert_eq!(
        endpoint
            .admit(&evil, RequestKind::HttpJoin)
            .err()
            .map(|refusal| refusal.status),
        Some(403),
        "the origin policy is for HTTP joins from pages too"
    );
    for kind in [RequestKind::Connection, RequestKind::HttpJoin] {
        assert!(
            endpoint.admit(&request(&[], &[]), kind).is_ok(),
            "no Origin: not a browser"
        );
    }

    let hooked = endpoint_with_hook(200);
    let refusal = hooked
        .admit(&request(&[], &[]), RequestKind::Connection)
        .expect_err("the hook refuses");
    assert_eq!(
        refusal,
        Refusal {
            status: 403,
            message: "no (said with 200)".into()
        }
    );
    let refusal = endpoint_with_hook(401)
        .admit(&request(&[], &[]), RequestKind::HttpJoin)
        .expect_err("the hook refuses");
    assert_eq!(refusal.status, 401, "an error status is kept");
}

fn endpoint_with_hook(status: u16) -> Endpoint {
    endpoint(Config::default().on_connect(move |_| {
        Err(Refusal {
            status,
            message: format!("no (said with {status})"),
        })
    }))
}

#[tokio::test]
async fn http_join_answers_the_state_or_an_error() {
    let endpoint = endpoint(Config::default());
    let hub = endpoint.hub().clone();
    let params = json!({"token": "t9-http", "start": 12}).to_string();
    let joined = endpoint
        .http_join(
            &request(&[], &[("store", LIFECYCLE), ("params", &params)]),
            Extensions::new(),
        )
        .await;
    assert_eq!(joined.status, 200);
    let body: Value = serde_json::from_str(&joined.body).expect("JSON");
    assert_eq!(
        body,
        json!({"type": "join", "session": "SSR", "store": LIFECYCLE, "data": {"value": 12}})
    );
    assert_eq!(events("t9-http"), ["init 12", "terminate 12"]);
    assert_eq!(hub.session_count(), 0, "an HTTP join is no session");

    let cases = [
        (
            vec![("store", "Transport.Nope")],
            "Transport.Nope",
            "Store 'Transport.Nope' is not defined or can't be compiled.",
        ),
        (
            vec![("store", LIFECYCLE), ("params", r#"{"refuse": true}"#)],
            LIFECYCLE,
            "Refused by init.",
        ),
        (
            vec![("store", FRAGILE), ("params", r#"{"lit": true}"#)],
            FRAGILE,
            "The state of store Transport.Fragile cannot be serialized: serializing it panicked",
        ),
        (vec![], "", "Store is not set."),
    ];
    for (query, store, error) in cases {
        let answer = endpoint
            .http_join(&request(&[], &query), Extensions::new())
            .await;
        assert_eq!(answer.status, 400, "for {query:?}");
        let body: Value = serde_json::from_str(&answer.body).expect("JSON");
        assert_eq!(
            body,
            json!({"type": "error", "session": "SSR", "store": store, "error": error}),
            "for {query:?}"
        );
    }

    let answer = endpoint
        .http_join(
            &request(&[], &[("store", LIFECYCLE), ("params", "{nope")]),
            Extensions::new(),
        )
        .await;
    assert_eq!(answer.status, 400);
    let body: Value = serde_json::from_str(&answer.body).expect("JSON");
    let error = body["error"].as_str().expect("an error message");
    assert!(
        error.starts_with("The params query parameter is not JSON: "),
        "{body}"
    );
}
