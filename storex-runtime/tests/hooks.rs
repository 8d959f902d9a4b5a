//! Middleware around mutations over a real WebSocket: before hooks refuse, hooks run in the
//! order they were added (per-store ones only for their store), after hooks see the outcome and
//! the diff, server-side mutations go through the same hooks marked as such, and a panicking
//! hook neither takes the connection down nor lets a mutation through.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};

use common::stores::{Counter, Other};
use common::TestServer;
use serde_json::{json, Value};
use storex::hooks::{MutationOutcome, Source};
use storex::{Config, HubError, MutationError};

const COUNTER: &str = "Test.Counter";
const OTHER: &str = "Test.Other";

/// What the hooks of one test saw, in order.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    fn push(&self, line: String) {
        self.0.lock().unwrap().push(line);
    }

    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

fn outcome_text(outcome: &MutationOutcome<'_>) -> String {
    match outcome {
        MutationOutcome::Applied { diff, reply } => format!(
            "applied {} {}",
            serde_json::to_string(diff).unwrap(),
            reply.map_or("-".to_owned(), Value::to_string)
        ),
        MutationOutcome::Failed(error) => format!("failed {error}"),
        MutationOutcome::Refused(message) => format!("refused {message}"),
        _ => "other".to_owned(),
    }
}

#[actix_rt::test]
async fn a_before_hook_refuses_with_its_message_and_the_state_stays() {
    let config = Config::default().before_mutation(|event| {
        let number = event.args().first().and_then(Value::as_i64).unwrap_or(0);
        if event.name() == "set" && number > 100 {
            return Err(format!("{number} is more than you may set"));
        }
        Ok(())
    });
    let server = TestServer::start(config);
    let mut client = server.connect().await;
    client.join(COUNTER, json!({})).await;

    let answer = client.commit(COUNTER, "set", json!([500])).await;
    assert_eq!(answer["type"], "error", "{answer}");
    assert_eq!(answer["error"], "500 is more than you may set");
    assert_eq!(answer["version"], 0, "nothing changed: {answer}");

    let answer = client.commit(COUNTER, "set", json!([50])).await;
    assert_eq!(answer["diff"], common::stores::counter_diff(50), "{answer}");
    client.expect_quiet().await;
}

#[actix_rt::test]
async fn hooks_run_in_order_and_per_store_hooks_only_for_their_store() {
    let log = Log::default();
    let (a, b, c, d, e) = (
        log.clone(),
        log.clone(),
        log.clone(),
        log.clone(),
        log.clone(),
    );
    let config = Config::default()
        .before_mutation(move |event| {
            a.push(format!("A {} {}", event.store(), event.name()));
            Ok(())
        })
        .before_mutation_of::<Counter>(move |event| {
            b.push(format!("B {} {}", event.store(), event.name()));
            Ok(())
        })
        .after_mutation(move |event, outcome| {
            c.push(format!("C {} {}", event.name(), outcome_text(outcome)));
        })
        .before_mutation(move |event| {
            d.push(format!("D {:?} {}", event.source(), event.args().len()));
            Ok(())
        })
        .after_mutation_of::<Other>(move |event, outcome| {
            e.push(format!("E {} {}", event.name(), outcome_text(outcome)));
        });
    let server = TestServer::start(config);
    let mut client = server.connect().await;
    client.join(COUNTER, json!({})).await;
    client.join(OTHER, json!({})).await;
    assert!(log.take().is_empty(), "joins run no mutation hook");

    client.commit(COUNTER, "set", json!([3])).await;
    assert_eq!(
        log.take(),
        [
            "A Test.Counter set",
            "B Test.Counter set",
            "D Client 1",
            r#"C set applied [{"a":"u","p":["counter"],"t":3}] -"#,
        ]
    );

    client.commit(OTHER, "set", json!([9])).await;
    assert_eq!(
        log.take(),
        [
            "A Test.Other set",
            "D Client 1",
            r#"C set applied [{"a":"u","p":["value"],"t":9}] -"#,
            r#"E set applied [{"a":"u","p":["value"],"t":9}] -"#,
        ]
    );

    // A failing mutation: the after hooks see its error; a reply is seen too.
    client.commit(COUNTER, "set", json!([-1])).await;
    client.commit(COUNTER, "decrease", json!([])).await;
    let lines = log.take();
    assert_eq!(lines[3], "C set failed -1 is below zero", "{lines:?}");
    assert_eq!(
        lines[7], r#"C decrease applied [{"a":"u","p":["counter"],"t":2}] "message""#,
        "{lines:?}"
    );
}

#[actix_rt::test]
async fn server_side_mutations_go_through_the_hooks_marked_as_such() {
    let log = Log::default();
    let (before, after) = (log.clone(), log.clone());
    let config = Config::default()
        .before_mutation(move |event| {
            before.push(format!(
                "before {:?} {} {}",
                event.source(),
                event.session().id(),
                event.name()
            ));
            if event.source() == Source::Server && event.args() == [json!(13)] {
                return Err("13 is unlucky".into());
            }
            Ok(())
        })
        .after_mutation(move |event, outcome| {
            after.push(format!(
                "after {:?} {}",
                event.source(),
                outcome_text(outcome)
            ));
        });
    let server = TestServer::start(config);
    let mut client = server.connect().await;
    client.join(COUNTER, json!({})).await;
    let session = client.session.clone().unwrap();
    log.take();

    let reply = server
        .hub
        .mutate_session(&session, storex::mutation!(Counter, "set", 7))
        .await;
    assert_eq!(reply, Ok(None));
    let push = client.recv().await;
    assert_eq!(push["diff"], common::stores::counter_diff(7), "{push}");
    assert_eq!(
        log.take(),
        [
            format!("before Server {session} set"),
            r#"after Server applied [{"a":"u","p":["counter"],"t":7}] -"#.to_owned(),
        ]
    );

    let refused = server
        .hub
        .mutate_session(&session, storex::mutation!(Counter, "set", 13))
        .await;
    assert_eq!(
        refused,
        Err(HubError::Mutation(MutationError::Refused(
            "13 is unlucky".into()
        )))
    );
    assert_eq!(log.take()[1], "after Server refused 13 is unlucky");
    client.expect_quiet().await;

    // The same mutation from the client is not the server's: the hook lets it through.
    let answer = client.commit(COUNTER, "set", json!([13])).await;
    assert_eq!(answer["diff"], common::stores::counter_diff(13), "{answer}");
    assert_eq!(log.take()[0], format!("before Client {session} set"));
}

#[actix_rt::test]
async fn a_panicking_hook_refuses_the_mutation_and_the_connection_goes_on() {
    let log = Log::default();
    let after = log.clone();
    let config = Config::default()
        .before_mutation(|event| {
            if event.name() == "decrease" {
                panic!("a before hook that panics (expected by the test)");
            }
            Ok(())
        })
        .after_mutation(|event, _| {
            if event.args() == [json!(5)] {
                panic!("an after hook that panics (expected by the test)");
            }
        })
        .after_mutation(move |event, outcome| {
            after.push(format!("{} {}", event.name(), outcome_text(outcome)));
        });
    let server = TestServer::start(config);
    let mut client = server.connect().await;
    client.join(COUNTER, json!({})).await;

    let answer = client.commit(COUNTER, "decrease", json!([])).await;
    assert_eq!(answer["type"], "error", "{answer}");
    assert_eq!(
        answer["error"],
        "Mutation refused: a hook failed unexpectedly."
    );
    assert_eq!(
        log.take(),
        ["decrease refused Mutation refused: a hook failed unexpectedly."]
    );

    // The after hook that panics: the mutation stands, the next hooks still run, the answer goes.
    let answer = client.commit(COUNTER, "set", json!([5])).await;
    assert_eq!(answer["diff"], common::stores::counter_diff(5), "{answer}");
    assert_eq!(
        log.take(),
        [r#"set applied [{"a":"u","p":["counter"],"t":5}] -"#]
    );
    let answer = client.commit(COUNTER, "increase", json!([])).await;
    assert_eq!(answer["diff"], common::stores::counter_diff(6), "{answer}");
}

#[tokio::test]
async fn the_test_kit_runs_a_configs_hooks_as_its_endpoint_does() {
    let log = Log::default();
    let seen = log.clone();
    let config = Config::default()
        .before_mutation(|event| match event.name() {
            "set" if event.source() == Source::Client => Err("set is the server's".into()),
            _ => Ok(()),
        })
        .after_mutation(move |event, outcome| {
            seen.push(format!("{:?} {}", event.source(), outcome_text(outcome)));
        });
    let mut store = storex::testing::TestStore::<Counter>::joining()
        .hooks(&config)
        .join()
        .await
        .unwrap();
    let refused = store.commit("set", [json!(5)]).await;
    assert_eq!(
        refused.unwrap_err(),
        MutationError::Refused("set is the server's".into())
    );
    assert_eq!(store.state().counter, 0);
    let pushed = store.push(storex::mutation!(Counter, "set", 5)).await;
    assert!(pushed.message.is_some(), "the server may");
    assert_eq!(store.state().counter, 5);
    assert_eq!(
        log.take(),
        [
            "Client refused set is the server's",
            r#"Server applied [{"a":"u","p":["counter"],"t":5}] -"#,
        ]
    );
    // Without `hooks`, nothing runs around the mutations.
    let mut plain = storex::testing::TestStore::<Counter>::join().await.unwrap();
    plain.commit("set", [json!(5)]).await.unwrap();
    assert!(log.take().is_empty());
}
