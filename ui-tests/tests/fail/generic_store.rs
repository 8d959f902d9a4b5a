use storex::Store;

#[derive(Store, serde::Serialize, Clone)]
pub struct List<T> {
    items: Vec<T>,
}

pub struct Counter;

#[storex::mutations]
impl<T> List<T> {
    #[init]
    fn init() -> Self {
        List { items: Vec::new() }
    }
}

fn main() {}
