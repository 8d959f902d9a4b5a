//! Tracked transactions on random sequences of writes: the diff a transaction emits
//! ([`Diff::changes_since`]) is the structural diff of the states before and after (map changes
//! may come in another order: keys are independent), applying it to the old JSON gives the new
//! JSON, and a rollback, after an error or a panic half-way, leaves the state equal to what it
//! was, hidden (`#[serde(skip)]`) fields included.
//!
//! The state mixes every kind of field a transaction treats differently: tracked collections
//! (`List`, `Map`) at the top and inside a nested struct, plain fields (copied), a
//! `#[storex(replace)]` field and a `#[serde(skip)]` one; the writes include several writes to
//! one element, insert then delete, growth and shrinking, replacing a tracked collection, taking
//! it with `mem::take`, and swapping two of them.
//!
//! A newtype over the state (`#[derive(Diff)] struct Wrapped(State)`) is tracked through its
//! field: the same writes give it the same diffs and the same rollbacks.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::panic::AssertUnwindSafe;

use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use storex::diff::mark::{changes_back, changes_since, roll_back};
use storex::diff::{apply, apply_to, diff, transact, Diff, PathSegment, TransactError};
use storex::{Change, List, Map};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, storex::Diff)]
struct Item {
    id: u32,
    title: String,
    done: bool,
    tags: Vec<String>,
    score: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, storex::Diff)]
struct Board {
    name: String,
    cards: List<Item>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, storex::Diff)]
#[serde(rename_all = "camelCase")]
struct State {
    title: String,
    items: List<Item>,
    by_key: Map<String, Item>,
    board: Board,
    plain: Vec<u32>,
    #[storex(replace)]
    flag: Option<bool>,
    #[serde(skip)]
    hidden: Vec<u8>,
    spare: List<Item>,
}

/// The state behind a newtype: serde writes it as the state, and its marks are the state's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, storex::Diff)]
struct Wrapped(State);

/// A newtype over a tracked list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, storex::Diff)]
struct Rows(List<Item>);

#[derive(Debug, Clone)]
enum Op {
    Title(String),
    Score(usize, i64),
    Rename(usize, String),
    SetItem(usize, Item),
    Tag(usize, String),
    Push(Item),
    Pop,
    Insert(usize, Item),
    Remove(usize),
    SwapRemove(usize),
    Swap(usize, usize),
    Truncate(usize),
    Clear,
    SortByScore,
    Retain(u32),
    BumpAll,
    MapInsert(String, Item),
    MapRemove(String),
    MapScore(String, i64),
    MapEntry(String),
    MapRetain(u32),
    CardScore(usize, i64),
    CardPush(Item),
    CardRemove(usize),
    BoardName(String),
    Plain(u32),
    Flag(Option<bool>),
    Hidden(u8),
    ReplaceItems(Vec<Item>),
    TakeItems,
    SwapLists,
    MoveIntoSpare,
    ReplaceMap(Vec<(String, Item)>),
}

fn item() -> impl Strategy<Value = Item> {
    (
        0..50u32,
        "[a-c]{0,3}",
        any::<bool>(),
        prop::collection::vec("[xy]", 0..3),
        -5..5i64,
    )
        .prop_map(|(id, title, done, tags, score)| Item {
            id,
            title,
            done,
            tags,
            score,
        })
}

fn key() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["a", "b", "c", "d", "e"]).prop_map(str::to_owned)
}

fn op() -> impl Strategy<Value = Op> {
    let index = 0..8usize;
    prop_oneof![
        "[a-z]{0,4}".prop_map(Op::Title),
        (index.clone(), -3..3i64).prop_map(|(i, v)| Op::Score(i, v)),
        (index.clone(), "[a-c]{0,3}").prop_map(|(i, t)| Op::Rename(i, t)),
        (index.clone(), item()).prop_map(|(i, x)| Op::SetItem(i, x)),
        (index.clone(), "[xyz]").prop_map(|(i, t)| Op::Tag(i, t)),
        item().prop_map(Op::Push),
        Just(Op::Pop),
        (index.clone(), item()).prop_map(|(i, x)| Op::Insert(i, x)),
        index.clone().prop_map(Op::Remove),
        index.clone().prop_map(Op::SwapRemove),
        (index.clone(), index.clone()).prop_map(|(a, b)| Op::Swap(a, b)),
        index.clone().prop_map(Op::Truncate),
        Just(Op::Clear),
        Just(Op::SortByScore),
        (1..4u32).prop_map(Op::Retain),
        Just(Op::BumpAll),
        (key(), item()).prop_map(|(k, x)| Op::MapInsert(k, x)),
        key().prop_map(Op::MapRemove),
        (key(), -3..3i64).prop_map(|(k, v)| Op::MapScore(k, v)),
        key().prop_map(Op::MapEntry),
        (1..4u32).prop_map(Op::MapRetain),
        (index.clone(), -3..3i64).prop_map(|(i, v)| Op::CardScore(i, v)),
        item().prop_map(Op::CardPush),
        index.clone().prop_map(Op::CardRemove),
        "[a-z]{0,3}".prop_map(Op::BoardName),
        (0..9u32).prop_map(Op::Plain),
        prop::option::of(any::<bool>()).prop_map(Op::Flag),
        any::<u8>().prop_map(Op::Hidden),
        prop::collection::vec(item(), 0..4).prop_map(Op::ReplaceItems),
        Just(Op::TakeItems),
        Just(Op::SwapLists),
        Just(Op::MoveIntoSpare),
        prop::collection::vec((key(), item()), 0..3).prop_map(Op::ReplaceMap),
    ]
}

fn state() -> impl Strategy<Value = State> {
    (
        "[a-z]{0,4}",
        prop::collection::vec(item(), 0..6),
        prop::collection::vec((key(), item()), 0..4),
        prop::collection::vec(item(), 0..4),
        prop::collection::vec(0..9u32, 0..3),
        prop::collection::vec(item(), 0..3),
    )
        .prop_map(|(title, items, by_key, cards, plain, spare)| State {
            title,
            items: items.into(),
            by_key: by_key.into_iter().collect(),
            board: Board {
                name: "board".into(),
                cards: cards.into(),
            },
            plain,
            flag: None,
            hidden: vec![1, 2, 3],
            spare: spare.into(),
        })
}

/// Runs one write on the state, as a mutation body would (plain Rust on the fields).
fn run(state: &mut State, op: &Op) {
    let len = state.items.len();
    match op.clone() {
        Op::Title(title) => state.title = title,
        Op::Score(i, v) if i < len => state.items[i].score += v,
        Op::Rename(i, title) if i < len => state.items[i].title = title,
        Op::SetItem(i, item) if i < len => state.items[i] = item,
        Op::Tag(i, tag) => {
            if let Some(item) = state.items.get_mut(i) {
                item.tags.push(tag);
            }
        }
        Op::Push(item) => state.items.push(item),
        Op::Pop => {
            state.items.pop();
        }
        Op::Insert(i, item) if i <= len => state.items.insert(i, item),
        Op::Remove(i) if i < len => {
            state.items.remove(i);
        }
        Op::SwapRemove(i) if i < len => {
            state.items.swap_remove(i);
        }
        Op::Swap(a, b) if a < len && b < len => state.items.swap(a, b),
        Op::Truncate(n) => state.items.truncate(n),
        Op::Clear => state.items.clear(),
        Op::SortByScore => state.items.sort_by_key(|item| item.score),
        Op::Retain(m) => state.items.retain(|item| item.id % m != 0),
        Op::BumpAll => {
            for item in state.items.iter_mut() {
                item.score += 1;
            }
        }
        Op::MapInsert(k, item) => {
            state.by_key.insert(k, item);
        }
        Op::MapRemove(k) => {
            state.by_key.remove(&k);
        }
        Op::MapScore(k, v) => {
            if let Some(item) = state.by_key.get_mut(&k) {
                item.score += v;
            }
        }
        Op::MapEntry(k) => {
            state
                .by_key
                .entry(k)
                .or_insert_with(|| Item {
                    id: 99,
                    title: String::new(),
                    done: false,
                    tags: Vec::new(),
                    score: 0,
                })
                .done ^= true;
        }
        Op::MapRetain(m) => state.by_key.retain(|_, item| item.id % m != 0),
        Op::CardScore(i, v) => {
            if let Some(card) = state.board.cards.get_mut(i) {
                card.score += v;
            }
        }
        Op::CardPush(item) => state.board.cards.push(item),
        Op::CardRemove(i) if i < state.board.cards.len() => {
            state.board.cards.remove(i);
        }
        Op::BoardName(name) => state.board.name = name,
        Op::Plain(n) => state.plain.push(n),
        Op::Flag(flag) => state.flag = flag,
        Op::Hidden(byte) => state.hidden.push(byte),
        Op::ReplaceItems(items) => state.items = items.into(),
        Op::TakeItems => drop(std::mem::take(&mut state.items)),
        Op::SwapLists => std::mem::swap(&mut state.items, &mut state.spare),
        Op::MoveIntoSpare => state.spare = std::mem::take(&mut state.items),
        Op::ReplaceMap(entries) => state.by_key = entries.into_iter().collect(),
        // An index out of range: nothing (the bounds are the test's, not the list's).
        _ => {}
    }
}

/// The changes with each run of changes to the map field put in one order: map keys are
/// independent, so their order is not part of the diff's contract.
fn normalized(changes: &[Change]) -> Vec<String> {
    let in_map = |change: &Change| {
        let path = match change {
            Change::Update { path, .. } | Change::Insert { path, .. } | Change::Delete { path } => {
                path
            }
        };
        path.len() > 1 && path[0] == PathSegment::Key("byKey".into())
    };
    let mut out = Vec::new();
    let mut run: Vec<String> = Vec::new();
    for change in changes {
        let text = serde_json::to_string(change).unwrap();
        if in_map(change) {
            run.push(text);
        } else {
            run.sort();
            out.append(&mut run);
            out.push(text);
        }
    }
    run.sort();
    out.append(&mut run);
    out
}

/// One committed transaction: the emitted diff against the structural one and the JSON.
fn check_commit(state: &mut State, ops: &[Op]) -> Result<(), TestCaseError> {
    let before = state.clone();
    let before_json = serde_json::to_value(&before).unwrap();
    let mark = state.begin();
    for op in ops {
        run(state, op);
    }
    let emitted = changes_since(&*state, &mark).unwrap();
    let structural = diff(&before, &*state).unwrap();
    prop_assert_eq!(normalized(&emitted), normalized(&structural));
    let mut patched = before_json;
    apply(&mut patched, &emitted).map_err(|error| TestCaseError::fail(error.to_string()))?;
    prop_assert_eq!(
        patched.to_string(),
        serde_json::to_value(&*state).unwrap().to_string()
    );
    // The way back: the structural diff from the new state to the old one, and it leads there.
    let back = changes_back(&*state, &mark).unwrap();
    prop_assert_eq!(
        normalized(&back),
        normalized(&diff(&*state, &before).unwrap())
    );
    let mut unpatched = serde_json::to_value(&*state).unwrap();
    apply(&mut unpatched, &back).map_err(|error| TestCaseError::fail(error.to_string()))?;
    prop_assert_eq!(
        unpatched.to_string(),
        serde_json::to_value(&before).unwrap().to_string()
    );
    state.commit(mark);
    Ok(())
}

/// One transaction rolled back after the writes, or after a panic half-way through them.
fn check_rollback(
    state: &mut State,
    ops: &[Op],
    panic_at: Option<usize>,
) -> Result<(), TestCaseError> {
    let before = state.clone();
    let before_json = serde_json::to_value(&before).unwrap();
    let mark = state.begin();
    let ran = std::panic::catch_unwind(AssertUnwindSafe(|| {
        for (index, op) in ops.iter().enumerate() {
            if panic_at == Some(index) {
                panic!("a mutation panics half-way (expected by the test)");
            }
            run(state, op);
        }
    }));
    prop_assert_eq!(ran.is_err(), panic_at.is_some_and(|at| at < ops.len()));
    roll_back(state, mark);
    prop_assert_eq!(&*state, &before);
    // `PartialEq` sees the hidden field too; the JSON is what clients would see.
    prop_assert_eq!(serde_json::to_value(&*state).unwrap(), before_json);
    Ok(())
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn the_emitted_diff_is_the_structural_diff(
        mut state in state(),
        first in prop::collection::vec(op(), 0..12),
        second in prop::collection::vec(op(), 0..12),
    ) {
        // Two transactions in a row: the second starts from what the first left.
        check_commit(&mut state, &first)?;
        check_commit(&mut state, &second)?;
    }

    #[test]
    fn a_rollback_leaves_the_state_as_it_was(
        mut state in state(),
        committed in prop::collection::vec(op(), 0..8),
        ops in prop::collection::vec(op(), 0..12),
        panic_at in prop::option::of(0..12usize),
    ) {
        check_commit(&mut state, &committed)?;
        check_rollback(&mut state, &ops, panic_at)?;
        // The state goes on working after a rollback.
        check_commit(&mut state, &ops)?;
    }
}

proptest! {
    #![proptest_config(config())]

    /// `transact` inside a transaction (as inside a mutation): the inner one commits or rolls
    /// back on its own, and the outer one still diffs and rolls back from where it began.
    #[test]
    fn a_transaction_inside_another_one(
        mut state in state(),
        first in prop::collection::vec(op(), 0..6),
        inner in prop::collection::vec(op(), 0..8),
        inner_fails in any::<bool>(),
        last in prop::collection::vec(op(), 0..6),
        outer_fails in any::<bool>(),
    ) {
        let before = state.clone();
        let mark = state.begin();
        for op in &first {
            run(&mut state, op);
        }
        let before_inner = state.clone();
        let done = transact(&mut state, |state| {
            for op in &inner {
                run(state, op);
            }
            if inner_fails { Err("refused") } else { Ok(()) }
        });
        match done {
            Err(TransactError::Refused(_)) => prop_assert_eq!(&state, &before_inner),
            Err(error) => return Err(TestCaseError::fail(error.to_string())),
            Ok(done) => {
                prop_assert_eq!(normalized(&done.diff), normalized(&diff(&before_inner, &state).unwrap()));
                // `apply_to` goes through JSON: the hidden field comes back empty, so the
                // JSON is compared.
                let mut undone = state.clone();
                apply_to(&mut undone, &done.undo).map_err(|error| TestCaseError::fail(error.to_string()))?;
                prop_assert_eq!(
                    serde_json::to_value(&undone).unwrap(),
                    serde_json::to_value(&before_inner).unwrap()
                );
            }
        }
        for op in &last {
            run(&mut state, op);
        }
        if outer_fails {
            roll_back(&mut state, mark);
            prop_assert_eq!(&state, &before);
        } else {
            let emitted = changes_since(&state, &mark).unwrap();
            prop_assert_eq!(normalized(&emitted), normalized(&diff(&before, &state).unwrap()));
            state.commit(mark);
        }
    }
}

proptest! {
    #![proptest_config(config())]

    /// A list of lists: elements are copied when written, and their inner lists diffed whole.
    #[test]
    fn nested_lists_diff_and_roll_back(
        outer in prop::collection::vec(prop::collection::vec(0..5i32, 0..4), 0..5),
        writes in prop::collection::vec((0..6usize, 0..6usize, 0..5i32), 0..8),
        fail in any::<bool>(),
    ) {
        let mut state: List<List<i32>> = outer.into_iter().map(List::from).collect();
        let before = state.clone();
        let mark = state.begin();
        for (i, j, v) in writes {
            let len = state.len();
            if i < len {
                let inner = &mut state[i];
                if j < inner.len() { inner[j] = v } else { inner.push(v) }
            } else {
                state.push(List::from(vec![v]));
            }
        }
        if fail {
            roll_back(&mut state, mark);
            prop_assert_eq!(&state, &before);
        } else {
            let emitted = changes_since(&state, &mark).unwrap();
            prop_assert_eq!(&emitted, &diff(&before, &state).unwrap());
            state.commit(mark);
        }
    }
}

proptest! {
    #![proptest_config(config())]

    /// A newtype over the state: tracked (its mark is its field's), and its diff, its way back
    /// and its rollback are the structural ones, at the same paths as the state's.
    #[test]
    fn a_newtype_is_tracked_as_its_field(
        state in state(),
        ops in prop::collection::vec(op(), 0..12),
        fail in any::<bool>(),
    ) {
        let mut wrapped = Wrapped(state);
        let before = wrapped.clone();
        let mark = wrapped.begin();
        prop_assert_eq!(format!("{mark:?}"), "Mark::tracked");
        for op in &ops {
            run(&mut wrapped.0, op);
        }
        if fail {
            roll_back(&mut wrapped, mark);
            prop_assert_eq!(&wrapped, &before);
        } else {
            let emitted = changes_since(&wrapped, &mark).unwrap();
            prop_assert_eq!(normalized(&emitted), normalized(&diff(&before, &wrapped).unwrap()));
            prop_assert_eq!(normalized(&emitted), normalized(&diff(&before.0, &wrapped.0).unwrap()));
            let back = changes_back(&wrapped, &mark).unwrap();
            prop_assert_eq!(normalized(&back), normalized(&diff(&wrapped, &before).unwrap()));
            wrapped.commit(mark);
        }
    }
}

#[test]
fn a_newtype_over_a_list_keeps_one_element_for_a_one_field_change() {
    const { assert!(<Rows as Diff>::TRACKED) };
    let mut rows = Rows(
        (0..10_000)
            .map(|id| Item {
                id,
                title: format!("item {id}"),
                done: false,
                tags: Vec::new(),
                score: 0,
            })
            .collect(),
    );
    let mark = rows.begin();
    assert_eq!(format!("{mark:?}"), "Mark::tracked");
    rows.0[5_000].score += 1;
    let changes = changes_since(&rows, &mark).unwrap();
    assert_eq!(
        serde_json::to_string(&changes).unwrap(),
        r#"[{"a":"u","p":[5000,"score"],"t":1}]"#
    );
    roll_back(&mut rows, mark);
    assert_eq!(rows.0[5_000].score, 0);
}

#[test]
fn a_one_field_change_is_one_change_and_keeps_one_element() {
    let mut state: List<Item> = (0..10_000)
        .map(|id| Item {
            id,
            title: format!("item {id}"),
            done: false,
            tags: Vec::new(),
            score: 0,
        })
        .collect();
    let mark = state.begin();
    state[5_000].score += 1;
    let changes = changes_since(&state, &mark).unwrap();
    assert_eq!(
        serde_json::to_string(&changes).unwrap(),
        r#"[{"a":"u","p":[5000,"score"],"t":1}]"#
    );
    roll_back(&mut state, mark);
    assert_eq!(state[5_000].score, 0);
}

#[test]
fn a_list_moved_out_of_the_state_for_good_is_not_restored_and_the_field_is_left_empty() {
    let mut state: State = State {
        title: String::new(),
        items: vec![Item {
            id: 1,
            title: "kept".into(),
            done: false,
            tags: Vec::new(),
            score: 0,
        }]
        .into(),
        by_key: Map::new(),
        board: Board {
            name: String::new(),
            cards: List::new(),
        },
        plain: Vec::new(),
        flag: None,
        hidden: Vec::new(),
        spare: List::new(),
    };
    let mark = state.begin();
    // Leaked: nothing ever drops it, so it never hands its content back.
    std::mem::forget(std::mem::take(&mut state.items));
    roll_back(&mut state, mark);
    assert!(state.items.is_empty());
}
