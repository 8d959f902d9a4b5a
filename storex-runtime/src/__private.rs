//! What the macros' generated code calls. Not public API.

pub use inventory;
pub use serde;
pub use serde_json;

pub use crate::check::{check_mutation, CheckMessage};
pub use crate::diff::mark::{changes_back_copy, changes_since_copy, undo_copy};
pub use crate::diff::{replace_if_changed, Changes, Diff, Mark};
pub use crate::mutation::{checked_mutation, Mutation};
pub use crate::registry::StoreEntry;
pub use crate::store::{
    Call, Init, IntoInit, IntoOutcome, MutationInfo, Mutations, Outcome, Params, Session, Step,
    Store,
};

#[cfg(feature = "ts")]
pub use crate::ts::{
    DescribeArg, DescribeMutation, DescribeReply, Description, TsEntry, TypedStore,
};

/// Its input with storex's `ts` feature, nothing without: what `#[store(ts)]` and
/// `#[storex::mutations]` generate for `storex::ts` costs nothing when it is off.
#[cfg(feature = "ts")]
#[doc(hidden)]
#[macro_export]
macro_rules! __storex_if_ts {
    ($($tokens:tt)*) => { $($tokens)* };
}

/// Its input with storex's `ts` feature, nothing without.
#[cfg(not(feature = "ts"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __storex_if_ts {
    ($($tokens:tt)*) => {};
}

pub use __storex_if_ts as if_ts;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

/// What `#[storex(replace)]` fields, enums, tuple and unit structs need: they are sent whole
/// when they differ, so they must be comparable.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be compared, so storex cannot tell whether it changed",
    label = "sent whole when it changes, so it must implement `PartialEq`",
    note = "add `#[derive(PartialEq)]` to `{Self}` (it must be `serde::Serialize` too)"
)]
pub trait WholeValue: PartialEq + Serialize {}

impl<T: PartialEq + Serialize + ?Sized> WholeValue for T {}

/// The diff of a value sent whole: one update when it changed.
#[inline]
pub fn replace_whole<'a, T: WholeValue + ?Sized>(
    old: &'a T,
    new: &'a T,
    changes: &mut Changes<'a>,
) {
    replace_if_changed(old, new, changes);
}

/// An argument of `mutation!` as JSON. It takes a reference, so the caller keeps its value.
#[inline]
pub fn to_json<T: Serialize + ?Sized>(value: &T) -> Result<Value, serde_json::Error> {
    serde_json::to_value(value)
}

/// The result of an `#[init]` method as the runtime wants it.
#[inline]
pub fn into_init<S, T: IntoInit<S>>(value: T) -> Result<Init<S>, String> {
    value.into_init()
}

/// The result of a `#[mutation]` method as the runtime wants it.
#[inline]
pub fn outcome<T: IntoOutcome>(value: T) -> Outcome {
    value.into_outcome()
}

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

/// What a mutation's data argument must be: decoded from the JSON `data` array.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a mutation argument: it is not `serde::Deserialize`",
    label = "decoded from the `data` array the client commits",
    note = "add `#[derive(serde::Deserialize)]` to `{Self}`; borrowed types such as `&str` cannot be decoded into, use owned ones such as `String`"
)]
pub trait MutationArg: DeserializeOwned {}

impl<T: DeserializeOwned> MutationArg for T {}

/// What a `#[terminate]` method returns: nothing.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a terminate result",
    label = "#[terminate] runs when the session ends and returns nothing",
    note = "remove the return type: nobody receives what terminate returns"
)]
pub trait TerminateResult {}

impl TerminateResult for () {}

/// The end of a `#[terminate]` method.
#[inline]
pub fn terminated<T: TerminateResult>(_: T) {}

/// Deserializes argument `index` of a mutation; on failure the error answer names the mutation,
/// the data and the store, then says which argument did not fit and why.
pub fn arg<T: MutationArg>(
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
