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

    #[mutation("increase", async)]
    fn increase(&mut self) {}

    #[init(fast)]
    fn init_again() -> Self {
        Counter { counter: 0 }
    }
}

fn main() {}
