use storex::Store;

#[derive(Store, serde::Serialize, Clone)]
#[store(name = "ExampleApp.Store.Counter")]
pub struct Counter {
    counter: i64,
}

#[storex::mutations(strict)]
impl Counter {
    #[init]
    fn init() -> Self {
        Counter { counter: 0 }
    }
}

trait Named {
    fn name() -> String;
}

#[storex::mutations]
impl Named for Counter {
    fn name() -> String {
        String::new()
    }
}

fn main() {}
