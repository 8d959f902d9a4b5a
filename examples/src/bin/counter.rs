//! The counter of the Storex README (`ExampleApp.Store.Counter`), plus a server-side mutation:
//! `POST /api/increase-all` increases every live counter and answers how many sessions it reached.
//!
//! Run: `cargo run -p storex-examples --bin counter`, then open http://127.0.0.1:8080.

use std::process::ExitCode;

use actix_web::{web, HttpResponse};
use serde::Serialize;
use storex::{Hub, Reply, Store};
use storex_examples::{run, Example};
use ts_rs::TS;

// `#[store(ts)]` and `TS`: its TypeScript types are in pages/types/CounterStore.ts.
#[derive(Store, TS, Serialize, Clone, Debug, PartialEq)]
#[store(name = "ExampleApp.Store.Counter", ts)]
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
    fn increase(&mut self) -> Result<(), String> {
        self.counter = self.counter.checked_add(1).ok_or(TOO_BIG)?;
        Ok(())
    }

    #[mutation("decrease")]
    fn decrease(&mut self) -> Result<Reply<&'static str>, String> {
        self.counter = self.counter.checked_sub(1).ok_or(TOO_SMALL)?;
        Ok(Reply("message"))
    }

    #[mutation("set")]
    fn set(&mut self, number: i64) {
        self.counter = number;
    }
}

const TOO_BIG: &str = "The counter is at its largest value.";
const TOO_SMALL: &str = "The counter is at its smallest value.";

/// A server-side mutation: every live counter increases; the answer says how many were reached.
async fn increase_all(hub: web::Data<Hub>) -> HttpResponse {
    match hub.mutate(storex::mutation!(Counter, "increase")) {
        Ok(reached) => HttpResponse::Ok().json(serde_json::json!({ "reached": reached })),
        Err(error) => HttpResponse::InternalServerError().body(error.to_string()),
    }
}

fn routes(app: &mut web::ServiceConfig) {
    app.route("/api/increase-all", web::post().to(increase_all));
}

fn main() -> ExitCode {
    let example = Example {
        name: "counter",
        page: include_str!("../../pages/counter.html"),
        routes,
    };
    run(example, storex::Config::default())
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use storex::testing::TestStore;

    use super::*;

    /// pages/types/CounterStore.ts and the files it imports are what the store's types export now.
    #[test]
    fn the_typescript_types_of_the_page_are_current() {
        storex_examples::types::types_are_current().unwrap();
    }

    /// The store as a client drives it, with storex's test kit: no server, no socket.
    #[tokio::test]
    async fn mutations_follow_the_storex_readme_and_refuse_overflow() {
        let mut store = TestStore::<Counter>::join().await.unwrap();
        assert_eq!(store.state_json().unwrap(), json!({"counter": 0}));

        store.commit("increase", []).await.unwrap();
        assert_eq!(
            store.last_diff_json(),
            Some(json!([{"a": "u", "p": ["counter"], "t": 1}]))
        );
        store.commit("decrease", []).await.unwrap();
        assert_eq!(store.last_reply(), Some(&json!("message")));
        assert_eq!(store.state().counter, 0);

        // Typed: a misspelt name or a wrong argument count would not compile.
        store
            .commit_typed(storex::mutation!(Counter, "set", i64::MAX))
            .await
            .unwrap();
        let error = store.commit("increase", []).await.unwrap_err();
        assert_eq!(error.to_string(), TOO_BIG);
        assert_eq!(store.state().counter, i64::MAX);
        store.commit("set", [json!(i64::MIN)]).await.unwrap();
        let error = store.commit("decrease", []).await.unwrap_err();
        assert_eq!(error.to_string(), TOO_SMALL);
        // What a client sends wrong is answered, not run.
        let error = store.commit("set", [json!("ten")]).await.unwrap_err();
        assert!(error.to_string().contains("does not fit"), "{error}");
        assert_eq!(store.state().counter, i64::MIN);
    }

    /// The server-side endpoint reaches every live counter, and each client is pushed the change.
    #[tokio::test]
    async fn increase_all_reaches_every_live_counter() {
        let hub = Hub::new();
        let mut first = TestStore::<Counter>::joining()
            .hub(&hub)
            .join()
            .await
            .unwrap();
        let mut second = TestStore::<Counter>::joining()
            .hub(&hub)
            .join()
            .await
            .unwrap();
        second.commit("set", [json!(41)]).await.unwrap();

        let response = increase_all(web::Data::new(hub.clone())).await;
        assert_eq!(response.status(), 200);
        let body = actix_web::body::to_bytes(response.into_body())
            .await
            .unwrap();
        assert_eq!(body, r#"{"reached":2}"#);

        for (store, expected) in [(&mut first, 1), (&mut second, 42)] {
            let pushed = store.next_from_hub().await.unwrap();
            let push = pushed.message_json().unwrap();
            assert_eq!(push["session"], json!(store.session().id()));
            assert_eq!(
                push["diff"],
                json!([{"a": "u", "p": ["counter"], "t": expected}])
            );
            assert_eq!(store.state().counter, expected);
        }
    }
}
