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

    #[mutation("increase")]
    fn increase(&mut self) {
        self.counter += 1;
    }

    #[mutation("increase")]
    fn increase_by(&mut self, by: i64) {
        self.counter += by;
    }
}

fn main() {}
