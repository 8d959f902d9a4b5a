//! Shared diff vectors: `tests/vectors/diff.json` holds cases `{"name", "old", "new", "diff"}`
//! whose diffs the Rust diff computed, so that the Rust patcher (`storex::diff::apply`, here) and
//! the JS client's patcher (`applyDiff`, in `js/test/unit/vectors.test.js`) are checked against
//! the same data rather than each against itself.
//!
//! - `vectors_are_what_the_rust_diff_computes` rebuilds every case from its Rust values (below,
//!   in `cases()`) and checks that the file holds exactly what `storex::diff::diff` gives today,
//!   so the file cannot go stale silently.
//! - `rust_patch_turns_old_into_new` applies every case's diff, as read from the file, to its
//!   `old` with `storex::diff::apply`, and checks the result is `new` (the JSON texts too, which
//!   tell `0.0` from `-0.0`).
//!
//! The file is generated, never written by hand. After changing a case here, or the diff itself,
//! regenerate it with
//!
//! ```text
//! STOREX_WRITE_VECTORS=1 cargo test -p storex-runtime --test diff_vectors
//! ```
//!
//! then run the JS side: `cd storex-runtime/js && node --test test/unit/vectors.test.js`.
//!
//! A case must give the same diff on every run: maps with several changes are `BTreeMap`s (a
//! `HashMap`'s diff follows its iteration order, so `HashMap` cases change one key only).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::OnceLock;

use serde::Serialize;
use serde_json::{json, Value};
use storex::diff::mark::changes_since;
use storex::diff::{apply, diff, Diff, PathSegment};
use storex::{Change, List, Map};

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/diff.json");
const REGENERATE: &str =
    "regenerate it with `STOREX_WRITE_VECTORS=1 cargo test -p storex-runtime --test diff_vectors`";

// ---------------------------------------------------------------------------------------------
// The Rust values the cases are made of.

#[derive(Debug, Clone, PartialEq, Serialize, storex::Diff)]
struct Counter {
    count: i64,
    label: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, storex::Diff)]
struct Owner {
    name: String,
    email: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, storex::Diff)]
struct Todo {
    id: u32,
    title: String,
    done: bool,
    tags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, storex::Diff)]
struct Board {
    name: String,
    owner: Owner,
    todos: Vec<Todo>,
}

#[derive(Debug, Clone, PartialEq, Serialize, storex::Diff)]
struct Grid {
    rows: Vec<Vec<i32>>,
}

// Renamed keys: the path names the key serde writes (`displayName`), not the field.
#[derive(Debug, Clone, PartialEq, Serialize, storex::Diff)]
#[serde(rename_all = "camelCase")]
struct Profile {
    display_name: String,
    last_seen_at: Option<u64>,
}

// An enum is sent whole when it changed.
#[derive(Debug, Clone, PartialEq, Serialize, storex::Diff)]
enum Phase {
    Idle,
    Loading { progress: u8 },
    Failed(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, storex::Diff)]
struct Job {
    id: u32,
    phase: Phase,
}

// Stores of other shapes than a struct with named fields. An enum store is sent whole when it
// changed: at the root, `"p": []`.
#[derive(Debug, Clone, PartialEq, Serialize, storex::Store)]
#[store(name = "DiffVectors.Upload")]
enum Upload {
    Idle,
    Sending { done: u32, total: u32 },
    Failed(String),
}

#[storex::mutations]
impl Upload {
    #[init]
    fn init() -> Self {
        Upload::Idle
    }
}

// A newtype store is its field: its diff is the field's, at paths from the root.
#[derive(Debug, Clone, PartialEq, Serialize, storex::Store)]
#[store(name = "DiffVectors.Text")]
struct Text(Value);

#[storex::mutations]
impl Text {
    #[init]
    fn init() -> Self {
        Text(json!("abc"))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, storex::Diff)]
struct Point {
    x: f64,
    y: f32,
}

#[derive(Debug, Clone, PartialEq, Serialize, storex::Diff)]
struct Settings {
    owner: Option<Owner>,
    theme: Option<String>,
}

fn todo(id: u32, title: &str, done: bool, tags: &[&str]) -> Todo {
    Todo {
        id,
        title: title.to_owned(),
        done,
        tags: tags.iter().map(|tag| (*tag).to_owned()).collect(),
    }
}

fn board() -> Board {
    Board {
        name: "chores".to_owned(),
        owner: Owner {
            name: "ada".to_owned(),
            email: None,
        },
        todos: vec![
            todo(1, "milk", false, &["shop"]),
            todo(2, "bread", true, &[]),
            todo(3, "post", false, &["town", "urgent"]),
        ],
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|item| (*item).to_owned()).collect()
}

fn btree<V: Clone>(entries: &[(&str, V)]) -> BTreeMap<String, V> {
    entries
        .iter()
        .map(|(key, value)| ((*key).to_owned(), value.clone()))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The cases.

/// One case: the JSON of both values and the diff the Rust code computes between them.
struct Case {
    name: &'static str,
    old: Value,
    new: Value,
    diff: Vec<Change>,
}

fn case<T: Diff + ?Sized>(name: &'static str, old: &T, new: &T) -> Case {
    Case {
        name,
        old: serde_json::to_value(old).expect("old serializes"),
        new: serde_json::to_value(new).expect("new serializes"),
        diff: diff(old, new).expect("the values serialize"),
    }
}

fn cases() -> Vec<Case> {
    let mut cases = Vec::new();

    // Scalars and structs.
    cases.push(case("unchanged struct: empty diff", &board(), &board()));
    cases.push(case(
        "integer root: update at the empty path",
        &1_i64,
        &2_i64,
    ));
    cases.push(case(
        "struct field update",
        &Counter {
            count: 1,
            label: "a".to_owned(),
        },
        &Counter {
            count: 2,
            label: "a".to_owned(),
        },
    ));
    let mut new = board();
    new.owner.name = "grace".to_owned();
    cases.push(case("nested struct field update", &board(), &new));
    let mut new = board();
    new.todos[1].done = false;
    new.todos[2].title = "parcel".to_owned();
    cases.push(case("fields of structs inside a vec", &board(), &new));
    cases.push(case(
        "serde rename_all: the path names the JSON key",
        &Profile {
            display_name: "Ada".to_owned(),
            last_seen_at: Some(1),
        },
        &Profile {
            display_name: "Ada L.".to_owned(),
            last_seen_at: Some(2),
        },
    ));

    // Vecs.
    cases.push(case(
        "vec grows by several at the end",
        &vec![1, 2],
        &vec![1, 2, 3, 4, 5],
    ));
    cases.push(case(
        "vec grows from empty",
        &Vec::<String>::new(),
        &strings(&["a", "b", "c"]),
    ));
    cases.push(case(
        "vec grows and changes common positions",
        &vec![1, 2],
        &vec![9, 2, 3, 4],
    ));
    cases.push(case(
        "vec shrinks by several: deletes from the highest index down",
        &vec![1, 2, 3, 4, 5, 6],
        &vec![1, 2],
    ));
    cases.push(case(
        "vec shrinks to empty",
        &strings(&["a", "b", "c"]),
        &Vec::<String>::new(),
    ));
    cases.push(case(
        "first element removed: updates by position, then a delete",
        &strings(&["a", "b", "c"]),
        &strings(&["b", "c"]),
    ));
    cases.push(case(
        "nested vecs grow and shrink",
        &Grid {
            rows: vec![vec![1, 2, 3], vec![4], vec![5, 6], vec![]],
        },
        &Grid {
            rows: vec![vec![1], vec![4, 7, 8], vec![5, 6]],
        },
    ));
    cases.push(case(
        "nested vecs: the outer grows while an inner one shrinks",
        &Grid {
            rows: vec![vec![1, 2, 3]],
        },
        &Grid {
            rows: vec![vec![1], vec![], vec![2, 3]],
        },
    ));
    let mut new = board();
    new.todos.push(todo(4, "bank", false, &[]));
    new.todos.push(todo(5, "gym", true, &["health"]));
    cases.push(case("vec of structs grows by several", &board(), &new));
    let mut new = board();
    new.todos.truncate(1);
    new.todos[0].tags.clear();
    cases.push(case(
        "vec of structs shrinks while the kept one changes",
        &board(),
        &new,
    ));
    let mut new = board();
    new.todos[0].tags.extend(strings(&["dairy", "cold"]));
    new.todos[2].tags.truncate(0);
    cases.push(case(
        "tags of todos grow and shrink: deep paths of keys and indexes",
        &board(),
        &new,
    ));
    cases.push(case(
        "tuple: position by position",
        &(1_u8, "a".to_owned(), vec![true]),
        &(1_u8, "b".to_owned(), vec![true, false]),
    ));

    // Maps.
    cases.push(case(
        "map key added",
        &btree(&[("a", 1)]),
        &btree(&[("a", 1), ("b", 2)]),
    ));
    cases.push(case(
        "map key removed",
        &btree(&[("a", 1), ("b", 2)]),
        &btree(&[("b", 2)]),
    ));
    cases.push(case(
        "map value changed",
        &btree(&[("a", 1), ("b", 2)]),
        &btree(&[("a", 1), ("b", 3)]),
    ));
    cases.push(case(
        "map keys added, removed and changed at once",
        &btree(&[("a", 1), ("b", 2), ("c", 3)]),
        &btree(&[("b", 20), ("c", 3), ("d", 4), ("e", 5)]),
    ));
    cases.push(case(
        "HashMap key added",
        &HashMap::from([("x".to_owned(), "1".to_owned())]),
        &HashMap::from([
            ("x".to_owned(), "1".to_owned()),
            ("y".to_owned(), "2".to_owned()),
        ]),
    ));
    cases.push(case(
        "map with integer keys: the path holds them as strings",
        &BTreeMap::from([(1_u32, "one".to_owned()), (10, "ten".to_owned())]),
        &BTreeMap::from([(1_u32, "uno".to_owned()), (2, "two".to_owned())]),
    ));
    cases.push(case(
        "map of vecs: values grow and shrink",
        &btree(&[("ada", vec![1, 2, 3]), ("bob", vec![])]),
        &btree(&[("ada", vec![1]), ("bob", vec![4, 5])]),
    ));
    cases.push(case(
        "map keys with unicode, punctuation and the empty key",
        &btree(&[("", 0), ("ключ", 1), ("a.b/c", 2)]),
        &btree(&[("", 1), ("🔑", 3), ("a.b/c", 2), ("\"q\"\\", 4)]),
    ));
    // `__proto__` is an ordinary key to JSON and to Rust, and a special one to JavaScript objects.
    cases.push(case(
        "map key __proto__ added",
        &btree(&[("a", json!(1))]),
        &btree(&[("a", json!(1)), ("__proto__", json!({"polluted": true}))]),
    ));
    cases.push(case(
        "map keys constructor and toString added",
        &btree(&[("a", 1)]),
        &btree(&[("a", 1), ("constructor", 2), ("toString", 3)]),
    ));

    // Options and enums.
    let owner = Owner {
        name: "ada".to_owned(),
        email: None,
    };
    cases.push(case(
        "Option None -> Some",
        &Settings {
            owner: None,
            theme: None,
        },
        &Settings {
            owner: Some(owner.clone()),
            theme: Some("dark".to_owned()),
        },
    ));
    cases.push(case(
        "Option Some -> None",
        &Settings {
            owner: Some(owner.clone()),
            theme: Some("dark".to_owned()),
        },
        &Settings {
            owner: None,
            theme: None,
        },
    ));
    cases.push(case(
        "Option Some -> Some: the inner struct is diffed",
        &Settings {
            owner: Some(owner.clone()),
            theme: None,
        },
        &Settings {
            owner: Some(Owner {
                name: "ada".to_owned(),
                email: Some("ada@example.org".to_owned()),
            }),
            theme: None,
        },
    ));
    cases.push(case(
        "Option at the root: None -> Some is a root replace",
        &None,
        &Some(owner),
    ));
    cases.push(case(
        "enum at the root changes variant: root replace",
        &Phase::Idle,
        &Phase::Loading { progress: 10 },
    ));
    cases.push(case(
        "enum store changes variant: root replace",
        &Upload::Sending { done: 1, total: 4 },
        &Upload::Failed("timeout".to_owned()),
    ));
    cases.push(case(
        "enum store, same variant, other data: root replace",
        &Upload::Sending { done: 1, total: 4 },
        &Upload::Sending { done: 2, total: 4 },
    ));
    cases.push(case(
        "enum field: same variant, other data, sent whole",
        &Job {
            id: 1,
            phase: Phase::Loading { progress: 10 },
        },
        &Job {
            id: 1,
            phase: Phase::Loading { progress: 90 },
        },
    ));
    cases.push(case(
        "enums in a vec change variant",
        &vec![Phase::Idle, Phase::Loading { progress: 1 }],
        &vec![Phase::Failed("timeout".to_owned()), Phase::Idle],
    ));

    // serde_json::Value.
    cases.push(case(
        "Value: number -> object",
        &json!({"v": 1, "w": 2}),
        &json!({"v": {"n": 1}, "w": 2}),
    ));
    cases.push(case(
        "Value: array -> string",
        &json!({"v": [1, 2, 3]}),
        &json!({"v": "three"}),
    ));
    cases.push(case(
        "Value: object -> array",
        &json!({"v": {"a": 1}}),
        &json!({"v": [{"a": 1}]}),
    ));
    cases.push(case(
        "Value: null, bool and string swap types",
        &json!([null, true, "s", 0]),
        &json!([false, "t", null, "0"]),
    ));
    cases.push(case(
        "Value root changes type: object -> array",
        &json!({"a": 1}),
        &json!([1, {"a": 1}]),
    ));
    cases.push(case(
        "Value: deep path mixing keys and indexes",
        &json!({"a": [{"b": {"c": [1, 2, {"d": "x"}]}}, 5]}),
        &json!({"a": [{"b": {"c": [1, 2, {"d": "y", "e": []}, 3]}}, 5]}),
    ));
    cases.push(case(
        "Value: integer 1 -> float 1.0",
        &json!({"n": 1}),
        &json!({"n": 1.0}),
    ));

    // Newtype stores.
    cases.push(case(
        "newtype store over a string Value: update at the root",
        &Text(json!("abc")),
        &Text(json!("abd")),
    ));
    cases.push(case(
        "newtype store over an object Value: the diff is inside it, from the root",
        &Text(json!({"x": 1, "list": [1, 2]})),
        &Text(json!({"x": 2, "list": [1], "y": null})),
    ));

    // Floats and strings.
    cases.push(case(
        "f64 0.0 -> -0.0",
        &Point { x: 0.0, y: 1.5 },
        &Point { x: -0.0, y: 1.5 },
    ));
    cases.push(case(
        "f32 -0.0 -> 0.0",
        &Point { x: 1.0, y: -0.0 },
        &Point { x: 1.0, y: 0.0 },
    ));
    cases.push(case(
        "Value: -0.0 in an array",
        &json!([0.0, -0.0, 1]),
        &json!([-0.0, 0.0, -0.0]),
    ));
    cases.push(case(
        "non-finite floats are all null: NaN -> infinity is no change",
        &Point {
            x: f64::NAN,
            y: 2.0,
        },
        &Point {
            x: f64::INFINITY,
            y: 2.0,
        },
    ));
    cases.push(case(
        "finite -> NaN is an update to null",
        &Point { x: 1.0, y: 2.0 },
        &Point {
            x: f64::NAN,
            y: 2.0,
        },
    ));
    cases.push(case(
        "strings with unicode",
        &strings(&["cafe", "plain", "same ü"]),
        &strings(&[
            "café 日本語",
            "emoji 🎉👩\u{200d}💻, combining e\u{301}",
            "same ü",
            "line\u{2028}sep, \"quotes\", \\, tab\t, nul\u{0}",
        ]),
    ));

    tracked_cases(&mut cases);
    cases
}

// ---------------------------------------------------------------------------------------------
// Tracked transactions: the diff is what `Diff::changes_since` emits after writes on tracked
// collections, checked here to be the structural diff as well.

// A newtype over a tracked list is tracked as the list is: its marks are the list's.
#[derive(Debug, Clone, PartialEq, Serialize, storex::Diff)]
struct TrackedTodos(List<Todo>);

#[derive(Debug, Clone, PartialEq, Serialize, storex::Diff)]
struct TrackedBoard {
    name: String,
    todos: List<Todo>,
    by_id: Map<String, Todo>,
    archive: List<Todo>,
}

fn tracked_board() -> TrackedBoard {
    TrackedBoard {
        name: "chores".to_owned(),
        todos: board().todos.into(),
        by_id: Map::from_iter([("1".to_owned(), todo(1, "milk", false, &["shop"]))]),
        archive: List::new(),
    }
}

/// A case whose diff a transaction emitted: `write` runs between `begin` and `changes_since`.
fn tracked_case(name: &'static str, write: impl FnOnce(&mut TrackedBoard)) -> Case {
    tracked_case_from(name, tracked_board(), write)
}

/// A tracked case from `old`, of any type.
fn tracked_case_from<T: Diff + Clone>(
    name: &'static str,
    old: T,
    write: impl FnOnce(&mut T),
) -> Case {
    let mut new = old.clone();
    let mark = new.begin();
    write(&mut new);
    let emitted = changes_since(&new, &mark).expect("the state serializes");
    assert_eq!(
        emitted,
        diff(&old, &new).unwrap(),
        "{name}: the transaction's diff is the structural one"
    );
    new.commit(mark);
    Case {
        name,
        old: serde_json::to_value(&old).expect("old serializes"),
        new: serde_json::to_value(&new).expect("new serializes"),
        diff: emitted,
    }
}

fn tracked_cases(cases: &mut Vec<Case>) {
    cases.push(tracked_case("tracked: one field of one element", |b| {
        b.todos[1].done = false;
    }));
    cases.push(tracked_case("tracked: one element written twice", |b| {
        b.todos[0].title.push_str(" and eggs");
        b.todos[0].tags.push("dairy".to_owned());
        b.todos[0].title = "oat milk".to_owned();
    }));
    cases.push(tracked_case(
        "tracked: insert at the front, then pop",
        |b| {
            b.todos.insert(0, todo(9, "call", false, &[]));
            b.todos.pop();
        },
    ));
    cases.push(tracked_case(
        "tracked: push then remove from the middle",
        |b| {
            b.todos.push(todo(4, "bank", false, &[]));
            b.todos.remove(1);
        },
    ));
    cases.push(tracked_case("tracked: truncate then push", |b| {
        b.todos.truncate(1);
        b.todos.push(todo(5, "gym", true, &["health"]));
    }));
    cases.push(tracked_case(
        "tracked: sorted (the whole list kept once)",
        |b| {
            b.todos.sort_by_key(|todo| std::cmp::Reverse(todo.id));
        },
    ));
    cases.push(tracked_case("tracked: the list replaced whole", |b| {
        b.todos = vec![todo(7, "new", false, &[])].into();
    }));
    cases.push(tracked_case(
        "tracked: the list moved to another field",
        |b| {
            b.archive = std::mem::take(&mut b.todos);
        },
    ));
    cases.push(tracked_case("tracked: map key inserted", |b| {
        b.by_id.insert("2".to_owned(), todo(2, "bread", true, &[]));
    }));
    cases.push(tracked_case("tracked: map value written in place", |b| {
        if let Some(todo) = b.by_id.get_mut("1") {
            todo.done = true;
        }
    }));
    cases.push(tracked_case(
        "tracked: map key removed, then a list element",
        |b| {
            b.by_id.remove("1");
            b.todos[2].tags.clear();
        },
    ));
    cases.push(tracked_case_from(
        "tracked newtype over a list: one element written, one removed, from the root",
        TrackedTodos(board().todos.into()),
        |todos| {
            const { assert!(<TrackedTodos as Diff>::TRACKED) };
            todos.0[0].done = true;
            todos.0.remove(1);
        },
    ));
}

// ---------------------------------------------------------------------------------------------
// The file.

/// The file's text for `cases`: one case per object, each value on one line, one change a line.
fn render(cases: &[Case]) -> String {
    let mut out = String::from("[\n");
    for (index, case) in cases.iter().enumerate() {
        out.push_str("  {\n");
        writeln!(out, "    \"name\": {},", json(&case.name)).unwrap();
        writeln!(out, "    \"old\": {},", json(&case.old)).unwrap();
        writeln!(out, "    \"new\": {},", json(&case.new)).unwrap();
        if case.diff.is_empty() {
            out.push_str("    \"diff\": []\n");
        } else {
            out.push_str("    \"diff\": [\n");
            for (at, change) in case.diff.iter().enumerate() {
                let comma = if at + 1 < case.diff.len() { "," } else { "" };
                writeln!(out, "      {}{comma}", json(change)).unwrap();
            }
            out.push_str("    ]\n");
        }
        out.push_str(if index + 1 < cases.len() {
            "  },\n"
        } else {
            "  }\n"
        });
    }
    out.push_str("]\n");
    out
}

/// Compact JSON, as serde_json writes it.
fn json<T: Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).expect("a case serializes")
}

/// The file's cases as JSON. With `STOREX_WRITE_VECTORS=1`, the file is (re)written first, once
/// for both tests, so that neither reads it half written.
fn vectors() -> &'static Vec<Value> {
    static VECTORS_JSON: OnceLock<Vec<Value>> = OnceLock::new();
    VECTORS_JSON.get_or_init(|| {
        if std::env::var("STOREX_WRITE_VECTORS").is_ok_and(|value| value == "1") {
            std::fs::create_dir_all(std::path::Path::new(VECTORS).parent().unwrap()).unwrap();
            std::fs::write(VECTORS, render(&cases())).expect("the vectors file is written");
        }
        let text = std::fs::read_to_string(VECTORS)
            .unwrap_or_else(|error| panic!("cannot read {VECTORS} ({error}): {REGENERATE}"));
        serde_json::from_str(&text)
            .unwrap_or_else(|error| panic!("{VECTORS} is not a JSON array ({error}): {REGENERATE}"))
    })
}

fn field<'a>(case: &'a Value, key: &str) -> &'a Value {
    case.get(key)
        .unwrap_or_else(|| panic!("a case without {key:?}: {case}"))
}

/// A change as the wire encodes it (`storex::Change` serializes but does not deserialize).
fn parse_change(change: &Value) -> Change {
    let path = field(change, "p")
        .as_array()
        .unwrap_or_else(|| panic!("a path that is not a list: {change}"))
        .iter()
        .map(|segment| match segment {
            Value::String(key) => PathSegment::Key(key.clone()),
            Value::Number(index) => PathSegment::Index(
                index
                    .as_u64()
                    .and_then(|index| usize::try_from(index).ok())
                    .unwrap_or_else(|| panic!("a path index that is not one: {change}")),
            ),
            _ => panic!("a path segment that is neither a key nor an index: {change}"),
        })
        .collect();
    match field(change, "a").as_str() {
        Some("u") => Change::Update {
            path,
            value: field(change, "t").clone(),
        },
        Some("i") => Change::Insert {
            path,
            value: field(change, "t").clone(),
        },
        Some("d") => {
            assert!(change.get("t").is_none(), "a delete with a value: {change}");
            Change::Delete { path }
        }
        _ => panic!("an unknown action: {change}"),
    }
}

fn parse_diff(case: &Value) -> Vec<Change> {
    field(case, "diff")
        .as_array()
        .unwrap_or_else(|| panic!("a diff that is not a list: {case}"))
        .iter()
        .map(parse_change)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The tests.

#[test]
fn cases_have_unique_names() {
    let cases = cases();
    let mut names: Vec<_> = cases.iter().map(|case| case.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), cases.len(), "two cases share a name");
}

#[test]
fn vectors_are_what_the_rust_diff_computes() {
    let expected = cases();
    let found = vectors();
    let found_names: Vec<_> = found.iter().map(|case| field(case, "name")).collect();
    let expected_names: Vec<_> = expected.iter().map(|case| json!(case.name)).collect();
    assert_eq!(
        found_names,
        expected_names.iter().collect::<Vec<_>>(),
        "{VECTORS} does not hold the cases of this test: {REGENERATE}"
    );
    for (case, found) in expected.iter().zip(found) {
        let name = case.name;
        // JSON texts, not `Value`s: serde_json's `==` calls `0.0` and `-0.0` equal.
        for (key, value) in [("old", &case.old), ("new", &case.new)] {
            assert_eq!(
                field(found, key).to_string(),
                value.to_string(),
                "{name}: `{key}` differs from the Rust value's JSON: {REGENERATE}"
            );
        }
        let found_diff = parse_diff(found);
        assert_eq!(
            found_diff, case.diff,
            "{name}: the file's diff is not what the Rust diff computes today: {REGENERATE}"
        );
        assert_eq!(
            field(found, "diff").to_string(),
            json(&case.diff),
            "{name}: the file's diff is not what the Rust diff computes today: {REGENERATE}"
        );
    }
    // The exact text too, so that the file stays as `render` writes it.
    let text = std::fs::read_to_string(VECTORS)
        .unwrap()
        .replace("\r\n", "\n");
    assert!(
        text == render(&expected),
        "{VECTORS} is not formatted as this test writes it: {REGENERATE}"
    );
}

#[test]
fn rust_patch_turns_old_into_new() {
    let cases = vectors();
    assert!(cases.len() > 20, "only {} cases in {VECTORS}", cases.len());
    for case in cases {
        let name = field(case, "name");
        let changes = parse_diff(case);
        let mut state = field(case, "old").clone();
        let expected = field(case, "new");
        apply(&mut state, &changes)
            .unwrap_or_else(|error| panic!("{name}: {error} while applying {changes:?}"));
        assert_eq!(&state, expected, "{name}");
        assert_eq!(state.to_string(), expected.to_string(), "{name}");
    }
}
