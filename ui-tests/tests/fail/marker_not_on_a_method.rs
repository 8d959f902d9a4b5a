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

    #[mutation("limit")]
    const LIMIT: i64 = 10;

    #[terminate]
    const GOODBYE: &str = "bye";

    #[mutation("increase")]
    #[init]
    fn increase(&mut self) {}
}

fn main() {}
