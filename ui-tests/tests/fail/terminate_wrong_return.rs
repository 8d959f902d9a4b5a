use storex::Store;

#[derive(Store, serde::Serialize, Clone)]
#[store(name = "ExampleApp.Store.Counter")]
pub struct Counter {
    counter: i64,
}

#[storex::mutations]
impl Counter {
    #[init]
    fn init() -> Self {
        Counter { counter: 0 }
    }

    #[terminate]
    fn terminate(&mut self) -> bool {
        true
    }
}

fn main() {}
