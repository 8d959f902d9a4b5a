//! A store whose state is in tracked collections, driven through the runtime's own transaction
//! (the in-process API): a one-field change answers a one-change diff; a mutation that fails
//! after writing (an error, a panic, a cancelled async mutation) leaves the state as it was, and
//! the next mutation diffs from there.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use storex::{List, LiveStore, Map, MutationError, Params, Registry, Session, Store};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, storex::Diff)]
struct Row {
    id: u32,
    title: String,
    score: i64,
}

#[derive(Debug, Clone, Serialize, Store)]
#[store(name = "TrackedStore.Board")]
struct Board {
    title: String,
    rows: List<Row>,
    by_name: Map<String, Row>,
}

#[storex::mutations]
impl Board {
    #[init]
    fn init(params: &Params) -> Self {
        let size = params.get::<u32>("rows").unwrap_or(3);
        Board {
            title: "board".into(),
            rows: (0..size)
                .map(|id| Row {
                    id,
                    title: format!("row {id}"),
                    score: 0,
                })
                .collect(),
            by_name: Map::new(),
        }
    }

    #[mutation("touch")]
    fn touch(&mut self, index: usize) {
        self.rows[index].score += 1;
    }

    #[mutation("add")]
    fn add(&mut self, row: Row) {
        self.by_name.insert(row.title.clone(), row.clone());
        self.rows.push(row);
    }

    #[mutation("touch_then_fail")]
    fn touch_then_fail(&mut self, index: usize) -> Result<(), String> {
        self.rows[index].score += 100;
        self.rows.remove(0);
        self.title.push_str(" (changed)");
        self.by_name.clear();
        Err("refused after writing".into())
    }

    #[mutation("touch_then_panic")]
    fn touch_then_panic(&mut self, index: usize) {
        self.rows[index].score += 100;
        self.rows = List::new();
        panic!("a mutation panics after writing (expected by the test)");
    }

    #[mutation("touch_then_wait")]
    async fn touch_then_wait(&mut self, index: usize) {
        self.rows[index].score += 100;
        self.rows.truncate(1);
        std::future::pending::<()>().await;
    }
}

async fn board(rows: u32) -> Box<dyn LiveStore> {
    let entry = Registry::global()
        .unwrap()
        .get("TrackedStore.Board")
        .unwrap();
    entry
        .join(Session::new("s1"), Params::new(json!({ "rows": rows })))
        .await
        .unwrap()
}

fn diff_json(applied: &storex::Applied) -> Value {
    serde_json::to_value(&applied.diff).unwrap()
}

#[tokio::test]
async fn a_one_field_change_in_a_large_list_is_a_one_change_diff() {
    let mut store = board(100_000).await;
    let applied = store.mutate("touch", &[json!(77_777)]).await.unwrap();
    assert_eq!(
        diff_json(&applied),
        json!([{"a": "u", "p": ["rows", 77_777, "score"], "t": 1}])
    );
    let applied = store
        .mutate("add", &[json!({"id": 7, "title": "new", "score": 2})])
        .await
        .unwrap();
    // Fields in declaration order: `rows` before `by_name`.
    assert_eq!(
        diff_json(&applied),
        json!([
            {"a": "i", "p": ["rows", 100_000], "t": {"id": 7, "title": "new", "score": 2}},
            {"a": "i", "p": ["by_name", "new"], "t": {"id": 7, "title": "new", "score": 2}},
        ])
    );
}

#[tokio::test]
async fn an_error_after_writes_leaves_the_state_as_it_was() {
    let mut store = board(3).await;
    store
        .mutate("add", &[json!({"id": 9, "title": "nine", "score": 0})])
        .await
        .unwrap();
    let before = store.state().unwrap();
    let error = store
        .mutate("touch_then_fail", &[json!(1)])
        .await
        .unwrap_err();
    assert_eq!(
        error,
        MutationError::Refused("refused after writing".into())
    );
    assert_eq!(store.state().unwrap(), before);
    // The next mutation diffs from the state as it was.
    let applied = store.mutate("touch", &[json!(1)]).await.unwrap();
    assert_eq!(
        diff_json(&applied),
        json!([{"a": "u", "p": ["rows", 1, "score"], "t": 1}])
    );
}

#[tokio::test]
async fn a_panic_after_writes_leaves_the_state_as_it_was() {
    let mut store = board(3).await;
    let before = store.state().unwrap();
    let error = store
        .mutate("touch_then_panic", &[json!(2)])
        .await
        .unwrap_err();
    assert!(matches!(error, MutationError::Panicked { .. }), "{error:?}");
    assert_eq!(store.state().unwrap(), before);
    let applied = store.mutate("touch", &[json!(2)]).await.unwrap();
    assert_eq!(
        diff_json(&applied),
        json!([{"a": "u", "p": ["rows", 2, "score"], "t": 1}])
    );
}

#[tokio::test]
async fn a_cancelled_async_mutation_leaves_the_state_as_it_was() {
    let mut store = board(3).await;
    let before = store.state().unwrap();
    let args = [json!(0)];
    {
        let mutation = pin!(store.mutate("touch_then_wait", &args));
        // Polled once: it writes, then waits forever; dropping it cancels it.
        let polled = mutation.poll(&mut Context::from_waker(Waker::noop()));
        assert!(matches!(polled, Poll::Pending));
    }
    assert_eq!(store.state().unwrap(), before);
    let applied = store.mutate("touch", &[json!(0)]).await.unwrap();
    assert_eq!(
        diff_json(&applied),
        json!([{"a": "u", "p": ["rows", 0, "score"], "t": 1}])
    );
}
