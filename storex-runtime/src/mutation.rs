//! Server-side mutations as values: which store, which mutation, which arguments. Typed
//! ([`Mutation<S>`], its name checked at compile time by [`mutation!`](crate::mutation!)) or by
//! name ([`RawMutation`], checked against the registry at run time), and whom they are for
//! ([`Target`]).

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use serde_json::Value;

use crate::registry::{Registry, RegistryError};
use crate::store::Mutations;

/// A mutation of store `S` to run from server code, built by [`mutation!`](crate::mutation!),
/// which checks at compile time that `S` has a mutation of that name taking that many arguments.
pub struct Mutation<S> {
    name: &'static str,
    args: Result<Vec<Value>, String>,
    store: PhantomData<fn() -> S>,
}

impl<S> fmt::Debug for Mutation<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mutation")
            .field("name", &self.name)
            .field("args", &self.args)
            .finish()
    }
}

impl<S> Clone for Mutation<S> {
    fn clone(&self) -> Self {
        Self {
            name: self.name,
            args: self.args.clone(),
            store: PhantomData,
        }
    }
}

/// What `mutation!` builds after its compile-time check; the arguments are serialized already.
pub fn checked_mutation<S: Mutations>(
    name: &'static str,
    args: impl IntoIterator<Item = Result<Value, serde_json::Error>>,
) -> Mutation<S> {
    let args = args
        .into_iter()
        .enumerate()
        .map(|(index, arg)| {
            arg.map_err(|error| {
                format!(
                    "argument {} of mutation \"{name}\" of store {} cannot be serialized: {error}",
                    index + 1,
                    S::NAME
                )
            })
        })
        .collect();
    Mutation {
        name,
        args,
        store: PhantomData,
    }
}

impl<S: Mutations> Mutation<S> {
    /// The store's name.
    pub fn store(&self) -> &'static str {
        S::NAME
    }

    /// The mutation's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The arguments as the `data` array, or why one of them could not be serialized.
    pub fn args(&self) -> Result<&[Value], &str> {
        match &self.args {
            Ok(args) => Ok(args),
            Err(message) => Err(message),
        }
    }
}

/// A mutation by name, as it comes from outside the program (an admin endpoint, a queue,
/// another node): the store, the mutation and its JSON arguments, checked against the registry
/// when it is built, so that what reaches a session always exists. Cheap to clone.
///
/// ```
/// # use storex::Store;
/// # #[derive(Store, serde::Serialize, Clone)]
/// # #[store(name = "Docs.Raw.Counter")]
/// # pub struct Counter { counter: i64 }
/// # #[storex::mutations]
/// # impl Counter {
/// #     #[init] fn init() -> Self { Counter { counter: 0 } }
/// #     #[mutation("set")] fn set(&mut self, n: i64) { self.counter = n }
/// # }
/// use serde_json::json;
/// use storex::{NameError, RawMutation};
///
/// let set = RawMutation::new("Docs.Raw.Counter", "set", vec![json!(10)]).unwrap();
/// assert_eq!((set.store(), set.name(), set.args()), ("Docs.Raw.Counter", "set", &[json!(10)][..]));
///
/// let error = RawMutation::new("Docs.Raw.Counter", "sett", vec![json!(10)]).unwrap_err();
/// assert!(matches!(error, NameError::UnknownMutation { .. }));
/// assert_eq!(
///     error.to_string(),
///     r#"no mutation "sett" in store Docs.Raw.Counter; its mutations are: "set""#
/// );
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RawMutation {
    store: &'static str,
    name: &'static str,
    args: Arc<[Value]>,
}

impl RawMutation {
    /// Mutation `name` of store `store` with `args` (the `data` array), checked against every
    /// store of the program ([`Registry::global`]).
    pub fn new(store: &str, name: &str, args: Vec<Value>) -> Result<Self, NameError> {
        Self::in_registry(Registry::global()?, store, name, args)
    }

    /// [`new`](Self::new), checked against `registry`.
    pub fn in_registry(
        registry: &Registry,
        store: &str,
        name: &str,
        args: Vec<Value>,
    ) -> Result<Self, NameError> {
        let entry = registry
            .get(store)
            .ok_or_else(|| NameError::UnknownStore {
                store: store.to_owned(),
            })?;
        let Some(info) = entry.mutation(name) else {
            return Err(NameError::UnknownMutation {
                store: entry.name(),
                mutation: name.to_owned(),
                known: entry.mutations().iter().map(|info| info.name).collect(),
            });
        };
        if info.arity != args.len() {
            return Err(NameError::WrongArity {
                store: entry.name(),
                mutation: info.name,
                expected: info.arity,
                given: args.len(),
            });
        }
        Ok(Self {
            store: entry.name(),
            name: info.name,
            args: args.into(),
        })
    }

    /// The store's name.
    pub fn store(&self) -> &'static str {
        self.store
    }

    /// The mutation's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The arguments (the `data` array).
    pub fn args(&self) -> &[Value] {
        &self.args
    }
}

impl<S: Mutations> TryFrom<Mutation<S>> for RawMutation {
    /// Why an argument could not be serialized.
    type Error = String;

    fn try_from(mutation: Mutation<S>) -> Result<Self, String> {
        Ok(Self {
            store: S::NAME,
            name: mutation.name,
            args: mutation.args?.into(),
        })
    }
}

/// Why a mutation by name names nothing that exists.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// No store has this name.
    #[error("no store is named {store:?}")]
    UnknownStore {
        /// The name asked for.
        store: String,
    },
    /// The store has no mutation of this name.
    #[error("no mutation {mutation:?} in store {store}; {}", known_list(known))]
    UnknownMutation {
        /// The store's name.
        store: &'static str,
        /// The name asked for.
        mutation: String,
        /// The store's mutations.
        known: Vec<&'static str>,
    },
    /// The mutation takes another number of arguments.
    #[error("mutation {mutation:?} of store {store} takes {expected} argument(s), {given} given")]
    WrongArity {
        /// The store's name.
        store: &'static str,
        /// The mutation's name.
        mutation: &'static str,
        /// How many it takes.
        expected: usize,
        /// How many were given.
        given: usize,
    },
    /// The program's stores cannot be listed (two share a name).
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

fn known_list(known: &[&str]) -> String {
    if known.is_empty() {
        return "it has no mutations".to_owned();
    }
    let names: Vec<String> = known.iter().map(|name| format!("{name:?}")).collect();
    format!("its mutations are: {}", names.join(", "))
}

/// Which sessions a server-side mutation is for (its store is the mutation's).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Target {
    /// Every instance of the store.
    Store,
    /// The instances whose init returned this key.
    Key(String),
    /// The instance of one session.
    Session(String),
}

/// A compile-time error message of `mutation!`, built by `check_mutation` in a fixed buffer
/// because a const panic takes only a `&str`.
#[derive(Debug, Clone, Copy)]
pub struct CheckMessage {
    bytes: [u8; CheckMessage::CAPACITY],
    len: usize,
}

impl CheckMessage {
    const CAPACITY: usize = 2048;

    const fn new() -> Self {
        Self {
            bytes: [0; Self::CAPACITY],
            len: 0,
        }
    }

    const fn push(mut self, text: &str) -> Self {
        let text = text.as_bytes();
        let mut index = 0;
        while index < text.len() && self.len < Self::CAPACITY {
            self.bytes[self.len] = text[index];
            self.len += 1;
            index += 1;
        }
        self
    }

    const fn push_count(self, count: usize) -> Self {
        let mut digits = [0u8; 20];
        let (mut rest, mut start) = (count, digits.len());
        loop {
            start -= 1;
            digits[start] = b'0' + (rest % 10) as u8;
            rest /= 10;
            if rest == 0 {
                break;
            }
        }
        let mut this = self;
        while start < digits.len() && this.len < Self::CAPACITY {
            this.bytes[this.len] = digits[start];
            this.len += 1;
            start += 1;
        }
        this
    }

    /// The message; a message longer than the buffer is cut on a character boundary.
    pub const fn as_str(&self) -> &str {
        let (written, _) = self.bytes.split_at(self.len);
        match core::str::from_utf8(written) {
            Ok(text) => text,
            Err(error) => match core::str::from_utf8(written.split_at(error.valid_up_to()).0) {
                Ok(text) => text,
                Err(_) => "",
            },
        }
    }
}

const fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut index = 0;
    while index < a.len() {
        if a[index] != b[index] {
            return false;
        }
        index += 1;
    }
    true
}

/// Used by `mutation!` at compile time: why the store named `store` (Rust type `type_name`) has
/// no mutation `name` taking `arity` arguments, or `None` when it has one.
pub const fn check_mutation(
    store: &str,
    type_name: &str,
    mutations: &[crate::store::MutationInfo],
    name: &str,
    arity: usize,
) -> Option<CheckMessage> {
    let mut index = 0;
    while index < mutations.len() {
        let info = mutations[index];
        if same(info.name, name) {
            if info.arity == arity {
                return None;
            }
            let message = CheckMessage::new()
                .push("mutation \"")
                .push(name)
                .push("\" of store ")
                .push(store)
                .push(" (type ")
                .push(type_name)
                .push(") takes ")
                .push_count(info.arity)
                .push(if info.arity == 1 {
                    " argument, "
                } else {
                    " arguments, "
                })
                .push_count(arity)
                .push(" given");
            return Some(message);
        }
        index += 1;
    }
    let mut message = CheckMessage::new()
        .push("no mutation \"")
        .push(name)
        .push("\" in store ")
        .push(store)
        .push(" (type ")
        .push(type_name)
        .push(")");
    if mutations.is_empty() {
        return Some(message.push("; it has no mutations"));
    }
    message = message.push("; its mutations are: ");
    let mut index = 0;
    while index < mutations.len() {
        if index > 0 {
            message = message.push(", ");
        }
        message = message.push("\"").push(mutations[index].name).push("\"");
        index += 1;
    }
    Some(message)
}

#[cfg(test)]
mod tests {
    use super::check_mutation;
    use crate::store::MutationInfo;

    const TABLE: &[MutationInfo] = &[
        MutationInfo {
            name: "increase",
            arity: 0,
            is_async: false,
        },
        MutationInfo {
            name: "set",
            arity: 1,
            is_async: true,
        },
    ];

    fn check(name: &str, arity: usize) -> Option<String> {
        check_mutation("App.Counter", "Counter", TABLE, name, arity)
            .map(|message| message.as_str().to_owned())
    }

    #[test]
    fn known_names_with_their_arity_pass() {
        assert_eq!(check("increase", 0), None);
        assert_eq!(check("set", 1), None);
    }

    #[test]
    fn messages_name_the_store_and_its_mutations() {
        assert_eq!(
            check("increse", 0).as_deref(),
            Some(
                r#"no mutation "increse" in store App.Counter (type Counter); its mutations are: "increase", "set""#
            )
        );
        assert_eq!(
            check("set", 12).as_deref(),
            Some(
                r#"mutation "set" of store App.Counter (type Counter) takes 1 argument, 12 given"#
            )
        );
        assert_eq!(
            check("increase", 1).as_deref(),
            Some(
                r#"mutation "increase" of store App.Counter (type Counter) takes 0 arguments, 1 given"#
            )
        );
        let none = check_mutation("S", "S", &[], "x", 0).map(|m| m.as_str().to_owned());
        assert_eq!(
            none.as_deref(),
            Some(r#"no mutation "x" in store S (type S); it has no mutations"#)
        );
    }

    #[test]
    fn long_messages_are_cut_on_a_character_boundary() {
        let name = "é".repeat(3000);
        let message = check_mutation("S", "S", TABLE, &name, 0);
        let text = message.as_ref().map(|m| m.as_str()).unwrap_or_default();
        assert!(text.starts_with("no mutation \"éé"));
        assert!(text.len() <= 2048 && text.len() >= 2046, "{}", text.len());
    }
}
