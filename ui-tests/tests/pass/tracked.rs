// Tracked collections in a store: mutation bodies are plain Rust on the fields (an element's
// field, a push, a plain assignment, `get_mut` on a map, `entry`), a nested struct holds a
// tracked list too, and a `#[serde(skip)]` field and a `#[storex(replace)]` field sit beside
// them.

use serde::{Deserialize, Serialize};
use storex::{List, Map, Store};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, storex::Diff)]
pub struct Card {
    pub title: String,
    pub votes: u32,
}

#[derive(Debug, Clone, Serialize, storex::Diff)]
pub struct Column {
    pub name: String,
    pub cards: List<Card>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Mode {
    Open,
    Frozen,
}

#[derive(Debug, Clone, Serialize, Store)]
#[store(name = "Ui.Tracked.Board")]
pub struct Board {
    title: String,
    cards: List<Card>,
    by_owner: Map<String, u32>,
    done: Column,
    #[storex(replace)]
    mode: Mode,
    #[serde(skip)]
    edits: u64,
}

#[storex::mutations]
impl Board {
    #[init]
    fn init() -> Self {
        Board {
            title: String::new(),
            cards: List::new(),
            by_owner: Map::new(),
            done: Column {
                name: "done".into(),
                cards: List::new(),
            },
            mode: Mode::Open,
            edits: 0,
        }
    }

    #[mutation("vote")]
    fn vote(&mut self, index: usize) -> Result<(), String> {
        if index >= self.cards.len() {
            return Err(format!("no card {index}"));
        }
        self.cards[index].votes += 1;
        self.edits += 1;
        Ok(())
    }

    #[mutation("add")]
    fn add(&mut self, owner: String, card: Card) {
        self.cards.push(card);
        *self.by_owner.entry(owner).or_insert(0) += 1;
    }

    #[mutation("rename")]
    fn rename(&mut self, title: String) {
        self.title = title;
    }

    #[mutation("forget")]
    fn forget(&mut self, owner: String) {
        if let Some(count) = self.by_owner.get_mut(&owner) {
            *count = 0;
        }
    }

    #[mutation("finish")]
    fn finish(&mut self, index: usize) {
        if index < self.cards.len() {
            let card = self.cards.remove(index);
            self.done.cards.push(card);
        }
        if self.cards.is_empty() {
            self.mode = Mode::Frozen;
        }
    }
}

fn main() {
    let _ = storex::mutation!(Board, "vote", 0);
}
