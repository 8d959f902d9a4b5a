//! The in-process API with a store implemented by hand, exactly as the macros generate it:
//! the contract between storex-macros and the runtime.

// A test that cannot unwrap has failed: panicking is how it reports. The dispatch passes `()`
// results on as the generated code does.
#![allow(clippy::unwrap_used, clippy::unit_arg)]

use serde::Serialize;
use serde_json::{json, Value};
use storex::__private as p;
use storex::{Changes, Diff, Init, Outcome, Params, Registry, Session, Step};

#[derive(Serialize, Clone, Debug, PartialEq)]
struct Counter {
    counter: i64,
}

impl Diff for Counter {
    fn diff<'a>(&'a self, new: &'a Self, changes: &mut Changes<'a>) {
        changes.at_key("counter", |changes| {
            self.counter.diff(&new.counter, changes)
        });
    }
}

impl p::Store for Counter {
    const NAME: &'static str = "HandWritten.Counter";
}

impl Counter {
    fn increase(&mut self) {
        self.counter += 1;
    }
    fn set(&mut self, number: i64) -> Result<storex::Reply<i64>, String> {
        if number < 0 {
            return Err("negative".into());
        }
        self.counter = number;
        Ok(storex::Reply(number))
    }
    async fn slow_set(&mut self, number: i64) {
        tokio::task::yield_now().await;
        self.counter = number;
    }
    fn boom(&mut self) {
        self.counter = 99;
        panic!("boom");
    }
}

impl p::Mutations for Counter {
    const MUTATIONS: &'static [p::MutationInfo] = &[
        p::MutationInfo {
            name: "increase",
            arity: 0,
            is_async: false,
        },
        p::MutationInfo {
            name: "set",
            arity: 1,
            is_async: false,
        },
        p::MutationInfo {
            name: "slow_set",
            arity: 1,
            is_async: true,
        },
        p::MutationInfo {
            name: "boom",
            arity: 0,
            is_async: false,
        },
    ];

    fn init<'a>(session: &'a Session, params: &'a Params) -> Step<'a, Result<Init<Self>, String>> {
        Step::ready(if params.get::<bool>("refuse") == Some(true) {
            Err(format!("Unauthorized {}", session.id()))
        } else {
            Ok(Init::with_key(
                Counter {
                    counter: params.get("start").unwrap_or(0),
                },
                "k",
            ))
        })
    }

    fn dispatch<'a>(&'a mut self, call: p::Call<'a>) -> Step<'a, Outcome> {
        match (call.name, call.args.len()) {
            ("increase", 0) => Step::ready(p::IntoOutcome::into_outcome(self.increase())),
            ("set", 1) => Step::ready(match p::arg::<i64>(Self::NAME, call.name, call.args, 0) {
                Ok(a0) => p::IntoOutcome::into_outcome(self.set(a0)),
                Err(outcome) => outcome,
            }),
            ("slow_set", 1) => Step::pending(async move {
                match p::arg::<i64>(Self::NAME, call.name, call.args, 0) {
                    Ok(a0) => p::IntoOutcome::into_outcome(self.slow_set(a0).await),
                    Err(outcome) => outcome,
                }
            }),
            ("boom", 0) => Step::ready(p::IntoOutcome::into_outcome(self.boom())),
            _ => Step::ready(p::no_match(Self::NAME, call.name, call.args)),
        }
    }
}

use p::Store as _;

p::inventory::submit! { p::StoreEntry::of::<Counter>() }

async fn join(params: Value) -> Box<dyn storex::LiveStore> {
    let entry = Registry::global()
        .unwrap()
        .get("HandWritten.Counter")
        .unwrap();
    entry
        .join(Session::new("s1"), Params::new(params))
        .await
        .unwrap()
}

#[tokio::test]
async fn joins_with_params_and_key() {
    let store = join(json!({"start": 5})).await;
    assert_eq!(store.state().unwrap(), json!({"counter": 5}));
    assert_eq!(store.key(), Some("k"));
    assert_eq!(store.name(), "HandWritten.Counter");
}

#[tokio::test]
async fn init_refusal_is_an_error() {
    let entry = Registry::global()
        .unwrap()
        .get("HandWritten.Counter")
        .unwrap();
    let error = entry
        .join(Session::new("s9"), Params::new(json!({"refuse": true})))
        .await;
    assert_eq!(
        error.err().unwrap(),
        storex::JoinError::Refused("Unauthorized s9".into())
    );
}

#[tokio::test]
async fn mutation_gives_diff_and_reply() {
    let mut store = join(json!({})).await;
    let applied = store.mutate("increase", &[]).await.unwrap();
    assert_eq!(
        serde_json::to_value(&applied.diff).unwrap(),
        json!([{"a":"u","p":["counter"],"t":1}])
    );
    assert_eq!(applied.reply, None);
    let applied = store.mutate("set", &[json!(10)]).await.unwrap();
    assert_eq!(applied.reply, Some(json!(10)));
    let applied = store.mutate("slow_set", &[json!(3)]).await.unwrap();
    assert_eq!(
        serde_json::to_value(&applied.diff).unwrap(),
        json!([{"a":"u","p":["counter"],"t":3}])
    );
    let applied = store.mutate("slow_set", &[json!(3)]).await.unwrap();
    assert!(applied.diff.is_empty());
}

#[tokio::test]
async fn failures_leave_the_state_alone() {
    let mut store = join(json!({"start": 1})).await;
    let error = store.mutate("set", &[json!(-1)]).await.unwrap_err();
    assert_eq!(error.to_string(), "negative");
    let error = store.mutate("boom", &[]).await.unwrap_err();
    assert!(
        matches!(error, storex::MutationError::Panicked { .. }),
        "{error:?}"
    );
    let error = store.mutate("not_existing", &[]).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        r#"No mutation matching "not_existing" with data [] in store HandWritten.Counter"#
    );
    let error = store.mutate("set", &[json!("x")]).await.unwrap_err();
    assert!(error.to_string().starts_with(
        r#"No mutation matching "set" with data ["x"] in store HandWritten.Counter: argument 1 does not fit"#
    ), "{error}");
    assert_eq!(store.state().unwrap(), json!({"counter": 1}));
}
