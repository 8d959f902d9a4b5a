//! The test kit (`storex::testing`): a store driven without a server, as a server drives it;
//! its frames are the frames a real server sends; attached to a hub, it is a live session that
//! server code reaches.

mod common;

use std::time::Duration;

use common::stores::{counter_diff, terminated, Counter, User, Whoami};
use common::TestServer;
use serde::Serialize;
use serde_json::{json, Value};
use storex::testing::{TestError, TestStore};
use storex::{Config, Hub, HubError, JoinError, MutationError, NameError, Store};

const COUNTER: &str = "Test.Counter";

/// A store whose init never finishes: only a time limit ends its join.
#[derive(Store, Serialize, Clone, Debug)]
#[store(name = "Test.Testing.Stuck")]
pub struct Stuck {
    never: bool,
}

#[storex::mutations]
impl Stuck {
    #[init]
    async fn init() -> Self {
        std::future::pending::<()>().await;
        Stuck { never: true }
    }
}

#[tokio::test]
async fn join_runs_init_with_the_params_the_session_values_and_the_id() {
    let store = TestStore::<Counter>::joining()
        .params(json!({"start": 5, "key": "user_42"}))
        .session_id("testing-join")
        .join()
        .await
        .unwrap();
    assert_eq!(store.state().counter, 5);
    assert_eq!(
        store.state_json().unwrap(),
        json!({"counter": 5, "blob": ""})
    );
    assert_eq!(store.key(), Some("user_42"));
    assert_eq!(store.session().id(), "testing-join");
    assert_eq!(store.params().get::<i64>("start"), Some(5));
    assert_eq!((store.version(), store.epoch().len()), (0, 16));

    let whoami = TestStore::<Whoami>::joining()
        .extension(User("ada".into()))
        .join()
        .await
        .unwrap();
    assert_eq!(whoami.state().user, "ada");
    // A random session id by default, as a server gives.
    assert_eq!(whoami.session().id().len(), 21);
    assert_ne!(
        whoami.session().id(),
        TestStore::<Whoami>::joining()
            .extension(User("bob".into()))
            .join()
            .await
            .unwrap()
            .session()
            .id()
    );
}

#[tokio::test]
async fn a_failed_join_says_why_as_a_client_reads_it() {
    let refused = TestStore::<Whoami>::join().await.unwrap_err();
    assert_eq!(
        refused,
        TestError::Join(JoinError::Refused("Unauthorized".into()))
    );
    assert_eq!(refused.to_string(), "Unauthorized");

    let refused = TestStore::<Counter>::joining()
        .params(json!({"refuse": true}))
        .join()
        .await
        .unwrap_err();
    assert_eq!(refused.to_string(), "Unauthorized");

    let panicked = TestStore::<common::stores::PanicInit>::join()
        .await
        .unwrap_err();
    assert_eq!(
        panicked,
        TestError::Join(JoinError::Panicked {
            store: "Test.PanicInit"
        })
    );

    let limit = Duration::from_millis(50);
    let stuck = TestStore::<Stuck>::joining()
        .time_limit(limit)
        .join()
        .await
        .unwrap_err();
    assert_eq!(
        stuck,
        TestError::Join(JoinError::TimedOut {
            store: "Test.Testing.Stuck",
            limit
        })
    );
}

#[tokio::test]
async fn a_commit_answers_its_diff_and_reply_and_a_failed_one_changes_nothing() {
    let mut store = TestStore::<Counter>::join().await.unwrap();
    assert_eq!(store.last(), None);

    let applied = store.commit("set", [json!(10)]).await.unwrap();
    assert_eq!(
        serde_json::to_value(&applied.diff).unwrap(),
        counter_diff(10)
    );
    assert_eq!(applied.reply, None);
    assert_eq!(store.last_diff_json(), Some(counter_diff(10)));
    assert_eq!(store.state().counter, 10);
    assert_eq!(store.version(), 1);

    store.commit("decrease", []).await.unwrap();
    assert_eq!(store.last_reply(), Some(&json!("message")));
    assert_eq!(store.last_diff_json(), Some(counter_diff(9)));

    // The mutation's own refusal, an unknown name, arguments that do not fit and a panic are
    // error answers, with the texts a client reads; the state and the version stay.
    let failures = [
        ("set", vec![json!(-1)], "-1 is below zero"),
        (
            "sett",
            vec![json!(1)],
            "No mutation matching \"sett\" with data [1] in store Test.Counter",
        ),
        ("set", vec![json!("ten")], "invalid type"),
        ("set", vec![], "No mutation matching \"set\" with data []"),
        ("panic", vec![], "failed unexpectedly (it panicked)"),
    ];
    for (name, args, expected) in failures {
        let error = store.commit(name, args).await.unwrap_err();
        assert!(
            error.to_string().contains(expected),
            "{name}: {error} should say {expected:?}"
        );
        assert_eq!(store.last_error(), Some(&error));
        assert_eq!((store.last_diff(), store.last_reply()), (None, None));
        assert_eq!((store.state().counter, store.version()), (9, 2));
    }

    // A mutation that changes nothing has an empty diff and keeps the version.
    store.commit("set", [json!(9)]).await.unwrap();
    assert_eq!(store.last_diff_json(), Some(json!([])));
    assert_eq!(store.version(), 2);
}

#[tokio::test]
async fn typed_and_async_commits_run_as_by_name_ones() {
    let mut store = TestStore::<Counter>::joining()
        .time_limit(Duration::from_millis(200))
        .join()
        .await
        .unwrap();
    store
        .commit_typed(storex::mutation!(Counter, "set", 3))
        .await
        .unwrap();
    assert_eq!(store.state().counter, 3);
    let error = store
        .commit_typed(storex::mutation!(Counter, "set", -3))
        .await
        .unwrap_err();
    assert_eq!(error, MutationError::Refused("-3 is below zero".into()));

    let applied = store
        .commit_typed(storex::mutation!(Counter, "slow_set", 8))
        .await
        .unwrap();
    assert_eq!(applied.reply, Some(json!(8)));
    assert_eq!(store.state().counter, 8);

    // The time limit ends an async mutation that takes longer, and the state is as before.
    let error = store
        .commit("sleep_set", [json!(60_000), json!(1)])
        .await
        .unwrap_err();
    assert!(matches!(error, MutationError::TimedOut { .. }), "{error}");
    assert_eq!(store.state().counter, 8);
}

#[actix_rt::test]
async fn a_push_is_the_frame_a_real_server_sends() {
    // The same server-side mutation, in a real session and in a test store.
    let server = TestServer::start(Config::default());
    let mut client = server.connect().await;
    client.join(COUNTER, json!({"start": 1})).await;
    assert_eq!(
        server.hub.mutate(storex::mutation!(Counter, "set", 4)),
        Ok(1)
    );
    let real = client.recv().await;

    let mut store = TestStore::<Counter>::joining()
        .params(json!({"start": 1}))
        .session_id(client.session.clone().unwrap())
        .join()
        .await
        .unwrap();
    let pushed = store.push(storex::mutation!(Counter, "set", 4)).await;
    let mut expected = real.clone();
    expected["epoch"] = json!(store.epoch());
    assert_eq!(pushed.message_json(), Some(expected), "{real}");
    assert_eq!(pushed.diff_json(), Some(counter_diff(4)));
    assert_eq!(store.last_diff_json(), Some(counter_diff(4)));
    let raw = pushed.mutation.as_ref().unwrap();
    assert_eq!(
        (raw.store(), raw.name(), raw.args()),
        (COUNTER, "set", &[json!(4)][..])
    );

    // The join answer too, but for the resume token a server signs.
    let mut answer = client.join(COUNTER, json!({})).await;
    answer["epoch"] = json!(store.epoch());
    assert!(answer["token"].is_string(), "{answer}");
    answer.as_object_mut().unwrap().remove("token");
    let message: Value =
        serde_json::from_str(&store.join_message(Some(answer["request"].clone())).unwrap())
            .unwrap();
    assert_eq!(message, answer);

    // A push that changes nothing, or fails, sends nothing.
    let unchanged = store.push(storex::mutation!(Counter, "set", 4)).await;
    assert_eq!(
        (unchanged.message.as_deref(), unchanged.diff_json()),
        (None, Some(json!([])))
    );
    let failed = store.push(storex::mutation!(Counter, "set", -4)).await;
    assert_eq!(failed.message, None);
    assert_eq!(
        failed.result,
        Err(MutationError::Refused("-4 is below zero".into()))
    );
    assert_eq!(store.state().counter, 4);
}

#[tokio::test]
async fn pushes_by_name_are_checked_against_the_program_s_stores() {
    let mut store = TestStore::<Counter>::join().await.unwrap();
    let pushed = store
        .push_by_name(COUNTER, "set", vec![json!(12)])
        .await
        .unwrap();
    assert_eq!(pushed.message_json().unwrap()["diff"], counter_diff(12));
    assert_eq!(pushed.message_json().unwrap()["version"], json!(1));

    let unknown = store
        .push_by_name(COUNTER, "sett", vec![json!(1)])
        .await
        .unwrap_err();
    assert!(matches!(
        unknown,
        TestError::Name(NameError::UnknownMutation { .. })
    ));
    assert!(unknown.to_string().starts_with(
        "no mutation \"sett\" in store Test.Counter; its mutations are: \"increase\""
    ));
    let arity = store
        .push_by_name(COUNTER, "set", vec![])
        .await
        .unwrap_err();
    assert_eq!(
        arity.to_string(),
        "mutation \"set\" of store Test.Counter takes 1 argument(s), 0 given"
    );
    let nowhere = store
        .push_by_name("Test.Nowhere", "set", vec![])
        .await
        .unwrap_err();
    assert_eq!(nowhere.to_string(), "no store is named \"Test.Nowhere\"");
    let other = store
        .push_by_name("Test.Other", "set", vec![json!(1)])
        .await
        .unwrap_err();
    assert_eq!(
        other,
        TestError::OtherStore {
            expected: COUNTER,
            given: "Test.Other",
            mutation: "set"
        }
    );
    assert_eq!(store.state().counter, 12);
}

#[tokio::test]
async fn attached_to_a_hub_it_is_a_live_session_that_server_code_reaches() {
    let hub = Hub::new();
    let mut ada = TestStore::<Counter>::joining()
        .params(json!({"key": "ada"}))
        .hub(&hub)
        .join()
        .await
        .unwrap();
    let mut bob = TestStore::<Counter>::joining()
        .params(json!({"key": "bob"}))
        .hub(&hub)
        .join()
        .await
        .unwrap();
    assert_eq!(hub.session_count(), 2);
    let mut sessions = vec![ada.session().id().to_owned(), bob.session().id().to_owned()];
    sessions.sort();
    assert_eq!(hub.sessions_of(COUNTER), sessions);

    // By name, as an admin endpoint does: both sessions receive it.
    assert_eq!(hub.mutate_by_name(COUNTER, "set", vec![json!(3)]), Ok(2));
    for store in [&mut ada, &mut bob] {
        let pushed = store.next_from_hub().await.unwrap();
        assert_eq!(pushed.diff_json(), Some(counter_diff(3)));
        let message = pushed.message_json().unwrap();
        assert_eq!(message["session"], json!(store.session().id()));
        assert_eq!(store.state().counter, 3);
    }

    // By key: only bob's.
    assert_eq!(
        hub.mutate_key("bob", storex::mutation!(Counter, "increase")),
        Ok(1)
    );
    assert_eq!(ada.queued_from_hub().await, vec![]);
    let queued = bob.queued_from_hub().await;
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].diff_json(), Some(counter_diff(4)));

    // To one session, answering the mutation's reply to the caller that waits for it.
    let session = bob.session().id().to_owned();
    let (reply, pushed) = tokio::join!(
        hub.mutate_session(&session, storex::mutation!(Counter, "decrease")),
        bob.next_from_hub()
    );
    assert_eq!(reply, Ok(Some(json!("message"))));
    assert_eq!(pushed.unwrap().diff_json(), Some(counter_diff(3)));
    let (refused, _) = tokio::join!(
        hub.mutate_session(&session, storex::mutation!(Counter, "set", -1)),
        bob.next_from_hub()
    );
    assert_eq!(
        refused,
        Err(HubError::Mutation(MutationError::Refused(
            "-1 is below zero".into()
        )))
    );

    // A store the session has not joined: the hub answers so, and nothing reaches the session.
    let not_joined = hub
        .mutate_session(&session, storex::mutation!(common::stores::Other, "set", 1))
        .await;
    assert_eq!(
        not_joined,
        Err(HubError::NotJoined {
            session: session.clone(),
            store: "Test.Other"
        })
    );
    assert_eq!(bob.queued_from_hub().await, vec![]);

    // Dropped, the test store's session ends.
    drop(bob);
    assert_eq!(hub.session_count(), 1);
    assert_eq!(
        hub.mutate_key("bob", storex::mutation!(Counter, "increase")),
        Ok(0)
    );
}

#[tokio::test]
async fn waiting_for_the_hub_is_bounded_and_says_what_is_missing() {
    let hub = Hub::new();
    let wait = Duration::from_millis(30);
    let mut store = TestStore::<Counter>::joining()
        .session_id("testing-wait")
        .wait(wait)
        .hub(&hub)
        .join()
        .await
        .unwrap();
    let nothing = store.next_from_hub().await.unwrap_err();
    assert_eq!(
        nothing,
        TestError::NothingArrived {
            session: "testing-wait".into(),
            waited: wait
        }
    );
    assert_eq!(
        nothing.to_string(),
        "no mutation from the hub reached session \"testing-wait\" within 30ms"
    );

    let mut alone = TestStore::<Counter>::join().await.unwrap();
    assert_eq!(alone.next_from_hub().await.unwrap_err(), TestError::NoHub);
    assert_eq!(alone.queued_from_hub().await, vec![]);

    // One session id per hub, as on a server.
    let taken = TestStore::<Counter>::joining()
        .session_id("testing-wait")
        .hub(&hub)
        .join()
        .await
        .unwrap_err();
    assert_eq!(
        taken.to_string(),
        "the test store cannot join the hub as session \"testing-wait\": the hub has a live session of this id"
    );
}

#[tokio::test]
async fn terminate_runs_the_store_s_terminate() {
    let store = TestStore::<Counter>::joining()
        .session_id("testing-terminate")
        .join()
        .await
        .unwrap();
    assert!(!terminated("testing-terminate"));
    store.terminate().await;
    assert!(terminated("testing-terminate"));
}
