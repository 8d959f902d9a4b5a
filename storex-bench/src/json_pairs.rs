//! Generated JSON for diff properties: values (numbers equal in value but not in text, strings
//! that need escaping, few keys so that two objects share some), and pairs of states, unrelated
//! or one an edited copy of the other (mostly equal, with changes deep inside).
//!
//! Only proptest and serde_json: storex-runtime's property tests include this file too
//! (`#[path]`), so the fuzz and the tests draw from the same generators.

use proptest::prelude::*;
use serde_json::{Map, Number, Value};

/// Integers, floats and the numbers that are equal in value but not in JSON text (1.0 next to 1,
/// -0.0 next to 0.0).
pub fn number() -> impl Strategy<Value = Number> {
    prop_oneof![
        (-3_i64..3).prop_map(Number::from),
        any::<u64>().prop_map(Number::from),
        any::<i64>().prop_map(Number::from),
        prop::sample::select(vec![0.0, -0.0, 1.0, 1.5, -2.5, 1e300])
            .prop_filter_map("finite", Number::from_f64),
        any::<f64>().prop_filter_map("finite", Number::from_f64),
    ]
}

/// A scalar.
pub fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number().prop_map(Value::Number),
        prop::sample::select(vec!["", "a", "b", "ab", "é", "\"", "\u{0}"])
            .prop_map(|s| Value::String(s.to_owned())),
    ]
}

/// Few keys, so that two random objects share some, miss some and add some.
pub fn key() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["a", "b", "c", "d", "0", "", "é"]).prop_map(str::to_owned)
}

/// A tree of lists and objects, four levels deep at most.
pub fn json() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 48, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..5)
                .prop_map(|map| Value::Object(map.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// An edit somewhere in a tree: the path picks a child at each level (modulo the number of
/// children).
#[derive(Debug, Clone)]
pub enum Edit {
    /// The value there becomes this one.
    Replace(Value),
    /// The list element or object key there goes.
    Remove,
    /// A list element there, or this key in the object.
    Add(String, Value),
}

/// A path and an edit.
pub fn edit() -> impl Strategy<Value = (Vec<usize>, Edit)> {
    let edit = prop_oneof![
        json().prop_map(Edit::Replace),
        Just(Edit::Remove),
        (key(), json()).prop_map(|(key, value)| Edit::Add(key, value)),
    ];
    (prop::collection::vec(any::<usize>(), 0..5), edit)
}

/// `value` with `edits` made, in order.
pub fn edited(mut value: Value, edits: &[(Vec<usize>, Edit)]) -> Value {
    for (path, edit) in edits {
        edit_at(&mut value, path, edit);
    }
    value
}

fn edit_at(value: &mut Value, path: &[usize], edit: &Edit) {
    let children = match value {
        Value::Array(list) => list.len(),
        Value::Object(map) => map.len(),
        _ => 0,
    };
    let Some((pick, rest)) = path.split_first() else {
        if let Edit::Replace(new) | Edit::Add(_, new) = edit {
            *value = new.clone();
        }
        return;
    };
    if children > 0 && !rest.is_empty() {
        let child = match value {
            Value::Array(list) => list.get_mut(pick % children),
            Value::Object(map) => map.values_mut().nth(pick % children),
            _ => None,
        };
        if let Some(child) = child {
            return edit_at(child, rest, edit);
        }
    }
    match (value, edit) {
        (Value::Array(list), Edit::Replace(new)) if children > 0 => {
            list[pick % children] = new.clone();
        }
        (Value::Array(list), Edit::Remove) if children > 0 => {
            list.remove(pick % children);
        }
        (Value::Array(list), Edit::Add(_, new) | Edit::Replace(new)) => {
            list.insert(pick % (children + 1), new.clone());
        }
        (Value::Object(map), Edit::Replace(new)) if children > 0 => {
            if let Some(slot) = map.values_mut().nth(pick % children) {
                *slot = new.clone();
            }
        }
        (Value::Object(map), Edit::Remove) if children > 0 => {
            if let Some(key) = map.keys().nth(pick % children).cloned() {
                map.remove(&key);
            }
        }
        (Value::Object(map), Edit::Add(key, new)) => {
            map.insert(key.clone(), new.clone());
        }
        (Value::Object(map), Edit::Replace(new)) => {
            map.insert("a".to_owned(), new.clone());
        }
        (value @ (Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_)), edit) => {
            if let Edit::Replace(new) | Edit::Add(_, new) = edit {
                *value = new.clone();
            }
        }
        _ => {}
    }
}

/// Two states: mostly a tree and an edited copy of it, sometimes two unrelated trees (type
/// changes everywhere).
pub fn json_pair() -> impl Strategy<Value = (Value, Value)> {
    prop_oneof![
        3 => (json(), prop::collection::vec(edit(), 1..4)).prop_map(|(old, edits)| {
            let new = edited(old.clone(), &edits);
            (old, new)
        }),
        1 => (json(), json()),
    ]
}
