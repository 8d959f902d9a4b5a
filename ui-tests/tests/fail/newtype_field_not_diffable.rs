use storex::Store;

#[derive(serde::Serialize, Clone)]
pub struct Position {
    x: i64,
}

// A newtype is diffed as its field: the field's type must be `Diff` (or the field marked
// `#[storex(replace)]`, which needs `PartialEq`).
#[derive(Store, serde::Serialize, Clone)]
pub struct Cursor(Position);

#[derive(Store, serde::Serialize, Clone)]
pub struct Pointer(#[storex(replace)] Position);

#[storex::mutations]
impl Cursor {
    #[init]
    fn init() -> Self {
        Cursor(Position { x: 0 })
    }
}

#[storex::mutations]
impl Pointer {
    #[init]
    fn init() -> Self {
        Pointer(Position { x: 0 })
    }
}

fn main() {}
