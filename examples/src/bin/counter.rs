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
    use super::*;

    /// pages/types/CounterStore.ts and the files it imports are what the store's types export now.
    #[test]
    fn the_typescript_types_of_the_page_are_current() {
        storex_examples::types::types_are_current().unwrap();
    }

    #[test]
    fn mutations_follow_the_storex_readme_and_refuse_overflow() {
        let mut store = Counter::init();
        assert_eq!(store.increase(), Ok(()));
        assert_eq!(store.decrease(), Ok(Reply("message")));
        store.set(i64::MAX);
        assert_eq!(store.increase(), Err(TOO_BIG.to_owned()));
        assert_eq!(store.counter, i64::MAX);
        store.set(i64::MIN);
        assert_eq!(store.decrease(), Err(TOO_SMALL.to_owned()));
    }
}
