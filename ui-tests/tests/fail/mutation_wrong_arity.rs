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

    #[mutation("decrease")]
    fn decrease(&mut self) {
        self.counter -= 1;
    }

    #[mutation("set")]
    fn set(&mut self, number: i64) {
        self.counter = number;
    }
}

fn main() {
    let _ = storex::mutation!(Counter, "set", 1, 2);
    let _ = storex::mutation!(Counter, "increase", 1);
}
