//! storex keeps a web front-end's store state on the server.
//!
//! A store is a Rust struct with `#[derive(Store)]`; its init and mutations are methods in a
//! `#[storex::mutations]` impl. Browsers join a store by name over one WebSocket, receive its state
//! once, then only diffs; they commit mutations by name, and server code can mutate stores too.
//! The wire protocol is the one of the Elixir library Storex, so its JavaScript client works unchanged.
//!
//! ```
//! use storex::{Reply, Store};
//!
//! #[derive(Store, serde::Serialize, Clone)]
//! #[store(name = "ExampleApp.Store.Counter")]
//! pub struct Counter {
//!     counter: i64,
//! }
//!
//! #[storex::mutations]
//! impl Counter {
//!     #[init]
//!     fn init() -> Self {
//!         Counter { counter: 0 }
//!     }
//!
//!     #[mutation("increase")]
//!     fn increase(&mut self) {
//!         self.counter += 1;
//!     }
//!
//!     #[mutation("decrease")]
//!     fn decrease(&mut self) -> Reply<&'static str> {
//!         self.counter -= 1;
//!         Reply("decreased")
//!     }
//!
//!     #[mutation("set")]
//!     fn set(&mut self, number: i64) -> Result<(), String> {
//!         if number < 0 {
//!             return Err("the counter cannot go below zero".into());
//!         }
//!         self.counter = number;
//!         Ok(())
//!     }
//! }
//!
//! // Server code mutates stores by name too; the name and the argument count are checked at
//! // compile time against the store's mutations.
//! let set = storex::mutation!(Counter, "set", 10);
//! assert_eq!(set.store(), "ExampleApp.Store.Counter");
//! assert_eq!(set.args(), Ok(&[serde_json::json!(10)][..]));
//! ```

pub mod actix;
pub mod client;
pub mod config;
pub mod diff;
pub mod hub;
pub mod instance;
pub mod mutation;
pub mod protocol;
pub mod registry;
pub mod session;
pub mod store;

pub use config::{Config, ConnectRequest, Refusal};
pub use diff::{Change, Changes, Diff};
pub use hub::{Hub, HubError};
pub use instance::{Applied, JoinError, LiveStore, MutationError};
pub use mutation::Mutation;
pub use registry::{Registry, RegistryError, StoreEntry};
pub use store::{
    BoxFuture, Call, Extensions, Init, IntoInit, IntoOutcome, MutationInfo, Mutations, Outcome,
    Params, Reply, Session, Step, Store,
};
pub use storex_macros::{mutation, mutations, Diff, Store};

/// What the macros' generated code uses. Not public API: it may change in any release.
#[doc(hidden)]
pub mod __private;
