use storex::Store;

#[derive(serde::Serialize, Clone)]
pub struct Position {
    x: i64,
    y: i64,
}

#[derive(Store, serde::Serialize, Clone)]
pub struct Board {
    name: String,
    cursor: Position,
}

#[storex::mutations]
impl Board {
    #[init]
    fn init() -> Self {
        Board { name: String::new(), cursor: Position { x: 0, y: 0 } }
    }
}

fn main() {}
