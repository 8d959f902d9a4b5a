//! The README tour's test-kit examples ("Testing a store") as they are written there, with the
//! tour's counter ("A store"): a reader who copies them gets passing tests.
#![allow(clippy::unwrap_used, missing_debug_implementations)]

// Kept as the README writes it (not formatted).
#[rustfmt::skip]
#[allow(unused_imports)]
mod tour {
use serde::Serialize;
use storex::{Init, Params, Reply, Session, Store};

#[derive(Store, Serialize, Clone)]
#[store(name = "ExampleApp.Store.Counter")] // the name clients join by; default: the type's name
pub struct Counter {
    counter: i64,
}

#[storex::mutations]
impl Counter {
    #[init]
    fn init() -> Self {
        Counter { counter: 0 }
    }

    #[mutation("increase")]
    fn increase(&mut self) {
        self.counter += 1;
    }

    #[mutation("decrease")]
    fn decrease(&mut self) -> Reply<&'static str> {
        self.counter -= 1;
        Reply("message")
    }

    #[mutation("set")] // commit("set", 10) → data [10] → number = 10
    fn set(&mut self, number: i64) -> Result<(), String> {
        if number < 0 {
            return Err("the counter cannot go below zero".into());
        }
        self.counter = number;
        Ok(())
    }
}

use storex::Hub;

use serde_json::json;
use storex::testing::TestStore;

#[tokio::test]
async fn the_counter_counts() {
    let mut store = TestStore::<Counter>::join().await.unwrap();

    // As a client commits: by name, with the JSON arguments of its `data` array...
    store.commit("set", [json!(10)]).await.unwrap();
    assert_eq!(store.state().counter, 10);                     // the state, typed
    assert_eq!(store.last_diff_json(), Some(json!([{"a": "u", "p": ["counter"], "t": 10}])));
    // ...or typed, checked by the compiler.
    store.commit_typed(storex::mutation!(Counter, "decrease")).await.unwrap();
    assert_eq!(store.last_reply(), Some(&json!("message")));

    // An error answer, with the text the client reads; the state is as it was.
    let error = store.commit("set", [json!(-1)]).await.unwrap_err();
    assert_eq!(error.to_string(), "the counter cannot go below zero");
    assert_eq!(store.state().counter, 9);

    // What a server-side mutation pushes to the client: the exact frame.
    let pushed = store.push(storex::mutation!(Counter, "set", 3)).await;
    assert_eq!(pushed.message_json().unwrap()["diff"], json!([{"a": "u", "p": ["counter"], "t": 3}]));
}

#[tokio::test]
async fn the_admin_endpoint_sets_every_counter() {
    let hub = Hub::new();
    let mut store = TestStore::<Counter>::joining().hub(&hub).join().await.unwrap();
    assert_eq!(hub.mutate_by_name("ExampleApp.Store.Counter", "set", vec![json!(10)]), Ok(1));
    let pushed = store.next_from_hub().await.unwrap();
    assert_eq!(pushed.message_json().unwrap()["type"], "mutation");
}
}

/// The README's blocks are the ones above: a change there must be made here (and pass).
#[test]
fn the_readme_shows_these_tests() {
    let readme = include_str!("../../README.md");
    let this = include_str!("readme.rs");
    let blocks_of = |heading: &str| -> Vec<&str> {
        let section = &readme[readme.find(heading).unwrap()..];
        let section = &section[..section[4..].find("\n### ").unwrap() + 4];
        section
            .split("```rust\n")
            .skip(1)
            .map(|block| &block[..block.find("```").unwrap()])
            .collect()
    };
    let store = blocks_of("### A store\n");
    let tests = blocks_of("### Testing a store\n");
    assert_eq!((store.len(), tests.len()), (1, 2));
    for block in store.into_iter().chain(tests) {
        assert!(
            this.contains(block),
            "the README's block is not in tests/readme.rs:\n{block}"
        );
    }
}
