//! The TypeScript export (feature `ts`): what a store's file says, and what is written.

use serde::{Deserialize, Serialize};
use storex::{List, Reply, Store};
use ts_rs::TS;

#[derive(Store, TS, Serialize, Clone, Debug)]
#[store(name = "Typed.Board", ts)]
#[serde(rename_all = "camelCase")]
pub struct Board {
    title: String,
    cards: List<Card>,
    next_id: u64,
    owner: Option<String>,
}

#[derive(storex::Diff, TS, Serialize, Deserialize, Clone, PartialEq, Debug)]
pub struct Card {
    id: u64,
    text: String,
    column: Column,
}

#[derive(storex::Diff, TS, Serialize, Deserialize, Clone, PartialEq, Debug)]
pub enum Column {
    Todo,
    Done,
}

#[derive(TS, Serialize, Debug)]
pub struct Moved {
    from: Column,
    to: Column,
}

#[storex::mutations]
impl Board {
    #[init]
    fn init() -> Self {
        Board {
            title: String::new(),
            cards: List::new(),
            next_id: 0,
            owner: None,
        }
    }

    #[mutation("rename")]
    fn rename(&mut self, title: String) {
        self.title = title;
    }

    #[mutation("add")]
    fn add(&mut self, text: String, column: Column) -> Reply<u64> {
        self.next_id += 1;
        self.cards.push(Card {
            id: self.next_id,
            text,
            column,
        });
        Reply(self.next_id)
    }

    #[mutation("move")]
    async fn move_card(&mut self, id: u64, to: Column) -> Result<Reply<Moved>, String> {
        let card = self
            .cards
            .iter_mut()
            .find(|card| card.id == id)
            .ok_or("no such card")?;
        let from = std::mem::replace(&mut card.column, to.clone());
        Ok(Reply(Moved { from, to }))
    }

    #[mutation("claim")]
    fn claim(&mut self, session: &storex::Session, r#for: Option<String>) -> Reply<&str> {
        self.owner = Some(r#for.unwrap_or_else(|| session.id().to_owned()));
        Reply("claimed")
    }

    #[mutation("clear")]
    fn clear(&mut self) -> Result<(), String> {
        self.cards = List::new();
        Ok(())
    }
}

/// A temporary directory of this test, removed when dropped.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("storex-ts-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Only what the file names is imported (`Card` is Board's, not the store file's); `for`, which
/// TypeScript reserves, is labelled `for_`.
#[test]
fn the_store_file_types_the_state_and_each_mutation() {
    let text = storex::ts::declaration::<Board>(&storex::ts::config("out"));
    assert_eq!(
        text,
        r#"// Written by storex::ts from the store "Typed.Board": export the types again after changing it.

import type { Board } from "./Board.js";
import type { Column } from "./Column.js";
import type { Moved } from "./Moved.js";

/** The store "Typed.Board": `useStorex<BoardStore>({ store: "Typed.Board" })`. */
export type BoardStore = {
  __storex: {
    name: "Typed.Board";
    state: Board;
    mutations: {
      "rename": { args: [title: string]; reply: undefined };
      "add": { args: [text: string, column: Column]; reply: number };
      "move": { args: [id: number, to: Column]; reply: Moved };
      "claim": { args: [for_: string | null]; reply: string };
      "clear": { args: []; reply: undefined };
    };
  };
};
"#
    );
}

#[test]
fn export_writes_the_store_file_and_every_type_it_imports() {
    let dir = TempDir::new("export");
    let written = storex::ts::export::<Board>(&storex::ts::config(&dir.0)).unwrap();
    assert_eq!(written, dir.0.join("BoardStore.ts"));
    let read = |file: &str| std::fs::read_to_string(dir.0.join(file)).unwrap();
    assert!(read("BoardStore.ts").contains("export type BoardStore = {"));
    // 64-bit integers are numbers, as JSON.parse gives them; the tracked list is an array.
    let board = read("Board.ts");
    assert!(
        board.contains("export type Board = { title: string, cards: Array<Card>, nextId: number, owner: string | null, };"),
        "{board}"
    );
    assert!(
        board.contains(r#"import type { Card } from "./Card.js";"#),
        "{board}"
    );
    assert!(read("Card.ts").contains("column: Column"));
    assert!(read("Column.ts").contains(r#""Todo" | "Done""#));
    assert!(read("Moved.ts").contains("from: Column, to: Column"));
}

#[test]
fn export_all_writes_every_store_marked_ts() {
    let dir = TempDir::new("all");
    let written = storex::ts::export_all(&storex::ts::config(&dir.0)).unwrap();
    assert_eq!(
        written,
        [dir.0.join("BoardStore.ts"), dir.0.join("PhaseStore.ts")]
    );
    assert!(dir.0.join("Card.ts").exists());
}

#[test]
fn a_store_without_ts_is_left_out() {
    // `Plain` is a store of this binary, not marked `ts`: export_all does not list it (the
    // test above sees only Board), and it needs no TypeScript type to compile.
    #[derive(Store, Serialize, Clone, Debug)]
    #[store(name = "Typed.Plain")]
    pub struct Plain {
        #[storex(replace)]
        not_ts: std::time::Duration,
    }

    #[storex::mutations]
    impl Plain {
        #[init]
        fn init() -> Self {
            Plain {
                not_ts: std::time::Duration::ZERO,
            }
        }
    }
    let registry = storex::Registry::global().unwrap();
    assert!(registry.get("Typed.Plain").is_some());
}

/// A store of another shape: a newtype is typed as its field, an enum as ts-rs's union.
#[derive(Store, TS, Serialize, Clone, PartialEq, Debug)]
#[store(name = "Typed.Phase", ts)]
pub enum Phase {
    Idle,
    Running { since: u64 },
}

#[storex::mutations]
impl Phase {
    #[init]
    fn init() -> Self {
        Phase::Idle
    }

    #[mutation("start")]
    fn start(&mut self, since: u64) {
        *self = Phase::Running { since };
    }
}

#[test]
fn stores_of_other_shapes_export_their_state() {
    let dir = TempDir::new("shapes");
    let config = storex::ts::config(&dir.0);
    let text = storex::ts::declaration::<Phase>(&config);
    assert!(text.contains("state: Phase;"), "{text}");
    assert!(text.contains(r#""start": { args: [since: number]; reply: undefined };"#));
    storex::ts::export::<Phase>(&config).unwrap();
    let phase = std::fs::read_to_string(dir.0.join("Phase.ts")).unwrap();
    assert!(
        phase.contains(r#"export type Phase = "Idle" | { "Running": { since: number, } };"#),
        "{phase}"
    );
}
