//! storex keeps a web front-end's store state on the server.
//!
//! A store is a Rust type with `#[derive(Store)]` (a struct, a newtype, an enum: its state is
//! any JSON value); its init and mutations are methods in a `#[storex::mutations]` impl.
//! Browsers join a store by name over one WebSocket, receive its state once, then only diffs;
//! they commit mutations by name, and server code can mutate stores too.
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
//!
//! Serving stores takes one line on an actix-web `App` ([`actix::scope`], cargo feature `actix`,
//! on by default); the endpoint's [`Config`] holds its limits and hooks and its [`Hub`], through
//! which server code sends mutations to live sessions ([`Hub::mutate`], [`Hub::mutate_key`],
//! [`Hub::mutate_session`], and by name [`Hub::mutate_by_name`]) and stops them gracefully
//! ([`Hub::stop`]). The browser client is served at `<path>/storex.js` ([`client`]).
//!
//! Unit tests of a store: [`testing::TestStore`] joins it, commits its mutations and shows the
//! diffs, replies, errors and pushes a client would see, without a server or a socket; attached
//! to a [`Hub`], it is a live session that server code reaches.
//!
//! In production: [`hooks`] run before every mutation (and may refuse it) and after it
//! ([`Config::before_mutation`], [`Config::after_mutation`]); [`Config::mutation_rate`],
//! [`Config::max_connections`] and [`Config::max_connections_per_address`] limit abusive
//! clients; with cargo feature `metrics`, `storex::metrics` counts what the endpoint does for
//! Prometheus. Where a proxy blocks WebSockets, the same scope serves the protocol over
//! Server-Sent Events and `POST`s ([`sse`]), and the browser client falls back to it by itself.
//!
//! Types in the browser: with cargo feature `ts`, `storex::ts` writes the TypeScript types of
//! the stores marked `#[store(ts)]` (with ts-rs), which type the browser client's store name,
//! `state` and `commit`.
//!
//! Several nodes: with cargo feature `redis`, `storex::redis` carries server-side mutations to
//! every node (`RedisBackplane`) and keeps durable sessions (`RedisSessions`, with
//! [`Config::durable`] and `#[store(durable)]`), so that a client whose node died resumes on
//! another one.
//!
//! Four modules are for those who extend the runtime: [`transport`] (serve the protocol over
//! another transport or framework), [`sse`] (the event-stream transport, for another
//! framework), [`backplane`] (carry server-side mutations to other nodes)
//! and [`durable`] (save durable sessions elsewhere than Redis). The wire protocol, the
//! architecture and the benchmarks are described in the repository's `docs/`.

#![warn(missing_docs, unreachable_pub)]

#[cfg(feature = "actix")]
pub mod actix;
pub mod backplane;
mod check;
pub mod client;
mod config;
mod connection;
pub mod diff;
mod driver;
pub mod durable;
mod endpoint;
mod history;
pub mod hooks;
mod hub;
mod instance;
mod limits;
mod local;
#[cfg(feature = "metrics")]
pub mod metrics;
mod mutation;
pub mod protocol;
#[cfg(feature = "redis")]
pub mod redis;
mod registry;
mod resume;
pub mod sse;
mod store;
mod telemetry;
pub mod testing;
pub mod tracked;
pub mod transport;
#[cfg(feature = "ts")]
pub mod ts;

pub use config::{random_session_id, Config, ConnectRequest, Refusal, DEFAULT_PATH};
pub use diff::{Change, Changes, Diff};
pub use endpoint::{Accepted, Endpoint, HttpAnswer, RequestKind};
pub use hub::{Detached, Hub};
pub use instance::{Applied, JoinError, LiveStore, MutationError};
pub use local::HubError;
pub use mutation::{Mutation, NameError, RawMutation, Target};
pub use registry::{Registry, RegistryError, StoreEntry};
pub use store::{
    BoxFuture, Call, DurableState, Extensions, Init, IntoInit, IntoOutcome, MutationInfo,
    Mutations, Outcome, Params, Reply, Session, Step, Store,
};
/// Makes a type a store: its name (`Store::NAME`), its diff, and its registration by name. Its
/// behaviour comes from a [`macro@mutations`] impl.
///
/// A store's state is any JSON value, so a store can be:
/// - a struct with named fields, diffed field by field (`{"a":"u","p":["counter"],"t":1}`);
/// - a newtype, `struct Text(serde_json::Value)`: serde writes it as its field, and its diff is
///   its field's, at paths from the root; a newtype over a [`List`] or a [`Map`] is tracked as
///   the collection is. With `#[storex(replace)]` on its field, it is sent whole when it changed;
/// - an enum, a tuple struct of several fields or a unit struct: sent whole when it changed, which
///   needs `PartialEq`, as one update at the root (`{"a":"u","p":[],"t":...}`).
///
/// Its attributes:
/// - `#[store(name = "...")]` on the type: the name clients join by (default: the type's name).
/// - `#[store(durable)]`: in durable sessions (`Config::durable`), the store's instances are saved
///   and made again from their saved state on another node; the store must be `serde::Deserialize`.
/// - `#[store(ts)]`: with cargo feature `ts`, `storex::ts` exports the store's TypeScript types
///   (its state and its mutations' arguments and replies must be `ts_rs::TS`); without the
///   feature it does nothing.
/// - `#[storex(replace)]` on a field: send the whole field when it changed (needs `PartialEq`,
///   not `Diff`).
/// - serde's `rename` and `rename_all` name the diff's keys as they name the JSON's; serde
///   attributes that would make the diff disagree with the JSON are compile errors: on a struct
///   with named fields `flatten`, `skip_serializing_if`, `serialize_with`, `tag`, `transparent`...;
///   on a newtype `into` and its field's `serialize_with` and `with` (`transparent` is fine).
///   Fields serde skips are not diffed.
/// - Stores cannot be generic or unions, and must be `serde::Serialize + Clone + Send + 'static`.
///
/// ```
/// use storex::Store;
///
/// #[derive(Store, serde::Serialize, Clone)]
/// #[store(name = "ExampleApp.Store.Profile")]
/// #[serde(rename_all = "camelCase")]
/// pub struct Profile {
///     user_name: String,
///     #[storex(replace)]
///     theme: (u8, u8, u8),
/// }
///
/// #[storex::mutations]
/// impl Profile {
///     #[init]
///     fn init() -> Self {
///         Profile { user_name: "ada".into(), theme: (0, 0, 0) }
///     }
/// }
///
/// assert_eq!(Profile::NAME, "ExampleApp.Store.Profile");
/// let old = Profile { user_name: "ada".into(), theme: (0, 0, 0) };
/// let new = Profile { user_name: "grace".into(), theme: (0, 0, 0) };
/// let diff = storex::diff::diff(&old, &new).unwrap();
/// assert_eq!(
///     serde_json::to_value(&diff).unwrap(),
///     serde_json::json!([{"a": "u", "p": ["userName"], "t": "grace"}])
/// );
/// ```
///
/// An enum store is replaced at the root when a mutation changes it; a newtype store is its
/// field:
///
/// ```
/// use serde_json::json;
/// use storex::Store;
///
/// #[derive(Store, serde::Serialize, Clone, PartialEq)]
/// pub enum Phase {
///     Idle,
///     Loading { progress: u8 },
/// }
///
/// #[storex::mutations]
/// impl Phase {
///     #[init]
///     fn init() -> Self {
///         Phase::Idle
///     }
///
///     #[mutation("load")]
///     fn load(&mut self, progress: u8) {
///         *self = Phase::Loading { progress };
///     }
/// }
///
/// #[derive(Store, serde::Serialize, Clone)]
/// pub struct Text(serde_json::Value);
///
/// #[storex::mutations]
/// impl Text {
///     #[init]
///     fn init() -> Self {
///         Text(json!("abc"))
///     }
/// }
///
/// let diff = storex::diff::diff(&Phase::Idle, &Phase::Loading { progress: 10 }).unwrap();
/// assert_eq!(
///     serde_json::to_value(&diff).unwrap(),
///     json!([{"a": "u", "p": [], "t": {"Loading": {"progress": 10}}}])
/// );
/// assert_eq!(serde_json::to_value(Text(json!("abc"))).unwrap(), json!("abc"));
/// let diff = storex::diff::diff(&Text(json!({"x": 1})), &Text(json!({"x": 2}))).unwrap();
/// assert_eq!(
///     serde_json::to_value(&diff).unwrap(),
///     json!([{"a": "u", "p": ["x"], "t": 2}])
/// );
/// ```
pub use storex_macros::Store;
pub use tracked::{List, Map};

/// Implements [`Diff`](trait@Diff) for a type of a store's state.
///
/// Structs with named fields are diffed field by field (each field's type must be `Diff`, or
/// the field marked `#[storex(replace)]`). A newtype (`struct Title(String)`), which serde
/// writes as its field, is diffed as its field, at the same path, and tracked as its field is
/// (a newtype over a [`List`] records its writes); with `#[storex(replace)]` on its field it is
/// sent whole when it changed. (Newtypes used to be sent whole, as tuple structs are: mark the
/// field `#[storex(replace)]` to keep that.) Enums, tuple structs of several fields and unit
/// structs are sent whole when they changed, so they must be `PartialEq`. Generic types get a
/// `T: Diff` bound per type parameter (`T: Serialize + PartialEq` for the ones sent whole).
///
/// ```
/// use storex::Diff;
///
/// #[derive(Diff, serde::Serialize, Clone, PartialEq)]
/// struct Todo {
///     title: String,
///     state: State,
/// }
///
/// #[derive(Diff, serde::Serialize, Clone, PartialEq)]
/// enum State {
///     Open,
///     Done { by: String },
/// }
///
/// let old = vec![Todo { title: "milk".into(), state: State::Open }];
/// let mut new = old.clone();
/// new[0].state = State::Done { by: "ada".into() };
/// let diff = storex::diff::diff(&old, &new).unwrap();
/// assert_eq!(
///     serde_json::to_value(&diff).unwrap(),
///     serde_json::json!([{"a": "u", "p": [0, "state"], "t": {"Done": {"by": "ada"}}}])
/// );
/// ```
pub use storex_macros::Diff;

/// Turns a store's impl into its behaviour ([`Mutations`]): put it on `impl YourStore { .. }`.
///
/// - `#[init]` (exactly one): an associated fn, sync or `async`, taking `&Session` and/or
///   `&Params` (any order) or nothing, returning `Self`, [`Init<Self>`](Init) (with a key), or a
///   `Result` of either whose error (any `Display`) refuses the join.
/// - `#[mutation("name")]`: a method taking `&mut self`, sync or `async`; after `self` it may take
///   `&Session` and `&Params`, and the data arguments, decoded in order from the commit's `data`
///   array (`serde::Deserialize`). It returns `()`, [`Reply<T>`](Reply) or a `Result` of either.
/// - `#[terminate]` (optional): `&mut self` plus optional `&Session`/`&Params`, sync or `async`,
///   runs when the session ends.
///
/// Other items of the impl are left as they are. The markers mean something only inside such an
/// impl: elsewhere rustc reports "cannot find attribute `mutation`".
///
/// ```
/// use storex::{Init, Params, Reply, Session, Store};
///
/// #[derive(Store, serde::Serialize, Clone)]
/// #[store(name = "ExampleApp.Store.Cart")]
/// pub struct Cart {
///     items: Vec<String>,
/// }
///
/// #[storex::mutations]
/// impl Cart {
///     #[init]
///     async fn init(session: &Session, params: &Params) -> Result<Init<Self>, String> {
///         let user: String = params.get("user").ok_or("Unauthorized")?;
///         let _ = session.id();
///         Ok(Init::with_key(Cart { items: Vec::new() }, user))
///     }
///
///     #[mutation("add")]
///     async fn add(&mut self, item: String, count: usize) -> Reply<usize> {
///         self.items.extend(std::iter::repeat(item).take(count));
///         Reply(self.items.len())
///     }
///
///     #[terminate]
///     fn terminate(&mut self, session: &Session) {
///         let _ = session;
///     }
/// }
///
/// let table = <Cart as storex::Mutations>::MUTATIONS;
/// assert_eq!((table[0].name, table[0].arity, table[0].is_async), ("add", 2, true));
/// ```
pub use storex_macros::mutations;

/// A server-side mutation of a store, checked at compile time: `mutation!(Store, "name", args...)`.
///
/// The store is any path to a store type; the name must be one of its `#[mutation("...")]`s and
/// the number of arguments its number of data arguments, or the build fails with a message
/// naming the store and its mutations. The arguments are serialized to JSON (`serde::Serialize`)
/// and borrowed, not moved.
///
/// ```
/// use storex::Store;
///
/// #[derive(Store, serde::Serialize, Clone)]
/// pub struct Counter {
///     counter: i64,
/// }
///
/// #[storex::mutations]
/// impl Counter {
///     #[init]
///     fn init() -> Self {
///         Counter { counter: 0 }
///     }
///
///     #[mutation("set")]
///     fn set(&mut self, number: i64) {
///         self.counter = number;
///     }
/// }
///
/// let number = 10;
/// let set = storex::mutation!(Counter, "set", number);
/// assert_eq!((set.store(), set.name()), ("Counter", "set"));
/// assert_eq!(set.args(), Ok(&[serde_json::json!(10)][..]));
/// ```
///
/// A misspelt name does not compile:
///
/// ```compile_fail
/// # use storex::Store;
/// # #[derive(Store, serde::Serialize, Clone)]
/// # pub struct Counter { counter: i64 }
/// # #[storex::mutations]
/// # impl Counter {
/// #     #[init] fn init() -> Self { Counter { counter: 0 } }
/// #     #[mutation("set")] fn set(&mut self, number: i64) { self.counter = number; }
/// # }
/// // error: no mutation "sett" in store Counter (type Counter); its mutations are: "set"
/// let set = storex::mutation!(Counter, "sett", 10);
/// ```
pub use storex_macros::mutation;

/// What the macros' generated code uses. Not public API: it may change in any release.
#[doc(hidden)]
pub mod __private;
