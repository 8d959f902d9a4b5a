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
        let entry = registry.get(store).ok_or_else(|| NameError::UnknownStore {
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
