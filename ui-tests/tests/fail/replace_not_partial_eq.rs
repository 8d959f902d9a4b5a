use storex::Store;

#[derive(serde::Serialize, Clone)]
pub struct Position {
    x: i64,
}

#[derive(serde::Serialize, Clone, storex::Diff)]
pub enum Mode {
    Edit,
    View,
}

#[derive(Store, serde::Serialize, Clone)]
pub struct Board {
    #[storex(replace)]
    cursor: Position,
    mode: Mode,
}

#[storex::mutations]
impl Board {
    #[init]
    fn init() -> Self {
        Board { cursor: Position { x: 0 }, mode: Mode::View }
    }
}

fn main() {}
