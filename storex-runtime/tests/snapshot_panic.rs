//! A state whose `Clone` panics: the snapshot taken before a mutation is under the same panic
//! protection as the mutation itself, so the caller gets an error answer and the state is as it
//! was (the clone only read it).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde::Serialize;
use serde_json::json;
use storex::{MutationError, Params, Registry, Session, Store};

/// A value whose clone panics once it is armed.
#[derive(Debug, Serialize)]
struct Fragile {
    armed: bool,
}

impl Clone for Fragile {
    fn clone(&self) -> Self {
        if self.armed {
            panic!("an armed value was cloned (expected by the test)");
        }
        Fragile { armed: false }
    }
}

#[derive(Debug, Store, Serialize, Clone)]
#[store(name = "SnapshotPanic.Store")]
pub struct Guarded {
    count: i64,
    #[storex(replace)]
    fragile: Fragile,
}

impl PartialEq for Fragile {
    fn eq(&self, other: &Self) -> bool {
        self.armed == other.armed
    }
}

#[storex::mutations]
impl Guarded {
    #[init]
    fn init() -> Self {
        Guarded {
            count: 0,
            fragile: Fragile { armed: false },
        }
    }

    #[mutation("increase")]
    fn increase(&mut self) {
        self.count += 1;
    }

    #[mutation("arm")]
    fn arm(&mut self) {
        self.fragile.armed = true;
    }

    #[mutation("increase_later")]
    async fn increase_later(&mut self) {
        self.count += 1;
    }
}

#[tokio::test]
async fn a_panicking_snapshot_is_an_error_and_leaves_the_state_as_it_was() {
    let entry = Registry::global()
        .unwrap()
        .get("SnapshotPanic.Store")
        .unwrap();
    let mut store = entry
        .join(Session::new("s1"), Params::default())
        .await
        .unwrap();
    store.mutate("increase", &[]).await.unwrap();
    store.mutate("arm", &[]).await.unwrap();
    for name in ["increase", "increase_later"] {
        let error = store.mutate(name, &[]).await.unwrap_err();
        assert!(
            matches!(&error, MutationError::Panicked { store: "SnapshotPanic.Store", mutation } if mutation == name),
            "{error:?}"
        );
        assert_eq!(
            store.state().unwrap(),
            json!({"count": 1, "fragile": {"armed": true}})
        );
    }
}
