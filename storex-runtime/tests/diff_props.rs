//! The diff's contract, on random values: the client's algorithm (`storex::diff::apply`, PROTOCOL.md)
//! applied to the old state's JSON with `diff(old, new)` gives exactly the new state's JSON, every
//! change's path exists when its turn comes, and a value diffed with itself gives nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::fmt::Debug;

use proptest::prelude::*;
use serde::Serialize;
use serde_json::{json, Value};
use storex::diff::{apply, diff, Diff};

#[path = "../../storex-bench/src/json_pairs.rs"]
#[allow(dead_code)]
mod json_pairs;
use json_pairs::{json, json_pair};

/// Checks the contract for one pair; the JSON texts are compared too, which tells `0.0` from `-0.0`.
fn check<T: Diff + Debug + ?Sized>(old: &T, new: &T) -> Result<(), TestCaseError> {
    let changes = diff(old, new).expect("the values serialize");
    let mut state = serde_json::to_value(old).expect("old serializes");
    let expected = serde_json::to_value(new).expect("new serializes");
    if let Err(error) = apply(&mut state, &changes) {
        return Err(TestCaseError::fail(format!(
            "{error} while applying {changes:?}"
        )));
    }
    prop_assert_eq!(&state, &expected, "changes: {:?}", changes);
    prop_assert_eq!(state.to_string(), expected.to_string());
    Ok(())
}

fn check_unchanged<T: Diff + Debug + ?Sized>(value: &T) -> Result<(), TestCaseError> {
    let changes = diff(value, value).expect("the value serializes");
    prop_assert!(changes.is_empty(), "{:?} gave {:?}", value, changes);
    Ok(())
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 128,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------------
// serde_json::Value

/// `0`, `0.0` and `-0.0`; `1` and `1.0`: equal to serde_json's `==` in pairs, different on the wire.
fn tricky_number() -> impl Strategy<Value = Value> {
    prop::sample::select(vec![
        json!(0),
        json!(0.0),
        json!(-0.0),
        json!(1),
        json!(1.0),
    ])
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn json_values((old, new) in json_pair()) {
        check(&old, &new)?;
    }

    #[test]
    fn json_numbers_equal_in_value_but_not_in_text(
        old in prop::collection::vec(tricky_number(), 0..4),
        new in prop::collection::vec(tricky_number(), 0..4),
    ) {
        check(&Value::from(old), &Value::from(new))?;
    }

    #[test]
    fn json_value_against_itself_is_empty(value in json()) {
        check_unchanged(&value)?;
    }

    #[test]
    fn every_change_applies_in_order((old, new) in json_pair()) {
        let changes = diff(&old, &new).unwrap();
        let mut state = old.clone();
        for (index, change) in changes.iter().enumerate() {
            let applied = apply(&mut state, std::slice::from_ref(change));
            prop_assert!(applied.is_ok(), "change {} of {:?}: {:?}", index, changes, applied);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Standard types

fn short_string() -> impl Strategy<Value = String> {
    "[xyz]{0,2}"
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn vec_of_integers(old in prop::collection::vec(-2_i64..3, 0..8),
                       new in prop::collection::vec(-2_i64..3, 0..8)) {
        check(&old, &new)?;
        check_unchanged(&old)?;
    }

    #[test]
    fn vec_of_vec_of_strings(
        old in prop::collection::vec(prop::collection::vec(short_string(), 0..4), 0..5),
        new in prop::collection::vec(prop::collection::vec(short_string(), 0..4), 0..5),
    ) {
        check(&old, &new)?;
        check_unchanged(&old)?;
    }

    #[test]
    fn hash_map_of_byte_vecs(
        old in prop::collection::hash_map(short_string(), prop::collection::vec(any::<u8>(), 0..4), 0..5),
        new in prop::collection::hash_map(short_string(), prop::collection::vec(any::<u8>(), 0..4), 0..5),
    ) {
        check(&old, &new)?;
        check_unchanged(&old)?;
    }

    #[test]
    fn btree_map_with_integer_keys(
        old in prop::collection::btree_map(0_u32..6, prop::option::of(short_string()), 0..5),
        new in prop::collection::btree_map(0_u32..6, prop::option::of(short_string()), 0..5),
    ) {
        check(&old, &new)?;
        check_unchanged(&old)?;
    }

    #[test]
    fn option_of_vec_of_floats(
        old in prop::option::of(prop::collection::vec(float(), 0..5)),
        new in prop::option::of(prop::collection::vec(float(), 0..5)),
    ) {
        check(&old, &new)?;
        check_unchanged(&old)?;
    }

    #[test]
    fn option_of_vec_of_maps(
        old in prop::option::of(prop::collection::vec(prop::collection::btree_map(-2_i8..2, any::<bool>(), 0..3), 0..4)),
        new in prop::option::of(prop::collection::vec(prop::collection::btree_map(-2_i8..2, any::<bool>(), 0..3), 0..4)),
    ) {
        check(&old, &new)?;
        check_unchanged(&old)?;
    }
}

/// Floats whose JSON is tricky: `-0.0`, and NaN and the infinities, which JSON writes as `null`.
fn float() -> impl Strategy<Value = f64> {
    prop_oneof![
        prop::sample::select(vec![0.0, -0.0, 1.0, f64::NAN, -f64::NAN, f64::INFINITY]),
        any::<f64>(),
    ]
}

// ---------------------------------------------------------------------------------------------
// A store's state, with `#[derive(Diff)]`.

#[derive(Debug, Clone, PartialEq, Serialize, storex::Diff)]
struct Todo {
    id: u64,
    title: String,
    done: bool,
    tags: Vec<String>,
    score: f64,
}

// Renamed keys: the derived diff must name them as serde writes them (`onlyOpen`).
#[derive(Debug, Clone, PartialEq, Serialize, storex::Diff)]
#[serde(rename_all = "camelCase")]
struct Filter {
    text: String,
    only_open: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, storex::Diff)]
struct Board {
    todos: Vec<Todo>,
    owners: HashMap<String, Vec<u64>>,
    filter: Option<Filter>,
    title: String,
}

fn todo() -> impl Strategy<Value = Todo> {
    (
        0_u64..4,
        short_string(),
        any::<bool>(),
        prop::collection::vec(short_string(), 0..3),
        float(),
    )
        .prop_map(|(id, title, done, tags, score)| Todo {
            id,
            title,
            done,
            tags,
            score,
        })
}

fn board() -> impl Strategy<Value = Board> {
    (
        prop::collection::vec(todo(), 0..5),
        prop::collection::hash_map(short_string(), prop::collection::vec(0_u64..3, 0..3), 0..4),
        prop::option::of(
            (short_string(), any::<bool>())
                .prop_map(|(text, only_open)| Filter { text, only_open }),
        ),
        short_string(),
    )
        .prop_map(|(todos, owners, filter, title)| Board {
            todos,
            owners,
            filter,
            title,
        })
}

/// A new board made of `old` and `other`, field by field and todo by todo as `picks` says: most
/// of it unchanged, as after a real mutation.
fn mixed(old: &Board, other: &Board, picks: u64) -> Board {
    let pick = |bit: u32| picks >> bit & 1 == 1;
    let len = if pick(0) {
        other.todos.len()
    } else {
        old.todos.len()
    };
    let todos = (0..len)
        .map(
            |index| match (old.todos.get(index), other.todos.get(index)) {
                (Some(old), Some(other)) => {
                    let mut todo = old.clone();
                    if pick(8 + index as u32 % 8) {
                        todo.title.clone_from(&other.title);
                        todo.tags.clone_from(&other.tags);
                    }
                    if pick(16 + index as u32 % 8) {
                        todo.done = other.done;
                        todo.score = other.score;
                    }
                    todo
                }
                (Some(todo), None) | (None, Some(todo)) => todo.clone(),
                (None, None) => unreachable!("index below one of the lengths"),
            },
        )
        .collect();
    Board {
        todos,
        owners: if pick(1) {
            other.owners.clone()
        } else {
            old.owners.clone()
        },
        filter: if pick(2) {
            other.filter.clone()
        } else {
            old.filter.clone()
        },
        title: if pick(3) {
            other.title.clone()
        } else {
            old.title.clone()
        },
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn store_state(old in board(), other in board(), picks in any::<u64>()) {
        check(&old, &other)?;
        let new = mixed(&old, &other, picks);
        check(&old, &new)?;
    }

    #[test]
    fn store_state_against_itself_is_empty(state in board()) {
        check_unchanged(&state)?;
        check_unchanged(&state.clone())?;
    }
}
