use storex::Store;

#[derive(Store, serde::Serialize, Clone)]
pub struct Counter {
    #[storex(replace, skip)]
    counter: i64,
}

#[storex::mutations]
impl Counter {
    #[init]
    fn init() -> Self {
        Counter { counter: 0 }
    }
}

fn main() {}
