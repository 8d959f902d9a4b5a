//! Server-side mutations as values: which store, which mutation, which arguments — the name
//! checked at compile time by [`mutation!`](crate::mutation!).

use std::fmt;
use std::marker::PhantomData;

use serde_json::Value;

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

impl<S: Mutations> Mutation<S> {
    /// Used by `mutation!` after its compile-time check; the arguments are serialized already.
    #[doc(hidden)]
    pub fn __checked<const N: usize>(
        name: &'static str,
        args: [Result<Value, serde_json::Error>; N],
    ) -> Self {
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
        Self {
            name,
            args,
            store: PhantomData,
        }
    }

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
