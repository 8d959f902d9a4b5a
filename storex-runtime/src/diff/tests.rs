//! One test per rule of PROTOCOL.md's diff, with the exact JSON a client receives.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::Serialize;
use serde_json::{json, Value};

use super::*;

/// The diff's JSON, after checking that the client's algorithm turns `old` into `new` with it.
fn wire<T: Diff + ?Sized>(old: &T, new: &T) -> Value {
    let changes = diff(old, new).unwrap();
    let mut state = serde_json::to_value(old).unwrap();
    apply(&mut state, &changes).unwrap();
    assert_eq!(state, serde_json::to_value(new).unwrap(), "{changes:?}");
    serde_json::to_value(&changes).unwrap()
}

/// The same, for maps whose iteration order is not fixed: the changes sorted by their JSON.
fn wire_unordered<T: Diff + ?Sized>(old: &T, new: &T) -> Vec<String> {
    let Value::Array(changes) = wire(old, new) else {
        panic!("a diff is a JSON array")
    };
    let mut changes: Vec<String> = changes.iter().map(Value::to_string).collect();
    changes.sort();
    changes
}

#[test]
fn equal_values_give_an_empty_diff() {
    assert_eq!(wire(&5, &5), json!([]));
    assert_eq!(wire("a", "a"), json!([]));
    assert_eq!(wire(&vec![1, 2], &vec![1, 2]), json!([]));
    assert_eq!(
        wire(
            &json!({"a": [1, {"b": null}]}),
            &json!({"a": [1, {"b": null}]})
        ),
        json!([])
    );
    assert_eq!(
        serde_json::to_string(&diff(&(), &()).unwrap()).unwrap(),
        "[]"
    );
}

#[test]
fn a_changed_root_is_one_update_at_the_empty_path() {
    assert_eq!(wire(&1, &2), json!([{"a": "u", "p": [], "t": 2}]));
    assert_eq!(wire("old", "new"), json!([{"a": "u", "p": [], "t": "new"}]));
    assert_eq!(
        wire(&json!(1), &json!({"x": 1})),
        json!([{"a": "u", "p": [], "t": {"x": 1}}])
    );
}

#[test]
fn lists_compare_position_by_position() {
    assert_eq!(
        wire(&vec![1, 2, 3], &vec![1, 5, 3]),
        json!([{"a": "u", "p": [1], "t": 5}])
    );
}

#[test]
fn a_growing_list_updates_first_then_inserts_in_ascending_order() {
    assert_eq!(
        wire(&vec![1, 2], &vec![1, 3, 4, 5]),
        json!([
            {"a": "u", "p": [1], "t": 3},
            {"a": "i", "p": [2], "t": 4},
            {"a": "i", "p": [3], "t": 5},
        ])
    );
    assert_eq!(
        wire(&Vec::<i32>::new(), &vec![7]),
        json!([{"a": "i", "p": [0], "t": 7}])
    );
}

#[test]
fn a_shrinking_list_deletes_its_tail_from_the_highest_index_down() {
    assert_eq!(
        wire(&vec![1, 2, 3, 4], &vec![0]),
        json!([
            {"a": "u", "p": [0], "t": 0},
            {"a": "d", "p": [3]},
            {"a": "d", "p": [2]},
            {"a": "d", "p": [1]},
        ])
    );
    assert_eq!(
        wire(&vec![1, 2], &Vec::new()),
        json!([{"a": "d", "p": [1]}, {"a": "d", "p": [0]}])
    );
}

#[test]
fn nested_lists_change_inside_before_the_outer_tail_goes() {
    assert_eq!(
        wire(&vec![vec![1, 2], vec![3]], &vec![vec![1]]),
        json!([{"a": "d", "p": [0, 1]}, {"a": "d", "p": [1]}])
    );
    assert_eq!(
        wire(&[[1, 2], [3, 4]], &[[1, 2], [3, 5]]),
        json!([{"a": "u", "p": [1, 1], "t": 5}])
    );
}

#[test]
fn tuples_are_fixed_length_lists() {
    assert_eq!(
        wire(
            &(1, "a".to_owned(), vec![true]),
            &(1, "b".to_owned(), vec![true, false])
        ),
        json!([
            {"a": "u", "p": [1], "t": "b"},
            {"a": "i", "p": [2, 1], "t": false},
        ])
    );
}

#[test]
fn btree_maps_compare_key_by_key() {
    let old = BTreeMap::from([("a", 1), ("b", 2), ("c", 3)]);
    let new = BTreeMap::from([("a", 1), ("b", 20), ("d", 4)]);
    assert_eq!(
        wire(&old, &new),
        json!([
            {"a": "u", "p": ["b"], "t": 20},
            {"a": "d", "p": ["c"]},
            {"a": "i", "p": ["d"], "t": 4},
        ])
    );
}

#[test]
fn hash_maps_compare_key_by_key() {
    let old = HashMap::from([("a".to_owned(), vec![1]), ("b".to_owned(), vec![2])]);
    let new = HashMap::from([("a".to_owned(), vec![1, 2]), ("c".to_owned(), vec![])]);
    assert_eq!(
        wire_unordered(&old, &new),
        [
            r#"{"a":"d","p":["b"]}"#,
            r#"{"a":"i","p":["a",1],"t":2}"#,
            r#"{"a":"i","p":["c"],"t":[]}"#,
        ]
    );
}

#[test]
fn integer_bool_and_char_keys_are_json_strings() {
    let old = BTreeMap::from([(-5_i64, 1), (10, 2)]);
    let new = BTreeMap::from([(-5_i64, 3), (2, 4)]);
    assert_eq!(
        wire(&old, &new),
        json!([
            {"a": "u", "p": ["-5"], "t": 3},
            {"a": "d", "p": ["10"]},
            {"a": "i", "p": ["2"], "t": 4},
        ])
    );
    let old = HashMap::from([(u128::MAX, 'x')]);
    let new = HashMap::from([(u128::MAX, 'y')]);
    assert_eq!(
        wire(&old, &new),
        json!([{"a": "u", "p": [u128::MAX.to_string()], "t": "y"}])
    );
    assert_eq!(
        wire(&BTreeMap::from([(true, 1)]), &BTreeMap::from([(false, 1)])),
        json!([{"a": "d", "p": ["true"]}, {"a": "i", "p": ["false"], "t": 1}])
    );
    assert_eq!(
        wire(&BTreeMap::from([('é', 1)]), &BTreeMap::from([('é', 2)])),
        json!([{"a": "u", "p": ["é"], "t": 2}])
    );
}

#[test]
fn options_update_when_one_side_is_none_and_recurse_when_both_are_some() {
    assert_eq!(
        wire(&None, &Some(vec![1])),
        json!([{"a": "u", "p": [], "t": [1]}])
    );
    assert_eq!(
        wire(&Some(vec![1]), &None),
        json!([{"a": "u", "p": [], "t": null}])
    );
    assert_eq!(
        wire(&Some(vec![1]), &Some(vec![1, 2])),
        json!([{"a": "i", "p": [1], "t": 2}])
    );
    assert_eq!(wire(&None::<i32>, &None), json!([]));
    let old = BTreeMap::from([(1_u32, Some("a".to_owned())), (2, None)]);
    let new = BTreeMap::from([(1_u32, None), (2, Some("b".to_owned()))]);
    assert_eq!(
        wire(&old, &new),
        json!([
            {"a": "u", "p": ["1"], "t": null},
            {"a": "u", "p": ["2"], "t": "b"},
        ])
    );
}

#[test]
fn json_values_diff_by_structure_and_replace_on_a_type_change() {
    assert_eq!(
        wire(
            &json!({"keep": 1, "gone": true, "n": 1, "list": [1, 2, 3], "deep": {"x": [1]}}),
            &json!({"keep": 1, "new": "s", "n": {"now": "object"}, "list": [1], "deep": {"x": [1, {}]}}),
        ),
        json!([
            {"a": "i", "p": ["deep", "x", 1], "t": {}},
            {"a": "d", "p": ["gone"]},
            {"a": "d", "p": ["list", 2]},
            {"a": "d", "p": ["list", 1]},
            {"a": "u", "p": ["n"], "t": {"now": "object"}},
            {"a": "i", "p": ["new"], "t": "s"},
        ])
    );
    assert_eq!(
        wire(&json!([1, "a", [2]]), &json!([null, {"a": 1}, 2])),
        json!([
            {"a": "u", "p": [0], "t": null},
            {"a": "u", "p": [1], "t": {"a": 1}},
            {"a": "u", "p": [2], "t": 2},
        ])
    );
    assert_eq!(
        wire(&json!({"a": 1}), &json!([1])),
        json!([{"a": "u", "p": [], "t": [1]}])
    );
}

#[test]
fn json_numbers_differ_as_their_text_does() {
    assert_eq!(
        wire(&json!(1), &json!(1.0)),
        json!([{"a": "u", "p": [], "t": 1.0}])
    );
    assert_eq!(wire(&json!(1.5), &json!(1.5)), json!([]));
    let changes = diff(&json!(0.0), &json!(-0.0)).unwrap();
    assert_eq!(
        serde_json::to_string(&changes).unwrap(),
        r#"[{"a":"u","p":[],"t":-0.0}]"#
    );
}

#[test]
fn floats_change_when_their_json_does() {
    assert_eq!(wire(&1.5_f64, &2.5), json!([{"a": "u", "p": [], "t": 2.5}]));
    assert_eq!(
        serde_json::to_string(&diff(&0.0_f64, &-0.0).unwrap()).unwrap(),
        r#"[{"a":"u","p":[],"t":-0.0}]"#
    );
    // Every non-finite float is `null` in JSON: a NaN field does not send an update forever.
    assert_eq!(wire(&f64::NAN, &f64::NAN), json!([]));
    assert_eq!(wire(&f64::NAN, &-f64::NAN), json!([]));
    assert_eq!(wire(&f64::INFINITY, &f64::NAN), json!([]));
    assert_eq!(
        wire(&1.0_f64, &f64::NAN),
        json!([{"a": "u", "p": [], "t": null}])
    );
    assert_eq!(
        wire(&f64::NAN, &1.0_f64),
        json!([{"a": "u", "p": [], "t": 1.0}])
    );
    assert_eq!(
        wire(&0.5_f32, &0.25),
        json!([{"a": "u", "p": [], "t": 0.25}])
    );
    assert_eq!(wire(&f32::NAN, &f32::INFINITY), json!([]));
}

#[derive(Serialize)]
struct Item {
    id: u64,
    title: String,
}

// The shape `#[derive(Diff)]` generates.
impl Diff for Item {
    fn diff<'a>(&'a self, new: &'a Self, changes: &mut Changes<'a>) {
        changes.at_key("id", |changes| self.id.diff(&new.id, changes));
        changes.at_key("title", |changes| self.title.diff(&new.title, changes));
    }
}

#[derive(Serialize)]
struct State {
    items: Vec<Item>,
    selected: Option<Item>,
}

impl Diff for State {
    fn diff<'a>(&'a self, new: &'a Self, changes: &mut Changes<'a>) {
        changes.at_key("items", |changes| self.items.diff(&new.items, changes));
        changes.at_key("selected", |changes| {
            self.selected.diff(&new.selected, changes)
        });
    }
}

#[test]
fn structs_diff_field_by_field_at_nested_paths() {
    let item = |id: u64, title: &str| Item {
        id,
        title: title.to_owned(),
    };
    let old = State {
        items: vec![item(1, "a"), item(2, "b")],
        selected: Some(item(1, "a")),
    };
    let new = State {
        items: vec![item(1, "A"), item(2, "b"), item(3, "c")],
        selected: Some(item(3, "a")),
    };
    assert_eq!(
        wire(&old, &new),
        json!([
            {"a": "u", "p": ["items", 0, "title"], "t": "A"},
            {"a": "i", "p": ["items", 2], "t": {"id": 3, "title": "c"}},
            {"a": "u", "p": ["selected", "id"], "t": 3},
        ])
    );
    let new = State {
        items: vec![],
        selected: None,
    };
    assert_eq!(
        wire(&old, &new),
        json!([
            {"a": "d", "p": ["items", 1]},
            {"a": "d", "p": ["items", 0]},
            {"a": "u", "p": ["selected"], "t": null},
        ])
    );
}

#[test]
fn shared_arcs_are_not_compared() {
    let shared = Arc::new(vec![1, 2]);
    assert_eq!(wire(&shared, &Arc::clone(&shared)), json!([]));
    assert_eq!(
        wire(&shared, &Arc::new(vec![1, 3])),
        json!([{"a": "u", "p": [1], "t": 3}])
    );
}

#[test]
fn a_value_that_cannot_be_json_is_an_error() {
    let old = None;
    let new = Some(HashMap::from([(vec![1], 1)]));
    // Diff needs no DiffKey for the value it only serializes: a Vec key is a JSON error.
    let error = diff(&Wrapper(old), &Wrapper(new)).unwrap_err();
    assert_eq!(error.to_string(), "key must be a string");

    #[derive(Serialize)]
    struct Wrapper(Option<HashMap<Vec<i32>, i32>>);
    impl Diff for Wrapper {
        fn diff<'a>(&'a self, new: &'a Self, changes: &mut Changes<'a>) {
            if self.0.is_some() != new.0.is_some() {
                changes.update(&new.0);
            }
        }
    }
}

#[test]
fn changes_serialize_in_the_wire_shape() {
    let changes = vec![
        Change::Update {
            path: vec![],
            value: json!(1),
        },
        Change::Insert {
            path: vec![PathSegment::Key("k".into()), PathSegment::Index(3)],
            value: json!(null),
        },
        Change::Delete {
            path: vec![PathSegment::Index(0)],
        },
    ];
    assert_eq!(
        serde_json::to_string(&changes).unwrap(),
        r#"[{"a":"u","p":[],"t":1},{"a":"i","p":["k",3],"t":null},{"a":"d","p":[0]}]"#
    );
}

#[test]
fn apply_follows_the_client_algorithm() {
    let mut state = json!({"list": [1, 2], "map": {"a": 1}});
    let key = |k: &str| PathSegment::Key(k.into());
    let changes = [
        Change::Insert {
            path: vec![key("list"), PathSegment::Index(2)],
            value: json!(3),
        },
        Change::Delete {
            path: vec![key("list"), PathSegment::Index(0)],
        },
        Change::Update {
            path: vec![key("map"), key("b")],
            value: json!(2),
        },
        Change::Delete {
            path: vec![key("map"), key("a")],
        },
    ];
    apply(&mut state, &changes).unwrap();
    assert_eq!(state, json!({"list": [2, 3], "map": {"b": 2}}));

    apply(
        &mut state,
        &[Change::Update {
            path: vec![],
            value: json!("root"),
        }],
    )
    .unwrap();
    assert_eq!(state, json!("root"));
}

#[test]
fn apply_refuses_paths_that_do_not_exist() {
    let state = json!({"list": [1], "n": 1});
    let key = |k: &str| PathSegment::Key(k.into());
    let refused = |change: Change| {
        let mut state = state.clone();
        apply(&mut state, &[change]).unwrap_err()
    };
    let hole = vec![key("list"), PathSegment::Index(2)];
    assert_eq!(
        refused(Change::Insert {
            path: hole.clone(),
            value: json!(0)
        }),
        PatchError::Missing { path: hole }
    );
    let path = vec![key("list"), PathSegment::Index(1)];
    assert_eq!(
        refused(Change::Delete { path: path.clone() }),
        PatchError::Missing { path }
    );
    let path = vec![key("gone")];
    assert_eq!(
        refused(Change::Delete { path: path.clone() }),
        PatchError::Missing { path }
    );
    let path = vec![key("n"), key("x")];
    assert_eq!(
        refused(Change::Update {
            path: path.clone(),
            value: json!(0)
        }),
        PatchError::Missing { path }
    );
    assert_eq!(
        refused(Change::Delete { path: vec![] }),
        PatchError::DeleteRoot
    );
}

#[test]
fn changes_read_back_as_written() {
    let changes = diff(
        &json!({"a": [1, 2, 3], "m": {"x": 1, "gone": true}}),
        &json!({"a": [1, 5], "m": {"x": {"deep": [null]}, "new": "v"}}),
    )
    .unwrap_or_default();
    assert!(changes.len() >= 4, "{changes:?}");
    let text = serde_json::to_string(&changes).unwrap_or_default();
    let back: Vec<Change> = serde_json::from_str(&text).unwrap_or_default();
    assert_eq!(back, changes, "{text}");
    for bad in [
        r#"{"a":"u","p":["x"]}"#,
        r#"{"a":"x","p":[]}"#,
        r#"{"a":"d","p":[true]}"#,
        r#"{"a":"d","p":[-1]}"#,
    ] {
        assert!(serde_json::from_str::<Change>(bad).is_err(), "{bad}");
    }
}
