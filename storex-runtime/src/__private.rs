//! What the macros' generated code calls. Not public API.

pub use inventory;
pub use serde;
pub use serde_json;

pub use crate::diff::{Changes, Diff};
pub use crate::mutation::Mutation;
pub use crate::registry::StoreEntry;
pub use crate::store::{
    Call, Init, IntoInit, IntoOutcome, MutationInfo, Mutations, Outcome, Params, Session, Step,
    Store,
};

use serde::de::DeserializeOwned;
use serde_json::Value;

/// The error answer for a mutation name or data that matches nothing, in Storex's words
/// (PROTOCOL.md): `No mutation matching "x" with data [] in store S`.
pub fn no_match(store: &str, name: &str, args: &[Value]) -> Outcome {
    Outcome::Error(no_match_message(store, name, args))
}

fn no_match_message(store: &str, name: &str, args: &[Value]) -> String {
    let name = Value::from(name);
    let data = Value::from(args.to_vec());
    format!("No mutation matching {name} with data {data} in store {store}")
}

/// Deserializes argument `index` of a mutation; on failure the error answer names the mutation,
/// the data and the store, then says which argument did not fit and why.
pub fn arg<T: DeserializeOwned>(
    store: &str,
    name: &str,
    args: &[Value],
    index: usize,
) -> Result<T, Outcome> {
    let value = args.get(index).unwrap_or(&Value::Null);
    T::deserialize(value).map_err(|error| {
        Outcome::Error(format!(
            "{}: argument {} does not fit: {error}",
            no_match_message(store, name, args),
            index + 1
        ))
    })
}
