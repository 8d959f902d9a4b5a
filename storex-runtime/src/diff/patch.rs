//! The client's patch algorithm (PROTOCOL.md), used by tests and by anyone checking a diff.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use super::{Change, PathSegment};

/// Why a diff could not be applied to a state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PatchError {
    /// A path step that names a missing key or index, or steps into a scalar.
    #[error("path {path:?} does not exist in the state")]
    Missing {
        /// The change's whole path.
        path: Vec<PathSegment>,
    },
    /// A delete of the root.
    #[error("the root cannot be deleted")]
    DeleteRoot,
}

/// Applies `changes` to `state` exactly as the Storex client does (PROTOCOL.md): one after another;
/// update and insert assign at the path (`parent[last] = t`, an index one past the end appends),
/// delete removes (`splice` for a list, `delete` for an object); an empty path is the root.
///
/// ```
/// use serde_json::json;
/// let mut state = json!({"todos": ["a", "b", "c"]});
/// let changes = storex::diff::diff(&json!({"todos": ["a", "b", "c"]}), &json!({"todos": ["z"]})).unwrap();
/// storex::diff::apply(&mut state, &changes).unwrap();
/// assert_eq!(state, json!({"todos": ["z"]}));
/// ```
pub fn apply(state: &mut Value, changes: &[Change]) -> Result<(), PatchError> {
    for change in changes {
        apply_one(state, change)?;
    }
    Ok(())
}

/// Why [`apply_to`] could not apply changes to a typed value; the value is as it was.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyError {
    /// The value could not be serialized.
    #[error("the value cannot be serialized: {0}")]
    Unserializable(#[source] serde_json::Error),
    /// The changes do not fit the value's JSON.
    #[error(transparent)]
    Patch(#[from] PatchError),
    /// The changed JSON is not a value of the type.
    #[error("the changed value does not read back: {0}")]
    Unreadable(#[source] serde_json::Error),
}

/// Applies `changes` to a typed value, as [`apply`] does to its JSON (the value goes to JSON
/// and back, so this costs the whole value). What an undo runs with
/// [`Transacted::undo`](super::Transacted::undo). On error, `value` is unchanged.
///
/// ```
/// let mut todos = vec!["milk".to_owned()];
/// let changes = storex::diff::diff(&todos, &vec!["milk".to_owned(), "bread".to_owned()]).unwrap();
/// storex::diff::apply_to(&mut todos, &changes).unwrap();
/// assert_eq!(todos, ["milk", "bread"]);
/// ```
pub fn apply_to<T: Serialize + DeserializeOwned>(
    value: &mut T,
    changes: &[Change],
) -> Result<(), ApplyError> {
    let mut json = serde_json::to_value(&*value).map_err(ApplyError::Unserializable)?;
    apply(&mut json, changes)?;
    *value = T::deserialize(json).map_err(ApplyError::Unreadable)?;
    Ok(())
}

fn apply_one(state: &mut Value, change: &Change) -> Result<(), PatchError> {
    let (path, value) = match change {
        Change::Update { path, value } | Change::Insert { path, value } => (path, Some(value)),
        Change::Delete { path } => (path, None),
    };
    let missing = || PatchError::Missing { path: path.clone() };
    let Some((last, parents)) = path.split_last() else {
        return match value {
            Some(value) => {
                *state = value.clone();
                Ok(())
            }
            None => Err(PatchError::DeleteRoot),
        };
    };
    let mut parent = state;
    for segment in parents {
        parent = match (parent, segment) {
            (Value::Object(map), PathSegment::Key(key)) => map.get_mut(key),
            (Value::Array(list), PathSegment::Index(index)) => list.get_mut(*index),
            _ => None,
        }
        .ok_or_else(missing)?;
    }
    match (parent, last, value) {
        (Value::Object(map), PathSegment::Key(key), Some(value)) => {
            map.insert(key.clone(), value.clone());
        }
        (Value::Object(map), PathSegment::Key(key), None) => {
            map.remove(key).ok_or_else(missing)?;
        }
        (Value::Array(list), PathSegment::Index(index), Some(value)) => {
            // `list[index] = t` in JavaScript: one past the end appends; further would leave a hole.
            if let Some(slot) = list.get_mut(*index) {
                *slot = value.clone();
            } else if *index == list.len() {
                list.push(value.clone());
            } else {
                return Err(missing());
            }
        }
        (Value::Array(list), PathSegment::Index(index), None) => {
            if *index >= list.len() {
                return Err(missing());
            }
            list.remove(*index);
        }
        _ => return Err(missing()),
    }
    Ok(())
}
