//! The macros end to end through the in-process API: a derived store joins, mutates (sync and
//! async), replies, fails without touching its state, and terminates.

// A test that cannot unwrap has failed: panicking is how it reports.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Serialize;
use serde_json::{json, Value};
use storex::{Diff, Init, LiveStore, MutationError, Params, Registry, Reply, Session, Store};

static TERMINATED: AtomicUsize = AtomicUsize::new(0);

#[derive(Serialize, Clone, Debug, PartialEq, Diff)]
struct Item {
    title: String,
    done: bool,
}

#[derive(Store, Serialize, Clone, Debug)]
#[store(name = "StorexTest.Store.Counter")]
#[serde(rename_all = "camelCase")]
struct Counter {
    counter: i64,
    last_user: Option<String>,
    items: Vec<Item>,
}

#[storex::mutations]
impl Counter {
    #[init]
    async fn init(session: &Session, params: &Params) -> Result<Init<Self>, String> {
        tokio::task::yield_now().await;
        if params.get::<bool>("refuse") == Some(true) {
            return Err(format!("Unauthorized {}", session.id()));
        }
        let state = Counter {
            counter: params.get("start").unwrap_or(0),
            last_user: None,
            items: Vec::new(),
        };
        Ok(match params.get::<String>("user") {
            Some(user) => Init::with_key(state, user),
            None => Init::new(state),
        })
    }

    #[mutation("increase")]
    fn increase(&mut self) {
        self.counter += 1;
    }

    #[mutation("decrease")]
    fn decrease(&mut self) -> Reply<&'static str> {
        self.counter -= 1;
        Reply("decreased")
    }

    #[mutation("set")]
    fn set(&mut self, number: i64) -> Result<(), String> {
        if number < 0 {
            return Err("the counter cannot go below zero".into());
        }
        self.counter = number;
        Ok(())
    }

    #[mutation("add")]
    async fn add(&mut self, session: &Session, title: String, done: bool) -> Reply<usize> {
        tokio::task::yield_now().await;
        self.items.push(Item { title, done });
        self.last_user = Some(session.id().to_owned());
        Reply(self.items.len())
    }

    #[mutation("boom")]
    fn boom(&mut self) {
        self.counter = 99;
        panic!("boom");
    }

    #[terminate]
    fn terminate(&mut self) {
        TERMINATED.fetch_add(1, Ordering::SeqCst);
    }

    /// Not a mutation: passes through the macro untouched.
    fn double(&self) -> i64 {
        self.counter * 2
    }
}

async fn join(session: &str, params: Value) -> Box<dyn LiveStore> {
    let entry = Registry::global()
        .unwrap()
        .get("StorexTest.Store.Counter")
        .unwrap();
    entry
        .join(Session::new(session), Params::new(params))
        .await
        .unwrap()
}

fn diff_json(diff: &[storex::Change]) -> Value {
    serde_json::to_value(diff).unwrap()
}

#[tokio::test]
async fn joins_with_state_name_and_key() {
    let store = join("s1", json!({"start": 5, "user": "ada"})).await;
    assert_eq!(
        store.state().unwrap(),
        json!({"counter": 5, "lastUser": null, "items": []})
    );
    assert_eq!(store.name(), "StorexTest.Store.Counter");
    assert_eq!(store.key(), Some("ada"));
    assert_eq!(Counter::NAME, "StorexTest.Store.Counter");
    let anonymous = join("s2", json!({})).await;
    assert_eq!(anonymous.key(), None);
}

#[tokio::test]
async fn init_refusal_is_the_join_error() {
    let entry = Registry::global()
        .unwrap()
        .get("StorexTest.Store.Counter")
        .unwrap();
    let refused = entry
        .join(Session::new("s9"), Params::new(json!({"refuse": true})))
        .await;
    assert_eq!(
        refused.err().unwrap(),
        storex::JoinError::Refused("Unauthorized s9".into())
    );
}

#[tokio::test]
async fn sync_and_async_mutations_give_diffs_and_replies() {
    let mut store = join("s3", json!({})).await;
    let applied = store.mutate("increase", &[]).await.unwrap();
    assert_eq!(
        diff_json(&applied.diff),
        json!([{"a":"u","p":["counter"],"t":1}])
    );
    assert_eq!(applied.reply, None);

    let applied = store.mutate("decrease", &[]).await.unwrap();
    assert_eq!(applied.reply, Some(json!("decreased")));

    let applied = store.mutate("set", &[json!(10)]).await.unwrap();
    assert_eq!(
        diff_json(&applied.diff),
        json!([{"a":"u","p":["counter"],"t":10}])
    );

    let applied = store
        .mutate("add", &[json!("milk"), json!(false)])
        .await
        .unwrap();
    assert_eq!(applied.reply, Some(json!(1)));
    assert_eq!(
        diff_json(&applied.diff),
        json!([
            {"a":"u","p":["lastUser"],"t":"s3"},
            {"a":"i","p":["items",0],"t":{"title":"milk","done":false}}
        ])
    );
    let applied = store.mutate("set", &[json!(10)]).await.unwrap();
    assert!(applied.diff.is_empty());
}

#[tokio::test]
async fn failures_leave_the_state_alone() {
    let mut store = join("s4", json!({"start": 1})).await;
    let before = store.state().unwrap();

    let error = store.mutate("set", &[json!(-1)]).await.unwrap_err();
    assert_eq!(
        error,
        MutationError::Refused("the counter cannot go below zero".into())
    );

    let error = store.mutate("boom", &[]).await.unwrap_err();
    assert!(matches!(error, MutationError::Panicked { .. }), "{error:?}");

    let error = store.mutate("not_existing", &[]).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        r#"No mutation matching "not_existing" with data [] in store StorexTest.Store.Counter"#
    );

    // Right name, wrong number of arguments: no match either.
    let error = store.mutate("set", &[]).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        r#"No mutation matching "set" with data [] in store StorexTest.Store.Counter"#
    );

    let error = store
        .mutate("add", &[json!(1), json!(true)])
        .await
        .unwrap_err();
    assert!(
        error.to_string().starts_with(
            r#"No mutation matching "add" with data [1,true] in store StorexTest.Store.Counter: argument 1 does not fit"#
        ),
        "{error}"
    );

    assert_eq!(store.state().unwrap(), before);
}

#[tokio::test]
async fn terminate_runs_the_terminate_method() {
    let mut store = join("s5", json!({})).await;
    let before = TERMINATED.load(Ordering::SeqCst);
    store.terminate().await;
    assert!(TERMINATED.load(Ordering::SeqCst) > before);
}

#[test]
fn the_table_lists_every_mutation_in_order() {
    let table: Vec<_> = <Counter as storex::Mutations>::MUTATIONS
        .iter()
        .map(|info| (info.name, info.arity, info.is_async))
        .collect();
    assert_eq!(
        table,
        [
            ("increase", 0, false),
            ("decrease", 0, false),
            ("set", 1, false),
            ("add", 2, true),
            ("boom", 0, false),
        ]
    );
    let counter = Counter {
        counter: 2,
        last_user: None,
        items: Vec::new(),
    };
    assert_eq!(counter.double(), 4);
}

#[test]
fn server_side_mutations_are_checked_values() {
    let set = storex::mutation!(Counter, "set", 10);
    assert_eq!(set.store(), "StorexTest.Store.Counter");
    assert_eq!(set.name(), "set");
    assert_eq!(set.args().unwrap(), &[json!(10)]);
    let add = storex::mutation!(Counter, "add", "milk", true,);
    assert_eq!(add.args().unwrap(), &[json!("milk"), json!(true)]);
}
