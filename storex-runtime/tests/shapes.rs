//! Stores of every shape over a real WebSocket: a newtype store over a JSON value answers a join
//! with the value itself and diffs inside it from the root; an enum store's mutations, committed
//! or pushed by the server, replace the whole state at the root (`"p": []`); a newtype over a
//! tracked list diffs one row at its index.

mod common;

use common::TestServer;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use storex::{Config, List, Store};

#[derive(Debug, Clone, Serialize, Store)]
#[store(name = "Test.Shapes.Text")]
struct Text(Value);

#[storex::mutations]
impl Text {
    #[init]
    fn init() -> Self {
        Text(json!("abc"))
    }

    #[mutation("replace")]
    fn replace(&mut self, value: Value) {
        *self = Text(value);
    }

    #[mutation("put")]
    fn put(&mut self, key: String, value: Value) -> Result<(), String> {
        match &mut self.0 {
            Value::Object(map) => {
                map.insert(key, value);
                Ok(())
            }
            other => Err(format!("not an object: {other}")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Store)]
#[store(name = "Test.Shapes.Phase", durable)]
enum Phase {
    Idle,
    Loading { progress: u8 },
    Done,
}

#[storex::mutations]
impl Phase {
    #[init]
    fn init() -> Self {
        Phase::Idle
    }

    #[mutation("load")]
    fn load(&mut self, progress: u8) {
        *self = Phase::Loading { progress };
    }

    #[mutation("finish")]
    fn finish(&mut self) {
        *self = Phase::Done;
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, storex::Diff)]
struct Row {
    title: String,
    score: i64,
}

#[derive(Debug, Clone, Serialize, Store)]
#[store(name = "Test.Shapes.Rows")]
struct Rows(List<Row>);

#[storex::mutations]
impl Rows {
    #[init]
    fn init() -> Self {
        Rows(
            (0..1_000)
                .map(|index| Row {
                    title: format!("row {index}"),
                    score: 0,
                })
                .collect(),
        )
    }

    #[mutation("vote")]
    fn vote(&mut self, index: usize) -> Result<(), String> {
        let row = self.0.get_mut(index).ok_or("no such row")?;
        row.score += 1;
        Ok(())
    }
}

#[actix_rt::test]
async fn a_newtype_over_a_value_joins_with_the_value_and_diffs_inside_it() {
    let server = TestServer::start(Config::default());
    let mut client = server.connect().await;
    let answer = client.join("Test.Shapes.Text", json!({})).await;
    assert_eq!(answer["type"], "join");
    assert_eq!(answer["data"], json!("abc"));

    let answer = client
        .commit("Test.Shapes.Text", "replace", json!([{"x": 1}]))
        .await;
    assert_eq!(answer["diff"], json!([{"a": "u", "p": [], "t": {"x": 1}}]));
    let answer = client
        .commit("Test.Shapes.Text", "put", json!(["x", 2]))
        .await;
    assert_eq!(answer["type"], "mutation", "{answer}");
    assert_eq!(answer["diff"], json!([{"a": "u", "p": ["x"], "t": 2}]));
    let answer = client
        .commit("Test.Shapes.Text", "put", json!(["y", [true]]))
        .await;
    assert_eq!(answer["diff"], json!([{"a": "i", "p": ["y"], "t": [true]}]));
    // The state is where the diffs led: a join again answers it.
    let again = client.join("Test.Shapes.Text", json!({})).await;
    assert_eq!(again["data"], json!({"x": 2, "y": [true]}));
}

#[actix_rt::test]
async fn an_enum_store_is_replaced_at_the_root() {
    let server = TestServer::start(Config::default());
    let mut client = server.connect().await;
    let answer = client.join("Test.Shapes.Phase", json!({})).await;
    assert_eq!(answer["data"], json!("Idle"));

    let answer = client
        .commit("Test.Shapes.Phase", "load", json!([10]))
        .await;
    assert_eq!(
        answer["diff"],
        json!([{"a": "u", "p": [], "t": {"Loading": {"progress": 10}}}])
    );
    // Equal to what it was: nothing to send.
    let answer = client
        .commit("Test.Shapes.Phase", "load", json!([10]))
        .await;
    assert_eq!(answer["diff"], json!([]));

    // A server-side mutation is pushed as a root replace too.
    assert_eq!(server.hub.mutate(storex::mutation!(Phase, "finish")), Ok(1));
    let push = client.recv().await;
    assert_eq!(push["type"], "mutation");
    assert_eq!(push["store"], "Test.Shapes.Phase");
    assert_eq!(push["diff"], json!([{"a": "u", "p": [], "t": "Done"}]));
}

#[actix_rt::test]
async fn a_newtype_over_a_tracked_list_diffs_one_row() {
    let server = TestServer::start(Config::default());
    let mut client = server.connect().await;
    let answer = client.join("Test.Shapes.Rows", json!({})).await;
    assert_eq!(answer["data"][999], json!({"title": "row 999", "score": 0}));
    let answer = client
        .commit("Test.Shapes.Rows", "vote", json!([999]))
        .await;
    assert_eq!(
        answer["diff"],
        json!([{"a": "u", "p": [999, "score"], "t": 1}])
    );
    let answer = client
        .commit("Test.Shapes.Rows", "vote", json!([1000]))
        .await;
    assert_eq!(answer["type"], "error");
    assert_eq!(answer["error"], "no such row");
}
