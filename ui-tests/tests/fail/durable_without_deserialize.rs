use storex::Store;

// A durable store is made again from its saved JSON on another node: it must be Deserialize.
#[derive(Store, serde::Serialize, Clone)]
#[store(name = "ExampleApp.Store.Counter", durable)]
pub struct Counter {
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
